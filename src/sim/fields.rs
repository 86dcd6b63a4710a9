//! Field state: the innate immune response, platelet release and the three diffusing signals
//! (docs/model.md §3–4), all f32 per voxel.
//!
//!   dN/dt = a_N W − δ_N N,   ∂M/∂t = D_M ∇²M + a_M N − δ_M M,   dW/dt = −k_W W,
//!   ∂P/∂t = D_P ∇²P − k_P P + σ_P,plt B + σ_P,mac M + σ_P,fib A   (T, C alike),
//!   B = Σ_sessions φ e^(−(t − t_s)/τ_plt).
//!
//! Two clocks. The slow fields N, W, M and B change over hours to days: they are advanced on the
//! slow clock (`numerics.slow_interval_h`, default 2 h): N and W exactly, M's reaction exactly
//! (with N and W varying exponentially within the span) and then its diffusion with one implicit
//! LOD step of the span, B by its exact exponential decay. The fast signals P, T and C (decay
//! times of 1.6–4 h) are advanced every step in delta form (see [`Fields::fast_step`]): sources
//! from t_n (B scaled by its exact decay since the last slow update, M and the activated density
//! A), and a settled step of `numerics.settle_step_h` once the tissue has settled.
//!
//! P, T and C live on the signal grid [`Fields::sg`]: the voxel grid, or with
//! `numerics.signal_voxel_um` a coarser grid of the same block, to which B, M and A are
//! restricted and from which P, T and C are prolonged for the outputs ([`crate::sim::transfer`]).

use crate::sim::diffusion::{DeltaJob, LodScratch, LodSolver, has_avx2, row_kernel};
use crate::sim::params::Params;
use crate::sim::tissue::Geometry;
use crate::sim::transfer::Transfer;
use rayon::prelude::*;

/// Longest delta-form step of P, T, C in a settled step, h: a longer settled step is split
/// into equal field sub-steps (the delta form lags a decaying source by ≈ 1/k at k Δt ≈ 1).
pub const SETTLE_FIELD_MAX_H: f64 = 1.0;

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
#[derive(Clone)]
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
    /// Solvers of P, T, C over the slow interval (settled steps, delta form).
    settle_p: LodSolver,
    settle_t: LodSolver,
    settle_c: LodSolver,
    /// Field sub-step the settle solvers were built for, h.
    settle_span: f64,
    /// Right-hand sides / increments of a delta-form step of P, T, C.
    delta: [Vec<f32>; 3],
    /// Scratch of the slow step, and of the first field of a fast one on the voxel grid.
    scratch: LodScratch,
    /// Scratch of the first field of a fast step on a coarser signal grid.
    coarse_scratch: Option<LodScratch>,
    /// Scratch of the second and third fields of a fast step.
    extra_scratch: [LodScratch; 2],
    /// Whether N, W, M, B may be non-zero.
    pub(crate) slow_live: bool,
    /// Per voxel plane: whether N or W, and whether B, may be non-zero there (they neither
    /// diffuse nor have sources between sessions, so a plane where they are 0 stays so until
    /// [`Fields::wake`]).
    inj_planes: Vec<[bool; 2]>,
    /// Whether P, T, C may be non-zero.
    pub(crate) fast_live: [bool; 3],
    /// The grid of P, T and C (the voxel grid unless `numerics.signal_voxel_um` is coarser).
    pub sg: Geometry,
    /// The transfers between the voxel grid and a coarser signal grid (None: the same grid).
    coarse: Option<Coarse>,
}

