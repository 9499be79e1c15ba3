//! Research exports: k-anonymity over distinct children, checked by an independent checker
//! (its own code, reading only the CSV and the manifest), no personal data in any file,
//! unlinkable pseudonyms between exports and studies, all-or-nothing writing.

use crate::support::env::*;
use chrono::{DateTime, TimeZone, Utc};
use chrono_tz::Europe::Amsterdam;
use nazorg::clock::ManualClock;
use nazorg::service::{self, App};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;

const EXPORT_SECTION: &str = r#"
[export]
k = 3
max_suppression = 0.10
family_k = 2
age_bands = [[[0, 3], [4, 11], [12, 17]], [[0, 11], [12, 17]]]
indicators = ["wellbeing", "school_attendance"]
[export.values]
wellbeing = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]
school_attendance = ["normal", "reduced", "absent", "n/a"]
[export.areas]
VR13 = "noord-west"
VR17 = "zuid-west"
"#;

pub(crate) fn export_env() -> TestEnv {
    let text = config_text("transport = \"file\"\ndir = \"var/outbox\"") + EXPORT_SECTION;
    TestEnv::with_config(&text, |_| String::new())
}

fn local(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Amsterdam
        .with_ymd_and_hms(y, m, d, 10, 0, 0)
        .single()
        .unwrap()
        .with_timezone(&Utc)
}

/// The instant every export in these tests is made: all 8 slots of a family that started
/// in February 2025 have fallen due.
const EXPORT_AT: &str = "2027-03-01T12:00:00+01:00";

/// One child: (name marker, birth date, sex).
type Kid<'a> = (&'a str, &'a str, &'a str);

fn body(municipality: &str, episode: &str, marker: &str, kids: &[Kid]) -> Value {
    let mut members = vec![
        json!({"role": "adult", "name": format!("{marker}-adult-name"), "birth_date": "1988-03-04", "phone": "+31 6 11112222"}),
    ];
    for (name, birth, sex) in kids {
        members.push(json!({"role": "child", "name": format!("{marker}-{name}"), "birth_date": birth, "sex": sex}));
    }
    json!({
        "episode": {"kind": "shelter_exit", "date": episode},
        "municipality": municipality,
        "plan": "standard",
        "case_director": {"name": format!("{marker}-director"), "email": "director@team.example.org"},
        "address": format!("{marker}-address Keizersgracht 99"),
        "notes": format!("{marker}-family-note"),
        "members": members,
    })
}

struct Enrolled {
    checkins: Vec<String>,
    children: Vec<String>,
}

async fn enrol(app: &App, clock: &ManualClock, at: DateTime<Utc>, b: &Value) -> Enrolled {
    clock.set(at);
    let e = nazorg::domain::parse_json(b.to_string().as_bytes()).unwrap();
    let out = service::family::enrol(app, &e).await.unwrap();
    Enrolled {
        checkins: out.checkins.iter().map(|c| c.id.clone()).collect(),
        children: out
            .members
            .iter()
            .filter(|m| m.role == "child")
            .map(|m| m.reference.clone())
            .collect(),
    }
}

async fn record(app: &App, clock: &ManualClock, at: &str, f: &Enrolled, wave: usize, obs: Value) {
    clock.set(local(2027, 3, 1));
    let children: Vec<Value> = f
        .children
        .iter()
        .map(|c| json!({"member": c, "observations": obs}))
        .collect();
    let body = json!({
        "checkin": f.checkins[wave], "at": at, "outcome": "reached", "mode": "home_visit",
        "family_observations": {"stressors": ["housing"]},
        "children": children, "notes": "SECRET-NOTE-MARKER the father came by",
    });
    let rec = nazorg::domain::parse_json(body.to_string().as_bytes()).unwrap();
    service::checkin::record(app, &rec).await.unwrap();
}

