//! Closing at the end records an evaluation (issue 11 item 6): a plan that ends at its
//! term asks the responsible team for it once, reminds once after five working days, and
//! stops as soon as it is recorded (CLI, API or the workspace form).

use crate::support::daemon::Daemon;
use crate::support::env::*;
use crate::support::http;
use serde_json::json;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// Enrols a `daily3` family (check-ins Wed 2 to Fri 4 December 2026) and records all three,
/// so its plan ends at its term on Friday 4 December.
fn ended_family(env: &TestEnv, marker: &str) -> String {
    let fam = env.enrol(
        "2026-12-01T10:00:00+01:00",
        &family_body(AMSTERDAM, "daily3", "2026-12-01", marker),
    );
    for c in fam["checkins"].as_array().unwrap() {
        let body = json!({"checkin": c["id"], "at": "2026-12-04T10:00:00+01:00",
                          "outcome": "reached", "mode": "phone"});
        let o = env.record("2026-12-04T10:30:00+01:00", &body);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    }
    let f = fam["family"].as_str().unwrap().to_string();
    assert_eq!(
        env.sql(&format!("SELECT status FROM families WHERE ref = '{f}'")),
        "completed"
    );
    f
}

fn evaluation_mails(env: &TestEnv) -> Vec<String> {
    env.outbox()
        .iter()
        .filter(|m| m["kind"].as_str().unwrap_or("").starts_with("evaluation_"))
        .map(|m| {
            format!(
                "{} {}",
                m["kind"].as_str().unwrap(),
                m["key"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn a_plan_ended_at_its_term_asks_for_the_evaluation_and_reminds_once_until_recorded() {
    let env = TestEnv::new();
    let a = ended_family(&env, "EVA");
    let b = ended_family(&env, "EVB");
    // Friday afternoon's sweep asks for both, once.
    env.sweep("2026-12-04T12:00:00+01:00");
    env.sweep("2026-12-04T13:00:00+01:00");
    assert_eq!(
        evaluation_mails(&env),
        [
            format!("evaluation_request evaluation_request:{a}"),
            format!("evaluation_request evaluation_request:{b}"),
        ]
    );
    let (to, subject, body) = {
        let q = |c: &str| {
            env.sql(&format!(
                "SELECT {c} FROM outbox WHERE key = 'evaluation_request:{a}'"
            ))
        };
        (q("recipients"), q("subject"), q("body"))
    };
    assert!(to.contains(TEAM_AMSTERDAM), "{to}");
    assert_eq!(
        subject,
        format!("[Nazorg] Evaluation asked: the plan of family {a} has ended")
    );
    let link = format!("http://127.0.0.1:0/team/families/{a}/evaluation");
    assert_eq!(
        body,
        format!(
            "To: the municipal team of Amsterdam (municipality code GM0363)\n\n\
             This family's aftercare plan ended on Friday 4 December 2026.\n\
             A plan closes with a short evaluation; it is still missing.\n\n\
             Family (reference):   {a}\n\
             Plan:                 daily3\n\n\
             What we ask of you\n\
             Record the evaluation, preferably after the closing conversation with the\n\
             family: did safety improve (yes, partly or no), how many professionals are\n\
             involved now, and how does the family itself look back. In the Nazorg\n\
             workspace (after signing in):\n    {link}\n\
             or with:\n       nazorg family evaluate {a} --file FILE.json\n\
             \x20      POST /v1/families/{a}/evaluation\n\n\
             -- \n\
             This message deliberately contains no personal data.\n\
             This is an automated message from Nazorg."
        ),
        "the body, exactly (the query trims the last newline)"
    );
    assert!(!body.contains("EVA"), "no personal data");

    // Family B's team records it with the CLI on Monday: B is never reminded.
    let o = env.run(
        &[
            "--at",
            "2026-12-07T10:00:00+01:00",
            "family",
            "evaluate",
            &b,
            "--file",
            "-",
        ],
        Some(br#"{"safety_improved": "partly", "professionals": 2}"#),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Five working days after Friday 12:00 is Friday 11 December 12:00: not before.
    for at in [
        "2026-12-07T12:00:00+01:00",
        "2026-12-09T12:00:00+01:00",
        "2026-12-11T11:59:00+01:00",
    ] {
        env.sweep(at);
        assert_eq!(evaluation_mails(&env).len(), 2, "no reminder at {at}");
    }
    env.sweep("2026-12-11T12:30:00+01:00");
    env.sweep("2026-12-14T12:30:00+01:00");
    env.sweep("2026-12-21T12:30:00+01:00");
    assert_eq!(
        evaluation_mails(&env),
        [
            format!("evaluation_request evaluation_request:{a}"),
            format!("evaluation_request evaluation_request:{b}"),
            format!("evaluation_reminder evaluation_reminder:{a}"),
        ]
    );
    let reminder = env.sql(&format!(
        "SELECT subject || '|' || body FROM outbox WHERE key = 'evaluation_reminder:{a}'"
    ));
    assert!(
        reminder.starts_with(&format!(
            "[Nazorg] Reminder: the evaluation of family {a} is still missing|"
        )),
        "{reminder}"
    );
    assert!(
        reminder.contains("On Friday 4 December 2026 we asked you for its evaluation;\n"),
        "{reminder}"
    );
    assert!(reminder.contains(&link), "{reminder}");
    // Recorded after the reminder: nothing more, ever.
    let o = env.run(
        &[
            "--at",
            "2026-12-22T10:00:00+01:00",
            "family",
            "evaluate",
            &a,
            "--file",
            "-",
        ],
        Some(br#"{"safety_improved": "yes", "professionals": 1}"#),
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    env.sweep("2027-01-11T12:00:00+01:00");
    assert_eq!(evaluation_mails(&env).len(), 3);
}

/// A plan that ends on a Friday evening is asked for on Monday, not on the weekend.
#[test]
fn the_evaluation_is_asked_on_a_working_day() {
    let env = TestEnv::new();
    let a = ended_family(&env, "EVW");
    env.sweep("2026-12-05T10:00:00+01:00");
    env.sweep("2026-12-06T10:00:00+01:00");
    assert!(evaluation_mails(&env).is_empty());
    env.sweep("2026-12-07T08:00:00+01:00");
    assert_eq!(
        evaluation_mails(&env),
        [format!("evaluation_request evaluation_request:{a}")]
    );
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// `name=value` of a `Set-Cookie` header for `name`.
fn cookie_of(r: &http::Response, name: &str) -> String {
    r.headers
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("set-cookie"))
        .find_map(|(_, v)| {
            let first = v.split(';').next()?;
            first
                .starts_with(&format!("{name}="))
                .then(|| first.to_string())
        })
        .unwrap_or_else(|| panic!("no {name} cookie in {:?}", r.headers))
}

/// The value of the hidden `csrf` input of a page.
fn csrf_in(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + 19;
    html[at..].split('"').next().unwrap().to_string()
}

fn send(
    addr: SocketAddr,
    method: &str,
    path: &str,
    cookies: &str,
    form: Option<&str>,
) -> http::Response {
    http::request_with(
        addr,
        method,
        path,
        &[("Cookie", cookies)],
        form.map(|f| ("application/x-www-form-urlencoded", f.as_bytes())),
    )
}

/// Signs a team member in without a browser: the sign-in form, the mailed link, the
/// session cookie. Returns the `Cookie` header value.
fn sign_in(env: &TestEnv, addr: SocketAddr, email: &str) -> String {
    let form = http::request_with(addr, "GET", "/team/signin", &[], None);
    let browser = cookie_of(&form, "nz_browser");
    let csrf = csrf_in(&form.text());
    let sent = send(
        addr,
        "POST",
        "/team/signin",
        &browser,
        Some(&format!("csrf={csrf}&email={}", email.replace('@', "%40"))),
    );
    assert_eq!(sent.status, 200, "{}", sent.text());
    let start = Instant::now();
    let link = loop {
        let found = env.eml_files().iter().find_map(|p| {
            let text = std::fs::read_to_string(p).unwrap().replace("=\r\n", "");
            let i = text.find("/team/signin/")?;
            Some(text[i..i + 13 + 64].to_string())
        });
        if let Some(l) = found {
            break l;
        }
        assert!(start.elapsed() < Duration::from_secs(30), "no sign-in mail");
        std::thread::sleep(Duration::from_millis(200));
    };
    let redeemed = send(addr, "GET", &link, &browser, None);
    assert_eq!(redeemed.status, 200, "{}", redeemed.text());
    format!("{browser}; {}", cookie_of(&redeemed, "nz_session"))
}

#[test]
fn the_workspace_form_records_the_evaluation_with_errors_per_field() {
    let addr = free_addr();
    let env = TestEnv::with_config(
        &config_text("transport = \"file\"\ndir = \"var/outbox\"")
            .replace("listen = \"127.0.0.1:0\"", &format!("listen = \"{addr}\"")),
        |_| format!("\n[web]\nbase_url = \"http://{addr}\"\n"),
    );
    let member = "anna@team.example.org";
    env.ok(&[
        "member",
        "add",
        "--municipality",
        AMSTERDAM,
        "--email",
        member,
        "--name",
        "Anna",
    ]);
    let f = ended_family(&env, "EVWEB");
    env.sweep("2026-12-04T12:00:00+01:00");
    let asked = env.sql(&format!(
        "SELECT body FROM outbox WHERE key = 'evaluation_request:{f}'"
    ));
    let path = format!("/team/families/{f}/evaluation");
    assert!(asked.contains(&format!("http://{addr}{path}\n")), "{asked}");

    let mut daemon = Daemon::spawn(
        &env,
        "serve-eval",
        &["--at", "2026-12-07T10:00:00+01:00", "serve"],
        None,
    );
    daemon.wait_log("nazorg daemon ready", Duration::from_secs(30));
    let start = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "no listener");
        std::thread::sleep(Duration::from_millis(50));
    }
    let cookies = sign_in(&env, addr, member);
    let page = send(addr, "GET", &format!("{path}?lang=en"), &cookies, None);
    assert_eq!(page.status, 200, "{}", page.text());
    let html = page.text();
    assert!(html.contains("Did safety improve?"), "{html}");
    let csrf = csrf_in(&html);

    let before = env.sql("SELECT COUNT(*) FROM evaluations");
    // Without the form's token: refused before anything is looked at.
    let r = send(
        addr,
        "POST",
        &path,
        &cookies,
        Some("safety_improved=yes&professionals=1"),
    );
    assert_eq!(r.status, 403);
    // Nothing chosen and a word for a number: each field gets its own error, nothing stored.
    let r = send(
        addr,
        "POST",
        &format!("{path}?lang=en"),
        &cookies,
        Some(&format!(
            "csrf={csrf}&professionals=some&family_view=EVWEB-view"
        )),
    );
    assert_eq!(r.status, 400, "{}", r.text());
    let html = r.text();
    assert!(html.contains("href=\"#safety_improved\""), "{html}");
    assert!(html.contains("href=\"#professionals\""), "{html}");
    assert!(
        html.contains("id=\"safety_improved-error\">Choose yes, partly or no<"),
        "{html}"
    );
    assert!(
        html.contains("id=\"professionals-error\">Enter a whole number from 0 to 50<"),
        "{html}"
    );
    assert!(
        html.contains("value=\"some\""),
        "what was typed is kept: {html}"
    );
    assert_eq!(env.sql("SELECT COUNT(*) FROM evaluations"), before);
    // Right: recorded through the same service as `family evaluate`.
    let r = send(
        addr,
        "POST",
        &format!("{path}?lang=en"),
        &cookies,
        Some(&format!(
            "csrf={csrf}&safety_improved=partly&professionals=3&family_view=EVWEB-view"
        )),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.text().contains("The evaluation is recorded"),
        "{}",
        r.text()
    );
    assert_eq!(
        env.sql("SELECT safety_improved || ':' || professionals FROM evaluations"),
        "partly:3"
    );
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM evaluations WHERE CAST(sealed_view AS TEXT) LIKE '%EVWEB%'"),
        "0",
        "the family's view is sealed"
    );
    // Recorded once: the form says so, and the reminder never comes.
    let again = send(addr, "GET", &format!("{path}?lang=en"), &cookies, None);
    assert_eq!(again.status, 409);
    daemon.terminate();
    env.sweep("2026-12-14T12:00:00+01:00");
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM outbox WHERE kind = 'evaluation_reminder'"),
        "0"
    );
}
