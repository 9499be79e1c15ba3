//! Issue 14 item 6: the command line explains itself and fails in a form scripts can read.
//! Every argument has help text, reason codes are listed as possible values, `check-config`
//! reports unknown keys with every other problem, and under `--json` every error is JSON.

use crate::support::env::TestEnv;
use clap::CommandFactory;
use serde_json::Value;

/// Every argument of every (sub)command, as `command path: --arg`, that has no help text.
fn undocumented(cmd: &clap::Command, path: &str, out: &mut Vec<String>) {
    for arg in cmd.get_arguments() {
        let has_help = arg
            .get_help()
            .is_some_and(|h| !h.to_string().trim().is_empty());
        if !has_help {
            out.push(format!("{path}: {}", arg.get_id()));
        }
    }
    for sub in cmd.get_subcommands() {
        undocumented(sub, &format!("{path} {}", sub.get_name()), out);
    }
}

#[test]
fn every_argument_has_help_text() {
    let mut cmd = nazorg::cli::Cli::command();
    cmd.build();
    let mut missing = Vec::new();
    undocumented(&cmd, "nazorg", &mut missing);
    assert!(
        missing.is_empty(),
        "arguments without help:\n{}",
        missing.join("\n")
    );
    // The walk reaches the leaves (a broken walk would pass vacuously).
    let close = cmd
        .find_subcommand("family")
        .and_then(|f| f.find_subcommand("close"))
        .expect("family close");
    assert!(close.get_arguments().any(|a| a.get_id() == "reason"));
}

fn possible_values(cmd: &clap::Command, path: &[&str], arg: &str) -> Vec<String> {
    let mut c = cmd;
    for p in path {
        c = c
            .find_subcommand(p)
            .unwrap_or_else(|| panic!("no subcommand {p}"));
    }
    let a = c
        .get_arguments()
        .find(|a| a.get_id() == arg)
        .unwrap_or_else(|| panic!("no --{arg} on {path:?}"));
    a.get_possible_values()
        .iter()
        .map(|v| v.get_name().to_string())
        .collect()
}

#[test]
fn reason_codes_are_possible_values() {
    let cmd = nazorg::cli::Cli::command();
    let expect = |codes: &[&str]| codes.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    assert_eq!(
        possible_values(&cmd, &["family", "close"], "reason"),
        expect(nazorg::service::family::CLOSE_REASONS)
    );
    assert_eq!(
        possible_values(&cmd, &["family", "erase"], "reason"),
        expect(nazorg::service::family::ERASE_REASONS)
    );
    assert_eq!(
        possible_values(&cmd, &["family", "close"], "safety_improved"),
        expect(&["yes", "partly", "no"])
    );
    // `--help` shows them to the operator.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nazorg"))
        .args(["family", "close", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8(out.stdout).unwrap();
    for code in nazorg::service::family::CLOSE_REASONS {
        assert!(help.contains(code), "close --help lacks {code}:\n{help}");
    }
}

/// The one JSON document a failed command prints on stderr under `--json`.
fn json_error(out: &std::process::Output) -> Value {
    let err = String::from_utf8_lossy(&out.stderr);
    let line = err
        .lines()
        .find(|l| l.starts_with('{'))
        .unwrap_or_else(|| panic!("no JSON on stderr:\n{err}"));
    let doc: Value = serde_json::from_str(line).unwrap();
    assert!(
        err.lines().all(|l| !l.starts_with("error:")),
        "text errors under --json:\n{err}"
    );
    assert_eq!(doc["ok"], false);
    assert_eq!(
        Some(i64::from(out.status.code().unwrap())),
        doc["exit"].as_i64()
    );
    doc
}

#[test]
fn check_config_reports_unknown_keys_with_every_other_error_also_as_json() {
    let env = TestEnv::new();
    let text = std::fs::read_to_string(&env.config_path).unwrap();
    // Two unknown keys and a bad value in three sections.
    let broken = text
        .replacen("[database]\n", "colour = \"blue\"\n[database]\n", 1)
        .replacen("[mail]\n", "[mail]\nfrum = \"x@example.org\"\n", 1)
        .replacen(
            "[dispatch]\nmax_attempts = 6",
            "[dispatch]\nmax_attempts = 0",
            1,
        );
    std::fs::write(&env.config_path, broken).unwrap();

    let out = env.run(&["check-config"], None);
    assert_eq!(out.status.code(), Some(78));
    let err = String::from_utf8_lossy(&out.stderr);
    for key in [
        "colour: unknown field `colour`",
        "mail.frum: unknown field `frum`",
        "dispatch.max_attempts: must be at least 1",
    ] {
        assert!(err.contains(key), "missing {key:?} in:\n{err}");
    }

    let out = env.run(&["check-config", "--json"], None);
    assert_eq!(out.status.code(), Some(78));
    let doc = json_error(&out);
    let fields: Vec<&str> = doc["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["colour", "mail.frum", "dispatch.max_attempts"],
        "{doc}"
    );
}

#[test]
fn every_error_is_json_under_json() {
    let env = TestEnv::new();
    let families = env.counts();
    // An input error with its field (the service's validation), nothing changed.
    let out = env.run(
        &[
            "family", "close", "F-NOSUCH", "--reason", "because", "--json",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(65));
    let doc = json_error(&out);
    assert_eq!(doc["errors"][0]["field"], "reason", "{doc}");
    assert_eq!(env.counts(), families);
    // Not found.
    let out = env.run(&["family", "show", "F-AAAAAAAA", "--json"], None);
    let doc = json_error(&out);
    assert_eq!(doc["exit"], 66, "{doc}");
    // A usage error caught by the argument parser.
    let out = env.run(&["family", "close", "--json"], None);
    assert_eq!(out.status.code(), Some(2));
    let doc = json_error(&out);
    assert!(
        doc["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("--reason"),
        "{doc}"
    );
    // A missing config file.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_nazorg"))
        .args(["--config", "/nonexistent/nazorg.toml", "status", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(78));
    json_error(&out);
    // Without --json the same error stays a line of text.
    let out = env.run(
        &["family", "close", "F-NOSUCH", "--reason", "because"],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("error: reason: "), "{err}");
}
