//! Fibroblast agents (docs/model.md §5): struct-of-arrays storage and the behaviour rules as
//! plain functions.
//!
//! States Quiescent ⇄ Activated → Myofibroblast; any state can die. Each step a cell draws one
//! competing-risk event (p = 1 − e^(−R·dt), event i with probability r_i/R), migrates as a
//! persistent random walk biased up ∇PDGF (u ← normalise(b ĝ + e^(−dt/τ_p)(u − b ĝ) +
//! √(1 − e^(−2dt/τ_p)) ξ), b = χ|∇P|/(|∇P| + G_half)), and deposits neo collagen I/III and
//! elastin with cloud-in-cell weights. The per-agent pass reads shared state only, updates
//! each cell's own entries in place and lists, per block of cells, the deposits, deaths and
//! divisions ([`PassBlock`]), which are applied afterwards in storage order.

use crate::sim::params::Params;
use crate::sim::rng::{Purpose, Stream};
use crate::sim::tissue::{Geometry, Layer};
use rayon::prelude::*;

/// Cell state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum CellState {
    /// Resting.
    Quiescent = 0,
    /// Activated: motile, dividing, synthesising.
    Activated = 1,
    /// Contractile myofibroblast.
    Myofibroblast = 2,
}

/// Struct-of-arrays storage. Cells are kept sorted by voxel, then id (see
/// [`Fibroblasts::sort_by_voxel`]); daughters are appended in parent order until the next sort.
#[derive(Debug, Clone, Default)]
pub struct Fibroblasts {
    /// Stable ids.
    pub id: Vec<u64>,
    /// Positions, µm.
    pub pos: Vec<[f64; 3]>,
    /// Directions of motion (unit vectors).
    pub dir: Vec<[f64; 3]>,
    /// States.
    pub state: Vec<CellState>,
    /// Time since activation τ, h.
    pub tau: Vec<f64>,
    /// Time since deactivation τ_q, h (∞ before the first deactivation).
    pub tau_q: Vec<f64>,
    /// Home layer (layer at the last transition to quiescence).
    pub home: Vec<Layer>,
    /// Next id to hand out.
    pub next_id: u64,
}

/// How many cells ahead the agent pass prefetches per-voxel data.
const PREFETCH_AHEAD: usize = 4;

/// Cells per block of the agent pass (one parallel task, one [`PassBlock`]).
pub const PASS_BLOCK: usize = 2048;

/// What a block of cells of the agent pass leaves besides the cells' own new state, in cell
/// order: the deposits made, and the deaths and divisions (with the cell's index) to apply.
#[derive(Debug, Clone, Default)]
pub struct PassBlock {
    /// Deposits of the cells that deposited (zero deposits are left out).
    pub deposits: Vec<Deposit>,
    /// Cells that die or divide: index in the storage, and fate (never [`Fate::Live`]).
    pub events: Vec<(u32, Fate)>,
}

/// What happens to a cell in a step.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Fate {
    /// Lives on.
    Live,
    /// Dies.
    Die,
    /// Divides; the daughter's position and direction.
    Divide([f64; 3], [f64; 3]),
}

/// A cell's deposit in one step: µg/mm³ per unit weight over the 8 voxels around its position
/// (cloud in cell). Kept compact (72 bytes): the corners' coordinates along each axis and the
/// fractional offsets, from which [`Deposit::corners`] forms the 8 indices and weights, rather
/// than the indices and weights themselves (120 bytes); a default run lists about 10⁵ deposits
/// between two matrix updates, and they are written and read several times.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Deposit {
    /// Voxel coordinates of the two corners along x (wrapped), y (wrapped) and z (clamped to
    /// the dermis).
    pub xyz: [[u32; 2]; 3],
    /// Fractional position between the two corners along x, y and z: weights 1 − t and t.
    pub t: [f64; 3],
    /// Neo collagen I, µg/mm³ (before weights).
    pub col1: f64,
    /// Neo collagen III.
    pub col3: f64,
    /// Neo elastin.
    pub el: f64,
}

impl Deposit {
    /// The 8 corners as (voxel index, weight), z slowest and x fastest; each weight is
    /// w_x w_y w_z, multiplied in that order.
    #[inline(always)]
    pub fn corners(&self, g: &Geometry) -> [(u32, f64); 8] {
        let (lo, hi) = (self.layer_corners(g, 0), self.layer_corners(g, 1));
        std::array::from_fn(|k| if k < 4 { lo[k] } else { hi[k - 4] })
    }

    /// The 4 corners of z layer `a` (0 or 1) of [`Deposit::corners`], in its order and with
    /// its weights.
    #[inline(always)]
    pub fn layer_corners(&self, g: &Geometry, a: usize) -> [(u32, f64); 4] {
        let [xs, ys, zs] = self.xyz;
        let [tx, ty, tz] = self.t;
        let (wx, wy, wz) = ([1.0 - tx, tx], [1.0 - ty, ty], [1.0 - tz, tz]);
        let z = zs[a] as usize;
        std::array::from_fn(|k| {
            let (b, c) = (k / 2, k % 2);
            (
                g.idx(xs[c] as usize, ys[b] as usize, z) as u32,
                wx[c] * wy[b] * wz[a],
            )
        })
    }

    /// The voxel indices of the corners, in [`Deposit::corners`]'s order.
    #[inline(always)]
    pub fn corner_indices(&self, g: &Geometry) -> [usize; 8] {
        let [xs, ys, zs] = self.xyz;
        std::array::from_fn(|k| {
            g.idx(
                xs[k % 2] as usize,
                ys[(k / 2) % 2] as usize,
                zs[k / 4] as usize,
            )
        })
    }

    /// The lowest and highest voxel index of the corners.
    #[inline]
    pub fn span(&self, g: &Geometry) -> (usize, usize) {
        let [xs, ys, zs] = self
            .xyz
            .map(|v| (v[0].min(v[1]) as usize, v[0].max(v[1]) as usize));
        (g.idx(xs.0, ys.0, zs.0), g.idx(xs.1, ys.1, zs.1))
    }
}

/// The result of one cell's step, inside the agent pass: its new entries go back into the
/// cell's storage, its deposit and fate into the block's [`PassBlock`].
#[derive(Debug, Clone, Copy)]
struct Outcome {
    /// The cell's entries at the end of the step.
    next: Entries,
    /// Death or division.
    fate: Fate,
    /// Matrix deposit.
    deposit: Deposit,
}

/// Constants of one agent pass.
struct StepConsts {
    e1: f64,
    e2: f64,
    /// 1/h, for the prefetch hints only.
    inv_h: f64,
}

