//! Orchestration of the subcommands: each function takes the parsed arguments of
//! [`crate::cli`], validates them against the files they name, calls the library (scenario,
//! run, plot, report) and prints what a person needs to read. Errors are typed by who must act:
//! [`AppError::exit_code`] maps bad input to 2 and runtime failures to 1.
//!
//! A run is written into a hidden staging directory beside its destination and renamed into
//! place only at the end, so the destination holds either nothing, the previous result, or the
//! complete new one; a killed run leaves at most a hidden `.<name>.partial-<pid>` folder
//! (holding its last `checkpoint.bin` when checkpoints were on, for `fibrosim resume`).

use anyhow::{Context, anyhow};
use serde::Serialize;
use std::fmt::Write as _;
use std::fs;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Instant;

use crate::cli::{
    BenchArgs, CheckArgs, Cli, Command, EXIT_BAD_INPUT, EXIT_FAILURE, InitArgs, PlotArgs,
    ReportArgs, ResumeArgs, RunArgs, SensitivityArgs, SweepAction, SweepArgs, ValidateArgs,
};
use crate::fsutil::write_atomic;
use crate::observe::record::{RecordError, RunRecord, files};
use crate::plot::{PlotError, PlotOptions};
use crate::run::RunOutput;
use crate::scenario::{self, Scenario, ScenarioErrors};
use crate::sim::{Arm, WorkStats};

/// Raised to make a running simulation stop at its next output step and keep what it has.
static STOP: AtomicBool = AtomicBool::new(false);

/// Asks a `fibrosim run` in progress to stop early: the engine returns at its next step
/// boundary, the results so far are written with `complete: false` and the command exits 1.
///
/// Only stores to an atomic, so it is safe to call from a signal handler; the binary's SIGINT
/// and SIGTERM handlers call it.
pub fn request_stop() {
    STOP.store(true, Ordering::SeqCst);
}

/// Name of the resolved scenario written into a run directory.
pub const SCENARIO_FILE: &str = "scenario.toml";
/// Folder of the charts inside a run directory.
pub const CHARTS_DIR: &str = "charts";

/// Why a command failed, sorted by who has to act.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The user's input is wrong: a path, a run directory, an existing output.
    #[error("{0}")]
    BadInput(String),
    /// A scenario file is invalid; the errors are printed exactly as the library gives them.
    #[error("{0}")]
    Scenario(ScenarioErrors),
    /// Some of several inputs were invalid; their errors have already been printed.
    #[error("{0}")]
    AlreadyReported(String),
    /// The work itself failed (I/O, drawing, an interrupted run).
    #[error("{0:#}")]
    Failed(anyhow::Error),
}

impl AppError {
    /// The process exit status for this error: 2 for bad input, 1 for runtime failures.
    pub fn exit_code(&self) -> u8 {
        match self {
            AppError::BadInput(_) | AppError::Scenario(_) | AppError::AlreadyReported(_) => {
                EXIT_BAD_INPUT
            }
            AppError::Failed(_) => EXIT_FAILURE,
        }
    }

    /// The text to print on stderr: scenario errors as given, others after `error: `.
    pub fn message(&self) -> String {
        match self {
            AppError::Scenario(e) => e.to_string(),
            other => format!("error: {other}"),
        }
    }
}

impl From<anyhow::Error> for AppError {
    fn from(e: anyhow::Error) -> Self {
        AppError::Failed(e)
    }
}

impl From<crate::fsutil::FsError> for AppError {
    fn from(e: crate::fsutil::FsError) -> Self {
        AppError::Failed(e.into())
    }
}

/// A run directory that cannot be read is the user's input; failing to write is not.
fn record_error(e: RecordError) -> AppError {
    match e {
        RecordError::Fs(_) => AppError::Failed(e.into()),
        _ => AppError::BadInput(e.to_string()),
    }
}

/// Missing data and bad options are input problems; drawing and writing failures are not.
fn plot_error(e: PlotError) -> AppError {
    match e {
        PlotError::MissingData { .. }
        | PlotError::UnknownChart(_)
        | PlotError::UnknownFormat(_)
        | PlotError::TooSmall { .. } => AppError::BadInput(e.to_string()),
        PlotError::Draw { .. } | PlotError::Font | PlotError::Fs(_) => AppError::Failed(e.into()),
    }
}

/// Runs one parsed command line.
pub fn execute(cli: Cli) -> Result<(), AppError> {
    match cli.command {
        Command::Run(a) => run(&a),
        Command::Resume(a) => resume(&a),
        Command::Check(a) => check(&a),
        Command::Init(a) => init(&a),
        Command::Plot(a) => plot(&a),
        Command::Report(a) => report(&a),
        Command::Sweep(a) => sweep(&a),
        Command::Validate(a) => validate(&a),
        Command::Sensitivity(a) => sensitivity(&a),
        Command::Bench(a) => bench(&a),
    }
}

