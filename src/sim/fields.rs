//! Field state: the innate immune response, platelet release and the three diffusing signals
//! (MODEL.md section 3), all f32 per voxel.
//!
//!   dN/dt = a_N W − δ_N N,   ∂M/∂t = D_M ∇²M + a_M N − δ_M M,   dW/dt = −k_W W,
//!   ∂P/∂t = D_P ∇²P − k_P P + σ_P,plt B + σ_P,mac M + σ_P,fib A   (T, C alike),
//!   B = Σ_sessions φ e^(−(t − t_s)/τ_plt).
//!
//! N and W are integrated exactly; M's reaction exactly (with N and W varying exponentially
//! within the step), then its diffusion; P, T, C take their sources (from t_n) explicitly and
//! then one implicit LOD step that includes decay.

use crate::sim::diffusion::{LodScratch, LodSolver};
use crate::sim::params::Params;
use crate::sim::tissue::Geometry;
use rayon::prelude::*;

/// ∫₀^Δt e^(−α s) e^(−β (Δt − s)) ds.
#[inline]
pub fn conv_exp(alpha: f64, beta: f64, dt: f64) -> f64 {
    let d = alpha - beta;
    if d.abs() < 1e-12 {
        dt * (-alpha * dt).exp()
    } else {
        ((-beta * dt).exp() - (-alpha * dt).exp()) / d
    }
}

/// All per-voxel fields.
pub struct Fields {
    /// Neutrophil-like signal.
    pub n: Vec<f32>,
    /// Damage.
    pub w: Vec<f32>,
    /// Platelet release B.
    pub plt: Vec<f32>,
    /// Macrophage-like signal.
    pub m: Vec<f32>,
    /// PDGF, ng/mL.
    pub p: Vec<f32>,
    /// TGF-β, ng/mL.
    pub t: Vec<f32>,
    /// Protease, ng/mL.
    pub c: Vec<f32>,
    solver_m: LodSolver,
    solver_p: LodSolver,
    solver_t: LodSolver,
    solver_c: LodSolver,
    scratch: LodScratch,
    /// Whether each of M, P, T, C may be non-zero (solves are skipped for an all-zero field
    /// without sources).
    live: [bool; 4],
}

/// Coefficients of the exact N, W, M reaction update over one step.
#[derive(Debug, Clone, Copy)]
struct Reaction {
    ew: f32,
    en: f32,
    nw: f32,
    em: f32,
    mn: f32,
    mw: f32,
}

impl Reaction {
    fn new(par: &Params, dt: f64) -> Self {
        let (kw, dn, dm) = (par.k_w, par.delta_n, par.delta_m);
        // N(s) = N0 e^{−δN s} + c W0 (e^{−kW s} − e^{−δN s}), c = a_N/(δN − kW).
        let nw = par.a_n * conv_exp(kw, dn, dt);
        // M(Δt) = M0 e^{−δM Δt} + a_M ∫ N(s) e^{−δM(Δt−s)} ds.
        let mn = par.a_m * conv_exp(dn, dm, dt);
        let c = if (dn - kw).abs() < 1e-15 {
            0.0
        } else {
            par.a_n / (dn - kw)
        };
        let mw = par.a_m * c * (conv_exp(kw, dm, dt) - conv_exp(dn, dm, dt));
        Reaction {
            ew: (-kw * dt).exp() as f32,
            en: (-dn * dt).exp() as f32,
            nw: nw as f32,
            em: (-dm * dt).exp() as f32,
            mn: mn as f32,
            mw: mw as f32,
        }
    }
}

#[inline]
fn flush(v: f32) -> f32 {
    if v.abs() < 1e-12 { 0.0 } else { v }
}

impl Fields {
    /// Zero fields and solvers for a grid.
    pub fn new(g: &Geometry, par: &Params) -> Self {
        let n = g.voxels();
        let mk = |d: f64, k: f64| LodSolver::new(g.nx, g.ny, g.nz, g.h, d, k, par.dt);
        let solver_m = mk(par.d_m, 0.0);
        let scratch = solver_m.scratch();
        Fields {
            n: vec![0.0; n],
            w: vec![0.0; n],
            plt: vec![0.0; n],
            m: vec![0.0; n],
            p: vec![0.0; n],
            t: vec![0.0; n],
            c: vec![0.0; n],
            solver_m,
            solver_p: mk(par.d_p, par.k_p),
            solver_t: mk(par.d_t, par.k_t),
            solver_c: mk(par.d_c, par.k_c),
            scratch,
            live: [false; 4],
        }
    }

    /// Marks every diffusing field as possibly non-zero (after an injury or a restore).
    pub fn wake(&mut self) {
        self.live = [true; 4];
    }

