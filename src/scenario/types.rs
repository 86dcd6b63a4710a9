//! The validated, typed scenario: what the engine sees.
//!
//! Every quantity carries its unit in its name, exactly as the scenario file key does. Values
//! here are in the user-facing units of the file (mm, days, years where the key says so); the
//! engine converts them once into its internal system (µm, h, ng/mL, µg/mm³) when a simulation
//! is built. Defaults are those of the model specification (`docs/model.md`); each field's doc
//! gives `unit; default; allowed range`.

use serde::{Deserialize, Serialize};

/// A complete, validated scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// Name, used for the output folder (default: the file stem).
    pub name: String,
    /// Free text describing the scenario.
    pub description: String,
    /// Random seed; `u64`; default 1.
    pub seed: u64,
    /// Tissue block.
    pub tissue: Tissue,
    /// Device used at every session unless overridden.
    pub device: Device,
    /// Treatment schedule.
    pub schedule: Schedule,
    /// What to record.
    pub output: Output,
    /// Time stepping and resource limits.
    pub numerics: Numerics,
    /// Model parameters.
    pub model: Model,
}

/// Body-site presets of layer thicknesses (docs/model.md §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Site {
    /// Cheek: 50 / 250 / 1300 µm (Chopra 2015).
    FaceCheek,
    /// Forehead: 60 / 250 / 1100 µm (Chopra 2015).
    Forehead,
    /// Neck: 50 / 200 / 1200 µm (est.).
    Neck,
    /// Abdomen (stretch marks): 80 / 300 / 1800 µm (Oltulu 2018, est.).
    Abdomen,
    /// Back (acne scars): 100 / 300 / 2500 µm (Oltulu 2018, est.).
    Back,
    /// Back of the hand: 80 / 200 / 1000 µm (est.).
    HandDorsum,
}

impl Site {
    /// All presets, for messages and templates.
    pub const ALL: [Site; 6] = [
        Site::FaceCheek,
        Site::Forehead,
        Site::Neck,
        Site::Abdomen,
        Site::Back,
        Site::HandDorsum,
    ];
    /// The key used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            Site::FaceCheek => "face_cheek",
            Site::Forehead => "forehead",
            Site::Neck => "neck",
            Site::Abdomen => "abdomen",
            Site::Back => "back",
            Site::HandDorsum => "hand_dorsum",
        }
    }
    /// Epidermis, papillary and reticular thickness, µm.
    pub fn thicknesses_um(self) -> [f64; 3] {
        match self {
            Site::FaceCheek => [50.0, 250.0, 1300.0],
            Site::Forehead => [60.0, 250.0, 1100.0],
            Site::Neck => [50.0, 200.0, 1200.0],
            Site::Abdomen => [80.0, 300.0, 1800.0],
            Site::Back => [100.0, 300.0, 2500.0],
            Site::HandDorsum => [80.0, 200.0, 1000.0],
        }
    }
}

/// The tissue block (`[tissue]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tissue {
    /// Body-site preset; default `face_cheek`.
    pub site: Site,
    /// Lateral size [x, y] of the periodic block, µm; default [1900, 1900]; each 100–20000 and at
    /// least 3 voxels.
    pub domain_um: [f64; 2],
    /// Voxel edge, µm; default 20; 5–100.
    pub voxel_um: f64,
    /// Patient age, years; default 45; 18–100.
    pub patient_age_years: f64,
    /// Epidermis thickness, µm; default from the site; 10–300.
    pub epidermis_um: f64,
    /// Papillary dermis thickness, µm; default from the site; 20–1000.
    pub papillary_um: f64,
    /// Reticular dermis thickness, µm; default from the site; 100–5000.
    pub reticular_um: f64,
    /// Baseline fibroblast density of the papillary dermis at age 25, cells/mm³; default 6000; 100–50000.
    pub papillary_fibroblasts_per_mm3: f64,
    /// Baseline fibroblast density of the reticular dermis at age 25, cells/mm³; default 2500; 100–50000.
    pub reticular_fibroblasts_per_mm3: f64,
    /// Papillary collagen at age 25, µg/mm³; default 180; 10–390.
    pub papillary_collagen_ug_per_mm3: f64,
    /// Reticular collagen at age 25, µg/mm³; default 250; 10–390.
    pub reticular_collagen_ug_per_mm3: f64,
    /// Collagen III share of papillary collagen; default 0.20; 0–1.
    pub papillary_col3_fraction: f64,
    /// Collagen III share of reticular collagen; default 0.12; 0–1.
    pub reticular_col3_fraction: f64,
    /// Papillary elastin at age 25, µg/mm³; default 6; 0–100.
    pub papillary_elastin_ug_per_mm3: f64,
    /// Reticular elastin at age 25, µg/mm³; default 9; 0–100.
    pub reticular_elastin_ug_per_mm3: f64,
}

