//! Issue 10 item 5: only the responsible team changes a family. Before a move's date the
//! sending team is responsible (the receiving team may read, not change); from the date on
//! the receiving team is (the sending team may read until it acknowledges, not change).
//! A team that may read the family but is not responsible gets 403 `not_responsible`; a
//! team that may not see it at all keeps getting 404. One case per API route that changes a
//! family: close, record, move, flag ack, flag resolve, evaluation (erase is CLI only).

use crate::support::daemon::Daemon;
use crate::support::env::{AMSTERDAM, ROTTERDAM, TestEnv, family_body};
use crate::support::http::{self, Response};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::time::Duration;

/// The daemon's clock starts here and runs on.
const SERVE_AT: &str = "2026-12-20T10:00:00+01:00";

struct Family {
    reference: String,
    /// An open check-in.
    checkin: String,
    /// An open flag.
    flag: i64,
}

/// A family of Amsterdam with an open check-in and an open flag, moving to Rotterdam on
/// `move_date` (registered on 2026-12-10).
fn moving_family(env: &TestEnv, marker: &str, move_date: &str) -> Family {
    let fam = env.enrol(
        "2026-11-01T10:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2026-10-31", marker),
    );
    let out = env.record(
        "2026-11-14T12:00:00+01:00",
        &json!({"checkin": fam["checkins"][0]["id"], "at": "2026-11-14T11:00:00+01:00",
                "outcome": "reached", "mode": "phone",
                "children": [{"member": fam["members"][1]["ref"], "observations": {"new_incident": true}}]}),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let reference = fam["family"].as_str().unwrap().to_string();
    env.ok(&[
        "--at",
        "2026-12-10T10:00:00+01:00",
        "move",
        &reference,
        "--to",
        ROTTERDAM,
        "--date",
        move_date,
    ]);
    let shown = env.json(&[
        "--at",
        "2026-12-20T10:00:00+01:00",
        "family",
        "show",
        &reference,
    ]);
    let checkin = shown["checkins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["status"] == "open")
        .unwrap_or_else(|| panic!("no open check-in: {shown}"))["id"]
        .as_str()
        .unwrap()
        .to_string();
    let flag = env
        .json(&["flags", "list", "--open"])
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["family"] == reference.as_str())
        .unwrap_or_else(|| panic!("no flag for {reference}"))["id"]
        .as_i64()
        .unwrap();
    Family {
        reference,
        checkin,
        flag,
    }
}

