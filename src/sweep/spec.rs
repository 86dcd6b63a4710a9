//! Reading a sweep file: TOML with unknown keys refused, axes expanded into points, every point
//! validated as a scenario (so a misspelt key path or a value out of range is reported, located
//! at the axis in the sweep file, before any run starts), and the runs listed with their seeds.
//!
//! An axis sets one key path of the base scenario's TOML document before the scenario is
//! validated; setting `schedule.sessions`, `schedule.interval_days` or `schedule.start_day`
//! removes an explicit `schedule.days` list of the base (which `to_toml` writes).

use std::collections::BTreeSet;
use std::ops::Range;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::hash::{fnv1a64, hex, run_seed};
use super::{SweepError, SweepIssue};
use crate::scenario::{self, Scenario, error::suggest};

/// Most replicates per point.
pub const MAX_REPLICATES: i64 = 1000;
/// Most runs in one sweep.
pub const MAX_RUNS: usize = 1_000_000;
/// Largest sweep file, bytes.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// Wall seconds per voxel per active time step of the treated arm, measured once (release
/// build, one thread of a 2-core x86-64 VM, fibrosim 0.1.0): a 400 × 400 µm block of
/// 20 × 20 × 80 voxels (608 fibroblasts), one session, 10 days of follow-up ran 960 active steps
/// in 3.77 s, and the same block of 40 µm voxels (4 000 voxels) 3 290 steps in 4.0 s; solving
/// t_step = a · voxels + b · agents for the two gives a = 9.0e-8 s and b = 1.7e-6 s. The control
/// arm is quiet (fast-forwarded) and not counted. Used only for the estimate printed before a
/// sweep starts.
pub const SECONDS_PER_VOXEL_STEP: f64 = 9.0e-8;
/// Wall seconds per fibroblast (at baseline) per active time step; see [`SECONDS_PER_VOXEL_STEP`].
pub const SECONDS_PER_AGENT_STEP: f64 = 1.7e-6;
/// Days after a session during which the tissue stays active (steps at `dt_h`) before the quiet
/// fast-forward takes over, unless the next session comes first; measured on the block above
/// (3 290 active steps of 0.25 h after one session). Used only for the estimate.
pub const ACTIVE_DAYS_PER_SESSION: f64 = 34.0;

/// How axes combine into points.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Combine {
    /// Every combination; the first axis varies slowest.
    Grid,
    /// The i-th values of all axes together; axes must have equal lengths.
    Zip,
}

impl Combine {
    /// The name used in sweep files.
    pub fn name(self) -> &'static str {
        match self {
            Combine::Grid => "grid",
            Combine::Zip => "zip",
        }
    }
}

/// One varied key.
#[derive(Debug, Clone, PartialEq)]
pub struct Axis {
    /// Dotted key path of the scenario, e.g. `device.needle_length_mm`.
    pub key: String,
    /// Its values, in file order.
    pub values: Vec<toml::Value>,
    /// 1-based line of the axis key in the sweep file.
    pub line: Option<usize>,
}

/// One run of a sweep: a point and a replicate.
#[derive(Debug, Clone)]
pub struct RunSpec {
    /// Global run index: point × replicates + replicate.
    pub index: usize,
    /// Directory name: zero-padded index, `-`, 8 hex digits of the point and replicate.
    pub id: String,
    /// Point index (position in the expanded grid or zip).
    pub point: usize,
    /// Replicate, from 0.
    pub replicate: usize,
    /// Seed (see [`super::hash`]).
    pub seed: u64,
    /// The value of each axis, in axis order.
    pub values: Vec<toml::Value>,
    /// The resolved scenario of the run (seed and name set).
    pub scenario: Scenario,
    /// `scenario::to_toml` of it.
    pub scenario_toml: String,
    /// FNV-1a 64 of `scenario_toml`, 16 hex digits.
    pub scenario_hash: String,
    /// Estimated wall seconds on one core.
    pub estimate_s: f64,
}

