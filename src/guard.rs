//! Guards that keep a run from producing or losing results silently:
//!
//! - numerical: [`check_state`] scans a sampled simulation for non-finite or negative values
//!   (fields, matrix pools, cell positions, epidermis) and names the field, the voxel, the
//!   time and the scenario keys most likely responsible;
//! - resources: [`Resources`] estimates memory and disk before a run or sweep starts and
//!   [`Resources::check`] refuses one that would not fit the machine; [`parallel_runs`] bounds
//!   how many sweep runs may share the memory.

use std::fmt;
use std::path::Path;

use crate::scenario::{self, Scenario};
use crate::sim::Simulation;

/// Field (as named in messages) → the scenario keys that drive it.
pub const RESPONSIBLE: &[(&str, &[&str])] = &[
    (
        "neutrophils",
        &["model.immune.neutrophil_*", "device.halo_damage"],
    ),
    (
        "damage",
        &["device.halo_damage", "model.immune.damage_half_life_h"],
    ),
    (
        "platelets",
        &["model.immune.platelet_tau_h", "device.bleeding_margin_um"],
    ),
    ("macrophages", &["model.immune.macrophage_*"]),
    (
        "pdgf",
        &[
            "model.signals.pdgf_*",
            "model.fibroblasts.signal_pdgf_half_ng_per_ml",
            "numerics.dt_h",
        ],
    ),
    (
        "tgfb",
        &[
            "model.signals.tgfb_*",
            "model.fibroblasts.signal_tgfb_half_ng_per_ml",
            "numerics.dt_h",
        ],
    ),
    ("protease", &["model.signals.protease_*", "numerics.dt_h"]),
    (
        "collagen",
        &[
            "model.fibroblasts.synthesis_pg_per_cell_day",
            "model.matrix.*",
            "tissue.*_collagen_ug_per_mm3",
        ],
    ),
    (
        "elastin",
        &[
            "model.fibroblasts.elastin_ratio_*",
            "model.matrix.elastin_residence_years",
            "model.matrix.neo_elastin_half_life_weeks",
            "model.matrix.protease_elastin_factor",
        ],
    ),
    (
        "fibrin",
        &[
            "model.matrix.fibrin_half_life_days",
            "model.matrix.fibrin_protease_ng_per_ml",
            "device.bleeding_margin_um",
        ],
    ),
    (
        "deposits",
        &[
            "model.fibroblasts.synthesis_pg_per_cell_day",
            "model.fibroblasts.myofibroblast_synthesis_factor",
        ],
    ),
    (
        "cell position",
        &[
            "model.fibroblasts.speed_*",
            "model.fibroblasts.chemotaxis_*",
            "model.fibroblasts.persistence_h",
            "numerics.dt_h",
        ],
    ),
    ("epidermis", &["model.epidermis.*", "tissue.epidermis_um"]),
];

/// The keys most likely responsible for a bad value in `field`.
pub fn responsible(field: &str) -> &'static [&'static str] {
    RESPONSIBLE
        .iter()
        .find(|(f, _)| field.starts_with(f))
        .map(|(_, k)| *k)
        .unwrap_or(&[])
}

/// A value of the state that is not finite, or negative where it cannot be.
#[derive(Debug, Clone, PartialEq)]
pub struct NumericalError {
    /// The field, e.g. `pdgf`, `collagen (neo I)`, `cell position`.
    pub field: String,
    /// The arm, `treated` or `control`.
    pub arm: &'static str,
    /// The value found.
    pub value: f64,
    /// Voxel indices (x, y, z).
    pub voxel: [usize; 3],
    /// Centre of the voxel (or the cell position), µm.
    pub at_um: [f64; 3],
    /// Engine tick and day of the sample.
    pub tick: u64,
    /// Day of the sample.
    pub day: f64,
    /// Scenario keys most likely responsible.
    pub keys: &'static [&'static str],
}

