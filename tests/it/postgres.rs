//! What only PostgreSQL offers (issue 13): several `nazorg serve` processes on one database
//! behaving as one, migrations started at once, and a daemon that survives losing its
//! database. On SQLite these tests say so and return (SQLite refuses a second daemon, see
//! `daemon::second_daemon_on_the_same_database_is_refused`).

use crate::support::daemon::Daemon;
use crate::support::env::*;
use crate::support::http;
use crate::support::smtp::SmtpServer;
use chrono::{DateTime, Duration as Days, Utc};
use rand::Rng;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const EPISODE: &str = "2026-01-05";
const ENROL_AT: &str = "2026-01-06T10:00:00+01:00";
const FAMILIES: usize = 8;
const ROUNDS: usize = 20;
/// Simulated days between two rounds: 20 rounds cover a year of the plans.
const DAYS_PER_ROUND: i64 = 19;

fn start_instant() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-01-12T10:00:00+01:00")
        .unwrap()
        .with_timezone(&Utc)
}

/// Polls (≤ 30 s, 100 ms steps) until `cond` holds.
fn poll(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The Message-ID header of a raw message.
fn message_id(raw: &str) -> String {
    raw.lines()
        .find_map(|l| {
            l.strip_prefix("Message-ID:")
                .or_else(|| l.strip_prefix("Message-Id:"))
        })
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| panic!("a message without Message-ID:\n{raw}"))
}

/// Two daemons on one database through a simulated year: in each of 20 rounds both start at
/// the round's instant (catching up: sweep and dispatch at once), and one of them, chosen at
/// random, is SIGKILLed at a random moment of its start, sweep or sending. The survivor
/// finishes the round; what the dead one had claimed is taken over in a later round when its
/// lease has run out. Counted at the SMTP server by Message-ID: every outbox message arrives,
/// none is lost, and the two daemons never both send one. The one exception SMTP allows: a
/// daemon killed after the relay took a message but before it heard the relay's "250" cannot
/// know it was sent, so that message arrives again (at most one repeat per kill), with the
/// same Message-ID, for the receiver to recognise.
#[test]
fn two_daemons_on_postgres_deliver_every_message_through_twenty_sigkills() {
    let server = SmtpServer::start();
    let env = TestEnv::with_mail(&format!("transport = \"smtp\"\nurl = \"{}\"", server.url()));
    if env.skip_unless_postgres("two daemons on one database need PostgreSQL") {
        return;
    }
    for i in 0..FAMILIES {
        let muni = if i % 2 == 0 { AMSTERDAM } else { ROTTERDAM };
        env.enrol(
            ENROL_AT,
            &family_body(muni, "standard", EPISODE, &format!("MULTI{i}")),
        );
    }
    let mut rng = rand::thread_rng();
    let mut kills_mid_work = 0;
    for round in 0..ROUNDS {
        let at = start_instant() + Days::days(DAYS_PER_ROUND * i64::try_from(round).unwrap());
        let at_s = at.to_rfc3339();
        let a = Daemon::spawn(&env, &format!("a{round}"), &["--at", &at_s, "serve"], None);
        let b = Daemon::spawn(&env, &format!("b{round}"), &["--at", &at_s, "serve"], None);
        // A random moment: before, during or after the catch-up sweep and sending.
        std::thread::sleep(Duration::from_millis(rng.gen_range(50..1500)));
        let (victim, mut survivor) = if rng.gen_bool(0.5) { (a, b) } else { (b, a) };
        victim.signal("-KILL");
        drop(victim);
        let pending_now = env.sql("SELECT COUNT(*) FROM outbox WHERE status = 'pending'");
        if pending_now != "0" {
            kills_mid_work += 1;
        }
        survivor.wait_log("nazorg daemon ready", Duration::from_secs(30));
        // The survivor's sweep of this instant is recorded, and nothing it may take is left
        // (what the dead daemon claimed waits for its lease to run out).
        let at_secs = at.timestamp();
        poll("the survivor's round", || {
            env.sql(&format!("SELECT COUNT(*) FROM sweeps WHERE at >= {at_secs}")) != "0"
                && env.sql(
                    "SELECT COUNT(*) FROM outbox WHERE status = 'pending' AND claimed_until IS NULL",
                ) == "0"
        });
        survivor.terminate();
    }
    eprintln!("{ROUNDS} rounds, {kills_mid_work} kills with messages still pending");

    // Well after the last lease: one daemon finishes whatever the killed ones left.
    let end = start_instant() + Days::days(DAYS_PER_ROUND * i64::try_from(ROUNDS).unwrap());
    let mut last = Daemon::spawn(&env, "last", &["--at", &end.to_rfc3339(), "serve"], None);
    last.wait_log("nazorg daemon ready", Duration::from_secs(30));
    poll("every message sent", || {
        env.sql("SELECT COUNT(*) FROM outbox WHERE status != 'sent'") == "0"
            && env.sql(&format!(
                "SELECT COUNT(*) FROM sweeps WHERE at >= {}",
                end.timestamp()
            )) != "0"
    });
    last.terminate();

    let outbox = env.outbox();
    assert!(
        outbox.len() > FAMILIES * 5,
        "a year of reminders for {FAMILIES} families, got {}",
        outbox.len()
    );
    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for raw in server.messages() {
        *seen.entry(message_id(&raw)).or_default() += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    eprintln!(
        "{} messages, {} Message-IDs at the server, {} resent after a kill mid-send",
        outbox.len(),
        seen.len(),
        twice.len()
    );
    // At most one repeat per stop while sending (a message in flight at two stops arrives
    // three times). A stop is a kill, or a SIGTERM that cut off the send in flight (the
    // dispatcher stops within 10 s whatever the relay does, and sends that one again
    // later with the same Message-ID): each round's survivor and the last daemon are
    // stopped so, while possibly sending.
    let repeats: usize = seen.values().map(|n| n - 1).sum();
    let stops = kills_mid_work + ROUNDS + 1;
    assert!(
        repeats <= stops,
        "more repeats ({repeats}) than stops while sending ({kills_mid_work} kills, \
         {} SIGTERMs): {twice:?}",
        ROUNDS + 1
    );
    assert_eq!(
        seen.len(),
        outbox.len(),
        "every outbox message arrives at the SMTP server, once"
    );
    assert_eq!(
        env.sql("SELECT COUNT(*) - COUNT(DISTINCT key) FROM outbox"),
        "0"
    );
    // One notice per check-in and stage: no sweep ran twice over the same work.
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM (SELECT family_ref, subject FROM outbox GROUP BY 1, 2 HAVING COUNT(*) > 1) d"),
        "0"
    );
}

