//! Anisotropic Gaussian smoothing of cell counts over the dermis.
//!
//! The relative fibroblast density is ρ(x) = (G ∗ count)(x) / (G ∗ baseline)(x),
//! where G is a Gaussian with standard deviation σ_xy (µm) in x and y and σ_z
//! (µm) in depth. This module computes G ∗ f for one field f.
//!
//! Domain: the dermis, voxel layers z_lo..nz. The block is periodic in x and y
//! and reflecting at both dermis faces (z_lo − ½ and nz − ½), so smoothing
//! neither loses nor creates cells: the sum over dermal voxels is preserved.
//! Layers above z_lo (epidermis) are outside the domain: their input is
//! ignored and their output is 0.
//!
//! G is separable, so the convolution is three 1-D passes (x, y, z). Each 1-D
//! kernel is the Gaussian sampled at voxel centres, truncated at
//! ⌈3σ/h⌉ voxels and renormalised to sum 1 (for σ ≥ h the sampled kernel's
//! variance is σ² up to the ≈ 3 % lost to truncation; a voxel-integrated
//! kernel would add h²/12, which at σ_z = 1.5 h is a larger bias).

use crate::sim::diffusion::{has_avx2, row_kernel};
use rayon::prelude::*;

/// Symmetric 1-D kernel: `w[0]` is the centre weight, `w[j]` the weight at ±j.
fn gaussian_kernel(sigma_um: f64, h_um: f64) -> Vec<f32> {
    if sigma_um <= 0.0 {
        return vec![1.0];
    }
    let radius = (3.0 * sigma_um / h_um).ceil() as usize;
    let raw: Vec<f64> = (0..=radius)
        .map(|j| {
            let d = j as f64 * h_um / sigma_um;
            (-0.5 * d * d).exp()
        })
        .collect();
    let total = raw[0] + 2.0 * raw[1..].iter().sum::<f64>();
    raw.iter().map(|&w| (w / total) as f32).collect()
}

/// Index `i` reflected into 0..n about −½ and n − ½, repeatedly if needed.
fn reflect(i: isize, n: usize) -> usize {
    let period = 2 * n as isize;
    let m = i.rem_euclid(period) as usize;
    if m < n { m } else { 2 * n - 1 - m }
}

/// Reusable buffers for [`GaussianSmoother::smooth`]; smoothing allocates
/// nothing itself.
#[derive(Clone, Debug)]
pub struct SmoothScratch {
    /// Result of the x and y passes over the dermis.
    xy: Vec<f32>,
    /// One wrapped copy of an x-row per dermal layer (length nx + 2·radius).
    pads: Vec<Vec<f32>>,
}

/// Separable anisotropic Gaussian convolution over the dermis of a block.
#[derive(Clone, Debug)]
pub struct GaussianSmoother {
    nx: usize,
    ny: usize,
    nz: usize,
    z_lo: usize,
    kxy: Vec<f32>,
    kz: Vec<f32>,
    /// For dermal layer z' and offset j = 1..=radius: the offsets in the x–y result of the
    /// reflected source layers (z' − j, z' + j), row-major by z'.
    zsrc: Vec<(usize, usize)>,
    /// For offset j = 1..=radius: the offsets (r − j, r + j) in a wrapped x-row copy.
    xsrc: Vec<(usize, usize)>,
    /// For row y and offset j = 1..=radius: the offsets of the wrapped source rows y − j and
    /// y + j in a layer, row-major by y.
    ysrc: Vec<(usize, usize)>,
    /// Whether the CPU has 256-bit vectors (AVX2): the tap kernel then runs its second build.
    /// Multiplications and additions are never fused, so both builds give the same bits.
    wide: bool,
}

