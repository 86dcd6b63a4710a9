//! `fibrosim sensitivity`: a one-at-a-time sensitivity analysis of the calibrated model
//! parameters over the validation suite.
//!
//! For each parameter of [`params::PARAMS`] (or those chosen), the protocols of
//! `fibrosim validate` ([`crate::validate`]) run with that one parameter set to the low end of
//! its plausible range, then to the high end, everything else at its default; the baseline (the
//! protocols as they are) runs once. All runs, (parameter value × protocol × seed), share one
//! parallel pool ([`crate::validate::run_variants`]); each run depends only on its scenario and
//! seed, so results do not depend on the thread count. Every run of the suite is judged by the
//! validation checks ([`crate::validate::judge`]) and summarised by four headline metrics
//! ([`Headline`]); the records themselves are dropped as soon as a variant is judged.
//!
//! The result ([`Report`]) is written as `sensitivity.md` (one table: a row per parameter and
//! end, the headline metrics and claims passed with their change from the baseline),
//! `sensitivity.json` (every claim's per-seed values too) and `sensitivity.csv` (one row per
//! parameter and end) by [`table`]; `fibrosim sensitivity` stages them and renames them into a
//! new directory.

pub mod params;
pub mod table;

use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use crate::observe::record::RunRecord;
use crate::scenario::{self, Scenario};
use crate::validate::checks::{self, Bands};
use crate::validate::{self, Check, Runs, ValidateError, Variant};
pub use params::{PARAMS, Param, UnknownParam};

/// Day after the last session of the course at which its papillary gain is reported (Lotfi
/// 2013: +53 % 8 weeks after 5 monthly 1.5 mm sessions; claim 4.2).
pub const COURSE_GAIN_DAY: f64 = 56.0;
/// The needle lengths (mm) whose neo-collagen depth centroids are compared, shallowest first.
pub const CENTROID_NEEDLES: (f64, f64) = (0.5, 2.0);

/// How to run the analysis: the validation suite's options (protocol folder, seeds, `--quick`,
/// progress lines), applied to every variant.
pub use crate::validate::Options;

/// The four headline metrics of one run of the suite, each the mean over seeds (NaN when a
/// protocol is missing or a value cannot be computed).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Headline {
    /// Activated-cell-days per session (activated cells and myofibroblasts, in units of the
    /// block's baseline cell count × day), one 1.0 mm session.
    pub activated_cell_days: f64,
    /// Papillary collagen over control − 1, %, [`COURSE_GAIN_DAY`] days after a course of five
    /// monthly 1.5 mm sessions.
    pub course_papillary_gain_pct: f64,
    /// Peak dermal collagen III (native + neo) over control − 1, %, after one 1.0 mm session.
    pub col3_peak_gain_pct: f64,
    /// Neo-collagen depth centroid 30 days after one session, 2.0 mm − 0.5 mm needles, µm.
    pub depth_centroid_change_um: f64,
}

impl Headline {
    /// Every metric as (CSV column, Markdown header, value).
    pub fn columns(&self) -> [(&'static str, &'static str, f64); 4] {
        [
            (
                "activated_cell_days_per_session",
                "activated-cell-days per session",
                self.activated_cell_days,
            ),
            (
                "course_papillary_gain_pct",
                "papillary collagen gain of the course, %",
                self.course_papillary_gain_pct,
            ),
            (
                "col3_peak_gain_pct",
                "collagen III peak rise, %",
                self.col3_peak_gain_pct,
            ),
            (
                "depth_centroid_change_um",
                "depth centroid change 0.5→2.0 mm, µm",
                self.depth_centroid_change_um,
            ),
        ]
    }

    /// `self − base`, metric by metric.
    pub fn minus(&self, base: &Headline) -> Headline {
        Headline {
            activated_cell_days: self.activated_cell_days - base.activated_cell_days,
            course_papillary_gain_pct: self.course_papillary_gain_pct
                - base.course_papillary_gain_pct,
            col3_peak_gain_pct: self.col3_peak_gain_pct - base.col3_peak_gain_pct,
            depth_centroid_change_um: self.depth_centroid_change_um - base.depth_centroid_change_um,
        }
    }
}

