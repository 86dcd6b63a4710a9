//! Sampling a running simulation into records: per-layer and per-band means, whole-block
//! series, depth profiles and cross-sections. Reads the simulation, never changes it.

use crate::guard;
use crate::observe::record::{GlobalRow, ProfileRow, RegionRow, SectionRow};
use crate::sim::Simulation;
use crate::sim::fibroblasts::CellState;
use crate::sim::sums::{LANES, PoolSums, pool_sums, sum_checked_wide};
use crate::sim::tissue::Layer;
use rayon::prelude::*;

/// Depth band thickness, voxel layers (60 µm at the default 20 µm voxels).
pub const BAND_LAYERS: usize = 3;

const COL1: usize = 0;
const COL3: usize = 1;
const N1: usize = 2;
const N3: usize = 3;
const EL: usize = 4;
const NE: usize = 5;
const FIB: usize = 6;
const NEU: usize = 7;
const MAC: usize = 8;
const PDGF: usize = 9;
const TGFB: usize = 10;
const PROT: usize = 11;
const DMG: usize = 12;
const NSUM: usize = 13;

/// Sums over one z-plane, in a fixed order.
#[derive(Debug, Clone, Copy)]
pub struct PlaneSums {
    s: [f64; NSUM],
    pmax: f64,
    tmax: f64,
    cells: [u64; 3],
    /// Every value of the plane that [`crate::guard::check_state`] checks is finite and not
    /// below −1e−9 (found in the same pass as the sums).
    clean: bool,
}

/// Whether every plane passed the numerical check made alongside the sums; when one did not,
/// [`crate::guard::check_state`] finds and names the offending value.
pub fn all_clean(sums: &[PlaneSums]) -> bool {
    sums.iter().all(|p| p.clean)
}

/// The sum slot of a guarded array ([`guard::guarded_fields`], [`guard::guarded_pools`]), or
/// None for one that no row reports.
fn slot(name: &str) -> Option<usize> {
    Some(match name {
        "collagen (I)" => COL1,
        "collagen (III)" => COL3,
        "collagen (neo I)" => N1,
        "collagen (neo III)" => N3,
        "elastin" => EL,
        "elastin (neo)" => NE,
        "fibrin" => FIB,
        "neutrophils" => NEU,
        "macrophages" => MAC,
        "pdgf" => PDGF,
        "tgfb" => TGFB,
        "protease" => PROT,
        "damage" => DMG,
        _ => return None,
    })
}

/// The largest value of a non-negative field (0 for an empty slice).
#[inline]
fn lane_max(v: &[f32]) -> f64 {
    let mut acc = [0.0f32; LANES];
    let chunks = v.chunks_exact(LANES);
    let rest = chunks.remainder();
    for c in chunks {
        for l in 0..LANES {
            acc[l] = acc[l].max(c[l]);
        }
    }
    for (l, &x) in rest.iter().enumerate() {
        acc[l] = acc[l].max(x);
    }
    acc.iter().fold(0.0f32, |a, &b| a.max(b)) as f64
}

/// Per-plane sums of every pool, field and cell count at the current time: one pass over the
/// grid, shared by all the rows of a sample. The same pass checks every value that the
/// numerical guard checks, so that a healthy sample reads the grid once.
///
/// `pools`, when given, are the checked sums of the pools of the planes from the dermis top
/// down, found by the matrix update that has just run ([`Simulation::sync_sampled`]): the
/// same numbers, so those planes' pools are not read again.
pub fn plane_sums(sim: &Simulation, pools: Option<&[PoolSums]>) -> Vec<PlaneSums> {
    let g = &sim.geom;
    let plane = g.plane();
    let m = &sim.matrix;
    let f = &sim.fields;
    let mut out: Vec<PlaneSums> = (0..g.nz)
        .into_par_iter()
        .map(|z| {
            let r = z * plane..(z + 1) * plane;
            let mut s = [0.0f64; NSUM];
            let mut clean = true;
            // Every array the numerical guard checks is checked here, and summed where a row
            // reports it.
            // The pools' sums: found by the matrix update that has just run, or read here.
            let given = pools.and_then(|p| z.checked_sub(g.z_pap).and_then(|k| p.get(k)));
            let read;
            let pool = match given {
                Some(p) => p,
                None => {
                    read = pool_sums(
                        guard::guarded_pools(sim).map(|(_, v)| &v[r.clone()]),
                        m.neo_live,
                    );
                    &read
                }
            };
            clean &= pool.clean;
            for ((name, _), &sum) in guard::guarded_pools(sim).iter().zip(&pool.sums) {
                if let Some(k) = slot(name) {
                    s[k] = sum;
                }
            }
            for (name, v) in guard::guarded_fields(sim) {
                let (sum, ok) = sum_checked_wide(&v[r.clone()]);
                clean &= ok;
                if let Some(k) = slot(name) {
                    s[k] = sum;
                }
            }
            // Deposits added early are consumed by the matrix update (`dep_live` false after it).
            if m.dep_live {
                clean &= sum_checked_wide(m.dep[r.clone()].as_flattened()).1;
            }
            let [pv, tv, _] = f.on_voxels();
            let pmax = lane_max(&pv[r.clone()]);
            let tmax = lane_max(&tv[r]);
            PlaneSums {
                s,
                pmax,
                tmax,
                cells: [0; 3],
                clean,
            }
        })
        .collect();
    for (p, st) in sim.cells.pos.iter().zip(&sim.cells.state) {
        let z = ((p[2] / g.h) as usize).min(g.nz - 1);
        out[z].cells[*st as usize] += 1;
    }
    out
}

