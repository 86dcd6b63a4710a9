//! The checks of docs/model.md §9 (and the epidermal and barrier timings of section 5), as
//! pure functions of recorded runs.
//!
//! Every function takes the [`RunRecord`]s of one or more protocols, one record per seed (the
//! i-th record of every protocol comes from the same seed), and the published bands
//! ([`Bands`]), and returns [`Item`]s: one claim each, with the model's value for every seed
//! and whether that seed passed. An item passes only when every seed passes; its mean ± SD is
//! reported beside it. Nothing here runs a simulation, so the checks can be tested on
//! synthetic records and re-run on any recorded output.
//!
//! Values are read from the per-region and whole-block series (`timeseries.csv`,
//! `global.csv`) and the depth profiles, not from the engine's summary metrics, so that a
//! check states its own definition.

use serde::Serialize;

use crate::observe::record::{
    ARM_CONTROL, ARM_TREATED, GlobalRow, ProfileRow, RegionRow, RunRecord,
};

/// A published source, cited as "Authors et al. Year, Journal".
pub type Source = &'static str;

/// Model contract (docs/model.md), for claims that the literature does not quantify.
pub const SRC_MODEL: Source = "model contract (docs/model.md §9)";
/// Collagen half-life in skin, the basis of the ageing drift.
pub const SRC_VERZIJL: Source = "Verzijl N et al. 2000, J Biol Chem";
/// Timing of the phases of wound repair.
pub const SRC_GURTNER: Source = "Gurtner GC et al. 2008, Nature";
/// Myofibroblast clearance by apoptosis.
pub const SRC_DESMOULIERE: Source = "Desmoulière A et al. 1995, Am J Pathol";
/// Closure of microneedle channels.
pub const SRC_KALLURI: Source = "Kalluri H et al. 2011, AAPS J";
/// Collagen and epidermis after percutaneous collagen induction.
pub const SRC_AUST: Source = "Aust MC et al. 2008, Plast Reconstr Surg";
/// Collagen after multiple microneedling sessions.
pub const SRC_EL_DOMYATI: Source = "El-Domyati M et al. 2015, Int J Dermatol";
/// +53.2 % papillary collagen and +50 % epidermal thickness 8 weeks after 5 monthly 1.5 mm
/// roller sessions (acne scars, 30 patients).
pub const SRC_LOTFI: Source = "Lotfi R et al. 2013, J Egypt Womens Dermatol Soc";
/// Lotfi 2013's time point, days after the last of the five sessions (8 weeks): claims read
/// there show its published values.
const LOTFI_DAY: f64 = 56.0;

/// Whether `day` (after the last session) is Lotfi 2013's time point.
fn at_lotfi_day(day: f64) -> bool {
    (day - LOTFI_DAY).abs() < 0.5
}
/// Collagen I up, collagen III down 10 weeks after; 4 sessions beat 1.
pub const SRC_ZEITTER: Source = "Zeitter S et al. 2014, Burns";

/// The published values and tolerances the checks compare against. The defaults are those of
/// docs/model.md; they are data, kept apart from the code that reads the runs.
#[derive(Debug, Clone, Serialize)]
pub struct Bands {
    /// Largest change of untreated cell density over the homeostasis run, %.
    pub homeostasis_density_pct: f64,
    /// Largest departure of untreated collagen from the ageing drift, %.
    pub homeostasis_collagen_pct: f64,
    /// Native collagen half-life, years (drift model).
    pub collagen_half_life_years: f64,
    /// Ageing drift of collagen synthesis below turnover, per year.
    pub ageing_drift_per_year: f64,
    /// Days after a session by which the tissue must be quiescent with ρ below `rho_max`.
    pub recovery_days: f64,
    /// Highest relative cell density allowed at `recovery_days`.
    pub rho_max: f64,
    /// Neutrophil peak, days after the session.
    pub neutrophil_peak_days: (f64, f64),
    /// Activated-fibroblast peak, days after the session.
    pub activated_peak_days: (f64, f64),
    /// Myofibroblast peak, days after the session.
    pub myofibroblast_peak_days: (f64, f64),
    /// Day after the session at which myofibroblasts must be below `myofibroblast_left_pct`.
    pub myofibroblast_clear_day: f64,
    /// Myofibroblasts left at that day, % of their peak (upper bound).
    pub myofibroblast_left_pct: f64,
    /// Barrier: hours until the open channel area falls below `barrier_closed_pct` of its peak.
    pub barrier_close_h: f64,
    /// Open area counted as closed, % of the peak open area.
    pub barrier_closed_pct: f64,
    /// TGF-β diffusivity, µm²/h (signalling length).
    pub tgfb_diffusivity_um2_per_h: f64,
    /// TGF-β decay, /h (signalling length).
    pub tgfb_decay_per_h: f64,
    /// Papillary collagen gain over control 1–3 months after a course, %.
    pub course_collagen_gain_pct: (f64, f64),
    /// Days after the last session at which the course gain is checked against that band.
    pub course_days: Vec<f64>,
    /// Day after the last session at which the gain must still be positive.
    pub course_late_day: f64,
    /// Epidermal thickening after a course, %.
    pub epidermis_gain_pct: (f64, f64),
    /// Day after the last session of the epidermal check.
    pub epidermis_day: f64,
    /// Smallest peak collagen III gain over control after one session, %.
    pub col3_peak_min_pct: f64,
    /// Collagen III peak, days after the session.
    pub col3_peak_days: (f64, f64),
    /// Fraction of its peak gain that collagen III must have fallen to by the run's end.
    pub col3_fall_fraction: f64,
    /// Day after the last session of the type-switch check (Zeitter: 10 weeks).
    pub switch_day: f64,
    /// Half-width of the window over which neo collagen III must be falling, days.
    pub switch_window_days: f64,
}