/// Read-only inputs of the agent pass.
pub struct AgentInputs<'a> {
    /// Grid.
    pub geom: &'a Geometry,
    /// Parameters.
    pub par: &'a Params,
    /// The grid of P and T (the voxel grid, or a coarser signal grid).
    pub sgeom: &'a Geometry,
    /// PDGF at t_{n+1}, ng/mL.
    pub pdgf: &'a [f32],
    /// TGF-β at t_{n+1}, ng/mL.
    pub tgfb: &'a [f32],
    /// Relative density ρ numerator (G ∗ count); divide by `rho_den[z]`.
    pub rho_num: &'a [f32],
    /// Denominator of ρ per voxel layer.
    pub rho_den: &'a [f64],
    /// Self-contribution of a cell to ρ at its own voxel, per voxel layer.
    pub rho_self: &'a [f64],
    /// Fibrin (0–1).
    pub fibrin: &'a [f64],
    /// Total collagen per voxel, µg/mm³.
    pub collagen: &'a [f64],
    /// Seed.
    pub seed: u64,
    /// Tick at the start of the step.
    pub tick: u64,
    /// Step length, h.
    pub dt: f64,
    /// Quiet fast-forward: long step, quiescent walk in its diffusive limit, no fields.
    pub quiet: bool,
    /// Stream purpose: [`Purpose::Agent`], or [`Purpose::BurnIn`] before day 0.
    pub purpose: Purpose,
}

impl Fibroblasts {
    /// Number of cells.
    pub fn len(&self) -> usize {
        self.id.len()
    }
    /// True when there are no cells.
    pub fn is_empty(&self) -> bool {
        self.id.is_empty()
    }
    /// Adds a cell with a fresh id.
    pub fn push(&mut self, pos: [f64; 3], dir: [f64; 3], home: Layer) {
        self.id.push(self.next_id);
        self.next_id += 1;
        self.pos.push(pos);
        self.dir.push(dir);
        self.state.push(CellState::Quiescent);
        self.tau.push(0.0);
        self.tau_q.push(f64::INFINITY);
        self.home.push(home);
    }

    /// Places the baseline population uniformly at random in each dermal layer.
    pub fn seeded(geom: &Geometry, seed: u64) -> Self {
        let mut f = Fibroblasts::default();
        let area = geom.lx() * geom.ly();
        let layers = [
            (Layer::Papillary, geom.dermis_top(), geom.reticular_top()),
            (Layer::Reticular, geom.reticular_top(), geom.lz()),
        ];
        let mut k = 0u64;
        for (layer, z0, z1) in layers {
            let vol_mm3 = area * (z1 - z0) * 1e-9;
            let n = (geom.baseline(layer).cells_per_mm3 * vol_mm3).round() as u64;
            for _ in 0..n {
                let mut s = Stream::new(seed, Purpose::Placement, k, 0);
                k += 1;
                let p = [
                    s.uniform() * geom.lx(),
                    s.uniform() * geom.ly(),
                    z0 + s.uniform() * (z1 - z0),
                ];
                let d = s.unit_vector();
                f.push(p, d, layer);
            }
        }
        f
    }

    /// Reorders the cells by voxel (then id), so that neighbours in memory are neighbours in
    /// space and the agent pass reads the fields with few cache misses. The order is a pure
    /// function of positions and ids, so results stay independent of the thread count.
    pub fn sort_by_voxel(&mut self, g: &Geometry) {
        let Some(perm) = voxel_order(g, &self.pos, &self.id) else {
            return;
        };
        apply_order(&mut self.id, &perm);
        apply_order(&mut self.pos, &perm);
        apply_order(&mut self.dir, &perm);
        apply_order(&mut self.state, &perm);
        apply_order(&mut self.tau, &perm);
        apply_order(&mut self.tau_q, &perm);
        apply_order(&mut self.home, &perm);
    }

    /// Counts per state.
    pub fn counts(&self) -> [u64; 3] {
        let mut c = [0u64; 3];
        for s in &self.state {
            c[*s as usize] += 1;
        }
        c
    }

    /// Runs the agent pass in parallel: every cell's position, direction, state, τ, τ_q and
    /// home layer are updated in place (a cell reads only its own entries and the shared
    /// fields), and `blocks` receives, per block of [`PASS_BLOCK`] cells in cell order, the
    /// deposits made and the deaths and divisions due ([`PassBlock`]), which the caller applies.
    /// Each cell's result depends only on the inputs and its own stream, so the thread count
    /// does not matter.
    pub fn step(&mut self, inp: &AgentInputs, blocks: &mut Vec<PassBlock>) {
        let n = self.len();
        blocks.resize_with(n.div_ceil(PASS_BLOCK), PassBlock::default);
        let k = StepConsts {
            e1: (-inp.dt / inp.par.tau_p).exp(),
            e2: (1.0 - (-2.0 * inp.dt / inp.par.tau_p).exp()).sqrt(),
            inv_h: 1.0 / inp.sgeom.h,
        };
        self.pos
            .par_chunks_mut(PASS_BLOCK)
            .zip(self.dir.par_chunks_mut(PASS_BLOCK))
            .zip(self.state.par_chunks_mut(PASS_BLOCK))
            .zip(self.tau.par_chunks_mut(PASS_BLOCK))
            .zip(self.tau_q.par_chunks_mut(PASS_BLOCK))
            .zip(self.home.par_chunks_mut(PASS_BLOCK))
            .zip(self.id.par_chunks(PASS_BLOCK))
            .zip(blocks.par_iter_mut())
            .enumerate()
            .for_each(
                |(b, (((((((pos, dir), state), tau), tau_q), home), id), out))| {
                    out.deposits.clear();
                    out.events.clear();
                    let first = b * PASS_BLOCK;
                    for j in 0..pos.len() {
                        if let Some(&q) = pos.get(j + PREFETCH_AHEAD) {
                            prefetch(q, inp, k.inv_h);
                        }
                        let cell = Entries {
                            pos: pos[j],
                            dir: dir[j],
                            state: state[j],
                            tau: tau[j],
                            tau_q: tau_q[j],
                            home: home[j],
                        };
                        let o = step_one(id[j], &cell, inp, &k);
                        let e = o.next;
                        pos[j] = e.pos;
                        dir[j] = e.dir;
                        state[j] = e.state;
                        tau[j] = e.tau;
                        tau_q[j] = e.tau_q;
                        home[j] = e.home;
                        if o.deposit.col1 > 0.0 || o.deposit.col3 > 0.0 || o.deposit.el > 0.0 {
                            out.deposits.push(o.deposit);
                        }
                        if o.fate != Fate::Live {
                            out.events.push(((first + j) as u32, o.fate));
                        }
                    }
                },
            );
    }
}