fn region_row(
    sim: &Simulation,
    sums: &[PlaneSums],
    region: &str,
    z0: usize,
    z1: usize,
) -> Option<RegionRow> {
    let g = &sim.geom;
    let (d0, d1) = (z0.max(g.z_pap), z1.min(g.nz));
    if d1 <= d0 {
        return None;
    }
    let mut s = [0.0f64; NSUM];
    let mut cells = [0u64; 3];
    let mut base_cells = 0.0;
    for (z, ps) in sums.iter().enumerate().take(d1).skip(d0) {
        for (a, b) in s.iter_mut().zip(&ps.s) {
            *a += b;
        }
        for (a, b) in cells.iter_mut().zip(&ps.cells) {
            *a += b;
        }
        base_cells += g.baseline(g.layer_of_z(z)).cells_per_voxel * g.plane() as f64;
    }
    let nvox = ((d1 - d0) * g.plane()) as f64;
    let mean = |k: usize| s[k] / nvox;
    let total_cells = (cells[0] + cells[1] + cells[2]) as f64;
    Some(RegionRow {
        arm: sim.arm.name().into(),
        day: sim.day(),
        region: region.into(),
        z_top_um: z0 as f64 * g.h,
        z_bottom_um: z1 as f64 * g.h,
        col1_native_ug_per_mm3: mean(COL1),
        col3_native_ug_per_mm3: mean(COL3),
        col1_neo_ug_per_mm3: mean(N1),
        col3_neo_ug_per_mm3: mean(N3),
        collagen_total_ug_per_mm3: mean(COL1) + mean(COL3) + mean(N1) + mean(N3),
        elastin_native_ug_per_mm3: mean(EL),
        elastin_neo_ug_per_mm3: mean(NE),
        fibrin_rel: mean(FIB),
        quiescent_cells: cells[0],
        activated_cells: cells[1],
        myofibroblasts: cells[2],
        cells_per_mm3: total_cells / (nvox * g.voxel_mm3()),
        cell_density_rel: total_cells / base_cells,
        neutrophils_rel: mean(NEU),
        macrophages_rel: mean(MAC),
        pdgf_ng_per_ml: mean(PDGF),
        tgfb_ng_per_ml: mean(TGFB),
        protease_ng_per_ml: mean(PROT),
        damage_rel: mean(DMG),
    })
}

/// Per-layer, whole-dermis and per-band rows at the current time.
pub fn regions(sim: &Simulation, sums: &[PlaneSums]) -> Vec<RegionRow> {
    let g = &sim.geom;
    let mut rows = Vec::new();
    for (name, z0, z1) in [
        ("papillary", g.z_pap, g.z_ret),
        ("reticular", g.z_ret, g.nz),
        ("dermis", g.z_pap, g.nz),
    ] {
        rows.extend(region_row(sim, sums, name, z0, z1));
    }
    let mut z = 0;
    while z < g.nz {
        let z1 = (z + BAND_LAYERS).min(g.nz);
        rows.extend(region_row(sim, sums, "band", z, z1));
        z = z1;
    }
    rows
}

/// Σ e^(−τ_q/τ_syn) over the quiescent cells with a synthetic tail (τ_q finite), in cell order.
fn tail_cells(sim: &Simulation) -> f64 {
    let tau_syn = sim.par.tau_syn;
    sim.cells
        .state
        .iter()
        .zip(&sim.cells.tau_q)
        .filter(|(s, tq)| **s == CellState::Quiescent && tq.is_finite())
        .map(|(_, tq)| (-tq / tau_syn).exp())
        .sum()
}

