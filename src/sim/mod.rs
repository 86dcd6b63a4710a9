//! The model of `docs/model.md`: tissue, treatment, fields, matrix and fibroblast agents, and
//! [`Simulation::step`], which runs the phases of one step in the documented order:
//!
//! 1. sessions due now → channels, injury, bleeding;
//! 2. relative cell density ρ from positions at t_n;
//! 3. fields: sources from t_n, implicit solves → t_{n+1}; N, M, W exactly;
//! 4. agents (parallel) read fields at t_{n+1} and ρ, move and change state in place (each its
//!    own entries), and list their deposits, deaths and divisions;
//! 5. deaths, births (ids in parent order) and deposits applied in storage order; matrix update;
//! 6. epidermis.
//!
//! When the tissue is quiet (no activated cell or myofibroblast, inflammation below 1e−3 of its
//! session peak, signal H below H0/10 everywhere, fibrin below 0.01) the step grows up to
//! `max_dt_h`: diffusing fields are zeroed and skipped, quiescent cells take the diffusive limit
//! of their walk, and the matrix is integrated exactly.

pub mod checkpoint;
pub mod diffusion;
pub mod fibroblasts;
pub mod fields;
pub mod matrix;
pub mod params;
pub mod rng;
pub mod smoothing;
pub mod sums;
pub mod tissue;
pub mod transfer;
pub mod treatment;

use crate::scenario::Scenario;
use fibroblasts::{AgentInputs, CellState, Deposit, Fate, Fibroblasts, PassBlock, scatter_ordered};
use fields::Fields;
use matrix::Matrix;
use params::Params;
use rayon::prelude::*;
use smoothing::{GaussianSmoother, SmoothScratch};
use sums::PoolSums;
use tissue::Geometry;
use treatment::Channel;

/// Longest time between two matrix updates, h: the matrix pools are integrated exactly over
/// the span with ∫ρ dt, ∫C dt and the deposits accumulated meanwhile, so the span only limits
/// how old the total collagen and fibrin read by the agents may be (samples, sessions and quiet
/// steps update the matrix too).
pub const MATRIX_SPAN_H: f64 = 6.0;

/// Which arm of a comparison a simulation is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arm {
    /// With the scenario's sessions.
    Treated,
    /// Same seed, no sessions.
    Control,
}

impl Arm {
    /// Name used in output files.
    pub fn name(self) -> &'static str {
        match self {
            Arm::Treated => crate::observe::record::ARM_TREATED,
            Arm::Control => crate::observe::record::ARM_CONTROL,
        }
    }
}

/// Names of the timed phases of [`WorkStats::phase_seconds`], in its order.
pub const PHASE_NAMES: [&str; 7] = [
    "sessions",
    "density",
    "fields",
    "agents",
    "apply+matrix",
    "epidermis",
    "samples",
];

/// Index in [`WorkStats::phase_seconds`] of the time spent sampling outputs (timed by the
/// runner, outside [`Simulation::step`]).
pub const SAMPLE_PHASE: usize = 6;

/// Counters of the work done.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct WorkStats {
    /// Steps at the active dt.
    pub active_steps: u64,
    /// Fast-forward steps.
    pub quiet_steps: u64,
    /// Settled steps (one slow interval each).
    pub settled_steps: u64,
    /// Agent updates (cells × steps).
    pub agent_steps: u64,
    /// Voxel-field updates by the diffusion solver (voxels × fields solved × steps).
    pub voxel_field_updates: u64,
    /// Wall seconds per phase ([`PHASE_NAMES`]): sessions, density, fields, agents, apply +
    /// matrix, epidermis, and the output samples with the matrix update due at their time
    /// ([`SAMPLE_PHASE`]; reported in manifests and benchmarks only, never in compared outputs).
    pub phase_seconds: [f64; PHASE_NAMES.len()],
}

