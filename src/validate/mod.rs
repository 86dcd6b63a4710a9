//! `fibrosim validate`: the reference protocols of `scenarios/validation/` run over several
//! seeds, judged against the published values of docs/model.md §9 (and the epidermal and
//! barrier timings of section 5), and written up as `validation.md`, `validation.json` and
//! charts.
//!
//! The protocols are shipped scenario files ([`PROTOCOLS`]), run in memory with
//! [`crate::run::run`], one run per protocol and seed (seeds 1..=N, the same for every
//! protocol, so the i-th runs of two protocols are paired). The checks themselves are pure
//! functions of the recorded runs ([`checks`]); the bands they use are data ([`Bands`]).
//! `--quick` replaces each protocol's block by [`QUICK_DOMAIN_UM`] (one channel pitch at the
//! default 250 channels per cm²) so that the suite can run in CI; the report says so.
//!
//! [`run_variants`] runs the suite with an edit applied to every protocol scenario (one run of
//! the suite per edit, all in one parallel pool); `fibrosim sensitivity` uses it to vary one
//! model parameter at a time.

pub mod chart;
pub mod checks;

use rayon::prelude::*;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::observe::record::RunRecord;
use crate::scenario::{self, Scenario, ScenarioErrors};
pub use checks::{Bands, Criterion, Item};

/// Untreated tissue followed for a year (check 1).
pub const UNTREATED: &str = "untreated-12-months";
/// One session of the default 1.0 mm pen, followed 90 days (checks 1, 2, 3, 5).
pub const SINGLE: &str = "pen-1.0mm-x1";
/// One session per needle length, shallowest first (check 3), with the needle length in mm.
pub const DEPTH: [(&str, f64); 4] = [
    ("pen-0.5mm-x1", 0.5),
    (SINGLE, 1.0),
    ("pen-1.5mm-x1", 1.5),
    ("pen-2.0mm-x1", 2.0),
];
/// Day after the session at which depth centroids are compared (a snapshot day of every
/// [`DEPTH`] protocol).
pub const DEPTH_DAY: f64 = 30.0;
/// Five monthly 1.5 mm sessions, followed 180 days (checks 4 and 5).
pub const COURSE: &str = "pen-1.5mm-x5-monthly";
/// 1, 2, 4 and 6 monthly 1.5 mm sessions (check 6; 1 and 4 also check 5).
pub const REPEAT: [(&str, u32); 4] = [
    ("pen-1.5mm-x1", 1),
    ("pen-1.5mm-x2-monthly", 2),
    ("pen-1.5mm-x4-monthly", 4),
    ("pen-1.5mm-x6-monthly", 6),
];
/// Day after the last session at which session counts are compared.
pub const REPEAT_DAY: f64 = 70.0;
/// Every protocol file the suite needs (without `.toml`), each once.
pub const PROTOCOLS: [&str; 9] = [
    UNTREATED,
    SINGLE,
    "pen-0.5mm-x1",
    "pen-1.5mm-x1",
    "pen-2.0mm-x1",
    COURSE,
    "pen-1.5mm-x2-monthly",
    "pen-1.5mm-x4-monthly",
    "pen-1.5mm-x6-monthly",
];
/// Lateral block of `--quick`, µm: one channel pitch at 250 channels per cm² (√(10⁸/250)).
pub const QUICK_DOMAIN_UM: f64 = 632.0;
/// Default seeds of a full validation (≥ 5 seeds for any claim).
pub const DEFAULT_SEEDS: u32 = 5;
/// Default seeds of `--quick`.
pub const QUICK_SEEDS: u32 = 2;

/// How to run the suite.
#[derive(Debug, Clone)]
pub struct Options {
    /// Folder of the protocol files.
    pub scenarios: PathBuf,
    /// Seeds per protocol (1..=seeds).
    pub seeds: u32,
    /// Reduced blocks ([`QUICK_DOMAIN_UM`]).
    pub quick: bool,
    /// Print a line per finished run on stderr.
    pub progress: bool,
}

/// One group of claims: a check of docs/model.md §9.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// 1–6.
    pub number: u32,
    /// Short title.
    pub title: String,
    /// Protocols it reads.
    pub protocols: Vec<String>,
    /// Its claims.
    pub items: Vec<Item>,
}

impl Check {
    /// Passes when every claim passes.
    pub fn pass(&self) -> bool {
        self.items.iter().all(Item::pass)
    }
}