/// Whole-block row at the current time. `deposits` are the neo collagen I and III deposited
/// since the previous row (µg) and that span (h).
pub fn global(sim: &Simulation, sums: &[PlaneSums], deposits: ([f64; 2], f64)) -> GlobalRow {
    let g = &sim.geom;
    let mut s = [0.0f64; NSUM];
    let (mut pmax, mut tmax) = (0.0f64, 0.0f64);
    let mut npap = 0.0;
    for (z, ps) in sums.iter().enumerate().skip(g.z_pap) {
        for (a, b) in s.iter_mut().zip(&ps.s) {
            *a += b;
        }
        pmax = pmax.max(ps.pmax);
        tmax = tmax.max(ps.tmax);
        if z < g.z_ret {
            npap += ps.s[NEU];
        }
    }
    let nvox = ((g.nz - g.z_pap) * g.plane()) as f64;
    let npap_vox = ((g.z_ret - g.z_pap) * g.plane()) as f64;
    let [q, a, m] = sim.cells.counts();
    let area = g.area_mm2();
    let (dep, span_h) = deposits;
    let per_day = if span_h > 0.0 { 24.0 / span_h } else { 0.0 };
    GlobalRow {
        arm: sim.arm.name().into(),
        day: sim.day(),
        dt_h: sim.last_dt,
        quiescent_cells: q,
        activated_cells: a,
        myofibroblasts: m,
        tail_cells: tail_cells(sim),
        neutrophils_rel: s[NEU] / nvox,
        neutrophils_papillary_rel: if npap_vox > 0.0 { npap / npap_vox } else { 0.0 },
        macrophages_rel: s[MAC] / nvox,
        pdgf_ng_per_ml: s[PDGF] / nvox,
        tgfb_ng_per_ml: s[TGFB] / nvox,
        protease_ng_per_ml: s[PROT] / nvox,
        pdgf_max_ng_per_ml: pmax,
        tgfb_max_ng_per_ml: tmax,
        damage_rel: s[DMG] / nvox,
        fibrin_rel: s[FIB] / nvox,
        neo_col3_deposition_ug_per_mm2_day: dep[1] / area * per_day,
        neo_col1_deposition_ug_per_mm2_day: dep[0] / area * per_day,
        epidermis_um: sim.epidermis.iter().sum::<f64>() / sim.epidermis.len() as f64,
        open_channel_area_fraction: sim.open_channel_fraction(),
    }
}

/// Depth profile (one row per dermal voxel layer) at the current time.
pub fn profile(sim: &Simulation, sums: &[PlaneSums]) -> Vec<ProfileRow> {
    let g = &sim.geom;
    let np = g.plane() as f64;
    (g.z_pap..g.nz)
        .map(|z| {
            let s = &sums[z].s;
            let cells: u64 = sums[z].cells.iter().sum();
            let layer = g.layer_of_z(z);
            let base = g.baseline(layer).cells_per_voxel * np;
            ProfileRow {
                arm: sim.arm.name().into(),
                day: sim.day(),
                z_top_um: z as f64 * g.h,
                z_bottom_um: (z + 1) as f64 * g.h,
                layer: if layer == Layer::Reticular {
                    "reticular".into()
                } else {
                    "papillary".into()
                },
                col1_native_ug_per_mm3: s[COL1] / np,
                col3_native_ug_per_mm3: s[COL3] / np,
                col1_neo_ug_per_mm3: s[N1] / np,
                col3_neo_ug_per_mm3: s[N3] / np,
                collagen_total_ug_per_mm3: (s[COL1] + s[COL3] + s[N1] + s[N3]) / np,
                elastin_total_ug_per_mm3: (s[EL] + s[NE]) / np,
                cell_density_rel: cells as f64 / base,
            }
        })
        .collect()
}

