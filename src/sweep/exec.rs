//! Running a sweep: the runs (or one shard of them) in parallel, as many at once as the
//! memory holds ([`crate::guard::parallel_runs`]), each in its own directory; resuming from
//! `done.json` markers; recording failures without stopping the others; merging shards; and writing the tables and charts from the run directories.
//!
//! `runs/<id>/done.json` (written last, atomically) and `runs/<id>/failed.json` hold
//! `{"id", "index", "scenario_hash", "version", ...}`; a run whose `done.json` matches its
//! scenario hash and version is skipped; one that differs is refused unless `force`.
//! `shard-<i>-of-<n>.json` holds `{"sweep", "hash", "version", "shard", "shards", "runs"}`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use super::results::{self, RunEntry, RunResult, SweepFile};
use super::spec::{RunSpec, Sweep, fmt_duration, value_text};
use super::{SweepError, chart};
use crate::fsutil::write_atomic;

const VERSION: &str = env!("CARGO_PKG_VERSION");
const SWEEP_JSON: &str = "sweep.json";
const DONE: &str = "done.json";
const FAILED: &str = "failed.json";
const SCENARIO: &str = "scenario.toml";

/// How to run a sweep.
#[derive(Debug, Clone, Default)]
pub struct SweepOptions {
    /// The sweep directory; default `output/<sweep name>`.
    pub out: Option<PathBuf>,
    /// Run only shard i of n: runs whose index % n == i.
    pub shard: Option<(usize, usize)>,
    /// Discard run directories of a changed scenario instead of refusing.
    pub force: bool,
    /// No progress output.
    pub quiet: bool,
    /// Draw charts (single-machine runs; a merge always draws them).
    pub charts: bool,
}

