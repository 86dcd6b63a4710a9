//! Extracellular matrix pools per voxel (docs/model.md §3–4), µg/mm³ in f64.
//!
//! Native collagen I and III and elastin are kept at homeostasis by a field synthesis term
//! proportional to the relative cell density ρ; neo pools come from agent deposits; protease C
//! cleaves all pools; fibrin is removed by fibrinolysis:
//!
//!   d col_i/dt = s_i c_i,0 ρ − (k_i + μ_i C) col_i,   d neo_i/dt = D_i − (k_ni + μ_i C) neo_i,
//!   d fibrin/dt = −k_f (1 + C/C_f) fibrin.
//!
//! Over one step the sources and rates are held constant and each pool is integrated exactly:
//! c' = c e^(−λΔt) + S (1 − e^(−λΔt))/λ.

use crate::sim::diffusion::{has_avx2, row_kernel};
use crate::sim::fibroblasts::{Deposit, add_meeting, block_spans, prefetch_slots};
use crate::sim::params::Params;
use crate::sim::sums::{PoolSums, pool_sums};
use crate::sim::tissue::Geometry;
use rayon::prelude::*;

/// Matrix pools, one value per voxel (epidermal voxels stay 0).
#[derive(Debug, Clone)]
pub struct Matrix {
    /// Native collagen I.
    pub col1: Vec<f64>,
    /// Native collagen III.
    pub col3: Vec<f64>,
    /// Native elastin.
    pub el: Vec<f64>,
    /// Neo collagen I.
    pub n1: Vec<f64>,
    /// Neo collagen III.
    pub n3: Vec<f64>,
    /// Neo elastin.
    pub ne: Vec<f64>,
    /// Fibrin, 0–1.
    pub fibrin: Vec<f64>,
    /// Total collagen (native + neo, I + III), kept up to date for the agents.
    pub total: Vec<f64>,
    /// Deposits (neo col1, col3, elastin, µg/mm³) made since the last update and added to the
    /// grid early, when the list of waiting deposits grew past its bound
    /// ([`crate::sim::PENDING_DEPOSITS_MAX`]); all zero unless `dep_live`. The update adds
    /// the deposits still waiting on top, in order.
    pub dep: Vec<[f64; 3]>,
    /// Whether `dep` may hold non-zero deposits.
    pub dep_live: bool,
    /// Whether a neo pool, the fibrin or a deposit may be non-zero. While false they are all
    /// zero (untreated tissue), and an update without protease skips them: zero pools with
    /// zero deposits stay exactly zero, so the result is the same.
    pub neo_live: bool,
}

/// e^(−x) and (1 − e^(−x))/x, accurate for x ≥ 0 and cheap for the small x of one step.
#[inline]
pub fn decay_factors(x: f64) -> (f64, f64) {
    if x < 1e-3 {
        // Taylor to x⁴: error < x⁵/120 < 1e-17.
        let e = 1.0 - x * (1.0 - x * (0.5 - x * (1.0 / 6.0 - x / 24.0)));
        let g = 1.0 - x * (0.5 - x * (1.0 / 6.0 - x * (1.0 / 24.0 - x / 120.0)));
        (e, g)
    } else {
        let e = (-x).exp();
        (e, (1.0 - e) / x)
    }
}

/// Adds a cell's cloud-in-cell deposit to `out`, the part of the grid (one `[col1, col3,
/// elastin]` per voxel) from voxel `off`; corners outside `out` are skipped.
///
/// The corners are those of [`Deposit::corners`], added in its order with its weights; the
/// four of a z layer that lies wholly outside `out` are not formed at all (the matrix update
/// passes one plane, which a deposit's other layer never meets).
#[inline]
pub fn add_deposit(g: &Geometry, d: &Deposit, out: &mut [[f64; 3]], off: usize) {
    let plane = g.plane();
    for a in 0..2 {
        let start = d.xyz[2][a] as usize * plane;
        if start >= off + out.len() || start + plane <= off {
            continue;
        }
        for (i, w) in d.layer_corners(g, a) {
            if let Some(slot) = out.get_mut((i as usize).wrapping_sub(off)) {
                slot[0] += w * d.col1;
                slot[1] += w * d.col3;
                slot[2] += w * d.el;
            }
        }
    }
}

/// e^(−x) and (1 − e^(−x))/x by their Taylor series to x⁵ and x⁶, for 0 ≤ x < 0.02 (relative
/// error < x⁶/720 ≈ 1e−13): no call, no branch.
#[inline(always)]
fn taylor_factors(x: f64) -> (f64, f64) {
    (
        1.0 - x * (1.0 - x * (0.5 - x * (1.0 / 6.0 - x * (1.0 / 24.0 - x / 120.0)))),
        1.0 - x * (0.5 - x * (1.0 / 6.0 - x * (1.0 / 24.0 - x * (1.0 / 120.0 - x / 720.0)))),
    )
}

