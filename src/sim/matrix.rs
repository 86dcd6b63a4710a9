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

use crate::sim::params::Params;
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
    /// Deposits of the current step (neo col1, col3, elastin), µg/mm³.
    pub dep: Vec<[f64; 3]>,
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
    /// ng/mL·h; None when C was zero); consumes the deposits accumulated over the span. With
    /// synthesis and protease averaged over the span each pool is integrated exactly.
    pub fn update(
        &mut self,
        g: &Geometry,
        par: &Params,
        c_int: Option<&[f32]>,
        rho_int: &[f32],
        rho_den: &[f64],
        span: f64,
    ) {
        if span <= 0.0 {
            return;
        }
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
        } = self;
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
            .enumerate();
        let kmax = par
            .k_col
            .max(par.k_el)
            .max(par.k_n1)
            .max(par.k_n3)
            .max(par.k_ne);
        let mumax = par.mu1.max(par.mu3).max(par.mue);
        chunks.for_each(|(k, ((((((((c1, c3), e), a1), a3), ae), fb), dp), tot))| {
            let z = z0 + k;
            let b = g.baseline(g.layer_of_z(z));
            let den = rho_den[z];
            let off = z * plane;
            // Synthesis over the span per unit of ∫ρ-numerator dt.
            let syn1 = par.s_col * b.col1 / den;
            let syn3 = par.s_col * b.col3 / den;
            let syne = par.s_el * b.elastin / den;
            let cslice = c_int.map(|c| &c[off..off + plane]);
            let cmax = cslice.map_or(0.0, |c| c.iter().fold(0.0f32, |a, &v| a.max(v)) as f64);
            // Small exponents everywhere in the plane: branch-free polynomial path.
            let small = kmax * span + mumax * cmax < 2e-2;
            let rho = &rho_int[off..off + plane];
            if cslice.is_none() {
                // No protease over the span: every rate is a constant of the pool, so the decay
                // factors are computed once for the plane (quiet steps take this path).
                let [(e1, g1), (ee, ge), (f1, h1), (f3, h3), (fe, he)] =
                    [par.k_col, par.k_el, par.k_n1, par.k_n3, par.k_ne]
                        .map(|k| decay_factors(k * span));
                let ff = (-par.k_f * span).exp();
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
                    dp[j] = [0.0; 3];
                    tot[j] = c1[j] + c3[j] + a1[j] + a3[j];
                }
                return;
            }
            for j in 0..plane {
                let ci = cslice.map_or(0.0, |c| c[j] as f64);
                let num = rho[j] as f64;
                let d = dp[j];
                let f = |lam_span: f64| -> (f64, f64) {
                    if small {
                        // Taylor to x⁵ for x < 0.02: relative error < x⁶/720 ≈ 1e-13.
                        let x = lam_span;
                        (
                            1.0 - x
                                * (1.0
                                    - x * (0.5 - x * (1.0 / 6.0 - x * (1.0 / 24.0 - x / 120.0)))),
                            1.0 - x
                                * (0.5
                                    - x * (1.0 / 6.0
                                        - x * (1.0 / 24.0 - x * (1.0 / 120.0 - x / 720.0)))),
                        )
                    } else {
                        decay_factors(lam_span)
                    }
                };
                let (e1, g1) = f(par.k_col * span + par.mu1 * ci);
                let (e3, g3) = f(par.k_col * span + par.mu3 * ci);
                let (ee, ge) = f(par.k_el * span + par.mue * ci);
                c1[j] = c1[j] * e1 + syn1 * num * g1;
                c3[j] = c3[j] * e3 + syn3 * num * g3;
                e[j] = e[j] * ee + syne * num * ge;
                let (f1, h1) = f(par.k_n1 * span + par.mu1 * ci);
                let (f3, h3) = f(par.k_n3 * span + par.mu3 * ci);
                let (fe, he) = f(par.k_ne * span + par.mue * ci);
                a1[j] = a1[j] * f1 + d[0] * h1;
                a3[j] = a3[j] * f3 + d[1] * h3;
                ae[j] = ae[j] * fe + d[2] * he;
                if fb[j] > 0.0 {
                    let v = fb[j] * (-par.k_f * (span + ci / par.c_f)).exp();
                    fb[j] = if v < 1e-12 { 0.0 } else { v };
                }
                dp[j] = [0.0; 3];
                tot[j] = c1[j] + c3[j] + a1[j] + a3[j];
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
}