impl Default for Bands {
    fn default() -> Self {
        Bands {
            homeostasis_density_pct: 3.0,
            homeostasis_collagen_pct: 0.5,
            collagen_half_life_years: 15.0,
            ageing_drift_per_year: 0.01,
            recovery_days: 90.0,
            rho_max: 1.1,
            neutrophil_peak_days: (1.0, 3.0),
            activated_peak_days: (3.0, 10.0),
            myofibroblast_peak_days: (8.0, 15.0),
            myofibroblast_clear_day: 30.0,
            myofibroblast_left_pct: 10.0,
            barrier_close_h: 24.0,
            barrier_closed_pct: 5.0,
            tgfb_diffusivity_um2_per_h: 108_000.0,
            tgfb_decay_per_h: 0.625,
            course_collagen_gain_pct: (10.0, 60.0),
            course_days: vec![30.0, 56.0, 90.0],
            course_late_day: 180.0,
            epidermis_gain_pct: (15.0, 60.0),
            epidermis_day: 56.0,
            col3_peak_min_pct: 10.0,
            col3_peak_days: (14.0, 28.0),
            col3_fall_fraction: 0.9,
            switch_day: 70.0,
            switch_window_days: 7.0,
        }
    }
}

impl Bands {
    /// The signalling length √(D_T / k_T), µm.
    pub fn signalling_length_um(&self) -> f64 {
        (self.tgfb_diffusivity_um2_per_h / self.tgfb_decay_per_h).sqrt()
    }
}

/// How a value is judged.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Criterion {
    /// lo ≤ value ≤ hi.
    Within {
        /// Lower bound.
        lo: f64,
        /// Upper bound.
        hi: f64,
    },
    /// value < bound.
    Below {
        /// Exclusive upper bound.
        bound: f64,
    },
    /// value > bound.
    Above {
        /// Exclusive lower bound.
        bound: f64,
    },
}

impl Criterion {
    /// Whether `v` satisfies the criterion (NaN never does).
    pub fn holds(self, v: f64) -> bool {
        match self {
            Criterion::Within { lo, hi } => v >= lo && v <= hi,
            Criterion::Below { bound } => v < bound,
            Criterion::Above { bound } => v > bound,
        }
    }

    /// The criterion as text, with the unit.
    pub fn text(self, unit: &str) -> String {
        let u = if unit.is_empty() {
            String::new()
        } else {
            format!(" {unit}")
        };
        match self {
            Criterion::Within { lo, hi } => format!("{} to {}{u}", num(lo), num(hi)),
            Criterion::Below { bound } => format!("< {}{u}", num(bound)),
            Criterion::Above { bound } => format!("> {}{u}", num(bound)),
        }
    }
}

/// One claim checked over all seeds.
#[derive(Debug, Clone, Serialize)]
pub struct Item {
    /// `2.4`: check number and claim number.
    pub id: String,
    /// What is claimed, in words.
    pub claim: String,
    /// What the model's value is (its definition).
    pub measure: String,
    /// Unit of the value.
    pub unit: String,
    /// The published value or band.
    pub criterion: Criterion,
    /// A published point value, where one exists (drawn on the chart).
    pub published_point: Option<f64>,
    /// Where the value or band comes from.
    pub source: String,
    /// Whether the claim is ordinal (an order or a sign) rather than a quantitative band.
    pub ordinal: bool,
    /// The model's value for each seed.
    pub values: Vec<f64>,
    /// Whether each seed passed.
    pub passes: Vec<bool>,
}

impl Item {
    /// Passes when there is at least one seed and every seed passes.
    pub fn pass(&self) -> bool {
        !self.passes.is_empty() && self.passes.iter().all(|&p| p)
    }

    /// Mean over seeds (NaN when a value is missing).
    pub fn mean(&self) -> f64 {
        if self.values.is_empty() {
            return f64::NAN;
        }
        self.values.iter().sum::<f64>() / self.values.len() as f64
    }

