//! Moves anywhere in the country: a municipality outside the configured region gets its
//! handover at `handover.outside_region_email`, reminded and escalated (to the sending
//! municipality's coordinator); once configured, `handover resend` re-addresses it and
//! sends the dossier that was withheld for lack of a key.

use crate::support::env::*;
use serde_json::Value;
use std::process::Command;

const DESK: &str = "intake@vt-groningen.example.org";
const GRONINGEN: &str = "GM0014";
const TEAM_GRONINGEN: &str = "wijkteam@groningen.example.org";

fn desk_env() -> TestEnv {
    TestEnv::with_changes(&[(
        "[api]",
        &format!("[handover]\noutside_region_email = \"{DESK}\"\n[api]"),
    )])
}

/// (kind, to, cc) of every outbox message of a family, in queue order.
fn mails(env: &TestEnv, family: &str) -> Vec<(String, String, String)> {
    let join = |v: &Value| {
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap())
            .collect::<Vec<_>>()
            .join(",")
    };
    env.outbox()
        .iter()
        .filter(|m| m["family"] == family)
        .map(|m| {
            (
                m["kind"].as_str().unwrap().to_string(),
                join(&m["recipients"]),
                join(&m["cc"]),
            )
        })
        .collect()
}

fn m(kind: &str, to: &str, cc: &str) -> (String, String, String) {
    (kind.into(), to.into(), cc.into())
}

