//! The recorded results of a run, as plain data: the rows of every CSV file and the summary.
//!
//! This is the contract between the engine (which fills these records), the writers (which
//! store them under the run directory) and the charts and report (which read them back and
//! never see a simulation). Column names carry their units.
//!
//! Files of a run directory:
//! - `timeseries.csv`: [`RegionRow`] per output day, arm and region (layers and 60 µm bands);
//! - `global.csv`: [`GlobalRow`] at a finer cadence (default every 6 h while active);
//! - `profiles.csv`: [`ProfileRow`] per voxel layer of the dermis at snapshot days;
//! - `sections.csv`: [`SectionRow`] x–z cross-section of the treated arm at snapshot days;
//! - `channels.csv`: [`ChannelRow`] one per microchannel;
//! - `summary.json`: [`Summary`]; `manifest.json`: the resolved scenario, seed, version, timings.

use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// File names inside a run directory.
pub mod files {
    /// Per-region time series.
    pub const TIMESERIES: &str = "timeseries.csv";
    /// Whole-block time series at a fine cadence.
    pub const GLOBAL: &str = "global.csv";
    /// Depth profiles at snapshot days.
    pub const PROFILES: &str = "profiles.csv";
    /// x–z cross-sections at snapshot days.
    pub const SECTIONS: &str = "sections.csv";
    /// Channel list.
    pub const CHANNELS: &str = "channels.csv";
    /// Metrics and context.
    pub const SUMMARY: &str = "summary.json";
    /// Resolved scenario, seed, version, wall time.
    pub const MANIFEST: &str = "manifest.json";
}

/// Which simulation a row belongs to.
pub const ARM_TREATED: &str = "treated";
/// The untreated control: same seed, no sessions.
pub const ARM_CONTROL: &str = "control";

/// Matrix, cells and fields averaged over one region (a layer or a 60 µm depth band).
/// Densities are means over the region's voxels.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RegionRow {
    /// `treated` or `control`.
    pub arm: String,
    /// Time since the start of the simulation, days.
    pub day: f64,
    /// `papillary`, `reticular`, `dermis` or `band` (a 60 µm depth band).
    pub region: String,
    /// Top of the region, µm below the skin surface.
    pub z_top_um: f64,
    /// Bottom of the region, µm below the skin surface.
    pub z_bottom_um: f64,
    /// Native collagen I.
    pub col1_native_ug_per_mm3: f64,
    /// Native collagen III.
    pub col3_native_ug_per_mm3: f64,
    /// Treatment-born collagen I.
    pub col1_neo_ug_per_mm3: f64,
    /// Treatment-born collagen III.
    pub col3_neo_ug_per_mm3: f64,
    /// All four collagen pools.
    pub collagen_total_ug_per_mm3: f64,
    /// Native elastin.
    pub elastin_native_ug_per_mm3: f64,
    /// Treatment-born elastin.
    pub elastin_neo_ug_per_mm3: f64,
    /// Provisional fibrin matrix, 0–1.
    pub fibrin_rel: f64,
    /// Quiescent fibroblasts in the region (count).
    pub quiescent_cells: u64,
    /// Activated fibroblasts (count).
    pub activated_cells: u64,
    /// Myofibroblasts (count).
    pub myofibroblasts: u64,
    /// All fibroblasts per mm³.
    pub cells_per_mm3: f64,
    /// Cell count relative to the region's baseline n_base × volume.
    pub cell_density_rel: f64,
    /// Neutrophil-like signal (dimensionless).
    pub neutrophils_rel: f64,
    /// Macrophage-like signal (dimensionless).
    pub macrophages_rel: f64,
    /// PDGF.
    pub pdgf_ng_per_ml: f64,
    /// Active TGF-β.
    pub tgfb_ng_per_ml: f64,
    /// Protease (MMP-like).
    pub protease_ng_per_ml: f64,
    /// Tissue damage W, 0–1.
    pub damage_rel: f64,
}

