//! Implicit reaction–diffusion step for one scalar field (the BioFVM LOD scheme).
//!
//! Models ∂u/∂t = D ∇²u − k u on a voxel grid of cubic voxels of edge h (µm),
//! with time in hours, D in µm²/h and k in 1/h. The grid is periodic in x and y
//! and has no-flux (Neumann) ends in z (depth).
//!
//! One step of length Δt is a locally one-dimensional (LOD) splitting: backward
//! Euler along x, then y, then z, each taking one third of the decay:
//!
//! ```text
//! (1 + 2r + kΔt/3) u_i − r (u_{i−1} + u_{i+1}) = u_i_old,     r = D Δt / h².
//! ```
//!
//! Along x and y the system is cyclic tridiagonal (Thomas algorithm plus a
//! Sherman–Morrison rank-one correction); along z the missing neighbour at each
//! end is the cell itself, so the end rows have diagonal 1 + r + kΔt/3. Every
//! column of every 1-D matrix sums to 1 + kΔt/3, so without decay the step
//! conserves mass and with decay the total shrinks by (1 + kΔt/3)^−3 per step.
//! The scheme is unconditionally stable and first-order accurate in time.
//!
//! Coefficients are constant, so the Thomas factors are computed once (in f64)
//! and each line solve costs three multiply-adds per value. Lines are solved in
//! lockstep so the inner loops run over contiguous memory and vectorise.

use rayon::prelude::*;
use std::sync::Mutex;

/// Values smaller in magnitude than this are set to zero after each step, so
/// far-field denormals never slow the arithmetic down.
const FLUSH_BELOW: f32 = 1e-12;

/// Width (in xy-plane cells) of one parallel task of the z sweep. Fixed, so the
/// partition of work never depends on the thread count; 512 columns × nz
/// layers stays within a core's L2 cache for realistic depths.
const Z_CHUNK: usize = 512;

/// Precomputed Thomas factors of one axis.
///
/// Forward pass: d'_0 = d_0·inv_0, d'_i = (d_i + sub_i·d'_{i−1})·inv_i.
/// Back pass: x_{n−1} = d'_{n−1}, x_i = d'_i + sup_i·x_{i+1}.
/// Cyclic correction (when `corr` is not empty): x_i −= corr_i·(x_0 + q·x_{n−1}).
#[derive(Clone, Debug)]
struct Axis {
    n: usize,
    sub: Vec<f32>,
    inv: Vec<f32>,
    sup: Vec<f32>,
    corr: Vec<f32>,
    q: f32,
}

/// Thomas factors in f64 for a tridiagonal matrix with sub-diagonal `a`,
/// diagonal `b` and super-diagonal `c` (a[0] and c[n−1] unused).
/// Returns (−a_i, 1/den_i, −c_i/den_i).
fn thomas_factors(a: &[f64], b: &[f64], c: &[f64]) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let n = b.len();
    let mut sub = vec![0.0; n];
    let mut inv = vec![0.0; n];
    let mut sup = vec![0.0; n];
    let mut cprime = 0.0;
    for i in 0..n {
        let den = if i == 0 { b[0] } else { b[i] - a[i] * cprime };
        inv[i] = 1.0 / den;
        sub[i] = if i == 0 { 0.0 } else { -a[i] };
        cprime = if i + 1 < n { c[i] / den } else { 0.0 };
        sup[i] = -cprime;
    }
    (sub, inv, sup)
}

/// Solves the tridiagonal system in f64 with precomputed factors.
fn thomas_solve_f64(sub: &[f64], inv: &[f64], sup: &[f64], d: &mut [f64]) {
    let n = d.len();
    d[0] *= inv[0];
    for i in 1..n {
        d[i] = (d[i] + sub[i] * d[i - 1]) * inv[i];
    }
    for i in (0..n.saturating_sub(1)).rev() {
        d[i] += sup[i] * d[i + 1];
    }
}

fn to_f32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

impl Axis {
    /// Axis with no-flux ends: the missing neighbour mirrors the end cell.
    fn neumann(n: usize, r: f64, kdt3: f64) -> Self {
        let b = 1.0 + 2.0 * r + kdt3;
        let mut diag = vec![b; n];
        if n == 1 {
            diag[0] = 1.0 + kdt3;
        } else {
            diag[0] = 1.0 + r + kdt3;
            diag[n - 1] = 1.0 + r + kdt3;
        }
        let off = vec![-r; n];
        let (sub, inv, sup) = thomas_factors(&off, &diag, &off);
        Self {
            n,
            sub: to_f32(&sub),
            inv: to_f32(&inv),
            sup: to_f32(&sup),
            corr: Vec::new(),
            q: 0.0,
        }
    }

    /// Periodic axis. For n = 1 both neighbours are the cell itself; for n = 2
    /// both neighbours are the other cell, so the matrix is an ordinary 2×2
    /// with off-diagonal −2r; from n = 3 on the corners are handled by a
    /// Sherman–Morrison correction of the tridiagonal solve.
    fn periodic(n: usize, r: f64, kdt3: f64) -> Self {
        let b = 1.0 + 2.0 * r + kdt3;
        match n {
            1 => {
                let inv = 1.0 / (1.0 + kdt3);
                Self {
                    n,
                    sub: vec![0.0],
                    inv: vec![inv as f32],
                    sup: vec![0.0],
                    corr: Vec::new(),
                    q: 0.0,
                }
            }
            2 => {
                let off = vec![-2.0 * r; 2];
                let (sub, inv, sup) = thomas_factors(&off, &[b, b], &off);
                Self {
                    n,
                    sub: to_f32(&sub),
                    inv: to_f32(&inv),
                    sup: to_f32(&sup),
                    corr: Vec::new(),
                    q: 0.0,
                }
            }
            _ => {
                // A = T + u vᵀ with γ = −b, u = (γ, 0, …, 0, −r), v = (1, 0, …, 0, −r/γ).
                // T's corner diagonals become b − γ and b − r²/γ.
                let gamma = -b;
                let mut diag = vec![b; n];
                diag[0] = b - gamma;
                diag[n - 1] = b - r * r / gamma;
                let off = vec![-r; n];
                let (sub, inv, sup) = thomas_factors(&off, &diag, &off);
                let mut z = vec![0.0; n];
                z[0] = gamma;
                z[n - 1] = -r;
                thomas_solve_f64(&sub, &inv, &sup, &mut z);
                let q = -r / gamma;
                let fact = 1.0 / (1.0 + z[0] + q * z[n - 1]);
                let corr: Vec<f64> = z.iter().map(|&zi| zi * fact).collect();
                Self {
                    n,
                    sub: to_f32(&sub),
                    inv: to_f32(&inv),
                    sup: to_f32(&sup),
                    corr: to_f32(&corr),
                    q: q as f32,
                }
            }
        }
    }