/// The whole validation: how it ran and every check.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// fibrosim version.
    pub version: String,
    /// Seeds per protocol.
    pub seeds: u32,
    /// Whether blocks were reduced.
    pub quick: bool,
    /// The reduction applied, in words (empty when none).
    pub reduction: String,
    /// Wall time, s.
    pub wall_seconds: f64,
    /// Protocols run: name → description from its file.
    pub protocols: BTreeMap<String, String>,
    /// The bands used.
    pub bands: Bands,
    /// The checks.
    pub checks: Vec<Check>,
}

impl Report {
    /// Every claim.
    pub fn items(&self) -> impl Iterator<Item = &Item> {
        self.checks.iter().flat_map(|c| c.items.iter())
    }

    /// Claims that failed.
    pub fn failed(&self) -> usize {
        self.items().filter(|i| !i.pass()).count()
    }
}

/// Why the suite could not run.
#[derive(Debug, thiserror::Error)]
pub enum ValidateError {
    /// A protocol file is missing.
    #[error("{0}: missing validation scenario (the suite needs {1})")]
    Missing(PathBuf, String),
    /// A protocol file is invalid.
    #[error("{0}")]
    Scenario(ScenarioErrors),
}

/// Every protocol name, in run order.
pub fn protocol_names() -> Vec<&'static str> {
    PROTOCOLS.to_vec()
}

/// Loads every protocol, applying the `--quick` reduction.
pub fn load_protocols(
    dir: &Path,
    quick: bool,
) -> Result<BTreeMap<String, Scenario>, ValidateError> {
    let names = protocol_names();
    let mut out = BTreeMap::new();
    for name in &names {
        let path = dir.join(format!("{name}.toml"));
        if !path.is_file() {
            return Err(ValidateError::Missing(
                path,
                names
                    .iter()
                    .map(|n| format!("{n}.toml"))
                    .collect::<Vec<_>>()
                    .join(", "),
            ));
        }
        let mut s = scenario::load(&path).map_err(ValidateError::Scenario)?;
        if quick {
            s.tissue.domain_um = [QUICK_DOMAIN_UM, QUICK_DOMAIN_UM];
            // The x–z section must lie inside the reduced block (it does not enter any check).
            if s.output.section_y_um > QUICK_DOMAIN_UM {
                s.output.section_y_um = QUICK_DOMAIN_UM / 2.0;
            }
        }
        out.insert((*name).to_string(), s);
    }
    Ok(out)
}

/// A change applied to every protocol scenario before it runs (after the `--quick` reduction,
/// before the seed is set): a parameter override of `fibrosim sensitivity`, or nothing.
pub type Edit<'a> = &'a (dyn Fn(&mut Scenario) + Sync);

/// One way of running the suite: the edit applied to every protocol, and a label for the
/// progress lines (empty for a plain run).
#[derive(Clone, Copy)]
pub struct Variant<'a> {
    /// Shown before the protocol name in progress lines.
    pub label: &'a str,
    /// Applied to every protocol scenario.
    pub edit: Edit<'a>,
}

impl Variant<'static> {
    /// The protocols as they are.
    pub fn plain() -> Self {
        Variant {
            label: "",
            edit: &|_| {},
        }
    }
}

/// Records of one run of the suite: by protocol, seed 1 first.
pub type Runs = BTreeMap<String, Vec<RunRecord>>;

/// Runs every protocol for seeds 1..=`seeds` (in parallel) and returns the records by protocol,
/// seed 1 first.
pub fn run_protocols(protocols: &BTreeMap<String, Scenario>, seeds: u32, progress: bool) -> Runs {
    run_variants(
        protocols,
        &[Variant::plain()],
        seeds,
        progress,
        |_, runs| runs,
    )
    .pop()
    .unwrap_or_default()
}