    /// Sample standard deviation over seeds (0 for one seed).
    pub fn sd(&self) -> f64 {
        let n = self.values.len();
        if n < 2 {
            return 0.0;
        }
        let m = self.mean();
        (self.values.iter().map(|v| (v - m).powi(2)).sum::<f64>() / (n - 1) as f64).sqrt()
    }

    /// The published value or band as text, with its unit.
    pub fn published(&self) -> String {
        match self.published_point {
            Some(p) => format!(
                "{} (published {} {})",
                self.criterion.text(&self.unit),
                num(p),
                self.unit
            ),
            None => self.criterion.text(&self.unit),
        }
    }

    /// The model's value as `mean ± SD unit`.
    pub fn model(&self) -> String {
        let u = if self.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", self.unit)
        };
        if self.values.len() < 2 {
            format!("{}{u}", num(self.mean()))
        } else {
            format!("{} ± {}{u}", num(self.mean()), num(self.sd()))
        }
    }
}

/// A number with up to 3 significant decimals, `n/a` for NaN.
pub fn num(v: f64) -> String {
    if v.is_nan() {
        return "n/a".into();
    }
    if v.is_infinite() {
        return if v > 0.0 {
            "∞".into()
        } else {
            "−∞".into()
        };
    }
    let a = v.abs();
    let s = if a >= 100.0 || v == v.trunc() && a < 1e6 {
        format!("{v:.0}")
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else if a >= 0.1 {
        format!("{v:.2}")
    } else if a >= 1e-3 {
        format!("{v:.3}")
    } else {
        // Small non-zero values (rate constants such as 2e−4 /h) keep two significant digits.
        format!("{v:.1e}")
    };
    if s == "-0" { "0".into() } else { s }
}

/// Builder of an item from per-seed values.
struct Claim {
    id: &'static str,
    claim: &'static str,
    measure: String,
    unit: &'static str,
    criterion: Criterion,
    point: Option<f64>,
    source: String,
    ordinal: bool,
}

impl Claim {
    fn judge(self, values: Vec<f64>) -> Item {
        let passes = values.iter().map(|&v| self.criterion.holds(v)).collect();
        Item {
            id: self.id.into(),
            claim: self.claim.into(),
            measure: self.measure,
            unit: self.unit.into(),
            criterion: self.criterion,
            published_point: self.point,
            source: self.source,
            ordinal: self.ordinal,
            values,
            passes,
        }
    }
}

// ---------------------------------------------------------------------------------------------
// reading records

/// Rows of one arm and region, in time order.
fn series<'a>(rec: &'a RunRecord, arm: &str, region: &str) -> Vec<&'a RegionRow> {
    let mut v: Vec<&RegionRow> = rec
        .regions
        .iter()
        .filter(|r| r.arm == arm && r.region == region)
        .collect();
    v.sort_by(|a, b| a.day.total_cmp(&b.day));
    v
}

/// The row of `arm`/`region` nearest to `day`, if one lies within half a day.
fn region_at<'a>(rec: &'a RunRecord, arm: &str, region: &str, day: f64) -> Option<&'a RegionRow> {
    rec.regions
        .iter()
        .filter(|r| r.arm == arm && r.region == region && (r.day - day).abs() <= 0.5)
        .min_by(|a, b| (a.day - day).abs().total_cmp(&(b.day - day).abs()))
}

/// Whole-block rows of one arm, in time order.
fn global<'a>(rec: &'a RunRecord, arm: &str) -> Vec<&'a GlobalRow> {
    let mut v: Vec<&GlobalRow> = rec.global.iter().filter(|g| g.arm == arm).collect();
    v.sort_by(|a, b| a.day.total_cmp(&b.day));
    v
}

fn global_at<'a>(rec: &'a RunRecord, arm: &str, day: f64) -> Option<&'a GlobalRow> {
    rec.global
        .iter()
        .filter(|g| g.arm == arm && (g.day - day).abs() <= 0.5)
        .min_by(|a, b| (a.day - day).abs().total_cmp(&(b.day - day).abs()))
}

/// Day of the first session (NaN when there is none).
pub fn first_session(rec: &RunRecord) -> f64 {
    rec.summary
        .treatment
        .session_days
        .first()
        .copied()
        .unwrap_or(f64::NAN)
}

/// Day of the last session (NaN when there is none).
pub fn last_session(rec: &RunRecord) -> f64 {
    rec.summary
        .treatment
        .session_days
        .last()
        .copied()
        .unwrap_or(f64::NAN)
}

/// Collagen I, native + neo.
pub fn col1(r: &RegionRow) -> f64 {
    r.col1_native_ug_per_mm3 + r.col1_neo_ug_per_mm3
}

/// Collagen III, native + neo.
pub fn col3(r: &RegionRow) -> f64 {
    r.col3_native_ug_per_mm3 + r.col3_neo_ug_per_mm3
}

/// All collagen.
pub fn col_total(r: &RegionRow) -> f64 {
    r.collagen_total_ug_per_mm3
}

