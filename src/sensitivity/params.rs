//! The calibrated model parameters that `fibrosim sensitivity` varies: the model parameters
//! whose defaults are estimates fitted to the model's checks (docs/calibration.md lists them),
//! each with the low and high end of its plausible range and what it is fitted to.
//!
//! Ranges: where a published or documented range exists it is used (s_act 20–150 pg/cell/day;
//! fibroblast doubling time 12–48 h; the loop-gain bound on σ_fib, docs/calibration.md); for
//! the other estimates the range is a factor of two either side of the default (× ½, × 2).
//! Every end lies inside the key's allowed range (a test checks it by loading a scenario with
//! each end).

use crate::scenario::Model;

/// One varied parameter.
#[derive(Clone, Copy)]
pub struct Param {
    /// Scenario key path, as written in a scenario file's `[model.*]` table.
    pub key: &'static str,
    /// Symbol of docs/model.md.
    pub symbol: &'static str,
    /// Unit of the key (empty when dimensionless).
    pub unit: &'static str,
    /// Low end of the plausible range.
    pub low: f64,
    /// High end of the plausible range.
    pub high: f64,
    /// Where the range comes from.
    pub range: &'static str,
    /// What the value is fitted to (the calibration target).
    pub target: &'static str,
    /// Whether the default may be one end of the range (a rule share whose default is the
    /// calibrated rule and whose other end is the specification's); otherwise it lies inside.
    pub default_at_end: bool,
    /// Reads the value from a model.
    pub get: fn(&Model) -> f64,
    /// Writes the value into a model.
    pub set: fn(&mut Model, f64),
}

impl std::fmt::Debug for Param {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Param")
            .field("key", &self.key)
            .field("low", &self.low)
            .field("high", &self.high)
            .finish()
    }
}

impl Param {
    /// The field name: the last component of the key path.
    pub fn field(&self) -> &'static str {
        self.key.rsplit('.').next().unwrap_or(self.key)
    }

    /// The default value.
    pub fn default_value(&self) -> f64 {
        (self.get)(&Model::default())
    }
}

/// Builds a [`Param`] for `model.<table>.<field>`; the key path and the accessors come from the
/// same tokens, so the key is always the field that is set.
macro_rules! param {
    ($table:ident . $field:ident, $symbol:literal, $unit:literal, $low:expr, $high:expr,
     $range:expr, $target:expr $(,)?) => {
        param!(
            $table.$field,
            $symbol,
            $unit,
            $low,
            $high,
            $range,
            $target,
            false
        )
    };
    ($table:ident . $field:ident, $symbol:literal, $unit:literal, $low:expr, $high:expr,
     $range:expr, $target:expr, $at_end:expr $(,)?) => {
        Param {
            key: concat!("model.", stringify!($table), ".", stringify!($field)),
            symbol: $symbol,
            unit: $unit,
            low: $low,
            high: $high,
            range: $range,
            target: $target,
            default_at_end: $at_end,
            get: |m| m.$table.$field,
            set: |m, v| m.$table.$field = v,
        }
    };
}

/// Range basis of the estimates without a published range.
const TWOFOLD: &str = "× ½ to × 2 of the estimate";
/// Calibration step 1 (docs/calibration.md).
const STEP1: &str = "activated-cell-days per session ≈ 25 (calibration step 1)";
/// P and T near a bleeding channel, and step 1.
const SOURCES: &str = "P, T near a bleeding channel 1–10 ng/mL; activated-cell-days (step 1)";
/// ln 2.
const LN2: f64 = std::f64::consts::LN_2;

