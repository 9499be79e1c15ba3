//! Evaluates the default rules (from config/nazorg.example.toml) for many children with 8
//! check-ins each, over synthetic histories: pure domain evaluation, no I/O.
//!
//! `cargo bench --bench signals` runs 300,000 children. Without `--bench` in argv (as
//! `cargo test --all-targets` runs it) a tiny smoke version runs instead.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use nazorg::config::Config;
use nazorg::domain::enrolment::Observations;
use nazorg::domain::signals::{
    Catalog, Contact, RuleKind, Scope, Visit, evaluate, last_contact_point,
};
use serde_json::json;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

const CHECKINS: usize = 8;

/// A small deterministic generator (xorshift), so runs are comparable.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn history(rng: &mut Rng) -> Vec<(Contact, Option<Observations>)> {
    let mut wellbeing = 5 + rng.below(5) as i64;
    (0..CHECKINS)
        .map(|_| {
            let contact = match rng.below(10) {
                0 => Contact::NotReached,
                1 => Contact::Overdue,
                _ => Contact::Reached,
            };
            if contact != Contact::Reached {
                return (contact, None);
            }
            wellbeing = (wellbeing + rng.below(5) as i64 - 2).clamp(0, 10);
            let o: Observations = BTreeMap::from([
                ("wellbeing".to_string(), json!(wellbeing)),
                ("new_incident".to_string(), json!(rng.below(40) == 0)),
                ("behaviour_change".to_string(), json!(rng.below(8) == 0)),
                (
                    "perpetrator_contact".to_string(),
                    json!(["none", "none", "supervised", "unsupervised"][rng.below(4) as usize]),
                ),
                (
                    "school_attendance".to_string(),
                    json!(
                        ["normal", "normal", "normal", "reduced", "absent", "n/a"]
                            [rng.below(6) as usize]
                    ),
                ),
            ]);
            (contact, Some(o))
        })
        .collect()
}

/// What `checkin record` does per child for the newest check-in: every child rule at it,
/// `out_of_sight` at the last contact point. Returns the number of rules that fired.
fn evaluate_at(catalog: &Catalog, visits: &[Visit], at: usize) -> usize {
    let mut fired = 0;
    for rule in catalog
        .rules
        .iter()
        .filter(|r| r.applies_to == Scope::Child)
    {
        let at = match rule.kind {
            RuleKind::OutOfSight { .. } => match last_contact_point(&visits[..=at]) {
                Some(i) => i,
                None => continue,
            },
            _ => at,
        };
        fired += usize::from(evaluate(catalog, rule, visits, at).is_some());
    }
    fired
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let children: usize = if full { 300_000 } else { 200 };
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/nazorg.example.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let cfg = Config::parse(&text, &path, &BTreeMap::new()).unwrap();
    let catalog = cfg.signals;
    // Make the child scope busy: evaluate out_of_sight per child too.
    let mut catalog = catalog;
    for r in &mut catalog.rules {
        if matches!(r.kind, RuleKind::OutOfSight { .. }) {
            r.applies_to = Scope::Child;
        }
    }

    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let t0 = Instant::now();
    let histories: Vec<_> = (0..children).map(|_| history(&mut rng)).collect();
    let generated = t0.elapsed();
    let names: Vec<String> = (0..CHECKINS).map(|i| format!("C-{i}")).collect();

    // Per child: the whole course, evaluated at each of its 8 check-ins as they are recorded.
    let t = Instant::now();
    let mut fired = 0usize;
    for h in &histories {
        let visits: Vec<Visit> = h
            .iter()
            .zip(&names)
            .map(|((c, o), n)| Visit {
                checkin: n,
                contact: *c,
                observations: o.as_ref(),
            })
            .collect();
        for at in 0..CHECKINS {
            fired += evaluate_at(&catalog, &visits, at);
        }
    }
    let elapsed = t.elapsed();
    let per_child = elapsed.as_secs_f64() / children as f64;
    let per_recording = per_child / CHECKINS as f64;
    println!(
        "signals: {children} children x {CHECKINS} check-ins, {} child rules; generated in {:.2?}",
        catalog
            .rules
            .iter()
            .filter(|r| r.applies_to == Scope::Child)
            .count(),
        generated
    );
    println!(
        "signals: evaluated in {elapsed:.2?}: {:.2} µs per child (8 check-ins), {:.3} µs per check-in recording; {fired} rule firings",
        per_child * 1e6,
        per_recording * 1e6
    );
    assert!(fired > 0, "synthetic histories should fire some rules");
}
