//! Transfers between the voxel grid and the coarser signal grid of P, T and C
//! (docs/model.md §3, "Signal grid").
//!
//! Both grids cover the same block in x and y, where both are periodic; in z both start at the
//! surface and are closed at the top and bottom, and the coarse grid may reach deeper (its
//! last layer may extend below the block's bottom by less than a cell). Along each axis a fine
//! cell centre lies between two coarse cell centres and takes their linear interpolation
//! (prolongation; the ends of z take the nearest coarse centre). The restriction of a source is
//! the transpose of that interpolation scaled by the ratio of cell volumes, so that Σ source ×
//! cell volume is the same on both grids. Both are separable: one pass per axis, parallel over
//! planes, with each output summed in a fixed order, so results do not depend on the thread
//! count.

use rayon::prelude::*;

/// One fine index's two coarse neighbours and the weight of the second.
#[derive(Debug, Clone, Copy)]
struct Tap {
    j0: usize,
    j1: usize,
    w1: f32,
}

/// The taps of `nf` fine cells on `nc` coarse cells, `r` coarse cells per fine cell.
fn taps(nf: usize, nc: usize, r: f64, periodic: bool) -> Vec<Tap> {
    (0..nf)
        .map(|i| {
            let t = (i as f64 + 0.5) * r - 0.5;
            let j = t.floor();
            let w1 = (t - j) as f32;
            let j = j as isize;
            let (j0, j1) = if periodic {
                (
                    j.rem_euclid(nc as isize) as usize,
                    (j + 1).rem_euclid(nc as isize) as usize,
                )
            } else {
                (
                    j.clamp(0, nc as isize - 1) as usize,
                    (j + 1).clamp(0, nc as isize - 1) as usize,
                )
            };
            Tap { j0, j1, w1 }
        })
        .collect()
}

/// The transfers between a fine grid and a coarse grid of the same block.
#[derive(Debug, Clone)]
pub struct Transfer {
    fine: (usize, usize, usize),
    coarse: (usize, usize, usize),
    tx: Vec<Tap>,
    ty: Vec<Tap>,
    tz: Vec<Tap>,
    /// Fine cell height over coarse cell height.
    z_ratio: f64,
    /// Per coarse plane, the fine planes that restrict into it, with their weights.
    zin: Vec<Vec<(usize, f32)>>,
    /// Per coarse row (y), the fine rows that restrict into it, with their weights.
    yin: Vec<Vec<(usize, f32)>>,
    /// Per coarse column (x), the fine columns that restrict into it, with their weights.
    xin: Vec<Vec<(usize, f32)>>,
}

fn gather(t: &[Tap], nc: usize) -> Vec<Vec<(usize, f32)>> {
    let mut g = vec![Vec::new(); nc];
    for (i, tap) in t.iter().enumerate() {
        g[tap.j0].push((i, 1.0 - tap.w1));
        g[tap.j1].push((i, tap.w1));
    }
    g
}

impl Transfer {
    /// Transfers between a fine grid of `fine` cells (x, y, z) and a coarse grid of `coarse`
    /// cells over the same block, whose cells are `z_ratio` times as high as the fine ones'
    /// (`coarse.2 / fine.2` when both grids reach the same depth; less when the coarse grid
    /// reaches deeper).
    pub fn new(fine: (usize, usize, usize), coarse: (usize, usize, usize), z_ratio: f64) -> Self {
        let ratio = |c: usize, f: usize| c as f64 / f as f64;
        let tx = taps(fine.0, coarse.0, ratio(coarse.0, fine.0), true);
        let ty = taps(fine.1, coarse.1, ratio(coarse.1, fine.1), true);
        let tz = taps(fine.2, coarse.2, z_ratio, false);
        Transfer {
            zin: gather(&tz, coarse.2),
            yin: gather(&ty, coarse.1),
            xin: gather(&tx, coarse.0),
            fine,
            coarse,
            z_ratio,
            tx,
            ty,
            tz,
        }
    }

    /// Length of a scratch buffer for [`Transfer::prolong`] and [`Transfer::restrict`] (which
    /// allocate nothing themselves).
    pub fn scratch_len(&self) -> usize {
        self.fine.0 * (self.fine.1 + self.coarse.1) * self.coarse.2
    }

    /// `fine` = the coarse field interpolated to every fine cell centre.
    pub fn prolong(&self, coarse: &[f32], fine: &mut [f32], scratch: &mut [f32]) {
        let (fx, fy, _) = self.fine;
        let (cx, cy, _) = self.coarse;
        let (fp, cp) = (fx * fy, cx * cy);
        // x and y within each coarse plane, into the scratch (fine x, y; coarse z).
        scratch
            .par_chunks_mut(fp)
            .zip(coarse.par_chunks(cp))
            .for_each(|(out, c)| {
                for (y, t) in self.ty.iter().enumerate() {
                    let (r0, r1) = (&c[t.j0 * cx..][..cx], &c[t.j1 * cx..][..cx]);
                    let row = &mut out[y * fx..][..fx];
                    for (o, tx) in row.iter_mut().zip(&self.tx) {
                        let a = (1.0 - tx.w1) * r0[tx.j0] + tx.w1 * r0[tx.j1];
                        let b = (1.0 - tx.w1) * r1[tx.j0] + tx.w1 * r1[tx.j1];
                        *o = (1.0 - t.w1) * a + t.w1 * b;
                    }
                }
            });
        // z, per fine plane.
        let s = &*scratch;
        fine.par_chunks_mut(fp)
            .zip(self.tz.par_iter())
            .for_each(|(out, t)| {
                let (p0, p1) = (&s[t.j0 * fp..][..fp], &s[t.j1 * fp..][..fp]);
                for ((o, a), b) in out.iter_mut().zip(p0).zip(p1) {
                    *o = (1.0 - t.w1) * a + t.w1 * b;
                }
            });
    }