/// Device kinds (docs/model.md §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceKind {
    /// Automated pen: perpendicular channels, `density_per_cm2`, default jittered grid.
    Pen,
    /// Drum roller: density from needles × passes ÷ (drum width × circumference); tilted
    /// channels in rows along the rolling direction, passes alternating between x and y.
    Roller,
    /// Stamp: a plain grid of pitch `pitch_um`, `passes` stamps per session.
    Stamp,
    /// Direct density and pattern, perpendicular channels.
    Custom,
}

impl DeviceKind {
    /// The key used in scenario files.
    pub fn name(self) -> &'static str {
        match self {
            DeviceKind::Pen => "pen",
            DeviceKind::Roller => "roller",
            DeviceKind::Stamp => "stamp",
            DeviceKind::Custom => "custom",
        }
    }
}

/// Channel layout patterns.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Pattern {
    /// Square grid snapped to the periodic block, each point jittered by ±0.25 pitch.
    JitteredGrid,
    /// Square grid with a random sub-voxel offset per session.
    Grid,
    /// Uniform random positions.
    Poisson,
}

/// A device (`[device]`), resolved for its kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    /// `pen`, `roller`, `stamp` or `custom`; default `pen`.
    pub kind: DeviceKind,
    /// Needle length, mm; default 1.0; 0.1–3.0.
    pub needle_length_mm: f64,
    /// Channel depth ÷ needle length; default 0.5 (pen, stamp, custom), 0.3 (roller); 0.1–1.0.
    pub penetration_fraction: f64,
    /// Channel radius at the surface, µm; default 35; 5–200.
    pub channel_radius_um: f64,
    /// Channels per cm² per session (pen, custom); default 250; 1–5000. For a roller or stamp,
    /// derived from the mechanics.
    pub density_per_cm2: f64,
    /// Layout (pen, custom); default `jittered_grid`; roller rows and stamp grids are fixed.
    pub pattern: Pattern,
    /// Roller: channel tilt from the vertical in the rolling direction, degrees; default 15; 0–60.
    pub tilt_deg: f64,
    /// Roller: needles on the drum; default 192; 1–2000.
    pub roller_needles: f64,
    /// Roller: drum width, mm; default 20; 2–100.
    pub roller_width_mm: f64,
    /// Roller: drum diameter, mm; default 18; 2–100.
    pub roller_diameter_mm: f64,
    /// Roller: passes per session (alternating directions) ; stamp: stamps per session;
    /// default 15 (roller), 1 (stamp); 1–100.
    pub passes: u32,
    /// Stamp: grid pitch, µm; default 600; 50–5000.
    pub pitch_um: f64,
    /// Volume fraction of matrix destroyed inside a channel; default 0.9; 0–1.
    pub fragmentation: f64,
    /// Damage at the channel wall outside it; default 0.3; 0–1.
    pub halo_damage: f64,
    /// Decay length of the damage halo, µm; default 30; 1–500.
    pub halo_length_um: f64,
    /// A channel bleeds if deeper than the epidermis plus this, µm; default 50; 0–500.
    pub bleeding_margin_um: f64,
}

/// A per-session device override (`[[schedule.override]]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionOverride {
    /// Session number, from 1.
    pub session: u32,
    /// The device for that session (the base device with the override's keys applied).
    pub device: Device,
}

/// The treatment schedule (`[schedule]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Schedule {
    /// Session days (from `sessions`, `interval_days`, `start_day`, or an explicit `days` list);
    /// sorted, distinct, ≥ 0. Empty: no treatment (a control scenario).
    pub days: Vec<f64>,
    /// Days simulated after the last session (or after day 0 when there is none); default 180;
    /// 1–3650.
    pub follow_up_days: f64,
    /// Device overrides by session.
    pub overrides: Vec<SessionOverride>,
}

