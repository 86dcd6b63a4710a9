//! `fibrosim bench`: the reference workload of the engine's performance work, independent of
//! any scenario, and a timing of any scenario file.
//!
//! The reference workload ([`Config::default`]): a 2000 × 2000 × 1600 µm block of 20 µm voxels
//! (100 × 100 × 80 = 800 000 voxels); 4 diffusing fields, each D = 108 000 µm²/h and decay
//! 0.625 /h, solved with the engine's [`LodSolver`]; 21 000 fibroblasts placed uniformly at
//! random in the dermis, all activated and motile (20 µm/h, persistence 2 h, chemotaxis bias
//! 0.5 up the gradient of field 0, secreting into field 1 by cloud-in-cell deposit), with no
//! division or death; step 0.25 h; 2 simulated days (192 steps).
//!
//! One step: sources are added (a fixed source in field 0, the agents' deposits of the
//! previous step in field 1), the 4 fields are solved, then every agent reads the gradient of
//! field 0 at its position ([`sample_gradient`]), turns and moves ([`confine`]) and computes
//! its deposit ([`cic_deposit`]) in a parallel pass writing only its own output (the turn and
//! the move run on several agents per vector, with the same bits as those functions); the
//! deposits are then summed into the source buffer in agent order, so the result does not
//! depend on the number of threads. Random numbers come from the engine's counter-based
//! [`Stream`].

use rayon::prelude::*;
use serde::Serialize;
use std::fmt::Write as _;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use crate::scenario::{self, Scenario};
use crate::sim::diffusion::{LodScratch, LodSolver, has_avx2, row_kernel};
use crate::sim::fibroblasts::{
    apply_order, cic_deposit, confine, index_span, prefetch_gradient, prefetch_slots,
    sample_gradient, scatter_ordered, voxel_order,
};
use crate::sim::rng::{Purpose, Stream};
use crate::sim::tissue::Geometry;
use crate::sim::{PHASE_NAMES, SAMPLE_PHASE};

/// The reference workload's parameters.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    /// Block size, µm (x, y); depth comes from the face-cheek layers (50 + 250 + 1300 µm).
    pub domain_um: [f64; 2],
    /// Voxel edge, µm.
    pub voxel_um: f64,
    /// Diffusing fields.
    pub fields: usize,
    /// Diffusivity of every field, µm²/h.
    pub diffusivity_um2_per_h: f64,
    /// Decay of every field, /h.
    pub decay_per_h: f64,
    /// Fibroblasts.
    pub agents: usize,
    /// Speed, µm/h.
    pub speed_um_per_h: f64,
    /// Persistence time, h.
    pub persistence_h: f64,
    /// Largest chemotactic bias (χ).
    pub chemotaxis: f64,
    /// Gradient of half-maximal bias, field units per µm.
    pub gradient_half: f64,
    /// Secretion into field 1 per agent, field units × voxel per h.
    pub secretion_per_h: f64,
    /// Time step, h.
    pub dt_h: f64,
    /// Simulated days.
    pub days: f64,
    /// Random seed.
    pub seed: u64,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            domain_um: [2000.0, 2000.0],
            voxel_um: 20.0,
            fields: 4,
            diffusivity_um2_per_h: 108_000.0,
            decay_per_h: 0.625,
            agents: 21_000,
            speed_um_per_h: 20.0,
            persistence_h: 2.0,
            chemotaxis: 0.5,
            gradient_half: 0.002,
            secretion_per_h: 0.004,
            dt_h: 0.25,
            days: 2.0,
            seed: 1,
        }
    }
}

/// Steps between re-sorts of the agents by voxel (an agent moves 5 µm, a quarter voxel, per
/// step).
pub const SORT_EVERY: u64 = 8;

/// Agents per parallel task of the agent pass.
const AGENT_CHUNK: usize = 512;

/// How many agents ahead the agent pass prefetches the field rows it will read.
const PREFETCH_AHEAD: usize = 4;

/// Agents per stage of the agent pass (a block whose staged values stay in L1).
const STAGE: usize = 64;

/// One stage's values, by component then agent, so that a component of consecutive agents is
/// one vector.
#[derive(Clone)]
struct Staged {
    /// Gradient of field 0.
    grad: [[f64; STAGE]; 3],
    /// Random unit vector.
    xi: [[f64; STAGE]; 3],
    /// Direction: before the turn, then after it.
    u: [[f64; STAGE]; 3],
    /// The direction's z component after the move (reversed by a reflection in z).
    uz: [f64; STAGE],
    /// Position: before the move, then after it.
    p: [[f64; STAGE]; 3],
    /// Cloud-in-cell voxels of the deposit ([`Deposit::corners`]' order).
    idx: [[u32; STAGE]; 8],
    /// Cloud-in-cell amounts.
    amt: [[f32; STAGE]; 8],
}

impl Default for Staged {
    fn default() -> Self {
        Staged {
            grad: [[0.0; STAGE]; 3],
            xi: [[0.0; STAGE]; 3],
            u: [[0.0; STAGE]; 3],
            uz: [0.0; STAGE],
            p: [[0.0; STAGE]; 3],
            idx: [[0; STAGE]; 8],
            amt: [[0.0; STAGE]; 8],
        }
    }
}