/// Whole-block quantities at a fine cadence.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GlobalRow {
    /// `treated` or `control`.
    pub arm: String,
    /// Days since the start.
    pub day: f64,
    /// Time step in use at this moment, h (larger during quiet fast-forward).
    pub dt_h: f64,
    /// Quiescent fibroblasts (count, whole block).
    pub quiescent_cells: u64,
    /// Activated fibroblasts.
    pub activated_cells: u64,
    /// Myofibroblasts.
    pub myofibroblasts: u64,
    /// Quiescent cells still in their synthetic tail, weighted by it: Σ e^(−τ_q/τ_syn) over
    /// the quiescent cells that have been activated (cell equivalents of full synthesis).
    pub tail_cells: f64,
    /// Mean neutrophil signal over the dermis.
    pub neutrophils_rel: f64,
    /// Mean neutrophil signal over the papillary dermis (erythema proxy).
    pub neutrophils_papillary_rel: f64,
    /// Mean macrophage signal over the dermis.
    pub macrophages_rel: f64,
    /// Mean PDGF over the dermis.
    pub pdgf_ng_per_ml: f64,
    /// Mean TGF-β over the dermis.
    pub tgfb_ng_per_ml: f64,
    /// Mean protease over the dermis.
    pub protease_ng_per_ml: f64,
    /// Highest PDGF in any voxel.
    pub pdgf_max_ng_per_ml: f64,
    /// Highest TGF-β in any voxel.
    pub tgfb_max_ng_per_ml: f64,
    /// Mean damage over the dermis.
    pub damage_rel: f64,
    /// Mean fibrin over the dermis.
    pub fibrin_rel: f64,
    /// Rate of neo collagen III deposition, µg per mm² of skin surface per day.
    pub neo_col3_deposition_ug_per_mm2_day: f64,
    /// Rate of neo collagen I deposition, µg/mm²/day.
    pub neo_col1_deposition_ug_per_mm2_day: f64,
    /// Mean epidermal thickness, µm.
    pub epidermis_um: f64,
    /// Fraction of the skin surface covered by open channels (barrier not yet restored).
    pub open_channel_area_fraction: f64,
}

/// One voxel layer of the dermis at a snapshot day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProfileRow {
    /// `treated` or `control`.
    pub arm: String,
    /// Snapshot day.
    pub day: f64,
    /// Top of the voxel layer, µm.
    pub z_top_um: f64,
    /// Bottom of the voxel layer, µm.
    pub z_bottom_um: f64,
    /// `papillary` or `reticular`.
    pub layer: String,
    /// Mean native collagen I.
    pub col1_native_ug_per_mm3: f64,
    /// Mean native collagen III.
    pub col3_native_ug_per_mm3: f64,
    /// Mean neo collagen I.
    pub col1_neo_ug_per_mm3: f64,
    /// Mean neo collagen III.
    pub col3_neo_ug_per_mm3: f64,
    /// Mean total collagen.
    pub collagen_total_ug_per_mm3: f64,
    /// Mean total elastin (native + neo).
    pub elastin_total_ug_per_mm3: f64,
    /// Cells in the layer relative to baseline.
    pub cell_density_rel: f64,
}

/// One voxel of the x–z cross-section (treated arm) at a snapshot day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SectionRow {
    /// Snapshot day.
    pub day: f64,
    /// y position of the section plane, µm.
    pub y_um: f64,
    /// Voxel centre x, µm.
    pub x_um: f64,
    /// Voxel centre depth, µm.
    pub z_um: f64,
    /// Neo collagen (I + III).
    pub neo_collagen_ug_per_mm3: f64,
    /// All collagen pools.
    pub collagen_total_ug_per_mm3: f64,
    /// Smoothed fibroblast density relative to baseline (ρ); 0 in the epidermis.
    pub fibroblast_density_rel: f64,
}

/// One microchannel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChannelRow {
    /// Session number, from 1.
    pub session: u32,
    /// Day of the session.
    pub day: f64,
    /// Surface centre x, µm.
    pub x_um: f64,
    /// Surface centre y, µm.
    pub y_um: f64,
    /// Tip x, µm (differs from `x_um` for tilted channels).
    pub tip_x_um: f64,
    /// Tip y, µm.
    pub tip_y_um: f64,
    /// Tip depth below the surface, µm.
    pub depth_um: f64,
    /// Cone radius at the surface, µm.
    pub radius_um: f64,
    /// Whether the channel reached the papillary capillaries and bled.
    pub bleeding: bool,
}

