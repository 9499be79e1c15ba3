//! The `nazorg` command line: the arguments (clap) and one module per command group, each
//! calling the library and printing. Errors go to stderr with a sysexits code; `--json`
//! prints data as JSON on every command that prints data. `main.rs` only parses and
//! dispatches here.

/// `error_out!("…", args)`: an error for the user, as text now or JSON at exit (`--json`).
macro_rules! error_out {
    ($($arg:tt)*) => {
        $crate::cli::say_error(None, format!($($arg)*))
    };
}

pub mod audit;
pub mod checkin;
pub mod export;
pub mod family;
pub mod flags;
pub mod handover;
pub mod keys;
pub mod member;
pub mod ops;
pub mod outbox;
pub mod token;

use self::audit::AuditCommand;
use self::checkin::CheckinCommand;
use self::family::FamilyCommand;
use self::flags::FlagsCommand;
use self::handover::HandoverCommand;
use self::keys::KeysCommand;
use self::member::MemberCommand;
use self::outbox::OutboxCommand;
use self::token::TokenCommand;
use crate::clock::{FixedClock, OffsetClock, SharedClock, SystemClock};
use crate::config::{self, Config};
use crate::service::{self, App, OpError};
use crate::store::{OpenMode, Store, StoreError};
use anyhow::Context;
use chrono::{DateTime, Utc};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use serde::Serialize;
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

// The whole command line (parsed in main.rs).
#[derive(Parser)]
#[command(
    name = "nazorg",
    version,
    about = "Longitudinal aftercare after domestic violence"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

// Options every command takes.
#[derive(Args)]
pub struct Global {
    /// Config file [default: $NAZORG_CONFIG, else /etc/nazorg/nazorg.toml]
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Act as if the clock showed this instant (RFC 3339), to simulate months in tests;
    /// only with NAZORG_SIMULATION=1 (hidden from --help otherwise)
    #[arg(long, global = true, value_name = "T")]
    pub at: Option<DateTime<chrono::FixedOffset>>,
    /// Print data as JSON
    #[arg(long, global = true)]
    pub json: bool,
}