// The persistent random walk's turn of the first `n` agents of a stage, `k` = [χ, g½,
// e^(−dt/τ), √(1 − e^(−2dt/τ))]: bias b = χ |g| / (|g| + g½) along the gradient's direction ĝ,
// d = b ĝ + e^(−dt/τ) (u − b ĝ) + √(1 − e^(−2dt/τ)) ξ, and u ← d / |d| (ξ when d = 0). Lanes
// are agents: with AVX2 four at a time, with the same operations, so the same bits, as one at
// a time.
row_kernel!(turn_agents, turn_agents_base, turn_agents_avx2,
    (st: &mut Staged, n: usize, k: [f64; 4]), {
    let [chi, half, decay, noise] = k;
    let n = n.min(STAGE);
    let [gx, gy, gz] = &st.grad;
    let [xx, xy, xz] = &st.xi;
    let [ux, uy, uz] = &mut st.u;
    for j in 0..n {
        let (g, xi) = ([gx[j], gy[j], gz[j]], [xx[j], xy[j], xz[j]]);
        let gn = (g[0] * g[0] + g[1] * g[1] + g[2] * g[2]).sqrt();
        let live = gn > 0.0;
        let b = if live { chi * gn / (gn + half) } else { 0.0 };
        let gh = g.map(|v| if live { v / gn } else { 0.0 });
        let u = [ux[j], uy[j], uz[j]];
        let mut d = [0.0; 3];
        for k in 0..3 {
            d[k] = b * gh[k] + decay * (u[k] - b * gh[k]) + noise * xi[k];
        }
        let dn = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
        let ok = dn > 0.0;
        ux[j] = if ok { d[0] / dn } else { xi[0] };
        uy[j] = if ok { d[1] / dn } else { xi[1] };
        uz[j] = if ok { d[2] / dn } else { xi[2] };
    }
});

/// What [`move_agents`] needs: the step length (µm), the block's sizes in x and y and the
/// dermis' top and bottom (µm), the voxel edge (µm), nx, ny, the first dermal voxel layer and
/// nz (as f64), and the amount secreted per step.
#[derive(Debug, Clone, Copy)]
struct MoveConsts {
    step: f64,
    lx: f64,
    ly: f64,
    lo: f64,
    hi: f64,
    h: f64,
    nx: f64,
    ny: f64,
    zpap: f64,
    nz: f64,
    /// The last voxel's index (below 2³¹).
    last: f64,
    amount: f64,
}

impl MoveConsts {
    /// The constants for the grid `g`, a step of `step` µm and `amount` secreted per step.
    fn new(g: &Geometry, step: f64, amount: f64) -> Self {
        assert!(
            g.voxels() <= i32::MAX as usize,
            "the vector move keeps voxel indices below 2³¹"
        );
        MoveConsts {
            step,
            lx: g.lx(),
            ly: g.ly(),
            lo: g.dermis_top(),
            hi: g.lz(),
            h: g.h,
            nx: g.nx as f64,
            ny: g.ny as f64,
            zpap: g.z_pap as f64,
            nz: g.nz as f64,
            last: (g.voxels() - 1) as f64,
            amount,
        }
    }
}

// Moves the first `n` agents of a stage one step along their direction, keeps them in the
// dermis as [`confine`] does, and computes their deposits as [`cic_deposit`] and
// [`Deposit::corners`] do, with the same operations (indices are whole numbers in f64, exact):
// four agents per vector with AVX2. Only the case of every real step is handled: at most one
// wrap in x and y and one reflection in z. Returns false if an agent needed more (a step longer
// than the block); its values are then not valid and the caller redoes the stage with
// [`confine`] from the directions, which the call leaves as they were (it writes the new z
// components apart).
row_kernel!(move_agents, move_agents_base, move_agents_avx2,
    (st: &mut Staged, n: usize, k: &MoveConsts) -> bool, {
    let n = n.min(STAGE);
    let [px, py, pz] = &mut st.p;
    let [ux, uy, uz] = &st.u;
    let mut ok = true;
    // One period added or taken off: `wrap_coord` for positions, `wrap_small` for indices.
    let wrap = |x: f64, l: f64| {
        if x < 0.0 {
            x + l
        } else if x >= l {
            x - l
        } else {
            x
        }
    };
    for j in 0..n {
        let x = wrap(px[j] + k.step * ux[j], k.lx);
        let y = wrap(py[j] + k.step * uy[j], k.ly);
        // One reflection, then the clamp (`confine`).
        let z0 = pz[j] + k.step * uz[j];
        let below = z0 < k.lo;
        let above = !below && z0 >= k.hi;
        let z1 = if below {
            2.0 * k.lo - z0
        } else if above {
            2.0 * k.hi - z0 - 1e-9
        } else {
            z0
        };
        ok &= (0.0..k.lx).contains(&x) & (0.0..k.ly).contains(&y) & (k.lo..k.hi).contains(&z1);
        let top = k.hi - 1e-9;
        let z = if z1 < k.lo { k.lo } else { z1 };
        let z = if z > top { top } else { z };
        st.uz[j] = if below | above { -uz[j] } else { uz[j] };
        (px[j], py[j], pz[j]) = (x, y, z);
        // Cloud-in-cell (`cic_deposit`, `Deposit::corners`).
        let f = [x / k.h - 0.5, y / k.h - 0.5, z / k.h - 0.5];
        let c0 = f.map(f64::floor);
        let t = [f[0] - c0[0], f[1] - c0[1], f[2] - c0[2]];
        let xs = [wrap(c0[0], k.nx), wrap(c0[0] + 1.0, k.nx)];
        let ys = [wrap(c0[1], k.ny), wrap(c0[1] + 1.0, k.ny)];
        let zc = |z: f64| {
            let z = if z < k.zpap { k.zpap } else { z };
            if z > k.nz - 1.0 { k.nz - 1.0 } else { z }
        };
        let zs = [zc(c0[2]), zc(c0[2] + 1.0)];
        let (wx, wy, wz) = ([1.0 - t[0], t[0]], [1.0 - t[1], t[1]], [1.0 - t[2], t[2]]);
        for c in 0..8 {
            let (a, b, e) = (c / 4, (c / 2) % 2, c % 2);
            let i = xs[e] + k.nx * (ys[b] + k.ny * zs[a]);
            // Only a lane this call reports as not valid can fall outside the grid (or be NaN).
            let i = if (0.0..=k.last).contains(&i) { i } else { 0.0 };
            // SAFETY: i is finite and in [0, last], and last < 2³¹ (checked in `MoveConsts::new`),
            // so it is representable as i32. (`as i32` would clamp and test for NaN lane by lane.)
            st.idx[c][j] = unsafe { i.to_int_unchecked::<i32>() } as u32;
            st.amt[c][j] = (wx[e] * wy[b] * wz[a] * k.amount) as f32;
        }
    }
    ok
});