    fn cyclic(&self) -> bool {
        !self.corr.is_empty()
    }
}

#[inline(always)]
fn flush(v: f32) -> f32 {
    if v.abs() < FLUSH_BELOW { 0.0 } else { v }
}

/// Solves `n` stacked lines in lockstep: line `l` has its i-th value at
/// `base[i·stride + l]` for l < width. `ctmp` must hold `width` values when the
/// axis is cyclic; it receives each line's correction amplitude
/// x_0 + q·x_{n−1}. With `defer_corr` the caller applies the correction
/// (fused into its next pass) instead.
///
/// # Safety
/// `base` must be valid for reads and writes of `(n − 1)·stride + width`
/// values, `width ≤ stride` (or n = 1), and nothing else may access those
/// rows during the call.
#[inline(always)]
unsafe fn solve_rows<const WIDE: bool>(
    base: *mut f32,
    stride: usize,
    width: usize,
    ax: &Axis,
    ctmp: &mut [f32],
    flush_last: bool,
    defer_corr: bool,
) {
    let n = ax.n;
    // SAFETY (all blocks below): rows i and i ± 1 are disjoint ranges of the
    // region the caller guarantees, and only one mutable view exists at a time.
    let row = |i: usize| unsafe { std::slice::from_raw_parts_mut(base.add(i * stride), width) };
    let rowc = |i: usize| unsafe { std::slice::from_raw_parts(base.add(i * stride), width) };

    let inv0 = ax.inv[0];
    for v in row(0).iter_mut() {
        *v *= inv0;
    }
    for i in 1..n {
        forward_row::<WIDE>(row(i), rowc(i - 1), ax.sub[i], ax.inv[i]);
    }
    let flush_back = flush_last && !ax.cyclic();
    if flush_back {
        for v in row(n - 1).iter_mut() {
            *v = flush(*v);
        }
    }
    for i in (0..n - 1).rev() {
        if flush_back {
            back_row_flush::<WIDE>(row(i), rowc(i + 1), ax.sup[i]);
        } else {
            back_row::<WIDE>(row(i), rowc(i + 1), ax.sup[i]);
        }
    }
    if ax.cyclic() {
        let ctmp = &mut ctmp[..width];
        let q = ax.q;
        for ((c, &f), &l) in ctmp.iter_mut().zip(rowc(0)).zip(rowc(n - 1)) {
            *c = f + q * l;
        }
        if defer_corr {
            return;
        }
        for i in 0..n {
            if flush_last {
                correct_row_flush::<WIDE>(row(i), ctmp, ax.corr[i]);
            } else {
                correct_row::<WIDE>(row(i), ctmp, ax.corr[i]);
            }
        }
    }
}

// The row kernels are separate, non-inlined functions taking separate slices:
// only as function arguments are the rows known not to overlap, which lets
// the compiler vectorise them without run-time alias checks (that check is
// lost when they are inlined into the pointer-based line solver). Each comes
// in a baseline and an AVX2 build; `WIDE` selects the latter. A kernel may return a value
// (`(args) -> T`).

macro_rules! row_kernel {
    ($name:ident, $base:ident, $avx2:ident, ($($arg:ident: $ty:ty),*), $body:block) => {
        $crate::sim::diffusion::row_kernel!($name, $base, $avx2, ($($arg: $ty),*) -> (), $body);
    };
    ($name:ident, $base:ident, $avx2:ident, ($($arg:ident: $ty:ty),*) -> $ret:ty, $body:block) => {
        #[inline(always)]
        #[allow(clippy::too_many_arguments)]
        fn $name<const WIDE: bool>($($arg: $ty),*) -> $ret {
            #[cfg(target_arch = "x86_64")]
            if WIDE {
                // SAFETY: WIDE is only set after AVX2 was detected at run time.
                return unsafe { $avx2($($arg),*) };
            }
            $base($($arg),*)
        }
        #[inline(never)]
        #[allow(clippy::too_many_arguments)]
        fn $base($($arg: $ty),*) -> $ret $body
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2")]
        #[inline(never)]
        #[allow(clippy::too_many_arguments)]
        fn $avx2($($arg: $ty),*) -> $ret $body
    };
}
pub(crate) use row_kernel;

/// Whether the CPU has AVX2 (checked at run time): the row kernels then take their second build.
pub(crate) fn has_avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

row_kernel!(forward_row, forward_row_base, forward_row_avx2,
    (cur: &mut [f32], prev: &[f32], s: f32, inv: f32), {
    for (v, &p) in cur.iter_mut().zip(prev) {
        *v = (*v + s * p) * inv;
    }
});

row_kernel!(add_delta, add_delta_base, add_delta_avx2,
    (u: &mut [f32], delta: &[f32]), {
    for (v, &dv) in u.iter_mut().zip(delta) {
        *v = flush(*v + dv).max(0.0);
    }
});

row_kernel!(back_row, back_row_base, back_row_avx2,
    (cur: &mut [f32], next: &[f32], e: f32), {
    for (v, &x) in cur.iter_mut().zip(next) {
        *v += e * x;
    }
});

row_kernel!(back_row_flush, back_row_flush_base, back_row_flush_avx2,
    (cur: &mut [f32], next: &[f32], e: f32), {
    for (v, &x) in cur.iter_mut().zip(next) {
        *v = flush(*v + e * x);
    }
});

row_kernel!(correct_row, correct_row_base, correct_row_avx2,
    (cur: &mut [f32], amp: &[f32], w: f32), {
    for (v, &c) in cur.iter_mut().zip(amp) {
        *v -= w * c;
    }
});

row_kernel!(correct_row_flush, correct_row_flush_base, correct_row_flush_avx2,
    (cur: &mut [f32], amp: &[f32], w: f32), {
    for (v, &c) in cur.iter_mut().zip(amp) {
        *v = flush(*v - w * c);
    }
});