    /// `coarse` = the fine field restricted: the transpose of [`Transfer::prolong`] times the
    /// ratio of cell counts, so that the sum over cells × cell volume is kept.
    pub fn restrict(&self, fine: &[f32], coarse: &mut [f32], scratch: &mut [f32]) {
        let (fx, fy, _) = self.fine;
        let (cx, cy, cz) = self.coarse;
        let (fp, cp) = (fx * fy, cx * cy);
        let sz = self.z_ratio as f32;
        let sy = cy as f32 / fy as f32;
        let sx = cx as f32 / fx as f32;
        let (zs, ys) = scratch.split_at_mut(fp * cz);
        // z: each coarse plane gathers its fine planes, in order.
        zs.par_chunks_mut(fp)
            .zip(self.zin.par_iter())
            .for_each(|(out, ins)| {
                out.fill(0.0);
                for &(i, w) in ins {
                    let w = w * sz;
                    for (o, v) in out.iter_mut().zip(&fine[i * fp..][..fp]) {
                        *o += w * v;
                    }
                }
            });
        // y, then x, within each coarse plane.
        let zs = &*zs;
        coarse
            .par_chunks_mut(cp)
            .zip(zs.par_chunks(fp))
            .zip(ys.par_chunks_mut(cy * fx))
            .for_each(|((out, p), rows)| {
                rows.fill(0.0);
                for (j, ins) in self.yin.iter().enumerate() {
                    let row = &mut rows[j * fx..][..fx];
                    for &(i, w) in ins {
                        let w = w * sy;
                        for (o, v) in row.iter_mut().zip(&p[i * fx..][..fx]) {
                            *o += w * v;
                        }
                    }
                }
                for j in 0..cy {
                    let row = &rows[j * fx..][..fx];
                    for (k, ins) in self.xin.iter().enumerate() {
                        let mut acc = 0.0f32;
                        for &(i, w) in ins {
                            acc += w * sx * row[i];
                        }
                        out[j * cx + k] = acc;
                    }
                }
            });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(n: usize, seed: u64) -> Vec<f32> {
        (0..n)
            .map(|i| (crate::sim::rng::mix64(i as u64 ^ seed) >> 40) as f32 / (1u64 << 24) as f32)
            .collect()
    }

    /// Restriction keeps Σ value × cell volume; prolongation keeps constants and is the
    /// transpose of restriction up to the volume ratio (⟨R f, c⟩ V_c = ⟨f, P c⟩ V_f), also
    /// where the coarse grid reaches deeper than the fine one.
    #[test]
    fn restriction_keeps_mass_and_is_the_transpose_of_prolongation() {
        for (fine, coarse, z_ratio) in [
            ((95, 95, 80), (38, 38, 32), 0.4),
            ((12, 10, 8), (6, 5, 4), 0.5),
            ((9, 7, 5), (3, 7, 2), 0.4),
            // 32 × 32 × 71 voxels of 20 µm under 13 × 13 × 29 cells of 640/13 µm: the last
            // layer of cells reaches 7.7 µm below the bottom.
            ((32, 32, 71), (13, 13, 29), 20.0 * 13.0 / 640.0),
        ] {
            let t = Transfer::new(fine, coarse, z_ratio);
            let (nf, nc) = (fine.0 * fine.1 * fine.2, coarse.0 * coarse.1 * coarse.2);
            // Cell volumes, with the fine cell's edges 1 / fine.0, 1 / fine.1 and z_ratio.
            let vf = z_ratio / (fine.0 * fine.1) as f64;
            let vc = 1.0 / (coarse.0 * coarse.1) as f64;
            let mut s = vec![0.0; t.scratch_len()];
            let f = field(nf, 1);
            let mut c = vec![0.0; nc];
            t.restrict(&f, &mut c, &mut s);
            let mf: f64 = f.iter().map(|&v| v as f64).sum::<f64>() * vf;
            let mc: f64 = c.iter().map(|&v| v as f64).sum::<f64>() * vc;
            assert!((mf - mc).abs() < 1e-5 * mf, "{fine:?}: mass {mf} → {mc}");
            let one = vec![1.5f32; nc];
            let mut p = vec![0.0; nf];
            t.prolong(&one, &mut p, &mut s);
            assert!(
                p.iter().all(|&v| (v - 1.5).abs() < 1e-6),
                "{fine:?}: constant"
            );
            let g = field(nc, 2);
            t.prolong(&g, &mut p, &mut s);
            let lhs: f64 = c
                .iter()
                .zip(&g)
                .map(|(&a, &b)| a as f64 * b as f64)
                .sum::<f64>()
                * vc;
            let rhs: f64 = f
                .iter()
                .zip(&p)
                .map(|(&a, &b)| a as f64 * b as f64)
                .sum::<f64>()
                * vf;
            assert!(
                (lhs - rhs).abs() < 1e-5 * rhs.abs(),
                "{fine:?}: {lhs} vs {rhs}"
            );
        }
    }

    /// Where the grids coincide the transfers are the identity.
    #[test]
    fn equal_grids_transfer_unchanged() {
        let d = (7, 5, 4);
        let t = Transfer::new(d, d, 1.0);
        let f = field(140, 3);
        let mut s = vec![0.0; t.scratch_len()];
        let (mut a, mut b) = (vec![0.0; 140], vec![0.0; 140]);
        t.restrict(&f, &mut a, &mut s);
        t.prolong(&f, &mut b, &mut s);
        assert_eq!(a, f);
        assert_eq!(b, f);
    }
}
