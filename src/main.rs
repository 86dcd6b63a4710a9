//! The `fibrosim` binary: parse the command line, hand it to [`fibrosim::app`], and turn the
//! outcome into an exit status (0 ok, 1 runtime failure, 2 bad input or usage).

use clap::Parser;
use fibrosim::app;
use fibrosim::cli::{Cli, EXIT_OK};
use std::process::ExitCode;

/// SIGINT and SIGTERM ask a run to stop at its next output step and keep its results; a
/// second one ends the process at once (exit 130), which loses nothing written: every output
/// is staged and renamed into place.
fn install_signal_handlers() {
    use signal_hook::consts::{SIGINT, SIGTERM};
    use std::sync::Arc;
    use std::sync::atomic::AtomicBool;
    let twice = Arc::new(AtomicBool::new(false));
    for sig in [SIGINT, SIGTERM] {
        let installed = signal_hook::flag::register_conditional_shutdown(sig, 130, twice.clone())
            .and_then(|_| signal_hook::flag::register(sig, twice.clone()))
            // SAFETY: the handler only stores to an atomic, which is async-signal-safe.
            .and_then(|_| unsafe { signal_hook::low_level::register(sig, app::request_stop) });
        if let Err(e) = installed {
            eprintln!("warning: cannot handle signal {sig}: {e}; Ctrl-C will end runs abruptly");
        }
    }
}

fn main() -> ExitCode {
    // Usage errors exit 2 here (clap's own convention, which matches ours); --help exits 0.
    let cli = Cli::parse();
    install_signal_handlers();
    match app::execute(cli) {
        Ok(()) => ExitCode::from(EXIT_OK),
        Err(e) => {
            eprintln!("{}", e.message());
            ExitCode::from(e.exit_code())
        }
    }
}