/// One agent's secretion of a step into field 1: cloud-in-cell voxels and amounts.
#[derive(Debug, Clone, Copy, Default)]
pub struct AgentOut {
    /// Voxel indices.
    pub idx: [u32; 8],
    /// Amount per voxel (weight × secretion), field units × voxel.
    pub amount: [f32; 8],
}

/// The reference workload, ready to step.
pub struct Reference {
    /// Parameters.
    pub cfg: Config,
    /// The grid.
    pub geom: Geometry,
    solver: LodSolver,
    scratch: LodScratch,
    /// The diffusing fields.
    pub fields: Vec<Vec<f32>>,
    /// Source of field 0 (fixed) per voxel, per step.
    source0: Vec<(usize, f32)>,
    /// Sources of field 1 from the last deposits, per voxel.
    source1: Vec<f32>,
    /// Agent ids (keys of their random streams; storage is reordered by voxel).
    pub id: Vec<u64>,
    /// Agent positions, µm.
    pub pos: Vec<[f64; 3]>,
    dir: Vec<[f64; 3]>,
    out: Vec<AgentOut>,
    tick: u64,
    /// Wall seconds in the diffusion solves.
    pub diffusion_s: f64,
    /// Wall seconds in the agent pass and the deposit reduction.
    pub agents_s: f64,
}

fn geometry(cfg: &Config) -> Geometry {
    let text = format!(
        "name = \"bench\"\n[tissue]\nsite = \"face_cheek\"\ndomain_um = [{}, {}]\nvoxel_um = {}\n",
        cfg.domain_um[0], cfg.domain_um[1], cfg.voxel_um
    );
    let s = scenario::parse(&text, std::path::Path::new("bench.toml"))
        .expect("the reference block is a valid scenario");
    Geometry::new(&s)
}

impl Reference {
    /// Builds the block, the fields (field 0 with a fixed source column at the centre, fields
    /// 2 and 3 with a deterministic pattern) and the agents.
    pub fn new(cfg: Config) -> Self {
        let g = geometry(&cfg);
        let n = g.voxels();
        let solver = LodSolver::new(
            g.nx,
            g.ny,
            g.nz,
            g.h,
            cfg.diffusivity_um2_per_h,
            cfg.decay_per_h,
            cfg.dt_h,
        );
        let scratch = solver.scratch();
        let mut fields = vec![vec![0.0f32; n]; cfg.fields];
        for f in fields.iter_mut().skip(2) {
            for (i, v) in f.iter_mut().enumerate() {
                *v = 1.0 + ((i.wrapping_mul(2_654_435_761)) % 1000) as f32 / 1000.0;
            }
        }
        let (cx, cy) = (g.nx / 2, g.ny / 2);
        let source0 = (g.z_pap..g.nz)
            .map(|z| (g.idx(cx, cy, z), (10.0 * cfg.dt_h) as f32))
            .collect();
        let (mut pos, mut dir) = (
            Vec::with_capacity(cfg.agents),
            Vec::with_capacity(cfg.agents),
        );
        for id in 0..cfg.agents as u64 {
            let mut r = Stream::new(cfg.seed, Purpose::Placement, id, 0);
            let mut p = [
                r.uniform() * g.lx(),
                r.uniform() * g.ly(),
                g.dermis_top() + r.uniform() * (g.lz() - g.dermis_top()),
            ];
            confine(&g, &mut p, None);
            pos.push(p);
            dir.push(r.unit_vector());
        }
        let mut r = Reference {
            id: (0..cfg.agents as u64).collect(),
            out: vec![AgentOut::default(); cfg.agents],
            source1: vec![0.0; n],
            cfg,
            geom: g,
            solver,
            scratch,
            fields,
            source0,
            pos,
            dir,
            tick: 0,
            diffusion_s: 0.0,
            agents_s: 0.0,
        };
        r.sort_by_voxel();
        r
    }

    /// Reorders the agents by voxel, then id, as the engine orders its cells
    /// ([`voxel_order`]), so that agents next to each other in memory read the same cache lines
    /// of the fields.
    pub fn sort_by_voxel(&mut self) {
        if let Some(perm) = voxel_order(&self.geom, &self.pos, &self.id) {
            apply_order(&mut self.id, &perm);
            apply_order(&mut self.pos, &perm);
            apply_order(&mut self.dir, &perm);
        }
    }

