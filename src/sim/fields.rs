//! Field state: the innate immune response, platelet release and the three diffusing signals
//! (docs/model.md §3–4), all f32 per voxel.
//!
//!   dN/dt = a_N W − δ_N N,   ∂M/∂t = D_M ∇²M + a_M N − δ_M M,   dW/dt = −k_W W,
//!   ∂P/∂t = D_P ∇²P − k_P P + σ_P,plt B + σ_P,mac M + σ_P,fib A   (T, C alike),
//!   B = Σ_sessions φ e^(−(t − t_s)/τ_plt).
//!
//! Two clocks. The slow fields N, W, M and B change over hours to days: they are advanced on the
//! slow clock (`numerics.slow_interval_h`, default 1 h): N and W exactly, M's reaction exactly
//! (with N and W varying exponentially within the span) and then its diffusion with one implicit
//! LOD step of the span, B by its exact exponential decay. The fast signals P, T and C (decay
//! times of 1.6–4 h) are advanced every step: sources from t_n (B scaled by its exact decay since
//! the last slow update, M and the activated density A), added plane by plane inside the first
//! sweep of the implicit LOD step, which includes decay.

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
    /// Platelet release B at the last slow update.
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
    /// Span the cached macrophage solver was built for, h.
    solver_m_span: f64,
    solver_p: LodSolver,
    solver_t: LodSolver,
    solver_c: LodSolver,
    scratch: LodScratch,
    /// Whether N, W, M, B may be non-zero.
    pub(crate) slow_live: bool,
    /// Whether P, T, C may be non-zero.
    pub(crate) fast_live: [bool; 3],
}