/// `nazorg migrate` started several times at once on an empty database: all succeed (the
/// migrator's advisory lock makes them take turns) and the schema is there once.
#[test]
fn concurrent_migrations_on_postgres_take_turns() {
    let env = TestEnv::new();
    if env.skip_unless_postgres("concurrent migrations need PostgreSQL") {
        return;
    }
    // A fresh, empty database on the same server for this installation.
    env.sql("DROP SCHEMA public CASCADE; CREATE SCHEMA public");
    let children: Vec<_> = (0..4)
        .map(|_| env.command(&["migrate"]).output_in_background())
        .collect();
    for child in children {
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "a concurrent migrate failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let applied = env.sql("SELECT COUNT(*) FROM _sqlx_migrations WHERE success");
    let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
        .unwrap()
        .count();
    assert_eq!(applied, files.to_string());
    env.enrol(
        ENROL_AT,
        &family_body(AMSTERDAM, "standard", EPISODE, "MIGRATED"),
    );
    assert_eq!(env.sql("SELECT COUNT(*) FROM families"), "1");
}

trait Background {
    fn output_in_background(self) -> std::process::Child;
}

impl Background for std::process::Command {
    fn output_in_background(mut self) -> std::process::Child {
        self.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    }
}

fn api_addr(d: &mut Daemon) -> std::net::SocketAddr {
    d.wait_log("api listening", Duration::from_secs(20));
    d.log()
        .lines()
        .find(|l| l.contains("api listening"))
        .and_then(|l| l.split("addr=").nth(1))
        .and_then(|a| a.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap()
}

/// The database goes away under a running daemon (its connections cut, new ones refused,
/// as while PostgreSQL restarts): the daemon stays up, `/healthz` still answers, `/readyz`
/// says the database is unavailable; when the database is back `/readyz` recovers and the
/// work goes on (messages written meanwhile are sent by the daemon).
#[test]
fn a_lost_database_connection_is_survived_and_readiness_recovers() {
    let env = TestEnv::with_changes(&[("interval = \"PT30S\"", "interval = \"PT2S\"")]);
    let Some(url) = env.postgres_url() else {
        eprintln!("skipped on SQLite: cuts PostgreSQL connections");
        return;
    };
    let admin = std::env::var("NAZORG_TEST_DATABASE_URL").unwrap();
    let name = database_name(&url).to_string();
    env.enrol(
        ENROL_AT,
        &family_body(AMSTERDAM, "standard", EPISODE, "LOSS"),
    );
    let serve_at = "2026-03-02T10:00:00+01:00";
    let mut d = Daemon::spawn(&env, "loss", &["--at", serve_at, "serve"], None);
    let addr = api_addr(&mut d);
    d.wait_log("nazorg daemon ready", Duration::from_secs(20));
    let all_sent = || {
        env.sql("SELECT COUNT(*) FROM outbox WHERE status != 'sent'") == "0"
            && env.sql("SELECT COUNT(*) FROM outbox") == env.eml_files().len().to_string()
    };
    poll("the overdue reminders sent", || {
        env.eml_files().len() >= 2 && all_sent()
    });
    let sent_before = env.eml_files().len();
    poll("ready", || http::get(addr, "/readyz", None).status == 200);

    // The database goes away.
    psql(
        &admin,
        &format!(
            "ALTER DATABASE {name} WITH ALLOW_CONNECTIONS false; \
             SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '{name}'"
        ),
    );
    let mut ready = http::get(addr, "/readyz", None);
    poll("readiness to notice", || {
        ready = http::get(addr, "/readyz", None);
        ready.status == 503
    });
    assert!(ready.text().contains("database"), "{}", ready.text());
    assert_eq!(http::get(addr, "/healthz", None).status, 200);
    std::thread::sleep(Duration::from_secs(3));
    assert!(
        d.running(),
        "the daemon died with its database:\n{}",
        d.log()
    );

    // It comes back; the daemon reconnects by itself.
    psql(
        &admin,
        &format!("ALTER DATABASE {name} WITH ALLOW_CONNECTIONS true"),
    );
    poll("readiness to recover", || {
        http::get(addr, "/readyz", None).status == 200
    });
    // And works: a message written now is sent by the daemon's dispatcher.
    env.enrol(
        ENROL_AT,
        &family_body(ROTTERDAM, "standard", EPISODE, "LOSSTWO"),
    );
    env.ok(&["--at", serve_at, "sweep", "--no-dispatch"]);
    poll("the new family's messages sent by the daemon", || {
        env.eml_files().len() >= sent_before + 2 && all_sent()
    });
    let log = d.terminate();
    assert!(!log.contains("LOSS"), "personal data in the log:\n{log}");
}

/// A SQLite installation in a PostgreSQL run: the config's URL spelled so the test support
/// leaves it on SQLite.
fn sqlite_env() -> TestEnv {
    TestEnv::with_changes(&[(
        "url = \"sqlite://var/nazorg.db\"",
        "url = \"sqlite://var/./nazorg.db\"",
    )])
}

/// Gives `to` the identity of `from`, so it can open the families copied from it.
fn share_identity(from: &TestEnv, to: &TestEnv) {
    std::fs::copy(from.path("var/nazorg.key"), to.path("var/nazorg.key")).unwrap();
}

/// `nazorg copy-database` moves an installation from SQLite to PostgreSQL and back: every
/// table's rows arrive (the same counts, states and sealed bytes), the audit chain verifies
/// on each target, the families open there with the same identity, new rows continue after
/// the copied ids, and a target that is not empty is refused.
#[test]
fn copy_database_moves_an_installation_to_postgres_and_back() {
    if std::env::var("NAZORG_TEST_DATABASE_URL").is_err() {
        eprintln!("skipped on SQLite: needs a PostgreSQL server");
        return;
    }
    let sq = sqlite_env();
    assert!(!sq.on_postgres());
    let mut refs = Vec::new();
    for (i, muni) in [AMSTERDAM, ROTTERDAM, AMSTERDAM].iter().enumerate() {
        let f = sq.enrol(
            ENROL_AT,
            &family_body(muni, "standard", EPISODE, &format!("COPY{i}")),
        );
        refs.push(f["family"].as_str().unwrap().to_string());
    }
    sq.sweep("2026-03-02T10:00:00+01:00");
    sq.ok(&["family", "show", &refs[0]]);
    let before = sq.counts();
    let shown = sq.json(&["family", "show", &refs[1]]);

    // SQLite → PostgreSQL.
    let pg = TestEnv::new();
    let pg_url = pg.postgres_url().unwrap();
    share_identity(&sq, &pg);
    let from = format!("sqlite://{}", sq.db_path().display());
    let report = sq.json(&["copy-database", "--from", &from, "--to", &pg_url]);
    let families = report["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "families")
        .unwrap()["rows"]
        .clone();
    assert_eq!(families, 3, "{report}");
    assert_eq!(pg.counts(), before);
    pg.ok(&["audit", "verify"]);
    assert_eq!(pg.json(&["family", "show", &refs[1]]), shown);

    // Into a database that is not empty: refused, nothing added.
    let again = sq.run(&["copy-database", "--from", &from, "--to", &pg_url], None);
    assert_eq!(again.status.code(), Some(65));
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("not empty"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(pg.counts(), before);

    // And back: PostgreSQL → a new SQLite file.
    let back = sqlite_env();
    share_identity(&sq, &back);
    let to = format!("sqlite://{}", back.db_path().display());
    pg.ok(&["copy-database", "--from", &pg_url, "--to", &to]);
    assert_eq!(back.counts(), before);
    back.ok(&["audit", "verify"]);
    assert_eq!(back.json(&["family", "show", &refs[1]]), shown);

    // The PostgreSQL copy goes on from the copied ids.
    pg.enrol(
        ENROL_AT,
        &family_body(ROTTERDAM, "standard", EPISODE, "COPYNEW"),
    );
    assert_eq!(pg.sql("SELECT COUNT(*) FROM families"), "4");
}

/// The database connection is cut in the middle of a sweep (as when PostgreSQL restarts):
/// the sweep stops with an error, its open transaction rolls back, and the next sweep does
/// the rest: the same messages as an uncut sweep over the same families (by kind), none
/// written twice.
#[test]
fn a_sweep_cut_off_by_a_lost_connection_loses_and_duplicates_nothing() {
    let env = TestEnv::new();
    let Some(url) = env.postgres_url() else {
        eprintln!("skipped on SQLite: cuts PostgreSQL connections");
        return;
    };
    let reference = TestEnv::new();
    let admin = std::env::var("NAZORG_TEST_DATABASE_URL").unwrap();
    let name = database_name(&url).to_string();
    const N: usize = 20;
    for i in 0..N {
        let muni = if i % 2 == 0 { AMSTERDAM } else { ROTTERDAM };
        for e in [&env, &reference] {
            e.enrol(
                ENROL_AT,
                &family_body(muni, "standard", EPISODE, &format!("CUT{i}")),
            );
        }
    }
    // At 2026-11-25 five slots per family are overdue, and red alerts are due.
    let at = "2026-11-25T10:00:00+01:00";
    reference.ok(&["--at", at, "sweep", "--no-dispatch"]);
    let by_kind = "SELECT kind, COUNT(*) FROM outbox GROUP BY kind ORDER BY kind";
    let expected = reference.sql(by_kind);
    let mut sweeping = env
        .command(&["--at", at, "sweep", "--no-dispatch"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut rng = rand::thread_rng();
    std::thread::sleep(Duration::from_millis(rng.gen_range(20..120)));
    // Cut every connection until the sweep gives up (a server that stays down a while).
    let started = Instant::now();
    let first = loop {
        psql(
            &admin,
            &format!(
                "SELECT COUNT(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE datname = '{name}'"
            ),
        );
        if let Some(st) = sweeping.try_wait().unwrap() {
            break st;
        }
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the cut sweep hangs"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let written = env.sql("SELECT COUNT(*) FROM outbox");
    eprintln!(
        "the cut sweep exited with {first}, {written} of {} messages written",
        reference.sql("SELECT COUNT(*) FROM outbox")
    );
    env.ok(&["--at", at, "sweep", "--no-dispatch"]);
    assert_eq!(env.sql(by_kind), expected);
    assert_eq!(
        env.sql("SELECT COUNT(*) - COUNT(DISTINCT key) FROM outbox"),
        "0"
    );
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM checkins WHERE overdue_count = 1"),
        reference.sql("SELECT COUNT(*) FROM checkins WHERE overdue_count = 1")
    );
}