    /// Steps in the workload: `days` of `dt_h`.
    pub fn steps(&self) -> u64 {
        (self.cfg.days * 24.0 / self.cfg.dt_h).round() as u64
    }

    /// Adds the sources and solves every field.
    pub fn diffuse(&mut self) {
        let t0 = Instant::now();
        for &(i, s) in &self.source0 {
            self.fields[0][i] += s;
        }
        // Last to first: field 0, which the agents read next, is then the one most likely still
        // in cache (the fields are independent, so the order does not change any value). Field 1
        // takes the agents' deposits plane by plane as its x-y sweeps begin, while the plane
        // is in cache (element by element: the same values as a separate pass).
        for (k, f) in self.fields.iter_mut().enumerate().rev() {
            if k == 1 {
                self.solver.step_with(
                    f,
                    &mut self.scratch,
                    Some(&mut self.source1),
                    &|_, plane, src| {
                        for (v, s) in plane.iter_mut().zip(src.iter_mut()) {
                            *v += *s;
                            *s = 0.0;
                        }
                    },
                );
            } else {
                self.solver.step(f, &mut self.scratch);
            }
        }
        self.diffusion_s += t0.elapsed().as_secs_f64();
    }

    /// The parallel agent pass: every agent moves itself (position and direction) and writes
    /// only its own [`AgentOut`].
    pub fn agent_pass(&mut self) {
        let g = &self.geom;
        let c = &self.cfg;
        let f0 = &self.fields[0];
        let tick = self.tick;
        let decay = (-c.dt_h / c.persistence_h).exp();
        let noise = (1.0 - (-2.0 * c.dt_h / c.persistence_h).exp()).sqrt();
        let amount = c.secretion_per_h * c.dt_h;
        let step = c.speed_um_per_h * c.dt_h;
        let inv_h = 1.0 / g.h;
        let mk = MoveConsts::new(g, step, amount);
        let kt = [c.chemotaxis, c.gradient_half, decay, noise];
        let wide = has_avx2();
        self.out
            .par_chunks_mut(AGENT_CHUNK)
            .zip(
                self.pos
                    .par_chunks_mut(AGENT_CHUNK)
                    .zip(self.dir.par_chunks_mut(AGENT_CHUNK)),
            )
            .zip(self.id.par_chunks(AGENT_CHUNK))
            .for_each(|((outs, (ps, us)), ids)| {
                // In stages over blocks of STAGE agents, each a short loop of independent
                // iterations, so that the processor overlaps many agents' long chains of square
                // roots and divisions, and the turn and the move run on vectors of agents
                // ([`turn_agents`], [`move_agents`]); every agent's arithmetic is the same as in
                // one loop.
                let mut st = Staged::default();
                for base in (0..outs.len()).step_by(STAGE) {
                    let n = STAGE.min(outs.len() - base);
                    for j in base..base + n {
                        // The agent PREFETCH_AHEAD places on: ask for its rows.
                        if let Some(&q) = ps.get(j + PREFETCH_AHEAD) {
                            prefetch_gradient(g, inv_h, f0, q);
                        }
                        let gr = sample_gradient(g, f0, ps[j]);
                        for k in 0..3 {
                            st.grad[k][j - base] = gr[k];
                            st.u[k][j - base] = us[j][k];
                            st.p[k][j - base] = ps[j][k];
                        }
                    }
                    for j in 0..n {
                        let x =
                            Stream::new(c.seed, Purpose::Agent, ids[base + j], tick).unit_vector();
                        for (row, v) in st.xi.iter_mut().zip(x) {
                            row[j] = v;
                        }
                    }
                    let moved = if wide {
                        turn_agents::<true>(&mut st, n, kt);
                        move_agents::<true>(&mut st, n, &mk)
                    } else {
                        turn_agents::<false>(&mut st, n, kt);
                        move_agents::<false>(&mut st, n, &mk)
                    };
                    if moved {
                        for j in 0..n {
                            ps[base + j] = [st.p[0][j], st.p[1][j], st.p[2][j]];
                            us[base + j] = [st.u[0][j], st.u[1][j], st.uz[j]];
                            outs[base + j] = AgentOut {
                                idx: std::array::from_fn(|c| st.idx[c][j]),
                                amount: std::array::from_fn(|c| st.amt[c][j]),
                            };
                        }
                    } else {
                        for j in 0..n {
                            let (o, p, u) =
                                (&mut outs[base + j], &mut ps[base + j], &mut us[base + j]);
                            *u = [st.u[0][j], st.u[1][j], st.u[2][j]];
                            let mut q =
                                [p[0] + step * u[0], p[1] + step * u[1], p[2] + step * u[2]];
                            if confine(g, &mut q, None) {
                                u[2] = -u[2];
                            }
                            let corners = cic_deposit(g, q).corners(g);
                            *o = AgentOut {
                                idx: corners.map(|(i, _)| i),
                                amount: corners.map(|(_, w)| (w * amount) as f32),
                            };
                            *p = q;
                        }
                    }
                }
            });
    }

    /// Sums the agents' deposits into field 1's source, in parallel by slabs of voxel planes
    /// with each voxel's deposits in agent order ([`scatter_ordered`]): the same sums as a
    /// serial loop over the agents, whatever the number of threads.
    pub fn apply_deposits(&mut self) {
        scatter_ordered(
            &mut self.source1,
            self.geom.plane(),
            &self.out,
            |o| Some(index_span(&o.idx)),
            |o, slab, off| {
                for k in 0..8 {
                    if let Some(v) = slab.get_mut((o.idx[k] as usize).wrapping_sub(off)) {
                        *v += o.amount[k];
                    }
                }
            },
            |o, slab, off| prefetch_slots(slab, off, [0, 2, 4, 6].map(|k| o.idx[k] as usize)),
        );
    }