/// Mean of the values, NaN for none.
fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        f64::NAN
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// The headline metrics of one run of the suite.
pub fn headline(runs: &Runs) -> Headline {
    let empty: Vec<RunRecord> = Vec::new();
    let get = |n: &str| -> &[RunRecord] { runs.get(n).map(Vec::as_slice).unwrap_or(&empty) };
    let single = get(validate::SINGLE);
    let course = get(validate::COURSE);
    let needle = |mm: f64| {
        validate::DEPTH
            .iter()
            .find(|(_, l)| *l == mm)
            .map(|(n, _)| get(n))
            .unwrap_or(&empty)
    };
    let (shallow, deep) = (needle(CENTROID_NEEDLES.0), needle(CENTROID_NEEDLES.1));
    let centroid =
        |r: &RunRecord| checks::neo_centroid_um(r, checks::first_session(r) + validate::DEPTH_DAY);
    let n = shallow.len().min(deep.len());
    Headline {
        activated_cell_days: mean(
            &single
                .iter()
                .map(|r| {
                    r.summary
                        .metrics
                        .as_ref()
                        .map_or(f64::NAN, |m| m.activated_cell_days_per_session)
                })
                .collect::<Vec<_>>(),
        ),
        course_papillary_gain_pct: mean(
            &course
                .iter()
                .map(|r| {
                    checks::gain_pct(
                        r,
                        "papillary",
                        checks::last_session(r) + COURSE_GAIN_DAY,
                        checks::col_total,
                    )
                })
                .collect::<Vec<_>>(),
        ),
        col3_peak_gain_pct: mean(
            &single
                .iter()
                .map(|r| checks::col3_peak(r).0)
                .collect::<Vec<_>>(),
        ),
        depth_centroid_change_um: mean(
            &(0..n)
                .map(|i| centroid(&deep[i]) - centroid(&shallow[i]))
                .collect::<Vec<_>>(),
        ),
    }
}

/// One claim of the validation as judged in one run of the suite.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Claim {
    /// `5.1`.
    pub id: String,
    /// The model's value for each seed.
    pub values: Vec<f64>,
    /// Mean over seeds.
    pub mean: f64,
    /// Whether every seed passed.
    pub pass: bool,
}

/// Which value a row uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Every parameter at its default.
    Baseline,
    /// The low end of the parameter's range.
    Low,
    /// The high end.
    High,
}

impl Level {
    /// `baseline`, `low`, `high`.
    pub fn name(self) -> &'static str {
        match self {
            Level::Baseline => "baseline",
            Level::Low => "low",
            Level::High => "high",
        }
    }
}

/// One run of the suite: a parameter at one end of its range (or the baseline), judged.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Key path of the parameter varied (empty for the baseline).
    pub parameter: String,
    /// Its symbol (empty for the baseline).
    pub symbol: String,
    /// Which value.
    pub level: Level,
    /// The value used (NaN for the baseline, where nothing is varied).
    pub value: f64,
    /// Headline metrics.
    pub headline: Headline,
    /// Every claim of the validation, in the order of `validation.md`.
    pub claims: Vec<Claim>,
    /// Claims passed.
    pub passed: usize,
    /// Claims judged.
    pub total: usize,
    /// Runs that stopped before their end (a numerical guard); their claims are judged on what
    /// they recorded.
    pub incomplete_runs: usize,
}

impl Row {
    /// Summarises judged checks and headline metrics into a row.
    pub fn new(
        param: Option<&Param>,
        level: Level,
        value: f64,
        headline: Headline,
        checks: &[Check],
        incomplete_runs: usize,
    ) -> Row {
        let claims: Vec<Claim> = checks
            .iter()
            .flat_map(|c| c.items.iter())
            .map(|i| Claim {
                id: i.id.clone(),
                values: i.values.clone(),
                mean: i.mean(),
                pass: i.pass(),
            })
            .collect();
        Row {
            parameter: param.map(|p| p.key.to_string()).unwrap_or_default(),
            symbol: param.map(|p| p.symbol.to_string()).unwrap_or_default(),
            level,
            value,
            headline,
            passed: claims.iter().filter(|c| c.pass).count(),
            total: claims.len(),
            claims,
            incomplete_runs,
        }
    }