/// The cohort: 20 families with a girl of 5 and a boy of 8 in Amsterdam; plus the three
/// fixtures that must be caught: twin girls (each child is common, the family is unique),
/// a girl whose family started late (5 rows, not 8), and one 16-year-old boy in Rotterdam.
pub(crate) async fn cohort(env: &TestEnv) {
    let clock = ManualClock::new(local(2025, 2, 2));
    let app = env.app(Arc::new(clock.clone())).await;
    let mut first = None;
    for i in 0..20 {
        let kids: &[Kid] = &[("girl", "2020-01-01", "f"), ("boy", "2016-06-01", "m")];
        let f = enrol(
            &app,
            &clock,
            local(2025, 2, 2),
            &body(AMSTERDAM, "2025-02-01", &format!("MARKER{i:02}"), kids),
        )
        .await;
        if first.is_none() {
            first = Some(f);
        }
    }
    let twins: &[Kid] = &[("twin-a", "2020-01-01", "f"), ("twin-b", "2020-01-01", "f")];
    enrol(
        &app,
        &clock,
        local(2025, 2, 2),
        &body(AMSTERDAM, "2025-02-01", "MARKERTWIN", twins),
    )
    .await;
    let late: &[Kid] = &[("late-girl", "2021-01-01", "f")];
    enrol(
        &app,
        &clock,
        local(2026, 5, 2),
        &body(AMSTERDAM, "2026-05-01", "MARKERLATE", late),
    )
    .await;
    let rare: &[Kid] = &[("rare-boy", "2008-05-01", "m")];
    enrol(
        &app,
        &clock,
        local(2025, 2, 2),
        &body(ROTTERDAM, "2025-02-01", "MARKERRARE", rare),
    )
    .await;
    let first = first.unwrap();
    record(
        &app,
        &clock,
        "2025-02-17T10:30:00+01:00",
        &first,
        0,
        json!({"wellbeing": 8, "school_attendance": "normal"}),
    )
    .await;
    record(
        &app,
        &clock,
        "2025-03-17T11:30:00+01:00",
        &first,
        1,
        json!({"wellbeing": 3}),
    )
    .await;
    app.store.close().await;
}

