//! The team workspace in a real browser: headless Chromium driven over WebDriver
//! (chromedriver on a loopback port) against `nazorg serve`, mails read from the file
//! outbox, every page checked with axe-core and photographed under target/screenshots/.

use crate::support::daemon::Daemon;
use crate::support::env::*;
use crate::support::http;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ANNA: &str = "anna.devries@amsterdam.example.org";
const ROB: &str = "rob.jansen@rotterdam.example.org";

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// chromedriver on a free loopback port, killed on drop whatever happens.
struct Driver {
    child: Child,
    port: u16,
    _profile: tempfile::TempDir,
}

impl Driver {
    fn start() -> Driver {
        let port = free_port();
        // Its own process group, so the browsers it starts go with it on drop.
        let child = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("chromedriver (Debian's chromium-driver) must be installed: run scripts/test");
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < Duration::from_secs(15),
                "chromedriver did not listen"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Driver {
            child,
            port,
            _profile: tempfile::tempdir().unwrap(),
        }
    }

    async fn browser(&self) -> Client {
        let profile = self._profile.path().display().to_string();
        let caps = json!({
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--window-size=1280,1600", "--lang=nl-NL",
                    format!("--user-data-dir={profile}"),
                ],
                "prefs": {"intl.accept_languages": "nl-NL,nl"}
            }
        });
        let Value::Object(caps) = caps else {
            unreachable!()
        };
        let c = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps)
            .connect(&format!("http://127.0.0.1:{}", self.port))
            .await
            .expect("WebDriver session");
        c.update_timeouts(fantoccini::wd::TimeoutConfiguration::new(
            Some(Duration::from_secs(30)),
            Some(Duration::from_secs(30)),
            Some(Duration::from_secs(0)),
        ))
        .await
        .unwrap();
        c
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        // `-s KILL -- -PGID`: procps-ng 4.0.2's kill reads `kill -KILL -PGID` as something
        // else and took down every process of the session (the test runner and CI with it).
        let _ = Command::new("kill")
            .args(["-s", "KILL", "--", &format!("-{}", self.child.id())])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn axe_source() -> String {
    let path = std::env::var("NAZORG_TEST_AXE").unwrap_or_else(|_| {
        panic!(
            "NAZORG_TEST_AXE is not set: run scripts/test (it fetches axe-core with npm into \
             target/test-tools/axe and exports NAZORG_TEST_AXE=…/axe-core/axe.min.js)"
        )
    });
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("NAZORG_TEST_AXE={path} cannot be read: {e}"))
}

fn screenshots() -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The page as it stands: axe-core finds no serious or critical violation; a screenshot
/// is written for review.
async fn check_page(c: &Client, axe: &str, name: &str) {
    let png = c.screenshot().await.unwrap();
    std::fs::write(screenshots().join(format!("{name}.png")), png).unwrap();
    c.execute(axe, vec![]).await.unwrap();
    let found = c
        .execute_async(
            "const done = arguments[arguments.length - 1];\
             axe.run(document, {resultTypes: ['violations']}).then(r => done(JSON.stringify(\
               r.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')\
                .map(v => ({id: v.id, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))})))))\
             .catch(e => done('axe failed: ' + e));",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        found.as_str(),
        Some("[]"),
        "axe-core on {name} ({}): {found}",
        c.current_url().await.unwrap()
    );
}