/// Starts the global worker pool with `n` threads (once per process).
fn set_threads(n: Option<u32>) -> Result<(), AppError> {
    if let Some(n) = n {
        rayon::ThreadPoolBuilder::new()
            .num_threads(n as usize)
            .build_global()
            .context("starting the worker threads")?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// run

/// `manifest.json`: everything about how a run was made. Wall time, threads and the command
/// line live only here, so every other file of two runs of one scenario and seed compares equal.
#[derive(Debug, Serialize)]
struct Manifest<'a> {
    /// The resolved scenario as TOML (`scenario::to_toml`).
    scenario: String,
    seed: u64,
    version: &'static str,
    threads: usize,
    /// The processor the run was timed on (`bench::machine`), when known.
    machine: Option<String>,
    wall_seconds: f64,
    work_treated: &'a WorkStats,
    /// Absent when the scenario runs no control arm.
    work_control: Option<&'a WorkStats>,
    command_line: Vec<String>,
    complete: bool,
    /// The day the run stopped at, when it did not reach its end.
    #[serde(skip_serializing_if = "Option::is_none")]
    stopped_at_day: Option<f64>,
    /// Why it stopped, when it failed (a numerical guard, a checkpoint not written).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    /// Whether this run was continued from a checkpoint.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    resumed_from_checkpoint: bool,
}

/// `fibrosim run`: load, check resources, run, write into staging, rename into place,
/// summarise.
pub fn run(args: &RunArgs) -> Result<(), AppError> {
    let started = Instant::now();
    let mut scenario = scenario::load(&args.scenario).map_err(AppError::Scenario)?;
    if let Some(seed) = args.seed {
        scenario.seed = seed;
    }
    let out = args
        .out
        .clone()
        .unwrap_or_else(|| Path::new("output").join(&scenario.name));
    let dest = Destination::check(&out, args.force)?;
    check_resources(
        &scenario,
        &dest,
        args.checkpoint_every_days.is_some(),
        args.quiet,
    )?;
    set_threads(args.threads)?;
    let staging = dest.stage()?;
    let flags = RunFlags {
        quiet: args.quiet,
        no_charts: args.no_charts,
        checkpoint_every_days: args.checkpoint_every_days,
    };
    execute_run(&scenario, &dest, staging, &flags, None, started)
}

/// Name of the checkpoint inside a run directory (kept only while the run is incomplete).
pub const CHECKPOINT_FILE: &str = "checkpoint.bin";

/// `fibrosim resume`: continue a run from the checkpoint.bin of its directory (or of the
/// staging folder a killed run left), writing the complete results into the run directory.
pub fn resume(args: &ResumeArgs) -> Result<(), AppError> {
    let started = Instant::now();
    let dir = &args.dir;
    if !dir.is_dir() {
        return Err(AppError::BadInput(format!(
            "{}: no such run directory",
            dir.display()
        )));
    }
    let file = dir.join(CHECKPOINT_FILE);
    if !file.is_file() {
        return Err(AppError::BadInput(format!(
            "{}: no checkpoint; only a run started with --checkpoint-every-days and stopped \
             before its end can be resumed",
            file.display()
        )));
    }
    let bytes = fs::read(&file).with_context(|| format!("reading {}", file.display()))?;
    let (scenario, payload) = crate::run::decode_checkpoint(&bytes, &file)
        .map_err(|e| AppError::BadInput(format!("{}: refused: {e}", file.display())))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let staged = name
        .strip_prefix('.')
        .and_then(|r| r.rsplit_once(".partial-"))
        .map(|(n, _)| n.to_string());
    let (dest_path, leftover) = match staged {
        Some(n) => (
            dir.parent().unwrap_or(Path::new(".")).join(n),
            Some(dir.clone()),
        ),
        None => (dir.clone(), None),
    };
    let dest = Destination::check(&dest_path, true)?;
    check_resources(&scenario, &dest, true, args.quiet)?;
    let staging = dest.stage()?;
    let flags = RunFlags {
        quiet: args.quiet,
        no_charts: args.no_charts,
        checkpoint_every_days: args.checkpoint_every_days,
    };
    let resumed = Resumed {
        payload,
        file: &file,
        leftover: leftover.as_deref(),
    };
    execute_run(&scenario, &dest, staging, &flags, Some(resumed), started)
}

/// Prints what a run needs and refuses one the machine cannot hold.
fn check_resources(
    s: &Scenario,
    dest: &Destination,
    checkpoint: bool,
    quiet: bool,
) -> Result<(), AppError> {
    let need = crate::guard::Resources::of(s, checkpoint);
    if !quiet {
        eprintln!("{}: needs {}", s.name, need.describe());
    }
    need.check(
        s.numerics.max_memory_gib,
        crate::guard::available_memory(),
        crate::guard::free_disk(&dest.parent),
        &dest.parent,
    )
    .map_err(|e| AppError::Failed(anyhow!("{}: refused: {e}", dest.path.display())))
}

/// The flags of `run` and `resume` that shape how a run is carried out.
struct RunFlags {
    quiet: bool,
    no_charts: bool,
    checkpoint_every_days: Option<f64>,
}

/// A checkpoint being continued from.
struct Resumed<'a> {
    payload: &'a [u8],
    file: &'a Path,
    /// The staging folder of a killed run, removed once its results are in place.
    leftover: Option<&'a Path>,
}