    /// The claim `id`, if judged.
    pub fn claim(&self, id: &str) -> Option<&Claim> {
        self.claims.iter().find(|c| c.id == id)
    }
}

/// A row's change from the baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// Headline metrics minus the baseline's.
    pub headline: Headline,
    /// Claims passed minus the baseline's.
    pub passed: i64,
    /// Claims that fail in the baseline and pass here.
    pub now_pass: Vec<String>,
    /// Claims that pass in the baseline and fail here.
    pub now_fail: Vec<String>,
}

impl Change {
    /// `row` against `base`.
    pub fn of(row: &Row, base: &Row) -> Change {
        let flipped = |to: bool| -> Vec<String> {
            row.claims
                .iter()
                .filter(|c| c.pass == to && base.claim(&c.id).is_some_and(|b| b.pass != to))
                .map(|c| c.id.clone())
                .collect()
        };
        Change {
            headline: row.headline.minus(&base.headline),
            passed: row.passed as i64 - base.passed as i64,
            now_pass: flipped(true),
            now_fail: flipped(false),
        }
    }
}

/// A varied parameter as it was used.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParamInfo {
    /// Key path.
    pub key: String,
    /// Symbol.
    pub symbol: String,
    /// Unit.
    pub unit: String,
    /// Default value.
    pub default: f64,
    /// Low end.
    pub low: f64,
    /// High end.
    pub high: f64,
    /// Where the range comes from.
    pub range: String,
    /// What the value is fitted to.
    pub target: String,
}

impl From<&Param> for ParamInfo {
    fn from(p: &Param) -> Self {
        ParamInfo {
            key: p.key.into(),
            symbol: p.symbol.into(),
            unit: p.unit.into(),
            default: p.default_value(),
            low: p.low,
            high: p.high,
            range: p.range.into(),
            target: p.target.into(),
        }
    }
}

/// A row with its change from the baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Varied {
    /// The row.
    #[serde(flatten)]
    pub row: Row,
    /// Its change from the baseline.
    pub change: Change,
}

/// The whole analysis.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// fibrosim version.
    pub version: String,
    /// Seeds per protocol and variant.
    pub seeds: u32,
    /// Whether the `--quick` reduction was used.
    pub quick: bool,
    /// The reduction in words (empty when none).
    pub reduction: String,
    /// Protocols run (names).
    pub protocols: Vec<String>,
    /// Wall time, s.
    pub wall_seconds: f64,
    /// The parameters varied.
    pub parameters: Vec<ParamInfo>,
    /// Every parameter at its default.
    pub baseline: Row,
    /// A row per parameter and end, low first, in the order of `parameters`.
    pub rows: Vec<Varied>,
}

impl Report {
    /// Assembles a report: each row's change is taken against `baseline`.
    #[allow(clippy::too_many_arguments)]
    pub fn build(
        version: &str,
        seeds: u32,
        quick: bool,
        protocols: Vec<String>,
        wall_seconds: f64,
        params: &[&Param],
        baseline: Row,
        rows: Vec<Row>,
    ) -> Report {
        let rows = rows
            .into_iter()
            .map(|row| Varied {
                change: Change::of(&row, &baseline),
                row,
            })
            .collect();
        Report {
            version: version.into(),
            seeds,
            quick,
            reduction: validate::reduction(quick, seeds),
            protocols,
            wall_seconds,
            parameters: params.iter().map(|p| ParamInfo::from(*p)).collect(),
            baseline,
            rows,
        }
    }
}