/// Runs every protocol under every variant for seeds 1..=`seeds`, in parallel over (variant,
/// protocol, seed), and hands the records of each variant to `reduce` (with the variant's index)
/// as soon as all of its runs are done, so that only the reductions are kept. The results are
/// in variant order; each run depends only on its scenario and seed, so they do not depend on
/// the thread count or on the order in which runs finish.
pub fn run_variants<T: Send>(
    protocols: &BTreeMap<String, Scenario>,
    variants: &[Variant],
    seeds: u32,
    progress: bool,
    reduce: impl Fn(usize, Runs) -> T + Sync,
) -> Vec<T> {
    let total = variants.len() * protocols.len() * seeds as usize;
    let done = Mutex::new(0usize);
    let started = Instant::now();
    let stop = AtomicBool::new(false);
    variants
        .par_iter()
        .enumerate()
        .map(|(k, v)| {
            let jobs: Vec<(&String, &Scenario, u64)> = protocols
                .iter()
                .flat_map(|(n, s)| (1..=seeds as u64).map(move |seed| (n, s, seed)))
                .collect();
            let results: Vec<(String, u64, RunRecord)> = jobs
                .par_iter()
                .map(|&(name, s, seed)| {
                    let mut s = s.clone();
                    (v.edit)(&mut s);
                    s.seed = seed;
                    let t0 = Instant::now();
                    let out = crate::run::run(&s, &|_, _| {}, &stop);
                    if progress {
                        let mut d = done.lock().unwrap_or_else(|e| e.into_inner());
                        *d += 1;
                        let label = if v.label.is_empty() {
                            String::new()
                        } else {
                            format!("{} · ", v.label)
                        };
                        eprintln!(
                            "[{:>3}/{total}] {label}{name} seed {seed}: {:.1} s ({:.0} s elapsed)",
                            *d,
                            t0.elapsed().as_secs_f64(),
                            started.elapsed().as_secs_f64()
                        );
                    }
                    (name.clone(), seed, out.record)
                })
                .collect();
            let mut by: BTreeMap<String, Vec<(u64, RunRecord)>> = BTreeMap::new();
            for (name, seed, rec) in results {
                by.entry(name).or_default().push((seed, rec));
            }
            let runs = by
                .into_iter()
                .map(|(n, mut v)| {
                    v.sort_by_key(|(seed, _)| *seed);
                    (n, v.into_iter().map(|(_, r)| r).collect())
                })
                .collect();
            reduce(k, runs)
        })
        .collect()
}

/// Judges recorded runs: every check of the suite over the records of [`protocol_names`].
/// A protocol without records gives checks whose items have no seed, hence fail.
pub fn judge(runs: &Runs, b: &Bands) -> Vec<Check> {
    let empty: Vec<RunRecord> = Vec::new();
    let get = |n: &str| -> &[RunRecord] { runs.get(n).unwrap_or(&empty) };
    let depth: Vec<&[RunRecord]> = DEPTH.iter().map(|(n, _)| get(n)).collect();
    let repeat: Vec<&[RunRecord]> = REPEAT.iter().map(|(n, _)| get(n)).collect();
    let counts: Vec<u32> = REPEAT.iter().map(|(_, c)| *c).collect();
    let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    vec![
        Check {
            number: 1,
            title: "Homeostasis".into(),
            protocols: names(&[UNTREATED, SINGLE]),
            items: checks::homeostasis(get(UNTREATED), get(SINGLE), b),
        },
        Check {
            number: 2,
            title: "Phase order after one session".into(),
            protocols: names(&[SINGLE]),
            items: checks::phase_order(get(SINGLE), b),
        },
        Check {
            number: 3,
            title: "Depth".into(),
            protocols: DEPTH.iter().map(|(n, _)| n.to_string()).collect(),
            items: checks::depth(&depth, DEPTH_DAY, b),
        },
        Check {
            number: 4,
            title: "Magnitude after a course".into(),
            protocols: names(&[COURSE]),
            items: checks::magnitude(get(COURSE), b),
        },
        Check {
            number: 5,
            title: "Collagen type switch".into(),
            protocols: names(&[SINGLE, COURSE, REPEAT[0].0, REPEAT[2].0]),
            items: checks::type_switch(
                get(SINGLE),
                get(COURSE),
                get(REPEAT[0].0),
                get(REPEAT[2].0),
                b,
            ),
        },
        Check {
            number: 6,
            title: "Repetition".into(),
            protocols: REPEAT.iter().map(|(n, _)| n.to_string()).collect(),
            items: checks::repetition(&repeat, &counts, REPEAT_DAY),
        },
    ]
}

/// The `--quick` reduction in words (empty without `--quick`).
pub fn reduction(quick: bool, seeds: u32) -> String {
    if !quick {
        return String::new();
    }
    format!(
        "--quick: every protocol ran on a {q} × {q} µm block (one channel pitch at 250 channels \
         per cm²) instead of its file's domain_um, with {seeds} seed{}; values are noisier than \
         a full run and the channel layout is a single jittered channel per session",
        if seeds == 1 { "" } else { "s" },
        q = QUICK_DOMAIN_UM
    )
}

/// Loads, runs and judges the whole suite.
pub fn validate(opts: &Options) -> Result<Report, ValidateError> {
    let started = Instant::now();
    let protocols = load_protocols(&opts.scenarios, opts.quick)?;
    let runs = run_protocols(&protocols, opts.seeds, opts.progress);
    let bands = Bands::default();
    let checks = judge(&runs, &bands);
    Ok(Report {
        version: env!("CARGO_PKG_VERSION").into(),
        seeds: opts.seeds,
        quick: opts.quick,
        reduction: reduction(opts.quick, opts.seeds),
        wall_seconds: started.elapsed().as_secs_f64(),
        protocols: protocols
            .iter()
            .map(|(n, s)| (n.clone(), s.description.clone()))
            .collect(),
        bands,
        checks,
    })
}