// The commands; groups are in their own modules.
#[derive(Subcommand)]
pub enum Command {
    /// Run the daemon: sweep on the cron, dispatch the outbox
    Serve,
    /// Create the database if needed and apply migrations
    Migrate,
    /// Validate the config; prints every problem with its key path (exit 78 on errors)
    CheckConfig,
    /// Write a new age identity (mode 0600) and print its public recipient
    Keygen {
        /// Where to write the identity (must not exist)
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
    },
    /// Families: enrol, show, close
    #[command(subcommand)]
    Family(FamilyCommand),
    /// Check-ins: what is due, record an outcome
    #[command(subcommand)]
    Checkin(CheckinCommand),
    /// One sweep at the clock's instant, then dispatch what is due; prints a summary
    Sweep {
        /// Only enqueue; leave sending to the daemon
        #[arg(long)]
        no_dispatch: bool,
    },
    /// The outbox of messages
    #[command(subcommand)]
    Outbox(OutboxCommand),
    /// Key management
    #[command(subcommand)]
    Keys(KeysCommand),
    /// API tokens
    #[command(subcommand)]
    Token(TokenCommand),
    /// The tamper-evident audit trail
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Anonymised follow-up export for researchers (k-anonymous over children)
    Export {
        /// Folder to create (must not exist); written complete or not at all [default:
        /// state_dir/exports/<export id>, deleted by the sweep after export.keep]
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
        /// Study code: the study's sealed key makes pseudonyms stable across its exports
        #[arg(long, value_name = "CODE")]
        study: Option<String>,
        /// Only check-ins due on or after this local date (YYYY-MM-DD)
        #[arg(long, value_name = "DATE")]
        from: Option<String>,
        /// Only check-ins due on or before this local date (YYYY-MM-DD)
        #[arg(long, value_name = "DATE")]
        to: Option<String>,
        /// Smallest number of distinct children per signature [default: export.k; never lower]
        #[arg(long, value_name = "N")]
        k: Option<u32>,
    },
    /// Register a family's move to another municipality (a handover to the receiving team)
    Move {
        /// The family (its reference, F-…)
        reference: String,
        /// CBS code of the receiving municipality, e.g. GM0599
        #[arg(long, value_name = "CODE")]
        to: String,
        /// The move date (YYYY-MM-DD): the receiving team is responsible from then on
        #[arg(long, value_name = "DATE")]
        date: chrono::NaiveDate,
        /// A text file with the new address (sealed; `-` for stdin)
        #[arg(long, value_name = "FILE")]
        address_file: Option<PathBuf>,
    },
    /// Handovers: acknowledge, list
    #[command(subcommand)]
    Handover(HandoverCommand),
    /// Relapse-signal flags: list, acknowledge, resolve
    #[command(subcommand)]
    Flags(FlagsCommand),
    /// A consistent copy of the database while the daemon runs, checked on the copy
    Backup {
        /// The file to write (mode 0600; must not exist)
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
    },
    /// Copy an installation to another database (SQLite <-> PostgreSQL), daemons stopped;
    /// the target must be new and migrated; checked by counting rows on both sides
    CopyDatabase {
        /// The database to copy, e.g. sqlite:///var/lib/nazorg/nazorg.db
        #[arg(long, value_name = "URL")]
        from: String,
        /// The new database, e.g. postgres://nazorg@db/nazorg (migrated here if empty)
        #[arg(long, value_name = "URL")]
        to: String,
    },
    /// Ask the running daemon whether it is ready (exit 0) or not (exit 1)
    Healthcheck,
    /// Send one test message straight through the configured transport (not the outbox)
    SendTestEmail {
        /// The address to send to (e.g. your own)
        #[arg(long, value_name = "ADDR")]
        to: String,
    },
    /// Print the documented example config (a working embedded default)
    DefaultConfig,
    /// Print the version
    Version,
    /// Queue depth, last sweep, pending handovers, open flags (counts only)
    Status,
    /// Write the man pages or shell completions into a folder (for packaging)
    #[command(hide = true)]
    Generate {
        /// What to write: man pages or shell completions
        what: crate::manual::Artefact,
        /// The folder to write into (created if missing)
        #[arg(long, value_name = "DIR")]
        out: PathBuf,
    },
    /// Team members who sign in to the workspace (/team/): add, list, remove
    #[command(subcommand)]
    Member(MemberCommand),
}

/// Exit codes from sysexits.h, so scripts can tell input errors from outages.
pub mod exit {
    pub const USAGE: u8 = 64;
    pub const DATAERR: u8 = 65;
    pub const NOINPUT: u8 = 66;
    pub const UNAVAILABLE: u8 = 69;
    pub const SOFTWARE: u8 = 70;
    pub const CANTCREAT: u8 = 73;
    pub const NOPERM: u8 = 77;
    pub const TEMPFAIL: u8 = 75;
    pub const CONFIG: u8 = 78;
}

/// An error already printed, carrying its exit code.
#[derive(Debug)]
pub struct Exit(pub u8);

impl std::fmt::Display for Exit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "exit {}", self.0)
    }
}

impl std::error::Error for Exit {}

/// The environment variable that allows the simulated clock (`--at`).
pub const SIMULATION_VAR: &str = "NAZORG_SIMULATION";

/// True when `NAZORG_SIMULATION=1`: tests and simulations may set the clock with `--at`.
/// A production daemon never runs on a clock someone else chose, so it is off by default.
pub fn simulation_enabled() -> bool {
    std::env::var_os(SIMULATION_VAR).is_some_and(|v| v == "1")
}

