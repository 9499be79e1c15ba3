//! Issue 10 item 2: the simulated clock (`--at`) never touches production. Without
//! NAZORG_SIMULATION=1 it is refused (exit 64) before anything is opened or written, and
//! `--help` does not offer it.

use crate::support::env::{AMSTERDAM, TestEnv, family_body};
use std::process::Output;

const USAGE: i32 = 64;

/// The CLI as an operator runs it: no NAZORG_SIMULATION in the environment.
fn run_production(env: &TestEnv, args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut cmd = env.command(args);
    cmd.env_remove("NAZORG_SIMULATION");
    match stdin {
        None => cmd.output().unwrap(),
        Some(input) => {
            use std::io::Write;
            cmd.stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped());
            let mut child = cmd.spawn().unwrap();
            // A refused command exits without reading its input: a broken pipe is expected.
            let _ = child.stdin.take().unwrap().write_all(input);
            child.wait_with_output().unwrap()
        }
    }
}

#[test]
fn at_is_refused_without_simulation_and_writes_nothing() {
    let env = TestEnv::new();
    env.enrol(
        "2026-01-05T10:00:00Z",
        &family_body(AMSTERDAM, "standard", "2026-01-02", "Sim"),
    );
    let before = env.counts();
    let audit_before = env.sql("SELECT COUNT(*) FROM audit");
    let body = family_body(AMSTERDAM, "standard", "2026-01-02", "Prod");
    let cases: Vec<(Vec<&str>, Option<Vec<u8>>)> = vec![
        (
            vec![
                "--at",
                "2026-03-01T10:00:00Z",
                "family",
                "enroll",
                "--file",
                "-",
            ],
            Some(body.to_string().into_bytes()),
        ),
        (vec!["--at", "2027-06-01T10:00:00Z", "sweep"], None),
        (vec!["sweep", "--at", "2027-06-01T10:00:00Z"], None),
        (vec!["--at", "2027-06-01T10:00:00Z", "serve"], None),
    ];
    for (args, stdin) in cases {
        let out = run_production(&env, &args, stdin.as_deref());
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(USAGE), "{args:?}: {err}");
        assert!(
            err.contains("--at") && err.contains("NAZORG_SIMULATION=1"),
            "{args:?}: {err}"
        );
        assert!(out.stdout.is_empty(), "{args:?}");
    }
    assert_eq!(env.counts(), before, "a refused --at changed the database");
    assert_eq!(env.sql("SELECT COUNT(*) FROM audit"), audit_before);
    assert!(env.eml_files().is_empty(), "a refused sweep sent mail");

    // Without --at the same commands run on the real clock.
    let out = run_production(&env, &["check-config"], None);
    assert!(out.status.success());
    // With the variable, --at behaves as before.
    let swept = env.sweep("2026-01-10T10:00:00Z");
    assert!(swept["sweep"].is_object(), "{swept}");
}

#[test]
fn help_offers_at_only_in_a_simulation() {
    let env = TestEnv::new();
    for args in [vec!["--help"], vec!["sweep", "--help"]] {
        let prod = run_production(&env, &args, None);
        assert!(prod.status.success());
        let text = String::from_utf8(prod.stdout).unwrap();
        assert!(text.contains("--config"), "{text}");
        assert!(!text.contains("--at"), "{args:?} shows --at:\n{text}");

        let sim = env.run(&args, None);
        assert!(sim.status.success());
        let text = String::from_utf8(sim.stdout).unwrap();
        assert!(text.contains("--at"), "{args:?} hides --at:\n{text}");
    }
}
