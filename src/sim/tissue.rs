//! Tissue geometry: the voxel grid, the three layers and their baselines (docs/model.md §1).
//!
//! The block is `nx × ny × nz` cubic voxels of edge `h` µm, periodic in x and y; z is depth below
//! the surface. Each voxel belongs to the layer that holds its centre (a centre exactly on a
//! boundary goes to the deeper layer). Baselines (fibroblast density, collagen, collagen III
//! share, elastin) are the age-25 values × the age factor a = max(0.5, 1 − 0.01·max(0, age − 25)).

use crate::scenario::Scenario;

/// A tissue layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum Layer {
    /// Epidermis: no fibroblasts, no matrix.
    Epidermis = 0,
    /// Papillary dermis.
    Papillary = 1,
    /// Reticular dermis.
    Reticular = 2,
}

/// Baselines of one dermal layer, internal units.
#[derive(Debug, Clone, Copy)]
pub struct Baseline {
    /// Fibroblasts per voxel (n_base × voxel volume).
    pub cells_per_voxel: f64,
    /// Fibroblasts per mm³ (n_base).
    pub cells_per_mm3: f64,
    /// Native collagen I, µg/mm³.
    pub col1: f64,
    /// Native collagen III, µg/mm³.
    pub col3: f64,
    /// Native elastin, µg/mm³.
    pub elastin: f64,
}

/// The grid and its layers.
#[derive(Debug, Clone)]
pub struct Geometry {
    /// Voxels along x.
    pub nx: usize,
    /// Voxels along y.
    pub ny: usize,
    /// Voxels along z (depth).
    pub nz: usize,
    /// Voxel edge, µm.
    pub h: f64,
    /// First papillary voxel layer (epidermis is `0..z_pap`).
    pub z_pap: usize,
    /// First reticular voxel layer.
    pub z_ret: usize,
    /// Age factor a.
    pub age_factor: f64,
    /// Papillary baseline.
    pub papillary: Baseline,
    /// Reticular baseline.
    pub reticular: Baseline,
    /// Nominal epidermis thickness h_E from the scenario, µm.
    pub epidermis_nominal_um: f64,
}

impl Geometry {
    /// Builds the grid of a validated scenario.
    pub fn new(s: &Scenario) -> Self {
        let t = &s.tissue;
        let h = t.voxel_um;
        let nx = (t.domain_um[0] / h).round().max(1.0) as usize;
        let ny = (t.domain_um[1] / h).round().max(1.0) as usize;
        let depth = t.epidermis_um + t.papillary_um + t.reticular_um;
        let nz = (depth / h).round().max(1.0) as usize;
        // Layer of the voxel whose centre is (z + ½)h; boundaries go to the deeper layer.
        let first_at = |boundary: f64| -> usize {
            (0..nz)
                .find(|&z| (z as f64 + 0.5) * h >= boundary)
                .unwrap_or(nz)
        };
        let z_pap = first_at(t.epidermis_um).min(nz.saturating_sub(1));
        let z_ret = first_at(t.epidermis_um + t.papillary_um).clamp(z_pap, nz);
        let age_factor = (1.0 - 0.01 * (t.patient_age_years - 25.0).max(0.0)).max(0.5);
        let vox_mm3 = (h * 1e-3).powi(3);
        let mk = |cells: f64, col: f64, share3: f64, el: f64| Baseline {
            cells_per_voxel: cells * age_factor * vox_mm3,
            cells_per_mm3: cells * age_factor,
            col1: col * (1.0 - share3) * age_factor,
            col3: col * share3 * age_factor,
            elastin: el * age_factor,
        };
        Geometry {
            nx,
            ny,
            nz,
            h,
            z_pap,
            z_ret,
            age_factor,
            papillary: mk(
                t.papillary_fibroblasts_per_mm3,
                t.papillary_collagen_ug_per_mm3,
                t.papillary_col3_fraction,
                t.papillary_elastin_ug_per_mm3,
            ),
            reticular: mk(
                t.reticular_fibroblasts_per_mm3,
                t.reticular_collagen_ug_per_mm3,
                t.reticular_col3_fraction,
                t.reticular_elastin_ug_per_mm3,
            ),
            epidermis_nominal_um: t.epidermis_um,
        }
    }