/// One simulated tissue block.
#[derive(Clone)]
pub struct Simulation {
    /// Grid and layers.
    pub geom: Geometry,
    /// Parameters, internal units.
    pub par: Params,
    /// Scenario (resolved).
    pub scenario: Scenario,
    /// Treated or control.
    pub arm: Arm,
    /// Fields.
    pub fields: Fields,
    /// Matrix pools.
    pub matrix: Matrix,
    /// Fibroblasts.
    pub cells: Fibroblasts,
    /// Epidermal thickness per column, µm.
    pub epidermis: Vec<f64>,
    /// Per column: papillary neo collagen (scratch of the epidermis update).
    neo_column: Vec<f64>,
    /// Every channel made so far.
    pub channels: Vec<Channel>,
    /// Realised density of each session so far, per cm².
    pub session_density: Vec<f64>,
    /// Session ticks (empty for the control).
    pub session_ticks: Vec<u64>,
    /// Index of the next session.
    pub next_session: usize,
    /// Current tick (t = tick × dt).
    pub tick: u64,
    /// Length of the last step, h.
    pub last_dt: f64,
    /// Whether the last step was a quiet fast-forward.
    pub last_quiet: bool,
    /// Work counters.
    pub work: WorkStats,
    /// ρ numerator (G ∗ cell count) from the last step.
    pub rho_num: Vec<f32>,
    /// ρ denominator per voxel layer.
    pub rho_den: Vec<f64>,
    rho_self: Vec<f64>,
    smoother: GaussianSmoother,
    smooth_scratch: SmoothScratch,
    counts: Vec<f32>,
    act: Vec<f32>,
    act_touched: Vec<u32>,
    /// Voxel of every cell (scratch of the density count).
    cell_voxels: Vec<u32>,
    /// What the last agent pass left to apply, per block of cells (see [`Fibroblasts::step`]).
    pass_blocks: Vec<PassBlock>,
    /// Deposits of the steps since the last matrix update, in step order, each step's in cell
    /// order: the update adds them to the neo pools (see [`Matrix::update`]).
    pending_dep: Vec<Deposit>,
    /// Pending deposits beyond which they are added to `matrix.dep` early
    /// ([`PENDING_DEPOSITS_MAX`]; the result does not depend on it).
    pending_dep_max: usize,
    /// ∫C dt since the last matrix update on the signal grid of P, T and C (ng/mL·h).
    c_int: Vec<f32>,
    c_int_live: bool,
    /// Hours since the last slow update.
    pending_h: f64,
    /// ∫ρ-numerator dt since the last matrix update (h).
    rho_int: Vec<f32>,
    /// Hours since the last matrix update.
    matrix_pending_h: f64,
    /// Whether the pending span was a quiet fast-forward step.
    pending_quiet: bool,
    /// Ticks between updates of ρ and the matrix.
    slow_ticks: u64,
    /// Ticks of a settled step (divides `slow_ticks`).
    settle_ticks: u64,
    density_stale: bool,
    /// Neo collagen deposited since the last call of [`Simulation::take_deposits`] (I, III), µg,
    /// and the time over which it was deposited, h.
    deposit_ug: [f64; 2],
    deposit_h: f64,
    inflammation_peak: [f64; 3],
    /// Whether fibrin may be ≥ 0.01 somewhere (set by a bleeding session).
    fibrin_high: bool,
}

impl Simulation {
    /// Builds the initial state of one arm of a validated scenario.
    pub fn new(scenario: &Scenario, arm: Arm) -> Self {
        let geom = Geometry::new(scenario);
        let par = Params::new(scenario, geom.age_factor);
        let seed = scenario.seed;
        let cells = Fibroblasts::seeded(&geom, seed);
        let sgeom = geom.signal_grid(scenario.numerics.signal_voxel_um);
        let fields = Fields::new(
            &geom,
            &sgeom,
            &par,
            scenario.numerics.slow_interval_h,
            scenario.numerics.settle_step_h,
        );
        let matrix = Matrix::baseline(&geom);
        let smoother = GaussianSmoother::new(
            geom.nx,
            geom.ny,
            geom.nz,
            geom.h,
            par.sigma_xy,
            par.sigma_z,
            geom.z_pap,
        );
        let mut smooth_scratch = smoother.scratch();
        let (rho_den, rho_self) =
            density_normalisation(&geom, &smoother, &mut smooth_scratch, par.sigma_z);
        let session_ticks = match arm {
            Arm::Treated => scenario
                .schedule
                .days
                .iter()
                .map(|d| (d * 24.0 / par.dt).round() as u64)
                .collect(),
            Arm::Control => Vec::new(),
        };
        let n = geom.voxels();
        let ncol = geom.plane();
        let mut sim = Simulation {
            epidermis: vec![geom.epidermis_nominal_um; ncol],
            neo_column: vec![0.0; ncol],
            geom,
            par,
            scenario: scenario.clone(),
            arm,
            fields,
            matrix,
            cells,
            channels: Vec::new(),
            session_density: Vec::new(),
            session_ticks,
            next_session: 0,
            tick: 0,
            last_dt: 0.0,
            last_quiet: false,
            work: WorkStats::default(),
            rho_num: vec![0.0; n],
            rho_den,
            rho_self,
            smoother,
            smooth_scratch,
            counts: vec![0.0; n],
            act: vec![0.0; n],
            act_touched: Vec::new(),
            cell_voxels: Vec::new(),
            pass_blocks: Vec::new(),
            pending_dep: Vec::new(),
            pending_dep_max: PENDING_DEPOSITS_MAX,
            c_int: vec![0.0; sgeom.voxels()],
            c_int_live: false,
            pending_h: 0.0,
            rho_int: vec![0.0; n],
            matrix_pending_h: 0.0,
            pending_quiet: false,
            slow_ticks: ((scenario.numerics.slow_interval_h / scenario.numerics.dt_h).round()
                as u64)
                .max(1),
            settle_ticks: ((scenario.numerics.settle_step_h / scenario.numerics.dt_h).round()
                as u64)
                .max(1),
            density_stale: true,
            deposit_ug: [0.0; 2],
            deposit_h: 0.0,
            inflammation_peak: [0.0; 3],
            fibrin_high: false,
        };
        sim.burn_in(scenario.numerics.burn_in_days);
        sim
    }

