//! The `nazorg` command line: parse, call the library, print. Errors go to stderr with a
//! non-zero exit code; `--json` prints data as JSON on every command that prints data.

use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use nazorg::clock::{FixedClock, OffsetClock, SharedClock, SystemClock};
use nazorg::config::{self, Config};
use nazorg::service::{self, App, OpError};
use nazorg::store::{OpenMode, Store, StoreError};
use serde::Serialize;
use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(
    name = "nazorg",
    version,
    about = "Longitudinal aftercare after domestic violence"
)]
struct Cli {
    #[command(flatten)]
    global: Global,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct Global {
    /// Config file [default: $NAZORG_CONFIG, else /etc/nazorg/nazorg.toml]
    #[arg(long, global = true, value_name = "PATH")]
    config: Option<PathBuf>,
    /// Act as if the clock showed this instant (RFC 3339), to simulate months in tests;
    /// only with NAZORG_SIMULATION=1 (hidden from --help otherwise)
    #[arg(long, global = true, value_name = "T")]
    at: Option<DateTime<chrono::FixedOffset>>,
    /// Print data as JSON
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon: sweep on the cron, dispatch the outbox
    Serve,
    /// Create the database if needed and apply migrations
    Migrate,
    /// Validate the config; prints every problem with its key path (exit 78 on errors)
    CheckConfig,
    /// Write a new age identity (mode 0600) and print its public recipient
    Keygen {
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
    },
    /// Families: enrol, show, close
    #[command(subcommand)]
    Family(FamilyCommand),
    /// Check-ins: what is due, record an outcome
    #[command(subcommand)]
    Checkin(CheckinCommand),
    /// One sweep at the clock's instant, then dispatch what is due; prints a summary
    Sweep {
        /// Only enqueue; leave sending to the daemon
        #[arg(long)]
        no_dispatch: bool,
    },
    /// The outbox of messages
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Key management
    #[command(subcommand)]
    Keys(KeysCommand),
    /// API tokens
    #[command(subcommand)]
    Token(TokenCommand),
    /// The tamper-evident audit trail
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Anonymised follow-up export for researchers (k-anonymous over children)
    Export {
        /// Folder to create (must not exist); written complete or not at all [default:
        /// state_dir/exports/<export id>, deleted by the sweep after export.keep]
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Study code: the study's sealed key makes pseudonyms stable across its exports
        #[arg(long, value_name = "CODE")]
        study: Option<String>,
        /// Only check-ins due on or after this local date (YYYY-MM-DD)
        #[arg(long, value_name = "DATE")]
        from: Option<String>,
        /// Only check-ins due on or before this local date (YYYY-MM-DD)
        #[arg(long, value_name = "DATE")]
        to: Option<String>,
        /// Smallest number of distinct children per signature [default: export.k; never lower]
        #[arg(long, value_name = "N")]
        k: Option<u32>,
    },
    /// Register a family's move to another municipality (a handover to the receiving team)
    Move {
        reference: String,
        /// CBS code of the receiving municipality, e.g. GM0599
        #[arg(long, value_name = "CODE")]
        to: String,
        /// The move date (YYYY-MM-DD): the receiving team is responsible from then on
        #[arg(long, value_name = "DATE")]
        date: chrono::NaiveDate,
        /// A text file with the new address (sealed; `-` for stdin)
        #[arg(long, value_name = "FILE")]
        address_file: Option<PathBuf>,
    },
    /// Handovers: acknowledge, list
    #[command(subcommand)]
    Handover(HandoverCommand),
    /// Relapse-signal flags: list, acknowledge, resolve
    #[command(subcommand)]
    Flags(FlagsCommand),
    /// A consistent copy of the database while the daemon runs, checked on the copy
    Backup {
        /// The file to write (mode 0600; must not exist)
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Copy an installation to another database (SQLite <-> PostgreSQL), daemons stopped;
    /// the target must be new and migrated; checked by counting rows on both sides
    CopyDatabase {
        /// The database to copy, e.g. sqlite:///var/lib/nazorg/nazorg.db
        #[arg(long, value_name = "URL")]
        from: String,
        /// The new database, e.g. postgres://nazorg@db/nazorg (migrated here if empty)
        #[arg(long, value_name = "URL")]
        to: String,
    },
    /// Ask the running daemon whether it is ready (exit 0) or not (exit 1)
    Healthcheck,
    /// Write the man pages or shell completions into a folder (for packaging)
    #[command(hide = true)]
    Generate {
        what: nazorg::manual::Artefact,
        /// The folder to write into (created if missing)
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Send one test message straight through the configured transport (not the outbox)
    SendTestEmail {
        /// The address to send to (e.g. your own)
        #[arg(long, value_name = "ADDR")]
        to: String,
    },
    /// Print the documented example config (a working embedded default)
    DefaultConfig,
    /// Print the version
    Version,
    /// Queue depth, last sweep, pending handovers, open flags (counts only)
    Status,
    /// Team members who sign in to the workspace (/team/): add, list, remove
    #[command(subcommand)]
    Member(MemberCommand),
}

#[derive(Subcommand)]
enum MemberCommand {
    /// Register a team member; they sign in with a link mailed to this address
    Add {
        /// CBS code of the member's municipality, e.g. GM0363
        #[arg(long, value_name = "CODE")]
        municipality: String,
        #[arg(long, value_name = "ADDR")]
        email: String,
        #[arg(long, value_name = "NAME")]
        name: String,
    },
    /// List members (active and removed)
    List {
        #[arg(long, value_name = "CODE")]
        municipality: Option<String>,
    },
    /// Remove a member: no more sign-in, their sessions end at once
    Remove { id: String },
}

#[derive(Subcommand)]
enum FlagsCommand {
    /// Flags with their evidence (decrypted, for the responsible team)
    List {
        /// Only families this municipality is responsible for now
        #[arg(long, value_name = "CODE")]
        municipality: Option<String>,
        /// Only flags that are not resolved (open or acknowledged)
        #[arg(long)]
        open: bool,
    },
    /// Acknowledge a flag: the team is acting on it (the note is sealed)
    Ack {
        id: i64,
        #[arg(long, value_name = "TEXT")]
        note: String,
        /// Who acknowledges (sealed with the note)
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
    /// Resolve a flag (the note is sealed); a recurring condition raises a new flag
    Resolve {
        id: i64,
        #[arg(long, value_name = "TEXT")]
        note: String,
        /// Who resolves (sealed with the note)
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
    },
}

#[derive(Subcommand)]
enum HandoverCommand {
    /// The receiving municipality confirms it took the family over
    Ack {
        id: String,
        #[arg(long, value_name = "CODE")]
        municipality: String,
        /// Who acknowledges (sealed under the family's key)
        #[arg(long, value_name = "NAME")]
        by: Option<String>,
        /// The family's new case director, JSON {"name", "email"} (sealed)
        #[arg(long, value_name = "FILE")]
        case_director_file: Option<PathBuf>,
    },
    /// Send a handover again: to a municipality configured since (instead of the
    /// outside-region desk), with a dossier withheld before once the receiver has a key
    Resend { id: String },
    /// List handovers
    List {
        /// Only those not acknowledged yet
        #[arg(long, conflicts_with = "withheld")]
        pending: bool,
        /// Only those whose dossier was withheld (no age_recipient for the receiver)
        #[arg(long)]
        withheld: bool,
        #[arg(long, value_name = "CODE")]
        municipality: Option<String>,
    },
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Create a token (printed once): for a municipality's team, a researcher's study, or an administrator
    Create {
        #[arg(long, value_name = "CODE", group = "role")]
        municipality: Option<String>,
        #[arg(long, value_name = "STUDY", group = "role")]
        researcher: Option<String>,
        #[arg(long, group = "role")]
        admin: bool,
        /// How long the token is valid, e.g. P30D [default: api.token_lifetime, P90D]
        #[arg(long, value_name = "DURATION")]
        expires: Option<String>,
        #[arg(long)]
        label: Option<String>,
    },
    /// List tokens (never their secrets)
    List,
    /// Revoke a token
    Revoke { id: String },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the MAC chain; names the first forged entry and every edited, deleted or
    /// reordered one (exit 65 if any)
    Verify {
        /// A head recorded earlier (the sweep logs it): `SEQ:MAC`; that entry must still
        /// exist with that MAC, so a removed tail or a rewritten chain is found
        #[arg(long, value_name = "SEQ:MAC")]
        head: Option<nazorg::audit::Head>,
    },
    /// List entries, optionally for one family
    List {
        #[arg(long, value_name = "REF")]
        family: Option<String>,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Rewrap the key-encryption key for a new recipient set (instant), and/or replace it
    /// and rewrap every family's data key (`--new-kek`, batched, resumable)
    Rotate {
        /// An age recipient (age1…) that may also unwrap the keys, e.g. an offline recovery key
        #[arg(long, value_name = "AGE1…")]
        add_recipient: Vec<String>,
        /// A recipient that may no longer unwrap the keys
        #[arg(long, value_name = "AGE1…")]
        remove_recipient: Vec<String>,
        /// Make a new key-encryption key and rewrap every data key under it
        #[arg(long)]
        new_kek: bool,
        /// Families per transaction during `--new-kek`
        #[arg(long, default_value_t = 500)]
        batch: i64,
        /// Stop after this many batches (the next run resumes)
        #[arg(long, hide = true)]
        max_batches: Option<u64>,
    },
}

#[derive(Subcommand)]
enum FamilyCommand {
    /// Enrol a family from a JSON file (`-` for stdin)
    Enroll {
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Enrol many families from JSON Lines: one `family enroll` document per line (`-` for
    /// stdin). Valid lines are enrolled, each family whole or not at all; rejected lines
    /// are listed with their line number and fields (exit 65 if any)
    Import {
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// The whole decrypted record of a family (for the operator)
    Show { reference: String },
    /// Keep the record up to date from a JSON file (`-` for stdin): address, notes,
    /// case_director, contacts [{member, phone?, email?}], add_members (role adult, child
    /// or ex_partner with a court measure), remove_members [{member, reason}], measures,
    /// safety_plan {text, review_on}; all or nothing, each change sealed and audited
    Update {
        reference: String,
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Close a plan before its term, with a reason code and the evaluation
    Close {
        reference: String,
        #[arg(long, value_name = "CODE")]
        reason: String,
        /// Did the family's safety improve: yes, partly or no
        #[arg(long, value_name = "CODE")]
        safety_improved: Option<String>,
        /// Professionals involved with the family now (0 to 50)
        #[arg(long, value_name = "N")]
        professionals: Option<String>,
        /// The family's own view, as text in a file (`-` for stdin); sealed
        #[arg(long, value_name = "FILE")]
        family_view_file: Option<PathBuf>,
        /// The coordinator approving a closure while a red flag is open; sealed
        #[arg(long, value_name = "NAME")]
        approved_by: Option<String>,
    },
    /// Record the evaluation of an ended plan from a JSON file (`-` for stdin):
    /// {"safety_improved": "yes|partly|no", "professionals": N, "family_view"?: TEXT}
    Evaluate {
        reference: String,
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Erase a family for good, with a reason code: a tombstone (reference, time, reason)
    /// is all that is left; its messages' bodies and attachments go, pending ones are
    /// cancelled; lists the exports that may still hold it
    Erase {
        reference: String,
        #[arg(long, value_name = "CODE")]
        reason: String,
        /// Really erase (without it, only says what would be erased; exit 64)
        #[arg(long)]
        yes: bool,
    },
    /// A new case director within the municipality, from a JSON file {"name", "email"};
    /// the team gets the dossier as after a move
    Reassign {
        reference: String,
        #[arg(long, value_name = "FILE")]
        case_director_file: PathBuf,
    },
}

#[derive(Subcommand)]
enum CheckinCommand {
    /// Open check-ins due by now plus the reminder lead
    Due {
        #[arg(long, value_name = "CODE")]
        municipality: Option<String>,
    },
    /// Record a check-in's outcome from a JSON file (`-` for stdin)
    Record {
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
    /// Record one contact attempt (same JSON as `record`; `not_reached` keeps it open)
    Attempt {
        #[arg(long, value_name = "FILE")]
        file: PathBuf,
    },
}

#[derive(Subcommand)]
enum OutboxCommand {
    /// List messages (all, or only those that failed for good)
    List {
        #[arg(long)]
        failed: bool,
    },
}

/// Exit codes from sysexits.h, so scripts can tell input errors from outages.
mod exit {
    pub const USAGE: u8 = 64;
    pub const DATAERR: u8 = 65;
    pub const NOINPUT: u8 = 66;
    pub const UNAVAILABLE: u8 = 69;
    pub const SOFTWARE: u8 = 70;
    pub const CANTCREAT: u8 = 73;
    pub const NOPERM: u8 = 77;
    pub const TEMPFAIL: u8 = 75;
    pub const CONFIG: u8 = 78;
}

/// `: X-…, X-…` for a list of exports, or nothing.
fn export_list(exports: &[service::erasure::ExportMayHold]) -> String {
    if exports.is_empty() {
        return String::new();
    }
    let ids: Vec<&str> = exports.iter().map(|e| e.export.as_str()).collect();
    format!(" ({})", ids.join(", "))
}

/// An error already printed, carrying its exit code.
#[derive(Debug)]
struct Exit(u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}", self.0)
    }
}

impl std::error::Error for Exit {}

/// The environment variable that allows the simulated clock (`--at`).
const SIMULATION_VAR: &str = "NAZORG_SIMULATION";

/// True when `NAZORG_SIMULATION=1`: tests and simulations may set the clock with `--at`.
/// A production daemon never runs on a clock someone else chose, so it is off by default.
fn simulation_enabled() -> bool {
    std::env::var_os(SIMULATION_VAR).is_some_and(|v| v == "1")
}

/// Parses the command line; `--at` is hidden from `--help` outside a simulation.
fn parse_cli(simulation: bool) -> Cli {
    let matches = Cli::command()
        .mut_arg("at", |a| a.hide(!simulation))
        .get_matches();
    match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    }
}

fn main() -> ExitCode {
    forbid_core_dumps();
    let simulation = simulation_enabled();
    let cli = parse_cli(simulation);
    if cli.global.at.is_some() && !simulation {
        eprintln!(
            "error: --at (the simulated clock) is only accepted when {SIMULATION_VAR}=1 is set; \
             production runs on the real clock"
        );
        return ExitCode::from(exit::USAGE);
    }
    nazorg::logging::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::SOFTWARE);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<Exit>() {
            Some(Exit(code)) => ExitCode::from(*code),
            None => {
                eprintln!("error: {e:#}");
                ExitCode::FAILURE
            }
        },
    }
}

/// The process holds decrypted personal data and the unwrapped keys in memory: no core
/// dump may write them to disk, and no other process of the same user may ptrace it or
/// read its memory (`PR_SET_DUMPABLE=0` also makes `/proc/<pid>/` owned by root).
fn forbid_core_dumps() {
    // SAFETY: prctl(PR_SET_DUMPABLE, 0) takes plain integers and only changes a flag of
    // this process; it touches no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if rc != 0 {
        eprintln!(
            "warning: cannot forbid core dumps (prctl PR_SET_DUMPABLE): {}",
            std::io::Error::last_os_error()
        );
    }
}

fn clock(global: &Global, running: bool) -> SharedClock {
    match (global.at, running) {
        (Some(at), false) => Arc::new(FixedClock(at.with_timezone(&Utc))),
        (Some(at), true) => Arc::new(OffsetClock::starting_at(at.with_timezone(&Utc))),
        (None, _) => Arc::new(SystemClock),
    }
}

fn load_config(global: &Global) -> anyhow::Result<Config> {
    let path = config::resolve_path(global.config.clone());
    Config::load(&path).map_err(|e| {
        eprintln!("error: config {} is not usable:", path.display());
        for issue in e.issues() {
            eprintln!("  {issue}");
        }
        Exit(exit::CONFIG).into()
    })
}

fn read_input(file: &PathBuf) -> anyhow::Result<Vec<u8>> {
    const MAX: u64 = 1024 * 1024;
    let mut buf = Vec::new();
    if file.as_os_str() == "-" {
        std::io::stdin().take(MAX + 1).read_to_end(&mut buf)?;
    } else {
        std::fs::File::open(file)
            .with_context(|| format!("cannot open {}", file.display()))?
            .take(MAX + 1)
            .read_to_end(&mut buf)?;
    }
    if buf.len() as u64 > MAX {
        eprintln!("error: input larger than {MAX} bytes");
        return Err(Exit(exit::DATAERR).into());
    }
    Ok(buf)
}

/// Prints an operation error the way scripts and people both read it; never with content.
fn op_failed(e: OpError) -> anyhow::Error {
    match e {
        OpError::Invalid(errors) => {
            for err in errors {
                eprintln!("error: {}: {}", err.field, err.message);
            }
            Exit(exit::DATAERR).into()
        }
        OpError::NotFound { .. } => {
            eprintln!("error: {e}");
            Exit(exit::NOINPUT).into()
        }
        OpError::Conflict(_) | OpError::NotResponsible(_) => {
            eprintln!("error: {e}");
            Exit(exit::DATAERR).into()
        }
        OpError::Store(
            StoreError::Missing(_)
            | StoreError::NoFolder(_)
            | StoreError::NotMigrated
            | StoreError::PasswordFile { .. }
            | StoreError::Url(_),
        ) => {
            eprintln!("error: {e}");
            Exit(exit::CONFIG).into()
        }
        // A missing or unusable identity is a configuration problem (EX_CONFIG), like a
        // missing database: the fix is in the installation, not in the input.
        OpError::Keyring(nazorg::keyring::KeyringError::Crypto(
            nazorg::crypto::CryptoError::IdentityMissing { .. }
            | nazorg::crypto::CryptoError::IdentityPermissions { .. }
            | nazorg::crypto::CryptoError::IdentityUnreadable { .. },
        )) => {
            eprintln!("error: {e}");
            Exit(exit::CONFIG).into()
        }
        OpError::Store(StoreError::ForeignOwner(_)) => {
            eprintln!("error: {e}");
            Exit(exit::NOPERM).into()
        }
        OpError::Store(StoreError::Locked(_)) => {
            eprintln!("error: {e}");
            Exit(exit::TEMPFAIL).into()
        }
        other => {
            eprintln!("error: {other}");
            Exit(exit::SOFTWARE).into()
        }
    }
}

fn export_failed(e: nazorg::export::ExportError) -> anyhow::Error {
    use nazorg::export::ExportError;
    match e {
        ExportError::Op(op) => op_failed(op),
        ExportError::Infeasible(_) | ExportError::Codebook(_) => {
            eprintln!("error: {e}");
            Exit(exit::DATAERR).into()
        }
        ExportError::Io { .. } => {
            eprintln!("error: {e}");
            Exit(exit::CANTCREAT).into()
        }
    }
}

fn print<T: Serialize>(
    json: bool,
    value: &T,
    human: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        print!("{}", human(value));
    }
    Ok(())
}

async fn open_app(global: &Global, mode: OpenMode, running: bool) -> anyhow::Result<App> {
    let cfg = load_config(global)?;
    App::open(cfg, clock(global, running), mode)
        .await
        .map_err(op_failed)
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let g = &cli.global;
    match cli.command {
        Command::CheckConfig => {
            let cfg = load_config(g)?;
            print(
                g.json,
                &serde_json::json!({"config": cfg.path, "ok": true}),
                |_| format!("config {} is valid\n", cfg.path.display()),
            )
        }
        Command::Generate { what, out } => {
            let cmd = Cli::command().mut_arg("at", |a| a.hide(true));
            for file in nazorg::manual::generate(cmd, what, &out)? {
                println!("{}", file.display());
            }
            Ok(())
        }
        Command::DefaultConfig => {
            print!("{}", include_str!("../config/nazorg.example.toml"));
            Ok(())
        }
        Command::Version => print(
            g.json,
            &serde_json::json!({"name": "nazorg", "version": env!("CARGO_PKG_VERSION")}),
            |_| format!("nazorg {}\n", env!("CARGO_PKG_VERSION")),
        ),
        Command::Healthcheck => {
            let cfg = load_config(g)?;
            match nazorg::health::probe(cfg.api.listen).await {
                Ok((200, body)) => {
                    println!("{}", body.trim());
                    Ok(())
                }
                Ok((code, body)) => {
                    eprintln!("not ready (HTTP {code}): {}", body.trim());
                    Err(Exit(1).into())
                }
                Err(e) => {
                    eprintln!("no daemon answers on {}: {e}", cfg.api.listen);
                    Err(Exit(1).into())
                }
            }
        }
        Command::SendTestEmail { to } => {
            let cfg = load_config(g)?;
            let transport = nazorg::dispatcher::transport(&cfg.mail)?;
            let now = clock(g, false).now();
            let msg = nazorg::mail::OutgoingMessage {
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
                    eprintln!("error: sending via {} failed: {e}", transport.describe());
                    Err(Exit(exit::UNAVAILABLE).into())
                }
            }
        }
        Command::Backup { out } => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            let report = nazorg::backup::backup(&app.store, &out)
                .await
                .map_err(|e| {
                    eprintln!("error: {e}");
                    anyhow::Error::from(Exit(match e {
                        nazorg::backup::BackupError::Exists(_)
                        | nazorg::backup::BackupError::Create { .. } => exit::CANTCREAT,
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
        Command::CopyDatabase { from, to } => {
            let here = std::env::current_dir().context("cannot read the working folder")?;
            let url = |flag: &str, u: &str| {
                nazorg::config::DatabaseConfig::from_url(u, &here).map_err(|m| {
                    eprintln!("error: {flag}: {m}");
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
            let report = nazorg::copy::copy_database(&source, &target)
                .await
                .map_err(|e| {
                    eprintln!("error: {e}");
                    anyhow::Error::from(Exit(match e {
                        nazorg::copy::CopyError::Store(_)
                        | nazorg::copy::CopyError::Mismatch { .. } => exit::SOFTWARE,
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
        Command::Status => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            let mut conn = app.store.conn().await?;
            let st = nazorg::status::status(&mut conn, app.now().timestamp())
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
        Command::Keygen { out } => {
            let recipient = nazorg::crypto::keygen(&out)?;
            print(
                g.json,
                &serde_json::json!({"identity": out, "recipient": recipient}),
                |_| format!("{recipient}\n"),
            )
        }
        Command::Migrate => {
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
        Command::Serve => {
            let app = open_app(g, OpenMode::CreateAndMigrate, true).await?;
            let (tx, rx) = tokio::sync::watch::channel(false);
            tokio::spawn(async move {
                wait_for_signal().await;
                let _ = tx.send(true);
            });
            nazorg::daemon::serve(app, rx).await.map_err(|e| {
                eprintln!("error: {e}");
                anyhow::Error::from(Exit(match e {
                    nazorg::daemon::DaemonError::Store(StoreError::Locked(_)) => exit::TEMPFAIL,
                    nazorg::daemon::DaemonError::Mail(_) => exit::CONFIG,
                    _ => exit::SOFTWARE,
                }))
            })
        }
        Command::Family(FamilyCommand::Enroll { file }) => {
            let input = read_input(&file)?;
            let enrolment = nazorg::domain::parse_json(&input).map_err(|e| op_failed(e.into()))?;
            let app = open_app(g, OpenMode::Existing, false).await?;
            let out = service::family::enrol(&app, &enrolment)
                .await
                .map_err(op_failed)?;
            print(g.json, &out, |o| {
                let mut s = format!("enrolled family {}\n", o.family);
                for m in &o.members {
                    s.push_str(&format!("  member {} ({})\n", m.reference, m.role));
                }
                for c in &o.checkins {
                    s.push_str(&format!(
                        "  check-in {} wave {} due {} [{}]\n",
                        c.id,
                        c.wave,
                        c.due.to_rfc3339(),
                        c.status
                    ));
                }
                s
            })
        }
        Command::Family(FamilyCommand::Import { file }) => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            let input: Box<dyn std::io::BufRead> = if file.as_os_str() == "-" {
                Box::new(std::io::BufReader::new(std::io::stdin()))
            } else {
                Box::new(std::io::BufReader::new(
                    std::fs::File::open(&file)
                        .with_context(|| format!("cannot open {}", file.display()))?,
                ))
            };
            let out = service::import::import(&app, input)
                .await
                .map_err(|e| match e {
                    service::import::ImportError::Op(op) => op_failed(op),
                    read => {
                        eprintln!("error: {read}");
                        Exit(exit::NOINPUT).into()
                    }
                })?;
            print(g.json, &out, |o| {
                let mut s = format!(
                    "enrolled {} families; rejected {} lines\n",
                    o.enrolled.len(),
                    o.rejected.len()
                );
                for r in &o.rejected {
                    for e in &r.errors {
                        s.push_str(&format!("  line {}: {}: {}\n", r.line, e.field, e.message));
                    }
                }
                s
            })?;
            if out.rejected.is_empty() {
                Ok(())
            } else {
                Err(Exit(exit::DATAERR).into())
            }
        }
        Command::Family(FamilyCommand::Show { reference }) => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            let view = service::family::show(&app, &reference)
                .await
                .map_err(op_failed)?;
            // The record is structured data either way.
            println!("{}", serde_json::to_string_pretty(&view)?);
            Ok(())
        }
        Command::Family(FamilyCommand::Close {
            reference,
            reason,
            safety_improved,
            professionals,
            family_view_file,
            approved_by,
        }) => {
            let family_view = match &family_view_file {
                Some(p) => Some(String::from_utf8(read_input(p)?).map_err(|_| {
                    eprintln!("error: family_view: the file is not UTF-8 text");
                    anyhow::Error::from(Exit(exit::DATAERR))
                })?),
                None => None,
            };
            let req = service::family::CloseRequest {
                reason,
                approved_by,
                evaluation: nazorg::domain::evaluation::EvaluationInput {
                    safety_improved,
                    professionals: professionals.map(|p| match p.trim().parse::<u64>() {
                        Ok(n) => serde_json::Value::from(n),
                        Err(_) => serde_json::Value::String(p),
                    }),
                    family_view,
                },
            };
            let app = open_app(g, OpenMode::Existing, false).await?;
            let out = service::family::close(&app, &reference, &req)
                .await
                .map_err(op_failed)?;
            print(g.json, &out, |o| {
                format!(
                    "closed family {} ({}); {} open check-ins cancelled{}\n",
                    o.family,
                    o.reason,
                    o.checkins_cancelled,
                    o.coordinator_notified
                        .as_ref()
                        .map(|c| format!("; coordinator {c} notified"))
                        .unwrap_or_default()
                )
            })
        }
        Command::Family(FamilyCommand::Update { reference, file }) => {
            let bytes = read_input(&file)?;
            let input: nazorg::domain::household::FamilyUpdate =
                match serde_json::from_slice(&bytes) {
                    Ok(i) => i,
                    Err(e) => {
                        eprintln!("error: file: not a family update ({e})");
                        return Err(Exit(exit::DATAERR).into());
                    }
                };
            let app = open_app(g, OpenMode::Existing, false).await?;
            let out = service::record::update(&app, &reference, &input)
                .await
                .map_err(op_failed)?;
            print(g.json, &out, |o| {
                let mut s = format!("family {} updated: {}\n", o.family, o.changed.join(", "));
                for m in &o.added {
                    s.push_str(&format!("  added {} ({})\n", m.reference, m.role));
                }
                for m in &o.removed {
                    s.push_str(&format!("  left {m}\n"));
                }
                s
            })
        }
        Command::Family(FamilyCommand::Evaluate { reference, file }) => {
            let bytes = read_input(&file)?;
            let input: nazorg::domain::evaluation::EvaluationInput =
                match serde_json::from_slice(&bytes) {
                    Ok(i) => i,
                    Err(e) => {
                        eprintln!("error: file: not an evaluation ({e})");
                        return Err(Exit(exit::DATAERR).into());
                    }
                };
            let app = open_app(g, OpenMode::Existing, false).await?;
            let out = service::family::evaluate(&app, &reference, &input)
                .await
                .map_err(op_failed)?;
            print(g.json, &out, |o| {
                format!(
                    "evaluation recorded for family {} (safety improved: {})\n",
                    o.family, o.safety_improved
                )
            })
        }
        Command::Family(FamilyCommand::Erase {
            reference,
            reason,
            yes,
        }) => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            if !yes {
                let p = service::erasure::preview(&app, &reference, &reason)
                    .await
                    .map_err(op_failed)?;
                eprintln!(
                    "error: this would erase family {} for good: its data key and sealed details, \
                     {} members, {} check-ins with their observations, {} flags, {} handovers and its \
                     responsibility history; the bodies and attachments of its {} messages \
                     ({} pending, which would be cancelled). {} export(s) made since its \
                     enrolment may still hold it{}. Add --yes to erase.",
                    p.family,
                    p.members,
                    p.checkins,
                    p.flags,
                    p.handovers,
                    p.messages,
                    p.pending_messages,
                    p.exports_may_hold.len(),
                    export_list(&p.exports_may_hold),
                );
                return Err(Exit(exit::USAGE).into());
            }
            let out = service::erasure::erase(&app, &reference, &reason)
                .await
                .map_err(op_failed)?;
            print(g.json, &out, |o| {
                let mut s = format!(
                    "erased family {} ({}): {} pending messages cancelled, {} attachments deleted, \
                     {} message bodies dropped, {} mail copies removed\n",
                    o.family,
                    o.reason,
                    o.messages.cancelled,
                    o.messages.attachments_deleted,
                    o.messages.bodies_dropped,
                    o.mail_files_removed
                );
                for e in &o.exports_may_hold {
                    s.push_str(&format!(
                        "  export {} ({}) may still hold it until {}: {}\n",
                        e.export,
                        e.created_at.to_rfc3339(),
                        e.expires_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
                        e.folder
                            .as_ref()
                            .map(|f| f.display().to_string())
                            .unwrap_or_else(|| {
                                "written outside state_dir/exports; delete its copies by hand"
                                    .into()
                            })
                    ));
                }
                s
            })
        }
        Command::Keys(KeysCommand::Rotate {
            add_recipient,
            remove_recipient,
            new_kek,
            batch,
            max_batches,
        }) => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            let req = service::keys::RotateRequest {
                add: add_recipient,
                remove: remove_recipient,
                new_kek,
                batch,
                max_batches,
            };
            let out = service::keys::rotate(&app, &req).await.map_err(op_failed)?;
            if !req.remove.is_empty() && !req.new_kek {
                eprintln!(
                    "warning: the removed recipient(s) can no longer unwrap the current key-encryption \
                     key from now on, but whoever holds an old copy of the wrapped key (a backup, a \
                     copy of the database) can still decrypt with the removed identity: the key \
                     itself is unchanged. Run `nazorg keys rotate --new-kek` to replace it and \
                     rewrap every data key."
                );
            }
            print(g.json, &out, |o| {
                let mut s = format!(
                    "key-encryption key wrapped to {} recipient(s)\n",
                    o.recipients.len()
                );
                if let Some(k) = o.new_kek {
                    s.push_str(&format!("new key-encryption key {k}: {} data keys rewrapped, {} old keys retired{}\n",
                        o.deks_rewrapped, o.keks_retired, if o.incomplete { " (incomplete: run again to resume)" } else { "" }));
                }
                s
            })
        }
        Command::Token(TokenCommand::Create {
            municipality,
            researcher,
            admin,
            expires,
            label,
        }) => {
            let scope = match (municipality, researcher, admin) {
                (Some(m), None, false) => nazorg::tokens::Scope::Municipality(m),
                (None, Some(s), false) => nazorg::tokens::Scope::Researcher(s),
                (None, None, true) => nazorg::tokens::Scope::Admin,
                _ => {
                    eprintln!(
                        "error: give exactly one of --municipality CODE, --researcher STUDY, --admin"
                    );
                    return Err(Exit(exit::DATAERR).into());
                }
            };
            let expires = match expires {
                Some(e) => Some(e.parse::<nazorg::domain::duration::IsoDuration>().map_err(
                    |err| {
                        eprintln!("error: expires: {err}");
                        anyhow::Error::from(Exit(exit::DATAERR))
                    },
                )?),
                None => None,
            };
            let app = open_app(g, OpenMode::Existing, false).await?;
            let out = nazorg::tokens::create(&app, &scope, expires, label.as_deref())
                .await
                .map_err(op_failed)?;
            print(g.json, &out, |o| {
                format!(
                    "token {} ({}): {}\nstore it now: it is not shown again\n",
                    o.id, o.role, o.token
                )
            })
        }
        Command::Token(TokenCommand::List) => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            let list = nazorg::tokens::list(&app).await.map_err(op_failed)?;
            print(g.json, &list, |l| {
                lines_or(l, "no API tokens", |t| {
                    let scope = t
                        .municipality
                        .clone()
                        .or(t.study.clone())
                        .unwrap_or_default();
                    let state = if t.revoked_at.is_some() {
                        "revoked"
                    } else {
                        "active"
                    };
                    format!(
                        "{}  {:<12} {:<12} {:<8} {}\n",
                        t.id,
                        t.role,
                        scope,
                        state,
                        t.label.clone().unwrap_or_default()
                    )
                })
            })
        }
        Command::Token(TokenCommand::Revoke { id }) => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            nazorg::tokens::revoke(&app, &id).await.map_err(op_failed)?;
            print(g.json, &serde_json::json!({"revoked": id}), |_| {
                format!("revoked {id}\n")
            })
        }
        Command::Audit(AuditCommand::Verify { head }) => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            let mut conn = app.store.conn().await?;
            let v = nazorg::audit::verify(&mut conn, &app.keyring, head.as_ref())
                .await
                .map_err(|e| op_failed(e.into()))?;
            print(g.json, &v, |v| {
                let mut s = format!("{} entries, head {}\n", v.entries, v.head);
                if let Some(f) = v.first_forged {
                    s.push_str(&format!("TAMPERED: the first forged entry is {f}\n"));
                }
                for p in &v.problems {
                    s.push_str(&format!("TAMPERED: {p}\n"));
                }
                if v.problems.is_empty() {
                    s.push_str("the audit trail is intact\n");
                }
                s
            })?;
            if v.problems.is_empty() {
                Ok(())
            } else {
                Err(Exit(exit::DATAERR).into())
            }
        }
        Command::Audit(AuditCommand::List { family }) => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            let mut conn = app.store.conn().await?;
            let lines = nazorg::audit::list(&mut conn, family.as_deref())
                .await
                .map_err(|e| op_failed(e.into()))?;
            print(g.json, &lines, |ls| {
                lines_or(ls, "no audit entries", |l| {
                    format!(
                        "{:>6} {} {:<12} {:<16} {} {} {}\n",
                        l.seq,
                        l.at,
                        l.actor,
                        l.action,
                        l.family.clone().unwrap_or_default(),
                        l.subject.clone().unwrap_or_default(),
                        l.detail.clone().unwrap_or_default()
                    )
                })
            })
        }
        Command::Move {
            reference,
            to,
            date,
            address_file,
        } => {
            let address = match &address_file {
                Some(f) => Some(
                    String::from_utf8(read_input(f)?)
                        .map_err(|_| {
                            eprintln!("error: address: not UTF-8 text");
                            Exit(exit::DATAERR)
                        })?
                        .trim()
                        .to_string(),
                ),
                None => None,
            };
            let app = open_app(g, OpenMode::Existing, false).await?;
            let req = service::handover::MoveRequest {
                family: reference,
                to,
                date,
                address,
            };
            let out = service::handover::move_family(&app, &req)
                .await
                .map_err(op_failed)?;
            print(g.json, &out, print_handover)
        }
        Command::Family(FamilyCommand::Reassign {
            reference,
            case_director_file,
        }) => {
            let input = read_input(&case_director_file)?;
            let director: nazorg::domain::enrolment::CaseDirector =
                nazorg::domain::parse_json(&input).map_err(|e| op_failed(e.into()))?;
            let app = open_app(g, OpenMode::Existing, false).await?;
            let out = service::handover::reassign(&app, &reference, &director)
                .await
                .map_err(op_failed)?;
            print(g.json, &out, print_handover)
        }
        Command::Handover(HandoverCommand::Ack {
            id,
            municipality,
            by,
            case_director_file,
        }) => {
            let director: Option<nazorg::domain::enrolment::CaseDirector> =
                match &case_director_file {
                    Some(file) => {
                        let input = read_input(file)?;
                        Some(nazorg::domain::parse_json(&input).map_err(|e| op_failed(e.into()))?)
                    }
                    None => None,
                };
            let app = open_app(g, OpenMode::Existing, false).await?;
            let out = service::handover::ack_naming(
                &app,
                &id,
                &municipality,
                by.as_deref(),
                director.as_ref(),
            )
            .await
            .map_err(op_failed)?;
            print(g.json, &out, |o| {
                format!(
                    "handover {} of family {} acknowledged by {}\n",
                    o.handover, o.family, o.municipality
                )
            })
        }
        Command::Handover(HandoverCommand::Resend { id }) => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            let out = service::handover::resend(&app, &id)
                .await
                .map_err(op_failed)?;
            print(g.json, &out, |o| {
                format!(
                    "handover {} of family {} resent to {} ({}), dossier {}\n",
                    o.handover, o.family, o.to, o.sent_to, o.dossier
                )
            })
        }
        Command::Handover(HandoverCommand::List {
            pending,
            withheld,
            municipality,
        }) => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            let filter = service::handover::ListFilter {
                pending,
                withheld,
                municipality: municipality.as_deref(),
            };
            let out = service::handover::list(&app, filter)
                .await
                .map_err(op_failed)?;
            print(g.json, &out, |l| {
                lines_or(l, "no handovers", |h| {
                    format!(
                        "{}  {}  {:<8} {} -> {}  from {}  {:<12} dossier {}\n",
                        h.id,
                        h.family,
                        h.kind,
                        h.from,
                        h.to,
                        h.effective_at.to_rfc3339(),
                        h.status,
                        h.dossier
                    )
                })
            })
        }
        Command::Export {
            out,
            study,
            from,
            to,
            k,
        } => {
            let date =
                |name: &str, v: Option<String>| -> anyhow::Result<Option<chrono::NaiveDate>> {
                    match v {
                        None => Ok(None),
                        Some(s) => chrono::NaiveDate::parse_from_str(&s, "%Y-%m-%d")
                            .map(Some)
                            .map_err(|_| {
                                eprintln!("error: {name}: expected a date YYYY-MM-DD");
                                Exit(exit::DATAERR).into()
                            }),
                    }
                };
            let from = date("from", from)?;
            let to = date("to", to)?;
            let app = open_app(g, OpenMode::Existing, false).await?;
            // Without --out the export goes where the sweep expires it after export.keep:
            // staged under a temporary name, then moved to its id.
            let (out_path, kept) = match out {
                Some(o) => (o, None),
                None => {
                    let dir = service::erasure::exports_dir(&app);
                    service::create_private_dir(&dir)
                        .with_context(|| format!("cannot create {}", dir.display()))?;
                    let staging = dir.join(format!("new-{}", nazorg::domain::reference::token()));
                    (staging, Some(dir))
                }
            };
            let req = nazorg::export::ExportRequest {
                from,
                to,
                out: out_path,
                study,
                k,
            };
            let mut out = nazorg::export::export(&app, &req)
                .await
                .map_err(export_failed)?;
            if let Some(dir) = kept {
                let final_dir = dir.join(&out.export);
                std::fs::rename(&req.out, &final_dir).with_context(|| {
                    format!("cannot move the export to {}", final_dir.display())
                })?;
                out.out = final_dir;
            }
            print(g.json, &out, |o| {
                format!(
                    "export {} written to {}: {} rows of {} children in {} families (k {} requested, {} achieved; {} children suppressed)\n",
                    o.export,
                    o.out.display(),
                    o.rows_out,
                    o.children_out,
                    o.families_out,
                    o.k_requested,
                    o.k_achieved,
                    o.children_suppressed
                )
            })
        }
        Command::Checkin(CheckinCommand::Due { municipality }) => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            let lines = service::checkin::due(&app, municipality.as_deref(), None)
                .await
                .map_err(op_failed)?;
            print(g.json, &lines, |ls| {
                lines_or(ls, "nothing is due", |l| {
                    format!(
                        "{}  {}  wave {}  {}  {}  {}\n",
                        l.checkin, l.family, l.wave, l.due_local, l.municipality, l.state
                    )
                })
            })
        }
        Command::Checkin(CheckinCommand::Record { file } | CheckinCommand::Attempt { file }) => {
            let input = read_input(&file)?;
            let record = nazorg::domain::parse_json(&input).map_err(|e| op_failed(e.into()))?;
            let app = open_app(g, OpenMode::Existing, false).await?;
            let out = service::checkin::record(&app, &record)
                .await
                .map_err(op_failed)?;
            print(g.json, &out, |o| {
                let next = o
                    .next_checkin
                    .as_ref()
                    .map(|n| format!("; next {} due {}", n.id, n.due.to_rfc3339()))
                    .unwrap_or_default();
                match (o.status, o.next_attempt_due) {
                    ("open", Some(retry)) => format!(
                        "attempt {} of {} for family {} not reached; next attempt due {}\n",
                        o.attempt,
                        o.checkin,
                        o.family,
                        retry.to_rfc3339()
                    ),
                    _ => format!(
                        "{} {} for family {} ({}){next}\n",
                        o.status, o.checkin, o.family, o.outcome
                    ),
                }
            })
        }
        Command::Sweep { no_dispatch } => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            let now = app.now();
            let swept = nazorg::sweep::sweep(&app, now)
                .await
                .map_err(|e| op_failed(e.into()))?;
            let sent = if no_dispatch {
                nazorg::dispatcher::DispatchSummary::default()
            } else {
                let transport = nazorg::dispatcher::transport(&app.config.mail)?;
                nazorg::dispatcher::dispatch(&app, &transport, now)
                    .await
                    .map_err(|e| op_failed(e.into()))?
            };
            // The sweep summary is JSON either way: it is meant for scripts and logs.
            println!(
                "{}",
                serde_json::to_string_pretty(
                    &serde_json::json!({"sweep": swept, "dispatch": sent})
                )?
            );
            Ok(())
        }
        Command::Flags(FlagsCommand::List { municipality, open }) => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            let flags = service::signals::list(&app, municipality.as_deref(), open)
                .await
                .map_err(op_failed)?;
            print(g.json, &flags, |fs| {
                lines_or(fs, "no flags", |f| {
                    format!(
                        "{:>6}  {:<6} {:<12} {:<12} {:<14} {:<24} {}\n",
                        f.id,
                        f.severity,
                        f.status,
                        f.family,
                        f.child.as_deref().unwrap_or("-"),
                        f.rule,
                        f.raised_at.to_rfc3339()
                    )
                })
            })
        }
        Command::Member(MemberCommand::Add {
            municipality,
            email,
            name,
        }) => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            let m = service::members::add(&app, &municipality, &email, &name)
                .await
                .map_err(op_failed)?;
            print(g.json, &m, |m| {
                format!("member {} added for {}\n", m.id, m.municipality)
            })
        }
        Command::Member(MemberCommand::List { municipality }) => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            let list = service::members::list(&app, municipality.as_deref())
                .await
                .map_err(op_failed)?;
            print(g.json, &list, |l| {
                l.iter()
                    .map(|m| {
                        format!(
                            "{}  {}  {:<8} {} <{}>\n",
                            m.id,
                            m.municipality,
                            if m.removed_at.is_some() {
                                "removed"
                            } else {
                                "active"
                            },
                            m.name,
                            m.email
                        )
                    })
                    .collect()
            })
        }
        Command::Member(MemberCommand::Remove { id }) => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            service::members::remove(&app, &id)
                .await
                .map_err(op_failed)?;
            print(g.json, &serde_json::json!({"removed": id}), |_| {
                format!("removed {id}\n")
            })
        }
        Command::Flags(FlagsCommand::Ack { id, note, by }) => {
            flag_step(g, id, service::signals::Step::Acknowledge, &note, by).await
        }
        Command::Flags(FlagsCommand::Resolve { id, note, by }) => {
            flag_step(g, id, service::signals::Step::Resolve, &note, by).await
        }
        Command::Outbox(OutboxCommand::List { failed }) => {
            let app = open_app(g, OpenMode::Existing, false).await?;
            let mut conn = app.store.conn().await?;
            let list = nazorg::store::outbox::list(&mut conn, failed)
                .await
                .map_err(|e| op_failed(e.into()))?;
            print(g.json, &list, |l| {
                lines_or(l, "no messages", |m| {
                    format!(
                        "{:>6}  {:<8} {:<11} {:<40} attempts {}{}\n",
                        m.id,
                        m.status,
                        m.kind,
                        m.recipients.join(","),
                        m.attempts,
                        m.last_error
                            .as_ref()
                            .map(|e| format!("  last error: {e}"))
                            .unwrap_or_default()
                    )
                })
            })
        }
    }
}

/// The database as `migrate` names it: the SQLite file, or the URL without its password.
fn database_label(db: &nazorg::config::DatabaseConfig) -> String {
    match db.backend {
        nazorg::config::Backend::Sqlite => db.sqlite_path.display().to_string(),
        nazorg::config::Backend::Postgres => db.display_url(),
    }
}

/// The lines of a list, or one sentence saying it is empty: silence reads like a failure.
fn lines_or<T>(items: &[T], empty: &str, line: impl Fn(&T) -> String) -> String {
    if items.is_empty() {
        format!("{empty}\n")
    } else {
        items.iter().map(line).collect()
    }
}

fn print_handover(o: &service::handover::HandoverCreated) -> String {
    let mut s = format!(
        "handover {} of family {}: {} -> {} from {} (dossier {})\n",
        o.handover,
        o.family,
        o.from,
        o.to,
        o.effective_at.to_rfc3339(),
        o.dossier
    );
    if let Some(p) = &o.supersedes {
        s.push_str(&format!("  supersedes unacknowledged handover {p}\n"));
    }
    s
}

async fn flag_step(
    g: &Global,
    id: i64,
    step: service::signals::Step,
    note: &str,
    by: Option<String>,
) -> anyhow::Result<()> {
    let app = open_app(g, OpenMode::Existing, false).await?;
    let out = service::signals::act(&app, id, step, note, by.as_deref())
        .await
        .map_err(op_failed)?;
    print(g.json, &out, |f| format!("flag {} is {}\n", f.id, f.status))
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