impl fmt::Display for NumericalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = if self.value.is_finite() {
            "negative"
        } else {
            "non-finite"
        };
        let [x, y, z] = self.voxel;
        let [ux, uy, uz] = self.at_um;
        let place = if x == usize::MAX {
            format!("a cell at ({ux}, {uy}, {uz}) µm")
        } else {
            format!("voxel (x {x}, y {y}, z {z}) = ({ux:.0}, {uy:.0}, {uz:.0}) µm")
        };
        write!(
            f,
            "numerical failure: {what} {} = {} in the {} arm at {place}, step {} (day {:.3}); \
             parameters most likely responsible: {}",
            self.field,
            self.value,
            self.arm,
            self.tick,
            self.day,
            self.keys.join(", ")
        )
    }
}

impl std::error::Error for NumericalError {}

pub use crate::sim::sums::acceptable;

/// The fields the guard checks (f32 per voxel), by the names its messages use. The sampling
/// pass checks the same list ([`crate::observe::sample::plane_sums`]), so a field added here is
/// checked there too.
pub fn guarded_fields(sim: &Simulation) -> [(&'static str, &[f32]); 7] {
    let f = &sim.fields;
    let [p, t, c] = f.on_voxels();
    [
        ("neutrophils", &f.n),
        ("damage", &f.w),
        ("platelets", &f.plt),
        ("macrophages", &f.m),
        ("pdgf", p),
        ("tgfb", t),
        ("protease", c),
    ]
}

/// The matrix pools the guard checks (f64 per voxel), as [`guarded_fields`]; the pending
/// deposits (`matrix.dep`, three per voxel) are checked besides. The order is that of
/// [`crate::sim::sums::PoolSums`], in which the matrix update also sums its planes.
pub fn guarded_pools(sim: &Simulation) -> [(&'static str, &[f64]); 8] {
    let m = &sim.matrix;
    [
        ("collagen (I)", &m.col1),
        ("collagen (III)", &m.col3),
        ("collagen (neo I)", &m.n1),
        ("collagen (neo III)", &m.n3),
        ("collagen (total)", &m.total),
        ("elastin", &m.el),
        ("elastin (neo)", &m.ne),
        ("fibrin", &m.fibrin),
    ]
}

/// The error for value `value` of `field` at voxel `i` (or a cell, with `i` 0) of `sim`.
fn error_at(sim: &Simulation, field: &str, value: f64, i: usize) -> NumericalError {
    let g = &sim.geom;
    let plane = g.plane();
    let (x, y, z) = (i % g.nx, (i % plane) / g.nx, i / plane);
    let c = |k: usize| (k as f64 + 0.5) * g.h;
    NumericalError {
        field: field.to_string(),
        arm: sim.arm.name(),
        value,
        voxel: [x, y, z],
        at_um: [c(x), c(y), c(z)],
        tick: sim.tick,
        day: sim.day(),
        keys: responsible(field),
    }
}

/// Checks the sampled state (call after `sync_matrix`) for non-finite values anywhere and for
/// negative values in quantities that cannot be negative; the first offender is reported.
pub fn check_state(sim: &Simulation) -> Result<(), Box<NumericalError>> {
    let err = |field: &str, value: f64, i: usize| error_at(sim, field, value, i);
    let bad = |v: f64| !acceptable(v);
    for (name, v) in guarded_fields(sim) {
        if let Some(i) = v.iter().position(|&x| bad(x as f64)) {
            return Err(Box::new(err(name, v[i] as f64, i)));
        }
    }
    for (name, v) in guarded_pools(sim) {
        if let Some(i) = v.iter().position(|&x| bad(x)) {
            return Err(Box::new(err(name, v[i], i)));
        }
    }
    let m = &sim.matrix;
    if let Some(i) = m.dep.iter().position(|d| d.iter().any(|&x| bad(x))) {
        let v = m.dep[i]
            .iter()
            .copied()
            .find(|&x| bad(x))
            .unwrap_or(f64::NAN);
        return Err(Box::new(err("deposits", v, i)));
    }
    check_cells(sim)
}

/// The part of [`check_state`] that is not a grid scan: cell positions and the epidermis.
pub fn check_cells(sim: &Simulation) -> Result<(), Box<NumericalError>> {
    let err = |field: &str, value: f64, i: usize| error_at(sim, field, value, i);
    let bad = |v: f64| !acceptable(v);
    if let Some(k) = sim
        .cells
        .pos
        .iter()
        .position(|p| p.iter().any(|v| !v.is_finite()))
    {
        let p = sim.cells.pos[k];
        let v = p
            .iter()
            .copied()
            .find(|v| !v.is_finite())
            .unwrap_or(f64::NAN);
        let mut e = err("cell position", v, 0);
        e.at_um = p;
        e.voxel = [usize::MAX; 3];
        return Err(Box::new(e));
    }
    if let Some(col) = sim.epidermis.iter().position(|&x| bad(x)) {
        return Err(Box::new(err("epidermis", sim.epidermis[col], col)));
    }
    Ok(())
}

/// Bytes in a MiB.
pub const MIB: f64 = 1024.0 * 1024.0;
/// CSV bytes of one global row (generous: every column at full precision).
pub const GLOBAL_ROW_BYTES: u64 = 400;
/// CSV bytes of one region row.
pub const REGION_ROW_BYTES: u64 = 300;
/// CSV bytes of one profile row.
pub const PROFILE_ROW_BYTES: u64 = 250;
/// CSV bytes of one section row.
pub const SECTION_ROW_BYTES: u64 = 120;
/// Charts (PNG and SVG), report and small files of one run.
pub const FIXED_BYTES: u64 = 8 * 1024 * 1024;
/// Checkpoint bytes per voxel (fields, matrix, deposits, ρ, ∫C dt) and per cell.
pub const CHECKPOINT_VOXEL_BYTES: u64 = 7 * 4 + 9 * 8 + 3 * 8 + 2 * 4;
/// Checkpoint bytes per cell.
pub const CHECKPOINT_CELL_BYTES: u64 = 8 + 6 * 8 + 1 + 2 * 8 + 1;

/// What a run needs and what the machine has.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Resources {
    /// Memory of the run, bytes.
    pub memory_bytes: u64,
    /// Output files of the run (and the checkpoint, when one is kept), bytes.
    pub disk_bytes: u64,
}

/// Disk needed by the output files of `s` (plus a checkpoint if `checkpoint`).
pub fn disk_bytes(s: &Scenario, checkpoint: bool) -> u64 {
    let e = scenario::estimate(s);
    let t = &s.tissue;
    let nx = (t.domain_um[0] / t.voxel_um).ceil() as u64;
    let nz = ((t.epidermis_um + t.papillary_um + t.reticular_um) / t.voxel_um).ceil() as u64;
    let end_h = s.end_day() * 24.0;
    let fine = (end_h / s.output.fine_interval_h.max(1e-9)).ceil() as u64;
    let coarse = (s.end_day() / s.output.interval_days.max(1e-9)).ceil() as u64
        + 2
        + s.output.metric_days_after_last.len() as u64
        + s.output.snapshot_days.len() as u64;
    let snaps = s.output.snapshot_days.len() as u64 + 1;
    let arms = if s.output.control { 2 } else { 1 };
    let csv = arms
        * ((fine + coarse) * GLOBAL_ROW_BYTES
            + coarse * 3 * REGION_ROW_BYTES
            + snaps * nz * PROFILE_ROW_BYTES)
        + snaps * nx * nz * SECTION_ROW_BYTES;
    let ckpt = if checkpoint {
        arms * (e.voxels * CHECKPOINT_VOXEL_BYTES + e.agents_peak * CHECKPOINT_CELL_BYTES) + csv
    } else {
        0
    };
    // A checkpoint is replaced atomically: the old and the new one coexist for a moment.
    csv.saturating_add(FIXED_BYTES)
        .saturating_add(ckpt.saturating_mul(2))
}

impl Resources {
    /// The estimate of one run of `s`.
    pub fn of(s: &Scenario, checkpoint: bool) -> Self {
        Resources {
            memory_bytes: scenario::estimate(s).memory_bytes,
            disk_bytes: disk_bytes(s, checkpoint),
        }
    }

    /// One line: `≈ 12.3 MiB memory, ≈ 4.5 MiB disk`.
    pub fn describe(&self) -> String {
        format!(
            "≈ {:.1} MiB memory, ≈ {:.1} MiB disk",
            self.memory_bytes as f64 / MIB,
            self.disk_bytes as f64 / MIB
        )
    }

    /// Refuses a run that exceeds `max_memory_gib`, the memory the machine has available, or
    /// the free space where its outputs go (`dir`, or its nearest existing ancestor). `None`
    /// for a quantity that cannot be read means "do not check it".
    pub fn check(
        &self,
        max_memory_gib: f64,
        available_memory: Option<u64>,
        free_disk: Option<u64>,
        dir: &Path,
    ) -> Result<(), String> {
        let need = self.describe();
        let cap = max_memory_gib * scenario::estimate::GIB;
        if self.memory_bytes as f64 > cap {
            return Err(format!(
                "the run needs {need}, more memory than numerics.max_memory_gib = \
                 {max_memory_gib} allows"
            ));
        }
        if let Some(avail) = available_memory
            && self.memory_bytes > avail
        {
            return Err(format!(
                "the run needs {need}, but only {:.1} MiB of memory is available \
                 (MemAvailable); free memory or make the block smaller (tissue.domain_um, \
                 tissue.voxel_um)",
                avail as f64 / MIB
            ));
        }
        if let Some(free) = free_disk
            && self.disk_bytes > free
        {
            return Err(format!(
                "the run needs {need}, but {} has only {:.2} MiB free; free space or choose \
                 another --out",
                dir.display(),
                free as f64 / MIB
            ));
        }
        Ok(())
    }
}

/// Memory the machine has available (`MemAvailable` of /proc/meminfo), bytes; None where
/// unknown.
pub fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib.saturating_mul(1024))
}