fn export(env: &TestEnv, out: &Path, extra: &[&str]) -> std::process::Output {
    let mut args = vec!["--at", EXPORT_AT, "export", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    env.run(&args, None)
}

fn export_ok(env: &TestEnv, name: &str, extra: &[&str]) -> PathBuf {
    let out = env.path(name);
    let o = export(env, &out, extra);
    assert!(
        o.status.success(),
        "export failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

/// The CSV as (header, rows) with a plain split: the codebook promises no commas or quotes.
fn read_csv(dir: &Path) -> (Vec<String>, Vec<Vec<String>>) {
    let text = std::fs::read_to_string(dir.join("followup.csv")).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines.next().unwrap().split(',').map(String::from).collect();
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split(',').map(String::from).collect::<Vec<_>>())
        .collect();
    for r in &rows {
        assert_eq!(r.len(), header.len());
    }
    (header, rows)
}

fn manifest(dir: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

/// The independent checker: recomputes, from the CSV and the manifest's
/// `quasi_identifiers` alone, each distinct child's signature (its quasi-identifier
/// values, the highest `moves_so_far`, its number of rows), and each family's combined
/// signature; fails on any class of children smaller than k or of families smaller than
/// family_k. Returns the class sizes of children.
pub(crate) fn check_k_anonymity(dir: &Path) -> Vec<usize> {
    let (header, rows) = read_csv(dir);
    let m = manifest(dir);
    let k = m["k"]["requested"].as_u64().unwrap() as usize;
    let family_k = m["k"]["family_k"].as_u64().unwrap() as usize;
    let qis: Vec<String> = m["quasi_identifiers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect();
    let col = |name: &str| {
        header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name}"))
    };
    let (child_col, family_col) = (col("child"), col("family"));
    // child → (family, per-QI set of values, rows)
    let mut children: BTreeMap<String, (String, Vec<BTreeSet<String>>, usize)> = BTreeMap::new();
    for r in &rows {
        let e = children
            .entry(r[child_col].clone())
            .or_insert_with(|| (r[family_col].clone(), vec![BTreeSet::new(); qis.len()], 0));
        assert_eq!(e.0, r[family_col], "a child in two families");
        for (i, q) in qis.iter().enumerate() {
            e.1[i].insert(r[col(q)].clone());
        }
        e.2 += 1;
    }
    let moves_rank = |v: &str| {
        if v == "3+" {
            3
        } else {
            v.parse::<u32>().unwrap()
        }
    };
    let signature = |sets: &Vec<BTreeSet<String>>, n: usize| -> Vec<String> {
        let mut s: Vec<String> = qis
            .iter()
            .zip(sets)
            .map(|(q, vals)| {
                if q == "moves_so_far" {
                    vals.iter().max_by_key(|v| moves_rank(v)).unwrap().clone()
                } else {
                    assert_eq!(vals.len(), 1, "{q} is not fixed per child");
                    vals.iter().next().unwrap().clone()
                }
            })
            .collect();
        s.push(format!("rows={n}"));
        s
    };
    let mut classes: BTreeMap<Vec<String>, usize> = BTreeMap::new();
    let mut families: BTreeMap<String, Vec<Vec<String>>> = BTreeMap::new();
    for (family, sets, n) in children.values() {
        let sig = signature(sets, *n);
        *classes.entry(sig.clone()).or_default() += 1;
        families.entry(family.clone()).or_default().push(sig);
    }
    for (sig, n) in &classes {
        assert!(
            *n >= k,
            "class {sig:?} has {n} children, fewer than k = {k}"
        );
    }
    let mut fclasses: BTreeMap<Vec<Vec<String>>, usize> = BTreeMap::new();
    for mut sigs in families.into_values() {
        sigs.sort();
        *fclasses.entry(sigs).or_default() += 1;
    }
    for (sig, n) in &fclasses {
        assert!(
            *n >= family_k,
            "family signature {sig:?} shared by {n} < {family_k} families"
        );
    }
    assert_eq!(
        m["counts"]["children_out"].as_u64().unwrap() as usize,
        children.len()
    );
    assert_eq!(
        m["counts"]["rows_out"].as_u64().unwrap() as usize,
        rows.len()
    );
    classes.into_values().collect()
}

fn pseudonyms(dir: &Path) -> (BTreeSet<String>, BTreeMap<String, String>) {
    let (header, rows) = read_csv(dir);
    let c = header.iter().position(|h| h == "child").unwrap();
    let f = header.iter().position(|h| h == "family").unwrap();
    let mut all = BTreeSet::new();
    let mut child_family = BTreeMap::new();
    for r in rows {
        all.insert(r[c].clone());
        all.insert(r[f].clone());
        child_family.insert(r[c].clone(), r[f].clone());
    }
    (all, child_family)
}

fn all_output_text(dir: &Path) -> String {
    let mut s = String::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        s.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap()));
    }
    s
}

#[tokio::test]
async fn export_is_k_anonymous_over_children_and_catches_the_fixtures() {
    let env = export_env();
    cohort(&env).await;
    let dir = export_ok(&env, "out1", &[]);
    let files: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(
        files,
        [
            "codebook.json",
            "codebook.md",
            "followup.csv",
            "manifest.json"
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    );
    let sizes = check_k_anonymity(&dir);
    assert!(sizes.iter().all(|n| *n >= 3), "{sizes:?}");

    let m = manifest(&dir);
    assert_eq!(m["counts"]["children_in"], 44);
    assert_eq!(m["counts"]["families_in"], 23);
    // The lone child with 5 rows, the twins (unique as a family) and the rare boy are gone.
    assert_eq!(m["suppressed"]["children"], 4, "{m:#}");
    // 2 < k: shown without the count.
    assert_eq!(
        m["suppressed"]["why"]["family_signature_rare"], "fewer than k",
        "{m:#}"
    );
    assert_eq!(
        m["suppressed"]["why"]["class_smaller_than_k"], "fewer than k",
        "{m:#}"
    );
    assert_eq!(m["counts"]["children_out"], 40);
    assert_eq!(m["counts"]["rows_out"], 320);
    assert!(m["k"]["achieved"].as_u64().unwrap() >= 3);
    assert!(m["risk"]["children"]["highest"].as_f64().unwrap() <= 1.0 / 3.0);
    assert!(m["risk"]["families"]["highest"].as_f64().unwrap() <= 0.5);
    let (header, rows) = read_csv(&dir);
    let rows_col = header
        .iter()
        .position(|h| h == "age_band_at_start")
        .unwrap();
    assert!(
        rows.iter().all(|r| r[rows_col] != "12-17"),
        "the 16-year-old boy is out"
    );
    let expected: Vec<&str> = vec![
        "child",
        "family",
        "wave",
        "months_since_start",
        "episode_kind",
        "start_period",
        "age_band_at_start",
        "sex",
        "region",
        "moves_so_far",
        "outcome",
        "mode",
        "wellbeing",
        "school_attendance",
        "flags",
        "plan",
        "plan_status",
        "safety_improved",
        "professionals",
    ];
    assert_eq!(header, expected);
    // Recorded observations come through as codes; free text does not.
    let w = header.iter().position(|h| h == "wellbeing").unwrap();
    let values: BTreeSet<&str> = rows.iter().map(|r| r[w].as_str()).collect();
    assert!(values.contains("8"), "{values:?}");
    // Every file's hash is in the manifest.
    for name in ["followup.csv", "codebook.md", "codebook.json"] {
        use sha2::Digest;
        let h = sha2::Sha256::digest(std::fs::read(dir.join(name)).unwrap());
        let hex: String = h.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(m["files"][name], hex.as_str(), "{name}");
    }
    // The export is recorded and audited, without the key.
    assert_eq!(env.sql("SELECT COUNT(*) FROM exports"), "1");
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM audit WHERE action = 'export.create'"),
        "1"
    );
    assert_eq!(env.sql("SELECT COUNT(*) FROM export_studies"), "0");
}