/// `f` of the treated arm over the control at `day`, − 1, in % (NaN when a row is missing).
pub fn gain_pct(rec: &RunRecord, region: &str, day: f64, f: fn(&RegionRow) -> f64) -> f64 {
    match (
        region_at(rec, ARM_TREATED, region, day),
        region_at(rec, ARM_CONTROL, region, day),
    ) {
        (Some(t), Some(c)) if f(c) > 0.0 => (f(t) / f(c) - 1.0) * 100.0,
        _ => f64::NAN,
    }
}

/// Days after the first session of the largest value of `f` before the second session.
fn peak_day(rec: &RunRecord, f: fn(&GlobalRow) -> f64) -> f64 {
    let s1 = first_session(rec);
    let s2 = rec
        .summary
        .treatment
        .session_days
        .get(1)
        .copied()
        .unwrap_or(f64::INFINITY);
    let mut best = (f64::NEG_INFINITY, f64::NAN);
    for g in global(rec, ARM_TREATED) {
        if g.day >= s1 && g.day < s2 {
            let v = f(g);
            if v > best.0 {
                best = (v, g.day - s1);
            }
        }
    }
    best.1
}

/// Depth centroid of neo collagen (I + III) in the treated arm's profile at `day` (the
/// snapshot nearest to it), µm below the surface.
pub fn neo_centroid_um(rec: &RunRecord, day: f64) -> f64 {
    let treated: Vec<&ProfileRow> = rec
        .profiles
        .iter()
        .filter(|p| p.arm == ARM_TREATED)
        .collect();
    let Some(snap) = treated
        .iter()
        .map(|p| p.day)
        .min_by(|a, b| (a - day).abs().total_cmp(&(b - day).abs()))
    else {
        return f64::NAN;
    };
    let (mut m, mut mz) = (0.0, 0.0);
    for p in treated.iter().filter(|p| p.day == snap) {
        let neo = p.col1_neo_ug_per_mm3 + p.col3_neo_ug_per_mm3;
        m += neo;
        mz += neo * 0.5 * (p.z_top_um + p.z_bottom_um);
    }
    if m > 0.0 { mz / m } else { f64::NAN }
}

/// The largest dermal collagen III (native + neo) gain over control from the first session on,
/// %, and its day after that session (claims 5.1 and 5.2).
pub fn col3_peak(rec: &RunRecord) -> (f64, f64) {
    let s = first_session(rec);
    let mut best = (f64::NEG_INFINITY, f64::NAN);
    for t in series(rec, ARM_TREATED, "dermis") {
        if t.day < s {
            continue;
        }
        let g = gain_pct(rec, "dermis", t.day, col3);
        if g > best.0 {
            best = (g, t.day - s);
        }
    }
    best
}

/// Per-seed values of `f`, over the first `n` records of every protocol.
fn per_seed(n: usize, f: impl Fn(usize) -> f64) -> Vec<f64> {
    (0..n).map(f).collect()
}

fn seeds(sets: &[&[RunRecord]]) -> usize {
    sets.iter().map(|s| s.len()).min().unwrap_or(0)
}

// ---------------------------------------------------------------------------------------------
// the checks