/// Every varied parameter, in the order of the table.
pub static PARAMS: [Param; 25] = [
    param!(
        signals.pdgf_platelet_ng_per_ml_h,
        "σ_P,plt",
        "ng/mL/h",
        750.0,
        3000.0,
        TWOFOLD,
        SOURCES
    ),
    param!(
        signals.tgfb_platelet_ng_per_ml_h,
        "σ_T,plt",
        "ng/mL/h",
        375.0,
        1500.0,
        TWOFOLD,
        SOURCES
    ),
    param!(
        signals.pdgf_macrophage_ng_per_ml_h,
        "σ_P,mac",
        "ng/mL/h",
        100.0,
        400.0,
        TWOFOLD,
        STEP1
    ),
    param!(
        signals.tgfb_macrophage_ng_per_ml_h,
        "σ_T,mac",
        "ng/mL/h",
        50.0,
        200.0,
        TWOFOLD,
        STEP1
    ),
    param!(
        signals.protease_macrophage_ng_per_ml_h,
        "σ_C,mac",
        "ng/mL/h",
        3.5,
        14.0,
        TWOFOLD,
        "protease removes ≤ 2 % of native collagen per session"
    ),
    param!(
        signals.pdgf_fibroblast_ng_per_ml_h,
        "σ_P,fib",
        "ng/mL/h",
        0.002,
        0.008,
        "× ½ to × 2 (loop gain at ρ_cap 0.43 at the high end, ≤ 0.5 required)",
        "loop gain ≈ 0.3; the tissue returns to quiescence (claim 1.3)"
    ),
    param!(
        signals.tgfb_fibroblast_ng_per_ml_h,
        "σ_T,fib",
        "ng/mL/h",
        0.002,
        0.0075,
        "× ½ to the loop-gain bound (gain 0.48 at 0.0075; × 2 would exceed 0.5)",
        "loop gain ≈ 0.3; the tissue returns to quiescence (claim 1.3)"
    ),
    param!(
        fibroblasts.signal_pdgf_half_ng_per_ml,
        "K_P",
        "ng/mL",
        0.5,
        2.0,
        TWOFOLD,
        "activation where P is 1–10 ng/mL; activated-cell-days (step 1)"
    ),
    param!(
        fibroblasts.signal_tgfb_half_ng_per_ml,
        "K_T",
        "ng/mL",
        0.25,
        1.0,
        TWOFOLD,
        "activation where T is 1–10 ng/mL; activated-cell-days (step 1)"
    ),
    param!(
        fibroblasts.activation_threshold,
        "H0",
        "",
        0.025,
        0.1,
        TWOFOLD,
        "trace signals cannot keep the tissue active (claim 1.3)"
    ),
    param!(
        fibroblasts.activation_rate_per_h,
        "r_act",
        "1/h",
        0.1,
        0.4,
        TWOFOLD,
        "activated peak day 3–10 (claim 2.2); activated-cell-days (step 1)"
    ),
    param!(
        fibroblasts.deactivation_rate_per_h,
        "r_deact",
        "1/h",
        0.006,
        0.024,
        TWOFOLD,
        "activated-cell-days (step 1); return to quiescence (claim 1.3)"
    ),
    param!(
        fibroblasts.division_rate_per_h,
        "r_div",
        "1/h",
        LN2 / 48.0,
        LN2 / 12.0,
        "doubling time 12–48 h (default 13.9 h)",
        STEP1
    ),
    param!(
        fibroblasts.density_cap,
        "ρ_cap",
        "",
        1.5,
        6.0,
        "× ½ (the onset of crowding apoptosis, 1.5) to × 2",
        STEP1
    ),
    param!(
        fibroblasts.chemotaxis_bias,
        "χ",
        "",
        0.25,
        1.0,
        "× ½ to × 2 (1 is the largest possible bias)",
        "neo-collagen depth (check 3)"
    ),
    param!(
        fibroblasts.chemotaxis_gradient_half_ng_per_ml_um,
        "G_half",
        "ng/mL/µm",
        0.001,
        0.004,
        TWOFOLD,
        "neo-collagen depth (check 3)"
    ),
    param!(
        fibroblasts.synthesis_pg_per_cell_day,
        "s_act",
        "pg/cell/day",
        20.0,
        150.0,
        "20–150: cultured dermal fibroblasts make tens of pg collagen per cell per day, more under TGF-β",
        "papillary collagen +10 to +60 % after a course (check 4; calibration step 2)"
    ),
    param!(
        fibroblasts.synthesis_tail_days,
        "τ_syn",
        "days",
        11.0,
        44.0,
        TWOFOLD,
        "≈ 30 tail-cell-days per session; the gain lasts (claim 4.4; calibration step 3)"
    ),
    param!(
        fibroblasts.myofibroblast_death_per_h,
        "δ_myo",
        "1/h",
        0.005,
        0.02,
        "0.005 (the specification's value) to × 2 of the calibrated 0.01",
        "myofibroblasts peak on days 8–15 and fall below 10 % of their peak by day 30 (claims 2.4, 2.5)"
    ),
    param!(
        fibroblasts.myofibroblast_crowding_factor,
        "f_crowd,myo",
        "",
        0.0,
        1.0,
        "0 (myofibroblasts cleared by their own apoptosis) to 1 (the specification's rule: crowding apoptosis in every state)",
        "myofibroblast life and peak day (claim 2.4)",
        true
    ),
    param!(
        immune.macrophage_clearance_per_day,
        "δ_M",
        "1/day",
        0.25,
        1.0,
        TWOFOLD,
        STEP1
    ),
    param!(
        matrix.protease_col1_per_h_per_ng_ml,
        "μ_1",
        "1/h per ng/mL",
        1e-4,
        4e-4,
        TWOFOLD,
        "protease removes ≤ 2 % of native collagen per session"
    ),
    param!(
        matrix.neo_col3_half_life_weeks,
        "t½ neo col III",
        "weeks",
        2.0,
        8.0,
        TWOFOLD,
        "collagen III peaks 2–4 weeks after a session, then falls (claims 5.2–5.4)"
    ),
    param!(
        matrix.neo_col1_half_life_years,
        "t½ neo col I",
        "years",
        0.5,
        2.0,
        TWOFOLD,
        "the gain lasts 6 months (claim 4.4)"
    ),
    param!(
        epidermis.thickening_gain,
        "g_E",
        "",
        0.5,
        2.0,
        TWOFOLD,
        "epidermis +15 to +60 % after a course (claim 4.5)"
    ),
];