/// A loaded, validated and expanded sweep.
#[derive(Debug, Clone)]
pub struct Sweep {
    /// Name (default: the file stem); the output folder.
    pub name: String,
    /// Free text.
    pub description: String,
    /// The sweep file.
    pub file: PathBuf,
    /// Replicates per point.
    pub replicates: usize,
    /// Base seed.
    pub seed: u64,
    /// Grid or zip.
    pub combine: Combine,
    /// The axes.
    pub axes: Vec<Axis>,
    /// Number of points.
    pub points: usize,
    /// FNV-1a 64 of the version, name and every run's id and scenario hash.
    pub hash: String,
    runs: Vec<RunSpec>,
}

impl Sweep {
    /// Every run, by index.
    pub fn runs(&self) -> &[RunSpec] {
        &self.runs
    }

    /// Estimated wall seconds of all runs on one core.
    pub fn estimate_cpu_s(&self) -> f64 {
        self.runs.iter().map(|r| r.estimate_s).sum()
    }

    /// Number of runs and the time estimate, for printing before a sweep starts.
    pub fn describe(&self) -> String {
        let n = self.runs.len();
        let cpu = self.estimate_cpu_s();
        let threads = rayon::current_num_threads().max(1);
        let axes: Vec<String> = self
            .axes
            .iter()
            .map(|a| format!("{} ({} values)", a.key, a.values.len()))
            .collect();
        format!(
            "sweep `{}`: {} point{} ({} of {}) × {} replicate{} = {} run{}; estimated {} of CPU time, about {} on {} thread{} (calibrated at {:e} s per voxel-step and {:e} s per cell-step)",
            self.name,
            self.points,
            plural(self.points),
            self.combine.name(),
            axes.join(" × "),
            self.replicates,
            plural(self.replicates),
            n,
            plural(n),
            fmt_duration(cpu),
            fmt_duration(cpu / threads as f64),
            threads,
            plural(threads),
            SECONDS_PER_VOXEL_STEP,
            SECONDS_PER_AGENT_STEP,
        )
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// `1 h 20 min`, `3 min 5 s`, `12 s`.
pub fn fmt_duration(s: f64) -> String {
    let s = s.max(0.0).round() as u64;
    if s >= 3600 {
        format!("{} h {} min", s / 3600, (s % 3600) / 60)
    } else if s >= 60 {
        format!("{} min {} s", s / 60, s % 60)
    } else {
        format!("{s} s")
    }
}

/// Estimated wall seconds of one run on one core: active steps (per session, the active window
/// or the time to the next session, whichever is shorter) at `dt_h` plus quiet steps at
/// `max_dt_h`, each costing voxels × [`SECONDS_PER_VOXEL_STEP`] + baseline fibroblasts ×
/// [`SECONDS_PER_AGENT_STEP`].
pub fn estimate_seconds(s: &Scenario) -> f64 {
    let e = scenario::estimate(s);
    let end = s.end_day();
    let days = &s.schedule.days;
    let active_days: f64 = days
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let next = days.get(i + 1).copied().unwrap_or(end);
            (next - d).clamp(0.0, ACTIVE_DAYS_PER_SESSION)
        })
        .sum();
    let quiet_days = (end - active_days).max(0.0);
    let quiet_dt = if s.numerics.fast_forward {
        s.numerics.max_dt_h
    } else {
        s.numerics.dt_h
    };
    let steps = active_days * 24.0 / s.numerics.dt_h + quiet_days * 24.0 / quiet_dt;
    steps
        * (e.voxels as f64 * SECONDS_PER_VOXEL_STEP
            + e.agents_baseline as f64 * SECONDS_PER_AGENT_STEP)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSweep {
    name: Option<Spanned<String>>,
    description: Option<String>,
    base: Spanned<toml::Value>,
    replicates: Option<Spanned<i64>>,
    seed: Option<Spanned<i64>>,
    combine: Option<Spanned<String>>,
    #[serde(default)]
    axis: Vec<Spanned<RawAxis>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAxis {
    key: Spanned<String>,
    values: Option<Spanned<Vec<toml::Value>>>,
    range: Option<Spanned<RawRange>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRange {
    from: Spanned<toml::Value>,
    to: Spanned<toml::Value>,
    step: Spanned<toml::Value>,
}

const TOP_KEYS: [&str; 7] = [
    "name",
    "description",
    "base",
    "replicates",
    "seed",
    "combine",
    "axis",
];
const AXIS_KEYS: [&str; 3] = ["key", "values", "range"];
const RANGE_KEYS: [&str; 3] = ["from", "to", "step"];
/// Keys an axis may not set: the sweep sets them per run.
const RESERVED: [&str; 2] = ["seed", "name"];

/// Line and column (1-based, characters) of a byte offset.
fn position(text: &str, at: usize) -> (usize, usize) {
    let at = at.min(text.len());
    let before = &text[..at];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rsplit('\n')
        .next()
        .map(|l| l.chars().count())
        .unwrap_or(0)
        + 1;
    (line, col)
}

struct Ctx<'a> {
    file: &'a Path,
    text: &'a str,
    issues: Vec<SweepIssue>,
}

impl Ctx<'_> {
    fn at(&self, span: Option<Range<usize>>, key: &str, message: String) -> SweepIssue {
        let pos = span.map(|s| position(self.text, s.start));
        SweepIssue {
            file: self.file.to_path_buf(),
            line: pos.map(|p| p.0),
            column: pos.map(|p| p.1),
            key: key.to_string(),
            message,
        }
    }
    fn err(&mut self, span: Option<Range<usize>>, key: &str, message: String) {
        let i = self.at(span, key, message);
        self.issues.push(i);
    }
}

/// Turns a serde/TOML error into a located issue, with a suggestion for an unknown key.
fn toml_issue(cx: &Ctx, e: &toml::de::Error) -> SweepIssue {
    let msg = e.message().lines().next().unwrap_or("invalid sweep file");
    let span = e.span();
    let found = span
        .as_ref()
        .and_then(|s| cx.text.get(s.clone()))
        .unwrap_or("")
        .trim()
        .trim_matches('"')
        .to_string();
    if let Some(rest) = msg.strip_prefix("unknown field `") {
        let name = rest.split('`').next().unwrap_or("");
        let valid: Vec<&str> = rest.split('`').skip(1).step_by(2).collect();
        let set: &[&str] = if valid.contains(&"from") {
            &RANGE_KEYS
        } else if valid.contains(&"values") {
            &AXIS_KEYS
        } else {
            &TOP_KEYS
        };
        let hint = match suggest(name, set) {
            Some(s) => format!("; did you mean `{s}`?"),
            None => format!("; valid keys here: {}", set.join(", ")),
        };
        return cx.at(span, name, format!("{name}: unknown key{hint}"));
    }
    let key = if found.is_empty() {
        String::new()
    } else {
        found
    };
    cx.at(span, &key, msg.to_string())
}

fn number(v: &toml::Value) -> Option<f64> {
    match v {
        toml::Value::Integer(i) => Some(*i as f64),
        toml::Value::Float(f) => Some(*f),
        _ => None,
    }
}

/// Rounds to 12 significant digits (ranges of floats: 0.1 + 2 × 0.1 is 0.3).
fn tidy(v: f64) -> f64 {
    format!("{v:.11e}").parse().unwrap_or(v)
}

/// A value as written in CSV files: numbers in shortest form, strings bare.
pub fn value_text(v: &toml::Value) -> String {
    match v {
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) => format!("{f}"),
        toml::Value::String(s) => s.clone(),
        toml::Value::Boolean(b) => b.to_string(),
        other => other.to_string(),
    }
}