/// Check 1, homeostasis: `untreated` is a run without sessions (its treated arm is untreated);
/// `single` one session followed for at least `recovery_days`.
pub fn homeostasis(untreated: &[RunRecord], single: &[RunRecord], b: &Bands) -> Vec<Item> {
    let k = std::f64::consts::LN_2 / b.collagen_half_life_years;
    let s_over_k = (k - b.ageing_drift_per_year) / k;
    let density = per_seed(untreated.len(), |i| {
        let rows = series(&untreated[i], ARM_TREATED, "dermis");
        let Some(r0) = rows.first() else {
            return f64::NAN;
        };
        rows.iter()
            .map(|r| (r.cell_density_rel / r0.cell_density_rel - 1.0).abs() * 100.0)
            .fold(0.0, f64::max)
    });
    let collagen = per_seed(untreated.len(), |i| {
        let rows = series(&untreated[i], ARM_TREATED, "dermis");
        let Some(r0) = rows.first() else {
            return f64::NAN;
        };
        rows.iter()
            .map(|r| {
                let years = (r.day - r0.day) / 365.25;
                let drift = s_over_k + (1.0 - s_over_k) * (-k * years).exp();
                (col_total(r) / (col_total(r0) * drift) - 1.0).abs() * 100.0
            })
            .fold(0.0, f64::max)
    });
    let quiet = per_seed(single.len(), |i| {
        let rec = &single[i];
        let s = first_session(rec);
        let rows = global(rec, ARM_TREATED);
        let active = |g: &GlobalRow| g.activated_cells + g.myofibroblasts > 0;
        if rows.last().is_none_or(|g| active(g)) {
            return f64::INFINITY;
        }
        // The last active sample; quiescent from the next one on.
        let last_active = rows.iter().rposition(|g| active(g));
        match last_active {
            None => 0.0,
            Some(j) => rows[j + 1].day - s,
        }
    });
    let rho = per_seed(single.len(), |i| {
        let rec = &single[i];
        let day = first_session(rec) + b.recovery_days;
        ["papillary", "reticular"]
            .iter()
            .map(|l| {
                region_at(rec, ARM_TREATED, l, day)
                    .map(|r| r.cell_density_rel)
                    .unwrap_or(f64::NAN)
            })
            .fold(f64::NEG_INFINITY, |a, v| {
                if v.is_nan() || a.is_nan() {
                    f64::NAN
                } else {
                    a.max(v)
                }
            })
    });
    vec![
        Claim {
            id: "1.1",
            claim: "untreated cell density stays steady over the run",
            measure: "largest |ρ(t)/ρ(0) − 1| of the dermis, untreated".into(),
            unit: "%",
            criterion: Criterion::Within { lo: 0.0, hi: b.homeostasis_density_pct },
            point: None,
            source: SRC_MODEL.into(),
            ordinal: false,
        }
        .judge(density),
        Claim {
            id: "1.2",
            claim: "untreated collagen follows the ageing drift",
            measure: format!(
                "largest |collagen / (collagen₀ · drift) − 1| of the dermis, drift from t½ {} yr and {} %/yr",
                num(b.collagen_half_life_years),
                num(b.ageing_drift_per_year * 100.0)
            ),
            unit: "%",
            criterion: Criterion::Within { lo: 0.0, hi: b.homeostasis_collagen_pct },
            point: None,
            source: format!("{SRC_MODEL}; {SRC_VERZIJL}"),
            ordinal: false,
        }
        .judge(collagen),
        Claim {
            id: "1.3",
            claim: "the tissue returns to quiescence after a session",
            measure: "days from the session until no cell is activated or myofibroblast".into(),
            unit: "d",
            criterion: Criterion::Within { lo: 0.0, hi: b.recovery_days },
            point: None,
            source: SRC_MODEL.into(),
            ordinal: false,
        }
        .judge(quiet),
        Claim {
            id: "1.4",
            claim: "cell density returns below the cap after a session",
            measure: format!(
                "largest layer ρ (papillary, reticular) {} days after the session",
                num(b.recovery_days)
            ),
            unit: "",
            criterion: Criterion::Below { bound: b.rho_max },
            point: None,
            source: SRC_MODEL.into(),
            ordinal: false,
        }
        .judge(rho),
    ]
}

/// Check 2, phase order after one session (`single`).
pub fn phase_order(single: &[RunRecord], b: &Bands) -> Vec<Item> {
    let n = single.len();
    let n_peak = per_seed(n, |i| peak_day(&single[i], |g| g.neutrophils_rel));
    let a_peak = per_seed(n, |i| peak_day(&single[i], |g| g.activated_cells as f64));
    let lead = per_seed(n, |i| {
        let c1 = peak_day(&single[i], |g| g.neo_col1_deposition_ug_per_mm2_day);
        let c3 = peak_day(&single[i], |g| g.neo_col3_deposition_ug_per_mm2_day);
        c1 - c3
    });
    let m_peak = per_seed(n, |i| peak_day(&single[i], |g| g.myofibroblasts as f64));
    let m_left = per_seed(n, |i| {
        let rec = &single[i];
        let s = first_session(rec);
        let peak = global(rec, ARM_TREATED)
            .iter()
            .filter(|g| g.day >= s)
            .map(|g| g.myofibroblasts)
            .max()
            .unwrap_or(0);
        match global_at(rec, ARM_TREATED, s + b.myofibroblast_clear_day) {
            Some(g) if peak > 0 => g.myofibroblasts as f64 / peak as f64 * 100.0,
            _ => f64::NAN,
        }
    });
    let barrier = per_seed(n, |i| {
        let rec = &single[i];
        let s = first_session(rec);
        let rows: Vec<&GlobalRow> = global(rec, ARM_TREATED)
            .into_iter()
            .filter(|g| g.day >= s)
            .collect();
        let Some((jp, peak)) = rows
            .iter()
            .enumerate()
            .map(|(j, g)| (j, g.open_channel_area_fraction))
            .max_by(|a, b| a.1.total_cmp(&b.1))
        else {
            return f64::NAN;
        };
        if peak <= 0.0 {
            return f64::NAN;
        }
        rows[jp..]
            .iter()
            .find(|g| g.open_channel_area_fraction <= peak * b.barrier_closed_pct / 100.0)
            .map(|g| (g.day - s) * 24.0)
            .unwrap_or(f64::INFINITY)
    });
    let within = |(lo, hi): (f64, f64)| Criterion::Within { lo, hi };
    vec![
        Claim {
            id: "2.1",
            claim: "neutrophils peak first",
            measure: "day of the largest mean N after the session".into(),
            unit: "d",
            criterion: within(b.neutrophil_peak_days),
            point: None,
            source: SRC_GURTNER.into(),
            ordinal: false,
        }
        .judge(n_peak),
        Claim {
            id: "2.2",
            claim: "activated fibroblasts peak in the proliferative phase",
            measure: "day of the largest count of activated fibroblasts".into(),
            unit: "d",
            criterion: within(b.activated_peak_days),
            point: None,
            source: SRC_GURTNER.into(),
            ordinal: false,
        }
        .judge(a_peak),
        Claim {
            id: "2.3",
            claim: "collagen III is laid down before collagen I",
            measure: "peak day of neo col I deposition rate − that of neo col III".into(),
            unit: "d",
            criterion: Criterion::Above { bound: 0.0 },
            point: None,
            source: SRC_GURTNER.into(),
            ordinal: true,
        }
        .judge(lead),
        Claim {
            id: "2.4",
            claim: "myofibroblasts peak",
            measure: "day of the largest myofibroblast count".into(),
            unit: "d",
            criterion: within(b.myofibroblast_peak_days),
            point: None,
            source: SRC_DESMOULIERE.into(),
            ordinal: false,
        }
        .judge(m_peak),
        Claim {
            id: "2.5",
            claim: "myofibroblasts are cleared by apoptosis",
            measure: format!(
                "myofibroblasts {} days after the session, % of their peak",
                num(b.myofibroblast_clear_day)
            ),
            unit: "%",
            criterion: Criterion::Below {
                bound: b.myofibroblast_left_pct,
            },
            point: None,
            source: SRC_DESMOULIERE.into(),
            ordinal: false,
        }
        .judge(m_left),
        Claim {
            id: "2.6",
            claim: "the barrier closes within a day",
            measure: format!(
                "hours until the open channel area is ≤ {} % of its peak",
                num(b.barrier_closed_pct)
            ),
            unit: "h",
            criterion: Criterion::Within {
                lo: 0.0,
                hi: b.barrier_close_h,
            },
            point: None,
            source: SRC_KALLURI.into(),
            ordinal: false,
        }
        .judge(barrier),
    ]
}