impl GaussianSmoother {
    /// Panics on programmer error: zero sizes or `z_lo >= nz` (no dermis).
    pub fn new(
        nx: usize,
        ny: usize,
        nz: usize,
        h_um: f64,
        sigma_xy_um: f64,
        sigma_z_um: f64,
        z_lo: usize,
    ) -> Self {
        assert!(
            nx > 0 && ny > 0 && nz > 0,
            "grid dimensions must be positive"
        );
        assert!(z_lo < nz, "the dermis must hold at least one layer");
        let kxy = gaussian_kernel(sigma_xy_um, h_um);
        let kz = gaussian_kernel(sigma_z_um, h_um);
        let nzd = nz - z_lo;
        let rz = kz.len() - 1;
        let nxy = nx * ny;
        let mut zsrc = Vec::with_capacity(nzd * rz);
        for z in 0..nzd as isize {
            for j in 1..=rz as isize {
                zsrc.push((reflect(z - j, nzd) * nxy, reflect(z + j, nzd) * nxy));
            }
        }
        let r = kxy.len() - 1;
        let xsrc = (1..=r).map(|j| (r - j, r + j)).collect();
        let wrap = |y: isize| y.rem_euclid(ny as isize) as usize * nx;
        let mut ysrc = Vec::with_capacity(ny * r);
        for y in 0..ny as isize {
            for j in 1..=r as isize {
                ysrc.push((wrap(y - j), wrap(y + j)));
            }
        }
        Self {
            nx,
            ny,
            nz,
            z_lo,
            kxy,
            kz,
            zsrc,
            xsrc,
            ysrc,
            wide: has_avx2(),
        }
    }

    /// The same smoother with the AVX2 build of the tap kernel switched off (`wide` false)
    /// or, where the CPU has it, on. For tests of bit-identity between the builds.
    #[cfg(test)]
    fn with_wide(mut self, wide: bool) -> Self {
        self.wide = wide && has_avx2();
        self
    }

    /// dst[i] = k[0]·src[centre + i] + Σ_j k[j]·(src[lo_j + i] + src[hi_j + i]), j = 1..=r in
    /// order, with `taps[j − 1] = (lo_j, hi_j)`.
    #[inline(always)]
    fn taps(
        &self,
        dst: &mut [f32],
        src: &[f32],
        centre: usize,
        taps: &[(usize, usize)],
        k: &[f32],
    ) {
        if self.wide {
            sym_taps::<true>(dst, src, centre, taps, k)
        } else {
            sym_taps::<false>(dst, src, centre, taps, k)
        }
    }

    pub fn scratch(&self) -> SmoothScratch {
        let nzd = self.nz - self.z_lo;
        let rx = self.kxy.len() - 1;
        SmoothScratch {
            xy: vec![0.0; nzd * self.nx * self.ny],
            pads: (0..nzd).map(|_| vec![0.0; self.nx + 2 * rx]).collect(),
        }
    }

    /// out = G ∗ input over the dermis (layers z_lo..nz); out = 0 above z_lo.
    /// Bit-identical at any rayon thread count and with either build of the tap kernel: layers
    /// are fixed units of work and every sum runs over the kernel in a fixed order.
    pub fn smooth(&self, input: &[f32], out: &mut [f32], scratch: &mut SmoothScratch) {
        let (nx, ny, nz) = (self.nx, self.ny, self.nz);
        let nxy = nx * ny;
        assert_eq!(
            input.len(),
            nxy * nz,
            "input length does not match the grid"
        );
        assert_eq!(out.len(), nxy * nz, "output length does not match the grid");
        let nzd = nz - self.z_lo;
        assert!(
            scratch.xy.len() == nzd * nxy && scratch.pads.len() == nzd,
            "scratch belongs to a different grid"
        );
        let (epidermis, dermis) = out.split_at_mut(self.z_lo * nxy);
        epidermis.fill(0.0);
        let dermis_in = &input[self.z_lo * nxy..];

        // x then y within each layer; `dermis` holds the x result meanwhile.
        dermis
            .par_chunks_mut(nxy)
            .zip(scratch.xy.par_chunks_mut(nxy))
            .zip(scratch.pads.par_iter_mut())
            .zip(dermis_in.par_chunks(nxy))
            .for_each(|(((xpass, ypass), pad), src)| {
                for (orow, irow) in xpass.chunks_exact_mut(nx).zip(src.chunks_exact(nx)) {
                    self.smooth_x(irow, orow, pad);
                }
                self.smooth_y(xpass, ypass);
            });

        // z pass: each output layer gathers reflected source layers.
        let xy = &scratch.xy;
        let rz = self.kz.len() - 1;
        dermis
            .par_chunks_mut(nxy)
            .enumerate()
            .for_each(|(z, layer)| {
                let offs = &self.zsrc[z * rz..(z + 1) * rz];
                self.taps(layer, xy, z * nxy, offs, &self.kz);
            });
    }

