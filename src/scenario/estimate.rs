//! Resource estimate of a scenario: voxels, fibroblast agents, memory and an upper bound on the
//! number of time steps; `validate` refuses scenarios beyond `numerics.max_memory_gib` or
//! `numerics.max_steps`.

use super::types::Scenario;

/// Bytes in a GiB.
pub const GIB: f64 = 1024.0 * 1024.0 * 1024.0;
/// Memory per voxel (all fields, both time levels), bytes.
pub const BYTES_PER_VOXEL: u64 = 220;
/// Memory per agent, bytes.
pub const BYTES_PER_AGENT: u64 = 120;
/// Peak agents ÷ baseline agents (proliferation after a session).
pub const PEAK_FACTOR: u64 = 3;

/// What a scenario needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    /// Voxels of the block: ceil(Lx/h)·ceil(Ly/h)·ceil(Z/h).
    pub voxels: u64,
    /// Fibroblasts at the start: Σ over dermal layers of density × volume × age factor.
    pub agents_baseline: u64,
    /// Fibroblasts at the proliferation peak (3 × baseline).
    pub agents_peak: u64,
    /// Memory of the run (both arms when the control runs alongside), bytes.
    pub memory_bytes: u64,
    /// Time steps if the fast-forward never engages: ceil(end day × 24 / dt_h).
    pub steps_upper_bound: u64,
}

/// Age factor of fibroblast density: max(0.5, 1 − 0.01·max(0, age − 25)).
pub fn age_factor(age_years: f64) -> f64 {
    (1.0 - 0.01 * (age_years - 25.0).max(0.0)).max(0.5)
}

/// Estimates what a (validated) scenario needs. Saturates rather than overflows.
pub fn estimate(s: &Scenario) -> Estimate {
    let t = &s.tissue;
    let h = t.voxel_um;
    let [lx, ly] = t.domain_um;
    let z = t.epidermis_um + t.papillary_um + t.reticular_um;
    let voxels = (lx / h).ceil() * (ly / h).ceil() * (z / h).ceil();
    let area_mm2 = lx * ly * 1e-6;
    let a = age_factor(t.patient_age_years);
    let agents = (t.papillary_fibroblasts_per_mm3 * area_mm2 * t.papillary_um * 1e-3
        + t.reticular_fibroblasts_per_mm3 * area_mm2 * t.reticular_um * 1e-3)
        * a;
    let agents_baseline = agents.round() as u64;
    let agents_peak = agents_baseline.saturating_mul(PEAK_FACTOR);
    let voxels = voxels as u64;
    let arms = if s.output.control { 2 } else { 1 };
    // Deposits wait for the matrix update (every MATRIX_SPAN_H h) in a bounded buffer.
    let steps_per_update = (crate::sim::MATRIX_SPAN_H / s.numerics.dt_h).ceil() as u64;
    let pending = agents_peak
        .saturating_mul(steps_per_update)
        .min(crate::sim::PENDING_DEPOSITS_MAX as u64)
        .saturating_mul(std::mem::size_of::<crate::sim::fibroblasts::Deposit>() as u64);
    let memory_bytes = voxels
        .saturating_mul(BYTES_PER_VOXEL)
        .saturating_add(agents_peak.saturating_mul(BYTES_PER_AGENT))
        .saturating_add(pending)
        .saturating_mul(arms);
    let steps_upper_bound = (s.end_day() * 24.0 / s.numerics.dt_h).ceil() as u64;
    Estimate {
        voxels,
        agents_baseline,
        agents_peak,
        memory_bytes,
        steps_upper_bound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_scenario_estimate() {
        let e = estimate(&Scenario::default());
        // 95 × 95 × 80 voxels of 20 µm over 1900 × 1900 × 1600 µm.
        assert_eq!(e.voxels, 95 * 95 * 80);
        // (6000 × 3.61 × 0.25 + 2500 × 3.61 × 1.3) × 0.8 at age 45.
        assert_eq!(e.agents_baseline, 13718);
        assert_eq!(e.agents_peak, 3 * 13718);
        // Pending deposits: 24 steps of 0.25 h per matrix update would hold more than the
        // buffer's bound of 2^17 deposits of 72 bytes.
        assert_eq!(
            e.memory_bytes,
            2 * (95 * 95 * 80 * 220 + 3 * 13718 * 120 + (1 << 17) * 72)
        );
        // (56 + 180) days × 24 h ÷ 0.25 h.
        assert_eq!(e.steps_upper_bound, 22656);
    }

    #[test]
    fn age_factor_is_floored() {
        assert_eq!(age_factor(20.0), 1.0);
        assert!((age_factor(45.0) - 0.8).abs() < 1e-12);
        assert_eq!(age_factor(100.0), 0.5);
    }
}
