//! Cost of sealing: field seal/open against raw XChaCha20-Poly1305 on the same data, key
//! unwrapping (KEK from its age file, DEK from its wrapping), and `family show` for a
//! family with 8 recorded check-ins.
//!
//! `cargo bench --bench crypto` measures properly; without `--bench` (as
//! `cargo test --all-targets` runs it) a quick smoke version checks that everything works.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use chrono::{TimeDelta, TimeZone, Utc};
use nazorg::clock::{ManualClock, SharedClock};
use nazorg::config::Config;
use nazorg::crypto::{Dek, FieldPlace, Kek};
use nazorg::domain::enrolment::{CaseDirector, Enrolment, Episode, EpisodeKind, MemberInput, Role};
use nazorg::domain::recording::{CheckinRecord, ChildObservations, Mode, Outcome};
use nazorg::service::{App, checkin, family};
use nazorg::store::OpenMode;
use rand::RngCore;
use rand::rngs::OsRng;
use std::collections::BTreeMap;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

const SIZES: &[usize] = &[16, 64, 256, 1024, 4096];

/// Runs `f` in batches until `budget` is spent (at least 5 batches); returns the median
/// time per call.
fn measure(budget: Duration, mut f: impl FnMut()) -> Duration {
    let mut batch: u32 = 1;
    let min_batch = budget / 50;
    loop {
        let t = Instant::now();
        for _ in 0..batch {
            f();
        }
        if t.elapsed() >= min_batch || batch >= 1 << 24 {
            break;
        }
        batch *= 2;
    }
    let mut samples = Vec::new();
    let start = Instant::now();
    while start.elapsed() < budget || samples.len() < 5 {
        let t = Instant::now();
        for _ in 0..batch {
            f();
        }
        samples.push(t.elapsed() / batch);
    }
    samples.sort();
    samples[samples.len() / 2]
}

fn ns(d: Duration) -> f64 {
    d.as_secs_f64() * 1e9
}

fn mb_s(bytes: usize, d: Duration) -> f64 {
    bytes as f64 / d.as_secs_f64() / 1e6
}

fn fmt_time(d: Duration) -> String {
    let n = ns(d);
    if n < 10_000.0 {
        format!("{n:.0} ns")
    } else if n < 10_000_000.0 {
        format!("{:.1} µs", n / 1e3)
    } else {
        format!("{:.2} ms", n / 1e6)
    }
}

/// The associated data a sealed field carries (see src/crypto/keys.rs): the same bytes
/// the library builds, so the raw cipher gets the same AAD length.
fn field_aad(place: &FieldPlace) -> Vec<u8> {
    fn push_part(out: &mut Vec<u8>, part: &[u8]) {
        out.extend_from_slice(&(part.len() as u64).to_be_bytes());
        out.extend_from_slice(part);
    }
    let mut aad = Vec::new();
    push_part(&mut aad, b"nazorg/field");
    aad.push(1);
    for p in [place.family, place.table, place.column, place.row] {
        push_part(&mut aad, p.as_bytes());
    }
    aad
}

struct FieldRow {
    size: usize,
    seal: Duration,
    open: Duration,
    raw_enc: Duration,
    raw_enc_rng: Duration,
    raw_dec: Duration,
}