#[tokio::test]
async fn export_never_contains_personal_data_or_exact_dates() {
    // Nothing personal in any file.
    let env2 = export_env();
    cohort(&env2).await;
    let dir = export_ok(&env2, "out", &["--study", "cohort2027"]);
    let text = all_output_text(&dir);
    for needle in [
        "MARKER",
        "SECRET",
        "Keizersgracht",
        "director",
        "GM0363",
        "GM0599",
        "Amsterdam",
        "2020-01-01",
        "2016-06-01",
        "2008-05-01",
        "2025-02-01",
        "2025-02-17",
        "2025-03-17",
        "2026-05-01",
        "2026-05-02",
        "2025-02-02",
        "housing",
        "stable",
        "+31",
        "1988-03-04",
    ] {
        assert!(!text.contains(needle), "{needle} appears in the export");
    }
    // No internal reference (family, member, check-in) either.
    let refs = env2.sql("SELECT ref FROM families UNION ALL SELECT ref FROM members UNION ALL SELECT ref FROM checkins");
    assert!(refs.lines().count() > 200);
    for r in refs.lines() {
        assert!(
            !text.contains(r),
            "internal reference {r} appears in the export"
        );
    }
    let stderr =
        String::from_utf8_lossy(&export(&env2, &env2.path("again"), &[]).stderr).to_string();
    assert!(!stderr.contains("MARKER"));
}

#[tokio::test]
async fn export_pseudonyms_link_only_within_a_study() {
    let env = export_env();
    cohort(&env).await;
    let a = pseudonyms(&export_ok(&env, "a", &[]));
    let b = pseudonyms(&export_ok(&env, "b", &[]));
    assert!(
        a.0.is_disjoint(&b.0),
        "two exports without --study share a pseudonym"
    );
    let s1 = pseudonyms(&export_ok(&env, "s1", &["--study", "cohort2027"]));
    let s1b = pseudonyms(&export_ok(&env, "s1b", &["--study", "cohort2027"]));
    assert_eq!(
        s1.1, s1b.1,
        "the same study must see the same child under the same pseudonym"
    );
    let s2 = pseudonyms(&export_ok(&env, "s2", &["--study", "othertrial"]));
    assert!(
        s1.0.is_disjoint(&s2.0),
        "different studies share a pseudonym"
    );
    assert!(s1.0.is_disjoint(&a.0) && s1.0.is_disjoint(&b.0));
    assert_eq!(env.sql("SELECT COUNT(*) FROM export_studies"), "2");
    // The study key is sealed (73-byte wrapped key), never plain.
    assert_eq!(
        env.sql("SELECT length(wrapped_key) FROM export_studies WHERE code = 'cohort2027'"),
        "73"
    );
    assert_eq!(env.sql("SELECT COUNT(*) FROM exports"), "5");

    // The study's pseudonyms survive a key rotation.
    env.ok(&["keys", "rotate", "--new-kek"]);
    let s1c = pseudonyms(&export_ok(&env, "s1c", &["--study", "cohort2027"]));
    assert_eq!(s1.1, s1c.1);
}