    /// One full step (agents re-sorted by voxel every [`SORT_EVERY`] steps).
    pub fn step(&mut self) {
        self.diffuse();
        let t0 = Instant::now();
        if self.tick % SORT_EVERY == SORT_EVERY - 1 {
            self.sort_by_voxel();
        }
        self.agent_pass();
        self.apply_deposits();
        self.agents_s += t0.elapsed().as_secs_f64();
        self.tick += 1;
    }

    /// Total of field 1 plus its pending source (a checksum for tests).
    pub fn field1_mass(&self) -> f64 {
        self.fields
            .get(1)
            .map(|f| f.iter().map(|&v| v as f64).sum::<f64>())
            .unwrap_or(0.0)
            + self.source1.iter().map(|&v| v as f64).sum::<f64>()
    }
}

/// What a benchmark measured.
#[derive(Debug, Clone, Serialize)]
pub struct BenchReport {
    /// `reference` or the scenario file.
    pub workload: String,
    /// Voxels of the block.
    pub voxels: u64,
    /// Agents at the start (reference) or baseline fibroblasts (scenario, treated arm).
    pub agents: u64,
    /// Simulated days.
    pub simulated_days: f64,
    /// Active steps: fine and settled (every step of the reference).
    pub active_steps: u64,
    /// Wall seconds of the whole workload.
    pub wall_seconds: f64,
    /// Wall seconds per simulated day (while active, for a scenario).
    pub seconds_per_simulated_day: f64,
    /// Voxel-field updates per second of diffusion time (reference) or of wall time.
    pub voxel_field_updates_per_second: f64,
    /// Agent steps per second of agent time (reference) or of wall time.
    pub agent_steps_per_second: f64,
    /// Wall seconds in diffusion (reference) or the engine's phase seconds (scenario).
    pub phase_seconds: Vec<(String, f64)>,
    /// Peak resident memory, bytes (VmHWM), when known.
    pub peak_memory_bytes: Option<u64>,
    /// rayon worker threads.
    pub threads: usize,
    /// The processor the figures were measured on ([`machine`]), when known.
    pub machine: Option<String>,
}

/// Peak resident set size of this process (VmHWM of /proc/self/status), bytes.
pub fn peak_memory_bytes() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The processor as `/proc/cpuinfo` and sysfs describe it: model name, family and model
/// numbers, logical CPUs and L3 size (figures of a memory-bound engine depend on all of them), or
/// None where they cannot be read.
pub fn machine() -> Option<String> {
    let info = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    machine_from(
        &info,
        std::fs::read_to_string("/sys/devices/system/cpu/cpu0/cache/index3/size").ok(),
    )
}

/// [`machine`] from the text of `/proc/cpuinfo` and of the L3 `size` file.
fn machine_from(cpuinfo: &str, l3: Option<String>) -> Option<String> {
    let field = |key: &str| {
        cpuinfo.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            (k.trim() == key).then(|| v.trim().to_string())
        })
    };
    let name = field("model name")?;
    let cpus = cpuinfo
        .lines()
        .filter(|l| {
            l.split_once(':')
                .is_some_and(|(k, _)| k.trim() == "processor")
        })
        .count();
    let mut out = name;
    if let (Some(f), Some(m)) = (field("cpu family"), field("model")) {
        out += &format!(" (family {f}, model {m})");
    }
    out += &format!(", {cpus} logical CPUs");
    if let Some(l3) = l3.map(|s| s.trim().to_string()).filter(|s| !s.is_empty()) {
        out += &format!(", L3 {l3}");
    }
    Some(out)
}

/// Runs the reference workload.
pub fn run_reference(cfg: Config) -> BenchReport {
    let t0 = Instant::now();
    let mut r = Reference::new(cfg);
    let setup = t0.elapsed().as_secs_f64();
    let steps = r.steps();
    let t1 = Instant::now();
    for _ in 0..steps {
        r.step();
    }
    let wall = t1.elapsed().as_secs_f64();
    let days = steps as f64 * r.cfg.dt_h / 24.0;
    let updates = (r.geom.voxels() * r.fields.len()) as f64 * steps as f64;
    let agent_steps = r.cfg.agents as f64 * steps as f64;
    BenchReport {
        workload: "reference".into(),
        voxels: r.geom.voxels() as u64,
        agents: r.cfg.agents as u64,
        simulated_days: days,
        active_steps: steps,
        wall_seconds: wall,
        seconds_per_simulated_day: wall / days.max(1e-12),
        voxel_field_updates_per_second: updates / r.diffusion_s.max(1e-12),
        agent_steps_per_second: agent_steps / r.agents_s.max(1e-12),
        phase_seconds: vec![
            ("setup".into(), setup),
            ("diffusion".into(), r.diffusion_s),
            ("agents".into(), r.agents_s),
        ],
        peak_memory_bytes: peak_memory_bytes(),
        threads: rayon::current_num_threads(),
        machine: machine(),
    }
}

/// Cuts a scenario at `days`: sessions after it are dropped and the follow-up ends there.
pub fn truncate(s: &mut Scenario, days: f64) {
    s.schedule.days.retain(|&d| d <= days);
    let last = s.schedule.days.last().copied().unwrap_or(0.0);
    s.schedule.follow_up_days = (days - last).max(0.0);
}