/// Why the analysis could not run.
#[derive(Debug, thiserror::Error)]
pub enum SensitivityError {
    /// The protocols could not be loaded.
    #[error(transparent)]
    Protocols(#[from] ValidateError),
    /// A parameter value makes a protocol invalid (a consistency rule of the scenario).
    #[error("{key} = {value}: makes protocol {protocol} invalid:\n{errors}")]
    Invalid {
        /// Key path.
        key: String,
        /// The value.
        value: f64,
        /// The protocol.
        protocol: String,
        /// The scenario errors.
        errors: String,
    },
}

/// One variant to run: which parameter (none for the baseline), which end, which value.
struct Plan {
    param: Option<&'static Param>,
    level: Level,
    value: f64,
    label: String,
}

/// Checks that both ends of every parameter give valid scenarios for every protocol.
pub fn check_values(
    protocols: &BTreeMap<String, Scenario>,
    params: &[&Param],
) -> Result<(), SensitivityError> {
    for p in params {
        check_value(p, p.low, protocols)?;
        check_value(p, p.high, protocols)?;
    }
    Ok(())
}

/// Checks that `value` for `p` gives a valid scenario for every protocol (range and consistency
/// rules), by writing each edited scenario out and loading it back.
fn check_value(
    p: &Param,
    value: f64,
    protocols: &BTreeMap<String, Scenario>,
) -> Result<(), SensitivityError> {
    for (name, s) in protocols {
        let mut s = s.clone();
        (p.set)(&mut s.model, value);
        let file = PathBuf::from(format!("{name}.toml"));
        if let Err(e) = scenario::parse(&scenario::to_toml(&s), &file) {
            return Err(SensitivityError::Invalid {
                key: p.key.into(),
                value,
                protocol: name.clone(),
                errors: e.to_string(),
            });
        }
    }
    Ok(())
}

/// Loads the protocols, runs the baseline and every chosen parameter at both ends, and judges
/// each run of the suite.
pub fn run(opts: &Options, chosen: &[&'static Param]) -> Result<Report, SensitivityError> {
    let started = Instant::now();
    let protocols = validate::load_protocols(&opts.scenarios, opts.quick)?;
    check_values(&protocols, chosen)?;
    let mut plans = vec![Plan {
        param: None,
        level: Level::Baseline,
        value: f64::NAN,
        label: "baseline".into(),
    }];
    for &p in chosen {
        for (level, value) in [(Level::Low, p.low), (Level::High, p.high)] {
            plans.push(Plan {
                param: Some(p),
                level,
                value,
                label: format!("{} {} ({})", p.symbol, level.name(), checks::num(value)),
            });
        }
    }
    // One closure per plan (all of one type), each setting its plan's parameter, if any.
    let edits: Vec<_> = plans
        .iter()
        .map(|pl| {
            move |s: &mut Scenario| {
                if let Some(p) = pl.param {
                    (p.set)(&mut s.model, pl.value);
                }
            }
        })
        .collect();
    let variants: Vec<Variant> = plans
        .iter()
        .zip(&edits)
        .map(|(pl, e)| Variant {
            label: &pl.label,
            edit: e,
        })
        .collect();
    let bands = Bands::default();
    let mut rows = validate::run_variants(
        &protocols,
        &variants,
        opts.seeds,
        opts.progress,
        |k, runs| {
            let pl = &plans[k];
            let incomplete = runs
                .values()
                .flatten()
                .filter(|r| !r.summary.complete)
                .count();
            Row::new(
                pl.param,
                pl.level,
                pl.value,
                headline(&runs),
                &validate::judge(&runs, &bands),
                incomplete,
            )
        },
    );
    let baseline = rows.remove(0);
    Ok(Report::build(
        env!("CARGO_PKG_VERSION"),
        opts.seeds,
        opts.quick,
        protocols.keys().cloned().collect(),
        started.elapsed().as_secs_f64(),
        chosen,
        baseline,
        rows,
    ))
}

/// The file names written.
pub mod files {
    /// The Markdown table.
    pub const MARKDOWN: &str = "sensitivity.md";
    /// Everything, as JSON.
    pub const JSON: &str = "sensitivity.json";
    /// A row per parameter and end.
    pub const CSV: &str = "sensitivity.csv";
}

/// Writes the three files into `dir` (each atomically).
pub fn write(report: &Report, dir: &Path) -> anyhow::Result<()> {
    use crate::fsutil::write_atomic;
    use anyhow::Context as _;
    write_atomic(
        &dir.join(files::MARKDOWN),
        table::markdown(report).as_bytes(),
    )?;
    let json = serde_json::to_vec_pretty(report).context("serialising the sensitivity report")?;
    write_atomic(&dir.join(files::JSON), &json)?;
    write_atomic(&dir.join(files::CSV), table::csv(report).as_bytes())?;
    Ok(())
}
