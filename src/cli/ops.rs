//! Operator commands: serve, migrate, check-config, sweep, backup, copy-database, status, healthcheck, send-test-email, default-config, version, generate (hidden).

use super::*;

/// Validates the config (`nazorg check-config`).
pub fn check_config(g: &Global) -> anyhow::Result<()> {
    let cfg = load_config(g)?;
    print(
        g.json,
        &serde_json::json!({"config": cfg.path, "ok": true}),
        |_| format!("config {} is valid\n", cfg.path.display()),
    )
}

/// Prints the documented example config (`nazorg default-config`).
pub fn default_config() -> anyhow::Result<()> {
    print!("{}", include_str!("../../config/nazorg.example.toml"));
    Ok(())
}

/// Writes the man pages or completions from this command line (`nazorg generate`, hidden;
/// the package build runs it). `--at` stays hidden as outside a simulation.
pub fn generate(what: crate::manual::Artefact, out: PathBuf) -> anyhow::Result<()> {
    let cmd = Cli::command().mut_arg("at", |a| a.hide(true));
    for file in crate::manual::generate(cmd, what, &out)? {
        println!("{}", file.display());
    }
    Ok(())
}

/// Prints the version (`nazorg version`).
pub fn version(g: &Global) -> anyhow::Result<()> {
    print(
        g.json,
        &serde_json::json!({"name": "nazorg", "version": env!("CARGO_PKG_VERSION")}),
        |_| format!("nazorg {}\n", env!("CARGO_PKG_VERSION")),
    )
}

/// Asks the running daemon whether it is ready (`nazorg healthcheck`).
pub async fn healthcheck(g: &Global) -> anyhow::Result<()> {
    let cfg = load_config(g)?;
    match crate::health::probe(cfg.api.listen).await {
        Ok((200, body)) => {
            println!("{}", body.trim());
            Ok(())
        }
        Ok((code, body)) => {
            say_failure(format!("not ready (HTTP {code}): {}", body.trim()));
            Err(Exit(1).into())
        }
        Err(e) => {
            say_failure(format!("no daemon answers on {}: {e}", cfg.api.listen));
            Err(Exit(1).into())
        }
    }
}

/// Sends one test message through the configured transport (`nazorg send-test-email`).
pub async fn send_test_email(g: &Global, to: String) -> anyhow::Result<()> {
    let cfg = load_config(g)?;
    let transport = crate::dispatcher::transport(&cfg.mail)?;
    let now = clock(g, false).now();
    let msg = crate::mail::OutgoingMessage {
                outbox_key: format!("test:{}", now.timestamp()),
                from: cfg.mail.from.clone(),
                to: vec![to.clone()],
                cc: vec![],
                subject: "Nazorg: testbericht / test message".into(),
                body_text: "Dit is een testbericht van Nazorg: de verbinding met de mailserver werkt.\n\nThis is a test message from Nazorg: the connection to the mail server works.\n".into(),
                attachments: vec![],
            };
    match transport.send(&msg, now).await {
        Ok(()) => print(
            g.json,
            &serde_json::json!({"sent": true, "via": transport.describe()}),
            |_| format!("test message sent via {}\n", transport.describe()),
        ),
        Err(e) => {
            error_out!("sending via {} failed: {e}", transport.describe());
            Err(Exit(exit::UNAVAILABLE).into())
        }
    }
}

/// Writes a checked copy of the database (`nazorg backup`).
pub async fn backup(g: &Global, out: PathBuf) -> anyhow::Result<()> {
    let app = open_app(g, OpenMode::Existing, false).await?;
    let report = crate::backup::backup(&app.store, &out).await.map_err(|e| {
        error_out!("{e}");
        anyhow::Error::from(Exit(match e {
            crate::backup::BackupError::Exists(_) | crate::backup::BackupError::Create { .. } => {
                exit::CANTCREAT
            }
            _ => exit::SOFTWARE,
        }))
    })?;
    print(g.json, &report, |r| {
        format!(
            "backup written to {} ({} bytes): integrity {}, {} families, {} audit entries\n",
            r.out.display(),
            r.bytes,
            r.integrity,
            r.families,
            r.audit_entries
        )
    })
}