fn field_bench(budget: Duration) -> Vec<FieldRow> {
    let place = FieldPlace {
        family: "F-7Q2K9XM4",
        table: "members",
        column: "sealed_details",
        row: "M-AB3DE4FG5H",
    };
    let aad = field_aad(&place);
    let dek = Dek::generate();
    let mut key = [0u8; 32];
    OsRng.fill_bytes(&mut key);
    let cipher = XChaCha20Poly1305::new(Key::from_slice(&key));
    let mut rows = Vec::new();
    for &size in SIZES {
        let data: Vec<u8> = (0..size).map(|i| (i * 31 + 7) as u8).collect();

        let sealed = dek.seal(&data, &place);
        assert_eq!(sealed.len(), 1 + 24 + size + 16);
        assert_eq!(&dek.open(&sealed, &place).unwrap()[..], &data[..]);
        let seal = measure(budget, || {
            black_box(dek.seal(black_box(&data), &place));
        });
        let open = measure(budget, || {
            black_box(dek.open(black_box(&sealed), &place).unwrap());
        });

        // Raw: one cipher built once, a counter nonce, the same AAD bytes.
        let mut counter: u64 = 0;
        let mut nonce = [0u8; 24];
        let raw_enc = measure(budget, || {
            counter += 1;
            nonce[..8].copy_from_slice(&counter.to_le_bytes());
            let ct = cipher
                .encrypt(
                    XNonce::from_slice(&nonce),
                    Payload {
                        msg: black_box(&data),
                        aad: &aad,
                    },
                )
                .unwrap();
            black_box(ct);
        });
        // Raw, but with what every seal also does: a fresh OsRng nonce and a cipher
        // built from the key.
        let raw_enc_rng = measure(budget, || {
            let c = XChaCha20Poly1305::new(Key::from_slice(&key));
            let n = XChaCha20Poly1305::generate_nonce(&mut OsRng);
            let ct = c
                .encrypt(
                    &n,
                    Payload {
                        msg: black_box(&data),
                        aad: &aad,
                    },
                )
                .unwrap();
            black_box(ct);
        });
        let n0 = XNonce::from([9u8; 24]);
        let ct = cipher
            .encrypt(
                &n0,
                Payload {
                    msg: &data,
                    aad: &aad,
                },
            )
            .unwrap();
        let raw_dec = measure(budget, || {
            let pt = cipher
                .decrypt(
                    &n0,
                    Payload {
                        msg: black_box(&ct),
                        aad: &aad,
                    },
                )
                .unwrap();
            black_box(pt);
        });
        rows.push(FieldRow {
            size,
            seal,
            open,
            raw_enc,
            raw_enc_rng,
            raw_dec,
        });
    }
    rows
}

fn print_field_table(rows: &[FieldRow]) {
    println!(
        "\nField seal/open vs raw XChaCha20-Poly1305 (AAD {} bytes)",
        {
            let p = FieldPlace {
                family: "F-7Q2K9XM4",
                table: "members",
                column: "sealed_details",
                row: "M-AB3DE4FG5H",
            };
            field_aad(&p).len()
        }
    );
    println!(
        "{:>6}  {:<22} {:>10} {:>12} {:>10}   {:<24} {:>10} {:>10}   {:>9}",
        "size", "ours", "time/op", "ops/s", "MB/s", "raw", "time/op", "MB/s", "overhead"
    );
    for r in rows {
        let line = |op: &str, ours: Duration, raw_name: &str, raw: Duration| {
            println!(
                "{:>6}  {:<22} {:>10} {:>12.0} {:>10.1}   {:<24} {:>10} {:>10.1}   {:>+8.0}ns",
                r.size,
                op,
                fmt_time(ours),
                1.0 / ours.as_secs_f64(),
                mb_s(r.size, ours),
                raw_name,
                fmt_time(raw),
                mb_s(r.size, raw),
                ns(ours) - ns(raw),
            )
        };
        line("Dek::seal", r.seal, "encrypt (counter nonce)", r.raw_enc);
        line(
            "Dek::seal",
            r.seal,
            "encrypt (new+OsRng nonce)",
            r.raw_enc_rng,
        );
        line("Dek::open", r.open, "decrypt", r.raw_dec);
    }
}

struct KeyRows {
    kek_unwrap_1: Duration,
    kek_unwrap_3: Duration,
    kek_wrap_1: Duration,
    dek_unwrap: Duration,
    dek_wrap: Duration,
    dek_generate: Duration,
}