/// dst[c·rows + r] = src[r·cols + c] − corr[r]·amp[c] for an r × c = rows × cols
/// matrix (with `corr` empty: no correction). 4×4 tiles use SSE shuffles on
/// x86-64 (part of the baseline instruction set); the arithmetic per value is
/// the same in the tiles and at the edges.
#[inline(always)]
fn transpose(src: &[f32], rows: usize, cols: usize, dst: &mut [f32], corr: &[f32], amp: &[f32]) {
    assert!(src.len() >= rows * cols && dst.len() >= rows * cols);
    assert!(corr.is_empty() || (corr.len() >= rows && amp.len() >= cols));
    let r4 = rows / 4 * 4;
    let c4 = cols / 4 * 4;
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        for r in (0..r4).step_by(4) {
            for c in (0..c4).step_by(4) {
                // SAFETY: r + 3 < rows and c + 3 < cols, so every load reads
                // src[(r + k)·cols + c ..][..4] and every store writes
                // dst[(c + k)·rows + r ..][..4], in bounds by the asserts above.
                unsafe {
                    let p = src.as_ptr().add(r * cols + c);
                    let mut x0 = _mm_loadu_ps(p);
                    let mut x1 = _mm_loadu_ps(p.add(cols));
                    let mut x2 = _mm_loadu_ps(p.add(2 * cols));
                    let mut x3 = _mm_loadu_ps(p.add(3 * cols));
                    if !corr.is_empty() {
                        let a = _mm_loadu_ps(amp.as_ptr().add(c));
                        x0 = _mm_sub_ps(x0, _mm_mul_ps(_mm_set1_ps(corr[r]), a));
                        x1 = _mm_sub_ps(x1, _mm_mul_ps(_mm_set1_ps(corr[r + 1]), a));
                        x2 = _mm_sub_ps(x2, _mm_mul_ps(_mm_set1_ps(corr[r + 2]), a));
                        x3 = _mm_sub_ps(x3, _mm_mul_ps(_mm_set1_ps(corr[r + 3]), a));
                    }
                    let t0 = _mm_unpacklo_ps(x0, x1);
                    let t1 = _mm_unpacklo_ps(x2, x3);
                    let t2 = _mm_unpackhi_ps(x0, x1);
                    let t3 = _mm_unpackhi_ps(x2, x3);
                    let q = dst.as_mut_ptr().add(c * rows + r);
                    _mm_storeu_ps(q, _mm_movelh_ps(t0, t1));
                    _mm_storeu_ps(q.add(rows), _mm_movehl_ps(t1, t0));
                    _mm_storeu_ps(q.add(2 * rows), _mm_movelh_ps(t2, t3));
                    _mm_storeu_ps(q.add(3 * rows), _mm_movehl_ps(t3, t2));
                }
            }
        }
    }
    let tiled = cfg!(target_arch = "x86_64");
    let one = |r: usize, c: usize, dst: &mut [f32]| {
        let v = src[r * cols + c];
        dst[c * rows + r] = if corr.is_empty() {
            v
        } else {
            v - corr[r] * amp[c]
        };
    };
    for r in 0..rows {
        let c_start = if tiled && r < r4 { c4 } else { 0 };
        for c in c_start..cols {
            one(r, c, dst);
        }
    }
}

/// The right-hand side of a delta step for one plane: (z, δ plane, matching plane of the aux
/// array, the whole field u).
pub type DeltaHook<'a> = dyn Fn(usize, &mut [f32], &mut [f32], &[f32]) + Sync + 'a;

/// The right-hand sides of a fused delta step for one plane: (z, one δ plane per job, matching
/// plane of the aux array, every job's whole field u).
pub type FusedHook<'a> = dyn Fn(usize, &mut [&mut [f32]], &mut [f32], &[&[f32]]) + Sync + 'a;

/// Most fields one [`LodSolver::step_delta_fused`] takes (its per-plane work allocates nothing).
pub const MAX_FUSED: usize = 4;

/// One field of [`LodSolver::step_delta_fused`]: its solver, δ buffer, field and scratch.
pub struct DeltaJob<'a> {
    /// Solver of this field (D, k, Δt).
    pub solver: &'a LodSolver,
    /// Right-hand side / increment buffer.
    pub delta: &'a mut [f32],
    /// The field, updated in place.
    pub u: &'a mut [f32],
    /// Scratch of this job (jobs never share one).
    pub scratch: &'a mut LodScratch,
}

/// A per-plane hook run before the first sweep: (z, plane, matching plane of the aux array).
pub type PlaneHook<'a> = dyn Fn(usize, &mut [f32], &mut [f32]) + Sync + 'a;

/// Reusable buffers for [`LodSolver::step`]: one plane buffer for the xy sweeps per worker
/// thread of the pool that runs the step (a plane's sweeps overwrite the buffer before reading
/// it, so which buffer a plane gets does not matter), made the first time a pool of that size
/// runs a step. One buffer per thread rather than one per plane keeps the buffer a thread
/// reuses plane after plane in its cache, instead of touching a field's worth of scratch per
/// step.
#[derive(Debug)]
pub struct LodScratch {
    nxy: usize,
    amp_len: usize,
    slots: Vec<Mutex<PlaneScratch>>,
}

impl Clone for LodScratch {
    /// A scratch for the same grid (its buffers hold nothing worth copying).
    fn clone(&self) -> Self {
        LodScratch {
            nxy: self.nxy,
            amp_len: self.amp_len,
            slots: Vec::new(),
        }
    }
}

impl LodScratch {
    fn plane(&self) -> PlaneScratch {
        PlaneScratch {
            xt: vec![0.0; self.nxy],
            amp: vec![0.0; self.amp_len],
        }
    }

    /// Makes one buffer per thread of the current pool (allocates only when the pool is larger
    /// than any before).
    fn prepare(&mut self) {
        let n = rayon::current_num_threads().max(1);
        while self.slots.len() < n {
            let p = self.plane();
            self.slots.push(Mutex::new(p));
        }
    }

    /// Runs `f` with the calling worker thread's buffer (after [`LodScratch::prepare`]). A
    /// worker runs one plane at a time, so its buffer is free; should it not be (or not exist),
    /// `f` gets a fresh one.
    fn with<R>(&self, f: impl FnOnce(&mut PlaneScratch) -> R) -> R {
        let slot = rayon::current_thread_index().and_then(|i| self.slots.get(i));
        match slot.map(|m| m.try_lock()) {
            Some(Ok(mut ps)) => f(&mut ps),
            _ => f(&mut self.plane()),
        }
    }
}