/// Copies an installation to another database (`nazorg copy-database`).
pub async fn copy_database(g: &Global, from: String, to: String) -> anyhow::Result<()> {
    let here = std::env::current_dir().context("cannot read the working folder")?;
    let url = |flag: &str, u: &str| {
        crate::config::DatabaseConfig::from_url(u, &here).map_err(|m| {
            error_out!("{flag}: {m}");
            anyhow::Error::from(Exit(exit::USAGE))
        })
    };
    let (from_db, to_db) = (url("--from", &from)?, url("--to", &to)?);
    let source = Store::open(&from_db, OpenMode::Existing)
        .await
        .map_err(|e| op_failed(e.into()))?;
    let target = Store::open(&to_db, OpenMode::CreateAndMigrate)
        .await
        .map_err(|e| op_failed(e.into()))?;
    let report = crate::copy::copy_database(&source, &target)
        .await
        .map_err(|e| {
            error_out!("{e}");
            anyhow::Error::from(Exit(match e {
                crate::copy::CopyError::Store(_) | crate::copy::CopyError::Mismatch { .. } => {
                    exit::SOFTWARE
                }
                _ => exit::DATAERR,
            }))
        })?;
    source.close().await;
    target.close().await;
    print(g.json, &report, |r| {
        let rows: i64 = r.tables.iter().map(|t| t.rows).sum();
        format!(
            "copied {} tables ({rows} rows) from {} to {}; counts match\n",
            r.tables.len(),
            r.from,
            r.to
        )
    })
}

/// Prints counts of the installation (`nazorg status`).
pub async fn status(g: &Global) -> anyhow::Result<()> {
    let app = open_app(g, OpenMode::Existing, false).await?;
    let mut conn = app.store.conn().await?;
    let st = crate::status::status(&mut conn, app.now().timestamp())
        .await
        .map_err(|e| op_failed(e.into()))?;
    print(g.json, &st, |s| {
        let flags = if s.flags_open.is_empty() {
            "none".to_string()
        } else {
            s.flags_open
                .iter()
                .map(|(sev, n)| format!("{sev} {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        format!(
            "outbox: {} pending (oldest {} s), {} failed for good\nlast sweep: {}\nfamilies running: {}\nhandovers not acknowledged: {}\nopen flags: {}\n",
            s.outbox_pending,
            s.outbox_oldest_pending_secs,
            s.outbox_failed,
            s.last_sweep.as_deref().unwrap_or("never"),
            s.families_running,
            s.handovers_pending,
            flags
        )
    })
}

/// Creates the database if needed and migrates it (`nazorg migrate`).
pub async fn migrate(g: &Global) -> anyhow::Result<()> {
    let cfg = load_config(g)?;
    service::create_private_dir(&cfg.state_dir)
        .with_context(|| format!("cannot create state_dir {}", cfg.state_dir.display()))?;
    let store = Store::open(&cfg.database, OpenMode::CreateAndMigrate)
        .await
        .map_err(|e| op_failed(e.into()))?;
    store.migrate().await.map_err(|e| op_failed(e.into()))?;
    let counts = store.counts().await.map_err(|e| op_failed(e.into()))?;
    store.close().await;
    print(
        g.json,
        &serde_json::json!({"database": database_label(&cfg.database), "migrated": true}),
        |_| {
            format!(
                "database {} is up to date ({} families)\n",
                database_label(&cfg.database),
                counts.first().map(|c| c.1).unwrap_or(0)
            )
        },
    )
}

/// Runs the daemon until SIGTERM or SIGINT (`nazorg serve`).
pub async fn serve(g: &Global) -> anyhow::Result<()> {
    let app = open_app(g, OpenMode::CreateAndMigrate, true).await?;
    let (tx, rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        wait_for_signal().await;
        let _ = tx.send(true);
    });
    crate::daemon::serve(app, rx).await.map_err(|e| {
        error_out!("{e}");
        anyhow::Error::from(Exit(match e {
            crate::daemon::DaemonError::Store(StoreError::Locked(_)) => exit::TEMPFAIL,
            crate::daemon::DaemonError::Mail(_) => exit::CONFIG,
            _ => exit::SOFTWARE,
        }))
    })
}

/// One sweep, then dispatch (`nazorg sweep`).
pub async fn sweep(g: &Global, no_dispatch: bool) -> anyhow::Result<()> {
    let app = open_app(g, OpenMode::Existing, false).await?;
    let now = app.now();
    let swept = crate::sweep::sweep(&app, now)
        .await
        .map_err(|e| op_failed(e.into()))?;
    let sent = if no_dispatch {
        crate::dispatcher::DispatchSummary::default()
    } else {
        let transport = crate::dispatcher::transport(&app.config.mail)?;
        crate::dispatcher::dispatch(&app, &transport, now)
            .await
            .map_err(|e| op_failed(e.into()))?
    };
    // The sweep summary is JSON either way: it is meant for scripts and logs.
    println!(
        "{}",
        serde_json::to_string_pretty(&serde_json::json!({"sweep": swept, "dispatch": sent}))?
    );
    Ok(())
}

/// The database as `migrate` names it: the SQLite file, or the URL without its password.
fn database_label(db: &crate::config::DatabaseConfig) -> String {
    match db.backend {
        crate::config::Backend::Sqlite => db.sqlite_path.display().to_string(),
        crate::config::Backend::Postgres => db.display_url(),
    }
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