fn nothing_written(env: &TestEnv, out: &Path) {
    assert!(!out.exists());
    let leftovers: Vec<String> = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n.contains("nazorg-export"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    assert_eq!(env.sql("SELECT COUNT(*) FROM exports"), "0");
    assert_eq!(env.sql("SELECT COUNT(*) FROM export_studies"), "0");
    assert_eq!(
        env.sql("SELECT COUNT(*) FROM audit WHERE action = 'export.create'"),
        "0"
    );
}

#[tokio::test]
async fn export_impossible_k_fails_clearly_and_writes_nothing() {
    let env = export_env();
    let clock = ManualClock::new(local(2025, 2, 2));
    let app = env.app(Arc::new(clock.clone())).await;
    for i in 0..2 {
        let kids: &[Kid] = &[("girl", "2020-01-01", "f")];
        enrol(
            &app,
            &clock,
            local(2025, 2, 2),
            &body(AMSTERDAM, "2025-02-01", &format!("TINY{i}"), kids),
        )
        .await;
    }
    app.store.close().await;
    let out = env.path("tiny");
    let o = export(&env, &out, &["--k", "5", "--study", "tinystudy"]);
    assert_eq!(o.status.code(), Some(65));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("k = 5 cannot be reached"), "{err}");
    assert!(err.contains("nothing was written"), "{err}");
    nothing_written(&env, &out);
}