/// Sets `key` (dotted) in `doc`, creating tables on the way.
fn set_key(doc: &mut toml::Table, key: &str, value: toml::Value) -> Result<(), String> {
    let segs: Vec<&str> = key.split('.').collect();
    if matches!(
        key,
        "schedule.sessions" | "schedule.interval_days" | "schedule.start_day"
    ) && let Some(toml::Value::Table(s)) = doc.get_mut("schedule")
    {
        s.remove("days");
    }
    let mut t = doc;
    for (i, seg) in segs[..segs.len() - 1].iter().enumerate() {
        let entry = t
            .entry(seg.to_string())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        t = match entry {
            toml::Value::Table(inner) => inner,
            _ => {
                return Err(format!(
                    "`{}` is a value, not a table; the key path cannot continue into it",
                    segs[..=i].join(".")
                ));
            }
        };
    }
    t.insert(segs[segs.len() - 1].to_string(), value);
    Ok(())
}

fn valid_key_path(key: &str) -> bool {
    !key.is_empty()
        && key
            .split('.')
            .all(|s| !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
}

/// Reads the sweep file at `path`, validates it and every point, and expands its runs.
pub fn load_sweep(path: &Path) -> Result<Sweep, SweepError> {
    let meta = std::fs::metadata(path).map_err(|e| SweepError::io(path, e))?;
    if meta.is_dir() {
        return Err(SweepError::io(path, "is a directory, not a sweep file"));
    }
    if meta.len() > MAX_FILE_BYTES {
        return Err(SweepError::io(
            path,
            format!("{} bytes; sweep files are limited to 1 MiB", meta.len()),
        ));
    }
    let text = std::fs::read_to_string(path).map_err(|e| SweepError::io(path, e))?;
    parse_sweep(&text, path)
}

/// Parses and expands sweep text; `file` names it in messages, gives the default name and the
/// directory a base file path is relative to.
pub fn parse_sweep(text: &str, file: &Path) -> Result<Sweep, SweepError> {
    let mut cx = Ctx {
        file,
        text,
        issues: Vec::new(),
    };
    let raw: RawSweep = match toml::from_str(text) {
        Ok(r) => r,
        Err(e) => return Err(SweepError::Invalid(vec![toml_issue(&cx, &e)])),
    };
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "sweep".into());
    let name = match &raw.name {
        Some(n) => {
            let v = n.get_ref();
            if v.trim().is_empty()
                || v == "."
                || v == ".."
                || v.chars().any(|c| c == '/' || c == '\\' || c.is_control())
            {
                cx.err(
                    Some(n.span()),
                    "name",
                    format!(
                        "name = \"{v}\": not usable as a folder name; use a non-empty name without / \\ or control characters"
                    ),
                );
            }
            v.clone()
        }
        None => stem,
    };
    let replicates = match &raw.replicates {
        Some(r) => {
            let v = *r.get_ref();
            if !(1..=MAX_REPLICATES).contains(&v) {
                cx.err(
                    Some(r.span()),
                    "replicates",
                    format!("replicates = {v}: out of range; allowed 1–{MAX_REPLICATES}"),
                );
            }
            v.clamp(1, MAX_REPLICATES) as usize
        }
        None => 1,
    };
    let seed = match &raw.seed {
        Some(s) => {
            let v = *s.get_ref();
            if v < 0 {
                cx.err(
                    Some(s.span()),
                    "seed",
                    format!("seed = {v}: negative; allowed 0–{}", i64::MAX),
                );
            }
            v.max(0) as u64
        }
        None => 1,
    };
    let combine = match &raw.combine {
        None => Combine::Grid,
        Some(c) => match c.get_ref().as_str() {
            "grid" => Combine::Grid,
            "zip" => Combine::Zip,
            other => {
                let hint = suggest(other, &["grid", "zip"])
                    .map(|s| format!("; did you mean `{s}`?"))
                    .unwrap_or_default();
                cx.err(
                    Some(c.span()),
                    "combine",
                    format!("combine = \"{other}\": unknown; expected grid or zip{hint}"),
                );
                Combine::Grid
            }
        },
    };

    // Axes.
    let mut axes: Vec<Axis> = Vec::new();
    let mut seen = BTreeSet::new();
    if raw.axis.is_empty() {
        cx.err(
            None,
            "axis",
            "no [[axis]]: the grid is empty; give at least one axis with `key` and `values` or `range`".into(),
        );
    }
    for (i, a) in raw.axis.iter().enumerate() {
        let a_span = a.span();
        let a = a.get_ref();
        let key = a.key.get_ref().trim().to_string();
        let kspan = Some(a.key.span());
        let line = kspan.clone().map(|s| position(text, s.start).0);
        if !valid_key_path(&key) {
            cx.err(
                kspan.clone(),
                &format!("axis[{i}].key"),
                format!(
                    "axis[{i}].key = \"{key}\": not a key path; write dotted names such as device.needle_length_mm"
                ),
            );
        } else if RESERVED.contains(&key.as_str()) {
            cx.err(
                kspan.clone(),
                &key,
                format!(
                    "axis[{i}].key = \"{key}\": set per run by the sweep; use the sweep's `seed` and `replicates` instead"
                ),
            );
        } else if !seen.insert(key.clone()) {
            cx.err(
                kspan.clone(),
                &key,
                format!("axis[{i}].key = \"{key}\": this key has an axis already"),
            );
        }
        let values: Vec<toml::Value> = match (&a.values, &a.range) {
            (Some(_), Some(r)) => {
                cx.err(
                    Some(r.span()),
                    &format!("axis[{i}].range"),
                    format!("axis[{i}] ({key}): give either `values` or `range`, not both"),
                );
                Vec::new()
            }
            (None, None) => {
                cx.err(
                    Some(a_span),
                    &format!("axis[{i}]"),
                    format!(
                        "axis[{i}] ({key}): give `values = [...]` or `range = {{ from, to, step }}`"
                    ),
                );
                Vec::new()
            }
            (Some(v), None) => {
                for x in v.get_ref() {
                    if matches!(x, toml::Value::Table(_) | toml::Value::Datetime(_)) {
                        cx.err(
                            Some(v.span()),
                            &format!("axis[{i}].values"),
                            format!("axis[{i}].values ({key}): {x}: tables and dates cannot be axis values"),
                        );
                    }
                }
                v.get_ref().clone()
            }
            (None, Some(r)) => {
                let r = r.get_ref();
                let get = |s: &Spanned<toml::Value>, which: &str, cx: &mut Ctx| {
                    let n = number(s.get_ref()).filter(|x| x.is_finite());
                    if n.is_none() {
                        cx.err(
                            Some(s.span()),
                            &format!("axis[{i}].range.{which}"),
                            format!(
                                "axis[{i}].range.{which} ({key}) = {}: expected a finite number",
                                s.get_ref()
                            ),
                        );
                    }
                    n
                };
                let from = get(&r.from, "from", &mut cx);
                let to = get(&r.to, "to", &mut cx);
                let step = get(&r.step, "step", &mut cx);
                let ints = [&r.from, &r.to, &r.step]
                    .iter()
                    .all(|s| matches!(s.get_ref(), toml::Value::Integer(_)));
                match (from, to, step) {
                    (Some(_), Some(_), Some(st)) if st <= 0.0 => {
                        cx.err(
                            Some(r.step.span()),
                            &format!("axis[{i}].range.step"),
                            format!(
                                "axis[{i}].range.step ({key}) = {}: must be > 0",
                                r.step.get_ref()
                            ),
                        );
                        Vec::new()
                    }
                    (Some(f), Some(t), Some(st)) => {
                        let n = ((t - f) / st + 1e-9).floor() + 1.0;
                        if n > MAX_RUNS as f64 {
                            cx.err(
                                Some(r.step.span()),
                                &format!("axis[{i}].range"),
                                format!("axis[{i}].range ({key}): {n} values; at most {MAX_RUNS}"),
                            );
                            Vec::new()
                        } else {
                            (0..n.max(0.0) as usize)
                                .map(|k| {
                                    if ints {
                                        toml::Value::Integer((f + k as f64 * st) as i64)
                                    } else {
                                        toml::Value::Float(tidy(f + k as f64 * st))
                                    }
                                })
                                .collect()
                        }
                    }
                    _ => Vec::new(),
                }
            }
        };
        axes.push(Axis { key, values, line });
    }
    let axis_span = |i: usize| Some(raw.axis[i].get_ref().key.span());
    let all_axes_ok = cx.issues.is_empty();
    if all_axes_ok {
        for (i, a) in axes.iter().enumerate() {
            if a.values.is_empty() {
                cx.err(
                    axis_span(i),
                    &a.key,
                    format!(
                        "axis[{i}] ({}): no values; the grid is empty (a range needs from ≤ to)",
                        a.key
                    ),
                );
            }
        }
        if combine == Combine::Zip && axes.len() > 1 {
            let n0 = axes[0].values.len();
            for (i, a) in axes.iter().enumerate().skip(1) {
                if a.values.len() != n0 {
                    cx.err(
                        axis_span(i),
                        &a.key,
                        format!(
                            "axis[{i}] ({}): {} values, but axis[0] ({}) has {n0}; zipped axes need equal lengths",
                            a.key,
                            a.values.len(),
                            axes[0].key
                        ),
                    );
                }
            }
        }
    }
    if !cx.issues.is_empty() {
        return Err(SweepError::Invalid(cx.issues));
    }

    // Points.
    let points: Vec<Vec<usize>> = match combine {
        Combine::Zip => (0..axes[0].values.len())
            .map(|k| vec![k; axes.len()])
            .collect(),
        Combine::Grid => {
            let total: f64 = axes.iter().map(|a| a.values.len() as f64).product();
            if total * replicates as f64 > MAX_RUNS as f64 {
                cx.err(
                    None,
                    "axis",
                    format!("{total} points × {replicates} replicates: more than {MAX_RUNS} runs"),
                );
                return Err(SweepError::Invalid(cx.issues));
            }
            let mut pts = vec![Vec::new()];
            for a in &axes {
                pts = pts
                    .into_iter()
                    .flat_map(|p| {
                        (0..a.values.len()).map(move |k| {
                            let mut q = p.clone();
                            q.push(k);
                            q
                        })
                    })
                    .collect();
            }
            pts
        }
    };
    if points.len() * replicates > MAX_RUNS {
        cx.err(
            None,
            "replicates",
            format!(
                "{} points × {replicates} replicates: more than {MAX_RUNS} runs",
                points.len()
            ),
        );
        return Err(SweepError::Invalid(cx.issues));
    }

    // Base document.
    let base_doc: toml::Table = match raw.base.get_ref() {
        toml::Value::String(rel) => {
            let p = file
                .parent()
                .unwrap_or_else(|| Path::new("."))
                .join(rel.as_str());
            // The base on its own: its errors point into its own file.
            scenario::load(&p)?;
            let t = std::fs::read_to_string(&p).map_err(|e| SweepError::io(&p, e))?;
            t.parse::<toml::Table>()
                .map_err(|e| SweepError::io(&p, e))?
        }
        toml::Value::Table(t) => {
            let text_b = toml::to_string(t).unwrap_or_default();
            if let Err(errs) = scenario::parse(&text_b, file) {
                for e in errs.0 {
                    cx.err(
                        Some(raw.base.span()),
                        &format!("base.{}", e.key),
                        format!("[base] {}", e.message),
                    );
                }
                return Err(SweepError::Invalid(cx.issues));
            }
            t.clone()
        }
        other => {
            cx.err(
                Some(raw.base.span()),
                "base",
                format!(
                    "base = {other}: expected a path to a scenario file (relative to the sweep file) or a [base] table"
                ),
            );
            return Err(SweepError::Invalid(cx.issues));
        }
    };

    // Every point as a scenario.
    let mut resolved: Vec<Scenario> = Vec::with_capacity(points.len());
    for (p, idx) in points.iter().enumerate() {
        let mut doc = base_doc.clone();
        let describe = || -> String {
            axes.iter()
                .zip(idx)
                .map(|(a, &k)| format!("{} = {}", a.key, value_text(&a.values[k])))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut bad = false;
        for (i, (a, &k)) in axes.iter().zip(idx).enumerate() {
            if let Err(m) = set_key(&mut doc, &a.key, a.values[k].clone()) {
                cx.err(axis_span(i), &a.key, format!("axis[{i}] ({}): {m}", a.key));
                bad = true;
            }
        }
        if bad {
            break;
        }
        let doc_text = toml::to_string(&doc).unwrap_or_default();
        match scenario::parse(&doc_text, file) {
            Ok(s) => resolved.push(s),
            Err(errs) => {
                for e in errs.0 {
                    let ai = axes
                        .iter()
                        .position(|a| a.key == e.key || e.key.starts_with(&format!("{}.", a.key)))
                        .unwrap_or(0);
                    cx.err(
                        axis_span(ai),
                        &e.key,
                        format!(
                            "axis[{ai}] ({}), point {p} ({}): {}",
                            axes[ai].key,
                            describe(),
                            e.message
                        ),
                    );
                }
                // One bad key path fails every point alike: report the first few points only.
                if cx.issues.len() >= 20 {
                    break;
                }
            }
        }
    }
    if !cx.issues.is_empty() {
        return Err(SweepError::Invalid(cx.issues));
    }

    // Runs.
    let total = points.len() * replicates;
    let width = (total.saturating_sub(1)).to_string().len().max(4);
    let mut runs = Vec::with_capacity(total);
    let mut sweep_bytes = format!("{}\n{}\n", env!("CARGO_PKG_VERSION"), name);
    for (p, idx) in points.iter().enumerate() {
        let values: Vec<toml::Value> = axes
            .iter()
            .zip(idx)
            .map(|(a, &k)| a.values[k].clone())
            .collect();
        let ident: String = axes
            .iter()
            .zip(&values)
            .map(|(a, v)| format!("{}={v};", a.key))
            .collect();
        for r in 0..replicates {
            let index = p * replicates + r;
            let short = fnv1a64(format!("{ident}replicate={r}").as_bytes()) >> 32;
            let id = format!("{index:0width$}-{short:08x}");
            let seed = run_seed(seed, p, r);
            let mut s = resolved[p].clone();
            s.seed = seed;
            s.name = format!("{name}-{id}");
            let scenario_toml = scenario::to_toml(&s);
            let scenario_hash = hex(fnv1a64(scenario_toml.as_bytes()));
            sweep_bytes.push_str(&format!("{id} {scenario_hash}\n"));
            runs.push(RunSpec {
                index,
                id,
                point: p,
                replicate: r,
                seed,
                values: values.clone(),
                estimate_s: estimate_seconds(&s),
                scenario: s,
                scenario_toml,
                scenario_hash,
            });
        }
    }
    Ok(Sweep {
        name,
        description: raw.description.unwrap_or_default(),
        file: file.to_path_buf(),
        replicates,
        seed,
        combine,
        axes,
        points: points.len(),
        hash: hex(fnv1a64(sweep_bytes.as_bytes())),
        runs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_are_one_based() {
        assert_eq!(position("a\nbc = 1", 3), (2, 2));
        assert_eq!(position("x", 0), (1, 1));
    }

    #[test]
    fn float_ranges_are_tidy() {
        assert_eq!(tidy(0.1 + 2.0 * 0.1), 0.3);
    }

    #[test]
    fn schedule_keys_replace_days() {
        let mut doc: toml::Table = "[schedule]\ndays = [0.0]\n".parse().unwrap();
        set_key(&mut doc, "schedule.sessions", toml::Value::Integer(3)).unwrap();
        assert!(doc["schedule"].get("days").is_none());
        assert!(set_key(&mut doc, "schedule.sessions.x", toml::Value::Integer(1)).is_err());
    }
}