/// Asks for the per-voxel values that the cell at `p` will read (ρ, collagen, fibrin, and the
/// rows of P and T around it) to be brought into cache. Cells are sorted by voxel but ≈ 40
/// voxels apart, so each of these reads is otherwise a cache miss that the long per-cell
/// computation cannot overlap with other work. A hint only: results do not depend on it.
#[inline(always)]
fn prefetch(p: [f64; 3], inp: &AgentInputs, inv_h: f64) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let iv = inp.geom.voxel_of(p);
        // SAFETY: prefetching is a hint; the addresses are inside the slices (iv < voxels).
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(inp.rho_num.as_ptr().add(iv) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(inp.collagen.as_ptr().add(iv) as *const i8);
            _mm_prefetch::<_MM_HINT_T0>(inp.fibrin.as_ptr().add(iv) as *const i8);
        }
    }
    if !inp.quiet {
        prefetch_sample(inp.sgeom, inv_h, inp.pdgf, inp.tgfb, p);
    }
}

/// A cell's entries in [`Fibroblasts`] that its step reads and rewrites (all but its id).
#[derive(Debug, Clone, Copy)]
struct Entries {
    pos: [f64; 3],
    dir: [f64; 3],
    state: CellState,
    tau: f64,
    tau_q: f64,
    home: Layer,
}

/// Whether a draw `u` uniform in [0, 1) falls below 1 − e^(−total·dt), the probability of an
/// event of total rate `total` (1/h) within `dt` h: that probability is at most total·dt, and
/// computed it exceeds total·dt by at most 2⁻⁵⁰ (e^x is within an ulp of the true value, and
/// 1 − e^(−y) is exact for y ≤ ln 2), so a draw at or above the bound below has no event for
/// certain and skips the exponential: the same decisions, bit for bit, as the plain test, for
/// almost every cell at a fraction of the cost.
#[inline]
fn event_happens(u: f64, total: f64, dt: f64) -> bool {
    let y = total * dt;
    total > 0.0 && u < y + y * 1e-12 + 1e-12 && u < 1.0 - (-total * dt).exp()
}

fn step_one(id: u64, cell: &Entries, inp: &AgentInputs, k: &StepConsts) -> Outcome {
    let g = inp.geom;
    let par = inp.par;
    let dt = inp.dt;
    let mut rng = Stream::new(inp.seed, inp.purpose, id, inp.tick);
    let p0 = cell.pos;
    let state = cell.state;
    let iv = g.voxel_of(p0);
    let iz = iv / g.plane();
    let rho = (inp.rho_num[iv] as f64 / inp.rho_den[iz] - inp.rho_self[iz]).max(0.0);
    let layer = g.layer_of_z(iz).max_dermal();
    let base = g.baseline(layer);
    let c_base = base.col1 + base.col3;
    let c_tot = inp.collagen[iv];

    // Signals at the cell (fields at t_{n+1}).
    let (pv, tv, grad) = if inp.quiet {
        (0.0, 0.0, [0.0; 3])
    } else {
        sample_fields(inp.sgeom, inp.pdgf, inp.tgfb, p0)
    };
    let hsig = 0.5 * (pv / (pv + par.k_sp) + tv / (tv + par.k_st));
    let hplus = ((hsig - par.h0) / (1.0 - par.h0)).max(0.0);
    let tgf_frac = tv / (tv + par.k_myo);

    // Competing-risk event.
    #[derive(Clone, Copy)]
    enum Ev {
        Activate,
        Deactivate,
        Myo,
        Divide,
        Die,
    }
    let mut rates: [(Ev, f64); 5] = [(Ev::Die, 0.0); 5];
    let mut nr = 0;
    let mut add = |e: Ev, r: f64| {
        if r > 0.0 {
            rates[nr] = (e, r);
            nr += 1;
        }
    };
    let crowd = par.r_apo * (rho - par.rho_apo).max(0.0);
    match state {
        CellState::Quiescent => {
            add(Ev::Activate, par.r_act * hplus);
            add(Ev::Divide, par.r_q * (1.0 - rho).max(0.0));
            add(Ev::Die, par.r_q * (rho - 1.0).max(0.0) + crowd);
        }
        CellState::Activated => {
            add(Ev::Deactivate, par.r_deact * (1.0 - hplus));
            let fib = inp.fibrin[iv];
            if cell.tau > par.myo_min_tau && fib > par.myo_fibrin_min {
                add(Ev::Myo, par.r_myo * tgf_frac);
            }
            add(
                Ev::Divide,
                par.r_div * pv / (pv + par.k_div) * (1.0 - rho / par.rho_cap).max(0.0),
            );
            add(Ev::Die, crowd);
        }
        CellState::Myofibroblast => {
            add(
                Ev::Die,
                par.r_myo_death * (1.0 - tgf_frac) + par.myo_crowd * crowd,
            );
        }
    }
    let total: f64 = rates[..nr].iter().map(|r| r.1).sum();
    let u_event = rng.uniform();
    let u_pick = rng.uniform();
    let mut event = None;
    if event_happens(u_event, total, dt) {
        let mut acc = 0.0;
        let target = u_pick * total;
        for &(e, r) in &rates[..nr] {
            acc += r;
            event = Some(e);
            if target < acc {
                break;
            }
        }
    }

    // Synthesis over the step, from the state at the start of the step (µg per cell).
    let tau_q0 = cell.tau_q;
    let tau0 = cell.tau;
    let coll_ug = match state {
        CellState::Activated => par.s_act * dt,
        CellState::Myofibroblast => par.s_act * par.myo_factor * dt,
        CellState::Quiescent if tau_q0.is_finite() => {
            // Exact integral of the decaying tail over the step.
            par.s_act
                * par.tau_syn
                * ((-tau_q0 / par.tau_syn).exp() - (-(tau_q0 + dt) / par.tau_syn).exp())
        }
        CellState::Quiescent => 0.0,
    };
    let mut deposit = Deposit::default();
    if coll_ug > 0.0 {
        let space = ((par.c_max - c_tot) / (par.c_max - c_base)).clamp(0.0, 1.0);
        let coll = coll_ug * space / g.voxel_mm3();
        let f3 = if state == CellState::Myofibroblast {
            par.f3_inf
        } else {
            par.f3_inf + (par.f3_0 - par.f3_inf) * (-tau0 / par.tau_sw).exp()
        };
        let el_ratio = if layer == Layer::Reticular {
            par.el_ratio_ret
        } else {
            par.el_ratio_pap
        };
        deposit = cic_deposit(g, p0);
        deposit.col3 = coll * f3;
        deposit.col1 = coll * (1.0 - f3);
        deposit.el = coll * el_ratio;
    }

    // Apply the event.
    let mut new_state = state;
    let mut tau = tau0 + dt;
    let mut tau_q = tau_q0 + dt;
    let mut home = cell.home;
    let mut fate = Fate::Live;
    match event {
        Some(Ev::Activate) => {
            new_state = CellState::Activated;
            tau = 0.0;
        }
        Some(Ev::Deactivate) => {
            new_state = CellState::Quiescent;
            tau_q = 0.0;
            home = layer;
        }
        Some(Ev::Myo) => new_state = CellState::Myofibroblast,
        Some(Ev::Die) => fate = Fate::Die,
        Some(Ev::Divide) => {
            let d = rng.unit_vector();
            let mut dp = [
                p0[0] + par.daughter_dist * d[0],
                p0[1] + par.daughter_dist * d[1],
                p0[2] + par.daughter_dist * d[2],
            ];
            confine(g, &mut dp, None);
            fate = Fate::Divide(dp, rng.unit_vector());
        }
        None => {}
    }

    // Migration.
    let mut u = cell.dir;
    let mut p = p0;
    let speed_factor = (1.0 - (c_tot - c_base) / (par.c_max - c_base)).clamp(par.v_min, 1.0);
    if inp.quiet {
        // Long-time limit of the persistent walk: Gaussian steps of variance 2 D dt per axis,
        // D = v² τ_p / 3.
        let v = par.v_q * speed_factor;
        let sd = (2.0 * v * v * par.tau_p / 3.0 * dt).sqrt();
        let (a, b) = rng.normal_pair();
        let (c, _) = rng.normal_pair();
        p = [p[0] + sd * a, p[1] + sd * b, p[2] + sd * c];
    } else {
        let gnorm = (grad[0] * grad[0] + grad[1] * grad[1] + grad[2] * grad[2]).sqrt();
        let (b, gh) = if gnorm > 0.0 && par.chi > 0.0 {
            let b = par.chi * gnorm / (gnorm + par.g_half);
            (b, [grad[0] / gnorm, grad[1] / gnorm, grad[2] / gnorm])
        } else {
            (0.0, [0.0; 3])
        };
        let (e1, e2) = (k.e1, k.e2);
        let xi = rng.unit_vector();
        let mut v = [0.0; 3];
        for k in 0..3 {
            v[k] = b * gh[k] + e1 * (u[k] - b * gh[k]) + e2 * xi[k];
        }
        let n = (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
        if n > 1e-12 {
            u = [v[0] / n, v[1] / n, v[2] / n];
        }
        let speed = match new_state {
            CellState::Quiescent => par.v_q,
            CellState::Activated => par.v_a,
            CellState::Myofibroblast => par.v_m,
        } * speed_factor;
        for k in 0..3 {
            p[k] += speed * dt * u[k];
        }
    }
    let quiescent_home = (new_state == CellState::Quiescent).then_some(home);
    let flipped = confine(g, &mut p, quiescent_home);
    if flipped {
        u[2] = -u[2];
    }
    Outcome {
        next: Entries {
            pos: p,
            dir: u,
            state: new_state,
            tau,
            tau_q,
            home,
        },
        fate,
        deposit,
    }
}

/// The order of cells by voxel, then id (indices into the current storage), or None when the
/// storage is in that order already. A pure function of positions and ids, so the order, and
/// everything computed in it, does not depend on the thread count.
pub fn voxel_order(g: &Geometry, pos: &[[f64; 3]], id: &[u64]) -> Option<Vec<usize>> {
    let mut keys: Vec<(usize, u64, usize)> = pos
        .par_iter()
        .zip(id.par_iter())
        .enumerate()
        .with_min_len(4096)
        .map(|(i, (&p, &k))| (g.voxel_of(p), k, i))
        .collect();
    if keys
        .windows(2)
        .all(|w| (w[0].0, w[0].1) <= (w[1].0, w[1].1))
    {
        return None;
    }
    // The keys are distinct (the index is part of them), so the order is unique.
    keys.par_sort_unstable();
    Some(keys.iter().map(|k| k.2).collect())
}

/// Asks for the cache lines of `slab` (the part of the grid from voxel `off`) that voxels
/// `idx` fall in, if they are inside it. A hint only: results do not depend on it.
#[inline(always)]
pub fn prefetch_slots<D>(slab: &[D], off: usize, idx: impl IntoIterator<Item = usize>) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        for i in idx {
            let k = i.wrapping_sub(off);
            if k < slab.len() {
                // SAFETY: a prefetch is a hint; the address is inside the slice (checked).
                unsafe { _mm_prefetch::<_MM_HINT_T0>(slab.as_ptr().add(k) as *const i8) };
            }
        }
    }
}