/// Free bytes (for an unprivileged user) on the file system holding `path` or, when it does
/// not exist yet, its nearest existing ancestor; None where unknown.
pub fn free_disk(path: &Path) -> Option<u64> {
    let abs = std::path::absolute(path).ok()?;
    let existing = abs.ancestors().find(|p| p.exists())?;
    let c = std::ffi::CString::new(existing.as_os_str().as_encoded_bytes()).ok()?;
    let mut st = std::mem::MaybeUninit::<libc::statvfs>::zeroed();
    // SAFETY: `c` is a valid NUL-terminated path and `st` points to writable memory of the
    // right type; statvfs only writes into it.
    let rc = unsafe { libc::statvfs(c.as_ptr(), st.as_mut_ptr()) };
    if rc != 0 {
        return None;
    }
    // SAFETY: statvfs returned 0, so it filled the structure.
    let st = unsafe { st.assume_init() };
    #[allow(clippy::unnecessary_cast)]
    Some((st.f_bavail as u64).saturating_mul(st.f_frsize as u64))
}

/// How many sweep runs of `per_run_bytes` each may run at once in `available` bytes (at
/// least 1; no limit beyond `threads` when the memory is unknown).
pub fn parallel_runs(available: Option<u64>, per_run_bytes: u64, threads: usize) -> usize {
    let threads = threads.max(1);
    match available {
        Some(a) if per_run_bytes > 0 => ((a / per_run_bytes) as usize).clamp(1, threads),
        _ => threads,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parallel_runs_follow_memory() {
        assert_eq!(parallel_runs(Some(10), 3, 16), 3);
        assert_eq!(parallel_runs(Some(1), 3, 16), 1);
        assert_eq!(parallel_runs(Some(100), 3, 4), 4);
        assert_eq!(parallel_runs(None, 3, 4), 4);
    }

    #[test]
    fn every_field_has_keys() {
        for f in [
            "pdgf",
            "tgfb",
            "protease",
            "collagen (neo I)",
            "elastin",
            "fibrin",
            "cell position",
            "epidermis",
        ] {
            assert!(!responsible(f).is_empty(), "{f}");
        }
    }
}