/// What a coarser signal grid adds: the transfers, B and M restricted to it at the last slow
/// update, A restricted to it at the step, and on the voxel grid copies of P, T and C for the
/// outputs and ∫C dt for the matrix.
#[derive(Clone)]
struct Coarse {
    transfer: Transfer,
    scratch: Vec<f32>,
    plt: Vec<f32>,
    m: Vec<f32>,
    act: Vec<f32>,
    /// Whether `plt` is the restriction of a B that was 0 everywhere (and so is 0 itself).
    plt_zero: bool,
    /// P, T, C prolonged to the voxel grid by [`Fields::refresh_outputs`].
    fine: [Vec<f32>; 3],
    /// ∫C dt prolonged to the voxel grid by [`Fields::c_int_on_voxels`].
    c_int: Vec<f32>,
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
    /// Zero fields and solvers for a grid; `slow_span` is the usual slow-clock span and
    /// `settle_span` the settled step, h.
    /// `sg` is the grid of P, T and C: `g` itself, or a coarser grid of the same block.
    pub fn new(
        g: &Geometry,
        sg: &Geometry,
        par: &Params,
        slow_span: f64,
        settle_span: f64,
    ) -> Self {
        let n = g.voxels();
        let ns = sg.voxels();
        let solver_m = LodSolver::new(g.nx, g.ny, g.nz, g.h, par.d_m, 0.0, slow_span);
        let mk = |d: f64, k: f64, dt: f64| LodSolver::new(sg.nx, sg.ny, sg.nz, sg.h, d, k, dt);
        let coarse = (sg.voxels() != n).then(|| {
            let transfer = Transfer::new((g.nx, g.ny, g.nz), (sg.nx, sg.ny, sg.nz), g.h / sg.h);
            Coarse {
                scratch: vec![0.0; transfer.scratch_len()],
                transfer,
                plt: vec![0.0; ns],
                m: vec![0.0; ns],
                act: vec![0.0; ns],
                plt_zero: true,
                fine: std::array::from_fn(|_| vec![0.0; n]),
                c_int: vec![0.0; n],
            }
        });
        let settle_sub = settle_span / (settle_span / SETTLE_FIELD_MAX_H - 1e-9).ceil().max(1.0);
        let scratch = solver_m.scratch();
        let fast_scratch = mk(par.d_p, par.k_p, par.dt).scratch();
        let coarse_scratch = coarse.is_some().then(|| fast_scratch.clone());
        Fields {
            n: vec![0.0; n],
            w: vec![0.0; n],
            plt: vec![0.0; n],
            m: vec![0.0; n],
            p: vec![0.0; ns],
            t: vec![0.0; ns],
            c: vec![0.0; ns],
            solver_m,
            solver_m_span: slow_span,
            solver_p: mk(par.d_p, par.k_p, par.dt),
            solver_t: mk(par.d_t, par.k_t, par.dt),
            solver_c: mk(par.d_c, par.k_c, par.dt),
            settle_p: mk(par.d_p, par.k_p, settle_sub),
            settle_t: mk(par.d_t, par.k_t, settle_sub),
            settle_c: mk(par.d_c, par.k_c, settle_sub),
            settle_span: settle_sub,
            delta: std::array::from_fn(|_| vec![0.0; ns]),
            extra_scratch: [fast_scratch.clone(), fast_scratch.clone()],
            scratch,
            coarse_scratch,
            slow_live: false,
            inj_planes: vec![[true; 2]; g.nz],
            fast_live: [false; 3],
            sg: sg.clone(),
            coarse,
        }
    }

    /// Marks every field as possibly non-zero (after an injury or a restore), and restricts B
    /// and M to a coarser signal grid.
    pub fn wake(&mut self) {
        self.slow_live = true;
        self.fast_live = [true; 3];
        self.inj_planes.fill([true; 2]);
        self.restrict_sources();
    }

    /// B and M restricted to a coarser signal grid, as the sources of P, T and C there.
    pub(crate) fn restrict_sources(&mut self) {
        self.restrict_b_and_m(true);
    }

    /// [`Fields::restrict_sources`], given whether B may be non-zero: B is exactly 0 from about
    /// two weeks after a session, and once its restriction is 0 it is not formed again until B
    /// may be non-zero.
    fn restrict_b_and_m(&mut self, plt_live: bool) {
        if let Some(c) = &mut self.coarse {
            if plt_live || !c.plt_zero {
                c.transfer.restrict(&self.plt, &mut c.plt, &mut c.scratch);
                c.plt_zero = !plt_live;
            }
            c.transfer.restrict(&self.m, &mut c.m, &mut c.scratch);
        }
    }

    /// P, T and C on the voxel grid, for the outputs and the numerical guard: the fields
    /// themselves, or on a coarser signal grid their prolongation at the last
    /// [`Fields::refresh_outputs`].
    pub fn on_voxels(&self) -> [&[f32]; 3] {
        match &self.coarse {
            Some(c) => [&c.fine[0], &c.fine[1], &c.fine[2]],
            None => [&self.p, &self.t, &self.c],
        }
    }

    /// On a coarser signal grid, prolongs P, T and C to the voxel grid for
    /// [`Fields::on_voxels`]; nothing otherwise.
    pub fn refresh_outputs(&mut self) {
        if let Some(c) = &mut self.coarse {
            for (f, v) in c.fine.iter_mut().zip([&self.p, &self.t, &self.c]) {
                c.transfer.prolong(v, f, &mut c.scratch);
            }
        }
    }

    /// On a coarser signal grid, ∫C dt as accumulated there (`c_int`) prolonged to the voxel
    /// grid, for the matrix update; None on the voxel grid, where `c_int` is already that.
    pub fn c_int_on_voxels(&mut self, c_int: &[f32]) -> Option<&mut [f32]> {
        let c = self.coarse.as_mut()?;
        c.transfer.prolong(c_int, &mut c.c_int, &mut c.scratch);
        Some(&mut c.c_int)
    }

