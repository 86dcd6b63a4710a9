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

use rayon::prelude::*;

/// Width of the column tiles of the z pass: an accumulator tile stays in L1
/// while the source layers stream past it.
const Z_TILE: usize = 1024;

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
    /// For dermal layer z' and offset j = 1..=radius: the reflected source
    /// layers (z' − j, z' + j), row-major by z'.
    zsrc: Vec<(usize, usize)>,
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
        let mut zsrc = Vec::with_capacity(nzd * rz);
        for z in 0..nzd as isize {
            for j in 1..=rz as isize {
                zsrc.push((reflect(z - j, nzd), reflect(z + j, nzd)));
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
    /// Bit-identical at any rayon thread count: layers and tiles are fixed
    /// units of work and every sum runs over the kernel in a fixed order.
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
                let srcs = &self.zsrc[z * rz..(z + 1) * rz];
                for t0 in (0..nxy).step_by(Z_TILE) {
                    let t1 = (t0 + Z_TILE).min(nxy);
                    let acc = &mut layer[t0..t1];
                    let centre = &xy[z * nxy + t0..z * nxy + t1];
                    let w0 = self.kz[0];
                    for (a, &c) in acc.iter_mut().zip(centre) {
                        *a = w0 * c;
                    }
                    for (&w, &(lo, hi)) in self.kz[1..].iter().zip(srcs) {
                        let below = &xy[lo * nxy + t0..lo * nxy + t1];
                        let above = &xy[hi * nxy + t0..hi * nxy + t1];
                        for ((a, &b), &c) in acc.iter_mut().zip(below).zip(above) {
                            *a += w * (b + c);
                        }
                    }
                }
            });
    }

    /// Periodic convolution of one x-row through a wrapped copy in `pad`.
    fn smooth_x(&self, src: &[f32], dst: &mut [f32], pad: &mut [f32]) {
        let nx = self.nx;
        let r = self.kxy.len() - 1;
        // Wrapped copy without integer division in the loop: start at the periodic image of
        // −r and step through the row, resetting at its end.
        let mut s = (nx - r % nx) % nx;
        for p in pad.iter_mut() {
            *p = src[s];
            s += 1;
            if s == nx {
                s = 0;
            }
        }
        let w0 = self.kxy[0];
        for (d, &c) in dst.iter_mut().zip(&pad[r..r + nx]) {
            *d = w0 * c;
        }
        for (j, &w) in self.kxy.iter().enumerate().skip(1) {
            let left = &pad[r - j..r - j + nx];
            let right = &pad[r + j..r + j + nx];
            for ((d, &a), &b) in dst.iter_mut().zip(left).zip(right) {
                *d += w * (a + b);
            }
        }
    }

    /// Periodic convolution along y of one layer, whole x-rows at a time.
    fn smooth_y(&self, src: &[f32], dst: &mut [f32]) {
        let (nx, ny) = (self.nx, self.ny);
        let row = |y: isize| {
            // Kernel offsets reach at most one period past either end, and usually far less:
            // wrap by addition rather than an integer division per row.
            let mut y = y;
            while y < 0 {
                y += ny as isize;
            }
            while y >= ny as isize {
                y -= ny as isize;
            }
            let y = y as usize;
            &src[y * nx..(y + 1) * nx]
        };
        let w0 = self.kxy[0];
        let r = self.kxy.len() - 1;
        // Rows r..ny − r reach no wrapped row: they are one contiguous run per kernel tap, so
        // the loop is long and vectorises fully (the same operations per value as by row).
        let (lo, hi) = (r.min(ny), ny.saturating_sub(r).max(r.min(ny)));
        if hi > lo {
            let d = &mut dst[lo * nx..hi * nx];
            for (d, &c) in d.iter_mut().zip(&src[lo * nx..hi * nx]) {
                *d = w0 * c;
            }
            for (j, &w) in self.kxy.iter().enumerate().skip(1) {
                let below = &src[(lo - j) * nx..(hi - j) * nx];
                let above = &src[(lo + j) * nx..(hi + j) * nx];
                for ((d, &a), &b) in d.iter_mut().zip(below).zip(above) {
                    *d += w * (a + b);
                }
            }
        }
        for (y, drow) in dst.chunks_exact_mut(nx).enumerate() {
            if (lo..hi).contains(&y) {
                continue;
            }
            let y = y as isize;
            for (d, &c) in drow.iter_mut().zip(row(y)) {
                *d = w0 * c;
            }
            for (j, &w) in self.kxy.iter().enumerate().skip(1) {
                let j = j as isize;
                for ((d, &a), &b) in drow.iter_mut().zip(row(y - j)).zip(row(y + j)) {
                    *d += w * (a + b);
                }
            }
        }
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

    #[test]
    fn reflection_indices() {
        let got: Vec<usize> = (-5..8).map(|i| reflect(i, 3)).collect();
        assert_eq!(got, [1, 2, 2, 1, 0, 0, 1, 2, 2, 1, 0, 0, 1]);
    }
}