/// Runs a scenario (both arms, as `fibrosim run` does) and reports the treated arm's work.
pub fn run_scenario(s: &Scenario, label: &str) -> BenchReport {
    let stop = AtomicBool::new(false);
    let t0 = Instant::now();
    let out = crate::run::run(s, &|_, _| {}, &stop);
    let wall = t0.elapsed().as_secs_f64();
    let w = &out.work_treated;
    // The stepping phases; the samples (output, not simulation) are reported but not counted.
    let active_s: f64 = w.phase_seconds[..SAMPLE_PHASE].iter().sum();
    let dt = s.numerics.dt_h;
    let active_days =
        (w.active_steps as f64 * dt + w.settled_steps as f64 * s.numerics.settle_step_h) / 24.0;
    let e = scenario::estimate(s);
    BenchReport {
        workload: label.into(),
        voxels: e.voxels,
        agents: e.agents_baseline,
        simulated_days: out.record.summary.end_day,
        active_steps: w.active_steps + w.settled_steps,
        wall_seconds: wall,
        seconds_per_simulated_day: if active_days > 0.0 {
            active_s / active_days
        } else {
            f64::NAN
        },
        voxel_field_updates_per_second: w.voxel_field_updates as f64 / active_s.max(1e-12),
        agent_steps_per_second: w.agent_steps as f64 / active_s.max(1e-12),
        phase_seconds: PHASE_NAMES
            .iter()
            .zip(w.phase_seconds)
            .map(|(n, v)| (n.to_string(), v))
            .collect(),
        peak_memory_bytes: peak_memory_bytes(),
        threads: rayon::current_num_threads(),
        machine: machine(),
    }
}