    /// The untreated control of a treated arm that has not started yet: the same state (the
    /// burn-in depends only on the scenario and seed) without the sessions. Equal to
    /// `Simulation::new(scenario, Arm::Control)`, without running the burn-in a second time.
    pub fn control_twin(&self) -> Self {
        assert!(
            self.tick == 0 && self.next_session == 0,
            "the treated arm has started"
        );
        let mut c = self.clone();
        c.arm = Arm::Control;
        c.session_ticks.clear();
        c
    }

    /// Runs the untreated cell dynamics for `days` (one-day quiet steps, matrix untouched) so
    /// that day 0 starts at the stationary density: density-dependent division and death make
    /// the pattern more regular than the random placement, which settles a few per cent above
    /// n_base.
    fn burn_in(&mut self, days: f64) {
        let steps = days.round() as u64;
        for k in 0..steps {
            self.compute_density();
            self.agent_pass(k, 24.0, true, rng::Purpose::BurnIn);
            self.apply_outcomes();
        }
        // Never-activated quiescent cells deposit nothing; clear for certainty.
        self.pending_dep.clear();
        self.matrix.dep.iter_mut().for_each(|d| *d = [0.0; 3]);
        self.deposit_ug = [0.0; 2];
        self.density_stale = true;
    }

    /// The parallel agent pass over `dt` h from `tick`: moves the cells and changes their states
    /// in place, and fills `pass_blocks` with the deposits, deaths and divisions that
    /// [`Simulation::apply_outcomes`] applies.
    fn agent_pass(&mut self, tick: u64, dt: f64, quiet: bool, purpose: rng::Purpose) {
        let inp = AgentInputs {
            geom: &self.geom,
            par: &self.par,
            sgeom: &self.fields.sg,
            pdgf: &self.fields.p,
            tgfb: &self.fields.t,
            rho_num: &self.rho_num,
            rho_den: &self.rho_den,
            rho_self: &self.rho_self,
            fibrin: &self.matrix.fibrin,
            collagen: &self.matrix.total,
            seed: self.scenario.seed,
            tick,
            dt,
            quiet,
            purpose,
        };
        self.cells.step(&inp, &mut self.pass_blocks);
    }

    /// Runs the agent pass of an active step of `dt_h` on a copy of the cells and discards the
    /// copy: the state is unchanged (the copy, ≈ 70 bytes per cell, is timed with the pass). For
    /// benchmarks of the agent kernel.
    pub fn agent_pass_only(&mut self) {
        let cells = self.cells.clone();
        self.agent_pass(self.tick, self.par.dt, false, rng::Purpose::Agent);
        self.cells = cells;
    }

    /// Current time, h.
    pub fn time_h(&self) -> f64 {
        self.tick as f64 * self.par.dt
    }

    /// Current time, days.
    pub fn day(&self) -> f64 {
        self.time_h() / 24.0
    }

    /// Tick of a day.
    pub fn tick_of_day(&self, day: f64) -> u64 {
        (day * 24.0 / self.par.dt).round() as u64
    }

    /// Relative density ρ at voxel `i` (from the last computed counts).
    pub fn rho(&self, i: usize) -> f64 {
        self.rho_num[i] as f64 / self.rho_den[i / self.geom.plane()]
    }

    /// Advances until `tick == target`, never stepping past it or past a session.
    pub fn advance_to(&mut self, target: u64) {
        while self.tick < target {
            self.step(target);
        }
    }