#[derive(Debug)]
struct PlaneScratch {
    /// The plane transposed (x-major) for the x sweep.
    xt: Vec<f32>,
    /// Cyclic correction amplitudes, one per line (max(nx, ny) values).
    amp: Vec<f32>,
}

/// Implicit LOD diffusion–decay solver for a fixed grid, D, k and Δt.
#[derive(Clone, Debug)]
pub struct LodSolver {
    nx: usize,
    ny: usize,
    nz: usize,
    x: Axis,
    y: Axis,
    z: Axis,
    /// Whether the CPU has 256-bit vectors (AVX2); the row kernels have a
    /// second build for them. Multiplications and additions are
    /// never fused, so both versions give bit-identical results.
    wide: bool,
}

impl LodSolver {
    /// Panics only on programmer error (zero sizes); callers validate first.
    pub fn new(
        nx: usize,
        ny: usize,
        nz: usize,
        h_um: f64,
        d_um2_per_h: f64,
        decay_per_h: f64,
        dt_h: f64,
    ) -> Self {
        assert!(
            nx > 0 && ny > 0 && nz > 0,
            "grid dimensions must be positive"
        );
        let r = d_um2_per_h * dt_h / (h_um * h_um);
        let kdt3 = decay_per_h * dt_h / 3.0;
        Self {
            nx,
            ny,
            nz,
            x: Axis::periodic(nx, r, kdt3),
            y: Axis::periodic(ny, r, kdt3),
            z: Axis::neumann(nz, r, kdt3),
            wide: has_avx2(),
        }
    }

    pub fn dims(&self) -> (usize, usize, usize) {
        (self.nx, self.ny, self.nz)
    }

    pub fn scratch(&self) -> LodScratch {
        LodScratch {
            nxy: self.nx * self.ny,
            amp_len: self.nx.max(self.ny),
            slots: Vec::new(),
        }
    }

    /// One time step: backward Euler along x, then y, then z. Values with
    /// |v| < 1e-12 are flushed to 0 afterwards. Bit-identical at any rayon
    /// thread count: planes and column chunks are fixed units of work and each
    /// value's arithmetic does not depend on which task computes it.
    pub fn step(&self, field: &mut [f32], scratch: &mut LodScratch) {
        self.step_with(field, scratch, None, &|_, _, _| {});
    }

    /// One time step like [`LodSolver::step`], but first applies `pre` to each z-plane (and the
    /// matching plane of `aux`, if given) while the plane is in cache: sources are added this
    /// way without a separate pass over memory. `pre(z, plane, aux_plane)` must depend only on
    /// its arguments, so the result stays independent of the thread count.
    pub fn step_with(
        &self,
        field: &mut [f32],
        scratch: &mut LodScratch,
        aux: Option<&mut [f32]>,
        pre: &PlaneHook,
    ) {
        let (nx, ny, nz) = (self.nx, self.ny, self.nz);
        let nxy = nx * ny;
        assert_eq!(
            field.len(),
            nxy * nz,
            "field length does not match the grid"
        );
        assert!(
            scratch.nxy == nxy && scratch.amp_len == nx.max(ny),
            "scratch belongs to a different grid"
        );
        scratch.prepare();
        let scratch = &*scratch;

        // x and y sweeps: each z-plane is independent and stays in cache.
        match aux {
            Some(aux) => {
                assert_eq!(aux.len(), field.len(), "aux length does not match the grid");
                field
                    .par_chunks_mut(nxy)
                    .zip(aux.par_chunks_mut(nxy))
                    .enumerate()
                    .for_each(|(z, (plane, a))| {
                        pre(z, plane, a);
                        scratch.with(|ps| self.plane_xy(plane, ps))
                    });
            }
            None => field
                .par_chunks_mut(nxy)
                .enumerate()
                .for_each(|(z, plane)| {
                    pre(z, plane, &mut []);
                    scratch.with(|ps| self.plane_xy(plane, ps))
                }),
        }

        // z sweep: fixed chunks of xy columns, each solved through all layers.
        let base = SharedPtr(field.as_mut_ptr());
        (0..nxy.div_ceil(Z_CHUNK))
            .into_par_iter()
            .for_each(|c| self.z_chunk(base, c));
    }

    /// One delta-form step, fused: for each z-plane `rhs(z, δ plane, aux plane, u)` fills the
    /// right-hand side of δ from the field `u` (read only at that point) while the plane is in
    /// cache, the LOD solve follows, and each chunk of columns, once solved along z, is added
    /// into `u` as u ← max(0, flush(u + δ)) while it is still in cache. Bit-identical at any
    /// thread count, like [`LodSolver::step`]. The one-field case of
    /// [`LodSolver::step_delta_fused`].
    pub fn step_delta(
        &self,
        delta: &mut [f32],
        u: &mut [f32],
        scratch: &mut LodScratch,
        aux: Option<&mut [f32]>,
        rhs: &DeltaHook,
    ) {
        let mut jobs = [DeltaJob {
            solver: self,
            delta,
            u,
            scratch,
        }];
        Self::step_delta_fused(&mut jobs, aux, &|z, outs, a, us| {
            rhs(z, &mut *outs[0], a, us[0])
        });
    }

    /// The second half of a delta step: the z sweep of δ (whose planes have had their xy
    /// sweeps), each chunk of columns then added into `u` as u ← max(0, flush(u + δ)) while it
    /// is still in cache.
    fn finish_delta(&self, delta: &mut [f32], u: &mut [f32]) {
        let (nx, ny, nz) = (self.nx, self.ny, self.nz);
        let nxy = nx * ny;
        let base = SharedPtr(delta.as_mut_ptr());
        let ubase = SharedPtr(u.as_mut_ptr());
        (0..nxy.div_ceil(Z_CHUNK)).into_par_iter().for_each(|c| {
            self.z_chunk(base, c);
            let c0 = c * Z_CHUNK;
            let width = Z_CHUNK.min(nxy - c0);
            for z in 0..nz {
                let off = z * nxy + c0;
                // SAFETY: chunk c owns columns c0..c0 + width of every layer of both
                // buffers; no other task touches them, and the caller holds both exclusively.
                let (d, f) = unsafe {
                    (
                        std::slice::from_raw_parts(base.get().add(off), width),
                        std::slice::from_raw_parts_mut(ubase.get().add(off), width),
                    )
                };
                if self.wide {
                    add_delta::<true>(f, d);
                } else {
                    add_delta::<false>(f, d);
                }
            }
        });
    }

