//! The `nazorg` command line: parse and dispatch. The commands live in `nazorg::cli`, one
//! module per command group; errors go to stderr with a sysexits code.

use nazorg::cli::{self, Cli, Command, Exit, exit};
use std::process::ExitCode;

fn main() -> ExitCode {
    cli::forbid_core_dumps();
    let simulation = cli::simulation_enabled();
    let args = cli::parse_cli(simulation);
    cli::set_json_errors(args.global.json);
    if args.global.at.is_some() && !simulation {
        cli::say_error(
            None,
            format!(
                "--at (the simulated clock) is only accepted when {}=1 is set; \
                 production runs on the real clock",
                cli::SIMULATION_VAR
            ),
        );
        cli::finish(exit::USAGE);
        return ExitCode::from(exit::USAGE);
    }
    nazorg::logging::init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            cli::say_error(None, format!("cannot start the async runtime: {e}"));
            cli::finish(exit::SOFTWARE);
            return ExitCode::from(exit::SOFTWARE);
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => match e.downcast_ref::<Exit>() {
            Some(Exit(code)) => {
                cli::finish(*code);
                ExitCode::from(*code)
            }
            None => {
                cli::say_error(None, format!("{e:#}"));
                cli::finish(1);
                ExitCode::FAILURE
            }
        },
    }
}

/// Hands the parsed command to its module.
async fn run(args: Cli) -> anyhow::Result<()> {
    let g = &args.global;
    match args.command {
        Command::CheckConfig => cli::ops::check_config(g),
        Command::DefaultConfig => cli::ops::default_config(),
        Command::Version => cli::ops::version(g),
        Command::Healthcheck => cli::ops::healthcheck(g).await,
        Command::SendTestEmail { to } => cli::ops::send_test_email(g, to).await,
        Command::Backup { out } => cli::ops::backup(g, out).await,
        Command::CopyDatabase { from, to } => cli::ops::copy_database(g, from, to).await,
        Command::Status => cli::ops::status(g).await,
        Command::Generate { what, out } => cli::ops::generate(what, out),
        Command::Keygen { out } => cli::keys::keygen(g, out),
        Command::Migrate => cli::ops::migrate(g).await,
        Command::Serve => cli::ops::serve(g).await,
        Command::Sweep { no_dispatch } => cli::ops::sweep(g, no_dispatch).await,
        Command::Move {
            reference,
            to,
            date,
            address_file,
        } => cli::handover::move_family(g, reference, to, date, address_file).await,
        Command::Export {
            out,
            study,
            from,
            to,
            k,
        } => cli::export::run(g, out, study, from, to, k).await,
        Command::Family(c) => cli::family::run(g, c).await,
        Command::Checkin(c) => cli::checkin::run(g, c).await,
        Command::Outbox(c) => cli::outbox::run(g, c).await,
        Command::Keys(c) => cli::keys::run(g, c).await,
        Command::Token(c) => cli::token::run(g, c).await,
        Command::Audit(c) => cli::audit::run(g, c).await,
        Command::Handover(c) => cli::handover::run(g, c).await,
        Command::Flags(c) => cli::flags::run(g, c).await,
        Command::Member(c) => cli::member::run(g, c).await,
    }
}