    /// One step (active or quiet), not past `limit`.
    pub fn step(&mut self, limit: u64) {
        let mut clock = std::time::Instant::now();
        let mut lap = |k: usize, work: &mut WorkStats| {
            let now = std::time::Instant::now();
            work.phase_seconds[k] += (now - clock).as_secs_f64();
            clock = now;
        };
        // 1. Sessions due now.
        if self.next_session < self.session_ticks.len()
            && self.session_ticks[self.next_session] <= self.tick
        {
            self.sync();
            self.apply_session(self.next_session);
            self.next_session += 1;
            self.density_stale = true;
        }
        lap(0, &mut self.work);
        let quiet = self.scenario.numerics.fast_forward && self.is_quiet();
        // 2. ρ from positions at t_n, on the slow clock (the matrix is brought up to date with
        //    the ρ it was integrating under before ρ changes).
        if quiet || self.density_stale || self.tick % self.slow_ticks == 0 {
            self.sync_slow();
            if self.matrix_pending_h >= MATRIX_SPAN_H - 1e-9 {
                self.sync();
            }
            self.compute_density();
            self.density_stale = false;
        }
        lap(1, &mut self.work);
        let mut ticks = 1u64;
        if quiet {
            let max_ticks = ((self.scenario.numerics.max_dt_h / self.par.dt).floor() as u64).max(1);
            let next_s = self
                .session_ticks
                .get(self.next_session)
                .copied()
                .unwrap_or(u64::MAX);
            ticks = max_ticks
                .min(limit - self.tick)
                .min(next_s.saturating_sub(self.tick))
                .max(1);
        }
        // A settled step spans the slow interval: from a slow boundary, once the platelet
        // release of the last session has decayed (docs/model.md §7).
        let settled = !quiet && self.is_settled() && {
            let next_s = self
                .session_ticks
                .get(self.next_session)
                .copied()
                .unwrap_or(u64::MAX);
            self.tick + self.settle_ticks <= limit.min(next_s)
        };
        if settled {
            ticks = self.settle_ticks;
        }
        let dt = ticks as f64 * self.par.dt;
        // 3. Fields.
        if quiet {
            self.fields.quiet_zero();
        } else {
            let act = self.activated_density().then_some(&self.act[..]);
            let solved = if settled {
                self.fields
                    .settled_step(&self.par, act, dt, &mut self.c_int)
            } else {
                self.fields
                    .fast_step(&self.par, act, self.pending_h, &mut self.c_int)
            };
            self.c_int_live |= solved > 0;
            self.work.voxel_field_updates += solved * self.fields.sg.voxels() as u64;
        }
        lap(2, &mut self.work);
        // 4. Agents.
        self.agent_pass(self.tick, dt, quiet, rng::Purpose::Agent);
        self.work.agent_steps += self.cells.len() as u64;
        lap(3, &mut self.work);
        // 5. Apply outcomes, deposits, matrix.
        self.apply_outcomes();
        self.pending_h += dt;
        self.deposit_h += dt;
        if quiet {
            self.pending_quiet = true;
            self.sync();
        }
        lap(4, &mut self.work);
        // 6. Epidermis.
        self.update_epidermis(dt);
        lap(5, &mut self.work);
        self.tick += ticks;
        self.last_dt = dt;
        self.last_quiet = quiet;
        if quiet {
            self.work.quiet_steps += 1;
        } else if settled {
            self.work.settled_steps += 1;
        } else {
            self.work.active_steps += 1;
        }
    }

    /// Brings the slow clock and the matrix up to date (see [`Simulation::sync_slow`]), then
    /// integrates the matrix over the time since its last update (with the ∫ρ dt and ∫C dt of
    /// that span), applying the deposits accumulated meanwhile. Called before a session, after a
    /// quiet step, before sampling (sample times fall on slow-clock boundaries, so sampling does
    /// not change the trajectory) and whenever [`MATRIX_SPAN_H`] has passed.
    pub fn sync(&mut self) {
        self.sync_with(false);
    }

    /// [`Simulation::sync`] for a sample: when the matrix is updated now, also returns the
    /// checked sums of each plane of its pools from the dermis top down (the planes above
    /// are not updated), found while the update had them in cache, so that the sample need not
    /// read the pools again (see [`crate::observe::sample::plane_sums`]).
    pub fn sync_sampled(&mut self) -> Option<Vec<PoolSums>> {
        self.sync_with(true)
    }

    fn sync_with(&mut self, want_sums: bool) -> Option<Vec<PoolSums>> {
        self.sync_slow();
        if want_sums {
            self.fields.refresh_outputs();
        }
        if self.matrix_pending_h <= 0.0 {
            return None;
        }
        // The update zeroes the dermal planes of ∫C dt and ∫ρ dt as it consumes them; ∫C dt
        // above the dermis (the fields reach into the epidermis) is zeroed here. ∫ρ dt is
        // accumulated over the dermis only.
        let top = self.geom.z_pap * self.geom.plane();
        let c_int = if !self.c_int_live {
            None
        } else if let Some(v) = self.fields.c_int_on_voxels(&self.c_int) {
            // On a coarser signal grid: prolonged to the voxel grid, and consumed here.
            self.c_int.fill(0.0);
            Some(v)
        } else {
            self.c_int[..top].fill(0.0);
            Some(&mut self.c_int[..])
        };
        let sums = self.matrix.update(
            &self.geom,
            &self.par,
            c_int,
            &mut self.rho_int,
            &self.rho_den,
            self.matrix_pending_h,
            &self.pending_dep,
            want_sums,
        );
        self.pending_dep.clear();
        self.c_int_live = false;
        self.matrix_pending_h = 0.0;
        sums
    }