/// Runs (or continues) `scenario` into `staging`, writes the results and the manifest, and
/// renames them onto `dest`; an interrupted or failed run is kept too, marked incomplete.
fn execute_run(
    scenario: &Scenario,
    dest: &Destination,
    staging: Staging,
    flags: &RunFlags,
    resumed: Option<Resumed>,
    started: Instant,
) -> Result<(), AppError> {
    let threads = rayon::current_num_threads();
    let progress = Progress::new(scenario, flags.quiet);
    let ckpt_path = staging.path().join(CHECKPOINT_FILE);
    let save = |bytes: &[u8]| write_atomic(&ckpt_path, bytes).map_err(|e| e.to_string());
    let opts = crate::run::RunOptions {
        checkpoint: flags
            .checkpoint_every_days
            .map(|every_days| crate::run::Checkpointing {
                every_days,
                save: &save,
            }),
        resume: resumed.as_ref().map(|r| r.payload),
    };
    let output = crate::run::run_with(scenario, &opts, &|arm, f| progress.report(arm, f), &STOP)
        .map_err(|e| {
            let file = resumed.as_ref().map(|r| r.file.display().to_string());
            AppError::BadInput(format!("{}: refused: {e}", file.unwrap_or_default()))
        })?;
    progress.finish();
    let complete = output.record.summary.complete;
    if complete && ckpt_path.exists() {
        fs::remove_file(&ckpt_path).with_context(|| format!("removing {}", ckpt_path.display()))?;
    }

    let chart_error = write_results(staging.path(), scenario, &output, flags.no_charts)?;
    let manifest = Manifest {
        scenario: scenario::to_toml(scenario),
        seed: scenario.seed,
        version: env!("CARGO_PKG_VERSION"),
        threads,
        machine: crate::bench::machine(),
        wall_seconds: started.elapsed().as_secs_f64(),
        work_treated: &output.work_treated,
        work_control: scenario.output.control.then_some(&output.work_control),
        command_line: std::env::args_os()
            .map(|a| a.to_string_lossy().into_owned())
            .collect(),
        complete,
        stopped_at_day: (!complete).then_some(output.record.summary.end_day),
        error: output.error.clone(),
        resumed_from_checkpoint: resumed.is_some(),
    };
    let json = serde_json::to_vec_pretty(&manifest).context("serialising the manifest")?;
    let manifest_path = staging.path().join(files::MANIFEST);
    write_atomic(&manifest_path, &json)?;
    let resumable = ckpt_path.exists();
    staging.commit(dest)?;
    if let Some(old) = resumed.as_ref().and_then(|r| r.leftover)
        && old.exists()
        && let Err(e) = fs::remove_dir_all(old)
    {
        eprintln!("warning: could not delete {}: {e}", old.display());
    }

    if !flags.quiet {
        print!(
            "{}",
            run_summary(&dest.path, &output, manifest.wall_seconds, threads)
        );
    }
    let day = plain(output.record.summary.end_day);
    let how = if resumable {
        format!(
            "; continue it with `fibrosim resume {}`",
            dest.path.display()
        )
    } else {
        String::new()
    };
    if let Some(e) = &output.error {
        return Err(AppError::Failed(anyhow!(
            "{e}\nthe run stopped at day {day}; the results so far are in {} (manifest.json \
             says complete: false){how}",
            dest.path.display()
        )));
    }
    if !complete {
        return Err(AppError::Failed(anyhow!(
            "the run was stopped at day {day} before its end; the results so far are in {} \
             (manifest.json says complete: false){how}",
            dest.path.display()
        )));
    }
    match chart_error {
        Some(e) => Err(AppError::Failed(
            anyhow!(e).context(format!("charts of {}", dest.path.display())),
        )),
        None => Ok(()),
    }
}