    /// Delta-form steps of several fields on the same grid at once, as [`LodSolver::step_delta`]
    /// would take them one by one, but with one pass over the planes for all of them: for each z-plane,
    /// `rhs(z, δ planes, aux plane, fields)` fills every job's right-hand side (so that sources
    /// shared by the fields are read from memory once), and each job's xy sweeps follow while
    /// its plane is in cache; then each job's z sweep and update. Each job's arithmetic is that
    /// of `step_delta` with the same right-hand side, so the results are bit-identical to it and
    /// independent of the thread count.
    pub fn step_delta_fused(jobs: &mut [DeltaJob], aux: Option<&mut [f32]>, rhs: &FusedHook) {
        let Some(first) = jobs.first() else {
            return;
        };
        let (nx, ny, nz) = first.solver.dims();
        let nxy = nx * ny;
        assert!(
            jobs.len() <= MAX_FUSED,
            "at most {MAX_FUSED} fields per fused step"
        );
        for j in jobs.iter() {
            assert_eq!(j.solver.dims(), (nx, ny, nz), "solvers of different grids");
            assert_eq!(
                j.delta.len(),
                nxy * nz,
                "field length does not match the grid"
            );
            assert_eq!(j.u.len(), nxy * nz, "field length does not match the grid");
            assert!(
                j.scratch.nxy == nxy && j.scratch.amp_len == nx.max(ny),
                "scratch belongs to a different grid"
            );
        }
        for j in jobs.iter_mut() {
            j.scratch.prepare();
        }
        if let Some(a) = &aux {
            assert_eq!(a.len(), nxy * nz, "aux length does not match the grid");
        }
        {
            let deltas: Vec<SharedPtr<f32>> = jobs
                .iter_mut()
                .map(|j| SharedPtr(j.delta.as_mut_ptr()))
                .collect();
            let scratches: Vec<&LodScratch> = jobs.iter().map(|j| &*j.scratch).collect();
            let aux_ptr = aux.map(|a| SharedPtr(a.as_mut_ptr()));
            let us: Vec<&[f32]> = jobs.iter().map(|j| &*j.u).collect();
            let solvers: Vec<&LodSolver> = jobs.iter().map(|j| j.solver).collect();
            (0..nz).into_par_iter().for_each(|z| {
                let off = z * nxy;
                // SAFETY: task z touches plane z of every δ buffer and of the aux array,
                // disjoint from all other tasks; the caller holds them
                // exclusively for the call, and the fields `us` are only read here.
                let mut out: [&mut [f32]; MAX_FUSED] = std::array::from_fn(|_| &mut [][..]);
                for (o, d) in out.iter_mut().zip(&deltas) {
                    *o = unsafe { std::slice::from_raw_parts_mut(d.get().add(off), nxy) };
                }
                let out = &mut out[..deltas.len()];
                let mut none: [f32; 0] = [];
                let a: &mut [f32] = match aux_ptr {
                    Some(p) => unsafe { std::slice::from_raw_parts_mut(p.get().add(off), nxy) },
                    None => &mut none,
                };
                rhs(z, out, a, &us);
                for ((plane, s), sc) in out.iter_mut().zip(&solvers).zip(&scratches) {
                    sc.with(|ps| s.plane_xy(plane, ps));
                }
            });
        }
        for j in jobs.iter_mut() {
            j.solver.finish_delta(j.delta, j.u);
        }
    }

    fn plane_xy(&self, plane: &mut [f32], ps: &mut PlaneScratch) {
        let nx = self.nx;
        self.sweep_x(plane, ps);
        // SAFETY: the plane holds ny rows of nx values.
        unsafe {
            if self.wide {
                solve_rows::<true>(
                    plane.as_mut_ptr(),
                    nx,
                    nx,
                    &self.y,
                    &mut ps.amp,
                    false,
                    false,
                );
            } else {
                solve_rows::<false>(
                    plane.as_mut_ptr(),
                    nx,
                    nx,
                    &self.y,
                    &mut ps.amp,
                    false,
                    false,
                );
            }
        }
    }

    /// z sweep of column chunk `c` of every layer.
    fn z_chunk(&self, base: SharedPtr<f32>, c: usize) {
        let nxy = self.nx * self.ny;
        let c0 = c * Z_CHUNK;
        let width = Z_CHUNK.min(nxy - c0);
        let ptr = base.get();
        // SAFETY: chunk c touches columns c0..c0+width of every layer,
        // disjoint from all other chunks, and within the field (the caller
        // holds the field exclusively for the whole sweep). The z axis is
        // never cyclic, so no correction buffer is needed.
        unsafe {
            if self.wide {
                solve_rows::<true>(ptr.add(c0), nxy, width, &self.z, &mut [], true, false);
            } else {
                solve_rows::<false>(ptr.add(c0), nxy, width, &self.z, &mut [], true, false);
            }
        }
    }

    /// x sweep of one plane: transpose so the x-lines become columns of
    /// contiguous rows, solve them in lockstep, and transpose back with the
    /// cyclic correction folded in.
    #[inline(always)]
    fn sweep_x(&self, plane: &mut [f32], ps: &mut PlaneScratch) {
        let (nx, ny) = (self.nx, self.ny);
        transpose(plane, ny, nx, &mut ps.xt, &[], &[]);
        let xt = ps.xt.as_mut_ptr();
        // SAFETY: xt holds nx rows of ny values.
        unsafe {
            if self.wide {
                solve_rows::<true>(xt, ny, ny, &self.x, &mut ps.amp, false, true);
            } else {
                solve_rows::<false>(xt, ny, ny, &self.x, &mut ps.amp, false, true);
            }
        }
        transpose(&ps.xt, nx, ny, plane, &self.x.corr, &ps.amp);
    }
}