/// Tissue geometry as realised on the grid.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TissueSummary {
    /// Body-site preset name.
    pub site: String,
    /// Block width in x, µm.
    pub domain_x_um: f64,
    /// Block width in y, µm.
    pub domain_y_um: f64,
    /// Voxel edge, µm.
    pub voxel_um: f64,
    /// Realised epidermis thickness, µm.
    pub epidermis_um: f64,
    /// Realised papillary dermis thickness, µm.
    pub papillary_um: f64,
    /// Realised reticular dermis thickness, µm.
    pub reticular_um: f64,
    /// Patient age, years.
    pub patient_age_years: f64,
    /// Age factor a of the model (1 at 25 years).
    pub age_factor: f64,
}

/// The treatment as applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreatmentSummary {
    /// Device kind of the first session (`pen`, `roller`, `stamp`, `custom`).
    pub device: String,
    /// Needle length of the first session, mm.
    pub needle_length_mm: f64,
    /// Channel tip depth of the first session, µm.
    pub penetration_depth_um: f64,
    /// Day of each session.
    pub session_days: Vec<f64>,
    /// Realised channel density of each session, per cm².
    pub channels_per_cm2: Vec<f64>,
    /// Bleeding channels per cm², mean over sessions.
    pub bleeding_channels_per_cm2: f64,
}

/// Per-layer values.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub struct ByLayer {
    /// Papillary dermis.
    pub papillary: f64,
    /// Reticular dermis.
    pub reticular: f64,
    /// Whole dermis.
    pub dermis: f64,
}

/// Metrics at one chosen day, against the untreated control.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayMetrics {
    /// Absolute day.
    pub day: f64,
    /// Days after the last session.
    pub days_after_last_session: f64,
    /// Collagen (all pools) over control − 1, %.
    pub collagen_gain_pct: ByLayer,
    /// Collagen I (native + neo) over control − 1, %.
    pub collagen1_gain_pct: ByLayer,
    /// Collagen III (native + neo) over control − 1, %.
    pub collagen3_gain_pct: ByLayer,
    /// Elastin (native + neo) over control − 1, %.
    pub elastin_gain_pct: ByLayer,
    /// Neo collagen (I + III) per mm² of skin surface, µg/mm².
    pub neocollagen_ug_per_mm2: f64,
    /// Relative cell density (cells ÷ baseline).
    pub cell_density_rel: ByLayer,
    /// Epidermal thickness over control − 1, %.
    pub epidermis_change_pct: f64,
}

/// The metrics of a run (docs/model.md §8).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metrics {
    /// Metrics at the chosen days.
    pub at_days: Vec<DayMetrics>,
    /// Highest collagen III (native + neo, dermis) over control, %.
    pub peak_collagen3_gain_pct: f64,
    /// Day of that peak.
    pub peak_collagen3_day: f64,
    /// Day of the neutrophil peak after the first session (days after that session).
    pub neutrophil_peak_days_after_session: f64,
    /// Day of the peak count of activated fibroblasts after the first session.
    pub activated_peak_days_after_session: f64,
    /// Day of the peak count of myofibroblasts after the first session.
    pub myofibroblast_peak_days_after_session: f64,
    /// Depth centroid of neo collagen at the last metric day, µm below the surface.
    pub neo_collagen_depth_centroid_um: f64,
    /// Bleeding channels per cm² per session.
    pub bleeding_channels_per_cm2: f64,
    /// Days during which papillary N exceeded 50 % of its peak (erythema proxy), summed over sessions.
    pub erythema_days: f64,
    /// Activated-cell-days per session, in units of the block's baseline cell count × day.
    pub activated_cell_days_per_session: f64,
    /// Tail-cell-days per session: ∫ `tail_cells` dt, in units of the block's baseline cell
    /// count × day (calibration target ≈ 30, docs/calibration.md step 3).
    pub tail_cell_days_per_session: f64,
}