    /// One active step of length `par.dt`. `act` is the relative activated density A per voxel
    /// at t_n (None when no cell is activated). `c_int` accumulates ∫C dt for the matrix.
    pub fn step(&mut self, g: &Geometry, par: &Params, act: Option<&[f32]>, c_int: &mut [f32]) {
        let dt = par.dt;
        let plane = g.plane();
        let any_act = act.is_some();
        let src = |v: f64| (v * dt) as f32;
        let (spp, stp) = (src(par.sig_p_plt), src(par.sig_t_plt));
        let (spm, stm, scm) = (src(par.sig_p_mac), src(par.sig_t_mac), src(par.sig_c_mac));
        let (spf, stf, scf) = (src(par.sig_p_fib), src(par.sig_t_fib), src(par.sig_c_fib));
        let r = Reaction::new(par, dt);
        let eplt = (-dt / par.tau_plt).exp() as f32;
        let dtf = dt as f32;
        let reactions = self.live[0];
        let signals = self.live[1] || self.live[2] || self.live[3];
        let sources = reactions || any_act;
        if !(reactions || signals || sources) {
            return;
        }
        let zero = vec![0.0f32; 0];
        let a: &[f32] = act.unwrap_or(&zero);
        // One fused pass per plane: ∫C dt, sources from t_n (B, M, A), then the exact N, W, M
        // and B reactions.
        let any_nwm = self
            .n
            .par_chunks_mut(plane)
            .zip(self.w.par_chunks_mut(plane))
            .zip(self.m.par_chunks_mut(plane))
            .zip(self.plt.par_chunks_mut(plane))
            .zip(self.p.par_chunks_mut(plane))
            .zip(self.t.par_chunks_mut(plane))
            .zip(self.c.par_chunks_mut(plane))
            .zip(c_int.par_chunks_mut(plane))
            .enumerate()
            .map(|(z, (((((((n, w), m), b), p), t), c), ci))| {
                let off = z * plane;
                if signals {
                    for j in 0..plane {
                        ci[j] += c[j] * dtf;
                    }
                }
                if sources {
                    let n = p.len();
                    let (b, m) = (&b[..n], &m[..n]);
                    if any_act {
                        let a = &a[off..off + n];
                        for j in 0..n {
                            p[j] += spp * b[j] + spm * m[j] + spf * a[j];
                            t[j] += stp * b[j] + stm * m[j] + stf * a[j];
                            c[j] += scm * m[j] + scf * a[j];
                        }
                    } else {
                        for j in 0..n {
                            p[j] += spp * b[j] + spm * m[j];
                            t[j] += stp * b[j] + stm * m[j];
                            c[j] += scm * m[j];
                        }
                    }
                }
                let mut any = 0.0f32;
                if reactions {
                    let k = n.len();
                    let (w, m, b) = (&mut w[..k], &mut m[..k], &mut b[..k]);
                    for j in 0..k {
                        let (n0, w0) = (n[j], w[j]);
                        m[j] = flush(m[j] * r.em + r.mn * n0 + r.mw * w0);
                        n[j] = flush(n0 * r.en + r.nw * w0);
                        w[j] = flush(w0 * r.ew);
                        b[j] = flush(b[j] * eplt);
                        // All values are ≥ 0: a sum is non-zero iff any term is (branch-free).
                        any += m[j] + n[j] + w[j] + b[j];
                    }
                }
                any > 0.0
            })
            .reduce(|| false, |x, y| x || y);
        if sources {
            self.live[1] = true;
            self.live[2] = true;
            self.live[3] = true;
        }
        self.live[0] = any_nwm;
        let Fields {
            m,
            p,
            t,
            c,
            solver_m,
            solver_p,
            solver_t,
            solver_c,
            scratch,
            live,
            ..
        } = self;
        if reactions {
            solver_m.step(m, scratch);
        }
        if live[1] {
            solver_p.step(p, scratch);
        }
        if live[2] {
            solver_t.step(t, scratch);
        }
        if live[3] {
            solver_c.step(c, scratch);
        }
        if !any_nwm && !any_act {
            // No source left: a signal field that has decayed to zero stays zero.
            live[1] = p.iter().any(|&v| v != 0.0);
            live[2] = t.iter().any(|&v| v != 0.0);
            live[3] = c.iter().any(|&v| v != 0.0);
        }
    }

    /// Number of diffusing fields currently solved.
    pub fn live_count(&self) -> u64 {
        self.live.iter().filter(|&&l| l).count() as u64
    }

    /// Long quiet step: N and W decay exactly; the diffusing fields are below threshold and set
    /// to zero.
    pub fn quiet_step(&mut self, par: &Params, dt: f64) {
        let r = Reaction::new(par, dt);
        let eplt = (-dt / par.tau_plt).exp() as f32;
        for j in 0..self.n.len() {
            let (n0, w0) = (self.n[j], self.w[j]);
            self.n[j] = flush(n0 * r.en + r.nw * w0);
            self.w[j] = flush(w0 * r.ew);
            self.plt[j] = flush(self.plt[j] * eplt);
        }
        for f in [&mut self.m, &mut self.p, &mut self.t, &mut self.c] {
            f.iter_mut().for_each(|v| *v = 0.0);
        }
        self.live = [false; 4];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutrophil_and_macrophage_peaks() {
        // Integrate a single voxel with W(0) = 1 using the exact step; MODEL.md expects N to
        // peak near day 1.6 and M near day 3.4, both ≈ 1.
        let s = crate::scenario::Scenario::default();
        let par = Params::new(&s, 1.0);
        let r = Reaction::new(&par, par.dt);
        let (mut n, mut w, mut m) = (0.0f64, 1.0f64, 0.0f64);
        let (mut pn, mut pm, mut tn, mut tm) = (0.0, 0.0, 0.0, 0.0);
        for k in 1..=(20 * 96) {
            let (n0, w0) = (n, w);
            m = m * r.em as f64 + r.mn as f64 * n0 + r.mw as f64 * w0;
            n = n0 * r.en as f64 + r.nw as f64 * w0;
            w *= r.ew as f64;
            let t = k as f64 * par.dt / 24.0;
            if n > pn {
                pn = n;
                tn = t;
            }
            if m > pm {
                pm = m;
                tm = t;
            }
        }
        assert!((tn - 1.6).abs() < 0.2, "N peak day {tn}");
        assert!((tm - 3.4).abs() < 0.3, "M peak day {tm}");
        assert!((pn - 1.0).abs() < 0.1, "N peak {pn}");
        assert!((pm - 1.0).abs() < 0.15, "M peak {pm}");
    }
}