/// What a sweep invocation did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SweepReport {
    /// The sweep directory.
    pub dir: PathBuf,
    /// Runs this invocation was responsible for (all, or the shard's).
    pub selected: usize,
    /// Runs executed now.
    pub executed: usize,
    /// Runs skipped as already done.
    pub skipped: usize,
    /// Runs that failed (now, or recorded as failed in a merge).
    pub failed: usize,
    /// Ids of the runs that failed.
    pub failed_ids: Vec<String>,
    /// Files written: tables, charts, shard manifest.
    pub written: Vec<PathBuf>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Marker {
    id: String,
    index: usize,
    scenario_hash: String,
    version: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wall_s: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    active_steps: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
struct ShardFile {
    sweep: String,
    hash: String,
    version: String,
    shard: usize,
    shards: usize,
    runs: Vec<String>,
}

static FAILURES: Mutex<Vec<(String, usize)>> = Mutex::new(Vec::new());

/// Makes run `index` of the sweep named `sweep` panic when it starts (for tests of failure
/// handling); process-wide.
#[doc(hidden)]
pub fn inject_failure(sweep: &str, index: usize) {
    FAILURES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((sweep.to_string(), index));
}

fn injected(sweep: &str, index: usize) -> bool {
    FAILURES
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .any(|(s, i)| s == sweep && *i == index)
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, SweepError> {
    let text = std::fs::read_to_string(path).map_err(|e| SweepError::io(path, e))?;
    serde_json::from_str(&text).map_err(|e| SweepError::io(path, e))
}

fn write_json<T: Serialize>(path: &Path, v: &T) -> Result<(), SweepError> {
    let mut bytes = serde_json::to_vec_pretty(v).map_err(|e| SweepError::io(path, e))?;
    bytes.push(b'\n');
    write_atomic(path, &bytes)?;
    Ok(())
}

fn sweep_file(sweep: &Sweep) -> SweepFile {
    SweepFile {
        sweep: sweep.name.clone(),
        version: VERSION.into(),
        hash: sweep.hash.clone(),
        combine: sweep.combine.name().into(),
        replicates: sweep.replicates,
        seed: sweep.seed,
        axes: sweep.axes.iter().map(|a| a.key.clone()).collect(),
        runs: sweep
            .runs()
            .iter()
            .map(|r| RunEntry {
                index: r.index,
                id: r.id.clone(),
                point: r.point,
                replicate: r.replicate,
                seed: r.seed,
                values: r.values.iter().map(value_text).collect(),
                scenario_hash: r.scenario_hash.clone(),
            })
            .collect(),
    }
}

/// What to do with a run's directory.
enum State {
    Skip,
    Run,
    Changed(String),
}

fn state_of(dir: &Path, hash: &str) -> State {
    let check = |m: &Marker, what: &str| {
        if m.scenario_hash != hash {
            Some(format!(
                "{what} records scenario hash {} but the sweep now resolves it to {hash} (the scenario changed)",
                m.scenario_hash
            ))
        } else if m.version != VERSION {
            Some(format!(
                "{what} was written by fibrosim {} (this is {VERSION})",
                m.version
            ))
        } else {
            None
        }
    };
    if !dir.exists() {
        return State::Run;
    }
    for (file, done) in [(DONE, true), (FAILED, false)] {
        let p = dir.join(file);
        if p.exists() {
            return match read_json::<Marker>(&p) {
                Ok(m) => match check(&m, file) {
                    Some(why) => State::Changed(why),
                    None if done => State::Skip,
                    None => State::Run,
                },
                Err(_) => State::Changed(format!("{file} is unreadable")),
            };
        }
    }
    match std::fs::read_to_string(dir.join(SCENARIO)) {
        Ok(t) if super::hash::hex(super::hash::fnv1a64(t.as_bytes())) != hash => State::Changed(
            "its scenario.toml differs from this sweep's scenario (the scenario changed)".into(),
        ),
        _ => State::Run,
    }
}

fn panic_text(p: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = p.downcast_ref::<&str>() {
        (*s).to_string()
    } else if let Some(s) = p.downcast_ref::<String>() {
        s.clone()
    } else {
        "panic".into()
    }
}

/// Runs one scenario into `dir`; returns Err(message) when it failed (failed.json written).
fn run_one(sweep: &str, spec: &RunSpec, dir: &Path) -> Result<(), SweepError> {
    std::fs::create_dir_all(dir).map_err(|e| SweepError::io(dir, e))?;
    for f in [DONE, FAILED] {
        let _ = std::fs::remove_file(dir.join(f));
    }
    write_atomic(&dir.join(SCENARIO), spec.scenario_toml.as_bytes())?;
    let t0 = Instant::now();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        if injected(sweep, spec.index) {
            panic!("injected failure of run {}", spec.index);
        }
        let stop = AtomicBool::new(false);
        let out = crate::run::run(&spec.scenario, &|_, _| {}, &stop);
        if !out.record.summary.complete {
            return Err(out
                .error
                .unwrap_or_else(|| "the run stopped before its last day".to_string()));
        }
        out.record.write(dir).map_err(|e| e.to_string())?;
        Ok(out.work_treated.active_steps)
    }));
    let result = match outcome {
        Ok(r) => r,
        Err(p) => Err(format!("panicked: {}", panic_text(&*p))),
    };
    let mut marker = Marker {
        id: spec.id.clone(),
        index: spec.index,
        scenario_hash: spec.scenario_hash.clone(),
        version: VERSION.into(),
        message: None,
        wall_s: Some(t0.elapsed().as_secs_f64()),
        active_steps: None,
    };
    match result {
        Ok(steps) => {
            marker.active_steps = Some(steps);
            write_json(&dir.join(DONE), &marker)
        }
        Err(m) => {
            marker.message = Some(m.clone());
            write_json(&dir.join(FAILED), &marker)?;
            Err(SweepError::Io {
                path: dir.to_path_buf(),
                message: m,
            })
        }
    }
}

/// Progress output: a bar on a terminal, plain lines otherwise, nothing when quiet.
struct Progress {
    bar: Option<indicatif::ProgressBar>,
    plain: bool,
    total: usize,
    done: AtomicUsize,
    failed: AtomicUsize,
    t0: Instant,
}

