//! The command line as typed: clap derive structures, one variant of [`Command`] per
//! subcommand, one `*Args` struct per variant.
//!
//! These types hold raw flags only; [`crate::app`] validates them against the files they name
//! and does the work. Adding a subcommand is one variant here plus one function in `app.rs`
//! (dispatched in [`crate::app::execute`]).

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

use crate::plot::{Chart, Format};

/// Subcommand names kept free for planned work; none of them may be used for anything else.
pub const RESERVED: [&str; 0] = [];

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
    /// Run many variants of a scenario (a sweep file), or merge the shards of a cluster run.
    Sweep(SweepArgs),
    /// Run the reference protocols and compare the model with published values.
    Validate(ValidateArgs),
    /// Vary each calibrated model parameter over its plausible range, one at a time, and
    /// tabulate how the validation results change.
    Sensitivity(SensitivityArgs),
    /// Time the reference workload (or a scenario) and report throughput.
    Bench(BenchArgs),
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

/// `fibrosim sweep`.
#[derive(Debug, Args)]
#[command(
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true,
    after_long_help = EXIT_CODES
)]
pub struct SweepArgs {
    /// `merge`: join the shards of a cluster run.
    #[command(subcommand)]
    pub action: Option<SweepAction>,
    /// Sweep file (TOML).
    #[arg(required = true, value_name = "SWEEP.toml")]
    pub sweep: Option<PathBuf>,
    /// Sweep directory [default: output/<sweep name>].
    #[arg(long, short, value_name = "DIR")]
    pub out: Option<PathBuf>,
    /// Run only shard I of N: the runs whose index % N == I (0 ≤ I < N).
    #[arg(long, value_name = "I/N", value_parser = parse_shard)]
    pub shard: Option<(usize, usize)>,
    /// Discard results of runs whose scenario changed instead of refusing.
    #[arg(long)]
    pub force: bool,
    /// Print no progress.
    #[arg(long, short)]
    pub quiet: bool,
    /// Do not draw the sweep charts (tables are still written).
    #[arg(long)]
    pub no_charts: bool,
}

/// Subcommands of `fibrosim sweep`.
#[derive(Debug, Subcommand)]
pub enum SweepAction {
    /// Join the shards of a sweep run as a SLURM array: tables and charts of all runs.
    Merge(SweepMergeArgs),
}

/// `fibrosim sweep merge`.
#[derive(Debug, Args)]
#[command(after_long_help = EXIT_CODES)]
pub struct SweepMergeArgs {
    /// Sweep directory written by the shards.
    pub dir: PathBuf,
}

/// `fibrosim validate`.
#[derive(Debug, Args)]
#[command(after_long_help = "\
Exit codes:
  0  every check passed
  1  a check failed, or a file could not be written
  2  bad input: a missing or invalid validation scenario, an unknown flag")]
pub struct ValidateArgs {
    /// Output directory for validation.md, validation.json and charts/.
    #[arg(long, short, value_name = "DIR", default_value = "output/validation")]
    pub out: PathBuf,
    /// Reduced blocks (632 × 632 µm, one channel pitch) and 2 seeds, for CI.
    #[arg(long)]
    pub quick: bool,
    /// Seeds per protocol [default: 5, or 2 with --quick].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub seeds: Option<u32>,
    /// Folder of the validation scenarios [default: scenarios/validation].
    #[arg(long, value_name = "DIR")]
    pub scenarios: Option<PathBuf>,
    /// Print no progress.
    #[arg(long, short)]
    pub quiet: bool,
}

/// `fibrosim sensitivity`.
#[derive(Debug, Args)]
#[command(after_long_help = "\
The baseline (every parameter at its default) runs once; then each parameter is set to the low
and to the high end of its plausible range (docs/calibration.md), everything else at its
default, and every validation protocol runs with it. Each run of the suite is judged by the
checks of `fibrosim validate`; the claims that fail do not make the command fail.

