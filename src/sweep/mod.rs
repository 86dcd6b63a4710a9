//! Parameter sweeps: many runs of one base scenario with some keys varied along axes, run in
//! parallel, resumable, shardable across a cluster, and summarised into tables and charts.
//!
//! A sweep file (`fibrosim sweep <sweep.toml>`) names a base scenario (a file relative to the
//! sweep file, or an inline `[base]` table), the number of replicates, a base seed, how the axes
//! combine (`grid`: every combination, first axis outermost; `zip`: the i-th value of every
//! axis together) and one `[[axis]]` per varied key path:
//!
//! ```toml
//! name = "depth"
//! base = "../default.toml"
//! replicates = 3
//! seed = 1
//! combine = "grid"
//! [[axis]]
//! key = "device.needle_length_mm"
//! values = [0.25, 0.5, 1.0]
//! [[axis]]
//! key = "schedule.interval_days"
//! range = { from = 14, to = 42, step = 14 }
//! ```
//!
//! [`load_sweep`] parses, validates every point as a scenario and expands the runs (point ×
//! replicate, run index = point index × replicates + replicate) before anything runs;
//! [`run_sweep`] runs them (or one shard of them) under `output/<sweep>/`, and [`merge`] joins
//! the shards of a cluster run. The layout of a sweep directory:
//!
//! - `sweep.json`: the expanded sweep (axes, every run with its values, seed and scenario hash);
//! - `runs/<id>/`: one run's files (see [`crate::observe::record`]), its `scenario.toml`, and
//!   `done.json` written last (or `failed.json`);
//! - `shard-<i>-of-<n>.json`: what shard i of n ran (cluster runs only);
//! - `summary.csv`, `aggregate.csv`, `charts/`: the results (see [`results`] and [`chart`]).

pub mod chart;
mod exec;
pub mod hash;
pub mod results;
pub mod spec;

use std::fmt;
use std::path::PathBuf;

pub use exec::{SweepOptions, SweepReport, inject_failure, merge, run_sweep};
pub use spec::{Axis, Combine, RunSpec, Sweep, load_sweep};

/// One located problem in a sweep file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SweepIssue {
    /// The sweep file (or the base scenario file).
    pub file: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column, when known.
    pub column: Option<usize>,
    /// Key path in the sweep file (`replicates`, `axis[1].range.step`) or the scenario key an
    /// axis point failed on (`device.needle_length_mm`).
    pub key: String,
    /// The whole message.
    pub message: String,
}

impl fmt::Display for SweepIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(l) = self.line {
            write!(f, ":{l}")?;
            if let Some(c) = self.column {
                write!(f, ":{c}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

/// Errors of sweeps; nothing has run when loading fails.
#[derive(Debug, thiserror::Error)]
pub enum SweepError {
    /// The sweep file is invalid (every problem found, each located).
    #[error("{}", issues_text(.0))]
    Invalid(Vec<SweepIssue>),
    /// The base scenario file is invalid.
    #[error("base scenario: {0}")]
    Base(#[from] crate::scenario::ScenarioErrors),
    /// A run directory holds results of a different scenario or version.
    #[error(
        "{dir}: {why}; refusing to mix its results with this sweep (rerun with --force to discard them)"
    )]
    Changed {
        /// The run directory.
        dir: PathBuf,
        /// What differs.
        why: String,
    },
    /// Shards cannot be merged.
    #[error("merge {dir}: {why}")]
    Merge {
        /// The sweep directory.
        dir: PathBuf,
        /// The missing or mismatched shard.
        why: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {message}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// Drawing a chart failed.
    #[error("chart {path}: {message}")]
    Chart {
        /// The chart file.
        path: PathBuf,
        /// The drawing error.
        message: String,
    },
}

fn issues_text(v: &[SweepIssue]) -> String {
    let lines: Vec<String> = v.iter().map(|i| i.to_string()).collect();
    let n = v.len();
    format!(
        "{}\n{n} error{} in the sweep",
        lines.join("\n"),
        if n == 1 { "" } else { "s" }
    )
}

impl SweepError {
    pub(crate) fn io(path: &std::path::Path, e: impl fmt::Display) -> Self {
        SweepError::Io {
            path: path.to_path_buf(),
            message: e.to_string(),
        }
    }

    /// The located issues of an invalid sweep (empty for other errors).
    pub fn issues(&self) -> &[SweepIssue] {
        match self {
            SweepError::Invalid(v) => v,
            _ => &[],
        }
    }
}

impl From<crate::fsutil::FsError> for SweepError {
    fn from(e: crate::fsutil::FsError) -> Self {
        match e {
            crate::fsutil::FsError::Io { path, source } => SweepError::Io {
                path,
                message: source.to_string(),
            },
        }
    }
}
