//! Man pages and shell completions, generated from the command line's own definition
//! (clap_mangen, clap_complete) so they cannot drift from `--help`. The package build
//! runs `nazorg generate man|completions --out DIR` (a hidden command) and ships the files.

use std::path::{Path, PathBuf};

/// What `nazorg generate` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Artefact {
    /// One page per command (`nazorg.1`, `nazorg-family.1`, `nazorg-family-enroll.1`, …)
    Man,
    /// `nazorg.bash`, `_nazorg` (zsh) and `nazorg.fish`
    Completions,
}

/// Writes `what` for `cmd` into the folder `out` (created if missing); returns the files
/// the folder holds then.
pub fn generate(
    cmd: clap::Command,
    what: Artefact,
    out: &Path,
) -> Result<Vec<PathBuf>, std::io::Error> {
    std::fs::create_dir_all(out)?;
    match what {
        Artefact::Man => clap_mangen::generate_to(cmd, out)?,
        Artefact::Completions => {
            use clap_complete::Shell;
            let mut cmd = cmd;
            for shell in [Shell::Bash, Shell::Zsh, Shell::Fish] {
                clap_complete::generate_to(shell, &mut cmd, "nazorg", out)?;
            }
        }
    }
    let mut files = std::fs::read_dir(out)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<Vec<_>, _>>()?;
    files.sort();
    Ok(files)
}
