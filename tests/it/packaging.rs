//! Issue 14 item 4: what the Debian package ships. The unit passes `systemd-analyze verify`
//! and scores at most 1.2 in `systemd-analyze security --offline=yes` (skipped, with a
//! message, where systemd-analyze is absent); the man pages and completions come from the
//! CLI itself. `scripts/package` builds the .deb and checks its contents (the CI runs it).

use std::path::Path;
use std::process::Command;

const UNIT: &str = include_str!("../../systemd/nazorg.service");

fn systemd_analyze() -> Option<&'static str> {
    let found = Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if found {
        Some("systemd-analyze")
    } else {
        eprintln!("skipped: systemd-analyze is not installed (apt-get install systemd)");
        None
    }
}

/// The shipped unit with its binary pointing at the one under test (verify checks that
/// every `Exec…=` command exists), in a temporary folder.
fn unit_under_test(dir: &Path) -> std::path::PathBuf {
    let unit = UNIT.replace("/usr/bin/nazorg", env!("CARGO_BIN_EXE_nazorg"));
    let path = dir.join("nazorg.service");
    std::fs::write(&path, unit).unwrap();
    path
}

#[test]
fn the_unit_passes_systemd_analyze_verify() {
    let Some(analyze) = systemd_analyze() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_under_test(dir.path());
    // --man=no: the man page is installed by the package, not on the test machine.
    let out = Command::new(analyze)
        .args(["verify", "--man=no"])
        .arg(&unit)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let about_ours: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("nazorg.service"))
        .collect();
    assert!(
        out.status.success() && about_ours.is_empty(),
        "systemd-analyze verify: {}\n{stderr}",
        out.status
    );
}

#[test]
fn the_unit_scores_at_most_1_2_in_systemd_analyze_security() {
    let Some(analyze) = systemd_analyze() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_under_test(dir.path());
    let out = Command::new(analyze)
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(&unit)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let score: f64 = text
        .lines()
        .find_map(|l| l.split("Overall exposure level for nazorg.service:").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no exposure level in:\n{text}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    assert!(score <= 1.2, "exposure {score} > 1.2:\n{text}");
    for setting in [
        "IPAddressDeny=any",
        "IPAddressAllow=localhost",
        "PrivateUsers=yes",
        "MemoryMax=",
        "LimitCORE=0",
    ] {
        assert!(
            UNIT.lines().any(|l| l.starts_with(setting)),
            "{setting} in systemd/nazorg.service"
        );
    }
}

/// The man pages and completions are generated from the CLI: a page per command, with the
/// commands' help texts, and completions that know the commands; the hidden `--at` and
/// `generate` stay out.
#[test]
fn man_pages_and_completions_come_from_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    let run = |what: &str, out: &Path| {
        let o = Command::new(env!("CARGO_BIN_EXE_nazorg"))
            .args(["generate", what, "--out"])
            .arg(out)
            .env_remove("NAZORG_SIMULATION")
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let man = dir.path().join("man");
    let listed = run("man", &man);
    let page = std::fs::read_to_string(man.join("nazorg.1")).unwrap();
    assert!(page.contains(".TH nazorg 1"), "{page}");
    assert!(page.contains("backup"), "{page}");
    let backup = std::fs::read_to_string(man.join("nazorg-backup.1")).unwrap();
    assert!(
        backup.contains("A consistent copy of the database"),
        "{backup}"
    );
    assert!(listed.contains("nazorg-family-enroll.1"), "{listed}");
    assert!(!man.join("nazorg-generate.1").exists(), "hidden command");
    assert!(!page.contains("simulate"), "--at stays hidden:\n{page}");

    let comp = dir.path().join("completions");
    run("completions", &comp);
    for file in ["nazorg.bash", "_nazorg", "nazorg.fish"] {
        let text = std::fs::read_to_string(comp.join(file)).unwrap();
        assert!(
            text.contains("backup") && text.contains("check-config"),
            "{file}"
        );
    }
}