impl Progress {
    fn new(total: usize, quiet: bool) -> Self {
        let term = !quiet && std::io::stderr().is_terminal();
        let bar = term.then(|| {
            let b = indicatif::ProgressBar::new(total as u64);
            let style = indicatif::ProgressStyle::with_template(
                "{bar:40} {pos}/{len} runs, {msg}, ETA {eta}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            b.set_style(style);
            b.set_message("0 failed");
            b
        });
        Progress {
            bar,
            plain: !quiet && !term,
            total,
            done: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            t0: Instant::now(),
        }
    }

    fn tick(&self, id: &str, ok: bool) {
        let done = self.done.fetch_add(1, Ordering::SeqCst) + 1;
        let failed = if ok {
            self.failed.load(Ordering::SeqCst)
        } else {
            self.failed.fetch_add(1, Ordering::SeqCst) + 1
        };
        if let Some(b) = &self.bar {
            b.set_message(format!("{failed} failed"));
            b.inc(1);
        } else if self.plain {
            let el = self.t0.elapsed().as_secs_f64();
            let eta = el / done as f64 * (self.total - done) as f64;
            eprintln!(
                "run {id} {}: {done}/{} done, {failed} failed, ETA {}",
                if ok { "done" } else { "FAILED" },
                self.total,
                fmt_duration(eta)
            );
        }
    }

    fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish();
        }
    }
}

