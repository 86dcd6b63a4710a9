//! The `fibrosim` binary: parse the command line, hand it to [`fibrosim::app`], and turn the
//! outcome into an exit status (0 ok, 1 runtime failure, 2 bad input or usage).

use clap::Parser;
use fibrosim::app;
use fibrosim::cli::{Cli, EXIT_OK};
use std::process::ExitCode;

fn main() -> ExitCode {
    // Usage errors exit 2 here (clap's own convention, which matches ours); --help exits 0.
    let cli = Cli::parse();
    match app::execute(cli) {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(e) => {
            eprintln!("{}", e.message());
            ExitCode::from(e.exit_code())
        }
    }
}