/// Writes the record, the resolved scenario, the charts and the report into `dir`. A chart
/// that cannot be drawn does not cost the others or the data: it is returned for the caller
/// to report once the results are in place (and is expected when the run was stopped early).
fn write_results(
    dir: &Path,
    scenario: &Scenario,
    output: &RunOutput,
    no_charts: bool,
) -> Result<Option<PlotError>, AppError> {
    let record = &output.record;
    record.write(dir).map_err(|e| AppError::Failed(e.into()))?;
    write_atomic(
        &dir.join(SCENARIO_FILE),
        scenario::to_toml(scenario).as_bytes(),
    )?;
    let mut chart_error = None;
    if !no_charts {
        if let Err(e) = crate::plot::render(record, &dir.join(CHARTS_DIR), &PlotOptions::default())
        {
            if record.summary.complete {
                chart_error = Some(e);
            } else {
                eprintln!("warning: charts of the partial run: {e}");
            }
        }
    }
    crate::report::write_report(record, dir).context("writing the report")?;
    Ok(chart_error)
}

/// Where a run's results go, checked before any work starts.
struct Destination {
    /// The final directory.
    path: PathBuf,
    /// Its parent (created if missing).
    parent: PathBuf,
    /// Its last component.
    name: String,
    /// Whether an existing, non-empty directory may be replaced.
    force: bool,
}

impl Destination {
    /// Refuses a destination that is not a directory, or that holds files, unless `force`.
    fn check(path: &Path, force: bool) -> Result<Self, AppError> {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .ok_or_else(|| {
                AppError::BadInput(format!(
                    "{}: not usable as an output directory; name a folder, e.g. --out results/run1",
                    path.display()
                ))
            })?;
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        if path.exists() {
            if !path.is_dir() {
                return Err(AppError::BadInput(format!(
                    "{}: exists and is not a directory; choose another --out",
                    path.display()
                )));
            }
            if !force && !is_empty_dir(path)? {
                return Err(AppError::BadInput(format!(
                    "{}: output directory exists and is not empty; use --force to replace it \
                     or --out to choose another",
                    path.display()
                )));
            }
        }
        Ok(Destination {
            path: path.to_path_buf(),
            parent,
            name,
            force,
        })
    }

    /// Creates the hidden staging directory beside the destination.
    fn stage(&self) -> Result<Staging, AppError> {
        fs::create_dir_all(&self.parent)
            .with_context(|| format!("creating {}", self.parent.display()))?;
        let path = self
            .parent
            .join(format!(".{}.partial-{}", self.name, std::process::id()));
        if path.exists() {
            // Left by an earlier process that had our pid: never a live run.
            fs::remove_dir_all(&path).with_context(|| format!("removing {}", path.display()))?;
        }
        fs::create_dir(&path).with_context(|| format!("creating {}", path.display()))?;
        Ok(Staging { path, keep: false })
    }
}

/// A staging directory, removed on drop unless committed (or kept to save results).
struct Staging {
    path: PathBuf,
    keep: bool,
}

impl Staging {
    fn path(&self) -> &Path {
        &self.path
    }

    /// Renames the staging directory onto the destination. An existing destination is first
    /// renamed aside and deleted only once the new results are in place.
    fn commit(mut self, dest: &Destination) -> Result<(), AppError> {
        if dest.path.is_dir() {
            if is_empty_dir(&dest.path)? {
                fs::remove_dir(&dest.path)
                    .with_context(|| format!("removing empty {}", dest.path.display()))?;
            } else if !dest.force {
                // Something was written there while we ran: keep both, say where ours are.
                self.keep = true;
                return Err(AppError::Failed(anyhow!(
                    "{} was filled by something else during the run; the results are in {}",
                    dest.path.display(),
                    self.path.display()
                )));
            } else {
                let old = dest
                    .parent
                    .join(format!(".{}.old-{}", dest.name, std::process::id()));
                fs::rename(&dest.path, &old)
                    .with_context(|| format!("moving {} aside", dest.path.display()))?;
                if let Err(e) = fs::rename(&self.path, &dest.path) {
                    let _ = fs::rename(&old, &dest.path);
                    return Err(AppError::Failed(anyhow!(e).context(format!(
                        "moving the results into {}",
                        dest.path.display()
                    ))));
                }
                self.keep = true;
                if let Err(e) = fs::remove_dir_all(&old) {
                    eprintln!(
                        "warning: could not delete the replaced results {}: {e}",
                        old.display()
                    );
                }
                sync_dir(&dest.parent);
                return Ok(());
            }
        }
        fs::rename(&self.path, &dest.path).with_context(|| {
            format!(
                "moving the results from {} into {}",
                self.path.display(),
                dest.path.display()
            )
        })?;
        self.keep = true;
        sync_dir(&dest.parent);
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        if !self.keep {
            let _ = fs::remove_dir_all(&self.path);
        }
    }
}

