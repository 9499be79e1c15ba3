//! Issue 10 item 3: the audit trail cannot be rewritten by someone with database access.
//! Entries carry an HMAC-SHA256 under a key wrapped by the KEK; triggers refuse UPDATE and
//! DELETE; each sweep logs the head, which `audit verify --head` checks.

use crate::support::env::{AMSTERDAM, TestEnv, family_body};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::process::Command;

const DATAERR: i32 = 65;

/// Three enrolments and three reads: six entries.
fn busy_env() -> TestEnv {
    let env = TestEnv::new();
    for i in 0..3 {
        let fam = env.enrol(
            "2026-12-02T10:00:00+01:00",
            &family_body(AMSTERDAM, "standard", "2026-12-01", &format!("Aud{i}")),
        );
        env.ok(&["family", "show", fam["family"].as_str().unwrap()]);
    }
    env
}

/// What an attacker with the sqlite3 CLI (or psql) and no KEK does first.
fn drop_triggers(env: &TestEnv) {
    if env.on_postgres() {
        env.sql("DROP TRIGGER audit_no_update ON audit; DROP TRIGGER audit_no_delete ON audit");
    } else {
        env.sql("DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete");
    }
}

/// A BLOB/BYTEA literal from hex, in the engine's spelling.
fn blob(env: &TestEnv, hex: &str) -> String {
    if env.on_postgres() {
        format!("decode('{hex}', 'hex')")
    } else {
        format!("X'{hex}'")
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> Vec<u8> {
    (0..s.len() / 2)
        .map(|i| u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap())
        .collect()
}

fn field(h: &mut Sha256, v: &[u8]) {
    h.update((v.len() as u64).to_be_bytes());
    h.update(v);
}

/// The published plain (version 1) entry hash, as anyone can compute it.
fn plain_hash(prev: &[u8], row: &Value) -> Vec<u8> {
    let mut h = Sha256::new();
    h.update(b"nazorg/audit/v1");
    field(&mut h, prev);
    h.update(row["seq"].as_i64().unwrap().to_be_bytes());
    h.update(row["at"].as_i64().unwrap().to_be_bytes());
    field(&mut h, row["actor"].as_str().unwrap().as_bytes());
    field(&mut h, row["action"].as_str().unwrap().as_bytes());
    for k in ["family_ref", "subject", "detail"] {
        match row[k].as_str() {
            Some(v) => {
                h.update([1]);
                field(&mut h, v.as_bytes());
            }
            None => h.update([0]),
        }
    }
    h.finalize().to_vec()
}

fn audit_rows(env: &TestEnv) -> Vec<Value> {
    let query = "SELECT seq, at, actor, action, family_ref, subject, detail, hex(prev_hash) AS prev, \
                 hex(hash) AS hash, version FROM audit ORDER BY seq";
    if env.on_postgres() {
        let json = env.sql(&format!(
            "SELECT COALESCE(json_agg(t), '[]') FROM ({query}) t"
        ));
        return serde_json::from_str(&json).unwrap();
    }
    let out = Command::new("sqlite3")
        .arg("-json")
        .arg(env.db_path())
        .arg(query)
        .output()
        .unwrap();
    assert!(out.status.success());
    serde_json::from_slice(&out.stdout).unwrap()
}

/// Rewrites entries `from..` as an attacker without the key would: `edit` changes rows, then
/// every hash from `from` on is recomputed the plain SHA-256 way and chained; `version`
/// decides what the rows claim to be.
fn rechain_plain(env: &TestEnv, from: i64, version: i64, edit: impl Fn(&mut Value)) {
    let rows = audit_rows(env);
    let mut prev = vec![0u8; 32];
    let mut sql = String::new();
    for mut row in rows {
        let seq = row["seq"].as_i64().unwrap();
        if seq < from {
            prev = unhex(row["hash"].as_str().unwrap());
            continue;
        }
        edit(&mut row);
        let hash = plain_hash(&prev, &row);
        sql.push_str(&format!(
            "UPDATE audit SET action = '{}', detail = {}, prev_hash = {}, hash = {}, version = {version} WHERE seq = {seq};",
            row["action"].as_str().unwrap(),
            row["detail"]
                .as_str()
                .map(|d| format!("'{d}'"))
                .unwrap_or("NULL".into()),
            blob(env, &hex(&prev)),
            blob(env, &hex(&hash))
        ));
        prev = hash;
    }
    env.sql(&sql);
}

fn verify_fails(env: &TestEnv, extra: &[&str]) -> Value {
    let mut args = vec!["--json", "audit", "verify"];
    args.extend_from_slice(extra);
    let out = env.run(&args, None);
    assert_eq!(
        out.status.code(),
        Some(DATAERR),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn verify_ok(env: &TestEnv, extra: &[&str]) -> Value {
    let mut args = vec!["audit", "verify"];
    args.extend_from_slice(extra);
    let v = env.json(&args);
    assert!(v["problems"].as_array().unwrap().is_empty(), "{v}");
    assert!(v["first_forged"].is_null(), "{v}");
    v
}

#[test]
fn forged_entry_with_recomputed_plain_hashes_is_named() {
    let env = busy_env();
    let v = verify_ok(&env, &[]);
    assert_eq!(v["entries"], 6);
    assert_eq!(
        v["keyed_from"], 1,
        "a new installation is keyed from its first entry"
    );
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM audit WHERE version != 2"),
        "0"
    );
    drop_triggers(&env);
    env.sql("CREATE TABLE audit_backup AS SELECT * FROM audit");
    let restore = || env.sql("DELETE FROM audit; INSERT INTO audit SELECT * FROM audit_backup");

    // Entry 3 (an enrolment) becomes something else; the attacker recomputes 3..6 with plain
    // SHA-256, once leaving the rows marked keyed and once marking them plain.
    for version in [2, 1] {
        rechain_plain(&env, 3, version, |row| {
            if row["seq"] == 3 {
                row["action"] = "token.revoke".into();
            }
        });
        let v = verify_fails(&env, &[]);
        assert_eq!(v["first_forged"], 3, "{v}");
        let problems = v["problems"].to_string();
        assert!(problems.contains("entry 3 is forged"), "{problems}");
        // The human output names it too.
        let out = env.run(&["audit", "verify"], None);
        assert_eq!(out.status.code(), Some(DATAERR));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("the first forged entry is 3"),
            "version {version}: {text}"
        );
        restore();
    }
    verify_ok(&env, &[]);
}

#[test]
fn removed_tail_is_caught_by_the_logged_head() {
    let env = busy_env();
    // The sweep logs the head to the journal (stderr here).
    let out = env.run(&["--at", "2026-12-03T10:00:00+01:00", "sweep"], None);
    assert!(out.status.success());
    let log = String::from_utf8_lossy(&out.stderr);
    let line = log
        .lines()
        .find(|l| l.contains("audit head") && l.contains("INFO"))
        .unwrap_or_else(|| panic!("no audit head in the sweep log:\n{log}"));
    let head = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("audit_head="))
        .unwrap()
        .to_string();
    let (seq, mac) = head.split_once(':').unwrap();
    let seq: i64 = seq.parse().unwrap();
    assert_eq!(mac.len(), 64);
    assert_eq!(
        env.sql(&format!(
            "SELECT lower(hex(hash)) FROM audit WHERE seq = {seq}"
        )),
        mac
    );
    assert_eq!(env.sql("SELECT MAX(seq) FROM audit"), seq.to_string());
    verify_ok(&env, &["--head", &head]);

    // More work after the anchor; then someone removes the tail, anchored entry included.
    env.ok(&["token", "create", "--admin"]);
    verify_ok(&env, &["--head", &head]);
    drop_triggers(&env);
    env.sql(&format!("DELETE FROM audit WHERE seq >= {seq}"));
    // The rest of the chain is still consistent on its own ...
    verify_ok(&env, &[]);
    // ... but not with the head recorded elsewhere.
    let v = verify_fails(&env, &["--head", &head]);
    assert_eq!(v["first_forged"], seq, "{v}");
    assert!(v["problems"].to_string().contains("missing"), "{v}");

    // A head whose MAC differs (a rewritten chain) is refused as well.
    let env = busy_env();
    let wrong = format!("2:{}", "0".repeat(64));
    let v = verify_fails(&env, &["--head", &wrong]);
    assert_eq!(v["first_forged"], 2, "{v}");

    // A malformed head is a usage error naming the option; nothing is checked.
    let out = env.run(&["audit", "verify", "--head", "2:zz"], None);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--head"));
}

#[test]
fn triggers_refuse_update_and_delete() {
    let env = busy_env();
    let before = env.sql("SELECT group_concat(seq || action || hex(hash), ',') FROM audit");
    for sql in [
        "UPDATE audit SET action = 'family.read' WHERE seq = 2",
        "DELETE FROM audit WHERE seq = 6",
        "DELETE FROM audit",
    ] {
        let out = match env.postgres_url() {
            Some(url) => Command::new("psql")
                .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", &url, "-c", sql])
                .output()
                .unwrap(),
            None => Command::new("sqlite3")
                .arg(env.db_path())
                .arg(sql)
                .output()
                .unwrap(),
        };
        assert!(!out.status.success(), "{sql} was allowed");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("append-only"),
            "{sql}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        env.sql("SELECT group_concat(seq || action || hex(hash), ',') FROM audit"),
        before
    );
    // Erasure keeps the audit rows.
    let fam = env.sql("SELECT ref FROM families LIMIT 1");
    let out = env.run(
        &[
            "family",
            "erase",
            &fam,
            "--reason",
            "data_subject_request",
            "--yes",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(env.sql("SELECT COUNT(*) FROM audit"), "7");
    verify_ok(&env, &[]);
}

#[test]
fn chain_verifies_after_new_kek_rotation() {
    let env = busy_env();
    let kek_before = env.sql("SELECT kek_id FROM audit_key");
    let wrapped_before = env.sql("SELECT hex(wrapped_key) FROM audit_key");
    env.ok(&["keys", "rotate", "--new-kek"]);
    assert_ne!(env.sql("SELECT kek_id FROM audit_key"), kek_before);
    assert_ne!(
        env.sql("SELECT hex(wrapped_key) FROM audit_key"),
        wrapped_before
    );
    assert_eq!(
        env.sql(&format!(
            "SELECT retired_at IS NOT NULL FROM keks WHERE id = {kek_before}"
        )),
        "1",
        "the old KEK is retired"
    );
    let v = verify_ok(&env, &[]);
    assert_eq!(v["entries"], 7);
    env.ok(&[
        "family",
        "show",
        &env.sql("SELECT ref FROM families LIMIT 1"),
    ]);
    let v = verify_ok(&env, &[]);
    assert_eq!(v["entries"], 8);
    assert_eq!(v["keyed_from"], 1);
}

/// An installation from before the audit key: its plain entries keep verifying, the first
/// use makes the key, and the first keyed entry protects the plain ones before it.
#[test]
fn plain_entries_of_an_upgraded_installation_keep_verifying() {
    let env = busy_env();
    // Make it look like a database written before the key existed.
    drop_triggers(&env);
    env.sql("DELETE FROM audit_key");
    rechain_plain(&env, 1, 1, |_| {});
    if env.on_postgres() {
        env.sql(
            "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit FOR EACH ROW EXECUTE FUNCTION audit_append_only(); \
             CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit FOR EACH ROW EXECUTE FUNCTION audit_append_only();",
        );
    } else {
        env.sql(
            "CREATE TRIGGER audit_no_update BEFORE UPDATE ON audit BEGIN SELECT RAISE(ABORT, 'append-only'); END; \
             CREATE TRIGGER audit_no_delete BEFORE DELETE ON audit BEGIN SELECT RAISE(ABORT, 'append-only'); END;",
        );
    }
    let v = verify_ok(&env, &[]);
    assert!(v["keyed_from"].is_null(), "{v}");

    // First use after the upgrade: the key is made, covering entry 7 on.
    env.ok(&[
        "family",
        "show",
        &env.sql("SELECT ref FROM families LIMIT 1"),
    ]);
    assert_eq!(env.sql("SELECT first_seq FROM audit_key"), "7");
    assert_eq!(
        env.sql("SELECT group_concat(CAST(version AS TEXT), '') FROM (SELECT version FROM audit ORDER BY seq) a"),
        "1111112"
    );
    let v = verify_ok(&env, &[]);
    assert_eq!(v["keyed_from"], 7);
    assert_eq!(v["entries"], 7);

    // Rewriting a plain entry (and recomputing the plain hashes after it) breaks the first
    // keyed entry's MAC.
    drop_triggers(&env);
    rechain_plain(&env, 2, 1, |row| {
        if row["seq"] == 2 {
            row["action"] = "token.revoke".into();
        }
    });
    env.sql("UPDATE audit SET prev_hash = (SELECT hash FROM audit WHERE seq = 6) WHERE seq = 7");
    let v = verify_fails(&env, &[]);
    assert_eq!(v["first_forged"], 7, "{v}");
}

/// Entries appended together (bulk enrolment) chain exactly as entries appended one by one,
/// also across the multi-row statements a long run is cut into, and a forged one among them
/// is still named.
#[tokio::test]
async fn entries_appended_together_chain_as_entries_appended_one_by_one() {
    use nazorg::audit::{self, Actor, Entry};
    let env = busy_env();
    let clock = nazorg::clock::ManualClock::new(chrono::Utc::now());
    let app = env.app(std::sync::Arc::new(clock)).await;
    let families: Vec<String> = (0..3300).map(|i| format!("F-BULK{i}")).collect();
    let entries: Vec<(i64, Entry<'_>)> = families
        .iter()
        .enumerate()
        .map(|(i, f)| {
            (
                1_700_000_000 + i as i64,
                Entry {
                    action: "test.bulk",
                    family: Some(f),
                    detail: (i % 2 == 0).then_some("even"),
                    ..Default::default()
                },
            )
        })
        .collect();
    let mut tx = app.store.write().await.unwrap();
    let seqs = audit::append_many(&mut tx, &app.keyring, &Actor::Operator, &entries)
        .await
        .unwrap();
    assert_eq!(seqs, 7..3307);
    let after = audit::append(&mut tx, &app.keyring, &Actor::System, 1, &Entry::default())
        .await
        .unwrap();
    assert_eq!(after, 3307);
    tx.commit().await.unwrap();
    app.store.close().await;
    let v = verify_ok(&env, &[]);
    assert_eq!(v["entries"], 3307);
    drop_triggers(&env);
    env.sql("UPDATE audit SET detail = 'odd' WHERE seq = 3300");
    let v = verify_fails(&env, &[]);
    assert_eq!(v["first_forged"], 3300, "{v}");
}

/// An append chains to the entry the process appended last without reading the head, but
/// only while that entry is still the head: after a rolled-back append, and after another
/// process's entries, the next entry chains to the real head and the chain verifies.
#[test]
fn appends_chain_to_the_real_head_after_a_rollback_and_another_process() {
    use nazorg::audit::Entry;
    use nazorg::clock::ManualClock;
    use std::sync::Arc;

    let env = busy_env();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let at = chrono::DateTime::parse_from_rfc3339("2026-12-03T10:00:00+01:00")
        .unwrap()
        .with_timezone(&chrono::Utc);
    let app = rt.block_on(env.app(Arc::new(ManualClock::new(at))));
    let entry = |action| Entry {
        action,
        ..Default::default()
    };
    rt.block_on(async {
        let mut tx = app.store.write().await.unwrap();
        app.audit(&mut tx, &entry("test.kept")).await.unwrap();
        tx.commit().await.unwrap();
        let mut tx = app.store.write().await.unwrap();
        app.audit(&mut tx, &entry("test.rolled_back"))
            .await
            .unwrap();
        tx.rollback().await.unwrap();
        let mut tx = app.store.write().await.unwrap();
        app.audit(&mut tx, &entry("test.after_rollback"))
            .await
            .unwrap();
        app.audit(&mut tx, &entry("test.same_transaction"))
            .await
            .unwrap();
        tx.commit().await.unwrap();
    });
    // Another process appends (a read of a family is audited).
    let fam = env.sql("SELECT ref FROM families ORDER BY id LIMIT 1");
    env.ok(&["family", "show", &fam]);
    rt.block_on(async {
        let mut tx = app.store.write().await.unwrap();
        app.audit(&mut tx, &entry("test.after_another"))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        app.store.close().await;
    });
    let v = verify_ok(&env, &[]);
    assert_eq!(v["entries"], 6 + 5);
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM audit WHERE action = 'test.rolled_back'"),
        "0"
    );
}