/// The lowest and highest of a deposit's voxel indices (the span [`scatter_ordered`] asks for).
#[inline]
pub fn index_span(idx: &[u32; 8]) -> (usize, usize) {
    let (lo, hi) = idx
        .iter()
        .fold((u32::MAX, 0), |(a, b), &j| (a.min(j), b.max(j)));
    (lo as usize, hi as usize)
}

/// Items per block in [`scatter_ordered`]'s index of the voxels each block touches.
const SCATTER_BLOCK: usize = 256;
/// How many items ahead [`add_meeting`] hints the slots it will add to.
const SCATTER_AHEAD: usize = 16;
/// Voxel planes per parallel task of [`scatter_ordered`].
const SCATTER_SLAB_PLANES: usize = 4;

/// Adds the contributions of `items` (cells' deposits, in cell order) into `dst` in parallel,
/// with the same result as the serial loop over the items.
///
/// `span(item)` gives the lowest and highest voxel index an item writes (None: nothing);
/// `add(item, slab, offset)` adds the item's contributions that fall into `slab`, the part of
/// `dst` starting at voxel `offset`, and skips the others. The grid is cut into slabs of whole
/// voxel planes, each filled by one task that visits, in item order, the blocks of items whose
/// span meets it. Every voxel belongs to one slab, so it receives its contributions in item
/// order, as in the serial loop: the sums are bit-identical whatever the thread count. The
/// items are sorted by voxel every few steps, so a block of items meets one or two slabs.
pub fn scatter_ordered<D: Send, I: Sync>(
    dst: &mut [D],
    plane: usize,
    items: &[I],
    span: impl Fn(&I) -> Option<(usize, usize)> + Sync,
    add: impl Fn(&I, &mut [D], usize) + Sync,
    hint: impl Fn(&I, &[D], usize) + Sync,
) {
    let blocks = block_spans(items, span);
    let slab = SCATTER_SLAB_PLANES * plane.max(1);
    dst.par_chunks_mut(slab).enumerate().for_each(|(s, out)| {
        add_meeting(&blocks, items, out, s * slab, &add, &hint);
    });
}