    /// On a coarser signal grid, restricts A (per voxel) to it for the delta steps that follow.
    fn restrict_act(&mut self, act: Option<&[f32]>) {
        if let (Some(c), Some(a)) = (&mut self.coarse, act) {
            c.transfer.restrict(a, &mut c.act, &mut c.scratch);
        }
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
        let (any, any_b) = self
            .n
            .par_chunks_mut(plane)
            .zip(self.w.par_chunks_mut(plane))
            .zip(self.m.par_chunks_mut(plane))
            .zip(self.plt.par_chunks_mut(plane))
            .zip(self.inj_planes.par_iter_mut())
            .map(|((((n, w), m), b), live)| {
                let k = n.len();
                let (w, m, b) = (&mut w[..k], &mut m[..k], &mut b[..k]);
                let (mut any, mut any_nw, mut any_b) = (false, false, false);
                if live[0] {
                    for j in 0..k {
                        let (n0, w0) = (n[j], w[j]);
                        m[j] = flush(m[j] * r.em + r.mn * n0 + r.mw * w0);
                        n[j] = flush(n0 * r.en + r.nw * w0);
                        w[j] = flush(w0 * r.ew);
                        // All values are ≥ 0: the sum is non-zero iff any term is. A boolean
                        // `or` (not a running float sum, a serial chain of additions) lets the
                        // loop vectorise.
                        any |= m[j] > 0.0;
                        any_nw |= n[j] + w[j] > 0.0;
                    }
                } else {
                    // N = W = 0 in this plane: M's update reduces to M e^(−δ_M Δt) exactly
                    // (the added terms are +0).
                    for mj in m.iter_mut() {
                        *mj = flush(*mj * r.em);
                        any |= *mj > 0.0;
                    }
                }
                if live[1] {
                    for bj in b.iter_mut() {
                        *bj = flush(*bj * eplt);
                        any_b |= *bj > 0.0;
                    }
                }
                *live = [any_nw, any_b];
                (any || any_nw || any_b, any_b)
            })
            .reduce(|| (false, false), |x, y| (x.0 || y.0, x.1 || y.1));
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
        self.restrict_b_and_m(any_b);
    }

    /// One fast step of P, T, C of length `par.dt` (delta form, see
    /// [`Fields::settled_step`]). `act` is the relative activated density A per voxel at t_n
    /// (None when no cell is activated); `since_slow` the time since the last slow update, h
    /// (B decays exactly meanwhile); `c_int` (on the signal grid [`Fields::sg`]) accumulates
    /// ∫C dt for the matrix. Returns the number of fields solved.
    pub fn fast_step(
        &mut self,
        par: &Params,
        act: Option<&[f32]>,
        since_slow: f64,
        c_int: &mut [f32],
    ) -> u64 {
        let bscale = (-since_slow / par.tau_plt).exp();
        self.restrict_act(act);
        self.delta_step(par, act, par.dt, bscale, false, c_int)
    }

    /// One settled step of P, T, C over the slow interval `span` (h), with B's mean over the
    /// span as its source.
    pub fn settled_step(
        &mut self,
        par: &Params,
        act: Option<&[f32]>,
        span: f64,
        c_int: &mut [f32],
    ) -> u64 {
        let n = (span / SETTLE_FIELD_MAX_H - 1e-9).ceil().max(1.0) as usize;
        let sub = span / n as f64;
        self.restrict_act(act);
        let mut solved = 0;
        for k in 0..n {
            // B's mean over this sub-step, relative to B at the start of the span.
            let t0 = k as f64 * sub;
            let bmean =
                par.tau_plt / sub * ((-t0 / par.tau_plt).exp() - (-(t0 + sub) / par.tau_plt).exp());
            solved += self.delta_step(par, act, sub, bmean, true, c_int);
        }
        solved
    }