fn key_bench(budget: Duration) -> KeyRows {
    let id = age::x25519::Identity::generate();
    let others: Vec<age::x25519::Identity> =
        (0..2).map(|_| age::x25519::Identity::generate()).collect();
    let kek = Kek::generate();
    let file1 = kek.wrap_for(&[id.to_public()]).unwrap();
    // Ours is the last of three stanzas: the identity tries each in turn.
    let file3 = kek
        .wrap_for(&[others[0].to_public(), others[1].to_public(), id.to_public()])
        .unwrap();
    assert_eq!(
        Kek::unwrap_with(&file1, &id).unwrap().fingerprint(),
        kek.fingerprint()
    );
    assert_eq!(
        Kek::unwrap_with(&file3, &id).unwrap().fingerprint(),
        kek.fingerprint()
    );
    let kek_unwrap_1 = measure(budget, || {
        black_box(Kek::unwrap_with(black_box(&file1), &id).unwrap());
    });
    let kek_unwrap_3 = measure(budget, || {
        black_box(Kek::unwrap_with(black_box(&file3), &id).unwrap());
    });
    let recipients = [id.to_public()];
    let kek_wrap_1 = measure(budget, || {
        black_box(kek.wrap_for(&recipients).unwrap());
    });
    let dek = Dek::generate();
    let wrapped = kek.wrap_dek(&dek, "F-7Q2K9XM4");
    assert_eq!(wrapped.len(), 73);
    kek.unwrap_dek(&wrapped, "F-7Q2K9XM4").unwrap();
    let dek_unwrap = measure(budget, || {
        black_box(kek.unwrap_dek(black_box(&wrapped), "F-7Q2K9XM4").unwrap());
    });
    let dek_wrap = measure(budget, || {
        black_box(kek.wrap_dek(&dek, "F-7Q2K9XM4"));
    });
    let dek_generate = measure(budget, || {
        black_box(Dek::generate());
    });
    KeyRows {
        kek_unwrap_1,
        kek_unwrap_3,
        kek_wrap_1,
        dek_unwrap,
        dek_wrap,
        dek_generate,
    }
}

// ---- family show ---------------------------------------------------------------------------

struct ShowResult {
    median: Duration,
    mean: Duration,
    p99: Duration,
    calls: usize,
    sealed_fields: usize,
}