/// The span of voxels each block of [`SCATTER_BLOCK`] items touches (`(usize::MAX, 0)` for a
/// block that touches none), for [`add_meeting`].
pub fn block_spans<I: Sync>(
    items: &[I],
    span: impl Fn(&I) -> Option<(usize, usize)> + Sync,
) -> Vec<(usize, usize)> {
    items
        .par_chunks(SCATTER_BLOCK)
        .map(|b| {
            b.iter()
                .filter_map(&span)
                .fold((usize::MAX, 0), |(lo, hi), (a, z)| (lo.min(a), hi.max(z)))
        })
        .collect()
}

/// Calls `add(item, out, lo)`, in item order, for every item of the blocks (spans from
/// [`block_spans`]) that meet `out`, the part of the grid from voxel `lo`: `out` receives its
/// contributions in item order, as in the serial loop over all items.
pub fn add_meeting<D, I>(
    blocks: &[(usize, usize)],
    items: &[I],
    out: &mut [D],
    lo: usize,
    add: &impl Fn(&I, &mut [D], usize),
    hint: &impl Fn(&I, &[D], usize),
) {
    let hi = lo + out.len();
    for (b, &(a, z)) in blocks.iter().enumerate() {
        if a < hi && z >= lo {
            let end = ((b + 1) * SCATTER_BLOCK).min(items.len());
            for j in b * SCATTER_BLOCK..end {
                if let Some(next) = items.get(j + SCATTER_AHEAD) {
                    hint(next, out, lo);
                }
                add(&items[j], out, lo);
            }
        }
    }
}

/// Reorders `v` to `perm` (from [`voxel_order`]).
pub fn apply_order<T: Copy>(v: &mut Vec<T>, perm: &[usize]) {
    let old = std::mem::take(v);
    v.extend(perm.iter().map(|&i| old[i]));
}

impl Layer {
    /// The dermal layer for a voxel layer (epidermal positions count as papillary).
    #[inline]
    pub fn max_dermal(self) -> Layer {
        if self == Layer::Epidermis {
            Layer::Papillary
        } else {
            self
        }
    }
}

/// Keeps a position inside the dermis: wraps x, y; reflects z at the dermis top and the bottom,
/// and for a quiescent cell at the papillary–reticular boundary when leaving its home layer.
/// Returns whether z was reflected.
pub fn confine(g: &Geometry, p: &mut [f64; 3], quiescent_home: Option<Layer>) -> bool {
    p[0] = wrap_coord(p[0], g.lx());
    p[1] = wrap_coord(p[1], g.ly());
    let (mut lo, mut hi) = (g.dermis_top(), g.lz());
    if let Some(home) = quiescent_home {
        let b = g.reticular_top();
        match home {
            Layer::Reticular => lo = b,
            _ => hi = b,
        }
    }
    let mut flipped = false;
    // Reflect (repeatedly for a long step), staying strictly inside.
    for _ in 0..8 {
        if p[2] < lo {
            p[2] = 2.0 * lo - p[2];
            flipped = !flipped;
        } else if p[2] >= hi {
            p[2] = 2.0 * hi - p[2] - 1e-9;
            flipped = !flipped;
        } else {
            break;
        }
    }
    p[2] = p[2].clamp(lo, hi - 1e-9);
    flipped
}

/// Wraps a coordinate into [0, l). Within one period of the block (every step of a cell) this
/// is one addition or subtraction, the same value as `rem_euclid` without its division.
#[inline]
pub fn wrap_coord(x: f64, l: f64) -> f64 {
    let w = if x < 0.0 {
        x + l
    } else if x >= l {
        x - l
    } else {
        return x;
    };
    if (0.0..l).contains(&w) {
        w
    } else {
        let r = x.rem_euclid(l);
        if r >= l { 0.0 } else { r }
    }
}

/// A deposit of nothing at position `p` over the 8 nearest voxel centres (cloud in cell);
/// weight that would fall in epidermal voxels goes to the dermal voxel below, weight beyond the
/// bottom stays in the last layer.
pub fn cic_deposit(g: &Geometry, p: [f64; 3]) -> Deposit {
    let h = g.h;
    let fx = p[0] / h - 0.5;
    let fy = p[1] / h - 0.5;
    let fz = p[2] / h - 0.5;
    let (x0, y0, z0) = (fx.floor(), fy.floor(), fz.floor());
    let (tx, ty, tz) = (fx - x0, fy - y0, fz - z0);
    let (nx, ny) = (g.nx as isize, g.ny as isize);
    let xs = [wrap_small(x0 as isize, nx), wrap_small(x0 as isize + 1, nx)];
    let ys = [wrap_small(y0 as isize, ny), wrap_small(y0 as isize + 1, ny)];
    let zc = |z: isize| -> usize { z.clamp(g.z_pap as isize, g.nz as isize - 1) as usize };
    let zs = [zc(z0 as isize), zc(z0 as isize + 1)];
    Deposit {
        xyz: [xs, ys, zs].map(|v| v.map(|i| i as u32)),
        t: [tx, ty, tz],
        ..Deposit::default()
    }
}

/// Wraps an index that lies within a few periods of [0, n) without an integer division.
#[inline]
pub fn wrap_small(mut i: isize, n: isize) -> usize {
    while i < 0 {
        i += n;
    }
    while i >= n {
        i -= n;
    }
    i as usize
}

/// Asks for the rows of P and T that [`sample_fields`] will read at `p` to be brought into
/// cache: the 12 rows of 4 values of P and the 4 rows of 2 values of T, by their first
/// element. Cells sorted by voxel are tens of voxels apart, so without this nearly every row
/// is a cache miss that a cell waits for. A hint only: no value depends on it (the voxel is
/// found with 1/h rather than a division, which at worst fetches a neighbouring row), and
/// cells near the block's sides, whose rows wrap, are left to the cache.
#[inline(always)]
pub fn prefetch_sample(g: &Geometry, inv_h: f64, pf: &[f32], tf: &[f32], p: [f64; 3]) {
    prefetch_rows::<true>(g, inv_h, pf, tf, p);
}

/// [`prefetch_sample`] for [`sample_gradient`]: the 12 rows of P only.
#[inline(always)]
pub fn prefetch_gradient(g: &Geometry, inv_h: f64, pf: &[f32], p: [f64; 3]) {
    prefetch_rows::<false>(g, inv_h, pf, pf, p);
}

