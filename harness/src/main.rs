//! `fleetbench`: scale benchmarks and conformance suites for Fleet-style controllers.
//!
//! A thin shell: parse the command line, set up logging, run a library function, turn its
//! outcome into an exit status (0 pass, 1 an SLO failed or a suite broke, 2 bad input).

use std::process::ExitCode;

use clap::Parser;
use fleetbench::cli::Cli;
use fleetbench::commands;

fn main() -> ExitCode {
    let cli = Cli::parse();
    commands::init_tracing(cli.verbose, cli.quiet);
    fleetbench::init_crypto();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let outcome = runtime.block_on(commands::dispatch(cli.command));
    // In-process servers and subprocess guards shut down with the runtime.
    runtime.shutdown_timeout(std::time::Duration::from_secs(5));
    match outcome {
        Ok(code) => code.into(),
        Err(error) => {
            // `{:#}`: the error and its causes, each saying only its own part.
            eprintln!("error: {error:#}");
            commands::Outcome::BadInput.into()
        }
    }
}