fn is_empty_dir(path: &Path) -> Result<bool, AppError> {
    let mut entries = fs::read_dir(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(entries.next().is_none())
}

/// Makes the renames durable (best effort: not every platform can sync a directory).
fn sync_dir(dir: &Path) {
    if let Ok(f) = fs::File::open(dir) {
        let _ = f.sync_all();
    }
}

/// Progress of both arms on stderr: bars on a terminal, a line per 10 % otherwise.
struct Progress {
    mode: Mode,
    end_day: f64,
    started: Instant,
}

enum Mode {
    Quiet,
    Bars {
        _multi: indicatif::MultiProgress,
        bars: Vec<indicatif::ProgressBar>,
    },
    Lines {
        /// Last tenth printed, per arm.
        tenths: [AtomicU32; 2],
    },
}

fn arm_index(arm: Arm) -> usize {
    match arm {
        Arm::Treated => 0,
        Arm::Control => 1,
    }
}

impl Progress {
    fn new(s: &Scenario, quiet: bool) -> Self {
        let end_day = s.end_day();
        let mode = if quiet {
            Mode::Quiet
        } else if std::io::stderr().is_terminal() {
            let multi =
                indicatif::MultiProgress::with_draw_target(indicatif::ProgressDrawTarget::stderr());
            let style = indicatif::ProgressStyle::with_template(
                "{prefix:>8} {bar:40} day {pos}/{len}  {elapsed} elapsed, ETA {eta}",
            )
            .expect("a valid progress template");
            let arms: &[Arm] = if s.output.control {
                &[Arm::Treated, Arm::Control]
            } else {
                &[Arm::Treated]
            };
            let bars = arms
                .iter()
                .map(|arm| {
                    let bar = multi.add(indicatif::ProgressBar::new(end_day.ceil() as u64));
                    bar.set_style(style.clone());
                    bar.set_prefix(arm.name());
                    bar
                })
                .collect();
            Mode::Bars {
                _multi: multi,
                bars,
            }
        } else {
            Mode::Lines {
                tenths: [AtomicU32::new(0), AtomicU32::new(0)],
            }
        };
        Progress {
            mode,
            end_day,
            started: Instant::now(),
        }
    }

    /// Called by the engine with the fraction of simulated time an arm has done.
    fn report(&self, arm: Arm, fraction: f64) {
        let day = fraction.clamp(0.0, 1.0) * self.end_day;
        match &self.mode {
            Mode::Quiet => {}
            Mode::Bars { bars, .. } => {
                if let Some(bar) = bars.get(arm_index(arm)) {
                    bar.set_position(day.floor() as u64);
                }
            }
            Mode::Lines { tenths } => {
                let tenth = (fraction.clamp(0.0, 1.0) * 10.0).floor() as u32;
                let before = tenths[arm_index(arm)].fetch_max(tenth, Ordering::Relaxed);
                if tenth > before {
                    eprintln!(
                        "{}: {:>3} % (day {} of {}, {} elapsed)",
                        arm.name(),
                        tenth * 10,
                        day.floor(),
                        plain(self.end_day),
                        duration(self.started.elapsed().as_secs_f64())
                    );
                }
            }
        }
    }

    fn finish(&self) {
        if let Mode::Bars { bars, .. } = &self.mode {
            for bar in bars {
                bar.finish_and_clear();
            }
        }
    }
}

/// The closing lines of `fibrosim run`: where, how long, and the collagen gains.
fn run_summary(dir: &Path, output: &RunOutput, wall_seconds: f64, threads: usize) -> String {
    let s = &output.record.summary;
    let mut o = String::new();
    let state = if s.complete {
        "complete"
    } else {
        "INCOMPLETE (stopped early)"
    };
    let _ = writeln!(
        o,
        "{}: simulated days 0–{} in {} on {threads} thread{}, {state}",
        s.scenario,
        plain(s.end_day),
        duration(wall_seconds),
        if threads == 1 { "" } else { "s" }
    );
    let _ = writeln!(o, "results: {}", dir.display());
    match &s.metrics {
        Some(m) => {
            let _ = writeln!(o, "collagen gain over the untreated control:");
            for d in &m.at_days {
                let _ = writeln!(
                    o,
                    "  day {:>4} ({:>3} days after the last session): papillary {:+.1} %, reticular {:+.1} %",
                    plain(d.day),
                    plain(d.days_after_last_session),
                    d.collagen_gain_pct.papillary,
                    d.collagen_gain_pct.reticular
                );
            }
            let _ = writeln!(
                o,
                "  peak collagen III gain {:+.1} % on day {}",
                m.peak_collagen3_gain_pct,
                plain(m.peak_collagen3_day)
            );
        }
        None => {
            let _ = writeln!(
                o,
                "no gains computed: they need sessions and the untreated control arm"
            );
        }
    }
    let _ = writeln!(
        o,
        "report: {}",
        dir.join(crate::report::REPORT_FILE).display()
    );
    o
}

// ---------------------------------------------------------------------------------------------
// check, init, plot, report

/// `fibrosim check`: validates every file, printing an estimate or its errors.
pub fn check(args: &CheckArgs) -> Result<(), AppError> {
    let mut failed = 0;
    for path in &args.scenarios {
        match scenario::load(path) {
            Ok(s) => println!("ok: {} ({})", path.display(), describe(&s)),
            Err(errors) => {
                eprintln!("{errors}");
                failed += 1;
            }
        }
    }
    if failed == 0 {
        Ok(())
    } else {
        Err(AppError::AlreadyReported(format!(
            "{failed} of {} scenario file{} invalid",
            args.scenarios.len(),
            if args.scenarios.len() == 1 {
                " is"
            } else {
                "s are"
            }
        )))
    }
}

/// What a valid scenario will need, in one line.
fn describe(s: &Scenario) -> String {
    let e = scenario::estimate(s);
    let mib = e.memory_bytes as f64 / (1024.0 * 1024.0);
    let mib = if mib < 10.0 {
        format!("{mib:.1}")
    } else {
        format!("{mib:.0}")
    };
    let n = s.schedule.days.len();
    let g = crate::sim::tissue::Geometry::new(s);
    let sg = g.signal_grid(s.numerics.signal_voxel_um);
    let signals = if sg.h == g.h {
        "on the voxel grid".to_string()
    } else {
        format!(
            "on a {} × {} × {} grid of {} µm (fewer myofibroblasts than on the voxels: docs/model.md §3)",
            sg.nx,
            sg.ny,
            sg.nz,
            plain((sg.h * 100.0).round() / 100.0)
        )
    };
    format!(
        "{} voxels, P/T/C {signals}, ≈ {} cells, ≈ {mib} MiB, ≤ {} steps, {n} session{} over {} days",
        e.voxels,
        e.agents_baseline,
        e.steps_upper_bound,
        if n == 1 { "" } else { "s" },
        plain(s.end_day())
    )
}

/// `fibrosim init`: writes the commented template.
pub fn init(args: &InitArgs) -> Result<(), AppError> {
    let file = &args.file;
    if file.is_dir() {
        return Err(AppError::BadInput(format!(
            "{}: is a directory; give the name of the .toml file to create",
            file.display()
        )));
    }
    if file.exists() && !args.force {
        return Err(AppError::BadInput(format!(
            "{}: exists; use --force to overwrite it",
            file.display()
        )));
    }
    write_atomic(file, scenario::template().as_bytes())?;
    println!(
        "wrote {0}: every key with its unit, default and allowed range; \
         edit it, then `fibrosim check {0}`",
        file.display()
    );
    Ok(())
}

/// Reads a run directory back, refusing a path that is not one.
fn load_run(dir: &Path) -> Result<RunRecord, AppError> {
    if !dir.is_dir() {
        return Err(AppError::BadInput(format!(
            "{}: no such run directory",
            dir.display()
        )));
    }
    RunRecord::load(dir).map_err(record_error)
}

/// `fibrosim plot`: draws the charts again from the recorded files.
pub fn plot(args: &PlotArgs) -> Result<(), AppError> {
    let record = load_run(&args.run_dir)?;
    let opts = PlotOptions {
        width: args.size.0,
        height: args.size.1,
        format: args.format,
        only: (!args.only.is_empty()).then(|| args.only.clone()),
    };
    let written =
        crate::plot::render(&record, &args.run_dir.join(CHARTS_DIR), &opts).map_err(plot_error)?;
    for path in written {
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// `fibrosim report`: writes `report.html` again from the recorded files.
pub fn report(args: &ReportArgs) -> Result<(), AppError> {
    let record = load_run(&args.run_dir)?;
    let path = crate::report::write_report(&record, &args.run_dir)
        .map_err(|e| AppError::Failed(e.into()))?;
    println!("wrote {}", path.display());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// sweep, validate, bench

/// A sweep error as who must act: an invalid sweep or base scenario, a changed run directory
/// or unmergeable shards are the user's input; I/O and drawing failures are not.
fn sweep_error(e: crate::sweep::SweepError) -> AppError {
    use crate::sweep::SweepError as E;
    match e {
        E::Invalid(_) | E::Base(_) | E::Changed { .. } | E::Merge { .. } => {
            AppError::BadInput(e.to_string())
        }
        E::Io { .. } | E::Chart { .. } => AppError::Failed(anyhow!(e)),
    }
}

/// `fibrosim sweep` and `fibrosim sweep merge`: every run goes on when one fails; the command
/// exits 1 at the end if any did.
pub fn sweep(args: &SweepArgs) -> Result<(), AppError> {
    use crate::sweep::{SweepOptions, load_sweep, merge, run_sweep};
    let report = match &args.action {
        Some(SweepAction::Merge(m)) => {
            if !m.dir.is_dir() {
                return Err(AppError::BadInput(format!(
                    "{}: no such sweep directory",
                    m.dir.display()
                )));
            }
            merge(&m.dir).map_err(sweep_error)?
        }
        None => {
            let file = args
                .sweep
                .as_deref()
                .ok_or_else(|| AppError::BadInput("no sweep file given".into()))?;
            let sweep = load_sweep(file).map_err(|e| match e {
                crate::sweep::SweepError::Io { .. } => AppError::BadInput(e.to_string()),
                other => sweep_error(other),
            })?;
            if !args.quiet {
                println!("{}", sweep.describe());
            }
            let opts = SweepOptions {
                out: args.out.clone(),
                shard: args.shard,
                force: args.force,
                quiet: args.quiet,
                charts: !args.no_charts,
            };
            run_sweep(&sweep, &opts).map_err(sweep_error)?
        }
    };
    if !args.quiet {
        println!(
            "{}: {} run{} selected, {} executed, {} already done, {} failed",
            report.dir.display(),
            report.selected,
            if report.selected == 1 { "" } else { "s" },
            report.executed,
            report.skipped,
            report.failed
        );
        for path in &report.written {
            println!("wrote {}", path.display());
        }
    }
    if report.failed > 0 {
        return Err(AppError::Failed(anyhow!(
            "{} run{} failed: {} (see failed.json in each run directory)",
            report.failed,
            if report.failed == 1 { "" } else { "s" },
            report.failed_ids.join(", ")
        )));
    }
    Ok(())
}

/// Where the validation scenarios are: the given folder, `scenarios/validation` under the
/// working directory, or the one of the source tree this binary was built from.
fn validation_dir(given: Option<&Path>) -> PathBuf {
    if let Some(d) = given {
        return d.to_path_buf();
    }
    let here = Path::new("scenarios").join("validation");
    if here.is_dir() {
        return here;
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join("validation")
}

/// Options of a run of the validation suite (`validate` and `sensitivity` share them): seeds
/// default to 5, or 2 with `--quick`.
fn suite_options(
    scenarios: Option<&Path>,
    seeds: Option<u32>,
    quick: bool,
    quiet: bool,
) -> crate::validate::Options {
    use crate::validate::{DEFAULT_SEEDS, QUICK_SEEDS};
    crate::validate::Options {
        scenarios: validation_dir(scenarios),
        seeds: seeds.unwrap_or(if quick { QUICK_SEEDS } else { DEFAULT_SEEDS }),
        quick,
        progress: !quiet,
    }
}

/// `fibrosim validate`: runs the suite, prints the table, writes the report; exits 1 when a
/// check fails.
pub fn validate(args: &ValidateArgs) -> Result<(), AppError> {
    use crate::validate::{self, ValidateError};
    let opts = suite_options(
        args.scenarios.as_deref(),
        args.seeds,
        args.quick,
        args.quiet,
    );
    if args.out.is_file() {
        return Err(AppError::BadInput(format!(
            "{}: exists and is not a directory; choose another --out",
            args.out.display()
        )));
    }
    let report = validate::validate(&opts).map_err(|e| match e {
        ValidateError::Scenario(s) => AppError::Scenario(s),
        other => AppError::BadInput(other.to_string()),
    })?;
    fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    write_atomic(
        &args.out.join("validation.md"),
        validate::markdown(&report).as_bytes(),
    )?;
    let json = serde_json::to_vec_pretty(&report).context("serialising the validation")?;
    write_atomic(&args.out.join("validation.json"), &json)?;
    let charts = validate::chart::write_charts(&report.checks, &args.out.join(CHARTS_DIR));
    print!("{}", validate::table(&report));
    println!("report: {}", args.out.join("validation.md").display());
    if let Err(e) = charts {
        return Err(AppError::Failed(anyhow!("validation charts: {e}")));
    }
    let failed = report.failed();
    if failed > 0 {
        return Err(AppError::Failed(anyhow!(
            "{failed} of {} validation claims failed",
            report.items().count()
        )));
    }
    Ok(())
}

/// `fibrosim sensitivity`: checks the parameter names and the output directory before any
/// work, runs the baseline and each parameter at both ends of its range, and writes the three
/// files into a staging directory renamed onto `--out` at the end.
pub fn sensitivity(args: &SensitivityArgs) -> Result<(), AppError> {
    use crate::sensitivity::{self, SensitivityError, params};
    use crate::validate::ValidateError;
    let chosen = params::select(&args.params).map_err(|e| AppError::BadInput(e.to_string()))?;
    let dest = Destination::check(&args.out, args.force)?;
    set_threads(args.threads)?;
    let opts = suite_options(
        args.scenarios.as_deref(),
        args.seeds,
        args.quick,
        args.quiet,
    );
    if !args.quiet {
        eprintln!(
            "sensitivity: baseline + {} parameter{} × 2 values, {} seed{} per protocol{}",
            chosen.len(),
            if chosen.len() == 1 { "" } else { "s" },
            opts.seeds,
            if opts.seeds == 1 { "" } else { "s" },
            if opts.quick { ", --quick" } else { "" }
        );
    }
    let report = sensitivity::run(&opts, &chosen).map_err(|e| match e {
        SensitivityError::Protocols(ValidateError::Scenario(s)) => AppError::Scenario(s),
        other => AppError::BadInput(other.to_string()),
    })?;
    let staging = dest.stage()?;
    sensitivity::write(&report, staging.path())?;
    staging.commit(&dest)?;
    print!("{}", sensitivity::table::text(&report));
    println!(
        "report: {}",
        dest.path.join(sensitivity::files::MARKDOWN).display()
    );
    Ok(())
}

/// `fibrosim bench`: the reference workload, or a scenario with `--scenario`.
pub fn bench(args: &BenchArgs) -> Result<(), AppError> {
    use crate::bench;
    if let Some(d) = args.days
        && !(d > 0.0 && d.is_finite())
    {
        return Err(AppError::BadInput(format!(
            "--days {d}: expected a positive number of days"
        )));
    }
    set_threads(args.threads)?;
    let report = match &args.scenario {
        Some(path) => {
            let mut s = scenario::load(path).map_err(AppError::Scenario)?;
            if let Some(d) = args.days {
                bench::truncate(&mut s, d);
            }
            bench::run_scenario(&s, &path.display().to_string())
        }
        None => bench::run_reference(bench::Config {
            days: args.days.unwrap_or(2.0),
            ..Default::default()
        }),
    };
    print!("{}", bench::table(&report));
    let json = serde_json::to_vec_pretty(&report).context("serialising the benchmark")?;
    println!("{}", String::from_utf8_lossy(&json));
    if let Some(path) = &args.json {
        write_atomic(path, &json)?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// formatting

/// A number without a trailing `.0` when whole (`236`, `0.5`).
fn plain(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{v:.0}")
    } else {
        format!("{v}")
    }
}

/// A duration for people: `4.2 s`, `3 min 12 s`, `1 h 05 min`.
fn duration(seconds: f64) -> String {
    if seconds < 60.0 {
        format!("{seconds:.1} s")
    } else if seconds < 3600.0 {
        let s = seconds.round() as u64;
        format!("{} min {:02} s", s / 60, s % 60)
    } else {
        let m = (seconds / 60.0).round() as u64;
        format!("{} h {:02} min", m / 60, m % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_well() {
        assert_eq!(duration(4.25), "4.2 s");
        assert_eq!(duration(192.0), "3 min 12 s");
        assert_eq!(duration(3900.0), "1 h 05 min");
    }

    #[test]
    fn whole_numbers_lose_their_point() {
        assert_eq!(plain(236.0), "236");
        assert_eq!(plain(0.5), "0.5");
    }

    #[test]
    fn exit_codes_follow_who_must_act() {
        assert_eq!(AppError::BadInput("x".into()).exit_code(), 2);
        assert_eq!(AppError::Failed(anyhow!("x")).exit_code(), 1);
    }

    #[test]
    fn destination_refuses_files_and_dots() {
        assert!(Destination::check(Path::new("."), true).is_err());
        let dir = std::env::temp_dir().join(format!("fibrosim-app-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f");
        fs::write(&file, "x").unwrap();
        assert!(Destination::check(&file, true).is_err());
        assert!(Destination::check(&dir, false).is_err());
        assert!(Destination::check(&dir, true).is_ok());
        fs::remove_dir_all(&dir).unwrap();
    }
}