/// The prefetch hints of [`prefetch_sample`]; the rows of T only with `T`.
#[inline(always)]
fn prefetch_rows<const T: bool>(g: &Geometry, inv_h: f64, pf: &[f32], tf: &[f32], p: [f64; 3]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let x0 = (p[0] * inv_h - 0.5) as isize;
        let y0 = (p[1] * inv_h - 0.5) as isize;
        let z0 = (p[2] * inv_h - 0.5) as isize;
        let (row, plane) = (g.nx, g.plane());
        let Some(base) = interior_base(g, x0, y0, z0) else {
            return;
        };
        if base + 3 * row + 3 * plane + 3 >= pf.len().min(tf.len()) {
            return;
        }
        let (pp, tp) = (pf.as_ptr(), tf.as_ptr());
        // SAFETY: a prefetch is a hint; every address is inside both slices (checked above).
        unsafe {
            for dz in 0..4 {
                for dy in 0..4 {
                    let s = base + dy * row + dz * plane;
                    let (iy, iz) = ((1..3).contains(&dy), (1..3).contains(&dz));
                    if iy || iz {
                        _mm_prefetch::<_MM_HINT_T0>(pp.add(s) as *const i8);
                    }
                    if T && iy && iz {
                        _mm_prefetch::<_MM_HINT_T0>(tp.add(s + 1) as *const i8);
                    }
                }
            }
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (g, inv_h, pf, tf, p);
}

/// The index of the neighbourhood's first voxel (x0 − 1, y0 − 1, z0 − 1) when the whole
/// 4 × 4 × 4 neighbourhood of the cell with lower corner (x0, y0, z0) lies inside the block, so
/// that it can be read from that one index without wrapping or clamping; None near the sides.
#[inline(always)]
fn interior_base(g: &Geometry, x0: isize, y0: isize, z0: isize) -> Option<usize> {
    let (nx, ny, nz) = (g.nx as isize, g.ny as isize, g.nz as isize);
    (x0 >= 1 && x0 + 2 < nx && y0 >= 1 && y0 + 2 < ny && z0 >= 1 && z0 + 2 < nz)
        .then(|| (x0 - 1) as usize + (y0 - 1) as usize * g.nx + (z0 - 1) as usize * g.plane())
}

/// Where [`sample_fields`] samples a position: the lower corner (x0, y0, z0) of the cell of
/// voxel centres around it (z clamped to the block), and the x, y and z weights and 1/(2h) of
/// [`trilinear_with_gradient`].
struct SampleCell {
    x0: isize,
    y0: isize,
    z0: isize,
    w: ([f64; 2], [f64; 2], [f64; 2], f64),
}

#[inline(always)]
fn sample_cell(g: &Geometry, p: [f64; 3]) -> SampleCell {
    let h = g.h;
    let fx = p[0] / h - 0.5;
    let fy = p[1] / h - 0.5;
    let fz = (p[2] / h - 0.5).clamp(0.0, g.nz as f64 - 1.0);
    let (x0, y0, z0) = (fx.floor(), fy.floor(), fz.floor());
    let (tx, ty, tz) = (fx - x0, fy - y0, fz - z0);
    SampleCell {
        x0: x0 as isize,
        y0: y0 as isize,
        z0: z0 as isize,
        w: (
            [1.0 - tx, tx],
            [1.0 - ty, ty],
            [1.0 - tz, tz],
            1.0 / (2.0 * h),
        ),
    }
}

/// Trilinear interpolation of P and T at `p`, and of the central-difference gradient of P.
///
/// The 8 surrounding voxel centres and their central differences touch a 4 × 4 × 4 neighbourhood
/// (32 distinct values of P, 8 of T): P at (x0 − 1 + dx, y0 − 1 + dy, z0 − 1 + dz) for dx, dy,
/// dz in 0..4 (the 16 values on the neighbourhood's edges are never asked for), T at (x0 + dx,
/// y0 + dy, z0 + dz) for dx, dy, dz in 0..2. Away from the block's sides (almost every cell)
/// both are read directly from one base index; otherwise through [`sample_wrapped`].
#[inline]
pub fn sample_fields(g: &Geometry, pf: &[f32], tf: &[f32], p: [f64; 3]) -> (f64, f64, [f64; 3]) {
    sample::<true>(g, pf, tf, p)
}

/// The gradient of P of [`sample_fields`] alone (the same bits), without reading T: for a
/// caller that needs nothing else, half as many cache lines per cell.
#[inline]
pub fn sample_gradient(g: &Geometry, pf: &[f32], p: [f64; 3]) -> [f64; 3] {
    sample::<false>(g, pf, pf, p).2
}

/// [`sample_fields`]; T is read only with `T` (otherwise its value is 0).
#[inline(always)]
fn sample<const T: bool>(
    g: &Geometry,
    pf: &[f32],
    tf: &[f32],
    p: [f64; 3],
) -> (f64, f64, [f64; 3]) {
    let c = sample_cell(g, p);
    if let Some(base) = interior_base(g, c.x0, c.y0, c.z0) {
        let (row, plane) = (g.nx, g.plane());
        let end = base + 3 * plane + 3 * row + 4;
        let pf = &pf[base..end];
        let tf = if T { &tf[base..end] } else { pf };
        // SAFETY: dx, dy, dz < 4, so every index is at most 3 · plane + 3 · row + 3, inside
        // both slices (whose length was checked when they were cut).
        trilinear_with_gradient(
            |dx, dy, dz| unsafe { *pf.get_unchecked(dx + dy * row + dz * plane) as f64 },
            |dx, dy, dz| {
                if T {
                    unsafe { *tf.get_unchecked(1 + dx + (1 + dy) * row + (1 + dz) * plane) as f64 }
                } else {
                    0.0
                }
            },
            c.w,
        )
    } else {
        sample_wrapped::<T>(g, pf, tf, &c)
    }
}

/// [`sample_fields`] with every index wrapped in x, y and clamped in z (valid for any cell; the
/// path of cells near the block's sides).
fn sample_wrapped<const T: bool>(
    g: &Geometry,
    pf: &[f32],
    tf: &[f32],
    c: &SampleCell,
) -> (f64, f64, [f64; 3]) {
    let (nx, ny, nz) = (g.nx as isize, g.ny as isize, g.nz as isize);
    let (row, plane) = (g.nx, g.plane());
    let ox: [usize; 4] = std::array::from_fn(|k| wrap_small(c.x0 - 1 + k as isize, nx));
    let oy: [usize; 4] = std::array::from_fn(|k| wrap_small(c.y0 - 1 + k as isize, ny) * row);
    let oz: [usize; 4] =
        std::array::from_fn(|k| (c.z0 - 1 + k as isize).clamp(0, nz - 1) as usize * plane);
    trilinear_with_gradient(
        |dx, dy, dz| pf[ox[dx] + oy[dy] + oz[dz]] as f64,
        |dx, dy, dz| {
            if T {
                tf[ox[dx + 1] + oy[dy + 1] + oz[dz + 1]] as f64
            } else {
                0.0
            }
        },
        c.w,
    )
}

/// The sums of [`sample_fields`] from accessors of its neighbourhood: `p(dx, dy, dz)` is P at
/// (x0 − 1 + dx, y0 − 1 + dy, z0 − 1 + dz), `t(dx, dy, dz)` is T at (x0 + dx, y0 + dy, z0 + dz);
/// `w` holds the x, y and z weights and 1/(2h).
#[inline(always)]
fn trilinear_with_gradient(
    p: impl Fn(usize, usize, usize) -> f64,
    t: impl Fn(usize, usize, usize) -> f64,
    w: ([f64; 2], [f64; 2], [f64; 2], f64),
) -> (f64, f64, [f64; 3]) {
    let (wx, wy, wz, inv2h) = w;
    // The 2 × 2 × 2 core `c` of P, and one value on either side of it along x (`xm`, `xp`),
    // y (`ym`, `yp`) and z (`zm`, `zp`).
    let c: [[[f64; 2]; 2]; 2] = std::array::from_fn(|dz| {
        std::array::from_fn(|dy| std::array::from_fn(|dx| p(1 + dx, 1 + dy, 1 + dz)))
    });
    let tc: [[[f64; 2]; 2]; 2] =
        std::array::from_fn(|dz| std::array::from_fn(|dy| std::array::from_fn(|dx| t(dx, dy, dz))));
    let xm: [[f64; 2]; 2] =
        std::array::from_fn(|dz| std::array::from_fn(|dy| p(0, 1 + dy, 1 + dz)));
    let xp: [[f64; 2]; 2] =
        std::array::from_fn(|dz| std::array::from_fn(|dy| p(3, 1 + dy, 1 + dz)));
    let ym: [[f64; 2]; 2] =
        std::array::from_fn(|dz| std::array::from_fn(|dx| p(1 + dx, 0, 1 + dz)));
    let yp: [[f64; 2]; 2] =
        std::array::from_fn(|dz| std::array::from_fn(|dx| p(1 + dx, 3, 1 + dz)));
    let zm: [[f64; 2]; 2] =
        std::array::from_fn(|dy| std::array::from_fn(|dx| p(1 + dx, 1 + dy, 0)));
    let zp: [[f64; 2]; 2] =
        std::array::from_fn(|dy| std::array::from_fn(|dx| p(1 + dx, 1 + dy, 3)));
    let mut pv = 0.0;
    let mut tv = 0.0;
    let mut grad = [0.0; 3];
    for dz in 0..2 {
        for dy in 0..2 {
            for dx in 0..2 {
                let w = wx[dx] * wy[dy] * wz[dz];
                pv += w * c[dz][dy][dx];
                tv += w * tc[dz][dy][dx];
                // Central differences: f(x0 + dx + 1) − f(x0 + dx − 1) along each axis.
                let gx = if dx == 0 {
                    c[dz][dy][1] - xm[dz][dy]
                } else {
                    xp[dz][dy] - c[dz][dy][0]
                };
                let gy = if dy == 0 {
                    c[dz][1][dx] - ym[dz][dx]
                } else {
                    yp[dz][dx] - c[dz][0][dx]
                };
                let gz = if dz == 0 {
                    c[1][dy][dx] - zm[dy][dx]
                } else {
                    zp[dy][dx] - c[0][dy][dx]
                };
                grad[0] += w * gx * inv2h;
                grad[1] += w * gy * inv2h;
                grad[2] += w * gz * inv2h;
            }
        }
    }
    (pv, tv, grad)
}

#[cfg(test)]
mod scatter_tests {
    use super::scatter_ordered;
    use proptest::prelude::*;

    /// The serial loop that [`scatter_ordered`] must reproduce bit for bit.
    fn serial(n: usize, items: &[([u32; 8], [f64; 8])]) -> Vec<f64> {
        let mut out = vec![0.0; n];
        for (idx, v) in items {
            for k in 0..8 {
                out[idx[k] as usize] += v[k];
            }
        }
        out
    }

    fn parallel(
        n: usize,
        plane: usize,
        items: &[([u32; 8], [f64; 8])],
        threads: usize,
    ) -> Vec<f64> {
        let mut out = vec![0.0; n];
        crate::sim::in_pool(threads, || {
            scatter_ordered(
                &mut out,
                plane,
                items,
                |(idx, _)| {
                    let lo = *idx.iter().min().unwrap() as usize;
                    let hi = *idx.iter().max().unwrap() as usize;
                    Some((lo, hi))
                },
                |(idx, v), slab, off| {
                    for k in 0..8 {
                        if let Some(s) = slab.get_mut((idx[k] as usize).wrapping_sub(off)) {
                            *s += v[k];
                        }
                    }
                },
                |(idx, _), slab, off| super::prefetch_slots(slab, off, idx.map(|i| i as usize)),
            )
        });
        out
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        // Items in any order (sorted or not), touching any voxels, with values of mixed
        // magnitude so that the order of the additions shows in the last bits.
        #[test]
        fn scatter_ordered_equals_the_serial_loop(
            plane in 1usize..40,
            planes in 1usize..30,
            raw in proptest::collection::vec((any::<[u32; 8]>(), any::<[u16; 8]>()), 0..700),
        ) {
            let n = plane * planes;
            let items: Vec<([u32; 8], [f64; 8])> = raw
                .iter()
                .map(|(i, v)| {
                    (
                        i.map(|x| x % n as u32),
                        std::array::from_fn(|k| (v[k] as f64 + 0.1) * 10f64.powi(k as i32 - 4)),
                    )
                })
                .collect();
            let want = serial(n, &items);
            for threads in [1, 3] {
                let got = parallel(n, plane, &items, threads);
                prop_assert!(
                    want.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{} threads differ from the serial loop", threads
                );
            }
        }
    }
}

#[cfg(test)]
mod sample_tests {
    use super::{sample_cell, sample_fields, sample_gradient, sample_wrapped};
    use crate::scenario::Scenario;
    use crate::sim::rng::{Purpose, Stream};
    use crate::sim::tissue::Geometry;

    /// Fields that are linear in the voxel-centre index: P = 0.01 i + 0.02 j + 0.03 k and
    /// T = 0.5 − 0.004 i + 0.006 j + 0.001 k.
    fn linear(g: &Geometry) -> (Vec<f32>, Vec<f32>) {
        let n = g.voxels();
        let (mut p, mut t) = (vec![0.0f32; n], vec![0.0f32; n]);
        for k in 0..g.nz {
            for j in 0..g.ny {
                for i in 0..g.nx {
                    let (x, y, z) = (i as f64, j as f64, k as f64);
                    p[g.idx(i, j, k)] = (0.01 * x + 0.02 * y + 0.03 * z) as f32;
                    t[g.idx(i, j, k)] = (0.5 - 0.004 * x + 0.006 * y + 0.001 * z) as f32;
                }
            }
        }
        (p, t)
    }

    #[test]
    fn linear_fields_are_interpolated_and_differentiated_exactly() {
        let g = Geometry::new(&Scenario::default());
        let (pf, tf) = linear(&g);
        let h = g.h;
        let mut r = Stream::new(3, Purpose::Placement, 0, 0);
        for _ in 0..500 {
            // Inside, away from the periodic seams (where the fields jump) and the z ends.
            let p = [
                (2.0 + r.uniform() * (g.nx as f64 - 5.0)) * h,
                (2.0 + r.uniform() * (g.ny as f64 - 5.0)) * h,
                (2.0 + r.uniform() * (g.nz as f64 - 5.0)) * h,
            ];
            let (fx, fy, fz) = (p[0] / h - 0.5, p[1] / h - 0.5, p[2] / h - 0.5);
            let (pv, tv, grad) = sample_fields(&g, &pf, &tf, p);
            assert!(
                (pv - (0.01 * fx + 0.02 * fy + 0.03 * fz)).abs() < 1e-5,
                "P at {p:?}"
            );
            assert!((tv - (0.5 - 0.004 * fx + 0.006 * fy + 0.001 * fz)).abs() < 1e-5);
            // f32 values of up to ≈ 3 differenced over two voxels: relative error ≈ 1e-5.
            for (a, want) in grad.iter().zip([0.01 / h, 0.02 / h, 0.03 / h]) {
                assert!((a - want).abs() < 1e-4 * want, "{grad:?}");
            }
        }
    }

    #[test]
    fn direct_reads_equal_wrapped_reads_bit_for_bit() {
        // Away from the sides sample_fields reads from one base index; the same sums with each
        // index wrapped in x, y and clamped in z must give the same bits, everywhere.
        let g = Geometry::new(&Scenario::default());
        let n = g.voxels();
        let mut r = Stream::new(5, Purpose::Placement, 1, 0);
        let pf: Vec<f32> = (0..n).map(|_| r.uniform() as f32).collect();
        let tf: Vec<f32> = (0..n).map(|_| r.uniform() as f32 * 2.0).collect();
        for _ in 0..2000 {
            let p = [
                r.uniform() * g.lx(),
                r.uniform() * g.ly(),
                g.dermis_top() + r.uniform() * (g.lz() - g.dermis_top()),
            ];
            let want = sample_wrapped::<true>(&g, &pf, &tf, &sample_cell(&g, p));
            let got = sample_fields(&g, &pf, &tf, p);
            assert_eq!(got.0.to_bits(), want.0.to_bits(), "P at {p:?}");
            assert_eq!(got.1.to_bits(), want.1.to_bits(), "T at {p:?}");
            for a in 0..3 {
                assert_eq!(got.2[a].to_bits(), want.2[a].to_bits(), "∇P at {p:?}");
            }
            // The gradient alone (which never reads T) is the same gradient.
            let grad = sample_gradient(&g, &pf, p);
            for (x, y) in grad.iter().zip(want.2) {
                assert_eq!(x.to_bits(), y.to_bits(), "∇P alone at {p:?}");
            }
        }
    }
}

#[cfg(test)]
mod deposit_tests {
    use super::{cic_deposit, index_span};
    use crate::scenario::Scenario;
    use crate::sim::tissue::Geometry;

    /// The bound that spares the exponential never changes a decision: draws on either side
    /// of 1 − e^(−total·dt), for event probabilities from 1e−12 to 1.
    #[test]
    fn event_test_decides_as_the_plain_formula() {
        let plain = |u: f64, total: f64, dt: f64| total > 0.0 && u < 1.0 - (-total * dt).exp();
        let mut checked = 0;
        for e in -48..=4 {
            for k in 0..25 {
                let total = 2f64.powf(e as f64 + k as f64 / 25.0);
                for dt in [0.25, 1.0, 24.0] {
                    let p = 1.0 - (-total * dt).exp();
                    let mut us = vec![0.0, p, p * 0.5, (p * 2.0).min(0.999), total * dt];
                    // The neighbouring doubles of p and of total·dt.
                    for v in [p, total * dt] {
                        us.push(f64::from_bits(v.to_bits().saturating_sub(1)));
                        us.push(f64::from_bits(v.to_bits() + 1));
                    }
                    for u in us.into_iter().filter(|u| (0.0..1.0).contains(u)) {
                        assert_eq!(
                            super::event_happens(u, total, dt),
                            plain(u, total, dt),
                            "u {u:e}, total {total:e}, dt {dt}"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 5000, "{checked}");
        assert!(!super::event_happens(0.0, 0.0, 1.0));
    }

    /// The compact deposit's corners: weights non-negative and summing to 1, every corner in
    /// the dermis and within one voxel of the position (periodically in x, y), and its span
    /// the lowest and highest corner index; near the block's sides, the top and the bottom too.
    #[test]
    fn compact_deposit_corners_and_span() {
        let mut s = Scenario::default();
        s.tissue.domain_um = [200.0, 160.0];
        let g = Geometry::new(&s);
        let (lx, ly, lz) = (g.lx(), g.ly(), g.lz());
        let top = g.dermis_top();
        let mut q = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            q ^= q << 13;
            q ^= q >> 7;
            q ^= q << 17;
            (q >> 11) as f64 / (1u64 << 53) as f64
        };
        let edges = [0.0, 1e-9, 3.0, lx - 3.0, lx - 1e-9];
        for n in 0..2000 {
            let mut p = [next() * lx, next() * ly, top + next() * (lz - top)];
            if n < 25 {
                p[0] = edges[n % 5];
                p[1] = edges[n / 5].min(ly - 1e-9);
                p[2] = if n % 2 == 0 { top } else { lz - 1e-9 };
            }
            let d = cic_deposit(&g, p);
            let c = d.corners(&g);
            let sum: f64 = c.iter().map(|&(_, w)| w).sum();
            assert!((sum - 1.0).abs() < 1e-12, "{p:?}: weights sum to {sum}");
            for &(i, w) in &c {
                let i = i as usize;
                assert!(w >= 0.0 && i < g.voxels(), "{p:?}");
                let (x, y, z) = (i % g.nx, i / g.nx % g.ny, i / g.plane());
                assert!(z >= g.z_pap, "{p:?}: corner above the dermis");
                let near = |c: usize, v: f64, l: f64| {
                    let dv = ((c as f64 + 0.5) * g.h - v).rem_euclid(l);
                    dv.min(l - dv) <= g.h + 1e-9
                };
                assert!(
                    near(x, p[0], lx) && near(y, p[1], ly),
                    "{p:?}: corner {x}, {y}"
                );
                assert!((z as f64 + 0.5) * g.h - p[2] <= g.h + 1e-9, "{p:?}");
            }
            assert_eq!(d.span(&g), index_span(&c.map(|(i, _)| i)), "{p:?}");
        }
    }
}