async fn h1(c: &Client) -> String {
    c.find(Locator::Css("h1"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

async fn path(c: &Client) -> String {
    c.current_url().await.unwrap().path().to_string()
}

/// Mail bodies as written to the file outbox, with quoted-printable soft breaks undone.
fn mails(env: &TestEnv) -> Vec<String> {
    env.eml_files()
        .iter()
        .map(|p| {
            std::fs::read_to_string(p)
                .unwrap()
                .replace("=\r\n", "")
                .replace("=3D", "=")
        })
        .collect()
}

/// The first link in `text` starting with `prefix`.
fn link_in(text: &str, prefix: &str) -> Option<String> {
    let i = text.find(prefix)?;
    let rest = &text[i..];
    let end = rest
        .find(|c: char| c.is_whitespace() || c == '<' || c == '"')
        .unwrap_or(rest.len());
    Some(rest[..end].to_string())
}

/// Waits (bounded) for a sign-in mail not seen before; returns its link.
fn new_signin_link(env: &TestEnv, base: &str, seen: &mut Vec<String>) -> String {
    let start = Instant::now();
    loop {
        for m in mails(env) {
            if let Some(l) = link_in(&m, &format!("{base}/team/signin/"))
                && !seen.contains(&l)
            {
                seen.push(l.clone());
                return l;
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "no sign-in mail in the outbox"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Clicks (a submit button, a link) and waits, bounded, until the next page has loaded.
async fn click_and_wait(c: &Client, loc: Locator<'_>) {
    c.execute("window.__nazorg_old_page = true;", vec![])
        .await
        .unwrap();
    c.find(loc).await.unwrap().click().await.unwrap();
    let start = Instant::now();
    loop {
        let fresh = c
            .execute(
                "return typeof window.__nazorg_old_page === 'undefined' && document.readyState === 'complete';",
                vec![],
            )
            .await
            .map(|v| v == Value::Bool(true))
            .unwrap_or(false);
        if fresh {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "no new page after the click"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn ask_link(c: &Client, email: &str) {
    let f = c.find(Locator::Id("email")).await.unwrap();
    f.clear().await.unwrap();
    f.send_keys(email).await.unwrap();
    click_and_wait(c, Locator::Css("main form button[type=submit]")).await;
}

/// Opens a sign-in link and waits until the signed-in page has moved on to `next`.
async fn follow_signin(c: &Client, link: &str, next: &str) {
    c.goto(link).await.unwrap();
    let start = Instant::now();
    while path(c).await != next {
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "sign-in did not lead to {next}: {}",
            h1(c).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn session_cookie(c: &Client) -> String {
    c.get_named_cookie("nz_session")
        .await
        .unwrap()
        .value()
        .to_string()
}

fn start_daemon(env: &TestEnv, at: &str, addr: SocketAddr) -> Daemon {
    let mut d = Daemon::spawn(
        env,
        &format!("serve-{}", &at[..19]),
        &["--at", at, "serve"],
        None,
    );
    d.wait_log("nazorg daemon ready", Duration::from_secs(30));
    let start = Instant::now();
    while TcpStream::connect(addr).is_err() {
        assert!(start.elapsed() < Duration::from_secs(10), "no listener");
        std::thread::sleep(Duration::from_millis(50));
    }
    d
}

fn form_post(addr: SocketAddr, path: &str, cookie: &str, body: &str) -> http::Response {
    http::request_with(
        addr,
        "POST",
        path,
        &[("Cookie", &format!("nz_session={cookie}"))],
        Some(("application/x-www-form-urlencoded", body.as_bytes())),
    )
}

fn page_get(addr: SocketAddr, path: &str, cookie: &str) -> http::Response {
    http::request_with(
        addr,
        "GET",
        path,
        &[("Cookie", &format!("nz_session={cookie}"))],
        None,
    )
}

/// The whole loop a team worker goes through, from the reminder mail to the handover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn team_workspace_in_a_real_browser() {
    let axe = axe_source();
    tokio::time::timeout(Duration::from_secs(420), journey(axe))
        .await
        .expect("the browser journey took longer than 7 minutes");
}

async fn journey(axe: String) {
    let port = free_port();
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let env = TestEnv::with_config(
        &config_text("transport = \"file\"\ndir = \"var/outbox\"")
            .replace("listen = \"127.0.0.1:0\"", &format!("listen = \"{addr}\"")),
        |_| format!("\n[web]\nbase_url = \"{base}\"\nsession_idle = \"PT30M\"\n"),
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
    env.ok(&[
        "member",
        "add",
        "--municipality",
        ROTTERDAM,
        "--email",
        ROB,
        "--name",
        "Rob Jansen",
    ]);
    let listed = env.json(&["member", "list"]);
    assert_eq!(listed.as_array().unwrap().len(), 2);
    let admin = env.json(&["token", "create", "--admin"])["token"]
        .as_str()
        .unwrap()
        .to_string();

    let fam = env.enrol(
        "2027-01-04T09:00:00+01:00",
        &family_body(AMSTERDAM, "standard", "2027-01-04", "WEB"),
    );
    let f = fam["family"].as_str().unwrap().to_string();
    let c1 = fam["checkins"][0]["id"].as_str().unwrap().to_string();
    // The reminder for the first check-in (due 2027-01-18 09:00) lands in the file outbox.
    env.sweep("2027-01-18T09:30:00+01:00");
    let reminder_link = mails(&env)
        .iter()
        .find_map(|m| link_in(m, &format!("{base}/team/checkins/{c1}")))
        .expect("a reminder mail with a link to the check-in");
    assert_eq!(reminder_link, format!("{base}/team/checkins/{c1}"));

    let daemon = start_daemon(&env, "2027-01-18T10:00:00+01:00", addr);
    let driver = Driver::start();
    let c = driver.browser().await;

    // The reminder's link asks for sign-in first, and comes back to the check-in after it.
    c.goto(&reminder_link).await.unwrap();
    assert_eq!(path(&c).await, "/team/signin");
    check_page(&c, &axe, "01-signin").await;
    // An empty address is refused by the field, with the error summary at the top.
    ask_link(&c, "").await;
    let summary = c.find(Locator::Css(".error-summary a")).await.unwrap();
    assert_eq!(
        summary.attr("href").await.unwrap().as_deref(),
        Some("#email")
    );
    check_page(&c, &axe, "02-signin-error").await;
    // An unknown address gets the same answer as a known one, and no mail.
    let before = env.eml_files().len();
    ask_link(&c, "nobody@example.org").await;
    let unknown_answer = h1(&c).await;
    c.goto(&reminder_link).await.unwrap();
    ask_link(&c, ANNA).await;
    assert_eq!(
        h1(&c).await,
        unknown_answer,
        "the answer reveals registration"
    );
    check_page(&c, &axe, "03-signin-sent").await;
    let mut seen = Vec::new();
    let link = new_signin_link(&env, &base, &mut seen);
    assert_eq!(
        env.eml_files().len(),
        before + 1,
        "only the known address got a mail"
    );
    follow_signin(&c, &link, &format!("/team/checkins/{c1}")).await;
    check_page(&c, &axe, "04-record-form").await;

    // The link is single use.
    let anna_cookie = session_cookie(&c).await;
    let jar = c.get_named_cookie("nz_session").await.unwrap();
    assert_eq!(jar.http_only(), Some(true), "session cookie not HttpOnly");
    assert_eq!(
        format!("{:?}", jar.same_site()),
        "Some(Strict)",
        "session cookie not SameSite=Strict"
    );
    c.goto(&link).await.unwrap();
    assert!(h1(&c).await.contains("al gebruikt"), "{}", h1(&c).await);
    check_page(&c, &axe, "05-link-used").await;

    // Record a contact for two children: first with an invalid value.
    let counts_before = env.counts();
    c.goto(&reminder_link).await.unwrap();
    c.find(Locator::Id("outcome"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    c.find(Locator::Id("mode"))
        .await
        .unwrap()
        .select_by_value("home_visit")
        .await
        .unwrap();
    c.find(Locator::Id("c0-wellbeing"))
        .await
        .unwrap()
        .send_keys("12")
        .await
        .unwrap();
    c.find(Locator::Id("c1-wellbeing"))
        .await
        .unwrap()
        .send_keys("7")
        .await
        .unwrap();
    click_and_wait(&c, Locator::Css("main form button[type=submit]")).await;
    let summary = c.find(Locator::Css(".error-summary a")).await.unwrap();
    assert_eq!(
        summary.attr("href").await.unwrap().as_deref(),
        Some("#c0-wellbeing")
    );
    let field = c.find(Locator::Id("c0-wellbeing")).await.unwrap();
    assert_eq!(
        field.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    assert_eq!(field.prop("value").await.unwrap().as_deref(), Some("12"));
    let by_field = c
        .find(Locator::Css(".field-error .error-message"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        by_field.contains("0") && by_field.contains("10"),
        "{by_field}"
    );
    assert_eq!(
        env.counts(),
        counts_before,
        "an invalid form saved something"
    );
    check_page(&c, &axe, "06-record-errors").await;

    // Then valid: the red value raises a flag; the check-in is recorded.
    field.clear().await.unwrap();
    field.send_keys("6").await.unwrap();
    c.find(Locator::Id("c0-perpetrator_contact"))
        .await
        .unwrap()
        .select_by_value("unsupervised")
        .await
        .unwrap();
    click_and_wait(&c, Locator::Css("main form button[type=submit]")).await;
    assert!(h1(&c).await.contains("vastgelegd"), "{}", h1(&c).await);
    check_page(&c, &axe, "07-recorded").await;
    assert_eq!(
        env.sql(&format!("SELECT status FROM checkins WHERE ref = '{c1}'")),
        "recorded"
    );
    assert_eq!(
        env.sql(&format!(
            "SELECT COUNT(*) FROM observations o JOIN checkins c ON c.id = o.checkin_id WHERE c.ref = '{c1}'"
        )),
        "2"
    );
    // The next sweep sends no more reminders for it (it would have been overdue by now).
    let about_c1 = format!("SELECT COUNT(*) FROM outbox WHERE key LIKE '%{c1}%'");
    let reminders = env.sql(&about_c1);
    env.sweep("2027-01-25T09:30:00+01:00");
    assert_eq!(env.sql(&about_c1), reminders, "a reminder after recording");

    // The red alert's link leads to the flag; the team acknowledges it with a note.
    let flag_link = mails(&env)
        .iter()
        .find_map(|m| link_in(m, &format!("{base}/team/flags/")))
        .expect("a red alert with a link to the flag");
    let flag_id = flag_link.rsplit('/').next().unwrap().to_string();
    c.goto(&flag_link).await.unwrap();
    check_page(&c, &axe, "08-flag").await;
    c.find(Locator::Id("note"))
        .await
        .unwrap()
        .send_keys("Besproken met moeder; veiligheidsplan aangepast.")
        .await
        .unwrap();
    click_and_wait(&c, Locator::Css("button[value=ack]")).await;
    check_page(&c, &axe, "09-flag-done").await;
    assert_eq!(
        env.sql(&format!("SELECT status FROM flags WHERE id = {flag_id}")),
        "acknowledged"
    );

    // The family page (timelines drawn on the server) and its print view, the caseload.
    c.goto(&format!("{base}/team/families/{f}")).await.unwrap();
    let src = c.source().await.unwrap();
    assert!(
        src.contains("WEB-child-one") && src.contains("<svg"),
        "family page"
    );
    check_page(&c, &axe, "10-family").await;
    // Labels, not codes: the rule of the flag and the value that raised it.
    let body = c
        .find(Locator::Css("main"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        body.contains("Onbegeleid contact met de pleger")
            && body.contains("zonder toezicht")
            && !body.contains("unsupervised"),
        "family page shows codes: {body}"
    );
    // The team's own case number, typed into the field on the family page.
    c.find(Locator::Id("case_number"))
        .await
        .unwrap()
        .send_keys("AMS-2027-0042")
        .await
        .unwrap();
    click_and_wait(&c, Locator::Css("form[action$='/case-number'] button")).await;
    check_page(&c, &axe, "10b-case-number-saved").await;
    c.goto(&format!("{base}/team/families/{f}/print"))
        .await
        .unwrap();
    check_page(&c, &axe, "11-family-print").await;
    c.goto(&format!("{base}/team/")).await.unwrap();
    let src = c.source().await.unwrap();
    assert!(
        src.contains(&f) && src.contains("AMS-2027-0042"),
        "caseload"
    );
    check_page(&c, &axe, "12-caseload").await;
    c.goto(&format!("{base}/team/?filter=action&sort=flags"))
        .await
        .unwrap();
    assert!(
        c.source().await.unwrap().contains(&f),
        "red flag needs action"
    );
    c.goto(&format!("{base}/team/?lang=en")).await.unwrap();
    let lang = c
        .find(Locator::Css("html"))
        .await
        .unwrap()
        .attr("lang")
        .await
        .unwrap();
    assert_eq!(lang.as_deref(), Some("en"));
    check_page(&c, &axe, "13-caseload-en").await;
    c.goto(&format!("{base}/team/?lang=nl")).await.unwrap();

    // A form without (or with a wrong) CSRF token is refused and changes nothing.
    let c2 = fam["checkins"][1]["id"].as_str().unwrap();
    let counts = env.counts();
    let r = form_post(
        addr,
        &format!("/team/checkins/{c2}"),
        &anna_cookie,
        "outcome=reached&mode=phone&at=2027-01-18T10%3A00",
    );
    assert_eq!(r.status, 403, "{}", r.text());
    let r = form_post(
        addr,
        &format!("/team/checkins/{c2}"),
        &anna_cookie,
        "csrf=0000&outcome=reached&mode=phone&at=2027-01-18T10%3A00",
    );
    assert_eq!(r.status, 403);
    assert_eq!(env.counts(), counts);

    // Sign-out ends the session: the old cookie no longer opens anything.
    click_and_wait(&c, Locator::Css("header form button")).await;
    check_page(&c, &axe, "14-signed-out").await;
    c.goto(&format!("{base}/team/")).await.unwrap();
    assert_eq!(path(&c).await, "/team/signin");
    let r = page_get(addr, &format!("/team/families/{f}"), &anna_cookie);
    assert_eq!(r.status, 303);

    // A member of another team gets the same 404 as for something that does not exist.
    c.goto(&format!("{base}/team/signin")).await.unwrap();
    ask_link(&c, ROB).await;
    let rob_link = new_signin_link(&env, &base, &mut seen);
    follow_signin(&c, &rob_link, "/team/").await;
    let rob_cookie = session_cookie(&c).await;
    c.goto(&reminder_link).await.unwrap();
    assert!(h1(&c).await.contains("niet gevonden"), "{}", h1(&c).await);
    check_page(&c, &axe, "15-not-found").await;
    for p in [
        format!("/team/checkins/{c1}"),
        format!("/team/checkins/{c2}"),
        format!("/team/flags/{flag_id}"),
        format!("/team/families/{f}"),
        "/team/families/F-23456789".to_string(),
    ] {
        assert_eq!(page_get(addr, &p, &rob_cookie).status, 404, "{p}");
    }

    // The family moves to Rotterdam: the handover mail links to the handover, where the
    // receiving team reads the dossier and acknowledges.
    env.ok(&[
        "--at",
        "2027-01-18T10:10:00+01:00",
        "move",
        &f,
        "--to",
        ROTTERDAM,
        "--date",
        "2027-02-01",
    ]);
    let body = env.sql("SELECT body FROM outbox WHERE kind = 'handover'");
    let handover_link =
        link_in(&body, &format!("{base}/team/handovers/H-")).expect("handover mail with a link");
    c.goto(&handover_link).await.unwrap();
    assert!(
        c.source().await.unwrap().contains("WEB-child-two"),
        "dossier"
    );
    check_page(&c, &axe, "16-handover").await;
    click_and_wait(&c, Locator::Css("main form button[type=submit]")).await;
    check_page(&c, &axe, "17-handover-done").await;
    assert_eq!(
        env.sql("SELECT status FROM handovers"),
        "acknowledged",
        "handover not acknowledged"
    );

    // Members on the admin API: add, list, remove (a team token gets the 404 of no route).
    let r = http::post_json(
        addr,
        "/v1/members",
        Some(&admin),
        &json!({"municipality": AMSTERDAM, "email": "carla@amsterdam.example.org", "name": "Carla"}),
    );
    assert_eq!(r.status, 201, "{}", r.text());
    let carla = r.json()["id"].as_str().unwrap().to_string();
    let r = http::get(addr, "/v1/members?municipality=GM0363", Some(&admin));
    assert_eq!(r.json().as_array().unwrap().len(), 2);
    let r = http::post_json(
        addr,
        &format!("/v1/members/{carla}/remove"),
        Some(&admin),
        &json!({}),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let r = http::get(addr, "/v1/members", Some(&admin));
    let removed = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| !m["removed_at"].is_null())
        .count();
    assert_eq!(removed, 1);
    assert!(
        !env.sql("SELECT group_concat(detail) FROM audit")
            .contains("carla@"),
        "address audited"
    );

    // A link left unused for more than 15 minutes has expired.
    c.goto(&format!("{base}/team/signin")).await.unwrap();
    ask_link(&c, ROB).await;
    let late_link = new_signin_link(&env, &base, &mut seen);
    let log = daemon.terminate();
    for secret in [
        ANNA,
        ROB,
        "Anna de Vries",
        "Rob Jansen",
        "WEB-",
        "/team/signin/",
    ] {
        assert!(!log.contains(secret), "{secret} in the daemon's log");
    }
    let _later = start_daemon(&env, "2027-01-18T11:00:00+01:00", addr);
    c.goto(&late_link).await.unwrap();
    assert!(h1(&c).await.contains("verlopen"), "{}", h1(&c).await);
    check_page(&c, &axe, "18-link-expired").await;
    // An hour later Rob's session has been idle longer than web.session_idle.
    assert_eq!(page_get(addr, "/team/", &rob_cookie).status, 303);

    // Every sign-in, failed sign-in, view and change left an audit entry.
    let audit = env.sql("SELECT group_concat(DISTINCT action) FROM audit");
    for action in [
        "web.signin.request",
        "web.signin",
        "web.signin.failed",
        "web.signout",
        "web.caseload",
        "web.denied",
        "family.read",
        "checkin.record",
    ] {
        assert!(
            audit.split(',').any(|a| a == action),
            "{action} not audited: {audit}"
        );
    }
    c.close().await.unwrap();
}

/// `[web]` is optional; a base_url with a path or another scheme, or a zero idle time, is
/// refused with the key named.
#[test]
fn web_config_is_checked() {
    let env = TestEnv::new();
    env.ok(&["check-config"]);
    let mut text = std::fs::read_to_string(&env.config_path).unwrap();
    text.push_str(
        "\n[web]\nbase_url = \"ftp://nazorg.example.nl/team\"\nsession_idle = \"PT0M\"\n",
    );
    std::fs::write(&env.config_path, text).unwrap();
    let out = env.run(&["check-config"], None);
    assert_eq!(out.status.code(), Some(78));
    let err =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("web.base_url") && err.contains("web.session_idle"),
        "{err}"
    );
}