/// Check 3, depth: `by_depth` holds one protocol per needle length, shallowest channel first,
/// each a single session; centroids are read at `day` after the session.
pub fn depth(by_depth: &[&[RunRecord]], day: f64, b: &Bands) -> Vec<Item> {
    let n = seeds(by_depth);
    let centroid = |rec: &RunRecord| neo_centroid_um(rec, first_session(rec) + day);
    let rise = per_seed(n, |i| {
        let c: Vec<f64> = by_depth.iter().map(|p| centroid(&p[i])).collect();
        if c.len() < 2 {
            return f64::NAN;
        }
        c.windows(2)
            .map(|w| w[1] - w[0])
            .fold(f64::INFINITY, |a, d| {
                if d.is_nan() || a.is_nan() {
                    f64::NAN
                } else {
                    a.min(d)
                }
            })
    });
    let l = b.signalling_length_um();
    let reach = per_seed(n, |i| {
        by_depth
            .iter()
            .map(|p| {
                let rec = &p[i];
                centroid(rec) - (rec.summary.treatment.penetration_depth_um + l)
            })
            .fold(f64::NEG_INFINITY, |a, d| {
                if d.is_nan() || a.is_nan() {
                    f64::NAN
                } else {
                    a.max(d)
                }
            })
    });
    vec![
        Claim {
            id: "3.1",
            claim: "neo collagen lies deeper with deeper channels",
            measure: format!(
                "smallest rise of the neo-collagen depth centroid from one needle length to the next, day {}",
                num(day)
            ),
            unit: "µm",
            criterion: Criterion::Above { bound: 0.0 },
            point: None,
            source: SRC_MODEL.into(),
            ordinal: true,
        }
        .judge(rise),
        Claim {
            id: "3.2",
            claim: "neo collagen stays within reach of the channels",
            measure: format!(
                "largest centroid − (channel depth + √(D_T/k_T) = {} µm)",
                num(l)
            ),
            unit: "µm",
            criterion: Criterion::Below { bound: 0.0 },
            point: None,
            source: SRC_MODEL.into(),
            ordinal: false,
        }
        .judge(reach),
    ]
}