    /// One step of P, T, C over `span` h in delta form:
    ///
    /// ```text
    /// (1 − Δt A_x)(1 − Δt A_y)(1 − Δt A_z) δ = Δt (A u + s),   u ← max(0, u + δ),
    /// ```
    ///
    /// A = D∇² − k on the grid of the LOD solver (periodic x, y; mirrored z ends), A_x, A_y,
    /// A_z its 1-D parts, each with k/3. The left side is the LOD step's matrix, so the step is
    /// unconditionally stable and first order in time, and δ = 0 exactly when A u + s = 0: the
    /// steady state of slowly varying sources is that of the discrete operator whatever Δt is
    /// (the plain LOD step keeps a splitting error of order Δt² A_x A_y in its steady state,
    /// which flattens the peaks next to a channel: see the tests). Sources: B at the last slow
    /// update × `bfactor`, M from the last slow update, A at t_n. ∫C dt is accumulated as
    /// C(t_n) Δt. `settled` selects the solvers of the slow interval.
    #[allow(clippy::too_many_arguments)]
    fn delta_step(
        &mut self,
        par: &Params,
        act: Option<&[f32]>,
        span: f64,
        bfactor: f64,
        settled: bool,
        c_int: &mut [f32],
    ) -> u64 {
        let sources = self.slow_live || act.is_some();
        if !sources && !self.fast_live.iter().any(|&l| l) {
            return 0;
        }
        // P, T and C live on the signal grid (the voxel grid unless it is coarser).
        let sg = self.sg.clone();
        let g = &sg;
        if settled && (span - self.settle_span).abs() > 1e-12 {
            let mk = |d: f64, k: f64| LodSolver::new(g.nx, g.ny, g.nz, g.h, d, k, span);
            self.settle_p = mk(par.d_p, par.k_p);
            self.settle_t = mk(par.d_t, par.k_t);
            self.settle_c = mk(par.d_c, par.k_c);
            self.settle_span = span;
        }
        let src = |v: f64, b: bool| (v * span * if b { bfactor } else { 1.0 }) as f32;
        let plan = [
            (
                par.d_p,
                par.k_p,
                (
                    src(par.sig_p_plt, true),
                    src(par.sig_p_mac, false),
                    src(par.sig_p_fib, false),
                ),
            ),
            (
                par.d_t,
                par.k_t,
                (
                    src(par.sig_t_plt, true),
                    src(par.sig_t_mac, false),
                    src(par.sig_t_fib, false),
                ),
            ),
            (
                par.d_c,
                par.k_c,
                (0.0, src(par.sig_c_mac, false), src(par.sig_c_fib, false)),
            ),
        ];
        let Fields {
            plt,
            m,
            p,
            t,
            c,
            solver_p,
            solver_t,
            solver_c,
            settle_p,
            settle_t,
            settle_c,
            delta,
            scratch,
            coarse_scratch,
            extra_scratch,
            slow_live,
            inj_planes,
            fast_live,
            coarse,
            ..
        } = self;
        let slow = *slow_live && sources;
        let solvers: [&LodSolver; 3] = if settled {
            [settle_p, settle_t, settle_c]
        } else {
            [solver_p, solver_t, solver_c]
        };
        // The fields to solve, each with its own δ buffer and scratch, in the order P, T, C.
        let first = match coarse_scratch {
            Some(c) => c,
            None => scratch,
        };
        let mut scratches = std::iter::once(first).chain(extra_scratch.iter_mut());
        let mut jobs: Vec<DeltaJob> = Vec::with_capacity(3);
        let mut coefs: Vec<Coef> = Vec::with_capacity(3);
        let mut c_job = None;
        for (k, ((u, dl), (d, decay, cf))) in [p, t, c]
            .into_iter()
            .zip(delta.iter_mut())
            .zip(plan)
            .enumerate()
        {
            if !(sources || fast_live[k]) {
                continue;
            }
            if k == 2 {
                c_job = Some(jobs.len());
            }
            let (r, kdt) = (d * span / (g.h * g.h), decay * span);
            coefs.push(Coef {
                r: r as f32,
                kdt: kdt as f32,
                sb: cf.0,
                sm: cf.1,
                sa: cf.2,
            });
            jobs.push(DeltaJob {
                solver: solvers[k],
                delta: dl,
                u,
                scratch: scratches.next().expect("one scratch per field"),
            });
        }
        let solved = jobs.len() as u64;
        let dtf = span as f32;
        // Where B may be non-zero: on the voxel grid the planes so flagged, on a coarser grid
        // every plane unless B's restriction is 0 everywhere. B is not read elsewhere.
        let b_anywhere = coarse.as_ref().map(|cg| !cg.plt_zero);
        let inj_planes = &inj_planes[..];
        let b_live = |z: usize| b_anywhere.unwrap_or_else(|| inj_planes[z][1]);
        // B and M as restricted to a coarser signal grid at the last slow update, A at this step.
        let (plt, m, act): (&[f32], &[f32], _) = match coarse {
            Some(cg) => (&cg.plt, &cg.m, act.map(|_| &cg.act[..])),
            None => (plt, m, act),
        };
        let wide = has_avx2();
        LodSolver::step_delta_fused(&mut jobs, c_job.map(|_| &mut *c_int), &|z, outs, ci, us| {
            if let Some(jc) = c_job {
                // ∫C dt over the step, from C at t_n.
                let (off, len) = (z * g.plane(), ci.len());
                for (a, &v) in ci.iter_mut().zip(&us[jc][off..off + len]) {
                    *a += v * dtf;
                }
            }
            if wide {
                for ((out, u), cf) in outs.iter_mut().zip(us).zip(&coefs) {
                    stencil_plane::<true>(g, z, u, out, cf.r, cf.kdt);
                }
                add_sources::<true>(g, z, outs, &coefs, plt, m, slow, b_live(z), act);
            } else {
                for ((out, u), cf) in outs.iter_mut().zip(us).zip(&coefs) {
                    stencil_plane::<false>(g, z, u, out, cf.r, cf.kdt);
                }
                add_sources::<false>(g, z, outs, &coefs, plt, m, slow, b_live(z), act);
            }
        });
        if sources {
            self.fast_live = [true; 3];
        } else {
            self.fast_live[0] = self.p.iter().any(|&v| v != 0.0);
            self.fast_live[1] = self.t.iter().any(|&v| v != 0.0);
            self.fast_live[2] = self.c.iter().any(|&v| v != 0.0);
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

/// Source terms of one field for [`delta_rhs`]: coefficients (× Δt) of B, M and A.
#[cfg(test)]
struct Sources<'a> {
    plt: &'a [f32],
    m: &'a [f32],
    act: Option<&'a [f32]>,
    slow: bool,
    coef: (f32, f32, f32),
}

/// δ = r (Σ neighbours − 6u) − kΔt u + sources over the whole grid, plane by plane in
/// parallel (see [`delta_rhs_plane`]).
#[cfg(test)]
fn delta_rhs(g: &Geometry, u: &[f32], delta: &mut [f32], r: f64, kdt: f64, s: &Sources) {
    delta
        .par_chunks_mut(g.plane())
        .enumerate()
        .for_each(|(z, out)| delta_rhs_plane(g, z, u, out, r, kdt, s));
}

/// Plane z of δ = r (Σ neighbours − 6u) − kΔt u + sources for one field (the fused step's
/// right-hand side with a single field; for tests).
#[cfg(test)]
fn delta_rhs_plane(
    g: &Geometry,
    z: usize,
    u: &[f32],
    out: &mut [f32],
    r: f64,
    kdt: f64,
    s: &Sources,
) {
    let (r, kdt) = (r as f32, kdt as f32);
    stencil_plane::<false>(g, z, u, out, r, kdt);
    let (sb, sm, sa) = s.coef;
    add_sources::<false>(
        g,
        z,
        &mut [out],
        &[Coef { r, kdt, sb, sm, sa }],
        s.plt,
        s.m,
        s.slow,
        true,
        s.act,
    );
}

// Plane z of δ = r (Σ neighbours − 6u) − kΔt u: r = DΔt/h², x and y periodic, a missing z
// neighbour replaced by the cell itself (the LOD solver's ends).
// `WIDE` selects the AVX2 build (row_kernel): the same operations on wider registers.
row_kernel!(stencil_plane, stencil_plane_base, stencil_plane_avx2,
    (g: &Geometry, z: usize, u: &[f32], out: &mut [f32], r: f32, kdt: f32), {
    let (nx, ny, nz) = (g.nx, g.ny, g.nz);
    let plane = nx * ny;
    let off = z * plane;
    let cur = &u[off..off + plane];
    let up = if z > 0 { &u[off - plane..off] } else { cur };
    let dn = if z + 1 < nz {
        &u[off + plane..off + 2 * plane]
    } else {
        cur
    };
    for y in 0..ny {
        let ym = if y == 0 { ny - 1 } else { y - 1 };
        let yp = if y + 1 == ny { 0 } else { y + 1 };
        let (row, rm, rp) = (y * nx, ym * nx, yp * nx);
        let c = &cur[row..row + nx];
        let (a, b) = (&cur[rm..rm + nx], &cur[rp..rp + nx]);
        let (u0, d0) = (&up[row..row + nx], &dn[row..row + nx]);
        let o = &mut out[row..row + nx];
        // Same sum, in the same order, at the ends (wrapped x) and inside. A macro rather than
        // a closure: a closure is not inlined into the AVX2 build.
        macro_rules! cell {
            ($xm:expr, $xp:expr, $x:expr) => {{
                let x = $x;
                let nb = $xm + $xp + a[x] + b[x] + u0[x] + d0[x];
                r * (nb - 6.0 * c[x]) - kdt * c[x]
            }};
        }
        if nx == 1 {
            o[0] = cell!(c[0], c[0], 0);
            continue;
        }
        o[0] = cell!(c[nx - 1], c[1], 0);
        o[nx - 1] = cell!(c[nx - 2], c[0], nx - 1);
        // Interior: zipped slices, so the loop vectorises (same sum order as `cell!`).
        let inner = o[1..nx - 1]
            .iter_mut()
            .zip(&c[1..nx - 1])
            .zip(c[..nx - 2].iter().zip(&c[2..]))
            .zip(a[1..nx - 1].iter().zip(&b[1..nx - 1]))
            .zip(u0[1..nx - 1].iter().zip(&d0[1..nx - 1]));
        for ((((ov, &cv), (&xm, &xp)), (&av, &bv)), (&uv, &dv)) in inner {
            let nb = xm + xp + av + bv + uv + dv;
            *ov = r * (nb - 6.0 * cv) - kdt * cv;
        }
    }
});

/// Per-field coefficients of a delta step: r = DΔt/h², kΔt, and the source coefficients (× Δt)
/// of B, M and A.
#[derive(Clone, Copy)]
struct Coef {
    r: f32,
    kdt: f32,
    sb: f32,
    sm: f32,
    sa: f32,
}

// Adds the sources of plane z to each field's δ plane: with `slow`, sb B + sm M (B and M at the
// last slow update; sm M alone where `b_live` says that B is 0 in the plane), then sa A (A the
// activated density at t_n, when any cell is activated), each × Δt through each field's
// coefficients. The sources are read once for all the fields; each field's δ takes the same
// additions in the same order as it would alone. `WIDE` selects the AVX2 build, as above.
row_kernel!(add_sources, add_sources_base, add_sources_avx2,
    (g: &Geometry, z: usize, outs: &mut [&mut [f32]], coefs: &[Coef], plt: &[f32], m: &[f32], slow: bool, b_live: bool, act: Option<&[f32]>), {
    let plane = g.plane();
    let off = z * plane;
    if slow && !b_live {
        // B = 0 in this plane: sb·0 + sm·M is sm·M exactly, so B is not read.
        let m = &m[off..off + plane];
        match outs {
            [o0, o1, o2] => {
                let (c0, c1, c2) = (coefs[0], coefs[1], coefs[2]);
                let (o0, o1, o2) = (&mut o0[..plane], &mut o1[..plane], &mut o2[..plane]);
                for j in 0..plane {
                    let mj = m[j];
                    o0[j] += c0.sm * mj;
                    o1[j] += c1.sm * mj;
                    o2[j] += c2.sm * mj;
                }
            }
            _ => {
                for (o, c) in outs.iter_mut().zip(coefs) {
                    for j in 0..plane {
                        o[j] += c.sm * m[j];
                    }
                }
            }
        }
    } else if slow {
        let (b, m) = (&plt[off..off + plane], &m[off..off + plane]);
        match outs {
            [o0, o1, o2] => {
                let (c0, c1, c2) = (coefs[0], coefs[1], coefs[2]);
                let (o0, o1, o2) = (&mut o0[..plane], &mut o1[..plane], &mut o2[..plane]);
                for j in 0..plane {
                    let (bj, mj) = (b[j], m[j]);
                    o0[j] += c0.sb * bj + c0.sm * mj;
                    o1[j] += c1.sb * bj + c1.sm * mj;
                    o2[j] += c2.sb * bj + c2.sm * mj;
                }
            }
            _ => {
                for (o, c) in outs.iter_mut().zip(coefs) {
                    for j in 0..plane {
                        o[j] += c.sb * b[j] + c.sm * m[j];
                    }
                }
            }
        }
    }
    if let Some(a) = act {
        let a = &a[off..off + plane];
        match outs {
            [o0, o1, o2] => {
                let (s0, s1, s2) = (coefs[0].sa, coefs[1].sa, coefs[2].sa);
                let (o0, o1, o2) = (&mut o0[..plane], &mut o1[..plane], &mut o2[..plane]);
                for j in 0..plane {
                    let aj = a[j];
                    o0[j] += s0 * aj;
                    o1[j] += s1 * aj;
                    o2[j] += s2 * aj;
                }
            }
            _ => {
                for (o, c) in outs.iter_mut().zip(coefs) {
                    for j in 0..plane {
                        o[j] += c.sa * a[j];
                    }
                }
            }
        }
    }
});

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

    /// (k − D∇²) u = e_source on the solver's grid (periodic x, y; mirrored z ends), by
    /// conjugate gradients (the operator is symmetric positive definite).
    fn discrete_steady_state(g: &Geometry, d: f64, k: f64) -> Vec<f32> {
        let (nx, ny, nz) = (g.nx, g.ny, g.nz);
        let n = g.voxels();
        let r = d / (g.h * g.h);
        let apply = |u: &[f64], out: &mut [f64]| {
            for z in 0..nz {
                for y in 0..ny {
                    for x in 0..nx {
                        let i = g.idx(x, y, z);
                        let c = u[i];
                        let mut nb =
                            u[g.idx((x + 1) % nx, y, z)] + u[g.idx((x + nx - 1) % nx, y, z)];
                        nb += u[g.idx(x, (y + 1) % ny, z)] + u[g.idx(x, (y + ny - 1) % ny, z)];
                        nb += if z + 1 < nz { u[i + nx * ny] } else { c };
                        nb += if z > 0 { u[i - nx * ny] } else { c };
                        out[i] = k * c - r * (nb - 6.0 * c);
                    }
                }
            }
        };
        let mut b = vec![0.0; n];
        b[g.idx(nx / 2, ny / 2, nz / 2)] = 1.0;
        let mut x = vec![0.0; n];
        let mut res = b.clone();
        let mut p = res.clone();
        let mut ap = vec![0.0; n];
        let dot = |a: &[f64], b: &[f64]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f64>();
        let mut rr = dot(&res, &res);
        for _ in 0..10_000 {
            apply(&p, &mut ap);
            let alpha = rr / dot(&p, &ap);
            for i in 0..n {
                x[i] += alpha * p[i];
                res[i] -= alpha * ap[i];
            }
            let rr1 = dot(&res, &res);
            if rr1 < 1e-24 {
                break;
            }
            for i in 0..n {
                p[i] = res[i] + rr1 / rr * p[i];
            }
            rr = rr1;
        }
        x.iter().map(|&v| v as f32).collect()
    }

    /// A constant point source in a small block, driven to steady state by repeated steps.
    fn steady(g: &Geometry, d: f64, k: f64, dt: f64, delta_form: bool, steps: usize) -> Vec<f32> {
        let solver = LodSolver::new(g.nx, g.ny, g.nz, g.h, d, k, dt);
        let mut scratch = solver.scratch();
        let n = g.voxels();
        let src_i = g.idx(g.nx / 2, g.ny / 2, g.nz / 2);
        let mut u = vec![0.0f32; n];
        let mut delta = vec![0.0f32; n];
        let b = vec![0.0f32; n];
        let mut a = vec![0.0f32; n];
        a[src_i] = 1.0;
        for _ in 0..steps {
            if delta_form {
                let s = Sources {
                    plt: &b,
                    m: &b,
                    act: Some(&a),
                    slow: false,
                    coef: (0.0, 0.0, dt as f32),
                };
                delta_rhs(g, &u, &mut delta, d * dt / (g.h * g.h), k * dt, &s);
                solver.step(&mut delta, &mut scratch);
                for (v, dv) in u.iter_mut().zip(&delta) {
                    *v += dv;
                }
            } else {
                u[src_i] += dt as f32;
                solver.step(&mut u, &mut scratch);
            }
        }
        u
    }

    #[test]
    fn delta_form_keeps_the_steady_state_closer_than_plain_lod() {
        // The plain LOD step's steady state carries a splitting error that grows with dt (it
        // loses mass and flattens peaks); the delta form's fixed point is that of the discrete
        // operator (exact mass). Reference: the discrete
        // problem (k − D∇²) u = s solved by conjugate gradients in f64; P's D and k.
        let mut s = crate::scenario::Scenario::default();
        s.tissue.domain_um = [400.0, 400.0];
        let g = Geometry::new(&s);
        let (d, k) = (108_000.0, 0.5);
        let reference = discrete_steady_state(&g, d, k);
        let err = |u: &[f32]| {
            let num: f64 = u
                .iter()
                .zip(&reference)
                .map(|(a, b)| ((a - b) as f64).powi(2))
                .sum();
            let den: f64 = reference.iter().map(|b| (*b as f64).powi(2)).sum();
            (num / den).sqrt()
        };
        let mass = |u: &[f32]| u.iter().map(|&v| v as f64).sum::<f64>() * k;
        let plain = steady(&g, d, k, 0.25, false, 200);
        let fine = steady(&g, d, k, 0.25, true, 200);
        let coarse = steady(&g, d, k, 1.0, true, 60);
        // Measured: plain 0.117 (mass 0.959), delta 0.042 at 0.25 h and 0.080 at 1 h (mass
        // exact). Modes sharp in all three directions relax slowly in delta form with r ≫ 1,
        // so the single-voxel peak is still low; smooth modes are exact.
        assert!(err(&plain) > 0.08, "plain LOD, 0.25 h: {}", err(&plain));
        assert!(
            err(&fine) < 0.5 * err(&plain),
            "delta 0.25 h: {}",
            err(&fine)
        );
        assert!(err(&coarse) < err(&plain), "delta 1 h: {}", err(&coarse));
        assert!(
            (mass(&plain) - 1.0).abs() > 0.02,
            "plain mass {}",
            mass(&plain)
        );
        for u in [&fine, &coarse] {
            assert!((mass(u) - 1.0).abs() < 1e-4, "delta mass {}", mass(u));
        }
    }

    /// The block of the right-hand-side tests.
    fn rhs_grid() -> Geometry {
        let mut s = crate::scenario::Scenario::default();
        s.tissue.domain_um = [420.0, 380.0];
        Geometry::new(&s)
    }

    /// Value `k` of voxel `i` for the right-hand-side tests: spread over many binades, so that
    /// any change of operation or order shows.
    fn val(i: usize, k: u64) -> f32 {
        let v = crate::sim::rng::mix64(i as u64 ^ (k << 40));
        ((v >> 40) as f32 / (1u64 << 24) as f32) * 10f32.powi((v % 9) as i32 - 4)
    }

    /// Coefficients of three fields for the right-hand-side tests.
    fn rhs_coefs() -> [Coef; 3] {
        [0.3f32, 0.7, 1.3].map(|c| Coef {
            r: 0.81 * c,
            kdt: 0.125 * c,
            sb: 1500.0 * c,
            sm: 200.0 * c,
            sa: 0.004 * c,
        })
    }

    #[test]
    fn avx2_and_baseline_right_hand_sides_are_bit_identical() {
        if !has_avx2() {
            return;
        }
        let g = rhs_grid();
        let n = g.voxels();
        let u: Vec<f32> = (0..n).map(|i| val(i, 1)).collect();
        let (plt, m, act): (Vec<f32>, Vec<f32>, Vec<f32>) = (
            (0..n).map(|i| val(i, 2)).collect(),
            (0..n).map(|i| val(i, 3)).collect(),
            (0..n).map(|i| val(i, 4)).collect(),
        );
        let coefs = rhs_coefs();
        let plane = g.plane();
        for z in 0..g.nz {
            let mut a = vec![vec![0.0f32; plane]; 3];
            let mut b = vec![vec![0.0f32; plane]; 3];
            for (k, cf) in coefs.iter().enumerate() {
                stencil_plane::<false>(&g, z, &u, &mut a[k], cf.r, cf.kdt);
                stencil_plane::<true>(&g, z, &u, &mut b[k], cf.r, cf.kdt);
            }
            for (slow, b_live, act) in [
                (true, true, Some(&act[..])),
                (true, true, None),
                (true, false, Some(&act[..])),
                (false, true, Some(&act[..])),
            ] {
                let (mut a2, mut b2) = (a.clone(), b.clone());
                let mut oa: Vec<&mut [f32]> = a2.iter_mut().map(|v| &mut v[..]).collect();
                let mut ob: Vec<&mut [f32]> = b2.iter_mut().map(|v| &mut v[..]).collect();
                add_sources::<false>(&g, z, &mut oa, &coefs, &plt, &m, slow, b_live, act);
                add_sources::<true>(&g, z, &mut ob, &coefs, &plt, &m, slow, b_live, act);
                for (x, y) in a2.iter().flatten().zip(b2.iter().flatten()) {
                    assert_eq!(x.to_bits(), y.to_bits(), "plane {z}");
                }
            }
        }
    }

    #[test]
    fn planes_without_platelet_release_give_the_same_sources_without_reading_it() {
        // Where B is 0 in a plane, the sources formed without reading B are those formed with
        // it, bit for bit, in both builds, for one field and for three.
        let g = rhs_grid();
        let (n, plane) = (g.voxels(), g.plane());
        let u: Vec<f32> = (0..n).map(|i| val(i, 1)).collect();
        let m: Vec<f32> = (0..n).map(|i| val(i, 3)).collect();
        let act: Vec<f32> = (0..n).map(|i| val(i, 4)).collect();
        let coefs = rhs_coefs();
        let plt = vec![0.0f32; n];
        for z in 0..g.nz {
            for fields in [1, 3] {
                let mut outs = vec![vec![0.0f32; plane]; fields];
                for (o, cf) in outs.iter_mut().zip(&coefs) {
                    stencil_plane::<false>(&g, z, &u, o, cf.r, cf.kdt);
                }
                let runs: Vec<Vec<Vec<f32>>> = [(false, true), (false, false), (true, false)]
                    .into_iter()
                    .filter(|&(wide, _)| !wide || has_avx2())
                    .map(|(wide, b_live)| {
                        let mut o2 = outs.clone();
                        let mut o: Vec<&mut [f32]> = o2.iter_mut().map(|v| &mut v[..]).collect();
                        let cf = &coefs[..fields];
                        if wide {
                            add_sources::<true>(&g, z, &mut o, cf, &plt, &m, true, b_live, None);
                        } else {
                            add_sources::<false>(&g, z, &mut o, cf, &plt, &m, true, b_live, None);
                        }
                        let a = Some(&act[..]);
                        add_sources::<false>(&g, z, &mut o, cf, &plt, &m, false, true, a);
                        o2
                    })
                    .collect();
                for other in &runs[1..] {
                    for (x, y) in runs[0].iter().flatten().zip(other.iter().flatten()) {
                        assert_eq!(x.to_bits(), y.to_bits(), "plane {z}, {fields} fields");
                    }
                }
            }
        }
    }

    #[test]
    fn slow_step_skips_planes_without_injury_bit_for_bit() {
        // N, W and B in a few planes only, M everywhere: slow steps that skip the planes known
        // to be free of N, W and B give every field bit for bit as steps that visit them all.
        let mut s = crate::scenario::Scenario::default();
        s.tissue.domain_um = [200.0, 180.0];
        let g = Geometry::new(&s);
        let par = Params::new(&s, 1.0);
        let mut a = Fields::new(&g, &g, &par, 2.0, 1.0);
        let plane = g.plane();
        let injured = |z: usize| z % 7 == 3;
        for i in 0..g.voxels() {
            let v = (crate::sim::rng::mix64(i as u64) >> 40) as f32 / (1u64 << 24) as f32;
            a.m[i] = 0.5 * v;
            if injured(i / plane) {
                a.w[i] = v;
                a.n[i] = 0.3 * v;
                a.plt[i] = if i % 3 == 0 { 2.0 * v } else { 0.0 };
            }
        }
        a.wake();
        let mut b = a.clone();
        for step in 0..12 {
            a.slow_step(&g, &par, 2.0, true);
            b.inj_planes.fill([true; 2]);
            b.slow_step(&g, &par, 2.0, true);
            for (x, y) in [(&a.n, &b.n), (&a.w, &b.w), (&a.m, &b.m), (&a.plt, &b.plt)] {
                assert!(
                    x.iter().zip(y).all(|(p, q)| p.to_bits() == q.to_bits()),
                    "step {step}"
                );
            }
            assert_eq!(a.slow_live, b.slow_live);
        }
        // The planes without injury were skipped, those with it were not.
        for (z, live) in a.inj_planes.iter().enumerate() {
            assert_eq!(live[0], injured(z), "plane {z}");
        }
    }
}