impl Matrix {
    /// Baseline matrix: each dermal voxel at its layer's native values.
    pub fn baseline(g: &Geometry) -> Self {
        let n = g.voxels();
        let mut m = Matrix {
            col1: vec![0.0; n],
            col3: vec![0.0; n],
            el: vec![0.0; n],
            n1: vec![0.0; n],
            n3: vec![0.0; n],
            ne: vec![0.0; n],
            fibrin: vec![0.0; n],
            total: vec![0.0; n],
            dep: vec![[0.0; 3]; n],
            dep_live: false,
            neo_live: false,
        };
        let plane = g.plane();
        for z in g.z_pap..g.nz {
            let b = g.baseline(g.layer_of_z(z));
            for i in z * plane..(z + 1) * plane {
                m.col1[i] = b.col1;
                m.col3[i] = b.col3;
                m.el[i] = b.elastin;
                m.total[i] = b.col1 + b.col3;
            }
        }
        m
    }

    /// Total collagen (native + neo, I + III) of voxel `i`.
    #[inline]
    pub fn collagen(&self, i: usize) -> f64 {
        self.col1[i] + self.col3[i] + self.n1[i] + self.n3[i]
    }

    /// Integrates every pool over a span of `span` h, during which the relative density
    /// integrated to ∫ρ dt = `rho_int` / `rho_den[z]` (h) and the protease to `c_int` (∫C dt,
    /// ng/mL·h; None when C was zero); consumes the deposits made over the span: those in
    /// `dep`, then `pending` (in the order made, see [`add_deposit`]). With synthesis and
    /// protease averaged over the span each pool is integrated exactly.
    ///
    /// The integrals are consumed too: each dermal plane of `rho_int` and `c_int` (whole-grid
    /// arrays) is zeroed right after its pools are updated, while it is in cache; the planes
    /// above the dermis, which the update does not read, are left to the caller.
    ///
    /// Each plane's deposits are summed into a buffer of one plane (which stays in cache)
    /// just before that plane's pools are updated: the same sums, in the same order, as adding
    /// every deposit to `dep` first, without a pass over a grid-sized array.
    ///
    /// With `want_sums`, also returns the checked sums of the pools of each updated plane (from
    /// the dermis top down), found right after the plane's update while it is in cache; None
    /// otherwise, and when the span is empty.
    #[allow(clippy::too_many_arguments)]
    pub fn update(
        &mut self,
        g: &Geometry,
        par: &Params,
        c_int: Option<&mut [f32]>,
        rho_int: &mut [f32],
        rho_den: &[f64],
        span: f64,
        pending: &[Deposit],
        want_sums: bool,
    ) -> Option<Vec<PoolSums>> {
        if span <= 0.0 {
            return None;
        }
        debug_assert!(
            self.neo_live || (pending.is_empty() && !self.dep_live),
            "deposits while the neo pools are marked zero"
        );
        let blocks = block_spans(pending, |d| Some(d.span(g)));
        let dep_live = self.dep_live;
        self.dep_live = false;
        let plane = g.plane();
        let z0 = g.z_pap;
        let start = z0 * plane;
        let Matrix {
            col1,
            col3,
            el,
            n1,
            n3,
            ne,
            fibrin,
            total,
            dep,
            neo_live,
            ..
        } = self;
        let neo_live = *neo_live;
        // Each dermal plane of ∫C dt, or none (no protease over the span).
        let c_planes: Vec<Option<&mut [f32]>> = match c_int {
            Some(c) => c[start..].chunks_mut(plane).map(Some).collect(),
            None => (z0..g.nz).map(|_| None).collect(),
        };
        let chunks = col1[start..]
            .par_chunks_mut(plane)
            .zip(col3[start..].par_chunks_mut(plane))
            .zip(el[start..].par_chunks_mut(plane))
            .zip(n1[start..].par_chunks_mut(plane))
            .zip(n3[start..].par_chunks_mut(plane))
            .zip(ne[start..].par_chunks_mut(plane))
            .zip(fibrin[start..].par_chunks_mut(plane))
            .zip(dep[start..].par_chunks_mut(plane))
            .zip(total[start..].par_chunks_mut(plane))
            .zip(rho_int[start..].par_chunks_mut(plane))
            .zip(c_planes)
            .enumerate();
        let kmax = par
            .k_col
            .max(par.k_el)
            .max(par.k_n1)
            .max(par.k_n3)
            .max(par.k_ne);
        let mumax = par.mu1.max(par.mu3).max(par.mue);
        let fresh = || vec![[0.0f64; 3]; plane];
        let wide = has_avx2();
        let sums: Vec<Option<PoolSums>> = chunks
            .map_init(
                fresh,
                |dl, (k, ((((((((((c1, c3), e), a1), a3), ae), fb), grid), tot), rho), cplane))| {
                    'plane: {
                        let z = z0 + k;
                        let b = g.baseline(g.layer_of_z(z));
                        let den = rho_den[z];
                        let off = z * plane;
                        // Synthesis over the span per unit of ∫ρ-numerator dt.
                        let syn1 = par.s_col * b.col1 / den;
                        let syn3 = par.s_col * b.col3 / den;
                        let syne = par.s_el * b.elastin / den;
                        let cslice = cplane.as_deref();
                        let cmax =
                            cslice.map_or(0.0, |c| c.iter().fold(0.0f32, |a, &v| a.max(v)) as f64);
                        // Small exponents everywhere in the plane: branch-free polynomial path.
                        let small = kmax * span + mumax * cmax < 2e-2;
                        let rho = &rho[..];
                        // Untreated tissue without protease: the neo pools, fibrin and deposits are
                        // zero and stay zero, so only the native pools are updated.
                        let native_only = !neo_live && cslice.is_none();
                        // This plane's deposits: those added early, then the pending ones, in
                        // order.
                        let dp = &mut dl[..];
                        if dep_live {
                            dp.copy_from_slice(grid);
                            grid.fill([0.0; 3]);
                        } else if !native_only {
                            dp.fill([0.0; 3]);
                        }
                        add_meeting(
                            &blocks,
                            pending,
                            dp,
                            off,
                            &|d, o, lo| add_deposit(g, d, o, lo),
                            &|d, o, lo| prefetch_slots(o, lo, d.corner_indices(g)),
                        );
                        if cslice.is_none() {
                            // No protease over the span: every rate is a constant of the pool, so
                            // the decay factors are computed once for the plane (quiet steps take
                            // this path).
                            let [(e1, g1), (ee, ge), (f1, h1), (f3, h3), (fe, he)] =
                                [par.k_col, par.k_el, par.k_n1, par.k_n3, par.k_ne]
                                    .map(|k| decay_factors(k * span));
                            let ff = (-par.k_f * span).exp();
                            if native_only {
                                // No deposit was made (checked above in debug builds).
                                for j in 0..plane {
                                    let num = rho[j] as f64;
                                    c1[j] = c1[j] * e1 + syn1 * num * g1;
                                    c3[j] = c3[j] * e1 + syn3 * num * g1;
                                    e[j] = e[j] * ee + syne * num * ge;
                                    tot[j] = c1[j] + c3[j];
                                }
                                break 'plane;
                            }
                            for j in 0..plane {
                                let num = rho[j] as f64;
                                let d = dp[j];
                                c1[j] = c1[j] * e1 + syn1 * num * g1;
                                c3[j] = c3[j] * e1 + syn3 * num * g1;
                                e[j] = e[j] * ee + syne * num * ge;
                                a1[j] = a1[j] * f1 + d[0] * h1;
                                a3[j] = a3[j] * f3 + d[1] * h3;
                                ae[j] = ae[j] * fe + d[2] * he;
                                let v = fb[j] * ff;
                                fb[j] = if v < 1e-12 { 0.0 } else { v };
                                tot[j] = c1[j] + c3[j] + a1[j] + a3[j];
                            }
                            break 'plane;
                        }
                        let ci = cslice.expect("the no-protease case is handled above");
                        let arrays = [
                            &mut c1[..],
                            &mut c3[..],
                            &mut e[..],
                            &mut a1[..],
                            &mut a3[..],
                            &mut ae[..],
                            &mut tot[..],
                        ];
                        let syn = [syn1, syn3, syne];
                        if small && wide {
                            pools_taylor::<true>(arrays, dp, ci, rho, syn, par, span);
                        } else if small {
                            pools_taylor::<false>(arrays, dp, ci, rho, syn, par, span);
                        } else {
                            pools(decay_factors, arrays, dp, ci, rho, syn, par, span);
                        }
                        for (f, &cj) in fb.iter_mut().zip(ci) {
                            if *f > 0.0 {
                                let v = *f * (-par.k_f * (span + cj as f64 / par.c_f)).exp();
                                *f = if v < 1e-12 { 0.0 } else { v };
                            }
                        }
                    }
                    // The span's integrals are consumed.
                    rho.fill(0.0);
                    if let Some(c) = cplane {
                        c.fill(0.0);
                    }
                    // The plane's pools are in cache: their sums for the sample that asked for
                    // them, as the sampling would find them (zero pools of untreated tissue are
                    // not read, as there).
                    want_sums.then(|| pool_sums([c1, c3, a1, a3, tot, e, ae, fb], neo_live))
                },
            )
            .collect();
        want_sums.then(|| {
            sums.into_iter()
                .map(|p| p.expect("sums asked for"))
                .collect()
        })
    }
}