/// The printed table.
pub fn table(r: &BenchReport) -> String {
    let mut o = String::new();
    let row = |o: &mut String, k: &str, v: String| {
        let _ = writeln!(o, "  {k:<34} {v}");
    };
    let _ = writeln!(o, "benchmark: {}", r.workload);
    row(&mut o, "voxels", r.voxels.to_string());
    row(&mut o, "agents", r.agents.to_string());
    row(
        &mut o,
        "simulated days / active steps",
        format!("{} / {}", r.simulated_days, r.active_steps),
    );
    row(&mut o, "wall time", format!("{:.2} s", r.wall_seconds));
    row(
        &mut o,
        "seconds per simulated day",
        if r.seconds_per_simulated_day.is_finite() {
            format!("{:.2} s", r.seconds_per_simulated_day)
        } else {
            "none active (quiet fast-forward only)".into()
        },
    );
    row(
        &mut o,
        "voxel-field updates per second",
        format!("{:.3e}", r.voxel_field_updates_per_second),
    );
    row(
        &mut o,
        "agent-steps per second",
        format!("{:.3e}", r.agent_steps_per_second),
    );
    for (k, v) in &r.phase_seconds {
        row(&mut o, &format!("phase {k}"), format!("{v:.2} s"));
    }
    row(
        &mut o,
        "peak memory (VmHWM)",
        r.peak_memory_bytes
            .map(|b| format!("{:.0} MiB", b as f64 / 1048576.0))
            .unwrap_or_else(|| "unknown".into()),
    );
    row(&mut o, "threads", r.threads.to_string());
    row(
        &mut o,
        "machine",
        r.machine.clone().unwrap_or_else(|| "unknown".into()),
    );
    o
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn machine_names_model_family_cpus_and_l3() {
        let info = "processor\t: 0\nvendor_id\t: AuthenticAMD\ncpu family\t: 25\nmodel\t\t: 1\n\
                    model name\t: AMD EPYC 7B13\n\nprocessor\t: 1\ncpu family\t: 25\nmodel\t\t: 1\n\
                    model name\t: AMD EPYC 7B13\n";
        assert_eq!(
            machine_from(info, Some("32768K\n".into())).as_deref(),
            Some("AMD EPYC 7B13 (family 25, model 1), 2 logical CPUs, L3 32768K")
        );
        assert_eq!(
            machine_from("processor : 0\nmodel name : X\n", None).as_deref(),
            Some("X, 1 logical CPUs")
        );
        assert_eq!(machine_from("processor : 0\n", None), None);
    }

    /// The turn of one agent as the model states it, written independently of
    /// [`turn_agents`].
    fn turn_one(g: [f64; 3], xi: [f64; 3], u: [f64; 3], [chi, half, e1, e2]: [f64; 4]) -> [f64; 3] {
        let gn = (g[0] * g[0] + g[1] * g[1] + g[2] * g[2]).sqrt();
        let (b, gh) = if gn > 0.0 {
            (chi * gn / (gn + half), [g[0] / gn, g[1] / gn, g[2] / gn])
        } else {
            (0.0, [0.0; 3])
        };
        let d: [f64; 3] = std::array::from_fn(|k| b * gh[k] + e1 * (u[k] - b * gh[k]) + e2 * xi[k]);
        let dn = (d[0] * d[0] + d[1] * d[1] + d[2] * d[2]).sqrt();
        if dn > 0.0 {
            [d[0] / dn, d[1] / dn, d[2] / dn]
        } else {
            xi
        }
    }

    #[test]
    fn the_staged_turn_is_the_turn_of_each_agent_bit_for_bit_on_either_path() {
        let mut r = Stream::new(7, Purpose::Agent, 0, 0);
        for (n, k) in [
            (STAGE, [0.5, 0.002, 0.88, 0.47]),
            (37, [0.9, 0.5, 0.3, 0.95]),
            (5, [0.5, 0.002, 0.0, 0.0]),
        ] {
            let mut st = Staged::default();
            for j in 0..STAGE {
                let scale = [0.0, 1e-9, 1e-3, 1.0][j % 4];
                for c in 0..3 {
                    st.grad[c][j] = (2.0 * r.uniform() - 1.0) * scale;
                }
                let (xi, u) = (r.unit_vector(), r.unit_vector());
                for c in 0..3 {
                    st.xi[c][j] = xi[c];
                    st.u[c][j] = u[c];
                }
            }
            let want: Vec<[f64; 3]> = (0..STAGE)
                .map(|j| {
                    let at = |a: &[[f64; STAGE]; 3]| [a[0][j], a[1][j], a[2][j]];
                    if j < n {
                        turn_one(at(&st.grad), at(&st.xi), at(&st.u), k)
                    } else {
                        at(&st.u)
                    }
                })
                .collect();
            let mut wide = st.clone();
            turn_agents::<false>(&mut st, n, k);
            if has_avx2() {
                turn_agents::<true>(&mut wide, n, k);
            } else {
                turn_agents::<false>(&mut wide, n, k);
            }
            for (j, w) in want.iter().enumerate() {
                for (c, &w) in w.iter().enumerate() {
                    assert_eq!(st.u[c][j].to_bits(), w.to_bits(), "agent {j}, n {n}");
                    assert_eq!(wide.u[c][j].to_bits(), w.to_bits(), "agent {j}, n {n}");
                }
            }
        }
    }

    #[test]
    fn the_staged_move_is_confine_and_cic_deposit_bit_for_bit_on_either_path() {
        let cfg = small();
        let g = geometry(&cfg);
        let mk = |step: f64| MoveConsts::new(&g, step, 0.001);
        let mut r = Stream::new(3, Purpose::Placement, 0, 0);
        let (lo, hi) = (g.dermis_top(), g.lz());
        for (n, step) in [(STAGE, 5.0), (29, 5.0), (STAGE, 37.5), (STAGE, 1e5)] {
            let mut st = Staged::default();
            for j in 0..STAGE {
                // Every fourth agent at a side of the block, moving out of it.
                let edge = [1e-12, g.lx() - 1e-12, 0.0, g.lx() - 1e-9][j % 4];
                let p = if j % 4 == 0 {
                    [
                        r.uniform() * g.lx(),
                        r.uniform() * g.ly(),
                        lo + r.uniform() * (hi - lo),
                    ]
                } else {
                    [
                        edge,
                        g.ly() - edge,
                        if j % 8 < 4 { lo + 1e-12 } else { hi - 1e-10 },
                    ]
                };
                let mut u = r.unit_vector();
                if j % 4 != 0 {
                    u = [
                        -u[0].abs(),
                        u[1].abs(),
                        if j % 8 < 4 { -u[2].abs() } else { u[2].abs() },
                    ];
                    if j % 4 == 1 {
                        u = u.map(|v| -v);
                    }
                }
                for c in 0..3 {
                    st.p[c][j] = p[c];
                    st.u[c][j] = u[c];
                }
            }
            let (orig, mut wide) = (st.clone(), st.clone());
            let k = mk(step);
            let (ok, ok_wide) = (
                move_agents::<false>(&mut st, n, &k),
                if has_avx2() {
                    move_agents::<true>(&mut wide, n, &k)
                } else {
                    move_agents::<false>(&mut wide, n, &k)
                },
            );
            assert_eq!(ok, ok_wide);
            assert_eq!(ok, step < 1e5, "step {step}");
            // The directions stay as they were, for the caller's redo when a step was too long.
            for got in [&st, &wide] {
                assert_eq!(
                    got.u.map(|c| c.map(f64::to_bits)),
                    orig.u.map(|c| c.map(f64::to_bits))
                );
            }
            // The directions stay as they were, for the caller's redo when a step was too long.
            for got in [&st, &wide] {
                assert_eq!(
                    got.u.map(|c| c.map(f64::to_bits)),
                    orig.u.map(|c| c.map(f64::to_bits))
                );
            }
            if !ok {
                continue;
            }
            let mut reflected = 0;
            for j in 0..STAGE {
                let at = |a: &[[f64; STAGE]; 3]| [a[0][j], a[1][j], a[2][j]];
                let (p, mut u) = (at(&orig.p), at(&orig.u));
                let mut q = [p[0] + step * u[0], p[1] + step * u[1], p[2] + step * u[2]];
                let (mut idx, mut amt) = ([0; 8], [0.0f32; 8]);
                if j < n {
                    if confine(&g, &mut q, None) {
                        u[2] = -u[2];
                        reflected += 1;
                    }
                    for (c, (i, w)) in cic_deposit(&g, q).corners(&g).into_iter().enumerate() {
                        (idx[c], amt[c]) = (i, (w * k.amount) as f32);
                    }
                } else {
                    q = p;
                }
                for got in [&st, &wide] {
                    assert_eq!(
                        at(&got.p).map(f64::to_bits),
                        q.map(f64::to_bits),
                        "agent {j}"
                    );
                    let after = [
                        got.u[0][j],
                        got.u[1][j],
                        if j < n { got.uz[j] } else { u[2] },
                    ];
                    assert_eq!(after.map(f64::to_bits), u.map(f64::to_bits), "agent {j}");
                    if j < n {
                        for c in 0..8 {
                            assert_eq!(got.idx[c][j], idx[c], "agent {j}, corner {c}");
                            assert_eq!(got.amt[c][j].to_bits(), amt[c].to_bits(), "agent {j}");
                        }
                    }
                }
            }
            assert!(reflected > 0, "some agents were reflected (step {step})");
        }
    }

    #[test]
    fn the_agent_pass_is_each_agent_s_turn_move_and_deposit_in_turn_for_any_step() {
        // 20 µm/h: every stage on the vector path; 4 × 10⁶ µm/h: steps of 10⁶ µm, longer than
        // the block, so every stage falls back to `confine`.
        for speed in [20.0, 4e6] {
            let mut r = Reference::new(Config {
                speed_um_per_h: speed,
                ..small()
            });
            for _ in 0..3 {
                r.step();
            }
            let (pos, dir, tick) = (r.pos.clone(), r.dir.clone(), r.tick);
            r.agent_pass();
            let c = &r.cfg;
            let k = [
                c.chemotaxis,
                c.gradient_half,
                (-c.dt_h / c.persistence_h).exp(),
                (1.0 - (-2.0 * c.dt_h / c.persistence_h).exp()).sqrt(),
            ];
            let g = &r.geom;
            for a in 0..pos.len() {
                let grad = sample_gradient(g, &r.fields[0], pos[a]);
                let xi = Stream::new(c.seed, Purpose::Agent, r.id[a], tick).unit_vector();
                let mut u = turn_one(grad, xi, dir[a], k);
                let step = c.speed_um_per_h * c.dt_h;
                let mut q: [f64; 3] = std::array::from_fn(|i| pos[a][i] + step * u[i]);
                if confine(g, &mut q, None) {
                    u[2] = -u[2];
                }
                assert_eq!(r.pos[a].map(f64::to_bits), q.map(f64::to_bits), "agent {a}");
                assert_eq!(r.dir[a].map(f64::to_bits), u.map(f64::to_bits), "agent {a}");
                let corners = cic_deposit(g, q).corners(g);
                assert_eq!(r.out[a].idx, corners.map(|(i, _)| i), "agent {a}");
                let amount = c.secretion_per_h * c.dt_h;
                let want = corners.map(|(_, w)| ((w * amount) as f32).to_bits());
                assert_eq!(r.out[a].amount.map(f32::to_bits), want, "agent {a}");
            }
        }
    }

    fn small() -> Config {
        Config {
            domain_um: [400.0, 400.0],
            agents: 800,
            days: 0.25 * 20.0 / 24.0,
            ..Config::default()
        }
    }

    fn run_with(threads: usize) -> Reference {
        crate::sim::in_pool(threads, || {
            let mut r = Reference::new(small());
            for _ in 0..r.steps() {
                r.step();
            }
            r
        })
    }

    #[test]
    fn a_run_without_active_steps_says_so_instead_of_nan() {
        let mut r = BenchReport {
            workload: "scenarios/control.toml".into(),
            voxels: 8,
            agents: 1,
            simulated_days: 180.0,
            active_steps: 0,
            wall_seconds: 3.0,
            seconds_per_simulated_day: f64::NAN,
            voxel_field_updates_per_second: 0.0,
            agent_steps_per_second: 1.0,
            phase_seconds: vec![("agents".into(), 0.5)],
            peak_memory_bytes: None,
            threads: 2,
            machine: None,
        };
        let t = table(&r);
        assert!(!t.contains("NaN"), "{t}");
        assert!(t.contains("none active"), "{t}");
        r.seconds_per_simulated_day = 0.25;
        let t = table(&r);
        let line = t
            .lines()
            .find(|l| l.contains("seconds per simulated day"))
            .expect("the row is printed");
        assert!(line.trim_end().ends_with(" 0.25 s"), "{line}");
    }

    #[test]
    fn reference_is_bit_identical_at_any_thread_count() {
        let one = run_with(1);
        assert_eq!(one.steps(), 20);
        for threads in [2, 3] {
            let other = run_with(threads);
            assert_eq!(one.id, other.id, "{threads} threads: agent order");
            let same_pos = one
                .pos
                .iter()
                .flatten()
                .zip(other.pos.iter().flatten())
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same_pos, "{threads} threads: positions differ");
            for (f, (a, b)) in one.fields.iter().zip(&other.fields).enumerate() {
                assert!(
                    a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{threads} threads: field {f} differs"
                );
            }
        }
    }

    #[test]
    fn secretion_reaches_field_1_in_full() {
        // Over one step, field 1 gains the agents' secretion (its deposits are summed into the
        // source and added before the next solve) and loses only its decay.
        let mut r = Reference::new(small());
        r.step();
        let before = r.field1_mass();
        assert!(before > 0.0);
        r.step();
        let c = &r.cfg;
        let secreted = c.agents as f64 * c.secretion_per_h * c.dt_h;
        let field = r.fields[1].iter().map(|&v| v as f64).sum::<f64>();
        let pending = r.field1_mass() - field;
        assert!(
            (pending - secreted).abs() < 1e-4 * secreted,
            "{pending} vs {secreted}"
        );
        // The solve keeps the mass up to decay: field(after) = (field + source)(before) · e^(−kΔt)
        // within the LOD step's first-order decay factor 1/(1 + kΔt/3)³.
        let k = c.decay_per_h * c.dt_h;
        let expected = before / (1.0 + k / 3.0).powi(3);
        assert!(
            (field - expected).abs() < 2e-3 * expected,
            "field 1 mass {field} against {expected}"
        );
    }
}
