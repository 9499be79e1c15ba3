//! Issue 12, the workspace's pages over plain HTTP (no browser): the caseload shows the
//! attempts so far and the team's own case number (sealed, set by `family update`, the
//! PATCH API and a field on the family page); forms, family and flag pages show labels,
//! not codes, and "1 gezin" in the singular; `/team/` is limited per client IP like the
//! API's strangers, and the denials are audited in aggregate.

use crate::support::daemon::Daemon;
use crate::support::env::*;
use crate::support::http;
use serde_json::{Value, json};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

const ANNA: &str = "anna.devries@amsterdam.example.org";

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// An installation whose daemon listens on `addr`, with Anna registered for Amsterdam.
fn workspace_env(addr: SocketAddr) -> TestEnv {
    workspace_env_limited(addr, 50)
}

/// The same installation with strangers refilled at `rate` requests per second.
fn workspace_env_limited(addr: SocketAddr, rate: u32) -> TestEnv {
    let base = format!("http://{addr}");
    let env = TestEnv::with_config(
        &config_text("transport = \"file\"\ndir = \"var/outbox\"")
            .replace("listen = \"127.0.0.1:0\"", &format!("listen = \"{addr}\""))
            .replace("rate_limit = 50", &format!("rate_limit = {rate}")),
        |_| format!("\n[web]\nbase_url = \"{base}\"\n"),
    );
    env.ok(&[
        "member",
        "add",
        "--municipality",
        AMSTERDAM,
        "--email",
        ANNA,
        "--name",
        "Anna de Vries",
    ]);
    env
}

fn start(env: &TestEnv, at: &str, addr: SocketAddr) -> Daemon {
    let mut d = Daemon::spawn(env, "serve", &["--at", at, "serve"], None);
    d.wait_log("nazorg daemon ready", Duration::from_secs(30));
    let start = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "no listener");
        std::thread::sleep(Duration::from_millis(50));
    }
    d
}

/// The value of cookie `name` set by a response.
fn set_cookie(r: &http::Response, name: &str) -> Option<String> {
    r.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .find_map(|(_, v)| v.strip_prefix(&format!("{name}=")))
        .map(|v| v.split(';').next().unwrap_or("").to_string())
}

/// The value of the hidden `csrf` field of a page.
fn csrf_in(html: &str) -> String {
    let i = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[i..].split('"').next().unwrap().to_string()
}