/// Parses the command line; `--at` is hidden from `--help` outside a simulation. A usage
/// error on a command line with `--json` is printed as JSON too (same exit code as clap's).
pub fn parse_cli(simulation: bool) -> Cli {
    let parsed = Cli::command()
        .mut_arg("at", |a| a.hide(!simulation))
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m));
    match parsed {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            let shown = matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            );
            if !shown && std::env::args_os().any(|a| a == "--json") {
                set_json_errors(true);
                // The message without the usage lines and the `--help` hint clap appends.
                let text = e.to_string();
                let message: Vec<&str> = text
                    .lines()
                    .take_while(|l| !l.starts_with("Usage:") && !l.starts_with("For more"))
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect();
                say_error(
                    None,
                    message.join(" ").trim_start_matches("error: ").to_string(),
                );
                let code = u8::try_from(e.exit_code()).unwrap_or(exit::USAGE);
                finish(code);
                std::process::exit(e.exit_code());
            }
            e.exit()
        }
    }
}

/// The process holds decrypted personal data and the unwrapped keys in memory: no core
/// dump may write them to disk, and no other process of the same user may ptrace it or
/// read its memory (`PR_SET_DUMPABLE=0` also makes `/proc/<pid>/` owned by root).
pub fn forbid_core_dumps() {
    // SAFETY: prctl(PR_SET_DUMPABLE, 0) takes plain integers and only changes a flag of
    // this process; it touches no memory of ours.
    let rc = unsafe { libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0) };
    if rc != 0 {
        eprintln!(
            "warning: cannot forbid core dumps (prctl PR_SET_DUMPABLE): {}",
            std::io::Error::last_os_error()
        );
    }
}

fn clock(global: &Global, running: bool) -> SharedClock {
    match (global.at, running) {
        (Some(at), false) => Arc::new(FixedClock(at.with_timezone(&Utc))),
        (Some(at), true) => Arc::new(OffsetClock::starting_at(at.with_timezone(&Utc))),
        (None, _) => Arc::new(SystemClock),
    }
}

fn load_config(global: &Global) -> anyhow::Result<Config> {
    let path = config::resolve_path(global.config.clone());
    Config::load(&path).map_err(|e| {
        if json_errors() {
            for issue in e.issues() {
                say_error(Some(&issue.key), issue.message);
            }
        } else {
            eprintln!("error: config {} is not usable:", path.display());
            for issue in e.issues() {
                eprintln!("  {issue}");
            }
        }
        Exit(exit::CONFIG).into()
    })
}

/// Lists reason codes as an argument's possible values (in `--help`, completions and man
/// pages) without enforcing them here: the service checks the code and names the field,
/// with exit 65 and nothing changed, as it does for the API.
#[derive(Clone)]
struct Codes(&'static [&'static str]);

impl clap::builder::TypedValueParser for Codes {
    type Value = String;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<String, clap::Error> {
        clap::builder::StringValueParser::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(
        &self,
    ) -> Option<Box<dyn Iterator<Item = clap::builder::PossibleValue> + '_>> {
        Some(Box::new(
            self.0.iter().map(|c| clap::builder::PossibleValue::new(*c)),
        ))
    }
}

/// Set once by `main` from `--json`: errors are then kept and printed by [`finish`] as one
/// JSON document. A process runs one command, so a flag for the process is enough.
static JSON_ERRORS: AtomicBool = AtomicBool::new(false);
/// The errors kept for [`finish`] under `--json`.
static ERRORS: Mutex<Vec<Problem>> = Mutex::new(Vec::new());

/// One error of a failed command: the field or key it concerns, and what is wrong.
#[derive(Debug, Serialize)]
struct Problem {
    field: Option<String>,
    message: String,
}

/// Errors go out as JSON (`--json`) instead of `error: …` lines.
pub fn set_json_errors(on: bool) {
    JSON_ERRORS.store(on, Ordering::Relaxed);
}

fn json_errors() -> bool {
    JSON_ERRORS.load(Ordering::Relaxed)
}

/// An error for the user: `error: [FIELD: ]MESSAGE` on stderr now, or kept for the JSON
/// document under `--json`.
pub fn say_error(field: Option<&str>, message: String) {
    if json_errors() {
        keep(field, message);
    } else {
        match field {
            Some(f) => eprintln!("error: {f}: {message}"),
            None => eprintln!("error: {message}"),
        }
    }
}