/// What to record (`[output]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Output {
    /// Interval of the per-region time series, days; default 1; 0.25–30.
    pub interval_days: f64,
    /// Interval of the whole-block series, h; default 6; 0.25–240; a multiple of `numerics.dt_h`.
    pub fine_interval_h: f64,
    /// Days (absolute) of depth profiles and cross-sections; default: first session + 7,
    /// each metric day.
    pub snapshot_days: Vec<f64>,
    /// Metric days after the last session; default [30, 90, 180]; within the follow-up.
    pub metric_days_after_last: Vec<f64>,
    /// Run the untreated control alongside; default true.
    pub control: bool,
    /// y position of the cross-section plane, µm; default the middle of the block.
    pub section_y_um: f64,
}

/// Time stepping and limits (`[numerics]`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Numerics {
    /// Time step while the tissue is active, h; default 0.25; 0.01–1; k·dt ≤ 0.2 for every field
    /// and speed·dt ≤ half a voxel.
    pub dt_h: f64,
    /// Interval of the slow processes, h: relative cell density ρ is recomputed and the matrix
    /// pools are integrated (exactly, with the protease averaged over the interval) every
    /// `slow_interval_h`; default 2; 0.01–24; a multiple of dt_h. Setting it to dt_h gives the
    /// per-step order of the model specification.
    pub slow_interval_h: f64,
    /// Burn-in of the fibroblast population before day 0, days: the untreated cell dynamics
    /// (quiescent walk, density-dependent division and death; matrix untouched) run on the
    /// randomly placed cells so that day 0 starts at the stationary density; default 120; 0–3650.
    pub burn_in_days: f64,
    /// Days after a session from which active steps are "settled" steps of `settle_step_h`
    /// (P, T, C and the agents advanced over the longer step), once the platelet release has
    /// decayed; default 3; 1–3650 (3650: never).
    pub settle_after_days: f64,
    /// Length of a settled step, h; default 1; 0.01–24; a multiple of dt_h that divides
    /// slow_interval_h.
    pub settle_step_h: f64,
    /// Allow the quiet fast-forward; default true.
    pub fast_forward: bool,
    /// Longest fast-forward step, h; default 24; dt_h–240.
    pub max_dt_h: f64,
    /// Memory a run may use, GiB; default 8; 0.1–1024. A scenario estimated above it is refused.
    pub max_memory_gib: f64,
    /// Edge of the cubic cells of the grid of P, T and C, µm; default 0 (the voxel grid);
    /// 0–1000. The nearest edge that tiles the block laterally, if it is at least twice
    /// `tissue.voxel_um` ([`crate::sim::tissue::Geometry::signal_grid`]); B, M and A are
    /// restricted to that grid and P, T and C interpolated back (docs/model.md §3, signal grid).
    pub signal_voxel_um: f64,
    /// Most time steps a run may take (upper bound, fast-forward not counted); default 5 000 000.
    pub max_steps: u64,
}

/// Model parameters (`[model.*]`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Model {
    /// Innate immune response.
    pub immune: Immune,
    /// Growth factors and protease.
    pub signals: Signals,
    /// Matrix turnover.
    pub matrix: Matrix,
    /// Fibroblast agents.
    pub fibroblasts: Fibroblasts,
    /// Epidermis and barrier.
    pub epidermis: Epidermis,
}

/// `[model.immune]` (docs/model.md §3–4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Immune {
    /// a_N: neutrophil recruitment per unit damage, 1/h; default 0.073; 0–10.
    pub neutrophil_recruitment_per_h: f64,
    /// δ_N: neutrophil clearance, 1/day; default 1; 0.01–50.
    pub neutrophil_clearance_per_day: f64,
    /// a_M: macrophage recruitment per unit N, 1/h; default 0.034; 0–10.
    pub macrophage_recruitment_per_h: f64,
    /// δ_M: macrophage clearance, 1/day; default 0.5 (calibrated; the model specification
    /// gives 0.6: docs/calibration.md, step 1); 0.01–50.
    pub macrophage_clearance_per_day: f64,
    /// D_M: macrophage diffusivity, µm²/h; default 100; 0–1e6.
    pub macrophage_diffusion_um2_per_h: f64,
    /// Half-life of damage W, h; default 48; 1–10000.
    pub damage_half_life_h: f64,
    /// τ_plt: platelet release time constant, h; default 12; 0.1–1000.
    pub platelet_tau_h: f64,
}