#[test]
fn move_to_an_unconfigured_municipality_then_configured_and_resent() {
    let env = desk_env();
    let fam = env.enrol(
        "2026-12-02T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "MOVEMARK"),
    );
    let family = fam["family"].as_str().unwrap();
    // Thursday 2026-12-03: the family moves to Groningen, not in the config.
    let out = env.run(
        &[
            "--at",
            "2026-12-03T10:00:00+01:00",
            "--json",
            "move",
            family,
            "--to",
            GRONINGEN,
            "--date",
            "2026-12-03",
        ],
        None,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let moved: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(moved["to"], GRONINGEN);
    assert_eq!(moved["dossier"], "withheld", "the desk has no key");
    let h = moved["handover"].as_str().unwrap().to_string();
    // Reminded after two working days, escalated after five: to Amsterdam's coordinator
    // and team (nobody in Groningen coordinates with us), cc the desk. The family's
    // check-in reminders go to the desk meanwhile, with a copy to the sending team.
    env.sweep("2026-12-07T10:00:00+01:00");
    env.sweep("2026-12-10T10:00:00+01:00");
    env.sweep("2026-12-13T10:00:00+01:00");
    let both = format!("{COORD_AMSTERDAM},{TEAM_AMSTERDAM}");
    assert_eq!(
        mails(&env, family),
        vec![
            m("new_family", TEAM_AMSTERDAM, ""),
            m("handover", DESK, ""),
            m("handover_notice", TEAM_AMSTERDAM, ""),
            m("handover_reminder", DESK, ""),
            m("handover_escalation", &both, DESK),
            m("upcoming", DESK, TEAM_AMSTERDAM),
        ]
    );
    let shown = env.json(&[
        "--at",
        "2026-12-13T10:00:00+01:00",
        "family",
        "show",
        family,
    ]);
    assert_eq!(shown["municipality"], GRONINGEN);
    // The escalation is addressed, in its text too, to the coordinator who got it.
    let escalation = env.sql("SELECT body FROM outbox WHERE kind = 'handover_escalation'");
    assert!(
        escalation.lines().any(|l| l.trim() == COORD_AMSTERDAM),
        "{escalation}"
    );
    // No personal data in any of it.
    let bodies = env.sql("SELECT group_concat(body, ' ') FROM outbox");
    assert!(!bodies.contains("MOVEMARK"));

    // Groningen is configured now, with a key: the operator re-addresses the handover and
    // the withheld dossier goes with it.
    let key = env.path("groningen.key");
    let out = Command::new(env!("CARGO_BIN_EXE_nazorg"))
        .arg("keygen")
        .arg("--out")
        .arg(&key)
        .output()
        .unwrap();
    assert!(out.status.success());
    let recipient = String::from_utf8(out.stdout).unwrap().trim().to_string();
    let mut text = std::fs::read_to_string(&env.config_path).unwrap();
    text.push_str(&format!(
        "\n[[municipalities]]\ncode = \"{GRONINGEN}\"\nname = \"Groningen\"\n\
         team_email = \"{TEAM_GRONINGEN}\"\ncoordinator_email = \"coord@vt-groningen.example.org\"\n\
         region = \"VR01\"\nage_recipient = \"{recipient}\"\n"
    ));
    std::fs::write(&env.config_path, text).unwrap();
    let resent = env.json(&[
        "--at",
        "2026-12-14T10:00:00+01:00",
        "handover",
        "resend",
        &h,
    ]);
    assert_eq!(resent["sent_to"], TEAM_GRONINGEN, "{resent}");
    assert_eq!(resent["dossier"], "attached");
    let listed = env.json(&["handover", "list", "--withheld"]);
    assert!(listed.as_array().unwrap().is_empty(), "{listed}");
    // The attachment is a real age file for Groningen's key.
    let file = env.path("resent-dossier.age");
    env.save_blob(
        "SELECT hex(a.bytes) FROM outbox_attachments a JOIN outbox o ON o.id = a.outbox_id \
         WHERE o.kind = 'handover_resend'",
        &file,
    );
    let out = Command::new("age")
        .arg("-d")
        .arg("-i")
        .arg(&key)
        .arg(&file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("MOVEMARK"));
    // Groningen's team acknowledges; nothing is chased any more.
    env.ok(&[
        "--at",
        "2026-12-14T11:00:00+01:00",
        "handover",
        "ack",
        &h,
        "--municipality",
        GRONINGEN,
    ]);
    let n = env.outbox().len();
    env.sweep("2026-12-21T10:00:00+01:00");
    assert!(
        env.outbox()[n..]
            .iter()
            .all(|m| !m["kind"].as_str().unwrap().starts_with("handover")),
        "nothing chased after the acknowledgement"
    );
    // An acknowledged handover whose dossier went is not resent.
    let out = env.run(
        &[
            "--at",
            "2026-12-21T11:00:00+01:00",
            "handover",
            "resend",
            &h,
        ],
        None,
    );
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no withheld dossier"));
}

/// After a move the family shows "no case director" until the receiving team's
/// acknowledgement names one (`--case-director-file`, sealed); a bad file is refused and
/// changes nothing.
#[test]
fn acknowledging_a_move_names_the_new_case_director() {
    let env = TestEnv::new();
    let fam = env.enrol(
        "2026-12-02T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "DIRMARK"),
    );
    let family = fam["family"].as_str().unwrap();
    let at = "2026-12-03T10:00:00+01:00";
    let show = |env: &TestEnv| env.json(&["--at", at, "family", "show", family]);
    assert_eq!(show(&env)["case_director_named"], true);
    assert_eq!(
        show(&env)["details"]["case_director"]["name"],
        CASE_DIRECTOR
    );
    let moved = env.json(&[
        "--at",
        at,
        "move",
        family,
        "--to",
        ROTTERDAM,
        "--date",
        "2026-12-03",
    ]);
    let h = moved["handover"].as_str().unwrap();
    let shown = show(&env);
    assert_eq!(shown["case_director_named"], false);
    assert_eq!(
        shown["details"]["case_director"]["name"],
        "no case director"
    );
    // A bad case director file: refused, nothing changes.
    let before = env.counts();
    for (case, body, needle) in [
        (
            "unknown field",
            r#"{"name": "X", "email": "x@r.example.org", "phone": "1"}"#,
            "phone",
        ),
        (
            "bad email",
            r#"{"name": "X", "email": "not-an-address"}"#,
            "case_director.email",
        ),
    ] {
        let file = env.path("director.json");
        std::fs::write(&file, body).unwrap();
        let out = env.run(
            &[
                "--at",
                at,
                "handover",
                "ack",
                h,
                "--municipality",
                ROTTERDAM,
                "--case-director-file",
                file.to_str().unwrap(),
            ],
            None,
        );
        assert_eq!(out.status.code(), Some(65), "{case}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains(needle),
            "{case}"
        );
        assert_eq!(env.counts(), before, "{case}: the database changed");
    }
    let file = env.path("director.json");
    std::fs::write(
        &file,
        r#"{"name": "DIRMARK-new-director", "email": "regie@rotterdam.example.org"}"#,
    )
    .unwrap();
    env.ok(&[
        "--at",
        at,
        "handover",
        "ack",
        h,
        "--municipality",
        ROTTERDAM,
        "--case-director-file",
        file.to_str().unwrap(),
    ]);
    let shown = show(&env);
    assert_eq!(shown["case_director_named"], true);
    assert_eq!(
        shown["details"]["case_director"]["name"],
        "DIRMARK-new-director"
    );
    assert_eq!(
        shown["details"]["case_director"]["email"],
        "regie@rotterdam.example.org"
    );
    // Sealed: the name is nowhere in the database (file, or pg_dump) in plain text.
    let db = env.stored_bytes();
    assert!(!db.windows(20).any(|w| w == b"DIRMARK-new-director"));
}

/// The receiving team gets an introduction contact two weeks after the move date
/// (`handover.intro`): a check-in of its own, reminded to that team, not a plan wave.
#[test]
fn the_receiving_team_gets_an_introduction_contact() {
    let env = TestEnv::new();
    let fam = env.enrol(
        "2026-12-02T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "INTRO"),
    );
    let family = fam["family"].as_str().unwrap();
    let at = "2026-12-03T10:00:00+01:00";
    env.json(&[
        "--at",
        at,
        "move",
        family,
        "--to",
        ROTTERDAM,
        "--date",
        "2026-12-03",
    ]);
    let shown = env.json(&["--at", at, "family", "show", family]);
    let intro: Vec<&Value> = shown["checkins"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["wave"].as_i64().unwrap() > 1000)
        .collect();
    assert_eq!(intro.len(), 1, "{shown}");
    // 2026-12-03 + 14 days, 09:00 local.
    assert_eq!(intro[0]["due"], "2026-12-17T08:00:00Z");
    assert_eq!(intro[0]["wave"], 1001);
    // In time order among the plan's check-ins (after C1 on 12-15, before C2 in January).
    let order: Vec<i64> = shown["checkins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["wave"].as_i64().unwrap())
        .collect();
    assert_eq!(order[..3], [1, 1001, 2]);
    let id = intro[0]["id"].as_str().unwrap().to_string();
    env.sweep("2026-12-17T10:00:00+01:00");
    let due: Vec<Value> = env
        .outbox()
        .into_iter()
        .filter(|m| m["kind"] == "due" && m["key"].as_str().unwrap().contains(&id))
        .collect();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0]["recipients"][0], TEAM_ROTTERDAM);
}