/// A failure line that is not an `error:` (e.g. `healthcheck`'s "not ready"): printed as
/// is, or kept for the JSON document under `--json`.
fn say_failure(message: String) {
    if json_errors() {
        keep(None, message);
    } else {
        eprintln!("{message}");
    }
}

fn keep(field: Option<&str>, message: String) {
    if let Ok(mut errors) = ERRORS.lock() {
        errors.push(Problem {
            field: field.map(str::to_string),
            message,
        });
    }
}

/// Under `--json`, prints the kept errors of a failed command as one JSON document on
/// stderr: `{"ok": false, "exit": CODE, "errors": [{"field", "message"}]}`.
pub fn finish(code: u8) {
    if !json_errors() {
        return;
    }
    let errors = ERRORS
        .lock()
        .map(|mut e| std::mem::take(&mut *e))
        .unwrap_or_default();
    eprintln!(
        "{}",
        serde_json::json!({"ok": false, "exit": code, "errors": errors})
    );
}

fn read_input(file: &PathBuf) -> anyhow::Result<Vec<u8>> {
    const MAX: u64 = 1024 * 1024;
    let mut buf = Vec::new();
    if file.as_os_str() == "-" {
        std::io::stdin().take(MAX + 1).read_to_end(&mut buf)?;
    } else {
        std::fs::File::open(file)
            .with_context(|| format!("cannot open {}", file.display()))?
            .take(MAX + 1)
            .read_to_end(&mut buf)?;
    }
    if buf.len() as u64 > MAX {
        error_out!("input larger than {MAX} bytes");
        return Err(Exit(exit::DATAERR).into());
    }
    Ok(buf)
}

/// Prints an operation error the way scripts and people both read it; never with content.
fn op_failed(e: OpError) -> anyhow::Error {
    match e {
        OpError::Invalid(errors) => {
            for err in errors {
                say_error(Some(&err.field), err.message);
            }
            Exit(exit::DATAERR).into()
        }
        OpError::NotFound { .. } => {
            error_out!("{e}");
            Exit(exit::NOINPUT).into()
        }
        OpError::Conflict(_) | OpError::NotResponsible(_) => {
            error_out!("{e}");
            Exit(exit::DATAERR).into()
        }
        OpError::Store(
            StoreError::Missing(_)
            | StoreError::NoFolder(_)
            | StoreError::NotMigrated
            | StoreError::PasswordFile { .. }
            | StoreError::Url(_),
        ) => {
            error_out!("{e}");
            Exit(exit::CONFIG).into()
        }
        // A missing or unusable identity is a configuration problem (EX_CONFIG), like a
        // missing database: the fix is in the installation, not in the input.
        OpError::Keyring(crate::keyring::KeyringError::Crypto(
            crate::crypto::CryptoError::IdentityMissing { .. }
            | crate::crypto::CryptoError::IdentityPermissions { .. }
            | crate::crypto::CryptoError::IdentityUnreadable { .. },
        )) => {
            error_out!("{e}");
            Exit(exit::CONFIG).into()
        }
        OpError::Store(StoreError::ForeignOwner(_)) => {
            eprintln!("error: {e}");
            Exit(exit::NOPERM).into()
        }
        OpError::Store(StoreError::Locked(_)) => {
            error_out!("{e}");
            Exit(exit::TEMPFAIL).into()
        }
        other => {
            error_out!("{other}");
            Exit(exit::SOFTWARE).into()
        }
    }
}

fn print<T: Serialize>(
    json: bool,
    value: &T,
    human: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        print!("{}", human(value));
    }
    Ok(())
}

async fn open_app(global: &Global, mode: OpenMode, running: bool) -> anyhow::Result<App> {
    let cfg = load_config(global)?;
    App::open(cfg, clock(global, running), mode)
        .await
        .map_err(op_failed)
}

/// The lines of a list, or one sentence saying it is empty: silence reads like a failure.
fn lines_or<T>(items: &[T], empty: &str, line: impl Fn(&T) -> String) -> String {
    if items.is_empty() {
        format!("{empty}\n")
    } else {
        items.iter().map(line).collect()
    }
}