/// Check 4, magnitude after a course (`course`: several sessions with a control arm).
pub fn magnitude(course: &[RunRecord], b: &Bands) -> Vec<Item> {
    let n = course.len();
    let (lo, hi) = b.course_collagen_gain_pct;
    let mut items = Vec::new();
    let ids = ["4.1", "4.2", "4.3", "4.4", "4.5"];
    for (k, &d) in b.course_days.iter().enumerate().take(3) {
        let v = per_seed(n, |i| {
            gain_pct(
                &course[i],
                "papillary",
                last_session(&course[i]) + d,
                col_total,
            )
        });
        let lotfi = at_lotfi_day(d);
        items.push(
            Claim {
                id: ids[k],
                claim: "papillary collagen rises over control after a course",
                measure: format!(
                    "papillary collagen over control − 1, {} days after the last session",
                    num(d)
                ),
                unit: "%",
                criterion: Criterion::Within { lo, hi },
                point: lotfi.then_some(53.0),
                source: if lotfi {
                    format!("{SRC_LOTFI}; {SRC_AUST}; {SRC_EL_DOMYATI}")
                } else {
                    format!("{SRC_AUST}; {SRC_EL_DOMYATI}")
                },
                ordinal: false,
            }
            .judge(v),
        );
    }
    let late = per_seed(n, |i| {
        gain_pct(
            &course[i],
            "papillary",
            last_session(&course[i]) + b.course_late_day,
            col_total,
        )
    });
    items.push(
        Claim {
            id: "4.4",
            claim: "the gain lasts",
            measure: format!(
                "papillary collagen over control − 1, {} days after the last session",
                num(b.course_late_day)
            ),
            unit: "%",
            criterion: Criterion::Above { bound: 0.0 },
            point: None,
            source: format!("{SRC_AUST}; {SRC_EL_DOMYATI}"),
            ordinal: true,
        }
        .judge(late),
    );
    let epi = per_seed(n, |i| {
        let rec = &course[i];
        let day = last_session(rec) + b.epidermis_day;
        match (
            global_at(rec, ARM_TREATED, day),
            global_at(rec, ARM_CONTROL, day),
        ) {
            (Some(t), Some(c)) if c.epidermis_um > 0.0 => {
                (t.epidermis_um / c.epidermis_um - 1.0) * 100.0
            }
            _ => f64::NAN,
        }
    });
    let (elo, ehi) = b.epidermis_gain_pct;
    items.push(
        Claim {
            id: "4.5",
            claim: "the epidermis thickens after a course",
            measure: format!(
                "mean epidermal thickness over control − 1, {} days after the last session",
                num(b.epidermis_day)
            ),
            unit: "%",
            criterion: Criterion::Within { lo: elo, hi: ehi },
            // Lotfi 2013 measured +50 % epidermal thickness.
            point: at_lotfi_day(b.epidermis_day).then_some(50.0),
            source: format!("{SRC_AUST}; {SRC_LOTFI}"),
            ordinal: false,
        }
        .judge(epi),
    );
    items
}

/// Check 5, the type switch: `single` one session followed long enough to see the collagen III
/// peak fall; `course` several sessions followed to `switch_day` ± `switch_window_days`;
/// `one` and `four` one and four sessions, compared at `switch_day` after their last session.
pub fn type_switch(
    single: &[RunRecord],
    course: &[RunRecord],
    one: &[RunRecord],
    four: &[RunRecord],
    b: &Bands,
) -> Vec<Item> {
    let n = single.len();
    let height = per_seed(n, |i| col3_peak(&single[i]).0);
    let when = per_seed(n, |i| col3_peak(&single[i]).1);
    let fall = per_seed(n, |i| {
        let rec = &single[i];
        let (p, _) = col3_peak(rec);
        let end = series(rec, ARM_TREATED, "dermis")
            .last()
            .map(|r| r.day)
            .unwrap_or(f64::NAN);
        let g = gain_pct(rec, "dermis", end, col3);
        if p > 0.0 { g / p } else { f64::NAN }
    });
    let nc = course.len();
    let neo3_trend = per_seed(nc, |i| {
        let rec = &course[i];
        let d = last_session(rec) + b.switch_day;
        let w = b.switch_window_days;
        match (
            region_at(rec, ARM_TREATED, "dermis", d - w),
            region_at(rec, ARM_TREATED, "dermis", d + w),
        ) {
            (Some(a), Some(z)) if a.col3_neo_ug_per_mm3 > 0.0 => {
                (z.col3_neo_ug_per_mm3 / a.col3_neo_ug_per_mm3 - 1.0) * 100.0
            }
            _ => f64::NAN,
        }
    });
    let col1_up = per_seed(nc, |i| {
        gain_pct(
            &course[i],
            "dermis",
            last_session(&course[i]) + b.switch_day,
            col1,
        )
    });
    let ns = seeds(&[one, four]);
    let four_vs_one = per_seed(ns, |i| {
        let g =
            |rec: &RunRecord| gain_pct(rec, "papillary", last_session(rec) + b.switch_day, col1);
        g(&four[i]) - g(&one[i])
    });
    let (plo, phi) = b.col3_peak_days;
    vec![
        Claim {
            id: "5.1",
            claim: "collagen III rises after a session",
            measure: "peak of dermal collagen III (native + neo) over control − 1".into(),
            unit: "%",
            criterion: Criterion::Above {
                bound: b.col3_peak_min_pct,
            },
            point: None,
            source: SRC_MODEL.into(),
            ordinal: false,
        }
        .judge(height),
        Claim {
            id: "5.2",
            claim: "collagen III peaks 2–4 weeks after a session",
            measure: "day of that peak after the session".into(),
            unit: "d",
            criterion: Criterion::Within { lo: plo, hi: phi },
            point: None,
            source: SRC_MODEL.into(),
            ordinal: false,
        }
        .judge(when),
        Claim {
            id: "5.3",
            claim: "then collagen III falls",
            measure: "collagen III gain at the run's end ÷ its peak gain".into(),
            unit: "",
            criterion: Criterion::Below {
                bound: b.col3_fall_fraction,
            },
            point: None,
            source: SRC_MODEL.into(),
            ordinal: true,
        }
        .judge(fall),
        Claim {
            id: "5.4",
            claim: "neo collagen III is falling ~10 weeks after a course",
            measure: format!(
                "change of dermal neo col III from {} to {} days after the last session",
                num(b.switch_day - b.switch_window_days),
                num(b.switch_day + b.switch_window_days)
            ),
            unit: "%",
            criterion: Criterion::Below { bound: 0.0 },
            point: None,
            source: SRC_ZEITTER.into(),
            ordinal: true,
        }
        .judge(neo3_trend),
        Claim {
            id: "5.5",
            claim: "collagen I is above control ~10 weeks after a course",
            measure: format!(
                "dermal collagen I over control − 1, {} days after the last session",
                num(b.switch_day)
            ),
            unit: "%",
            criterion: Criterion::Above { bound: 0.0 },
            point: None,
            source: SRC_ZEITTER.into(),
            ordinal: true,
        }
        .judge(col1_up),
        Claim {
            id: "5.6",
            claim: "4 sessions beat 1",
            measure: format!(
                "papillary collagen I gain, 4 sessions − 1 session, {} days after the last",
                num(b.switch_day)
            ),
            unit: "pp",
            criterion: Criterion::Above { bound: 0.0 },
            point: None,
            source: SRC_ZEITTER.into(),
            ordinal: true,
        }
        .judge(four_vs_one),
    ]
}