/// `[model.signals]` (docs/model.md §3–4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Signals {
    /// D_P, µm²/h; default 108000; 0–1e7.
    pub pdgf_diffusion_um2_per_h: f64,
    /// k_P, 1/h; default 0.5; 0–10 (k·dt ≤ 0.2).
    pub pdgf_decay_per_h: f64,
    /// D_T, µm²/h; default 108000; 0–1e7.
    pub tgfb_diffusion_um2_per_h: f64,
    /// k_T, 1/h; default 0.625; 0–10.
    pub tgfb_decay_per_h: f64,
    /// D_C, µm²/h; default 36000; 0–1e7.
    pub protease_diffusion_um2_per_h: f64,
    /// k_C, 1/h; default 0.25; 0–10.
    pub protease_decay_per_h: f64,
    /// σ_P,plt, ng/mL/h per unit platelet release; default 1500; 0–1e6.
    pub pdgf_platelet_ng_per_ml_h: f64,
    /// σ_T,plt; default 750; 0–1e6.
    pub tgfb_platelet_ng_per_ml_h: f64,
    /// σ_P,mac, ng/mL/h per unit M; default 200; 0–1e6.
    pub pdgf_macrophage_ng_per_ml_h: f64,
    /// σ_T,mac; default 100; 0–1e6.
    pub tgfb_macrophage_ng_per_ml_h: f64,
    /// σ_C,mac; default 7; 0–1e6.
    pub protease_macrophage_ng_per_ml_h: f64,
    /// σ_P,fib, ng/mL/h per unit relative activated density A; default 0.004; 0–100.
    pub pdgf_fibroblast_ng_per_ml_h: f64,
    /// σ_T,fib; default 0.004; 0–100.
    pub tgfb_fibroblast_ng_per_ml_h: f64,
    /// σ_C,fib; default 0.01; 0–100.
    pub protease_fibroblast_ng_per_ml_h: f64,
}

/// `[model.matrix]` (docs/model.md §3–4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Matrix {
    /// Native collagen half-life, years; default 15 (Verzijl 2000); 0.1–100.
    pub collagen_half_life_years: f64,
    /// Native elastin mean residence time, years; default 74 (Shapiro 1991); 1–500.
    pub elastin_residence_years: f64,
    /// Collagen synthesis deficit below turnover (the ageing drift), 1/year; default 0.01; 0–0.1.
    pub ageing_drift_per_year: f64,
    /// Neo collagen III half-life, weeks; default 4; 0.1–520.
    pub neo_col3_half_life_weeks: f64,
    /// Neo collagen I half-life, years; default 1; 0.01–100.
    pub neo_col1_half_life_years: f64,
    /// Neo elastin half-life, weeks; default 8; 0.1–5200.
    pub neo_elastin_half_life_weeks: f64,
    /// μ_1: collagen I cleavage per unit protease, 1/h per ng/mL; default 2e-4; 0–1.
    pub protease_col1_per_h_per_ng_ml: f64,
    /// μ_3 ÷ μ_1; default 2; 0–100.
    pub protease_col3_factor: f64,
    /// μ_e ÷ μ_1; default 3; 0–100.
    pub protease_elastin_factor: f64,
    /// Fibrin half-life, days; default 3; 0.01–100.
    pub fibrin_half_life_days: f64,
    /// C_f: protease level doubling fibrinolysis, ng/mL; default 1; 0.001–1000.
    pub fibrin_protease_ng_per_ml: f64,
    /// c_max: collagen density at which deposition stops, µg/mm³; default 400; 50–1000.
    pub collagen_max_ug_per_mm3: f64,
}