/// The parameter named `name`: its full key path or its field name.
pub fn find(name: &str) -> Option<&'static Param> {
    let name = name.trim();
    PARAMS.iter().find(|p| p.key == name || p.field() == name)
}

/// Why a `--param` name was refused: the name, the nearest parameter (if any is near) and the
/// list of every key.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", self.message())]
pub struct UnknownParam {
    /// The name given.
    pub name: String,
    /// The nearest key path.
    pub nearest: Option<&'static str>,
}

impl UnknownParam {
    fn message(&self) -> String {
        let hint = match self.nearest {
            Some(k) => format!("; did you mean `{k}`?"),
            None => String::new(),
        };
        let list = PARAMS
            .iter()
            .map(|p| format!("  {} ({})", p.key, p.symbol))
            .collect::<Vec<_>>()
            .join("\n");
        format!(
            "--param {}: not a varied parameter{hint}\nparameters (key path or its last part):\n{list}",
            self.name
        )
    }
}

/// The parameters named, in the order of [`PARAMS`], each once; every parameter when `names`
/// is empty.
pub fn select(names: &[String]) -> Result<Vec<&'static Param>, UnknownParam> {
    if names.is_empty() {
        return Ok(PARAMS.iter().collect());
    }
    let mut chosen = Vec::new();
    for n in names {
        match find(n) {
            Some(p) => chosen.push(p.key),
            None => return Err(unknown(n)),
        }
    }
    Ok(PARAMS.iter().filter(|p| chosen.contains(&p.key)).collect())
}

/// The error for an unknown name, with the nearest key or field name as a suggestion.
fn unknown(name: &str) -> UnknownParam {
    let name = name.trim();
    let keys: Vec<&'static str> = PARAMS.iter().map(|p| p.key).collect();
    let fields: Vec<&'static str> = PARAMS.iter().map(|p| p.field()).collect();
    let nearest = crate::scenario::error::suggest(name, &keys).or_else(|| {
        let f = crate::scenario::error::suggest(name, &fields)?;
        PARAMS.iter().find(|p| p.field() == f).map(|p| p.key)
    });
    UnknownParam {
        name: name.to_string(),
        nearest,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_unique_and_defaults_lie_inside_their_ranges() {
        for (i, p) in PARAMS.iter().enumerate() {
            assert!(
                PARAMS[..i]
                    .iter()
                    .all(|q| q.key != p.key && q.field() != p.field()),
                "{} twice",
                p.key
            );
            let d = p.default_value();
            assert!(
                (p.low < d && d < p.high) || (p.default_at_end && p.low <= d && d <= p.high),
                "{}: {} ∉ ({}, {})",
                p.key,
                d,
                p.low,
                p.high
            );
        }
    }

    #[test]
    fn set_writes_the_field_get_reads() {
        for p in &PARAMS {
            let mut m = Model::default();
            (p.set)(&mut m, p.high);
            assert_eq!((p.get)(&m), p.high, "{}", p.key);
            assert_ne!(m, Model::default(), "{}", p.key);
        }
    }

    #[test]
    fn names_resolve_and_unknown_ones_are_refused_with_the_nearest() {
        let k = "model.signals.pdgf_macrophage_ng_per_ml_h";
        assert_eq!(find(k).map(|p| p.key), Some(k));
        assert_eq!(find("pdgf_macrophage_ng_per_ml_h").map(|p| p.key), Some(k));
        let chosen = select(&["density_cap".into(), k.into(), "density_cap".into()]).unwrap();
        assert_eq!(
            chosen.iter().map(|p| p.key).collect::<Vec<_>>(),
            vec![k, "model.fibroblasts.density_cap"]
        );
        assert_eq!(select(&[]).unwrap().len(), PARAMS.len());
        let e = select(&["model.signals.pdgf_macrophage_ng_per_ml".into()]).unwrap_err();
        assert_eq!(e.nearest, Some(k));
        let e = select(&["densty_cap".into()]).unwrap_err();
        assert_eq!(e.nearest, Some("model.fibroblasts.density_cap"));
        let text = e.to_string();
        assert!(
            text.contains("did you mean `model.fibroblasts.density_cap`"),
            "{text}"
        );
        assert!(
            text.contains("model.matrix.neo_col3_half_life_weeks"),
            "{text}"
        );
        assert_eq!(select(&["zzzz".into()]).unwrap_err().nearest, None);
    }
}