/// Coefficients of the exact N, W, M reaction update over one span.
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
    /// Zero fields and solvers for a grid; `slow_span` is the usual slow-clock span, h.
    pub fn new(g: &Geometry, par: &Params, slow_span: f64) -> Self {
        let n = g.voxels();
        let mk = |d: f64, k: f64, dt: f64| LodSolver::new(g.nx, g.ny, g.nz, g.h, d, k, dt);
        let solver_m = mk(par.d_m, 0.0, slow_span);
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
            solver_m_span: slow_span,
            solver_p: mk(par.d_p, par.k_p, par.dt),
            solver_t: mk(par.d_t, par.k_t, par.dt),
            solver_c: mk(par.d_c, par.k_c, par.dt),
            scratch,
            slow_live: false,
            fast_live: [false; 3],
        }
    }

    /// Marks every field as possibly non-zero (after an injury or a restore).
    pub fn wake(&mut self) {
        self.slow_live = true;
        self.fast_live = [true; 3];
    }

    /// Advances N, W, M and B over `span` h (the slow clock). With `diffuse`, M also takes one
    /// implicit diffusion step of the span; in a quiet fast-forward M is below threshold and is
    /// zeroed instead.
    pub fn slow_step(&mut self, g: &Geometry, par: &Params, span: f64, diffuse: bool) {
        if !self.slow_live || span <= 0.0 {
            return;
        }
        let plane = g.plane();
        let r = Reaction::new(par, span);
        let eplt = (-span / par.tau_plt).exp() as f32;
        let any = self
            .n
            .par_chunks_mut(plane)
            .zip(self.w.par_chunks_mut(plane))
            .zip(self.m.par_chunks_mut(plane))
            .zip(self.plt.par_chunks_mut(plane))
            .map(|(((n, w), m), b)| {
                let k = n.len();
                let (w, m, b) = (&mut w[..k], &mut m[..k], &mut b[..k]);
                let mut any = 0.0f32;
                for j in 0..k {
                    let (n0, w0) = (n[j], w[j]);
                    m[j] = flush(m[j] * r.em + r.mn * n0 + r.mw * w0);
                    n[j] = flush(n0 * r.en + r.nw * w0);
                    w[j] = flush(w0 * r.ew);
                    b[j] = flush(b[j] * eplt);
                    // All values are ≥ 0: the sum is non-zero iff any term is (branch-free).
                    any += m[j] + n[j] + w[j] + b[j];
                }
                any > 0.0
            })
            .reduce(|| false, |x, y| x || y);
        self.slow_live = any;
        if diffuse {
            if (span - self.solver_m_span).abs() > 1e-12 {
                self.solver_m = LodSolver::new(g.nx, g.ny, g.nz, g.h, par.d_m, 0.0, span);
                self.solver_m_span = span;
            }
            self.solver_m.step(&mut self.m, &mut self.scratch);
        } else {
            self.m.iter_mut().for_each(|v| *v = 0.0);
        }
    }

    /// One fast step of P, T, C of length `par.dt`. `act` is the relative activated density A
    /// per voxel at t_n (None when no cell is activated); `since_slow` the time since the last
    /// slow update, h (B decays exactly meanwhile); `c_int` accumulates ∫C dt for the matrix.
    /// Returns the number of fields solved.
    pub fn fast_step(
        &mut self,
        g: &Geometry,
        par: &Params,
        act: Option<&[f32]>,
        since_slow: f64,
        c_int: &mut [f32],
    ) -> u64 {
        let dt = par.dt;
        let plane = g.plane();
        let sources = self.slow_live || act.is_some();
        if !sources && !self.fast_live.iter().any(|&l| l) {
            return 0;
        }
        let bscale = (-since_slow / par.tau_plt).exp();
        let src = |v: f64, b: bool| (v * dt * if b { bscale } else { 1.0 }) as f32;
        let coef = [
            (
                src(par.sig_p_plt, true),
                src(par.sig_p_mac, false),
                src(par.sig_p_fib, false),
            ),
            (
                src(par.sig_t_plt, true),
                src(par.sig_t_mac, false),
                src(par.sig_t_fib, false),
            ),
            (0.0, src(par.sig_c_mac, false), src(par.sig_c_fib, false)),
        ];
        let dtf = dt as f32;
        let Fields {
            plt,
            m,
            p,
            t,
            c,
            solver_p,
            solver_t,
            solver_c,
            scratch,
            slow_live,
            fast_live,
            ..
        } = self;
        let (plt, m) = (&plt[..], &m[..]);
        let slow = *slow_live;
        // Adds the sources of one plane: σ_plt B + σ_mac M + σ_fib A, each × dt.
        let add = move |z: usize, f: &mut [f32], (sb, sm, sa): (f32, f32, f32)| {
            let off = z * plane;
            let k = f.len();
            if slow {
                let (b, mm) = (&plt[off..off + k], &m[off..off + k]);
                for j in 0..k {
                    f[j] += sb * b[j] + sm * mm[j];
                }
            }
            if let Some(a) = act {
                let a = &a[off..off + k];
                for j in 0..k {
                    f[j] += sa * a[j];
                }
            }
        };
        let mut solved = 0;
        for (k, (field, solver)) in [(&mut *p, &*solver_p), (&mut *t, &*solver_t)]
            .into_iter()
            .enumerate()
        {
            if sources || fast_live[k] {
                let cf = coef[k];
                solver.step_with(field, scratch, None, &|z, f, _| {
                    if sources {
                        add(z, f, cf)
                    }
                });
                solved += 1;
            }
        }
        if sources || fast_live[2] {
            let cf = coef[2];
            solver_c.step_with(c, scratch, Some(c_int), &|z, f, ci| {
                for (a, &v) in ci.iter_mut().zip(f.iter()) {
                    *a += v * dtf;
                }
                if sources {
                    add(z, f, cf)
                }
            });
            solved += 1;
        }
        if sources {
            *fast_live = [true; 3];
        } else {
            // No source left: a field that has decayed to zero stays zero.
            fast_live[0] = p.iter().any(|&v| v != 0.0);
            fast_live[1] = t.iter().any(|&v| v != 0.0);
            fast_live[2] = c.iter().any(|&v| v != 0.0);
        }
        solved
    }

    /// Quiet fast-forward: P, T and C are below threshold and set to zero (once: a zeroed field
    /// stays zero until the next source). M is zeroed by the quiet slow step that follows.
    pub fn quiet_zero(&mut self) {
        for (live, f) in self
            .fast_live
            .iter_mut()
            .zip([&mut self.p, &mut self.t, &mut self.c])
        {
            if *live {
                f.iter_mut().for_each(|v| *v = 0.0);
                *live = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn neutrophil_and_macrophage_peaks() {
        // Integrate a single voxel with W(0) = 1 using the exact step; docs/model.md expects N to
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