/// `[model.fibroblasts]` (docs/model.md §5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fibroblasts {
    /// K_P of the activation signal, ng/mL; default 1; 1e-4–1000.
    pub signal_pdgf_half_ng_per_ml: f64,
    /// K_T of the activation signal, ng/mL; default 0.5; 1e-4–1000.
    pub signal_tgfb_half_ng_per_ml: f64,
    /// H0: signal threshold; default 0.05; 0–0.9.
    pub activation_threshold: f64,
    /// r_act, 1/h; default 0.2; 0–100.
    pub activation_rate_per_h: f64,
    /// r_deact, 1/h; default 0.012 (calibrated; the model specification gives 0.02:
    /// docs/calibration.md, step 1); 0–100.
    pub deactivation_rate_per_h: f64,
    /// r_myo, 1/h; default 0.01; 0–100.
    pub myofibroblast_rate_per_h: f64,
    /// K_myo, ng/mL; default 0.5; 1e-4–1000.
    pub myofibroblast_tgfb_half_ng_per_ml: f64,
    /// Activation time before a cell can become a myofibroblast, days; default 5; 0–100.
    pub myofibroblast_min_activation_days: f64,
    /// Fibrin level needed for the myofibroblast transition; default 0.02; 0–1.
    pub myofibroblast_fibrin_min: f64,
    /// Myofibroblast apoptosis without TGF-β, 1/h; default 0.01 (calibrated; the model
    /// specification gives 0.005: docs/calibration.md); 0–100.
    pub myofibroblast_death_per_h: f64,
    /// Share of the crowding apoptosis r_apo · max(0, ρ − ρ_apo) that applies to
    /// myofibroblasts; default 0 (they are cleared by their own apoptosis as TGF-β falls); 0–1.
    /// 1 gives the model specification's rule, under which crowding applies to every state.
    pub myofibroblast_crowding_factor: f64,
    /// r_div, 1/h; default 0.05, a doubling time of 13.9 h (calibrated; the model
    /// specification gives ln2/24 = 0.02888: docs/calibration.md, step 1); 0–10.
    pub division_rate_per_h: f64,
    /// K_div, ng/mL; default 1; 1e-4–1000.
    pub division_pdgf_half_ng_per_ml: f64,
    /// ρ_cap: density above which activated cells stop dividing; default 3; 1–20.
    pub density_cap: f64,
    /// r_q: quiescent division/death rate scale, 1/day; default 0.05; 0–10.
    pub quiescent_turnover_per_day: f64,
    /// r_apo: crowding apoptosis, 1/day; default 0.12; 0–10.
    pub apoptosis_per_day: f64,
    /// Density above which crowding apoptosis starts; default 1.5; 1–20.
    pub apoptosis_density: f64,
    /// σ_xy of the density kernel, µm; default 100; 1–1000.
    pub density_sigma_xy_um: f64,
    /// σ_z of the density kernel, µm; default 30; 1–1000.
    pub density_sigma_z_um: f64,
    /// τ_p: persistence time, h; default 2; 0.05–100.
    pub persistence_h: f64,
    /// χ: maximal chemotactic bias; default 0.5; 0–1.
    pub chemotaxis_bias: f64,
    /// G_half: PDGF gradient of half-maximal bias, ng/mL/µm; default 0.002; 1e-8–10.
    pub chemotaxis_gradient_half_ng_per_ml_um: f64,
    /// Quiescent speed, µm/h; default 1; 0–100.
    pub speed_quiescent_um_per_h: f64,
    /// Activated speed, µm/h; default 20; 0–100.
    pub speed_activated_um_per_h: f64,
    /// Myofibroblast speed, µm/h; default 5; 0–100.
    pub speed_myofibroblast_um_per_h: f64,
    /// Lowest speed factor in dense matrix; default 0.2; 0–1.
    pub speed_min_factor: f64,
    /// s_act: collagen synthesis of an activated cell at age 25, pg/cell/day; default 140
    /// (calibrated, docs/calibration.md); 0–1000.
    pub synthesis_pg_per_cell_day: f64,
    /// Myofibroblast synthesis ÷ s_act; default 2; 0–20.
    pub myofibroblast_synthesis_factor: f64,
    /// τ_syn: decay of synthesis after deactivation, days; default 22 (calibrated; the model
    /// specification gives 21: docs/calibration.md, step 3); 0.1–1000.
    pub synthesis_tail_days: f64,
    /// Type III share of new collagen at activation; default 0.7; 0–1.
    pub col3_share_initial: f64,
    /// Type III share long after activation (and of myofibroblasts); default 0.1; 0–1.
    pub col3_share_final: f64,
    /// τ_sw: time constant of the III→I switch, days; default 14; 0.1–1000.
    pub col3_switch_days: f64,
    /// Elastin ÷ collagen synthesis in papillary dermis; default 0.01; 0–1.
    pub elastin_ratio_papillary: f64,
    /// Elastin ÷ collagen synthesis in reticular dermis; default 0.003; 0–1.
    pub elastin_ratio_reticular: f64,
    /// Distance of a daughter from its parent, µm; default 5; 0–100.
    pub daughter_distance_um: f64,
}

