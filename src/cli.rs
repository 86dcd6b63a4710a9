//! The command line as typed: clap derive structures, one variant of [`Command`] per
//! subcommand, one `*Args` struct per variant.
//!
//! These types hold raw flags only; [`crate::app`] validates them against the files they name
//! and does the work. Adding a subcommand is one variant here plus one function in `app.rs`
//! (dispatched in [`crate::app::execute`]). The names `validate`, `sweep` and `bench` are
//! reserved for subcommands that are not built yet ([`RESERVED`]).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

use crate::plot::{Chart, Format};

/// Subcommand names kept free for planned work; none of them may be used for anything else.
pub const RESERVED: [&str; 3] = ["validate", "sweep", "bench"];

/// Exit status: success.
pub const EXIT_OK: u8 = 0;
/// Exit status: the work failed (I/O error, interrupted run, chart that could not be drawn).
pub const EXIT_FAILURE: u8 = 1;
/// Exit status: bad input or usage (invalid scenario, unknown flag, refusing to overwrite).
pub const EXIT_BAD_INPUT: u8 = 2;

const EXIT_CODES: &str = "\
Exit codes:
  0  success
  1  runtime failure: a file could not be written, a chart could not be drawn, or the run was
     stopped before its end (partial results are kept, marked complete: false)
  2  bad input or usage: an invalid scenario or run directory, an unknown flag, or an output
     that exists and would be overwritten without --force";

/// Agent-based simulation of skin remodelling after microneedling.
#[derive(Debug, Parser)]
#[command(
    name = "fibrosim",
    version,
    about = "Agent-based simulation of skin remodelling after microneedling",
    long_about = "Agent-based simulation of skin remodelling after microneedling (collagen \
                  induction therapy): a block of skin is treated on a schedule and compared \
                  with an untreated control; collagen, elastin, cells and signals are recorded \
                  as CSV and JSON, drawn as charts and gathered into an HTML report.\n\n\
                  Start with `fibrosim init my.toml`, edit it, `fibrosim check my.toml`, then \
                  `fibrosim run my.toml`.",
    after_long_help = EXIT_CODES
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario and write its results, charts and report into a new directory.
    Run(RunArgs),
    /// Continue an interrupted run from its checkpoint.bin (run directory or staging folder).
    Resume(ResumeArgs),
    /// Validate scenario files and estimate what each run needs.
    Check(CheckArgs),
    /// Write a commented scenario template listing every key with its unit and default.
    Init(InitArgs),
    /// Draw the charts of a run directory again from its recorded files.
    Plot(PlotArgs),
    /// Write the HTML report of a run directory again from its recorded files.
    Report(ReportArgs),
}

/// `fibrosim run`.
#[derive(Debug, Args)]
#[command(after_long_help = EXIT_CODES)]
pub struct RunArgs {
    /// Scenario file (TOML).
    pub scenario: PathBuf,
    /// Output directory [default: output/<scenario name>].
    #[arg(long, short, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Replace the output directory if it exists and is not empty.
    #[arg(long)]
    pub force: bool,
    /// Print neither progress nor the final summary (errors are still printed).
    #[arg(long, short)]
    pub quiet: bool,
    /// Do not draw charts (the report is still written).
    #[arg(long)]
    pub no_charts: bool,
    /// Worker threads [default: one per core]; results do not depend on it.
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub threads: Option<u32>,
    /// Random seed, replacing the scenario's `seed`.
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Save the state of both arms to checkpoint.bin every N simulated days, so that an
    /// interrupted run can be continued with `fibrosim resume`.
    #[arg(long, value_name = "N", value_parser = parse_days)]
    pub checkpoint_every_days: Option<f64>,
}

/// `fibrosim resume`.
#[derive(Debug, Args)]
#[command(after_long_help = EXIT_CODES)]
pub struct ResumeArgs {
    /// Run directory of an interrupted run (manifest.json says complete: false), or the hidden
    /// `.<name>.partial-<pid>` folder a killed run left beside it; it must hold checkpoint.bin.
    pub dir: PathBuf,
    /// Print neither progress nor the final summary (errors are still printed).
    #[arg(long, short)]
    pub quiet: bool,
    /// Do not draw charts (the report is still written).
    #[arg(long)]
    pub no_charts: bool,
    /// Go on saving checkpoints every N simulated days.
    #[arg(long, value_name = "N", value_parser = parse_days)]
    pub checkpoint_every_days: Option<f64>,
}

/// A positive, finite number of days.
pub fn parse_days(s: &str) -> Result<f64, String> {
    match s.trim().parse::<f64>() {
        Ok(v) if v.is_finite() && v > 0.0 => Ok(v),
        _ => Err(format!("`{s}`: expected a positive number of days, e.g. 7")),
    }
}

/// `fibrosim check`.
#[derive(Debug, Args)]
#[command(after_long_help = EXIT_CODES)]
pub struct CheckArgs {
    /// Scenario files (TOML).
    #[arg(required = true)]
    pub scenarios: Vec<PathBuf>,
}

/// `fibrosim init`.
#[derive(Debug, Args)]
#[command(after_long_help = EXIT_CODES)]
pub struct InitArgs {
    /// File to create.
    pub file: PathBuf,
    /// Overwrite the file if it exists.
    #[arg(long)]
    pub force: bool,
}

/// `fibrosim plot`.
#[derive(Debug, Args)]
#[command(after_long_help = EXIT_CODES)]
pub struct PlotArgs {
    /// Run directory written by `fibrosim run`; charts go to its `charts/` folder.
    pub run_dir: PathBuf,
    /// Files to write per chart: png, svg or both.
    #[arg(long, value_name = "FORMAT", default_value = "both", value_parser = parse_format)]
    pub format: Format,
    /// Charts to draw, comma separated: cascade, collagen, depth, section, needles, cells
    /// [default: all].
    #[arg(long, value_name = "CHART,...", value_delimiter = ',', value_parser = parse_chart)]
    pub only: Vec<Chart>,
    /// Chart size in pixels, width x height.
    #[arg(long, value_name = "WxH", default_value = "1600x1000", value_parser = parse_size)]
    pub size: (u32, u32),
}

/// `fibrosim report`.
#[derive(Debug, Args)]
#[command(after_long_help = EXIT_CODES)]
pub struct ReportArgs {
    /// Run directory written by `fibrosim run`.
    pub run_dir: PathBuf,
}

fn parse_format(s: &str) -> Result<Format, String> {
    s.parse().map_err(|e: crate::plot::PlotError| e.to_string())
}

fn parse_chart(s: &str) -> Result<Chart, String> {
    s.parse().map_err(|e: crate::plot::PlotError| e.to_string())
}

/// Parses `1600x1000` (also `×` or `X`) into (width, height) in pixels.
pub fn parse_size(s: &str) -> Result<(u32, u32), String> {
    let bad = || format!("`{s}`: expected WIDTHxHEIGHT in pixels, e.g. 1600x1000");
    let (w, h) = s.split_once(['x', 'X', '×']).ok_or_else(bad)?;
    let w = w.trim().parse().map_err(|_| bad())?;
    let h = h.trim().parse().map_err(|_| bad())?;
    Ok((w, h))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("800x500"), Ok((800, 500)));
        assert_eq!(parse_size("800×500"), Ok((800, 500)));
        assert!(parse_size("800").is_err());
        assert!(parse_size("ax5").is_err());
    }
}
