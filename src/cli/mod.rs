//! The command line: arguments ([`args`]) → a command ([`crate::commands`], through
//! [`dispatch`]) → what is printed ([`output`], [`show_run`]) and the exit code ([`exit`], the
//! one policy). Errors are printed whole on stderr, and as JSON on stdout with `--json`.

mod args;
mod dispatch;
mod exit;
mod logging;
mod output;
mod progress;
mod show_import;
mod show_run;
mod stop;

use clap::Parser;

use crate::error::Error;
use args::{Cli, Command};
use exit::Outcome;
use stop::OnSignal;

/// Parses arguments, runs the command, prints errors; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    logging::init(cli.verbose, cli.quiet);
    let json = cli.command.json();
    let on_signal = match &cli.command {
        Command::Run(_) => OnSignal::Clean("aborting uploads and removing what this run staged"),
        #[cfg(feature = "cluster")]
        Command::Cluster(args::ClusterCommand::Executor { work_dir, .. }) => match work_dir {
            None => OnSignal::Clean("removing the executor's work folder"),
            Some(_) => OnSignal::Clean("the executor's work folder is kept"),
        },
        _ => OnSignal::Quit,
    };
    let importing = matches!(cli.command, Command::Import(_));
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            output::say(format_args!("error: cannot start the async runtime: {e}\n"));
            return exit::exit_code(Outcome::Failed(&Error::Internal(e.to_string())));
        }
    };
    let result = runtime.block_on(stop::until_stopped(dispatch::dispatch(cli), on_signal));
    // Do not wait for tasks still running after an error or an interrupt.
    runtime.shutdown_background();
    let e = match result {
        Ok(code) => return code,
        Err(e) => e,
    };
    let code = exit::exit_code(Outcome::Failed(&e));
    let message = match &e {
        Error::Interrupted if importing => format!(
            "interrupted by {}: import jobs already started go on in Personalize (a next import \
             finds them)",
            crate::interrupt::received().name()
        ),
        Error::Interrupted => format!(
            "interrupted by {}: nothing was published; the previous export is untouched (the \
             next run removes anything this one staged)",
            crate::interrupt::received().name()
        ),
        e => crate::error::message(e),
    };
    output::failure(&message, code, json);
    code
}