/// `[model.epidermis]` (docs/model.md §6).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Epidermis {
    /// τ_E: epidermal relaxation time, days; default 7; 0.1–1000.
    pub relaxation_days: f64,
    /// g_E: thickening per unit relative papillary neo collagen; default 1; 0–10.
    pub thickening_gain: f64,
    /// τ_barrier: time constant of channel closure, h; default 4; 0.1–1000.
    pub barrier_tau_h: f64,
}

impl Default for Tissue {
    fn default() -> Self {
        let [e, p, r] = Site::FaceCheek.thicknesses_um();
        Tissue {
            site: Site::FaceCheek,
            domain_um: [1900.0, 1900.0],
            voxel_um: 20.0,
            patient_age_years: 45.0,
            epidermis_um: e,
            papillary_um: p,
            reticular_um: r,
            papillary_fibroblasts_per_mm3: 6000.0,
            reticular_fibroblasts_per_mm3: 2500.0,
            papillary_collagen_ug_per_mm3: 180.0,
            reticular_collagen_ug_per_mm3: 250.0,
            papillary_col3_fraction: 0.20,
            reticular_col3_fraction: 0.12,
            papillary_elastin_ug_per_mm3: 6.0,
            reticular_elastin_ug_per_mm3: 9.0,
        }
    }
}

impl Device {
    /// The defaults of a device kind.
    pub fn defaults(kind: DeviceKind) -> Self {
        Device {
            kind,
            needle_length_mm: 1.0,
            penetration_fraction: if kind == DeviceKind::Roller { 0.3 } else { 0.5 },
            channel_radius_um: 35.0,
            density_per_cm2: 250.0,
            pattern: match kind {
                DeviceKind::Stamp | DeviceKind::Roller => Pattern::Grid,
                _ => Pattern::JitteredGrid,
            },
            tilt_deg: if kind == DeviceKind::Roller {
                15.0
            } else {
                0.0
            },
            roller_needles: 192.0,
            roller_width_mm: 20.0,
            roller_diameter_mm: 18.0,
            passes: match kind {
                DeviceKind::Roller => 15,
                _ => 1,
            },
            pitch_um: 600.0,
            fragmentation: 0.9,
            halo_damage: 0.3,
            halo_length_um: 30.0,
            bleeding_margin_um: 50.0,
        }
    }
}

impl Default for Device {
    fn default() -> Self {
        Device::defaults(DeviceKind::Pen)
    }
}

impl Default for Schedule {
    fn default() -> Self {
        Schedule {
            days: vec![0.0, 28.0, 56.0],
            follow_up_days: 180.0,
            overrides: Vec::new(),
        }
    }
}

impl Default for Output {
    fn default() -> Self {
        Output {
            interval_days: 1.0,
            fine_interval_h: 6.0,
            snapshot_days: vec![7.0, 86.0, 146.0, 236.0],
            metric_days_after_last: vec![30.0, 90.0, 180.0],
            control: true,
            section_y_um: 950.0,
        }
    }
}

impl Default for Numerics {
    fn default() -> Self {
        Numerics {
            dt_h: 0.25,
            slow_interval_h: 2.0,
            burn_in_days: 120.0,
            settle_after_days: 3.0,
            settle_step_h: 1.0,
            fast_forward: true,
            max_dt_h: 24.0,
            max_memory_gib: 8.0,
            signal_voxel_um: 0.0,
            max_steps: 5_000_000,
        }
    }
}

impl Default for Immune {
    fn default() -> Self {
        Immune {
            neutrophil_recruitment_per_h: 0.073,
            neutrophil_clearance_per_day: 1.0,
            macrophage_recruitment_per_h: 0.034,
            macrophage_clearance_per_day: 0.5,
            macrophage_diffusion_um2_per_h: 100.0,
            damage_half_life_h: 48.0,
            platelet_tau_h: 12.0,
        }
    }
}