/// `summary.json`: context and metrics; identical for identical scenario and seed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Scenario name.
    pub scenario: String,
    /// Random seed.
    pub seed: u64,
    /// fibrosim version.
    pub version: String,
    /// Whether the run reached its end (false: interrupted or stopped by a guard).
    pub complete: bool,
    /// Last simulated day.
    pub end_day: f64,
    /// Tissue geometry.
    pub tissue: TissueSummary,
    /// Treatment as applied.
    pub treatment: TreatmentSummary,
    /// Metrics against the control; absent when no control arm was run.
    pub metrics: Option<Metrics>,
}

/// Everything a run directory holds, read back for charts and reports.
#[derive(Debug, Clone)]
pub struct RunRecord {
    /// Per-region series.
    pub regions: Vec<RegionRow>,
    /// Whole-block series.
    pub global: Vec<GlobalRow>,
    /// Depth profiles.
    pub profiles: Vec<ProfileRow>,
    /// Cross-sections.
    pub sections: Vec<SectionRow>,
    /// Channels.
    pub channels: Vec<ChannelRow>,
    /// Summary.
    pub summary: Summary,
}

/// Errors reading a run directory back; each names the file.
#[derive(Debug, thiserror::Error)]
pub enum RecordError {
    /// A file is missing.
    #[error("{path}: missing (is this a fibrosim run directory?)")]
    Missing {
        /// The expected file.
        path: PathBuf,
    },
    /// A file could not be parsed.
    #[error("{path}: {message}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// What is wrong, with the line where known.
        message: String,
    },
    /// Writing failed.
    #[error(transparent)]
    Fs(#[from] crate::fsutil::FsError),
}

/// Serialises rows as CSV with a header row.
pub fn to_csv<T: Serialize>(rows: &[T]) -> Vec<u8> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        // Rows are plain structs of numbers, strings and bools: serialisation cannot fail.
        w.serialize(r).expect("CSV serialisation of a plain row");
    }
    w.into_inner().expect("in-memory CSV writer")
}

/// Reads CSV rows from `path`, naming the file and line of any error.
pub fn read_csv<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<Vec<T>, RecordError> {
    if !path.is_file() {
        return Err(RecordError::Missing {
            path: path.to_path_buf(),
        });
    }
    let mut rdr = csv::Reader::from_path(path).map_err(|e| RecordError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    let mut out = Vec::new();
    for r in rdr.deserialize() {
        out.push(r.map_err(|e| RecordError::Corrupt {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?);
    }
    Ok(out)
}

/// Reads a JSON file, naming the file of any error.
pub fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, RecordError> {
    let text = std::fs::read_to_string(path).map_err(|_| RecordError::Missing {
        path: path.to_path_buf(),
    })?;
    serde_json::from_str(&text).map_err(|e| RecordError::Corrupt {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

impl RunRecord {
    /// Reads every file of a run directory.
    pub fn load(dir: &Path) -> Result<Self, RecordError> {
        Ok(RunRecord {
            regions: read_csv(&dir.join(files::TIMESERIES))?,
            global: read_csv(&dir.join(files::GLOBAL))?,
            profiles: read_csv(&dir.join(files::PROFILES))?,
            sections: read_csv(&dir.join(files::SECTIONS))?,
            channels: read_csv(&dir.join(files::CHANNELS))?,
            summary: read_json(&dir.join(files::SUMMARY))?,
        })
    }

    /// Writes every file of the record into `dir` (which must exist), atomically file by file.
    pub fn write(&self, dir: &Path) -> Result<(), RecordError> {
        use crate::fsutil::write_atomic;
        write_atomic(&dir.join(files::TIMESERIES), &to_csv(&self.regions))?;
        write_atomic(&dir.join(files::GLOBAL), &to_csv(&self.global))?;
        write_atomic(&dir.join(files::PROFILES), &to_csv(&self.profiles))?;
        write_atomic(&dir.join(files::SECTIONS), &to_csv(&self.sections))?;
        write_atomic(&dir.join(files::CHANNELS), &to_csv(&self.channels))?;
        let json = serde_json::to_vec_pretty(&self.summary).expect("summary serialises");
        write_atomic(&dir.join(files::SUMMARY), &json)?;
        Ok(())
    }
}