/// The API's acknowledgement names the case director the same way.
#[test]
fn the_api_acknowledgement_names_the_case_director() {
    use crate::support::daemon::Daemon;
    use crate::support::http;
    use std::time::Duration;
    let env = TestEnv::new();
    let fam = env.enrol(
        "2026-12-02T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-12-01", "APIDIR"),
    );
    let family = fam["family"].as_str().unwrap();
    let at = "2026-12-03T10:00:00+01:00";
    let moved = env.json(&[
        "--at",
        at,
        "move",
        family,
        "--to",
        ROTTERDAM,
        "--date",
        "2026-12-03",
    ]);
    let h = moved["handover"].as_str().unwrap();
    let token = env.json(&[
        "token",
        "create",
        "--municipality",
        ROTTERDAM,
        "--label",
        "cs",
    ]);
    let token = token["token"].as_str().unwrap().to_string();
    let mut d = Daemon::spawn(
        &env,
        "serve",
        &["--at", "2026-12-04T10:00:00+01:00", "serve"],
        None,
    );
    d.wait_log("nazorg daemon ready", Duration::from_secs(20));
    let addr: std::net::SocketAddr = d
        .log()
        .lines()
        .find(|l| l.contains("api listening"))
        .and_then(|l| l.split("addr=").nth(1))
        .and_then(|a| a.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();
    let body = serde_json::json!({"case_director": {"name": "APIDIR-new", "email": "regie@rotterdam.example.org"}});
    let r = http::post_json(addr, &format!("/v1/handovers/{h}/ack"), Some(&token), &body);
    assert_eq!(r.status, 200, "{}", r.text());
    d.terminate();
    let shown = env.json(&[
        "--at",
        "2026-12-04T11:00:00+01:00",
        "family",
        "show",
        family,
    ]);
    assert_eq!(shown["case_director_named"], true);
    assert_eq!(shown["details"]["case_director"]["name"], "APIDIR-new");
}