    /// Periodic convolution of one x-row through a wrapped copy in `pad`.
    fn smooth_x(&self, src: &[f32], dst: &mut [f32], pad: &mut [f32]) {
        let nx = self.nx;
        let r = self.kxy.len() - 1;
        if r <= nx {
            // The wrapped copy in three pieces: the row's last r values, the row, its first r.
            pad[..r].copy_from_slice(&src[nx - r..]);
            pad[r..r + nx].copy_from_slice(src);
            pad[r + nx..].copy_from_slice(&src[..r]);
        } else {
            // Kernels wider than the row wrap more than once: start at the periodic image of
            // −r and step through the row, resetting at its end.
            let mut s = (nx - r % nx) % nx;
            for p in pad.iter_mut() {
                *p = src[s];
                s += 1;
                if s == nx {
                    s = 0;
                }
            }
        }
        self.taps(dst, pad, r, &self.xsrc, &self.kxy);
    }

    /// Periodic convolution along y of one layer, whole x-rows at a time.
    fn smooth_y(&self, src: &[f32], dst: &mut [f32]) {
        let (nx, ny) = (self.nx, self.ny);
        let r = self.kxy.len() - 1;
        let (lo, hi) = (r.min(ny), ny.saturating_sub(r).max(r.min(ny)));
        // Rows r..ny − r reach no wrapped row: they are one contiguous run, each kernel tap a
        // fixed offset from the output, that of the run's first row (the same operations per
        // value as by row).
        if hi > lo {
            let offs = &self.ysrc[lo * r..(lo + 1) * r];
            self.taps(&mut dst[lo * nx..hi * nx], src, lo * nx, offs, &self.kxy);
        }
        for (y, drow) in dst.chunks_exact_mut(nx).enumerate() {
            if (lo..hi).contains(&y) {
                continue;
            }
            self.taps(drow, src, y * nx, &self.ysrc[y * r..(y + 1) * r], &self.kxy);
        }
    }
}

/// Outputs per block of the tap kernel: four 256-bit accumulators, which stay in registers
/// while every tap is added.
const BLOCK: usize = 32;

row_kernel!(sym_taps, sym_taps_base, sym_taps_avx2,
    (dst: &mut [f32], src: &[f32], centre: usize, taps: &[(usize, usize)], k: &[f32]), {
    tap_kernel_body(dst, src, centre, taps, k)
});