    /// Number of voxels.
    pub fn voxels(&self) -> usize {
        self.nx * self.ny * self.nz
    }
    /// Voxels per z-plane.
    pub fn plane(&self) -> usize {
        self.nx * self.ny
    }
    /// Linear index of voxel (x, y, z).
    #[inline]
    pub fn idx(&self, x: usize, y: usize, z: usize) -> usize {
        x + self.nx * (y + self.ny * z)
    }
    /// Block size in x, µm.
    pub fn lx(&self) -> f64 {
        self.nx as f64 * self.h
    }
    /// Block size in y, µm.
    pub fn ly(&self) -> f64 {
        self.ny as f64 * self.h
    }
    /// Block depth, µm.
    pub fn lz(&self) -> f64 {
        self.nz as f64 * self.h
    }
    /// Top of the dermis (epidermis–papillary boundary on the grid), µm.
    pub fn dermis_top(&self) -> f64 {
        self.z_pap as f64 * self.h
    }
    /// Papillary–reticular boundary on the grid, µm.
    pub fn reticular_top(&self) -> f64 {
        self.z_ret as f64 * self.h
    }
    /// Layer of voxel layer z.
    #[inline]
    pub fn layer_of_z(&self, z: usize) -> Layer {
        if z < self.z_pap {
            Layer::Epidermis
        } else if z < self.z_ret {
            Layer::Papillary
        } else {
            Layer::Reticular
        }
    }
    /// Layer holding depth `z_um`.
    #[inline]
    pub fn layer_at(&self, z_um: f64) -> Layer {
        let z = ((z_um / self.h).floor().max(0.0) as usize).min(self.nz - 1);
        self.layer_of_z(z)
    }
    /// Baseline of a dermal layer (the papillary one for the epidermis, which has none).
    #[inline]
    pub fn baseline(&self, layer: Layer) -> &Baseline {
        match layer {
            Layer::Reticular => &self.reticular,
            _ => &self.papillary,
        }
    }
    /// Voxel volume, mm³.
    pub fn voxel_mm3(&self) -> f64 {
        (self.h * 1e-3).powi(3)
    }
    /// Skin surface area of the block, mm².
    pub fn area_mm2(&self) -> f64 {
        self.lx() * self.ly() * 1e-6
    }
    /// Realised thicknesses (epidermis, papillary, reticular), µm.
    pub fn realised_um(&self) -> [f64; 3] {
        [
            self.z_pap as f64 * self.h,
            (self.z_ret - self.z_pap) as f64 * self.h,
            (self.nz - self.z_ret) as f64 * self.h,
        ]
    }
    /// The grid of P, T and C for `numerics.signal_voxel_um` = `signal_um`: this grid when
    /// `signal_um` is 0 or at most the voxel edge, or when no cubic cell between ⅔ and 3/2 of
    /// it tiles both lateral sides with an edge of at least two voxels (a cell less than twice
    /// a voxel's edge saves about what the transfers cost); otherwise the grid of cubic
    /// cells whose edge, of those that tile both lateral sides, is nearest `signal_um` (x and
    /// y stay periodic), with as many layers as cover the depth: where the depth is not a whole
    /// number of cells, the last layer reaches below the block's bottom by less than a cell
    /// (docs/model.md §3). Layer indices are mapped to the nearest cell boundary; nothing on
    /// the signal grid reads them.
    pub fn signal_grid(&self, signal_um: f64) -> Geometry {
        let Some(e) = self.signal_edge(signal_um) else {
            return self.clone();
        };
        let n = |k: usize| ((k as f64 * self.h / e).round() as usize).max(1);
        Geometry {
            nx: n(self.nx),
            ny: n(self.ny),
            nz: ((self.nz as f64 * self.h / e - 1e-9).ceil() as usize).max(1),
            h: e,
            z_pap: n(self.z_pap),
            z_ret: n(self.z_ret),
            ..self.clone()
        }
    }