/// Escapes `|` for a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// The console table: one row per claim.
pub fn table(r: &Report) -> String {
    let mut rows: Vec<[String; 6]> = vec![[
        "check".into(),
        "published (source)".into(),
        "model (mean ± SD)".into(),
        "result".into(),
        "ordinal".into(),
        "claim".into(),
    ]];
    for c in &r.checks {
        for i in &c.items {
            rows.push([
                i.id.clone(),
                format!("{} ({})", i.published(), i.source),
                i.model(),
                if i.pass() {
                    "pass".into()
                } else {
                    "FAIL".into()
                },
                if i.ordinal { "yes".into() } else { "no".into() },
                i.claim.clone(),
            ]);
        }
    }
    let mut w = [0usize; 6];
    for row in &rows {
        for (k, c) in row.iter().enumerate() {
            w[k] = w[k].max(c.chars().count());
        }
    }
    let mut o = String::new();
    for row in &rows {
        let mut line = String::new();
        for (k, c) in row.iter().enumerate() {
            let pad = w[k] - c.chars().count();
            line.push_str(c);
            if k + 1 < row.len() {
                line.push_str(&" ".repeat(pad + 2));
            }
        }
        let _ = writeln!(o, "{}", line.trim_end());
    }
    let n = r.items().count();
    let _ = writeln!(
        o,
        "{} of {n} claims passed ({} seed{} per protocol{})",
        n - r.failed(),
        r.seeds,
        if r.seeds == 1 { "" } else { "s" },
        if r.quick { ", --quick" } else { "" }
    );
    o
}

/// `validation.md`.
pub fn markdown(r: &Report) -> String {
    let mut o = String::new();
    let n = r.items().count();
    let _ = writeln!(o, "# fibrosim validation\n");
    let _ = writeln!(
        o,
        "fibrosim {}: {} of {n} claims passed; {} seed{} per protocol (seeds 1–{}), every seed must \
         pass; wall time {:.0} s.\n",
        r.version,
        n - r.failed(),
        r.seeds,
        if r.seeds == 1 { "" } else { "s" },
        r.seeds,
        r.wall_seconds
    );
    if r.quick {
        let _ = writeln!(o, "**Reduced run.** {}.\n", r.reduction);
    }
    let _ = writeln!(
        o,
        "Checks of docs/model.md §9 (and the epidermal and barrier timings of section 5). \
         Ordinal claims test an order or a sign; the others a published band. Model values are \
         mean ± SD over seeds; per-seed values are in `validation.json`; charts in `charts/`.\n"
    );
    for c in &r.checks {
        let _ = writeln!(
            o,
            "## {}. {} — {}\n",
            c.number,
            c.title,
            if c.pass() { "pass" } else { "FAIL" }
        );
        let _ = writeln!(o, "Protocols: {}.\n", c.protocols.join(", "));
        let _ = writeln!(
            o,
            "| check | claim | measure | published | source | model | seeds passing | result | ordinal |"
        );
        let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|");
        for i in &c.items {
            let _ = writeln!(
                o,
                "| {} | {} | {} | {} | {} | {} | {}/{} | {} | {} |",
                i.id,
                cell(&i.claim),
                cell(&i.measure),
                cell(&i.published()),
                cell(&i.source),
                cell(&i.model()),
                i.passes.iter().filter(|&&p| p).count(),
                i.passes.len(),
                if i.pass() { "pass" } else { "**FAIL**" },
                if i.ordinal { "yes" } else { "no" }
            );
        }
        let _ = writeln!(o);
    }
    let _ = writeln!(o, "## Protocols\n");
    for (n, d) in &r.protocols {
        let _ = writeln!(o, "- `scenarios/validation/{n}.toml`: {d}");
    }
    let _ = writeln!(o, "\n## Sources\n");
    for s in [
        checks::SRC_AUST,
        checks::SRC_DESMOULIERE,
        checks::SRC_EL_DOMYATI,
        checks::SRC_GURTNER,
        checks::SRC_KALLURI,
        checks::SRC_LOTFI,
        checks::SRC_VERZIJL,
        checks::SRC_ZEITTER,
        checks::SRC_MODEL,
    ] {
        let _ = writeln!(o, "- {s}");
    }
    o
}