impl Default for Signals {
    fn default() -> Self {
        Signals {
            pdgf_diffusion_um2_per_h: 108_000.0,
            pdgf_decay_per_h: 0.5,
            tgfb_diffusion_um2_per_h: 108_000.0,
            tgfb_decay_per_h: 0.625,
            protease_diffusion_um2_per_h: 36_000.0,
            protease_decay_per_h: 0.25,
            pdgf_platelet_ng_per_ml_h: 1500.0,
            tgfb_platelet_ng_per_ml_h: 750.0,
            pdgf_macrophage_ng_per_ml_h: 200.0,
            tgfb_macrophage_ng_per_ml_h: 100.0,
            protease_macrophage_ng_per_ml_h: 7.0,
            pdgf_fibroblast_ng_per_ml_h: 0.004,
            tgfb_fibroblast_ng_per_ml_h: 0.004,
            protease_fibroblast_ng_per_ml_h: 0.01,
        }
    }
}

impl Default for Matrix {
    fn default() -> Self {
        Matrix {
            collagen_half_life_years: 15.0,
            elastin_residence_years: 74.0,
            ageing_drift_per_year: 0.01,
            neo_col3_half_life_weeks: 4.0,
            neo_col1_half_life_years: 1.0,
            neo_elastin_half_life_weeks: 8.0,
            protease_col1_per_h_per_ng_ml: 2e-4,
            protease_col3_factor: 2.0,
            protease_elastin_factor: 3.0,
            fibrin_half_life_days: 3.0,
            fibrin_protease_ng_per_ml: 1.0,
            collagen_max_ug_per_mm3: 400.0,
        }
    }
}

impl Default for Fibroblasts {
    fn default() -> Self {
        Fibroblasts {
            signal_pdgf_half_ng_per_ml: 1.0,
            signal_tgfb_half_ng_per_ml: 0.5,
            activation_threshold: 0.05,
            activation_rate_per_h: 0.2,
            deactivation_rate_per_h: 0.012,
            myofibroblast_rate_per_h: 0.01,
            myofibroblast_tgfb_half_ng_per_ml: 0.5,
            myofibroblast_min_activation_days: 5.0,
            myofibroblast_fibrin_min: 0.02,
            myofibroblast_death_per_h: 0.01,
            myofibroblast_crowding_factor: 0.0,
            division_rate_per_h: 0.05,
            division_pdgf_half_ng_per_ml: 1.0,
            density_cap: 3.0,
            quiescent_turnover_per_day: 0.05,
            apoptosis_per_day: 0.12,
            apoptosis_density: 1.5,
            density_sigma_xy_um: 100.0,
            density_sigma_z_um: 30.0,
            persistence_h: 2.0,
            chemotaxis_bias: 0.5,
            chemotaxis_gradient_half_ng_per_ml_um: 0.002,
            speed_quiescent_um_per_h: 1.0,
            speed_activated_um_per_h: 20.0,
            speed_myofibroblast_um_per_h: 5.0,
            speed_min_factor: 0.2,
            synthesis_pg_per_cell_day: 140.0,
            myofibroblast_synthesis_factor: 2.0,
            synthesis_tail_days: 22.0,
            col3_share_initial: 0.7,
            col3_share_final: 0.1,
            col3_switch_days: 14.0,
            elastin_ratio_papillary: 0.01,
            elastin_ratio_reticular: 0.003,
            daughter_distance_um: 5.0,
        }
    }
}

impl Default for Epidermis {
    fn default() -> Self {
        Epidermis {
            relaxation_days: 7.0,
            thickening_gain: 1.0,
            barrier_tau_h: 4.0,
        }
    }
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            name: "default".into(),
            description: String::new(),
            seed: 1,
            tissue: Tissue::default(),
            device: Device::default(),
            schedule: Schedule::default(),
            output: Output::default(),
            numerics: Numerics::default(),
            model: Model::default(),
        }
    }
}

impl Scenario {
    /// Day the simulation ends: last session (or 0) plus the follow-up.
    pub fn end_day(&self) -> f64 {
        self.schedule.days.last().copied().unwrap_or(0.0) + self.schedule.follow_up_days
    }

    /// The device used at session `index` (from 0).
    pub fn device_for_session(&self, index: usize) -> &Device {
        self.schedule
            .overrides
            .iter()
            .find(|o| o.session as usize == index + 1)
            .map(|o| &o.device)
            .unwrap_or(&self.device)
    }
}