    /// Brings the slow clock up to date: advances N, W, M and B over the time since the last
    /// slow update and adds ρ × that time to ∫ρ dt (ρ is recomputed right after, at the
    /// boundary). Called at slow-clock boundaries and by [`Simulation::sync`].
    pub fn sync_slow(&mut self) {
        if self.pending_h <= 0.0 {
            return;
        }
        self.fields
            .slow_step(&self.geom, &self.par, self.pending_h, !self.pending_quiet);
        let span = self.pending_h as f32;
        let start = self.geom.z_pap * self.geom.plane();
        self.rho_int[start..]
            .par_iter_mut()
            .zip(self.rho_num[start..].par_iter())
            .with_min_len(4096)
            .for_each(|(a, &r)| *a += r * span);
        self.matrix_pending_h += self.pending_h;
        self.pending_h = 0.0;
        self.pending_quiet = false;
    }

    fn compute_density(&mut self) {
        self.cells.sort_by_voxel(&self.geom);
        // Counts are whole numbers: the order of the additions does not matter.
        self.counts
            .par_chunks_mut(self.geom.plane())
            .for_each(|c| c.fill(0.0));
        let g = &self.geom;
        self.cell_voxels.clear();
        self.cell_voxels.par_extend(
            self.cells
                .pos
                .par_iter()
                .with_min_len(CELLS_PER_TASK)
                .map(|p| g.voxel_of(*p) as u32),
        );
        for &i in &self.cell_voxels {
            self.counts[i as usize] += 1.0;
        }
        self.smoother
            .smooth(&self.counts, &mut self.rho_num, &mut self.smooth_scratch);
    }

    /// Fills `act` with the relative activated density; false when no cell is activated.
    fn activated_density(&mut self) -> bool {
        let [_, a, m] = self.cells.counts();
        if a + m == 0 {
            return false;
        }
        for &i in &self.act_touched {
            self.act[i as usize] = 0.0;
        }
        self.act_touched.clear();
        let plane = self.geom.plane();
        // Voxels of the activated cells in parallel, in cell order; the additions stay serial.
        let g = &self.geom;
        self.act_touched.par_extend(
            self.cells
                .pos
                .par_iter()
                .zip(self.cells.state.par_iter())
                .with_min_len(CELLS_PER_TASK)
                .filter_map(|(p, s)| (*s != CellState::Quiescent).then(|| g.voxel_of(*p) as u32)),
        );
        for &i in &self.act_touched {
            let i = i as usize;
            let layer = self.geom.layer_of_z(i / plane);
            self.act[i] += (1.0 / self.geom.baseline(layer).cells_per_voxel) as f32;
        }
        true
    }

    /// Whether the next step may be a settled one: on the settled-step grid (which divides
    /// the slow clock), `settle_after_days` or more after the last session, with a settled step
    /// longer than one tick.
    fn is_settled(&self) -> bool {
        if self.next_session == 0 || self.settle_ticks <= 1 || self.tick % self.settle_ticks != 0 {
            return false;
        }
        let last = self.session_ticks[self.next_session - 1];
        let after = self.tick.saturating_sub(last) as f64 * self.par.dt;
        after >= self.scenario.numerics.settle_after_days * 24.0
    }

    /// The quiet criterion of the fast-forward. Fields known to be zero are not scanned.
    pub fn is_quiet(&mut self) -> bool {
        let [_, a, m] = self.cells.counts();
        if a + m > 0 {
            return false;
        }
        let f = &self.fields;
        let maxv = |v: &[f32]| v.iter().fold(0.0f32, |a, &b| a.max(b)) as f64;
        if f.slow_live {
            let below = |v: &[f32], peak: f64| {
                let mx = maxv(v);
                mx == 0.0 || mx < 1e-3 * peak
            };
            let [pw, pn, pm] = self.inflammation_peak;
            if !(below(&f.w, pw) && below(&f.n, pn) && below(&f.m, pm)) {
                return false;
            }
            if f.plt.iter().any(|&b| b > 1e-3) {
                return false;
            }
        }
        if f.fast_live.iter().any(|&l| l) {
            let (pmax, tmax) = (maxv(&f.p), maxv(&f.t));
            let h = 0.5 * (pmax / (pmax + self.par.k_sp) + tmax / (tmax + self.par.k_st));
            if h >= self.par.h0 / 10.0 {
                return false;
            }
        }
        if self.fibrin_high {
            // Fibrin only decays between sessions: once below 0.01 everywhere it stays so.
            if self.matrix.fibrin.iter().any(|&v| v >= 0.01) {
                return false;
            }
            self.fibrin_high = false;
        }
        true
    }