/// The symmetric tap sum of [`GaussianSmoother::taps`]. Outputs are computed in blocks of
/// [`BLOCK`] held in registers across all taps; a last block that would run past the end is
/// moved back to end there (its overlapping outputs are computed again, to the same bits), and
/// outputs fewer than one block are summed one by one. Every output takes the operations
/// `k[0]·c`, then `+= k[j]·(a + b)` for j = 1, 2, … in that order, whatever path computes it.
#[inline(always)]
fn tap_kernel_body(
    dst: &mut [f32],
    src: &[f32],
    centre: usize,
    taps: &[(usize, usize)],
    k: &[f32],
) {
    let n = dst.len();
    let w0 = k[0];
    let k = &k[1..=taps.len()];
    if n < BLOCK {
        for (i, d) in dst.iter_mut().enumerate() {
            let mut acc = w0 * src[centre + i];
            for (&w, &(lo, hi)) in k.iter().zip(taps) {
                acc += w * (src[lo + i] + src[hi + i]);
            }
            *d = acc;
        }
        return;
    }
    // Block starts: 0, BLOCK, 2·BLOCK, …, then n − BLOCK if a part block remains.
    let full = n / BLOCK;
    let starts = (0..full)
        .map(|b| b * BLOCK)
        .chain((n % BLOCK != 0).then_some(n - BLOCK));
    for i in starts {
        let c: &[f32; BLOCK] = src[centre + i..centre + i + BLOCK].try_into().unwrap();
        let mut acc = [0.0f32; BLOCK];
        for l in 0..BLOCK {
            acc[l] = w0 * c[l];
        }
        for (&w, &(lo, hi)) in k.iter().zip(taps) {
            let a: &[f32; BLOCK] = src[lo + i..lo + i + BLOCK].try_into().unwrap();
            let b: &[f32; BLOCK] = src[hi + i..hi + i + BLOCK].try_into().unwrap();
            for l in 0..BLOCK {
                acc[l] += w * (a[l] + b[l]);
            }
        }
        dst[i..i + BLOCK].copy_from_slice(&acc);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn random_field(len: usize, seed: u64) -> Vec<f32> {
        let mut s = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        (0..len)
            .map(|_| {
                s = s
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (s >> 40) as f32 / (1u64 << 24) as f32
            })
            .collect()
    }

    fn run(sm: &GaussianSmoother, input: &[f32]) -> Vec<f32> {
        let mut out = vec![f32::NAN; input.len()];
        sm.smooth(input, &mut out, &mut sm.scratch());
        out
    }

    #[test]
    fn constant_input_stays_constant_in_dermis() {
        // Kernels wider than the period (σ_xy = 3 voxels on 7×5) and longer
        // than the dermis (σ_z = 4 voxels over 6 layers) exercise repeated
        // wrapping and reflection, as does the production-like case.
        for (nx, ny, nz, sxy, sz, z_lo) in [
            (30, 24, 20, 100.0, 30.0, 4),
            (7, 5, 9, 60.0, 80.0, 3),
            (12, 12, 10, 100.0, 30.0, 9),
        ] {
            let sm = GaussianSmoother::new(nx, ny, nz, 20.0, sxy, sz, z_lo);
            let mut input = vec![2.5f32; nx * ny * nz];
            // Epidermal input must be ignored.
            input[..z_lo * nx * ny].fill(1.0e6);
            let out = run(&sm, &input);
            for (i, &v) in out.iter().enumerate() {
                let want = if i < z_lo * nx * ny { 0.0 } else { 2.5 };
                assert!((v - want).abs() <= 1e-5 * 2.5, "voxel {i}: {v} vs {want}");
            }
        }
    }

    #[test]
    fn mass_is_preserved_in_dermis() {
        for (nx, ny, nz, z_lo) in [(23, 19, 17, 5), (8, 3, 4, 1), (16, 16, 6, 5)] {
            let sm = GaussianSmoother::new(nx, ny, nz, 20.0, 100.0, 30.0, z_lo);
            let input = random_field(nx * ny * nz, nz as u64);
            let out = run(&sm, &input);
            let d0 = z_lo * nx * ny;
            let before: f64 = input[d0..].iter().map(|&v| v as f64).sum();
            let after: f64 = out[d0..].iter().map(|&v| v as f64).sum();
            assert!(
                ((after - before) / before).abs() < 1e-5,
                "{before} vs {after}"
            );
        }
    }

    #[test]
    fn impulse_gives_separable_profile_with_requested_variance() {
        let (nx, ny, nz, h) = (64, 64, 40, 20.0);
        let (sxy, sz) = (100.0, 30.0);
        let sm = GaussianSmoother::new(nx, ny, nz, h, sxy, sz, 4);
        let (cx, cy, cz) = (30, 33, 22);
        let mut input = vec![0.0f32; nx * ny * nz];
        input[cx + nx * (cy + ny * cz)] = 1.0;
        let out = run(&sm, &input);
        let at = |x: usize, y: usize, z: usize| out[x + nx * (y + ny * z)] as f64;
        let (mut m, mut vx, mut vy, mut vz) = (0.0, 0.0, 0.0, 0.0);
        for z in 0..nz {
            for y in 0..ny {
                for x in 0..nx {
                    let v = at(x, y, z);
                    m += v;
                    vx += v * ((x as f64 - cx as f64) * h).powi(2);
                    vy += v * ((y as f64 - cy as f64) * h).powi(2);
                    vz += v * ((z as f64 - cz as f64) * h).powi(2);
                }
            }
        }
        let (vx, vy, vz) = (vx / m, vy / m, vz / m);
        assert!((m - 1.0).abs() < 1e-5, "mass {m}");
        assert!((vx / (sxy * sxy) - 1.0).abs() < 0.05, "x variance {vx}");
        assert!((vy / (sxy * sxy) - 1.0).abs() < 0.05, "y variance {vy}");
        assert!((vz / (sz * sz) - 1.0).abs() < 0.10, "z variance {vz}");
        // Separable: every value is the product of its axis profiles.
        let c = at(cx, cy, cz);
        for (x, y, z) in [
            (cx + 3, cy - 2, cz + 1),
            (cx - 7, cy + 5, cz - 2),
            (cx, cy + 9, cz + 3),
        ] {
            let prod = at(x, cy, cz) * at(cx, y, cz) * at(cx, cy, z) / (c * c);
            assert!((at(x, y, z) - prod).abs() <= 1e-4 * c, "({x},{y},{z})");
        }
    }

    #[test]
    fn bit_identical_across_thread_counts() {
        let (nx, ny, nz) = (41, 37, 19);
        let sm = GaussianSmoother::new(nx, ny, nz, 20.0, 100.0, 30.0, 3);
        let input = random_field(nx * ny * nz, 5);
        let with = |threads: usize| crate::sim::in_pool(threads, || run(&sm, &input));
        let one = with(1);
        for threads in [2, 3] {
            let other = with(threads);
            assert!(
                one.iter()
                    .zip(&other)
                    .all(|(a, b)| a.to_bits() == b.to_bits()),
                "{threads} threads differ from 1"
            );
        }
    }

    #[test]
    fn one_layer_dermis_smooths_in_xy_only() {
        let (nx, ny, nz) = (20, 18, 6);
        let sm = GaussianSmoother::new(nx, ny, nz, 20.0, 100.0, 30.0, nz - 1);
        let input = random_field(nx * ny * nz, 9);
        let out = run(&sm, &input);
        let d0 = (nz - 1) * nx * ny;
        assert!(out[..d0].iter().all(|&v| v == 0.0));
        // With one layer every reflected z-neighbour is the layer itself, so
        // the result equals the 2-D smoothing of that layer alone.
        let flat = GaussianSmoother::new(nx, ny, 1, 20.0, 100.0, 0.0, 0);
        let expect = run(&flat, &input[d0..]);
        for (a, b) in out[d0..].iter().zip(&expect) {
            assert!((a - b).abs() <= 1e-6, "{a} vs {b}");
        }
        let before: f64 = input[d0..].iter().map(|&v| v as f64).sum();
        let after: f64 = out[d0..].iter().map(|&v| v as f64).sum();
        assert!(((after - before) / before).abs() < 1e-5);
    }

    /// The y pass by whole runs of rows equals, bit for bit, the row-by-row sum with every
    /// source row wrapped (the same operations in the same order per value).
    #[test]
    fn y_pass_by_runs_equals_row_by_row() {
        for (nx, ny) in [(7, 40), (5, 31), (3, 20), (4, 9)] {
            let sm = GaussianSmoother::new(nx, ny, 2, 20.0, 100.0, 30.0, 0);
            let src = random_field(nx * ny, ny as u64);
            let mut got = vec![f32::NAN; nx * ny];
            sm.smooth_y(&src, &mut got);
            let k = &sm.kxy;
            for y in 0..ny {
                for x in 0..nx {
                    let at = |dy: isize| {
                        src[(y as isize + dy).rem_euclid(ny as isize) as usize * nx + x]
                    };
                    let mut want = k[0] * at(0);
                    for (j, &w) in k.iter().enumerate().skip(1) {
                        want += w * (at(-(j as isize)) + at(j as isize));
                    }
                    assert_eq!(
                        got[y * nx + x].to_bits(),
                        want.to_bits(),
                        "nx {nx}, ny {ny}, row {y}, column {x}"
                    );
                }
            }
        }
    }

    /// The straightforward sum of the documented order: x (wrapped), then y (wrapped), then z
    /// (reflected), each `k[0]·c` then `+= k[j]·(lower + upper)` for j = 1, 2, ….
    fn reference(sm: &GaussianSmoother, input: &[f32]) -> Vec<f32> {
        let (nx, ny, nz, z0) = (sm.nx, sm.ny, sm.nz, sm.z_lo);
        let sym = |k: &[f32], at: &dyn Fn(isize) -> f32| {
            let mut d = k[0] * at(0);
            for (j, &w) in k.iter().enumerate().skip(1) {
                d += w * (at(-(j as isize)) + at(j as isize));
            }
            d
        };
        let idx = |x: usize, y: usize, z: usize| x + nx * (y + ny * z);
        let wrap = |i: isize, n: usize| i.rem_euclid(n as isize) as usize;
        let mut xp = vec![0.0f32; input.len()];
        let mut yp = vec![0.0f32; input.len()];
        let mut out = vec![0.0f32; input.len()];
        for z in z0..nz {
            for y in 0..ny {
                for x in 0..nx {
                    xp[idx(x, y, z)] =
                        sym(&sm.kxy, &|d| input[idx(wrap(x as isize + d, nx), y, z)]);
                }
            }
            for y in 0..ny {
                for x in 0..nx {
                    yp[idx(x, y, z)] = sym(&sm.kxy, &|d| xp[idx(x, wrap(y as isize + d, ny), z)]);
                }
            }
        }
        let nzd = nz - z0;
        for z in z0..nz {
            for y in 0..ny {
                for x in 0..nx {
                    out[idx(x, y, z)] = sym(&sm.kz, &|d| {
                        yp[idx(x, y, z0 + reflect((z - z0) as isize + d, nzd))]
                    });
                }
            }
        }
        out
    }

    /// Both builds of the tap kernel (blocks of 32 outputs, a last block moved back to end at
    /// the row's end, and single outputs for short rows) give the bits of the reference sum,
    /// for rows shorter and longer than a block and kernels wider than the block.
    #[test]
    fn blocked_kernel_equals_the_reference_sum_bit_for_bit() {
        for (nx, ny, nz, sxy, sz, z_lo) in [
            (95, 40, 9, 100.0, 30.0, 2),
            (33, 70, 6, 100.0, 30.0, 1),
            (20, 18, 6, 100.0, 30.0, 2),
            (7, 5, 9, 60.0, 80.0, 3),
            (64, 33, 5, 900.0, 20.0, 0),
        ] {
            let input = random_field(nx * ny * nz, (nx * ny) as u64);
            for wide in [false, true] {
                let sm = GaussianSmoother::new(nx, ny, nz, 20.0, sxy, sz, z_lo).with_wide(wide);
                let want = reference(&sm, &input);
                let got = run(&sm, &input);
                for (i, (a, b)) in got.iter().zip(&want).enumerate() {
                    assert_eq!(
                        a.to_bits(),
                        b.to_bits(),
                        "{nx}×{ny}×{nz}, wide {wide}, voxel {i}: {a} vs {b}"
                    );
                }
            }
        }
    }

    #[test]
    fn reflection_indices() {
        let got: Vec<usize> = (-5..8).map(|i| reflect(i, 3)).collect();
        assert_eq!(got, [1, 2, 2, 1, 0, 0, 1, 2, 2, 1, 0, 0, 1]);
    }
}