/// x–z cross-section through `y_um` at the current time.
pub fn section(sim: &Simulation, y_um: f64) -> Vec<SectionRow> {
    let g = &sim.geom;
    let y = ((y_um / g.h) as usize).min(g.ny - 1);
    let m = &sim.matrix;
    let mut rows = Vec::with_capacity(g.nx * g.nz);
    for z in 0..g.nz {
        for x in 0..g.nx {
            let i = g.idx(x, y, z);
            let rho = if z >= g.z_pap { sim.rho(i) } else { 0.0 };
            rows.push(SectionRow {
                day: sim.day(),
                y_um: (y as f64 + 0.5) * g.h,
                x_um: (x as f64 + 0.5) * g.h,
                z_um: (z as f64 + 0.5) * g.h,
                neo_collagen_ug_per_mm3: m.n1[i] + m.n3[i],
                collagen_total_ug_per_mm3: m.collagen(i),
                fibroblast_density_rel: rho,
            });
        }
    }
    rows
}

/// Depth centroid of neo collagen, µm (NaN when there is none).
pub fn neo_centroid_um(sim: &Simulation, sums: &[PlaneSums]) -> f64 {
    let g = &sim.geom;
    let (mut w, mut wz) = (0.0, 0.0);
    for (z, ps) in sums.iter().enumerate() {
        let neo = ps.s[N1] + ps.s[N3];
        w += neo;
        wz += neo * (z as f64 + 0.5) * g.h;
    }
    if w > 0.0 { wz / w } else { f64::NAN }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;
    use crate::sim::Arm;

    #[test]
    fn every_sum_slot_comes_from_one_guarded_array() {
        let mut s = Scenario::default();
        s.tissue.domain_um = [100.0, 100.0];
        s.numerics.burn_in_days = 0.0;
        let sim = Simulation::new(&s, Arm::Treated);
        let names: Vec<&str> = guard::guarded_pools(&sim)
            .iter()
            .map(|p| p.0)
            .chain(guard::guarded_fields(&sim).iter().map(|f| f.0))
            .collect();
        let mut slots: Vec<usize> = names.iter().filter_map(|n| slot(n)).collect();
        slots.sort_unstable();
        assert_eq!(slots, (0..NSUM).collect::<Vec<_>>(), "{names:?}");
    }

    /// Every number of each plane's sums, as bits.
    fn bits(p: &[PlaneSums]) -> Vec<Vec<u64>> {
        p.iter()
            .map(|q| {
                let mut v: Vec<u64> = q.s.iter().map(|x| x.to_bits()).collect();
                v.extend([q.pmax.to_bits(), q.tmax.to_bits(), q.clean as u64]);
                v.extend(q.cells);
                v
            })
            .collect()
    }

    /// The plane sums of a sample whose matrix update summed the pools are those the sampling
    /// finds by reading them, bit for bit, in treated tissue (neo pools, fibrin, protease) and
    /// in untreated tissue (zero neo pools not read), and a bad value is caught either way.
    #[test]
    fn sums_from_the_matrix_update_are_those_of_the_sampling() {
        let mut s = Scenario::default();
        s.tissue.domain_um = [640.0, 640.0];
        s.numerics.burn_in_days = 0.0;
        let mut treated = Simulation::new(&s, Arm::Treated);
        // Untreated tissue without the quiet fast-forward, so that its matrix update waits for
        // the sample as in active tissue.
        let mut calm = s.clone();
        calm.numerics.fast_forward = false;
        let control = Simulation::new(&calm, Arm::Treated).control_twin();
        assert!(!control.matrix.neo_live);
        treated.advance_to(treated.tick_of_day(2.0));
        for mut sim in [treated, control] {
            let mut compared = 0;
            for _ in 0..12 {
                let t = sim.tick + 4;
                sim.advance_to(t);
                let mut read = sim.clone();
                let pools = sim.sync_sampled();
                read.sync();
                let Some(pools) = pools else { continue };
                assert_eq!(pools.len(), sim.geom.nz - sim.geom.z_pap);
                let given = plane_sums(&sim, Some(&pools));
                assert!(all_clean(&given));
                assert_eq!(
                    bits(&given),
                    bits(&plane_sums(&read, None)),
                    "{:?}",
                    sim.arm
                );
                compared += 1;
            }
            assert!(
                compared >= 3,
                "{:?}: only {compared} updates compared",
                sim.arm
            );
            // A bad value in a pool fails the check, summed by the update or read.
            let t = sim.tick + 8;
            sim.advance_to(t);
            let i = (sim.geom.z_pap + 2) * sim.geom.plane() + 7;
            sim.matrix.col3[i] = f64::NAN;
            let mut read = sim.clone();
            let pools = sim.sync_sampled().expect("an update is due");
            read.sync();
            assert!(!all_clean(&plane_sums(&sim, Some(&pools))));
            assert!(!all_clean(&plane_sums(&read, None)));
        }
    }
}