    fn apply_session(&mut self, k: usize) {
        let dev = self.scenario.device_for_session(k).clone();
        let session = k as u32 + 1;
        let chans = treatment::place_channels(
            &dev,
            &self.geom,
            self.scenario.seed,
            session,
            self.time_h(),
            self.scenario.tissue.epidermis_um,
        );
        let inj = treatment::injury(&chans, &self.geom, &dev);
        let plane = self.geom.plane();
        let z_pap = self.geom.z_pap;
        let m = &mut self.matrix;
        m.neo_live = true;
        let f = &mut self.fields;
        let mut wmax = 0.0f64;
        for v in &inj {
            if v.idx / plane < z_pap {
                continue;
            }
            let keep = 1.0 - dev.fragmentation * v.phi;
            let i = v.idx;
            m.col1[i] *= keep;
            m.col3[i] *= keep;
            m.el[i] *= keep;
            m.n1[i] *= keep;
            m.n3[i] *= keep;
            m.ne[i] *= keep;
            m.total[i] = m.collagen(i);
            let w = (f.w[i] as f64).max(v.damage).min(1.0);
            f.w[i] = w as f32;
            wmax = wmax.max(w);
            if v.phi_bleed > 0.0 {
                m.fibrin[i] = m.fibrin[i].max(v.phi_bleed);
                f.plt[i] += v.phi_bleed as f32;
            }
        }
        // Cells inside a cone are killed.
        let (lx, ly) = (self.geom.lx(), self.geom.ly());
        let keep: Vec<bool> = self
            .cells
            .pos
            .iter()
            .map(|p| !chans.iter().any(|c| c.distance(*p, lx, ly) <= 0.0))
            .collect();
        retain_cells(&mut self.cells, &keep);
        // Expected inflammation peaks for W = wmax (single-voxel solution), for the quiet test.
        let par = &self.par;
        let tn = (par.delta_n / par.k_w).ln() / (par.delta_n - par.k_w);
        let npk = par.a_n / (par.delta_n - par.k_w)
            * ((-par.k_w * tn).exp() - (-par.delta_n * tn).exp())
            * wmax;
        self.inflammation_peak = [wmax, npk, npk * par.a_m / par.delta_m * 0.6];
        self.session_density
            .push(treatment::density_per_cm2(&chans, &self.geom));
        self.channels.extend(chans);
        self.fields.wake();
        self.fibrin_high = true;
    }

    /// Applies what the agent pass left in `pass_blocks`: its deposits are appended to the
    /// pending ones (in cell order), daughters are appended in parent order (inheriting state,
    /// τ, τ_q and home layer), and the dead are removed.
    fn apply_outcomes(&mut self) {
        let vox = self.geom.voxel_mm3();
        let blocks = &self.pass_blocks;
        // Deposits in cell order: each block copies its own into its span of the list, in
        // parallel, in the list's spare capacity (filling the list with defaults first would be
        // a serial pass over about 2 MB per step).
        let first = self.pending_dep.len();
        let total: usize = blocks.iter().map(|b| b.deposits.len()).sum();
        self.pending_dep.reserve(total);
        let mut spans = Vec::with_capacity(blocks.len());
        let mut rest = &mut self.pending_dep.spare_capacity_mut()[..total];
        for b in blocks {
            let (span, tail) = rest.split_at_mut(b.deposits.len());
            spans.push(span);
            rest = tail;
        }
        blocks.par_iter().zip(spans).for_each(|(b, span)| {
            for (slot, d) in span.iter_mut().zip(&b.deposits) {
                slot.write(*d);
            }
        });
        // SAFETY: the spans cover the first `total` slots of the spare capacity exactly (their
        // lengths are the blocks' deposit counts, which sum to `total`), and each was written
        // in full above.
        unsafe { self.pending_dep.set_len(first + total) };
        // The deposited totals, summed in cell order.
        let mut dep = [0.0f64; 2];
        for d in &self.pending_dep[first..] {
            dep[0] += d.col1 * vox;
            dep[1] += d.col3 * vox;
        }
        self.deposit_ug[0] += dep[0];
        self.deposit_ug[1] += dep[1];
        // Deaths and divisions, in cell order.
        let c = &mut self.cells;
        let n = c.len();
        let mut keep: Option<Vec<bool>> = None;
        for &(i, fate) in blocks.iter().flat_map(|b| &b.events) {
            let i = i as usize;
            match fate {
                Fate::Die => keep.get_or_insert_with(|| vec![true; n])[i] = false,
                Fate::Divide(p, u) => {
                    let (s, t, tq, h) = (c.state[i], c.tau[i], c.tau_q[i], c.home[i]);
                    c.push(p, u, h);
                    let j = c.len() - 1;
                    c.state[j] = s;
                    c.tau[j] = t;
                    c.tau_q[j] = tq;
                }
                Fate::Live => {}
            }
        }
        if let Some(mut keep) = keep {
            keep.resize(c.len(), true);
            retain_cells(c, &keep);
        }
        if !self.pending_dep.is_empty() {
            self.matrix.neo_live = true;
        }
        if self.pending_dep.len() >= self.pending_dep_max {
            self.flush_deposits();
        }
    }