async fn show_bench(calls: usize) -> ShowResult {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("nazorg.toml");
    let text = common::config_text();
    std::fs::write(&config_path, &text).unwrap();
    let cfg = Config::parse(&text, &config_path, &BTreeMap::new()).unwrap();
    // Enrol 800 days before `now` with the episode that day, so all 8 slots are open; then
    // move the clock to `now`, after the last slot, and record each one. (Slots that were
    // already past at enrolment are stored `lapsed`, and recording a lapsed slot fails; see
    // BENCHMARKS.md.)
    let now = Utc.with_ymd_and_hms(2027, 6, 15, 10, 0, 0).unwrap();
    let enrolled_at = now - TimeDelta::days(800);
    let manual = ManualClock::new(enrolled_at);
    let clock: SharedClock = Arc::new(manual.clone());
    let app = App::open(cfg, clock, OpenMode::CreateAndMigrate)
        .await
        .unwrap();
    let episode_date = enrolled_at.date_naive() - TimeDelta::days(1);
    let member = |role, name: &str, birth: &str| MemberInput {
        role,
        name: name.into(),
        birth_date: Some(birth.parse().unwrap()),
        phone: matches!(role, Role::Adult).then(|| "+31 6 12345678".to_string()),
        email: None,
        sex: None,
    };
    let e = Enrolment {
        episode: Episode {
            kind: EpisodeKind::ShelterExit,
            date: episode_date,
        },
        municipality: "GM0363".into(),
        plan: "standard".into(),
        language: "ar".into(),
        interpreter_needed: true,
        case_director: CaseDirector {
            name: "Regie Voerder".into(),
            email: "regie@team.example.org".into(),
        },
        address: Some("Kerkstraat 12, 1011 AB Amsterdam".into()),
        notes: Some("moeder en kinderen wonen sinds de uitstroom bij oma; contact loopt via het wijkteam, afspraken worden goed nagekomen.".into()),
        stressors: vec!["debts".into(), "housing".into()],
        members: vec![
            member(Role::Adult, "Noor Jansen", "1990-04-02"),
            member(Role::Child, "Sem Jansen", "2014-07-19"),
            member(Role::Child, "Aya Jansen", "2017-02-03"),
            member(Role::Child, "Finn Jansen", "2020-11-30"),
        ],
    };
    let enrolled = family::enrol(&app, &e).await.unwrap();
    assert!(enrolled.checkins.iter().all(|c| c.status == "open"));
    manual.set(now);
    let children: Vec<String> = enrolled.members[1..]
        .iter()
        .map(|m| m.reference.clone())
        .collect();
    for c in &enrolled.checkins {
        let mut fam_obs = BTreeMap::new();
        fam_obs.insert("safety_plan_followed".to_string(), serde_json::json!(true));
        fam_obs.insert("stressors".to_string(), serde_json::json!(["debts"]));
        let r = CheckinRecord {
            checkin: c.id.clone(),
            at: c.due.fixed_offset(),
            outcome: Outcome::Reached,
            mode: Mode::HomeVisit,
            family_observations: fam_obs,
            children: children
                .iter()
                .map(|m| {
                    let mut o = BTreeMap::new();
                    o.insert("behaviour_change".to_string(), serde_json::json!(false));
                    o.insert("school_attendance".to_string(), serde_json::json!("normal"));
                    o.insert("wellbeing".to_string(), serde_json::json!(4));
                    ChildObservations {
                        member: m.clone(),
                        observations: o,
                    }
                })
                .collect(),
            adults: Vec::new(),
            notes: Some("huisbezoek, rustig gesprek; afspraak met budgetcoach gemaakt.".into()),
            by: None,
            referrals: Vec::new(),
        };
        checkin::record(&app, &r).await.unwrap();
    }
    let view = family::show(&app, &enrolled.family).await.unwrap();
    assert_eq!(view.members.len(), 4);
    assert!(view.details.is_some());
    assert_eq!(view.checkins.len(), 8);
    assert!(
        view.checkins
            .iter()
            .all(|c| c.record.is_some() && c.children.len() == 3)
    );
    let sealed_fields = 1 + view.members.len() + 8 + 8 * 3;

    for _ in 0..(calls / 10).max(1) {
        family::show(&app, &enrolled.family).await.unwrap();
    }
    let mut times = Vec::with_capacity(calls);
    let start = Instant::now();
    for _ in 0..calls {
        let t = Instant::now();
        black_box(family::show(&app, &enrolled.family).await.unwrap());
        times.push(t.elapsed());
    }
    let total = start.elapsed();
    times.sort();
    app.store.close().await;
    ShowResult {
        median: times[times.len() / 2],
        mean: total / calls as u32,
        p99: times[(times.len() - 1) * 99 / 100],
        calls,
        sealed_fields,
    }
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let budget = if full {
        Duration::from_millis(400)
    } else {
        Duration::from_millis(10)
    };
    let profile = if cfg!(debug_assertions) {
        "debug (test profile)"
    } else {
        "release (bench profile)"
    };
    if !full {
        println!("crypto smoke run; `cargo bench --bench crypto` for real numbers");
    }
    println!("profile: {profile}");

    let rows = field_bench(budget);
    print_field_table(&rows);

    let keys = key_bench(budget);
    println!("\nKey operations (per call)");
    for (name, d) in [
        (
            "Kek::unwrap_with (age file, 1 recipient: X25519 + HKDF + ChaCha)",
            keys.kek_unwrap_1,
        ),
        (
            "Kek::unwrap_with (age file, 3 recipients, ours last)",
            keys.kek_unwrap_3,
        ),
        ("Kek::wrap_for (1 recipient)", keys.kek_wrap_1),
        ("Kek::unwrap_dek (one family's DEK)", keys.dek_unwrap),
        ("Kek::wrap_dek", keys.dek_wrap),
        ("Dek::generate (OsRng)", keys.dek_generate),
    ] {
        println!(
            "  {name:<66} {:>10}  ({:.0}/s)",
            fmt_time(d),
            1.0 / d.as_secs_f64()
        );
    }

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let show = rt.block_on(show_bench(if full { 3000 } else { 20 }));
    let open_256 = rows
        .iter()
        .find(|r| r.size == 256)
        .map(|r| r.open)
        .unwrap_or_default();
    let crypto_est = open_256 * show.sealed_fields as u32 + keys.dek_unwrap;
    println!(
        "\nfamily::show, 1 adult + 3 children, 8 recorded check-ins with 3 children's observations each"
    );
    println!(
        "  {} calls: median {}, mean {}, p99 {}  ({:.0} shows/s)",
        show.calls,
        fmt_time(show.median),
        fmt_time(show.mean),
        fmt_time(show.p99),
        1.0 / show.mean.as_secs_f64()
    );
    println!(
        "  opens {} sealed fields + 1 DEK unwrap: crypto ≈ {} ({:.1}% of the median; estimated from the 256 B open above)",
        show.sealed_fields,
        fmt_time(crypto_est),
        100.0 * crypto_est.as_secs_f64() / show.median.as_secs_f64()
    );
}
