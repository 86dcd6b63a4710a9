//! Stage 1: a serde mirror of the scenario file. Every key is optional (absent means "use the
//! default"), every table denies unknown keys, numbers that are floats in [`Scenario`] accept
//! TOML integers too (serde widens `i64` to `f64`), and enumerations stay strings so that stage 2
//! can report every unknown value with a suggestion.
//!
//! The floating-point keys of each table are declared once, with their range, unit and meaning,
//! by the `table!` macro; stage 2, the template and the manifest writer all read that declaration.
//!
//! [`Scenario`]: super::Scenario

use serde::Deserialize;

use super::types::*;

/// One floating-point key of a table, as declared: range, unit, meaning and current value.
#[derive(Debug, Clone, Copy)]
#[cfg_attr(not(test), allow(dead_code))]
pub(crate) struct Row {
    /// Key in the file.
    pub key: &'static str,
    /// The value in the typed struct the row was read from.
    pub value: f64,
    /// Smallest allowed value (inclusive).
    pub min: f64,
    /// Largest allowed value (inclusive).
    pub max: f64,
    /// `min` as written in the declaration.
    pub min_text: &'static str,
    /// `max` as written in the declaration.
    pub max_text: &'static str,
    /// Unit, empty for dimensionless quantities.
    pub unit: &'static str,
    /// What the key means.
    pub help: &'static str,
}

impl Row {
    /// `0.1–3.0 mm`.
    pub fn allowed(&self) -> String {
        allowed(self.min_text, self.max_text, self.unit)
    }
}

/// `min–max unit`.
pub(crate) fn allowed(min: &str, max: &str, unit: &str) -> String {
    if unit.is_empty() {
        format!("{min}–{max}")
    } else {
        format!("{min}–{max} {unit}")
    }
}

/// Declared floating-point keys of a typed table.
pub(crate) trait FloatRows {
    /// The rows, with values read from `self`.
    fn float_rows(&self) -> Vec<Row>;
}