/// Raw pointer shared by parallel tasks that each touch a disjoint part of the buffer behind it
/// (column chunks of a field in a z sweep, planes of a field in an xy pass).
struct SharedPtr<T>(*mut T);
impl<T> Clone for SharedPtr<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for SharedPtr<T> {}
// SAFETY: only used for disjoint parts of one buffer during one parallel pass.
unsafe impl<T> Send for SharedPtr<T> {}
unsafe impl<T> Sync for SharedPtr<T> {}
impl<T> SharedPtr<T> {
    fn get(self) -> *mut T {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random values in [lo, hi) (64-bit LCG).
    fn random_field(len: usize, seed: u64, lo: f32, hi: f32) -> Vec<f32> {
        let mut s = seed
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (0..len)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                lo + (hi - lo) * ((s >> 40) as f32 / (1u64 << 24) as f32)
            })
            .collect()
    }

    fn mass(f: &[f32]) -> f64 {
        f.iter().map(|&v| v as f64).sum()
    }

    /// Dense Gaussian elimination with partial pivoting, in f64.
    fn dense_solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Vec<f64> {
        let n = b.len();
        for col in 0..n {
            let piv = (col..n)
                .max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))
                .unwrap();
            a.swap(col, piv);
            b.swap(col, piv);
            let (top, below) = a.split_at_mut(col + 1);
            let pivot_row = &top[col];
            for (k, row) in below.iter_mut().enumerate() {
                let f = row[col] / pivot_row[col];
                for (v, &p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                    *v -= f * p;
                }
                b[col + 1 + k] -= f * b[col];
            }
        }
        let mut x = vec![0.0; n];
        for i in (0..n).rev() {
            let s: f64 = (i + 1..n).map(|k| a[i][k] * x[k]).sum();
            x[i] = (b[i] - s) / a[i][i];
        }
        x
    }

    /// The 1-D matrix of the scheme, built entry by entry from the stencil:
    /// periodic wraps the neighbour index, Neumann replaces a missing
    /// neighbour by the cell itself.
    fn line_matrix(n: usize, r: f64, kdt3: f64, periodic: bool) -> Vec<Vec<f64>> {
        let mut a = vec![vec![0.0; n]; n];
        for (i, row) in a.iter_mut().enumerate() {
            row[i] += 1.0 + 2.0 * r + kdt3;
            for nb in [i as isize - 1, i as isize + 1] {
                let j = if periodic {
                    nb.rem_euclid(n as isize) as usize
                } else if nb < 0 || nb >= n as isize {
                    i
                } else {
                    nb as usize
                };
                row[j] -= r;
            }
        }
        a
    }

    /// Reference step: dense f64 solves along x, then y, then z.
    #[allow(clippy::too_many_arguments)]
    fn reference_step(
        f: &[f64],
        (nx, ny, nz): (usize, usize, usize),
        r: f64,
        kdt3: f64,
    ) -> Vec<f64> {
        let mut u = f.to_vec();
        let idx = |x: usize, y: usize, z: usize| x + nx * (y + ny * z);
        let ax = line_matrix(nx, r, kdt3, true);
        let ay = line_matrix(ny, r, kdt3, true);
        let az = line_matrix(nz, r, kdt3, false);
        for z in 0..nz {
            for y in 0..ny {
                let d = (0..nx).map(|x| u[idx(x, y, z)]).collect();
                for (x, v) in dense_solve(ax.clone(), d).into_iter().enumerate() {
                    u[idx(x, y, z)] = v;
                }
            }
        }
        for z in 0..nz {
            for x in 0..nx {
                let d = (0..ny).map(|y| u[idx(x, y, z)]).collect();
                for (y, v) in dense_solve(ay.clone(), d).into_iter().enumerate() {
                    u[idx(x, y, z)] = v;
                }
            }
        }
        for y in 0..ny {
            for x in 0..nx {
                let d = (0..nz).map(|z| u[idx(x, y, z)]).collect();
                for (z, v) in dense_solve(az.clone(), d).into_iter().enumerate() {
                    u[idx(x, y, z)] = v;
                }
            }
        }
        u
    }

    fn assert_matches_reference(dims: (usize, usize, usize), h: f64, d: f64, k: f64, dt: f64) {
        let (nx, ny, nz) = dims;
        let solver = LodSolver::new(nx, ny, nz, h, d, k, dt);
        let mut scratch = solver.scratch();
        let mut f = random_field(nx * ny * nz, (nx * 1000 + ny * 10 + nz) as u64, 0.0, 1.0);
        let f64in: Vec<f64> = f.iter().map(|&v| v as f64).collect();
        solver.step(&mut f, &mut scratch);
        let expect = reference_step(&f64in, dims, d * dt / (h * h), k * dt / 3.0);
        let scale = expect.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        for (i, (&got, &want)) in f.iter().zip(&expect).enumerate() {
            assert!(
                (got as f64 - want).abs() <= 1e-5 * scale,
                "dims {dims:?} voxel {i}: {got} vs dense {want}"
            );
        }
    }

    #[test]
    fn mass_is_conserved_without_decay() {
        let (nx, ny, nz) = (17, 12, 9);
        let solver = LodSolver::new(nx, ny, nz, 20.0, 1600.0, 0.0, 0.25);
        let mut scratch = solver.scratch();
        let mut f = random_field(nx * ny * nz, 7, 0.1, 10.0);
        let mut before = mass(&f);
        for _ in 0..20 {
            solver.step(&mut f, &mut scratch);
            let after = mass(&f);
            assert!(
                ((after - before) / before).abs() < 1e-6,
                "mass {before} -> {after}"
            );
            before = after;
        }
    }

    /// Discrete solution after `steps` steps from mass `m` in the centre
    /// voxel, compared with the exact solution point-sampled at voxel
    /// centres. The mass is large so that no concentration inside 3σ comes
    /// near the flush threshold. Returns (relative L2 error within 3σ, mass ratio error).
    fn point_source_error(n: usize, h: f64, dt: f64, steps: usize) -> (f64, f64) {
        let (d, k, m) = (1600.0, 0.1, 1.0e7);
        let solver = LodSolver::new(n, n, n, h, d, k, dt);
        let mut scratch = solver.scratch();
        let c = n / 2;
        let mut f = vec![0.0f32; n * n * n];
        f[c + n * (c + n * c)] = (m / (h * h * h)) as f32;
        for _ in 0..steps {
            solver.step(&mut f, &mut scratch);
        }
        let t = dt * steps as f64;
        let sigma = (2.0 * d * t).sqrt();
        let amp = m * (-k * t).exp() * (4.0 * std::f64::consts::PI * d * t).powf(-1.5);
        let (mut num, mut den) = (0.0, 0.0);
        for z in 0..n {
            for y in 0..n {
                for x in 0..n {
                    let r2 = [x, y, z]
                        .iter()
                        .map(|&i| ((i as f64 - c as f64) * h).powi(2))
                        .sum::<f64>();
                    if r2 > 9.0 * sigma * sigma {
                        continue;
                    }
                    let exact = amp * (-r2 / (4.0 * d * t)).exp();
                    num += (f[x + n * (y + n * z)] as f64 - exact).powi(2);
                    den += exact * exact;
                }
            }
        }
        let total = mass(&f) * h * h * h;
        let expect_total = m * (1.0 + k * dt / 3.0).powi(-3 * steps as i32);
        ((num / den).sqrt(), (total / expect_total - 1.0).abs())
    }

    #[test]
    fn point_source_matches_analytic_solution() {
        // h = 20 µm, D = 1600 µm²/h, t = 2 h: σ = √(2Dt) = 80 µm = 4 voxels,
        // and 3σ stays 20 voxels away from the edges of the 64³ block.
        let (coarse, coarse_mass) = point_source_error(64, 20.0, 0.25, 8);
        let (fine, fine_mass) = point_source_error(128, 10.0, 0.125, 16);
        // Measured: coarse 0.0988, fine 0.0449 (ratio 0.45). Backward Euler is
        // first order in Δt and, with 8 steps, the time error dominates: for
        // the modes carrying the Gaussian (ξσ ≈ 1) the per-axis amplification
        // 1/(1 + Dξ²Δt) undershoots exp(−Dξ²Δt) by ≈ (Dξ²Δt)²/2 per step, a
        // relative error of order Δt/(2t)·O(1) ≈ 0.1 over the run. The spatial
        // O(h²) part is a few per cent at 4 voxels per σ. Bounds: 0.12 for the
        // coarse run (≈20 % margin) and a refinement ratio below 0.6 (first
        // order predicts 0.5; measured 0.45).
        eprintln!("point source: coarse {coarse:.4e}, fine {fine:.4e}");
        assert!(coarse < 0.12, "coarse relative L2 error {coarse}");
        assert!(fine < 0.6 * coarse, "refinement: {fine} vs {coarse}");
        assert!(
            coarse_mass < 1e-5 && fine_mass < 1e-5,
            "mass decay {coarse_mass} {fine_mass}"
        );
    }

    #[test]
    fn periodic_x_wraps_mass_symmetrically() {
        let (nx, ny, nz) = (11, 3, 4);
        let solver = LodSolver::new(nx, ny, nz, 20.0, 1600.0, 0.0, 0.25);
        let mut scratch = solver.scratch();
        // Mass in the last x-layer only: it must reach x = 0 exactly as it
        // reaches x = nx − 2.
        let mut f = vec![0.0f32; nx * ny * nz];
        for row in f.chunks_exact_mut(nx) {
            row[nx - 1] = 1.0;
        }
        let m0 = mass(&f);
        solver.step(&mut f, &mut scratch);
        for row in f.chunks_exact(nx) {
            assert!(row[0] > 0.05, "no mass crossed the wrap: {row:?}");
            assert!((row[0] - row[nx - 2]).abs() <= 1e-6 * row[0], "{row:?}");
            assert!(
                (row[1] - row[nx - 3]).abs() <= 1e-6 * row[1].max(1e-6),
                "{row:?}"
            );
        }
        assert!((mass(&f) / m0 - 1.0).abs() < 1e-6);

        // Data symmetric about the wrap point (x = −½) stay symmetric.
        let mut f = vec![0.0f32; nx * ny * nz];
        for row in f.chunks_exact_mut(nx) {
            for (x, v) in row.iter_mut().enumerate() {
                let dist = x.min(nx - 1 - x) as f32;
                *v = (-(dist * dist) / 2.0).exp();
            }
        }
        for _ in 0..5 {
            solver.step(&mut f, &mut scratch);
        }
        for row in f.chunks_exact(nx) {
            for x in 0..nx {
                assert!(
                    (row[x] - row[nx - 1 - x]).abs() <= 1e-6,
                    "asymmetry at x = {x}: {row:?}"
                );
            }
            assert!(row[0] > row[nx / 2], "peak must stay at the wrap: {row:?}");
        }
    }

    #[test]
    fn neumann_z_matches_dense_solve() {
        let (nx, ny, nz) = (5, 4, 13);
        let (h, d, dt) = (20.0, 3000.0, 0.5);
        let solver = LodSolver::new(nx, ny, nz, h, d, 0.0, dt);
        let mut scratch = solver.scratch();
        let profile = random_field(nz, 3, 0.5, 2.0);
        let mut f: Vec<f32> = (0..nx * ny * nz).map(|i| profile[i / (nx * ny)]).collect();
        let m0 = mass(&f);
        let mut expect: Vec<f64> = profile.iter().map(|&v| v as f64).collect();
        let az = line_matrix(nz, d * dt / (h * h), 0.0, false);
        for _ in 0..3 {
            solver.step(&mut f, &mut scratch);
            expect = dense_solve(az.clone(), expect);
        }
        assert!((mass(&f) / m0 - 1.0).abs() < 1e-6, "mass not conserved");
        for (z, layer) in f.chunks_exact(nx * ny).enumerate() {
            for &v in layer {
                assert!(
                    (v - layer[0]).abs() <= 1e-6 * layer[0],
                    "layer {z} not uniform"
                );
                assert!(
                    (v as f64 - expect[z]).abs() < 1e-5,
                    "z = {z}: {v} vs {}",
                    expect[z]
                );
            }
        }
    }

    #[test]
    fn cyclic_axes_match_dense_solve() {
        for n in [1, 2, 3, 7, 32] {
            // ny = 19 runs the 4×4 transpose tiles and the scalar edges.
            assert_matches_reference((n, 19, 1), 20.0, 2000.0, 0.3, 0.5);
            assert_matches_reference((1, n, 1), 20.0, 2000.0, 0.3, 0.5);
            assert_matches_reference((n, 2, 3), 10.0, 900.0, 0.0, 0.1);
        }
        assert_matches_reference((9, 17, 6), 20.0, 1600.0, 0.2, 0.25);
        assert_matches_reference((1, 1, 1), 20.0, 1600.0, 0.2, 0.25);
        assert_matches_reference((2, 1, 2), 20.0, 1600.0, 0.2, 0.25);
    }

    #[test]
    fn bit_identical_across_thread_counts() {
        let (nx, ny, nz) = (37, 29, 23);
        let solver = LodSolver::new(nx, ny, nz, 20.0, 5000.0, 0.05, 0.25);
        let init = random_field(nx * ny * nz, 11, 0.0, 3.0);
        let run = |threads: usize| {
            crate::sim::in_pool(threads, || {
                let mut scratch = solver.scratch();
                let mut f = init.clone();
                for _ in 0..10 {
                    solver.step(&mut f, &mut scratch);
                }
                f
            })
        };
        let one = run(1);
        for threads in [2, 3] {
            let other = run(threads);
            assert!(
                one.iter()
                    .zip(&other)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{threads} threads differ from 1"
            );
        }
        // One scratch carried from a pool of 3 threads to a pool of 1 and to one of 2 (its
        // per-thread buffers are made for the largest and reused by the smaller).
        let mut scratch = solver.scratch();
        let mut f = init.clone();
        for (k, threads) in [3, 3, 1, 1, 2, 2, 3, 1, 2, 3].into_iter().enumerate() {
            crate::sim::in_pool(threads, || solver.step(&mut f, &mut scratch));
            assert_eq!(scratch.slots.len(), 3, "step {k}");
        }
        assert!(
            one.iter().zip(&f).all(|(a, b)| a.to_bits() == b.to_bits()),
            "a scratch shared by pools of 1, 2 and 3 threads changes the result"
        );
    }

    #[test]
    fn fused_delta_step_equals_separate_steps() {
        // Three fields with their own D, k and right-hand sides (a field-dependent stencil-like
        // term plus a shared source), one of them also accumulating into an aux array: the fused
        // step must give every field and the aux array bit for bit as three separate steps do,
        // at 1 and 3 threads.
        let (nx, ny, nz) = (23, 19, 17);
        let n = nx * ny * nz;
        let solvers = [
            LodSolver::new(nx, ny, nz, 20.0, 108_000.0, 0.5, 1.0),
            LodSolver::new(nx, ny, nz, 20.0, 50_000.0, 0.625, 1.0),
            LodSolver::new(nx, ny, nz, 20.0, 20_000.0, 0.25, 1.0),
        ];
        let src = random_field(n, 3, 0.0, 1.0);
        let init: Vec<Vec<f32>> = (0..3).map(|k| random_field(n, 20 + k, 0.0, 2.0)).collect();
        let nxy = nx * ny;
        let rhs_one = |k: usize, z: usize, out: &mut [f32], u: &[f32]| {
            let off = z * nxy;
            for (j, o) in out.iter_mut().enumerate() {
                *o = 0.1 * (k as f32 + 1.0) * src[off + j] - 0.3 * u[off + j];
            }
        };
        let run = |threads: usize, fused: bool| {
            crate::sim::in_pool(threads, || {
                let mut us = init.clone();
                let mut aux = vec![0.0f32; n];
                let mut deltas = vec![vec![0.0f32; n]; 3];
                let mut scratch: Vec<LodScratch> = solvers.iter().map(|s| s.scratch()).collect();
                for _ in 0..3 {
                    if fused {
                        let mut jobs: Vec<DeltaJob> = solvers
                            .iter()
                            .zip(deltas.iter_mut())
                            .zip(us.iter_mut())
                            .zip(scratch.iter_mut())
                            .map(|(((solver, delta), u), scratch)| DeltaJob {
                                solver,
                                delta,
                                u,
                                scratch,
                            })
                            .collect();
                        LodSolver::step_delta_fused(
                            &mut jobs,
                            Some(&mut aux),
                            &|z, outs, a, us| {
                                for (j, v) in a.iter_mut().enumerate() {
                                    *v += us[2][z * nxy + j];
                                }
                                for (k, (out, u)) in outs.iter_mut().zip(us).enumerate() {
                                    rhs_one(k, z, out, u);
                                }
                            },
                        );
                    } else {
                        for k in 0..3 {
                            let aux_k = (k == 2).then_some(&mut aux[..]);
                            solvers[k].step_delta(
                                &mut deltas[k],
                                &mut us[k],
                                &mut scratch[k],
                                aux_k,
                                &|z, out, a, u| {
                                    for (j, v) in a.iter_mut().enumerate() {
                                        *v += u[z * nxy + j];
                                    }
                                    rhs_one(k, z, out, u);
                                },
                            );
                        }
                    }
                }
                (us, aux)
            })
        };
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let (ref_u, ref_aux) = run(1, false);
        assert!(ref_aux.iter().any(|&v| v > 0.0));
        for threads in [1, 3] {
            let (u, aux) = run(threads, true);
            for k in 0..3 {
                assert_eq!(bits(&u[k]), bits(&ref_u[k]), "field {k}, {threads} threads");
            }
            assert_eq!(bits(&aux), bits(&ref_aux), "aux, {threads} threads");
        }
    }

    #[test]
    fn avx2_and_baseline_builds_are_bit_identical() {
        // Every row kernel (forward, back, flush, correction, delta update) in both builds:
        // plain steps and delta steps with a right-hand side of mixed signs, so that the update
        // clamps at zero and flushes tiny values.
        if !has_avx2() {
            return;
        }
        let (nx, ny, nz) = (41, 27, 19);
        let n = nx * ny * nz;
        let init = random_field(n, 5, 0.0, 2.0);
        let src = random_field(n, 6, -1.0, 1.0);
        let nxy = nx * ny;
        let run = |wide: bool| {
            let mut solver = LodSolver::new(nx, ny, nz, 20.0, 108_000.0, 0.5, 0.5);
            solver.wide = wide;
            let mut scratch = solver.scratch();
            let (mut f, mut u, mut delta) = (init.clone(), init.clone(), vec![0.0f32; n]);
            for _ in 0..4 {
                solver.step(&mut f, &mut scratch);
                solver.step_delta(&mut delta, &mut u, &mut scratch, None, &|z, out, _, _| {
                    out.copy_from_slice(&src[z * nxy..(z + 1) * nxy]);
                });
            }
            (f, u)
        };
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let (f0, u0) = run(false);
        let (f1, u1) = run(true);
        assert!(u0.contains(&0.0), "the update never clamped");
        assert_eq!(bits(&f0), bits(&f1));
        assert_eq!(bits(&u0), bits(&u1));
    }

    #[test]
    fn tiny_values_are_flushed() {
        let solver = LodSolver::new(4, 4, 4, 20.0, 1600.0, 0.0, 0.25);
        let mut scratch = solver.scratch();
        let mut f = vec![1e-14f32; 64];
        solver.step(&mut f, &mut scratch);
        assert!(f.iter().all(|&v| v == 0.0));
    }
}