Exit codes:
  0  the table was written
  1  a file could not be written
  2  bad input: an unknown --param, a missing or invalid validation scenario, a value that
     makes a protocol invalid, or an output directory that exists without --force")]
pub struct SensitivityArgs {
    /// Output directory for sensitivity.md, sensitivity.json and sensitivity.csv.
    #[arg(long, short, value_name = "DIR", default_value = "output/sensitivity")]
    pub out: PathBuf,
    /// The validation suite's reduced blocks (632 × 632 µm, one channel pitch).
    #[arg(long)]
    pub quick: bool,
    /// Seeds per protocol and value [default: 5, or 2 with --quick].
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub seeds: Option<u32>,
    /// Vary only these parameters: key path (model.fibroblasts.density_cap) or its last part
    /// (density_cap); several after one flag, separated by commas, or the flag repeated
    /// [default: every calibrated one].
    #[arg(long = "param", value_name = "NAME", num_args = 1.., value_delimiter = ',')]
    pub params: Vec<String>,
    /// Folder of the validation scenarios [default: scenarios/validation].
    #[arg(long, value_name = "DIR")]
    pub scenarios: Option<PathBuf>,
    /// Replace the output directory if it exists and is not empty.
    #[arg(long)]
    pub force: bool,
    /// Print no progress.
    #[arg(long, short)]
    pub quiet: bool,
    /// Worker threads [default: one per core]; results do not depend on it.
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub threads: Option<u32>,
}

/// `fibrosim bench`.
#[derive(Debug, Args)]
#[command(after_long_help = EXIT_CODES)]
pub struct BenchArgs {
    /// Time this scenario (both arms, as `fibrosim run`) instead of the reference workload.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Simulated days [reference: 2; scenario: its own end, or cut at N days].
    #[arg(long, value_name = "N")]
    pub days: Option<f64>,
    /// Worker threads [default: one per core].
    #[arg(long, short = 'j', value_name = "N", value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub threads: Option<u32>,
    /// Also write the results as JSON to FILE.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// Parses `I/N` with I < N.
pub fn parse_shard(s: &str) -> Result<(usize, usize), String> {
    let bad = || format!("`{s}`: expected I/N with 0 ≤ I < N, e.g. 0/4");
    let (i, n) = s.split_once('/').ok_or_else(bad)?;
    let i: usize = i.trim().parse().map_err(|_| bad())?;
    let n: usize = n.trim().parse().map_err(|_| bad())?;
    if n == 0 || i >= n {
        return Err(bad());
    }
    Ok((i, n))
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
    fn shards_parse() {
        assert_eq!(parse_shard("0/4"), Ok((0, 4)));
        assert_eq!(parse_shard("3/4"), Ok((3, 4)));
        assert!(parse_shard("4/4").is_err());
        assert!(parse_shard("1/0").is_err());
        assert!(parse_shard("x").is_err());
    }

    #[test]
    fn sweep_merge_is_a_subcommand() {
        let cli = Cli::try_parse_from(["fibrosim", "sweep", "merge", "out/s"]).unwrap();
        match cli.command {
            Command::Sweep(a) => assert!(matches!(a.action, Some(SweepAction::Merge(_)))),
            other => panic!("parsed as {other:?}"),
        }
        let cli = Cli::try_parse_from(["fibrosim", "sweep", "s.toml", "--shard", "1/2"]).unwrap();
        match cli.command {
            Command::Sweep(a) => {
                assert_eq!(a.sweep, Some(PathBuf::from("s.toml")));
                assert_eq!(a.shard, Some((1, 2)));
            }
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn sizes_parse() {
        assert_eq!(parse_size("800x500"), Ok((800, 500)));
        assert_eq!(parse_size("800×500"), Ok((800, 500)));
        assert!(parse_size("800").is_err());
        assert!(parse_size("ax5").is_err());
    }
}