/// Declares a raw table: `extras` are hand-handled fields (all `Option`), `floats` are `f64`
/// keys of the typed struct with `min ..= max, "unit", "meaning"`.
macro_rules! table {
    (
        $(#[$meta:meta])*
        $raw:ident => $typed:ident
        extras { $( $(#[$xmeta:meta])* $xfield:ident : $xty:ty ),* $(,)? }
        floats { $( $field:ident : $min:literal ..= $max:literal, $unit:literal, $help:literal; )* }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub(crate) struct $raw {
            $( $(#[$xmeta])* pub $xfield: $xty, )*
            $( #[doc = $help] pub $field: Option<f64>, )*
        }

        impl $raw {
            /// Float keys present in the file, with their values.
            #[allow(dead_code)]
            pub fn present_floats(&self) -> Vec<(&'static str, f64)> {
                let mut v = Vec::new();
                $( if let Some(x) = self.$field { v.push((stringify!($field), x)); } )*
                v
            }

            /// Checks every present float key against its range and writes it into `out`
            /// (an invalid value leaves `out`'s value in place and records an error).
            pub fn apply_floats(&self, cx: &mut super::validate::Cx, prefix: &str, out: &mut $typed) {
                $(
                    if let Some(x) = self.$field {
                        let key = format!("{prefix}.{}", stringify!($field));
                        if cx.check_range(&key, x, $min as f64, $max as f64,
                            stringify!($min), stringify!($max), $unit) {
                            out.$field = x;
                        }
                    }
                )*
            }
        }

        impl FloatRows for $typed {
            fn float_rows(&self) -> Vec<Row> {
                vec![ $( Row {
                    key: stringify!($field),
                    value: self.$field,
                    min: $min as f64,
                    max: $max as f64,
                    min_text: stringify!($min),
                    max_text: stringify!($max),
                    unit: $unit,
                    help: $help,
                }, )* ]
            }
        }
    };
}

/// The whole file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFile {
    pub name: Option<String>,
    pub description: Option<String>,
    pub seed: Option<i64>,
    pub tissue: Option<RawTissue>,
    pub device: Option<RawDevice>,
    pub schedule: Option<RawSchedule>,
    pub output: Option<RawOutput>,
    pub numerics: Option<RawNumerics>,
    pub model: Option<RawModel>,
}

table! {
    /// `[tissue]`.
    RawTissue => Tissue
    extras {
        site: Option<String>,
        domain_um: Option<Vec<f64>>,
    }
    floats {
        voxel_um: 5 ..= 100, "µm", "voxel edge";
        patient_age_years: 18 ..= 100, "years", "patient age";
        epidermis_um: 10 ..= 300, "µm", "epidermis thickness";
        papillary_um: 20 ..= 1000, "µm", "papillary dermis thickness";
        reticular_um: 100 ..= 5000, "µm", "reticular dermis thickness";
        papillary_fibroblasts_per_mm3: 100 ..= 50000, "cells/mm³", "papillary fibroblast density at age 25";
        reticular_fibroblasts_per_mm3: 100 ..= 50000, "cells/mm³", "reticular fibroblast density at age 25";
        papillary_collagen_ug_per_mm3: 10 ..= 390, "µg/mm³", "papillary collagen at age 25";
        reticular_collagen_ug_per_mm3: 10 ..= 390, "µg/mm³", "reticular collagen at age 25";
        papillary_col3_fraction: 0 ..= 1, "", "collagen III share of papillary collagen";
        reticular_col3_fraction: 0 ..= 1, "", "collagen III share of reticular collagen";
        papillary_elastin_ug_per_mm3: 0 ..= 100, "µg/mm³", "papillary elastin at age 25";
        reticular_elastin_ug_per_mm3: 0 ..= 100, "µg/mm³", "reticular elastin at age 25";
    }
}

table! {
    /// `[device]` and the `device` of a `[[schedule.override]]`.
    RawDevice => Device
    extras {
        kind: Option<String>,
        pattern: Option<String>,
        passes: Option<i64>,
    }
    floats {
        needle_length_mm: 0.1 ..= 3.0, "mm", "needle length";
        penetration_fraction: 0.1 ..= 1.0, "", "channel depth ÷ needle length";
        channel_radius_um: 5 ..= 200, "µm", "channel radius at the surface";
        density_per_cm2: 1 ..= 5000, "channels/cm²", "channels per cm² per session (pen, custom)";
        tilt_deg: 0 ..= 60, "°", "roller: channel tilt from the vertical";
        roller_needles: 1 ..= 2000, "needles", "roller: needles on the drum";
        roller_width_mm: 2 ..= 100, "mm", "roller: drum width";
        roller_diameter_mm: 2 ..= 100, "mm", "roller: drum diameter";
        pitch_um: 50 ..= 5000, "µm", "stamp: grid pitch";
        fragmentation: 0 ..= 1, "", "volume fraction of matrix destroyed inside a channel";
        halo_damage: 0 ..= 1, "", "damage at the channel wall";
        halo_length_um: 1 ..= 500, "µm", "decay length of the damage halo";
        bleeding_margin_um: 0 ..= 500, "µm", "a channel bleeds if deeper than the epidermis plus this";
    }
}

/// `[schedule]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSchedule {
    pub sessions: Option<i64>,
    pub interval_days: Option<f64>,
    pub start_day: Option<f64>,
    pub days: Option<Vec<f64>>,
    pub follow_up_days: Option<f64>,
    #[serde(rename = "override")]
    pub overrides: Option<Vec<RawOverride>>,
}

/// One `[[schedule.override]]`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOverride {
    pub session: Option<i64>,
    pub device: Option<RawDevice>,
}

table! {
    /// `[output]`.
    RawOutput => Output
    extras {
        snapshot_days: Option<Vec<f64>>,
        metric_days_after_last: Option<Vec<f64>>,
        control: Option<bool>,
        section_y_um: Option<f64>,
    }
    floats {
        interval_days: 0.25 ..= 30, "days", "interval of the per-region time series";
        fine_interval_h: 0.25 ..= 240, "h", "interval of the whole-block series (a multiple of numerics.dt_h)";
    }
}

table! {
    /// `[numerics]`.
    RawNumerics => Numerics
    extras {
        fast_forward: Option<bool>,
        max_dt_h: Option<f64>,
        max_steps: Option<i64>,
    }
    floats {
        dt_h: 0.01 ..= 1, "h", "time step while the tissue is active";
        slow_interval_h: 0.01 ..= 24, "h", "interval at which cell density ρ and the matrix pools are updated (a multiple of dt_h)";
        burn_in_days: 0 ..= 3650, "days", "untreated cell dynamics run before day 0 so that the start is at the stationary density";
        settle_after_days: 1 ..= 3650, "days", "days after a session from which active steps are settled steps of settle_step_h (3650: never)";
        settle_step_h: 0.01 ..= 24, "h", "length of a settled step (a multiple of dt_h dividing slow_interval_h)";
        max_memory_gib: 0.1 ..= 1024, "GiB", "memory a run may use; larger scenarios are refused";
        signal_voxel_um: 0 ..= 1000, "µm", "edge of the cubic cells of the grid of P, T and C, or the nearest that tiles the block laterally (0, or no such edge of at least 2 × voxel_um: the voxel grid); coarser cells under-count myofibroblasts (docs/model.md §3)";
    }
}

/// `[model]`: only sub-tables.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawModel {
    pub immune: Option<RawImmune>,
    pub signals: Option<RawSignals>,
    pub matrix: Option<RawMatrix>,
    pub fibroblasts: Option<RawFibroblasts>,
    pub epidermis: Option<RawEpidermis>,
}

table! {
    /// `[model.immune]`.
    RawImmune => Immune
    extras {}
    floats {
        neutrophil_recruitment_per_h: 0 ..= 10, "1/h", "a_N: neutrophil recruitment per unit damage";
        neutrophil_clearance_per_day: 0.01 ..= 50, "1/day", "δ_N: neutrophil clearance";
        macrophage_recruitment_per_h: 0 ..= 10, "1/h", "a_M: macrophage recruitment per unit N";
        macrophage_clearance_per_day: 0.01 ..= 50, "1/day", "δ_M: macrophage clearance";
        macrophage_diffusion_um2_per_h: 0 ..= 1e6, "µm²/h", "D_M: macrophage diffusivity";
        damage_half_life_h: 1 ..= 10000, "h", "half-life of damage W";
        platelet_tau_h: 0.1 ..= 1000, "h", "τ_plt: platelet release time constant";
    }
}

table! {
    /// `[model.signals]`.
    RawSignals => Signals
    extras {}
    floats {
        pdgf_diffusion_um2_per_h: 0 ..= 1e7, "µm²/h", "D_P: PDGF diffusivity";
        pdgf_decay_per_h: 0 ..= 10, "1/h", "k_P: PDGF decay (k·dt ≤ 0.2)";
        tgfb_diffusion_um2_per_h: 0 ..= 1e7, "µm²/h", "D_T: TGF-β diffusivity";
        tgfb_decay_per_h: 0 ..= 10, "1/h", "k_T: TGF-β decay (k·dt ≤ 0.2)";
        protease_diffusion_um2_per_h: 0 ..= 1e7, "µm²/h", "D_C: protease diffusivity";
        protease_decay_per_h: 0 ..= 10, "1/h", "k_C: protease decay (k·dt ≤ 0.2)";
        pdgf_platelet_ng_per_ml_h: 0 ..= 1e6, "ng/mL/h", "σ_P,plt per unit platelet release";
        tgfb_platelet_ng_per_ml_h: 0 ..= 1e6, "ng/mL/h", "σ_T,plt per unit platelet release";
        pdgf_macrophage_ng_per_ml_h: 0 ..= 1e6, "ng/mL/h", "σ_P,mac per unit M";
        tgfb_macrophage_ng_per_ml_h: 0 ..= 1e6, "ng/mL/h", "σ_T,mac per unit M";
        protease_macrophage_ng_per_ml_h: 0 ..= 1e6, "ng/mL/h", "σ_C,mac per unit M";
        pdgf_fibroblast_ng_per_ml_h: 0 ..= 100, "ng/mL/h", "σ_P,fib per unit relative activated density";
        tgfb_fibroblast_ng_per_ml_h: 0 ..= 100, "ng/mL/h", "σ_T,fib per unit relative activated density";
        protease_fibroblast_ng_per_ml_h: 0 ..= 100, "ng/mL/h", "σ_C,fib per unit relative activated density";
    }
}

table! {
    /// `[model.matrix]`.
    RawMatrix => Matrix
    extras {}
    floats {
        collagen_half_life_years: 0.1 ..= 100, "years", "native collagen half-life";
        elastin_residence_years: 1 ..= 500, "years", "native elastin mean residence time";
        ageing_drift_per_year: 0 ..= 0.1, "1/year", "collagen synthesis deficit below turnover";
        neo_col3_half_life_weeks: 0.1 ..= 520, "weeks", "neo collagen III half-life";
        neo_col1_half_life_years: 0.01 ..= 100, "years", "neo collagen I half-life";
        neo_elastin_half_life_weeks: 0.1 ..= 5200, "weeks", "neo elastin half-life";
        protease_col1_per_h_per_ng_ml: 0 ..= 1, "1/h per ng/mL", "μ_1: collagen I cleavage per unit protease";
        protease_col3_factor: 0 ..= 100, "", "μ_3 ÷ μ_1";
        protease_elastin_factor: 0 ..= 100, "", "μ_e ÷ μ_1";
        fibrin_half_life_days: 0.01 ..= 100, "days", "fibrin half-life";
        fibrin_protease_ng_per_ml: 0.001 ..= 1000, "ng/mL", "C_f: protease level doubling fibrinolysis";
        collagen_max_ug_per_mm3: 50 ..= 1000, "µg/mm³", "c_max: collagen density at which deposition stops";
    }
}

table! {
    /// `[model.fibroblasts]`.
    RawFibroblasts => Fibroblasts
    extras {}
    floats {
        signal_pdgf_half_ng_per_ml: 1e-4 ..= 1000, "ng/mL", "K_P of the activation signal";
        signal_tgfb_half_ng_per_ml: 1e-4 ..= 1000, "ng/mL", "K_T of the activation signal";
        activation_threshold: 0 ..= 0.9, "", "H0: signal threshold";
        activation_rate_per_h: 0 ..= 100, "1/h", "r_act";
        deactivation_rate_per_h: 0 ..= 100, "1/h", "r_deact";
        myofibroblast_rate_per_h: 0 ..= 100, "1/h", "r_myo";
        myofibroblast_tgfb_half_ng_per_ml: 1e-4 ..= 1000, "ng/mL", "K_myo";
        myofibroblast_min_activation_days: 0 ..= 100, "days", "activation time before a cell can become a myofibroblast";
        myofibroblast_fibrin_min: 0 ..= 1, "", "fibrin level needed for the myofibroblast transition";
        myofibroblast_death_per_h: 0 ..= 100, "1/h", "myofibroblast apoptosis without TGF-β";
        myofibroblast_crowding_factor: 0 ..= 1, "", "share of the crowding apoptosis that applies to myofibroblasts";
        division_rate_per_h: 0 ..= 10, "1/h", "r_div (default 0.05, calibrated)";
        division_pdgf_half_ng_per_ml: 1e-4 ..= 1000, "ng/mL", "K_div";
        density_cap: 1 ..= 20, "", "ρ_cap: density above which activated cells stop dividing";
        quiescent_turnover_per_day: 0 ..= 10, "1/day", "r_q: quiescent division/death rate scale";
        apoptosis_per_day: 0 ..= 10, "1/day", "r_apo: crowding apoptosis";
        apoptosis_density: 1 ..= 20, "", "density above which crowding apoptosis starts";
        density_sigma_xy_um: 1 ..= 1000, "µm", "σ_xy of the density kernel";
        density_sigma_z_um: 1 ..= 1000, "µm", "σ_z of the density kernel";
        persistence_h: 0.05 ..= 100, "h", "τ_p: persistence time";
        chemotaxis_bias: 0 ..= 1, "", "χ: maximal chemotactic bias";
        chemotaxis_gradient_half_ng_per_ml_um: 1e-8 ..= 10, "ng/mL/µm", "G_half: PDGF gradient of half-maximal bias";
        speed_quiescent_um_per_h: 0 ..= 100, "µm/h", "quiescent speed (speed·dt ≤ half a voxel)";
        speed_activated_um_per_h: 0 ..= 100, "µm/h", "activated speed (speed·dt ≤ half a voxel)";
        speed_myofibroblast_um_per_h: 0 ..= 100, "µm/h", "myofibroblast speed (speed·dt ≤ half a voxel)";
        speed_min_factor: 0 ..= 1, "", "lowest speed factor in dense matrix";
        synthesis_pg_per_cell_day: 0 ..= 1000, "pg/cell/day", "s_act: collagen synthesis of an activated cell at age 25";
        myofibroblast_synthesis_factor: 0 ..= 20, "", "myofibroblast synthesis ÷ s_act";
        synthesis_tail_days: 0.1 ..= 1000, "days", "τ_syn: decay of synthesis after deactivation";
        col3_share_initial: 0 ..= 1, "", "type III share of new collagen at activation";
        col3_share_final: 0 ..= 1, "", "type III share long after activation";
        col3_switch_days: 0.1 ..= 1000, "days", "τ_sw: time constant of the III→I switch";
        elastin_ratio_papillary: 0 ..= 1, "", "elastin ÷ collagen synthesis in papillary dermis";
        elastin_ratio_reticular: 0 ..= 1, "", "elastin ÷ collagen synthesis in reticular dermis";
        daughter_distance_um: 0 ..= 100, "µm", "distance of a daughter from its parent";
    }
}

table! {
    /// `[model.epidermis]`.
    RawEpidermis => Epidermis
    extras {}
    floats {
        relaxation_days: 0.1 ..= 1000, "days", "τ_E: epidermal relaxation time";
        thickening_gain: 0 ..= 10, "", "g_E: thickening per unit relative papillary neo collagen";
        barrier_tau_h: 0.1 ..= 1000, "h", "τ_barrier: time constant of channel closure";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_default_lies_in_its_declared_range() {
        let s = Scenario::default();
        let rows = [
            s.tissue.float_rows(),
            s.device.float_rows(),
            Device::defaults(DeviceKind::Roller).float_rows(),
            Device::defaults(DeviceKind::Stamp).float_rows(),
            s.output.float_rows(),
            s.numerics.float_rows(),
            s.model.immune.float_rows(),
            s.model.signals.float_rows(),
            s.model.matrix.float_rows(),
            s.model.fibroblasts.float_rows(),
            s.model.epidermis.float_rows(),
        ];
        for r in rows.iter().flatten() {
            assert!(
                r.min <= r.value && r.value <= r.max,
                "{} = {}",
                r.key,
                r.value
            );
        }
    }

    #[test]
    fn integers_are_accepted_for_floats() {
        let t: RawTissue = toml::from_str("voxel_um = 20").unwrap();
        assert_eq!(t.voxel_um, Some(20.0));
    }
}