/// Runs `sweep` (or the shard of it chosen in `opts`). Every run directory is checked before
/// anything runs; a changed scenario is refused unless `opts.force`. Without a shard, the
/// tables (and charts when `opts.charts`) are written at the end; with one, the shard's
/// manifest, for [`merge`].
pub fn run_sweep(sweep: &Sweep, opts: &SweepOptions) -> Result<SweepReport, SweepError> {
    if let Some((i, n)) = opts.shard
        && (n == 0 || i >= n)
    {
        return Err(SweepError::Io {
            path: PathBuf::from(format!("--shard {i}/{n}")),
            message: "a shard is i/n with 0 ≤ i < n".into(),
        });
    }
    let dir = opts
        .out
        .clone()
        .unwrap_or_else(|| Path::new("output").join(&sweep.name));
    let runs_dir = dir.join("runs");
    std::fs::create_dir_all(&runs_dir).map_err(|e| SweepError::io(&runs_dir, e))?;
    let selected: Vec<&RunSpec> = sweep
        .runs()
        .iter()
        .filter(|r| opts.shard.is_none_or(|(i, n)| r.index % n == i))
        .collect();
    let mut todo = Vec::new();
    let mut skipped = 0;
    for r in &selected {
        let d = runs_dir.join(&r.id);
        match state_of(&d, &r.scenario_hash) {
            State::Skip => skipped += 1,
            State::Run => todo.push(*r),
            State::Changed(why) if opts.force => {
                std::fs::remove_dir_all(&d).map_err(|e| SweepError::io(&d, e))?;
                let _ = why;
                todo.push(*r);
            }
            State::Changed(why) => return Err(SweepError::Changed { dir: d, why }),
        }
    }
    write_json(&dir.join(SWEEP_JSON), &sweep_file(sweep))?;
    if !opts.quiet {
        eprintln!("{}", sweep.describe());
        if skipped > 0 {
            eprintln!("{skipped} run(s) already done; {} to run", todo.len());
        }
    }
    let per_run = todo
        .iter()
        .map(|r| crate::guard::Resources::of(&r.scenario, false))
        .fold((0u64, 0u64), |(m, d), e| {
            (m.max(e.memory_bytes), d.saturating_add(e.disk_bytes))
        });
    let parallel = crate::guard::parallel_runs(
        crate::guard::available_memory(),
        per_run.0,
        rayon::current_num_threads(),
    );
    if !opts.quiet && !todo.is_empty() {
        eprintln!(
            "each run needs ≈ {:.1} MiB memory; {} runs need ≈ {:.1} MiB disk; {parallel} at a time",
            per_run.0 as f64 / crate::guard::MIB,
            todo.len(),
            per_run.1 as f64 / crate::guard::MIB
        );
    }
    if let Some(free) = crate::guard::free_disk(&runs_dir)
        && per_run.1 > free
    {
        return Err(SweepError::io(
            &runs_dir,
            format!(
                "refused: the runs need ≈ {:.1} MiB disk and only {:.2} MiB is free",
                per_run.1 as f64 / crate::guard::MIB,
                free as f64 / crate::guard::MIB
            ),
        ));
    }
    let progress = Progress::new(todo.len(), opts.quiet);
    // At most `parallel` runs at once (memory), each using the whole rayon pool inside: the
    // workers are plain threads, so waiting for a run never blocks a rayon worker.
    let next = AtomicUsize::new(0);
    let finished = Mutex::new(Vec::with_capacity(todo.len()));
    std::thread::scope(|scope| {
        for _ in 0..parallel.min(todo.len()) {
            scope.spawn(|| {
                loop {
                    let k = next.fetch_add(1, Ordering::SeqCst);
                    let Some(r) = todo.get(k) else { break };
                    let res = run_one(&sweep.name, r, &runs_dir.join(&r.id));
                    progress.tick(&r.id, res.is_ok());
                    finished
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push((k, r.id.clone(), res));
                }
            });
        }
    });
    let mut finished = finished.into_inner().unwrap_or_else(|e| e.into_inner());
    finished.sort_by_key(|f| f.0);
    let outcomes: Vec<(String, Result<(), SweepError>)> =
        finished.into_iter().map(|(_, id, res)| (id, res)).collect();
    progress.finish();
    let mut report = SweepReport {
        dir: dir.clone(),
        selected: selected.len(),
        executed: todo.len(),
        skipped,
        ..Default::default()
    };
    for (id, res) in outcomes {
        match res {
            Ok(()) => {}
            // A failure to write failed.json itself is not a run failure: stop.
            Err(e) if !runs_dir.join(&id).join(FAILED).exists() => return Err(e),
            Err(_) => {
                report.failed += 1;
                report.failed_ids.push(id);
            }
        }
    }
    match opts.shard {
        Some((i, n)) => {
            let path = dir.join(format!("shard-{i}-of-{n}.json"));
            write_json(
                &path,
                &ShardFile {
                    sweep: sweep.name.clone(),
                    hash: sweep.hash.clone(),
                    version: VERSION.into(),
                    shard: i,
                    shards: n,
                    runs: selected.iter().map(|r| r.id.clone()).collect(),
                },
            )?;
            report.written.push(path);
        }
        None => {
            report
                .written
                .extend(write_results(&dir, &sweep_file(sweep), opts.charts)?);
        }
    }
    if !opts.quiet && report.failed > 0 {
        eprintln!(
            "{} run(s) failed: {} (see runs/<id>/failed.json)",
            report.failed,
            report.failed_ids.join(", ")
        );
    }
    Ok(report)
}

/// Reads a run's outcome back from its directory.
fn read_result(dir: &Path, e: &RunEntry) -> Result<Option<RunResult>, SweepError> {
    let d = dir.join("runs").join(&e.id);
    if d.join(DONE).exists() {
        let m: Marker = read_json(&d.join(DONE))?;
        if m.scenario_hash != e.scenario_hash {
            return Err(SweepError::Changed {
                dir: d,
                why: "done.json is of another scenario".into(),
            });
        }
        let v: serde_json::Value = read_json(&d.join(crate::observe::record::files::SUMMARY))?;
        return Ok(Some(RunResult {
            status: "done".into(),
            metrics: results::flatten_metrics(&v),
        }));
    }
    if d.join(FAILED).exists() {
        return Ok(Some(RunResult {
            status: "failed".into(),
            metrics: Vec::new(),
        }));
    }
    Ok(None)
}