/// The pools of one plane over a span with protease: one pass per kind of decay factor (the
/// loops differ only in the factors, a generic argument), so that the polynomial one has no
/// call or branch and vectorises; every voxel gets the same operations either way.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn pools(
    factors: impl Fn(f64) -> (f64, f64),
    [c1, c3, e, a1, a3, ae, tot]: [&mut [f64]; 7],
    dp: &[[f64; 3]],
    ci: &[f32],
    rho: &[f32],
    [syn1, syn3, syne]: [f64; 3],
    par: &Params,
    span: f64,
) {
    for j in 0..tot.len() {
        let cj = ci[j] as f64;
        let num = rho[j] as f64;
        let d = dp[j];
        let (e1, g1) = factors(par.k_col * span + par.mu1 * cj);
        let (e3, g3) = factors(par.k_col * span + par.mu3 * cj);
        let (ee, ge) = factors(par.k_el * span + par.mue * cj);
        c1[j] = c1[j] * e1 + syn1 * num * g1;
        c3[j] = c3[j] * e3 + syn3 * num * g3;
        e[j] = e[j] * ee + syne * num * ge;
        let (f1, h1) = factors(par.k_n1 * span + par.mu1 * cj);
        let (f3, h3) = factors(par.k_n3 * span + par.mu3 * cj);
        let (fe, he) = factors(par.k_ne * span + par.mue * cj);
        a1[j] = a1[j] * f1 + d[0] * h1;
        a3[j] = a3[j] * f3 + d[1] * h3;
        ae[j] = ae[j] * fe + d[2] * he;
        tot[j] = c1[j] + c3[j] + a1[j] + a3[j];
    }
}