    /// Adds the pending deposits into `matrix.dep` (in parallel by slabs of planes, each
    /// voxel's in the order they were made), when more are pending than the buffer holds:
    /// the matrix update adds the later ones on top, so the sums are the same.
    fn flush_deposits(&mut self) {
        if self.pending_dep.is_empty() {
            return;
        }
        add_deposits(&self.geom, &mut self.matrix.dep, &self.pending_dep);
        self.pending_dep.clear();
        self.matrix.dep_live = true;
    }

    /// `matrix.dep` with the pending deposits added (for a checkpoint, which must not change
    /// the state it writes).
    pub(crate) fn deposits_with_pending(&self) -> std::borrow::Cow<'_, [[f64; 3]]> {
        if self.pending_dep.is_empty() {
            return std::borrow::Cow::Borrowed(&self.matrix.dep);
        }
        let mut d = self.matrix.dep.clone();
        add_deposits(&self.geom, &mut d, &self.pending_dep);
        std::borrow::Cow::Owned(d)
    }

    fn update_epidermis(&mut self, dt: f64) {
        let g = &self.geom;
        let plane = g.plane();
        let base = g.papillary.col1 + g.papillary.col3;
        let layers = (g.z_ret - g.z_pap) as f64;
        let decay = (-dt / self.par.tau_e).exp();
        let target0 = g.epidermis_nominal_um;
        let gain = self.par.g_e;
        let m = &self.matrix;
        // Column sums of the papillary neo collagen, plane by plane (contiguous reads; each
        // column still adds its planes from the top down).
        let neo = &mut self.neo_column;
        neo.fill(0.0);
        for z in g.z_pap..g.z_ret {
            let r = z * plane..(z + 1) * plane;
            for ((s, a), b) in neo.iter_mut().zip(&m.n1[r.clone()]).zip(&m.n3[r]) {
                *s += a + b;
            }
        }
        for (e, &neo) in self.epidermis.iter_mut().zip(neo.iter()) {
            let ghat = if layers > 0.0 && base > 0.0 {
                (neo / (base * layers)).clamp(0.0, 1.0)
            } else {
                0.0
            };
            let target = target0 * (1.0 + gain * ghat);
            *e = target + (*e - target) * decay;
        }
    }

    /// Ticks of one slow-clock interval.
    pub fn slow_ticks(&self) -> u64 {
        self.slow_ticks
    }

    /// Neo collagen I and III deposited since the previous call, µg, and the time span, h.
    pub fn take_deposits(&mut self) -> ([f64; 2], f64) {
        let out = (self.deposit_ug, self.deposit_h);
        self.deposit_ug = [0.0; 2];
        self.deposit_h = 0.0;
        out
    }

    /// Fraction of the surface covered by channels whose barrier is still open.
    pub fn open_channel_fraction(&self) -> f64 {
        let t = self.time_h();
        let area = self.geom.lx() * self.geom.ly();
        let open: f64 = self
            .channels
            .iter()
            .filter(|c| c.t_h <= t)
            .map(|c| {
                std::f64::consts::PI * c.r0 * c.r0 * (-(t - c.t_h) / self.par.tau_barrier).exp()
            })
            .sum();
        (open / area).min(1.0)
    }
}

/// Pending deposits (72 bytes each) beyond which they are added to `matrix.dep` before
/// the next matrix update, bounding the buffer at about 9.4 MB (more than the 6 h between matrix
/// updates of settled steps make in the default block; fine steps may reach it).
pub const PENDING_DEPOSITS_MAX: usize = 1 << 17;

/// Adds cloud-in-cell deposits (in their order) to `dst`, one `[col1, col3, elastin]` per
/// voxel, with [`scatter_ordered`].
fn add_deposits(g: &Geometry, dst: &mut [[f64; 3]], items: &[Deposit]) {
    scatter_ordered(
        dst,
        g.plane(),
        items,
        |d| Some(d.span(g)),
        |d, slab, off| matrix::add_deposit(g, d, slab, off),
        |d, slab, off| fibroblasts::prefetch_slots(slab, off, d.corner_indices(g)),
    );
}