/// Check 6, repetition: `by_count` holds protocols with increasing session counts `counts`
/// (same device and interval), compared at `day` after their last session.
pub fn repetition(by_count: &[&[RunRecord]], counts: &[u32], day: f64) -> Vec<Item> {
    let n = seeds(by_count);
    let gains = |i: usize| -> Vec<f64> {
        by_count
            .iter()
            .map(|p| gain_pct(&p[i], "papillary", last_session(&p[i]) + day, col_total))
            .collect()
    };
    let rise = per_seed(n, |i| {
        let g = gains(i);
        if g.len() < 2 {
            return f64::NAN;
        }
        g.windows(2)
            .map(|w| w[1] - w[0])
            .fold(f64::INFINITY, |a, d| {
                if d.is_nan() || a.is_nan() {
                    f64::NAN
                } else {
                    a.min(d)
                }
            })
    });
    let sub = per_seed(n, |i| {
        let g = gains(i);
        match (g.first(), g.last(), counts.first(), counts.last()) {
            (Some(&g0), Some(&gn), Some(&c0), Some(&cn)) if g0 > 0.0 && cn > c0 => {
                (gn / cn as f64) / (g0 / c0 as f64)
            }
            _ => f64::NAN,
        }
    });
    let list = counts
        .iter()
        .map(|c| c.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    vec![
        Claim {
            id: "6.1",
            claim: "more sessions give more collagen",
            measure: format!(
                "smallest rise of papillary collagen gain from one count to the next ({list} sessions), {} days after the last",
                num(day)
            ),
            unit: "pp",
            criterion: Criterion::Above { bound: 0.0 },
            point: None,
            source: format!("{SRC_MODEL}; {SRC_ZEITTER}"),
            ordinal: true,
        }
        .judge(rise),
        Claim {
            id: "6.2",
            claim: "sub-linearly",
            measure: format!(
                "gain per session at {} sessions ÷ gain per session at {}",
                counts.last().copied().unwrap_or(0),
                counts.first().copied().unwrap_or(0)
            ),
            unit: "",
            criterion: Criterion::Below { bound: 1.0 },
            point: None,
            source: SRC_MODEL.into(),
            ordinal: true,
        }
        .judge(sub),
    ]
}

#[cfg(test)]
mod tests {
    use super::num;

    #[test]
    fn numbers_keep_their_significant_digits() {
        assert_eq!(num(2e-4), "2.0e-4");
        assert_eq!(num(-1.6e-4), "-1.6e-4");
        assert_eq!(num(0.0021), "0.002");
        assert_eq!(num(0.0), "0");
        assert_eq!(num(-0.0), "0");
        assert_eq!(num(0.25), "0.25");
        assert_eq!(num(15.26), "15.3");
        assert_eq!(num(140.0), "140");
        assert_eq!(num(f64::NAN), "n/a");
    }
}