// `pools` with the polynomial factors, in a baseline and an AVX2 build (row_kernel of the
// diffusion solver): the same operations on wider registers.
row_kernel!(pools_taylor, pools_taylor_base, pools_taylor_avx2,
    (arrays: [&mut [f64]; 7], dp: &[[f64; 3]], ci: &[f32], rho: &[f32], syn: [f64; 3], par: &Params, span: f64), {
    pools(taylor_factors, arrays, dp, ci, rho, syn, par, span)
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;

    /// Untreated tissue: the update that skips the (zero) neo pools, fibrin and deposits gives
    /// the pools, bit for bit, of the full update.
    #[test]
    fn untreated_update_skips_the_neo_pools_exactly() {
        let mut sc = Scenario::default();
        sc.tissue.domain_um = [200.0, 200.0];
        let g = Geometry::new(&sc);
        let par = Params::new(&sc, 1.0);
        let n = g.voxels();
        let rho: Vec<f32> = (0..n).map(|i| 0.5 + (i % 17) as f32 * 0.07).collect();
        let den: Vec<f64> = (0..g.nz).map(|z| 0.9 + z as f64 * 0.01).collect();
        let mut skip = Matrix::baseline(&g);
        let mut full = skip.clone();
        full.neo_live = true;
        for span in [6.0, 24.0, 0.25] {
            skip.update(&g, &par, None, &mut rho.clone(), &den, span, &[], false);
            full.update(&g, &par, None, &mut rho.clone(), &den, span, &[], false);
        }
        assert!(!skip.neo_live);
        let pools = |m: &Matrix| {
            [
                &m.col1, &m.col3, &m.el, &m.n1, &m.n3, &m.ne, &m.fibrin, &m.total,
            ]
            .map(|v| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>())
        };
        assert_eq!(pools(&skip), pools(&full));
        let base = Matrix::baseline(&g);
        assert_ne!(pools(&skip), pools(&base), "the update changed nothing");
    }

    /// Deposits added part by part (one plane, as the matrix update does, or slabs of several
    /// planes, as the early additions do) give, bit for bit, the sums of the plain loop over
    /// all 8 corners of every deposit, also where both z layers of a deposit clamp to the top
    /// or bottom plane and where its corners wrap around the block's sides.
    #[test]
    fn deposits_added_by_parts_equal_the_loop_over_all_corners() {
        let mut sc = Scenario::default();
        sc.tissue.domain_um = [120.0, 100.0];
        let g = Geometry::new(&sc);
        let (lx, ly, lz) = (g.lx(), g.ly(), g.lz());
        let top = g.dermis_top();
        let val = |i: u64| (crate::sim::rng::mix64(i) >> 11) as f64 / (1u64 << 53) as f64;
        let deposits: Vec<Deposit> = (0..3000u64)
            .map(|k| {
                let mut p = [val(4 * k) * lx, val(4 * k + 1) * ly, 0.0];
                p[2] = match k % 5 {
                    0 => top,
                    1 => lz - 1e-9,
                    _ => top + val(4 * k + 2) * (lz - top),
                };
                if k % 7 == 0 {
                    p[0] = lx - 1e-9;
                }
                let mut d = crate::sim::fibroblasts::cic_deposit(&g, p);
                d.col1 = val(4 * k + 3);
                d.col3 = 0.3 * d.col1 + 1e-3;
                d.el = 0.01 * d.col1;
                d
            })
            .collect();
        let n = g.voxels();
        let mut whole = vec![[0.0f64; 3]; n];
        for d in &deposits {
            for (i, w) in d.corners(&g) {
                let s = &mut whole[i as usize];
                s[0] += w * d.col1;
                s[1] += w * d.col3;
                s[2] += w * d.el;
            }
        }
        let plane = g.plane();
        for part in [plane, 3 * plane, n] {
            let mut by_parts = vec![[0.0f64; 3]; n];
            for (k, out) in by_parts.chunks_mut(part).enumerate() {
                for d in &deposits {
                    add_deposit(&g, d, out, k * part);
                }
            }
            let bits = |v: &[[f64; 3]]| v.iter().map(|s| s.map(f64::to_bits)).collect::<Vec<_>>();
            assert_eq!(bits(&by_parts), bits(&whole), "parts of {part} voxels");
        }
        assert!(
            whole[g.z_pap * plane..(g.z_pap + 1) * plane]
                .iter()
                .any(|s| s[0] > 0.0)
        );
    }

    #[test]
    fn decay_factors_match_exp() {
        for &x in &[0.0, 1e-9, 1e-5, 9e-4, 1.1e-3, 0.1, 2.0, 30.0] {
            let (e, g) = decay_factors(x);
            assert!((e - (-x).exp()).abs() < 1e-15 * (1.0 + e), "{x}");
            // exp_m1 avoids the cancellation of 1 − e^(−x) at small x.
            let gx = if x == 0.0 { 1.0 } else { -(-x).exp_m1() / x };
            assert!((g - gx).abs() < 1e-12, "{x}: {g} vs {gx}");
        }
    }

    #[test]
    fn avx2_and_baseline_pool_updates_are_bit_identical() {
        if !has_avx2() {
            return;
        }
        let s = Scenario::default();
        let par = Params::new(&s, 1.0);
        let n = 1003;
        let val = |i: usize, k: u64, scale: f64| {
            let v = crate::sim::rng::mix64(i as u64 ^ (k << 40));
            (v >> 11) as f64 / (1u64 << 53) as f64 * scale
        };
        let arrays: Vec<Vec<f64>> = (0..7)
            .map(|k| (0..n).map(|i| val(i, k, 300.0)).collect())
            .collect();
        let dp: Vec<[f64; 3]> = (0..n)
            .map(|i| [val(i, 8, 1.0), val(i, 9, 1.0), val(i, 10, 0.01)])
            .collect();
        let ci: Vec<f32> = (0..n).map(|i| val(i, 11, 2.0) as f32).collect();
        let rho: Vec<f32> = (0..n).map(|i| val(i, 12, 6.0) as f32).collect();
        let syn = [1e-6, 2e-7, 3e-8];
        let (mut a, mut b) = (arrays.clone(), arrays.clone());
        fn slices(v: &mut [Vec<f64>]) -> [&mut [f64]; 7] {
            let mut it = v.iter_mut();
            std::array::from_fn(|_| &mut it.next().expect("7 arrays")[..])
        }
        pools_taylor::<false>(slices(&mut a), &dp, &ci, &rho, syn, &par, 6.0);
        pools_taylor::<true>(slices(&mut b), &dp, &ci, &rho, syn, &par, 6.0);
        for (x, y) in a.iter().flatten().zip(b.iter().flatten()) {
            assert_eq!(x.to_bits(), y.to_bits());
        }
        assert_ne!(a, arrays, "the update changed nothing");
    }
}