/// Keeps the cells whose flag is true, preserving order.
fn retain_cells(c: &mut Fibroblasts, keep: &[bool]) {
    if keep.iter().all(|&k| k) {
        return;
    }
    macro_rules! filt {
        ($v:expr) => {{
            let mut k = keep.iter();
            $v.retain(|_| *k.next().unwrap());
        }};
    }
    filt!(c.id);
    filt!(c.pos);
    filt!(c.dir);
    filt!(c.state);
    filt!(c.tau);
    filt!(c.tau_q);
    filt!(c.home);
}

/// Cells per parallel task of the per-cell passes around the agent step (finding the voxels of
/// the density count and of the activated cells).
const CELLS_PER_TASK: usize = 2048;

/// Denominator of ρ per voxel layer (G ∗ n_base V, laterally uniform) and the self-contribution
/// of one cell at its own voxel per layer (found by smoothing impulses spaced further apart in z
/// than the kernel reaches).
fn density_normalisation(
    g: &Geometry,
    sm: &GaussianSmoother,
    scratch: &mut SmoothScratch,
    sigma_z: f64,
) -> (Vec<f64>, Vec<f64>) {
    let n = g.voxels();
    let plane = g.plane();
    let mut input = vec![0.0f32; n];
    let mut out = vec![0.0f32; n];
    for z in g.z_pap..g.nz {
        let b = g.baseline(g.layer_of_z(z)).cells_per_voxel as f32;
        input[z * plane..(z + 1) * plane]
            .iter_mut()
            .for_each(|v| *v = b);
    }
    sm.smooth(&input, &mut out, scratch);
    let den: Vec<f64> = (0..g.nz)
        .map(|z| {
            if z < g.z_pap {
                1.0
            } else {
                out[z * plane] as f64
            }
        })
        .collect();
    let mut selfw = vec![0.0f64; g.nz];
    let reach = (3.0 * sigma_z / g.h).ceil() as usize + 1;
    let period = 2 * reach + 1;
    for r in 0..period {
        input.iter_mut().for_each(|v| *v = 0.0);
        let zs: Vec<usize> = (g.z_pap..g.nz)
            .filter(|z| (z - g.z_pap) % period == r)
            .collect();
        if zs.is_empty() {
            continue;
        }
        for &z in &zs {
            input[z * plane] = 1.0;
        }
        sm.smooth(&input, &mut out, scratch);
        for &z in &zs {
            selfw[z] = out[z * plane] as f64 / den[z];
        }
    }
    (den, selfw)
}

/// Runs `f` in a rayon pool of `threads` threads (for the tests that compare results across
/// thread counts).
#[cfg(test)]
pub(crate) fn in_pool<R: Send>(threads: usize, f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("a test thread pool")
        .install(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same(a: &Simulation, b: &Simulation) {
        let (x, y) = (a.state_bytes(), b.state_bytes());
        let first = x.iter().zip(&y).position(|(p, q)| p != q);
        assert!(
            x.len() == y.len() && first.is_none(),
            "states differ: lengths {} and {}, first difference at byte {first:?}",
            x.len(),
            y.len()
        );
    }

    /// The default scenario on a 300 µm block with a 10-day burn-in.
    fn small_scenario() -> Scenario {
        let mut sc = Scenario::default();
        sc.tissue.domain_um = [300.0, 300.0];
        sc.output.section_y_um = 150.0;
        sc.numerics.burn_in_days = 10.0;
        sc
    }

    #[test]
    fn control_twin_equals_a_control_built_from_the_scenario() {
        let sc = small_scenario();
        let treated = Simulation::new(&sc, Arm::Treated);
        let mut twin = treated.control_twin();
        let mut built = Simulation::new(&sc, Arm::Control);
        assert!(twin.session_ticks.is_empty() && twin.arm == Arm::Control);
        same(&twin, &built);
        for _ in 0..20 {
            twin.step(u64::MAX);
            built.step(u64::MAX);
        }
        same(&twin, &built);
        assert!(!treated.session_ticks.is_empty());
    }

    /// Deposits added to the grid early (every step, in the extreme) and those the matrix
    /// update adds from the pending list give the same sums, bit for bit.
    #[test]
    fn deposits_added_early_give_the_same_state() {
        let sc = small_scenario();
        let mut late = Simulation::new(&sc, Arm::Treated);
        let mut early = late.clone();
        early.pending_dep_max = 1;
        let mut early_seen = false;
        let end = late.tick_of_day(6.0);
        while late.tick < end {
            late.step(end);
            early.step(end);
            early_seen |= early.matrix.dep_live;
            same(&late, &early);
        }
        assert!(early_seen, "no deposit was added early");
        assert!(!late.pending_dep.is_empty() || late.matrix_pending_h == 0.0);
        late.sync();
        early.sync();
        same(&late, &early);
        assert!(
            late.matrix.n1.iter().sum::<f64>() > 0.0,
            "no deposit was made"
        );
    }
}