/// What a reader sees: the page's text without tags (attributes and class names hold codes
/// on purpose: option values, `tag-red`).
fn visible(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for ch in html.chars() {
        match ch {
            '<' => in_tag = true,
            '>' => {
                in_tag = false;
                out.push(' ');
            }
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn get(addr: SocketAddr, path: &str, cookie: &str) -> http::Response {
    http::request_with(
        addr,
        "GET",
        path,
        &[("Cookie", &format!("nz_session={cookie}"))],
        None,
    )
}

fn post(addr: SocketAddr, path: &str, cookies: &str, body: &str) -> http::Response {
    http::request_with(
        addr,
        "POST",
        path,
        &[("Cookie", cookies)],
        Some(("application/x-www-form-urlencoded", body.as_bytes())),
    )
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Signs `email` in as a browser would, over plain HTTP: the form (browser cookie and
/// CSRF), the request, the mailed link (read from the file outbox), the session cookie.
fn sign_in(env: &TestEnv, addr: SocketAddr, email: &str) -> String {
    let form = http::request_with(addr, "GET", "/team/signin", &[], None);
    assert_eq!(form.status, 200, "{}", form.text());
    let browser = set_cookie(&form, "nz_browser").expect("a browser cookie");
    let csrf = csrf_in(&form.text());
    let before = env.eml_files().len();
    let sent = post(
        addr,
        "/team/signin",
        &format!("nz_browser={browser}"),
        &format!("csrf={csrf}&next=&email={}", urlencode(email)),
    );
    assert_eq!(sent.status, 200, "{}", sent.text());
    let prefix = format!("http://{addr}/team/signin/");
    let start = Instant::now();
    let link = loop {
        let found = env.eml_files().iter().skip(before).find_map(|p| {
            let text = std::fs::read_to_string(p).unwrap().replace("=\r\n", "");
            let i = text.find(&prefix)?;
            Some(text[i + prefix.len()..i + prefix.len() + 64].to_string())
        });
        if let Some(l) = found {
            break l;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no sign-in mail in the outbox"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let redeemed = http::request_with(
        addr,
        "GET",
        &format!("/team/signin/{link}"),
        &[("Cookie", &format!("nz_browser={browser}"))],
        None,
    );
    assert_eq!(redeemed.status, 200, "{}", redeemed.text());
    set_cookie(&redeemed, "nz_session").expect("a session cookie")
}

fn case_numbers_row(env: &TestEnv) -> String {
    env.sql("SELECT COUNT(*), group_concat(hex(sealed_number), '') FROM case_numbers")
}

#[test]
fn pages_show_labels_attempts_and_the_teams_case_number() {
    let addr = free_addr();
    let env = workspace_env(addr);
    // standard plan from 2027-01-04: C1 due 2027-01-18 09:00, C2 due 2027-02-15 09:00.
    let fam = env.enrol(
        "2027-01-04T09:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2027-01-04", "LBL"),
    );
    let f = fam["family"].as_str().unwrap().to_string();
    let c1 = fam["checkins"][0]["id"].as_str().unwrap().to_string();
    let c2 = fam["checkins"][1]["id"].as_str().unwrap().to_string();
    let child = fam["members"][1]["ref"].as_str().unwrap().to_string();
    // Unsupervised contact with the perpetrator (a red flag) and a new stressor (amber).
    let out = env.record(
        "2027-01-18T12:00:00+01:00",
        &json!({"checkin": c1, "at": "2027-01-18T11:00:00+01:00", "outcome": "reached",
                "mode": "home_visit",
                "family_observations": {"stressors": ["debts", "mental_health"]},
                "children": [{"member": child,
                              "observations": {"perpetrator_contact": "unsupervised",
                                               "school_attendance": "reduced"}}]}),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // One failed attempt at the next contact.
    let out = env.run(
        &[
            "--at",
            "2027-02-15T12:00:00+01:00",
            "--json",
            "checkin",
            "attempt",
            "--file",
            "-",
        ],
        Some(
            json!({"checkin": c2, "at": "2027-02-15T11:00:00+01:00",
                   "outcome": "not_reached", "mode": "phone"})
            .to_string()
            .as_bytes(),
        ),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The case number by `family update`: sealed, not in the database in plain text.
    let update = |body: &Value| {
        env.run(
            &[
                "--at",
                "2027-02-15T13:00:00+01:00",
                "--json",
                "family",
                "update",
                &f,
                "--file",
                "-",
            ],
            Some(body.to_string().as_bytes()),
        )
    };
    let out = update(&json!({"case_number": "AMS-2027-0042"}));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored = case_numbers_row(&env);
    assert!(stored.starts_with("1|"), "{stored}");
    assert_eq!(
        env.sql("SELECT instr(sealed_number, 'AMS-2027') FROM case_numbers"),
        "0",
        "the case number is sealed"
    );
    // A bad one is refused by its field and changes nothing.
    let out = update(&json!({"case_number": "x".repeat(65)}));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("case_number"));
    assert_eq!(case_numbers_row(&env), stored);
    let shown = env.json(&["family", "show", &f]);
    assert_eq!(shown["case_number"], "AMS-2027-0042", "{shown}");

    let daemon = start(&env, "2027-02-16T10:00:00+01:00", addr);
    let anna = sign_in(&env, addr, ANNA);

    // The caseload: the case number, "1 van 3" attempts, one family in the singular.
    let caseload = get(addr, "/team/?lang=nl", &anna);
    assert_eq!(caseload.status, 200);
    let text = visible(&caseload.text());
    assert!(text.contains("1 gezin "), "{text}");
    assert!(!text.contains("1 gezinnen"), "{text}");
    assert!(text.contains("AMS-2027-0042"), "{text}");
    assert!(text.contains("1 van 3"), "{text}");
    let en = visible(&get(addr, "/team/?lang=en", &anna).text());
    assert!(
        en.contains("1 family ") && !en.contains("1 families"),
        "{en}"
    );
    assert!(en.contains("1 of 3"), "{en}");

    // Dutch pages name everything in words: no code of a stressor, value, rule or severity.
    let codes = [
        "debts",
        "housing",
        "mental_health",
        "unsupervised",
        "reduced",
        "unsupervised_contact",
        "stressor_new",
        "school_slipping",
        "amber",
        " red ",
        "home_visit",
        " ar ",
    ];
    let family_html = get(addr, &format!("/team/families/{f}?lang=nl"), &anna).text();
    let family = visible(&family_html);
    for code in codes {
        assert!(
            !family.contains(code),
            "family page shows {code:?}: {family}"
        );
    }
    for words in [
        "schulden, huisvesting",
        "Arabisch",
        "Onbegeleid contact met de pleger",
        "zonder toezicht",
        "rood",
        "AMS-2027-0042",
    ] {
        assert!(
            family.contains(words),
            "family page lacks {words:?}: {family}"
        );
    }
    let flag_id = family_html
        .split("/team/flags/")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .expect("a flag link")
        .to_string();
    let flag = visible(&get(addr, &format!("/team/flags/{flag_id}?lang=nl"), &anna).text());
    for code in codes {
        assert!(!flag.contains(code), "flag page shows {code:?}: {flag}");
    }
    assert!(flag.contains("Ernst"), "{flag}");
    let record = visible(&get(addr, &format!("/team/checkins/{c2}?lang=nl"), &anna).text());
    for code in codes {
        assert!(
            !record.contains(code),
            "record form shows {code:?}: {record}"
        );
    }
    for words in [
        "zonder toezicht",
        "onder toezicht",
        "psychische gezondheid",
        "afwezig",
    ] {
        assert!(record.contains(words), "record form lacks {words:?}");
    }
    let family_en = visible(&get(addr, &format!("/team/families/{f}?lang=en"), &anna).text());
    assert!(family_en.contains("Unsupervised contact with the perpetrator"));
    assert!(family_en.contains("Arabic") && !family_en.contains("unsupervised_contact"));

    // The field on the family page: a bad value is shown by the field and changes nothing.
    let csrf = csrf_in(&family_html);
    let cookies = format!("nz_session={anna}");
    let path = format!("/team/families/{f}/case-number");
    let bad = post(
        addr,
        &path,
        &cookies,
        &format!("csrf={csrf}&case_number={}", "x".repeat(65)),
    );
    assert_eq!(bad.status, 400, "{}", bad.text());
    assert!(bad.text().contains("href=\"#case_number\""));
    assert_eq!(case_numbers_row(&env), stored);
    let forged = post(addr, &path, &cookies, "csrf=wrong&case_number=AMS-1");
    assert_eq!(forged.status, 403);
    assert_eq!(case_numbers_row(&env), stored);
    let saved = post(
        addr,
        &path,
        &cookies,
        &format!("csrf={csrf}&case_number=AMS-2027-0043"),
    );
    assert_eq!(saved.status, 200, "{}", saved.text());
    assert_eq!(
        env.json(&["family", "show", &f])["case_number"],
        "AMS-2027-0043"
    );

    // The PATCH API sets it too (the responsible team's token).
    let token = env.json(&["token", "create", "--municipality", AMSTERDAM])["token"]
        .as_str()
        .unwrap()
        .to_string();
    let patched = http::request(
        addr,
        "PATCH",
        &format!("/v1/families/{f}"),
        Some(&token),
        Some((
            "application/json",
            json!({"case_number": "AMS-2027-0044"})
                .to_string()
                .as_bytes(),
        )),
    );
    assert_eq!(patched.status, 200, "{}", patched.text());
    assert!(
        patched.json()["changed"]
            .to_string()
            .contains("case_number")
    );
    let shown = visible(&get(addr, "/team/?lang=nl", &anna).text());
    assert!(shown.contains("AMS-2027-0044"), "{shown}");
    // An empty value removes it.
    let cleared = post(addr, &path, &cookies, &format!("csrf={csrf}&case_number="));
    assert_eq!(cleared.status, 200);
    assert!(case_numbers_row(&env).starts_with("0|"));
    daemon.terminate();
    // Each change is audited (codes only).
    let audited = env.sql("SELECT COUNT(*) FROM audit WHERE action = 'family.update.case_number'");
    assert_eq!(audited, "4");
}

/// Denied requests audited for a client: (count, detail) per row.
fn denied_rows(env: &TestEnv) -> Vec<(u64, String)> {
    env.json(&["audit", "list"])
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["action"] == "api.denied"
                && e["actor"] == "anonymous"
                && e["subject"] == "client 127.0.0.1"
        })
        .map(|e| {
            let d = e["detail"].as_str().unwrap().to_string();
            let count = d
                .split_whitespace()
                .find_map(|w| w.strip_prefix("count="))
                .unwrap()
                .parse()
                .unwrap();
            (count, d)
        })
        .collect()
}

fn field(detail: &str, name: &str) -> u64 {
    detail
        .split_whitespace()
        .find_map(|w| w.strip_prefix(&format!("{name}=")))
        .unwrap_or("0")
        .parse()
        .unwrap()
}

#[test]
fn a_flood_of_signin_requests_from_one_address_is_limited_and_audited_in_aggregate() {
    const FLOOD: usize = 400;
    // A slow refill, so the flood outruns it however loaded the machine is.
    const RATE: usize = 5;
    let addr = free_addr();
    let env = workspace_env_limited(addr, RATE as u32);
    let daemon = start(&env, "2027-02-16T10:00:00+01:00", addr);
    let anna = sign_in(&env, addr, ANNA);
    assert_eq!(get(addr, "/team/", &anna).status, 200);
    let audit_before: u64 = env.sql("SELECT COUNT(*) FROM audit").parse().unwrap();

    // A valid sign-in form (browser cookie and CSRF), then a flood of requests with it for
    // addresses nobody registered.
    let form = http::request_with(addr, "GET", "/team/signin", &[], None);
    let browser = set_cookie(&form, "nz_browser").unwrap();
    let csrf = csrf_in(&form.text());
    let started = Instant::now();
    let statuses: Vec<u16> = (0..FLOOD)
        .map(|i| {
            post(
                addr,
                "/team/signin",
                &format!("nz_browser={browser}"),
                &format!("csrf={csrf}&next=&email=stranger{i}%40example.org"),
            )
            .status
        })
        .collect();
    let elapsed = started.elapsed();
    let answered = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    eprintln!("flood: {answered} x 200, {limited} x 429 in {elapsed:?}");
    assert_eq!(answered + limited, FLOOD, "only 200 and 429: {statuses:?}");
    // burst 100, then RATE per second; the three sign-in steps and the form above took
    // four of the burst.
    let allowed = 100 + RATE * (elapsed.as_secs() as usize + 1);
    assert!(
        limited > 0 && answered <= allowed,
        "{answered} in {elapsed:?}"
    );
    // The limit answers before any page work, with a Retry-After; Anna, signed in from the
    // same address, still gets her caseload.
    let blocked = http::request_with(addr, "GET", "/team/signin", &[], None);
    assert_eq!(blocked.status, 429);
    assert!(blocked.header("retry-after").is_some());
    assert!(visible(&blocked.text()).contains("Te veel verzoeken"));
    assert_eq!(get(addr, "/team/", &anna).status, 200);
    // Nothing was mailed to the strangers.
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM outbox WHERE kind = 'signin_link'"),
        "1"
    );

    let log = daemon.terminate();
    assert!(!log.contains("stranger0@"), "addresses stay out of the log");
    let rows = denied_rows(&env);
    assert!(
        !rows.is_empty() && rows.len() <= 3,
        "{} api.denied rows: {rows:?}",
        rows.len()
    );
    let sum = |name: &str| rows.iter().map(|(_, d)| field(d, name)).sum::<u64>();
    // Every request of the flood is counted once: as a sign-in request, or as turned away
    // (rate_limited); plus Anna's own sign-in request and the blocked form above.
    assert_eq!(
        sum("signin_request") + sum("rate_limited"),
        FLOOD as u64 + 2,
        "{rows:?}"
    );
    assert!(sum("rate_limited") >= 1);
    // The two sign-in forms and Anna's link, before she had a session.
    assert_eq!(sum("no_session"), 3, "{rows:?}");
    assert_eq!(
        rows.iter().map(|(n, _)| n).sum::<u64>(),
        FLOOD as u64 + 5,
        "{rows:?}"
    );
    // The flood wrote a bounded number of audit rows: one per request it was allowed to
    // make (each sign-in request is audited), not one per request it made.
    let audit_after: u64 = env.sql("SELECT COUNT(*) FROM audit").parse().unwrap();
    assert!(
        audit_after - audit_before <= answered as u64 + 10,
        "{} audit rows for {answered} answered requests",
        audit_after - audit_before
    );
}