    /// The edge of the signal grid's cells for `signal_um` (see [`Geometry::signal_grid`]),
    /// or None for the voxel grid.
    fn signal_edge(&self, signal_um: f64) -> Option<f64> {
        if signal_um <= self.h {
            return None;
        }
        let (lx, ly) = (self.lx(), self.ly());
        let whole = |v: f64| (v - v.round()).abs() < 1e-6;
        // Cells across x, from the count nearest the target outwards.
        let n0 = (lx / signal_um).round().max(1.0) as i64;
        std::iter::once(n0)
            .chain((1..=2 * n0).flat_map(|k| [n0 + k, n0 - k]))
            .filter(|&n| n >= 1)
            .map(|n| lx / n as f64)
            .filter(|&e| e >= 2.0 * self.h && e >= signal_um / 1.5 && e <= signal_um * 1.5)
            .find(|&e| whole(ly / e))
    }

    /// Voxel containing a position (x, y wrapped; z clamped).
    #[inline]
    pub fn voxel_of(&self, p: [f64; 3]) -> usize {
        let ix = ((p[0] / self.h) as isize).clamp(0, self.nx as isize - 1) as usize;
        let iy = ((p[1] / self.h) as isize).clamp(0, self.ny as isize - 1) as usize;
        let iz = ((p[2] / self.h) as isize).clamp(0, self.nz as isize - 1) as usize;
        self.idx(ix, iy, iz)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Site;

    /// The signal grid's cells: the tiling edge nearest the target, laterally periodic, and as
    /// many layers as cover the depth.
    #[test]
    fn signal_grid_takes_the_nearest_edge_that_tiles_the_block_laterally() {
        let grid = |domain: [f64; 2], site: Site, um: f64| {
            let mut s = Scenario::default();
            s.tissue.domain_um = domain;
            [
                s.tissue.epidermis_um,
                s.tissue.papillary_um,
                s.tissue.reticular_um,
            ] = site.thicknesses_um();
            let g = Geometry::new(&s).signal_grid(um);
            (g.nx, g.ny, g.nz, g.h)
        };
        let face = [1900.0, 1900.0];
        assert_eq!(grid(face, Site::FaceCheek, 50.0), (38, 38, 32, 50.0));
        assert_eq!(grid(face, Site::FaceCheek, 0.0), (95, 95, 80, 20.0));
        assert_eq!(grid(face, Site::FaceCheek, 20.0), (95, 95, 80, 20.0));
        // 1900 / 45 rounds to 42 cells of 45.2 µm, 36 layers of them cover 1600 µm.
        assert_eq!(
            grid(face, Site::FaceCheek, 45.0),
            (42, 42, 36, 1900.0 / 42.0)
        );
        // 48 cells of 39.6 µm would be less than two voxels: 47 of 40.4 µm.
        assert_eq!(
            grid(face, Site::FaceCheek, 40.0),
            (47, 47, 40, 1900.0 / 47.0)
        );
        // Every edge within 3/2 of 25 µm is less than two voxels: the voxel grid.
        assert_eq!(grid(face, Site::FaceCheek, 25.0).3, 20.0);
        // Forehead: 1420 µm realised depth, 29 layers of 50 µm reach 30 µm below it.
        assert_eq!(grid(face, Site::Forehead, 50.0), (38, 38, 29, 50.0));
        // A 640 µm block: 13 cells of 49.2 µm.
        assert_eq!(grid([640.0, 640.0], Site::FaceCheek, 50.0).0, 13);
        assert_eq!(
            grid([1900.0, 1000.0], Site::FaceCheek, 50.0),
            (38, 20, 32, 50.0)
        );
        // No cubic cell near 50 µm tiles 1900 × 1240 µm: the voxel grid.
        assert_eq!(grid([1900.0, 1240.0], Site::FaceCheek, 50.0).3, 20.0);
    }

    #[test]
    fn face_layers_realised_as_specified() {
        let g = Geometry::new(&Scenario::default());
        assert_eq!((g.nx, g.ny, g.nz), (95, 95, 80));
        // docs/model.md: face 40 / 260 / 1300 µm on a 20 µm grid.
        assert_eq!(g.realised_um(), [40.0, 260.0, 1300.0]);
        assert!((g.age_factor - 0.8).abs() < 1e-12);
        assert_eq!(g.layer_of_z(1), Layer::Epidermis);
        assert_eq!(g.layer_of_z(2), Layer::Papillary);
        assert_eq!(g.layer_of_z(15), Layer::Reticular);
    }
}