#[tokio::test]
async fn export_bad_input_is_refused_with_exit_65() {
    let env = export_env();
    let out = env.path("bad");
    for (args, needle) in [
        (vec!["--k", "0"], "k: must be at least 1"),
        (
            vec!["--k", "2"],
            "below the configured minimum export.k = 3",
        ),
        (
            vec!["--from", "2026-05-01", "--to", "2026-01-01"],
            "from: is after --to",
        ),
        (vec!["--study", "Bad Study!"], "study: a study code"),
        (vec!["--from", "01-05-2026"], "from: expected a date"),
    ] {
        let o = export(&env, &out, &args);
        assert_eq!(o.status.code(), Some(65), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(err.contains(needle), "{args:?}: {err}");
        nothing_written(&env, &out);
    }
    // An existing folder is never overwritten.
    std::fs::create_dir(&out).unwrap();
    let o = export(&env, &out, &[]);
    assert_eq!(o.status.code(), Some(65));
    assert_eq!(std::fs::read_dir(&out).unwrap().count(), 0);
}

/// The checker itself must catch what the anonymiser might miss: written by hand, a CSV
/// in which one child has 5 rows and the others 8 (a row-counting tool would call the
/// five rows "5-anonymous").
#[test]
#[should_panic(expected = "fewer than k = 3")]
fn export_checker_catches_a_child_with_five_rows() {
    let dir = tempfile::tempdir().unwrap();
    let mut csv = String::from(
        "child,family,age_band_at_start,sex,region,episode_kind,start_period,moves_so_far\n",
    );
    for child in 0..4 {
        let rows = if child == 3 { 5 } else { 8 };
        for _ in 0..rows {
            csv.push_str(&format!(
                "{child:032x},{:032x},4-11,f,VR13,shelter_exit,2025-H1,0\n",
                100 + child
            ));
        }
    }
    std::fs::write(dir.path().join("followup.csv"), csv).unwrap();
    let m = json!({
        "k": {"requested": 3, "family_k": 1},
        "quasi_identifiers": ["age_band_at_start", "sex", "region", "episode_kind", "start_period", "moves_so_far"],
        "counts": {"children_out": 4, "rows_out": 29},
    });
    std::fs::write(dir.path().join("manifest.json"), m.to_string()).unwrap();
    check_k_anonymity(dir.path());
}

#[test]
fn export_config_defaults_and_errors_name_their_keys() {
    let base = config_text("transport = \"file\"\ndir = \"var/outbox\"");
    let p = Path::new("/tmp/nazorg.toml");
    let env = BTreeMap::new();
    let cfg = nazorg::config::Config::parse(&base, p, &env).unwrap();
    assert_eq!(cfg.export.k, 10);
    assert_eq!(cfg.export.max_suppression, 0.05);
    assert_eq!(cfg.export.age_bands[0], vec![(0, 3), (4, 11), (12, 17)]);
    let bad = base
        + "[export]\nk = 0\nmax_suppression = 1.5\nage_bands = [[[0, 5], [4, 11]], [[0, 3]]]\nindicators = [\"wellbeing\", \"sex\"]\n[export.areas]\nVR13 = \"noord-west\"\n";
    let e = nazorg::config::Config::parse(&bad, p, &env).unwrap_err();
    let keys: BTreeSet<String> = e.issues().into_iter().map(|i| i.key).collect();
    for k in [
        "export.k",
        "export.max_suppression",
        "export.age_bands[0][1]",
        "export.age_bands[1]",
        "export.indicators[1]",
        "export.values.wellbeing",
        "export.areas",
    ] {
        assert!(keys.contains(k), "{k} not in {keys:?}");
    }
}

fn one_girl(start: &str, marker: &str) -> Value {
    body(AMSTERDAM, start, marker, &[("girl", "2020-01-01", "f")])
}

/// Rows of several exports of one study joined on the pseudonym, as a researcher would:
/// a row per child per check-in (`wave`), written with a manifest the checker reads.
fn join_exports(dirs: &[&Path], into: &Path) {
    std::fs::create_dir(into).unwrap();
    let (header, _) = read_csv(dirs[0]);
    let c = header.iter().position(|h| h == "child").unwrap();
    let w = header.iter().position(|h| h == "wave").unwrap();
    let mut rows: BTreeMap<(String, String), Vec<String>> = BTreeMap::new();
    for d in dirs {
        let (h, rs) = read_csv(d);
        assert_eq!(h, header);
        for r in rs {
            rows.entry((r[c].clone(), r[w].clone())).or_insert(r);
        }
    }
    let mut text = header.join(",") + "\n";
    for r in rows.values() {
        text.push_str(&r.join(","));
        text.push('\n');
    }
    std::fs::write(into.join("followup.csv"), text).unwrap();
    let first = manifest(dirs[0]);
    let children: BTreeSet<&String> = rows.keys().map(|(c, _)| c).collect();
    let m = json!({
        "k": first["k"],
        "quasi_identifiers": first["quasi_identifiers"],
        "counts": {"children_out": children.len(), "rows_out": rows.len()},
    });
    std::fs::write(into.join("manifest.json"), m.to_string()).unwrap();
}

/// Girls of the same age and sex whose plans started at three moments. Window A
/// (February–April 2025) has 2 rows for X, the three Y girls (same start as X) and the
/// January starters, 1 for the March starters; the Y families are then closed, so window B
/// (May–August) has 2 rows for X and the March starters, 1 for the January starters, none
/// for Y. Each export alone is 3-anonymous with X inside a class of at least 6, but joined
/// X would be the only child with 4 distinct check-ins: the study's union check leaves X
/// out of the second export (X stays hidden among the Y girls of the first).
#[tokio::test]
async fn export_study_windows_joined_on_the_pseudonym_never_single_out_a_child() {
    let env = export_env();
    let clock = ManualClock::new(local(2025, 1, 11));
    let app = env.app(Arc::new(clock.clone())).await;
    for i in 0..5 {
        enrol(
            &app,
            &clock,
            local(2025, 1, 11),
            &one_girl("2025-01-10", &format!("JAN{i}")),
        )
        .await;
        enrol(
            &app,
            &clock,
            local(2025, 3, 21),
            &one_girl("2025-03-20", &format!("MAR{i}")),
        )
        .await;
    }
    enrol(
        &app,
        &clock,
        local(2025, 2, 2),
        &one_girl("2025-02-01", "XGIRL"),
    )
    .await;
    let mut ys = Vec::new();
    for i in 0..3 {
        let e = nazorg::domain::parse_json(
            one_girl("2025-02-01", &format!("YGIRL{i}"))
                .to_string()
                .as_bytes(),
        )
        .unwrap();
        ys.push(service::family::enrol(&app, &e).await.unwrap().family);
    }
    app.store.close().await;
    let a = env.path("wa");
    env.ok(&[
        "--at",
        "2025-05-01T00:30:00+02:00",
        "export",
        "--out",
        a.to_str().unwrap(),
        "--study",
        "windows",
        "--from",
        "2025-02-01",
        "--to",
        "2025-04-30",
    ]);
    for y in &ys {
        env.ok(&[
            "--at",
            "2025-05-01T10:00:00+02:00",
            "family",
            "close",
            y,
            "--reason",
            "family_moved_abroad",
            "--safety-improved",
            "yes",
            "--professionals",
            "1",
        ]);
    }
    let window_b = &[
        "--study",
        "windows",
        "--from",
        "2025-05-01",
        "--to",
        "2025-08-31",
    ];
    let b = export_ok(&env, "wb", window_b);
    // Each export alone is k-anonymous; A holds all 14 children.
    check_k_anonymity(&a);
    check_k_anonymity(&b);
    assert_eq!(manifest(&a)["counts"]["children_out"], 14);
    let mb = manifest(&b);
    assert_eq!(mb["counts"]["children_out"], 10, "{mb:#}");
    assert_eq!(
        mb["suppressed"]["why"]["study_union_too_rare"], "fewer than k",
        "{mb:#}"
    );
    assert_eq!(
        mb["generalisation"],
        manifest(&a)["generalisation"],
        "levels frozen"
    );
    // Joined on the pseudonym: still k-anonymous over children and families.
    let joined = env.path("joined");
    join_exports(&[&a, &b], &joined);
    let sizes = check_k_anonymity(&joined);
    assert!(sizes.iter().all(|n| *n >= 3), "{sizes:?}");
    // A third export over both windows at once keeps that true.
    let c = export_ok(
        &env,
        "wc",
        &[
            "--study",
            "windows",
            "--from",
            "2025-02-01",
            "--to",
            "2025-08-31",
        ],
    );
    let joined = env.path("joined3");
    join_exports(&[&a, &b, &c], &joined);
    check_k_anonymity(&joined);
    // The study's state is sealed: no pseudonym of the files in the database.
    let state = env.sql("SELECT length(sealed_state) FROM export_study_releases");
    assert!(state.parse::<u64>().unwrap() > 100, "{state}");
    let db = String::from_utf8_lossy(&env.stored_bytes()).to_string();
    for p in pseudonyms(&a).0 {
        assert!(!db.contains(&p));
    }
    // Without a study, the same window B is decided alone and keeps X: the union check
    // is what removed it.
    let alone = export_ok(
        &env,
        "alone",
        &["--from", "2025-05-01", "--to", "2025-08-31"],
    );
    assert_eq!(manifest(&alone)["counts"]["children_out"], 11);
}

#[tokio::test]
async fn export_refused_for_k_reveals_no_count() {
    let env = export_env();
    let clock = ManualClock::new(local(2025, 2, 2));
    let app = env.app(Arc::new(clock.clone())).await;
    for i in 0..7 {
        enrol(
            &app,
            &clock,
            local(2025, 2, 2),
            &one_girl("2025-02-01", &format!("FEW{i}")),
        )
        .await;
    }
    app.store.close().await;
    let out = env.path("few");
    let o = export(&env, &out, &["--k", "9"]);
    assert_eq!(o.status.code(), Some(65));
    let err = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(err.contains("k = 9 cannot be reached"), "{err}");
    // No digit but the k asked for: not the 7 children, not a share of them.
    let rest = err.replace("k = 9", "");
    assert!(!rest.chars().any(|c| c.is_ascii_digit()), "{err}");
    nothing_written(&env, &out);
}

/// The cohort with flags at several check-ins: per child (a new incident for one child,
/// unsupervised contact for the other) and per family (a new stressor), so the flags
/// column holds none, one and several codes, some of them the family's.
async fn flagged_cohort(env: &TestEnv) {
    cohort(env).await;
    let clock = ManualClock::new(local(2027, 3, 1));
    let app = env.app(Arc::new(clock.clone())).await;
    let families: Vec<String> = env
        .sql("SELECT ref FROM families WHERE ref IN (SELECT f.ref FROM families f JOIN members m ON m.family_id = f.id WHERE m.role = 'child' GROUP BY f.id HAVING COUNT(*) = 2) ORDER BY id")
        .lines()
        .map(String::from)
        .collect();
    for (n, f) in families.iter().enumerate().take(12) {
        let kids: Vec<String> = env
            .sql(&format!("SELECT m.ref FROM members m JOIN families f ON f.id = m.family_id WHERE f.ref = '{f}' AND m.role = 'child' ORDER BY m.position"))
            .lines()
            .map(String::from)
            .collect();
        let wave = 2 + n % 3;
        let checkin = env.sql(&format!(
            "SELECT c.ref FROM checkins c JOIN families f ON f.id = c.family_id WHERE f.ref = '{f}' AND c.wave = {} ORDER BY c.id LIMIT 1",
            wave + 1
        ));
        let mut children = vec![
            json!({"member": kids[0], "observations": {"new_incident": n % 2 == 0, "wellbeing": 6}}),
        ];
        children.push(json!({"member": kids[1], "observations": {"perpetrator_contact": if n % 3 == 0 {"unsupervised"} else {"none"}, "school_attendance": "reduced"}}));
        let body = json!({
            "checkin": checkin, "at": "2025-09-01T10:00:00+02:00", "outcome": "reached", "mode": "phone",
            "family_observations": {"stressors": if n % 4 == 0 {json!(["debts", "housing"])} else {json!([])}},
            "children": children,
        });
        let rec = nazorg::domain::parse_json(body.to_string().as_bytes()).unwrap();
        service::checkin::record(&app, &rec).await.unwrap();
    }
    app.store.close().await;
}

/// The CSV in a form that does not depend on the export's random key or row order: per
/// family its children's rows (pseudonyms left out, each child's rows sorted), families
/// sorted, equal families counted.
fn canonical_rows(dir: &Path) -> String {
    let (header, rows) = read_csv(dir);
    let c = header.iter().position(|h| h == "child").unwrap();
    let f = header.iter().position(|h| h == "family").unwrap();
    let mut families: BTreeMap<String, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for r in &rows {
        let rest: Vec<&str> = r
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != c && *i != f)
            .map(|(_, v)| v.as_str())
            .collect();
        families
            .entry(r[f].clone())
            .or_default()
            .entry(r[c].clone())
            .or_default()
            .push(rest.join(","));
    }
    let mut blocks: BTreeMap<String, usize> = BTreeMap::new();
    for children in families.into_values() {
        let mut kids: Vec<String> = children
            .into_values()
            .map(|mut rows| {
                rows.sort();
                rows.join("\n    ")
            })
            .collect();
        kids.sort();
        *blocks
            .entry(format!("  child\n    {}\n", kids.join("\n  child\n    ")))
            .or_default() += 1;
    }
    let mut out = format!("{}\n", header.join(","));
    for (block, n) in blocks {
        out.push_str(&format!("family x{n}\n{block}"));
    }
    out
}

/// The same installation gives the same rows, flags and suppressions as the export before
/// it was rewritten to stream (tests/it/export_fixture.txt was written by that version):
/// a whole export, a study's, and one limited to a window.
#[tokio::test]
async fn export_rows_are_those_of_the_recorded_fixture() {
    let env = export_env();
    flagged_cohort(&env).await;
    let mut got = String::new();
    for (name, extra) in [
        ("all", &[][..]),
        ("study", &["--study", "cohort2027"][..]),
        (
            "window",
            &["--from", "2025-03-01", "--to", "2026-06-30"][..],
        ),
    ] {
        let dir = export_ok(&env, name, extra);
        let m = manifest(&dir);
        got.push_str(&format!(
            "== {name}: rows_out {} children_out {} suppressed {} generalisation {}\n",
            m["counts"]["rows_out"],
            m["counts"]["children_out"],
            m["suppressed"]["children"],
            m["generalisation"]
        ));
        got.push_str(&canonical_rows(&dir));
    }
    let want = include_str!("export_fixture.txt");
    if got != want {
        let _ = std::fs::write(env.path("export_fixture.got.txt"), &got);
        panic!("the export's rows changed:\n{got}");
    }
}