/// Writes summary.csv, aggregate.csv and (if `charts`) the charts from the run directories.
fn write_results(dir: &Path, sf: &SweepFile, charts: bool) -> Result<Vec<PathBuf>, SweepError> {
    let res: Vec<Option<RunResult>> = sf
        .runs
        .iter()
        .map(|e| read_result(dir, e))
        .collect::<Result<_, _>>()?;
    let columns = results::metric_columns(&res);
    let summary = dir.join("summary.csv");
    write_atomic(&summary, &results::summary_csv(sf, &res, &columns)?)?;
    let points = results::point_stats(sf, &res, &columns);
    let aggregate = dir.join("aggregate.csv");
    write_atomic(&aggregate, &results::aggregate_csv(sf, &points, &columns)?)?;
    let mut written = vec![summary, aggregate];
    if charts && let Some(h) = results::headline(&columns) {
        let k = columns.iter().position(|c| *c == h).unwrap_or(0);
        written.extend(chart::draw_all(&dir.join("charts"), sf, &points, k, &h)?);
    }
    Ok(written)
}

/// Merges the shards of a cluster run in `sweep_dir`: every shard 0..n must have written its
/// manifest for the same sweep hash and version; then writes summary.csv, aggregate.csv and the
/// charts exactly as a single-machine run would.
pub fn merge(sweep_dir: &Path) -> Result<SweepReport, SweepError> {
    let merr = |why: String| SweepError::Merge {
        dir: sweep_dir.to_path_buf(),
        why,
    };
    let sf: SweepFile = read_json(&sweep_dir.join(SWEEP_JSON))?;
    let entries = std::fs::read_dir(sweep_dir).map_err(|e| SweepError::io(sweep_dir, e))?;
    let mut shards: Vec<(usize, usize, PathBuf)> = Vec::new();
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(rest) = name
            .strip_prefix("shard-")
            .and_then(|r| r.strip_suffix(".json"))
        else {
            continue;
        };
        let Some((i, n)) = rest.split_once("-of-") else {
            continue;
        };
        if let (Ok(i), Ok(n)) = (i.parse::<usize>(), n.parse::<usize>()) {
            shards.push((i, n, e.path()));
        }
    }
    shards.sort();
    let counts: std::collections::BTreeSet<usize> = shards.iter().map(|s| s.1).collect();
    let n = match counts.len() {
        0 => return Err(merr("no shard-<i>-of-<n>.json manifests found".into())),
        1 => *counts.iter().next().unwrap_or(&0),
        _ => {
            return Err(merr(format!(
                "manifests of different shard counts ({}); remove the stale ones",
                counts
                    .iter()
                    .map(|c| c.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
    };
    let mut report = SweepReport {
        dir: sweep_dir.to_path_buf(),
        selected: sf.runs.len(),
        ..Default::default()
    };
    let mut covered = std::collections::HashSet::new();
    for i in 0..n {
        let Some((_, _, path)) = shards.iter().find(|s| s.0 == i) else {
            return Err(merr(format!(
                "shard {i} of {n} is missing (no shard-{i}-of-{n}.json)"
            )));
        };
        let m: ShardFile = read_json(path)?;
        if m.hash != sf.hash {
            return Err(merr(format!(
                "shard {i} of {n} ran sweep hash {} but sweep.json has {}",
                m.hash, sf.hash
            )));
        }
        if m.version != sf.version {
            return Err(merr(format!(
                "shard {i} of {n} was run by fibrosim {} but sweep.json is of {}",
                m.version, sf.version
            )));
        }
        covered.extend(m.runs);
    }
    for e in &sf.runs {
        if !covered.contains(&e.id) {
            return Err(merr(format!(
                "run {} (shard {} of {n}) is in no manifest",
                e.id,
                e.index % n
            )));
        }
        match read_result(sweep_dir, e)? {
            None => {
                return Err(merr(format!(
                    "run {} (shard {} of {n}) has neither done.json nor failed.json",
                    e.id,
                    e.index % n
                )));
            }
            Some(r) if r.status == "failed" => {
                report.failed += 1;
                report.failed_ids.push(e.id.clone());
            }
            Some(_) => {}
        }
    }
    report.skipped = sf.runs.len();
    report.written = write_results(sweep_dir, &sf, true)?;
    Ok(report)
}