/// A `daily3` family of Amsterdam moving to Rotterdam on `move_date` (registered on
/// 2026-12-01), whose plan then ended (every check-in recorded): ready for an evaluation.
fn ended_family(env: &TestEnv, marker: &str, move_date: &str) -> Family {
    let fam = env.enrol(
        "2026-12-01T08:00:00+01:00",
        &family_body(AMSTERDAM, "daily3", "2026-11-30", marker),
    );
    let reference = fam["family"].as_str().unwrap().to_string();
    env.ok(&[
        "--at",
        "2026-12-01T08:30:00+01:00",
        "move",
        &reference,
        "--to",
        ROTTERDAM,
        "--date",
        move_date,
    ]);
    for c in fam["checkins"].as_array().unwrap() {
        let out = env.record(
            "2026-12-06T11:00:00+01:00",
            &json!({"checkin": c["id"], "at": "2026-12-06T10:00:00+01:00",
                    "outcome": "reached", "mode": "phone"}),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(
        env.sql(&format!(
            "SELECT status FROM families WHERE ref = '{reference}'"
        )),
        "completed"
    );
    Family {
        reference,
        checkin: String::new(),
        flag: 0,
    }
}

type Call = fn(&Family) -> (&'static str, String, Value, u16);

/// Every API route that changes a family: method, path, body, status on success.
const ROUTES: &[(&str, Call)] = &[
    ("close", |f| {
        (
            "POST",
            format!("/v1/families/{}/close", f.reference),
            // The open red flag needs a coordinator's approval to close early.
            json!({"reason": "family_moved_abroad", "safety_improved": "yes",
                   "professionals": 2, "approved_by": "Coordinator"}),
            200,
        )
    }),
    ("record", |f| {
        (
            "POST",
            format!("/v1/checkins/{}/record", f.checkin),
            json!({"at": "2026-12-19T10:00:00+01:00", "outcome": "reached", "mode": "phone"}),
            200,
        )
    }),
    ("move", |f| {
        (
            "POST",
            format!("/v1/families/{}/moves", f.reference),
            json!({"to": AMSTERDAM, "date": "2027-01-05"}),
            201,
        )
    }),
    ("flag ack", |f| {
        (
            "POST",
            format!("/v1/flags/{}/ack", f.flag),
            json!({"note": "called the mother"}),
            200,
        )
    }),
    ("flag resolve", |f| {
        (
            "POST",
            format!("/v1/flags/{}/resolve", f.flag),
            json!({"note": "safe again"}),
            200,
        )
    }),
    ("update", |f| {
        (
            "PATCH",
            format!("/v1/families/{}", f.reference),
            json!({"notes": "new phone number noted", "contacts": []}),
            200,
        )
    }),
    ("evaluation", |f| {
        (
            "POST",
            format!("/v1/families/{}/evaluation", f.reference),
            json!({"safety_improved": "partly", "professionals": 1}),
            200,
        )
    }),
];

fn send(addr: SocketAddr, token: &str, call: &(&'static str, String, Value, u16)) -> Response {
    let body = call.2.to_string();
    http::request(
        addr,
        call.0,
        &call.1,
        Some(token),
        Some(("application/json", body.as_bytes())),
    )
}

#[test]
fn only_the_responsible_team_changes_a_family() {
    let env = TestEnv::new();
    let ams = env.json(&["token", "create", "--municipality", AMSTERDAM])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let rot = env.json(&["token", "create", "--municipality", ROTTERDAM])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let mut cases = Vec::new();
    for (i, (name, call)) in ROUTES.iter().enumerate() {
        // Before the date: Amsterdam (sending) is responsible. After: Rotterdam.
        let (before, after) = if *name == "evaluation" {
            (
                ended_family(&env, &format!("Bef{i}"), "2026-12-28"),
                ended_family(&env, &format!("Aft{i}"), "2026-12-02"),
            )
        } else {
            (
                moving_family(&env, &format!("Bef{i}"), "2026-12-28"),
                moving_family(&env, &format!("Aft{i}"), "2026-12-15"),
            )
        };
        cases.push((*name, call, before, &rot, &ams, "before the move date"));
        cases.push((*name, call, after, &ams, &rot, "after the move date"));
    }
    let mut d = Daemon::spawn(&env, "serve", &["--at", SERVE_AT, "serve"], None);
    d.wait_log("nazorg daemon ready", Duration::from_secs(20));
    let addr: SocketAddr = d
        .log()
        .lines()
        .find(|l| l.contains("api listening"))
        .and_then(|l| l.split("addr=").nth(1))
        .and_then(|a| a.split_whitespace().next())
        .unwrap()
        .parse()
        .unwrap();

    for (name, call, fam, reader, responsible, when) in &cases {
        let c = call(fam);
        // The team that is not responsible may still read the family ...
        let read = http::get(
            addr,
            &format!("/v1/families/{}", fam.reference),
            Some(reader),
        );
        assert_eq!(read.status, 200, "{name} {when}: read {}", read.text());
        // ... but not change it: 403, and nothing changes.
        let before = env.counts();
        let r = send(addr, reader, &c);
        assert_eq!(r.status, 403, "{name} {when}: {}", r.text());
        assert_eq!(
            r.json()["error"]["code"],
            "not_responsible",
            "{name} {when}"
        );
        assert_eq!(
            env.counts(),
            before,
            "{name} {when}: the refusal changed data"
        );
        // The responsible team may.
        let r = send(addr, responsible, &c);
        assert_eq!(r.status, c.3, "{name} {when}: {}", r.text());
    }
    d.terminate();
}
