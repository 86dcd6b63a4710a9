//! Treatment: devices → microchannels, and the injury each session causes (docs/model.md §2).
//!
//! A channel is a cone from its surface centre (radius r0) to its tip at depth
//! d = penetration_fraction × needle length, possibly tilted (rollers). Layouts: jittered grid,
//! grid (random sub-voxel offset per session) or Poisson; grids are snapped so that a whole
//! number of pitches fits the periodic block, and the realised density is reported. Channels
//! whose surface centres are closer than r0 merge (the later one is dropped: the two cones
//! overlap almost entirely).
//!
//! Injury, per voxel, with φ the volume fraction inside any cone (4×4×4 sub-samples where the
//! voxel straddles a cone wall): matrix × (1 − fragmentation·φ); damage
//! W = min(1, max(W, φ + h·e^(−dist/λ_h)·(1 − φ))); fibroblasts inside a cone die; a channel
//! deeper than h_E + margin bleeds: fibrin = max(fibrin, φ) and a platelet release
//! B = φ·e^(−(t − t_s)/τ_plt) in its dermal part.

use crate::scenario::{Device, DeviceKind, Pattern};
use crate::sim::rng::{Purpose, chacha};
use crate::sim::tissue::Geometry;
use rand::RngExt;

/// One microchannel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Channel {
    /// Session number, from 1.
    pub session: u32,
    /// Session time, h.
    pub t_h: f64,
    /// Surface centre, µm.
    pub x: f64,
    /// Surface centre, µm.
    pub y: f64,
    /// Tip position, µm (x, y may differ from the surface centre when tilted).
    pub tip: [f64; 3],
    /// Surface radius, µm.
    pub r0: f64,
    /// Reached the papillary capillaries.
    pub bleeding: bool,
}

impl Channel {
    /// Depth of the tip, µm.
    pub fn depth(&self) -> f64 {
        self.tip[2]
    }

    /// Signed distance proxy from `p` to the cone: negative inside. The point is first brought
    /// to the periodic image nearest the channel.
    pub fn distance(&self, p: [f64; 3], lx: f64, ly: f64) -> f64 {
        let dx = wrap_delta(p[0] - self.x, lx);
        let dy = wrap_delta(p[1] - self.y, ly);
        let a = [self.tip[0] - self.x, self.tip[1] - self.y, self.tip[2]];
        let len2 = a[0] * a[0] + a[1] * a[1] + a[2] * a[2];
        let v = [dx, dy, p[2]];
        if len2 <= 0.0 {
            return (v[0] * v[0] + v[1] * v[1] + v[2] * v[2]).sqrt();
        }
        let lam = (v[0] * a[0] + v[1] * a[1] + v[2] * a[2]) / len2;
        let len = len2.sqrt();
        if lam > 1.0 {
            let w = [v[0] - a[0], v[1] - a[1], v[2] - a[2]];
            return (w[0] * w[0] + w[1] * w[1] + w[2] * w[2]).sqrt();
        }
        let lam_c = lam.max(0.0);
        let q = [
            v[0] - lam_c * a[0],
            v[1] - lam_c * a[1],
            v[2] - lam_c * a[2],
        ];
        let radial = (q[0] * q[0] + q[1] * q[1] + q[2] * q[2]).sqrt();
        let r = self.r0 * (1.0 - lam_c);
        let cos_half = len / (len2 + self.r0 * self.r0).sqrt();
        let d_side = (radial - r) * cos_half;
        if lam < 0.0 {
            // Above the surface plane (only for tilted cones near the top): distance to the disk.
            let above = -lam * len;
            return d_side.max(above);
        }
        d_side
    }
}

/// Shortest periodic difference.
#[inline]
pub fn wrap_delta(d: f64, l: f64) -> f64 {
    d - l * (d / l).round()
}

/// Channel tip depth for a device, µm.
pub fn channel_depth_um(dev: &Device) -> f64 {
    dev.needle_length_mm * 1000.0 * dev.penetration_fraction
}

/// Grid counts snapped to the periodic block for a target density (per cm²).
fn snapped_counts(density_per_cm2: f64, lx: f64, ly: f64) -> (usize, usize) {
    let pitch = (1e8 / density_per_cm2).sqrt();
    let nx = ((lx / pitch).round() as usize).max(1);
    let ny = ((ly / pitch).round() as usize).max(1);
    (nx, ny)
}

/// Channels of one session. `epidermis_um` is the nominal h_E used for the bleeding rule.
pub fn place_channels(
    dev: &Device,
    geom: &Geometry,
    seed: u64,
    session: u32,
    t_h: f64,
    epidermis_um: f64,
) -> Vec<Channel> {
    let (lx, ly) = (geom.lx(), geom.ly());
    let mut rng = chacha(seed, Purpose::Channels, session as u64, 0);
    let depth = channel_depth_um(dev);
    let bleeding = depth > epidermis_um + dev.bleeding_margin_um;
    // (x, y, tilt direction angle)
    let mut sites: Vec<(f64, f64, f64)> = Vec::new();
    let grid = |density: f64, pattern: Pattern, rng: &mut rand::rngs::ChaCha8Rng| {
        let (nx, ny) = snapped_counts(density, lx, ly);
        let (px, py) = (lx / nx as f64, ly / ny as f64);
        let mut out = Vec::with_capacity(nx * ny);
        match pattern {
            Pattern::Poisson => {
                let n = (density * lx * ly * 1e-8).round() as usize;
                for _ in 0..n {
                    out.push((rng.random::<f64>() * lx, rng.random::<f64>() * ly));
                }
            }
            Pattern::Grid => {
                let (ox, oy) = (rng.random::<f64>() * geom.h, rng.random::<f64>() * geom.h);
                for j in 0..ny {
                    for i in 0..nx {
                        out.push((
                            ((i as f64 + 0.5) * px + ox).rem_euclid(lx),
                            ((j as f64 + 0.5) * py + oy).rem_euclid(ly),
                        ));
                    }
                }
            }
            Pattern::JitteredGrid => {
                let (ox, oy) = (rng.random::<f64>() * px, rng.random::<f64>() * py);
                for j in 0..ny {
                    for i in 0..nx {
                        let jx = (rng.random::<f64>() - 0.5) * 0.5 * px;
                        let jy = (rng.random::<f64>() - 0.5) * 0.5 * py;
                        out.push((
                            (i as f64 * px + ox + jx).rem_euclid(lx),
                            (j as f64 * py + oy + jy).rem_euclid(ly),
                        ));
                    }
                }
            }
        }
        out
    };
    match dev.kind {
        DeviceKind::Pen | DeviceKind::Custom => {
            for (x, y) in grid(dev.density_per_cm2, dev.pattern, &mut rng) {
                sites.push((x, y, 0.0));
            }
        }
        DeviceKind::Stamp => {
            let density = 1e8 / (dev.pitch_um * dev.pitch_um);
            for _ in 0..dev.passes {
                // Each stamp lands with its own random offset of the whole grid.
                let (ox, oy) = (rng.random::<f64>() * lx, rng.random::<f64>() * ly);
                for (x, y) in grid(density, Pattern::Grid, &mut rng) {
                    sites.push(((x + ox).rem_euclid(lx), (y + oy).rem_euclid(ly), 0.0));
                }
            }
        }
        DeviceKind::Roller => {
            // Channels per cm² per pass: needles over the drum's surface (width × circumference).
            let per_pass = dev.roller_needles
                / (dev.roller_width_mm * 0.1 * std::f64::consts::PI * dev.roller_diameter_mm * 0.1);
            let expected = per_pass * lx * ly * 1e-8;
            for pass in 0..dev.passes {
                // Stochastic rounding keeps the expected density right on blocks smaller than
                // one pass's spacing.
                let base = expected.floor();
                let n = base as usize + usize::from(rng.random::<f64>() < expected - base);
                // Passes alternate between x and y, each in both senses.
                let dir = (pass % 4) as f64 * std::f64::consts::FRAC_PI_2;
                for _ in 0..n {
                    sites.push((rng.random::<f64>() * lx, rng.random::<f64>() * ly, dir));
                }
            }
        }
    }
    let tilt = if dev.kind == DeviceKind::Roller {
        dev.tilt_deg.to_radians()
    } else {
        0.0
    };
    let mut chans: Vec<Channel> = Vec::with_capacity(sites.len());
    for (x, y, dir) in sites {
        let merged = chans.iter().any(|c| {
            let dx = wrap_delta(c.x - x, lx);
            let dy = wrap_delta(c.y - y, ly);
            dx * dx + dy * dy < dev.channel_radius_um * dev.channel_radius_um
        });
        if merged {
            continue;
        }
        // The needle enters along its length; tilt shortens the vertical reach.
        let (vert, lateral) = (depth * tilt.cos(), depth * tilt.sin());
        chans.push(Channel {
            session,
            t_h,
            x,
            y,
            tip: [
                (x + lateral * dir.cos()).rem_euclid(lx),
                (y + lateral * dir.sin()).rem_euclid(ly),
                vert,
            ],
            r0: dev.channel_radius_um,
            bleeding,
        });
    }
    // The tip's x, y were wrapped into the block; keep the unwrapped offset for geometry.
    for c in &mut chans {
        c.tip[0] = c.x + wrap_delta(c.tip[0] - c.x, lx);
        c.tip[1] = c.y + wrap_delta(c.tip[1] - c.y, ly);
    }
    chans
}

/// Injury of one voxel.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VoxelInjury {
    /// Voxel index.
    pub idx: usize,
    /// Volume fraction inside any channel.
    pub phi: f64,
    /// Volume fraction inside bleeding channels.
    pub phi_bleed: f64,
    /// New damage level candidate: φ + h·e^(−dist/λ)·(1 − φ).
    pub damage: f64,
}

/// Computes the injury of a set of channels: one entry per voxel touched, in voxel order.
pub fn injury(chans: &[Channel], geom: &Geometry, dev: &Device) -> Vec<VoxelInjury> {
    let (lx, ly, h) = (geom.lx(), geom.ly(), geom.h);
    let halo_reach = 5.0 * dev.halo_length_um;
    let half_diag = 0.5 * 3f64.sqrt() * h;
    let mut map: std::collections::BTreeMap<usize, VoxelInjury> = Default::default();
    for c in chans {
        let reach = c.r0 + halo_reach + h;
        let (tx, ty) = (c.tip[0], c.tip[1]);
        let xmin = c.x.min(tx) - reach;
        let xmax = c.x.max(tx) + reach;
        let ymin = c.y.min(ty) - reach;
        let ymax = c.y.max(ty) + reach;
        let zmax = (c.tip[2] + reach).min(geom.lz());
        let ix0 = (xmin / h).floor() as isize;
        let ix1 = (xmax / h).ceil() as isize;
        let iy0 = (ymin / h).floor() as isize;
        let iy1 = (ymax / h).ceil() as isize;
        let iz1 = ((zmax / h).ceil() as usize).min(geom.nz);
        for iz in 0..iz1 {
            for iy in iy0..iy1 {
                for ix in ix0..ix1 {
                    let xi = ix.rem_euclid(geom.nx as isize) as usize;
                    let yi = iy.rem_euclid(geom.ny as isize) as usize;
                    let centre = [
                        (ix as f64 + 0.5) * h,
                        (iy as f64 + 0.5) * h,
                        (iz as f64 + 0.5) * h,
                    ];
                    let d = c.distance(centre, lx, ly);
                    if d > halo_reach + half_diag {
                        continue;
                    }
                    let phi = if d > half_diag {
                        0.0
                    } else if d < -half_diag {
                        1.0
                    } else {
                        let mut inside = 0u32;
                        for sz in 0..4 {
                            for sy in 0..4 {
                                for sx in 0..4 {
                                    let p = [
                                        (ix as f64 + (sx as f64 + 0.5) / 4.0) * h,
                                        (iy as f64 + (sy as f64 + 0.5) / 4.0) * h,
                                        (iz as f64 + (sz as f64 + 0.5) / 4.0) * h,
                                    ];
                                    if c.distance(p, lx, ly) <= 0.0 {
                                        inside += 1;
                                    }
                                }
                            }
                        }
                        inside as f64 / 64.0
                    };
                    let dist = d.max(0.0);
                    let damage =
                        phi + dev.halo_damage * (-dist / dev.halo_length_um).exp() * (1.0 - phi);
                    let idx = geom.idx(xi, yi, iz);
                    let e = map.entry(idx).or_insert(VoxelInjury {
                        idx,
                        phi: 0.0,
                        phi_bleed: 0.0,
                        damage: 0.0,
                    });
                    // Union of overlapping cones approximated by the larger fraction.
                    e.phi = e.phi.max(phi);
                    if c.bleeding {
                        e.phi_bleed = e.phi_bleed.max(phi);
                    }
                    e.damage = e.damage.max(damage).min(1.0);
                }
            }
        }
    }
    map.into_values().collect()
}

/// Realised channel density of a session, per cm².
pub fn density_per_cm2(chans: &[Channel], geom: &Geometry) -> f64 {
    chans.len() as f64 / (geom.lx() * geom.ly() * 1e-8)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;

    #[test]
    fn pen_density_snapped_and_reported() {
        let s = Scenario::default();
        let g = Geometry::new(&s);
        let c = place_channels(&s.device, &g, 1, 1, 0.0, 50.0);
        let d = density_per_cm2(&c, &g);
        // 250/cm² → pitch 632 µm → 3 × 3 in 1900 µm → 249.3 /cm².
        assert!((d - 249.3).abs() < 1.0, "{d}");
        assert!(
            c.iter()
                .all(|c| c.bleeding && (c.depth() - 500.0).abs() < 1e-9)
        );
    }

    #[test]
    fn cone_distance_signs() {
        let c = Channel {
            session: 1,
            t_h: 0.0,
            x: 100.0,
            y: 100.0,
            tip: [100.0, 100.0, 500.0],
            r0: 35.0,
            bleeding: true,
        };
        assert!(c.distance([100.0, 100.0, 10.0], 1000.0, 1000.0) < 0.0);
        assert!(c.distance([100.0, 100.0, 600.0], 1000.0, 1000.0) > 99.0);
        assert!(c.distance([300.0, 100.0, 10.0], 1000.0, 1000.0) > 100.0);
        // Periodic image: a channel at the edge reaches a point across the wrap.
        let edge = Channel { x: 5.0, ..c };
        let edge = Channel {
            tip: [5.0, 100.0, 500.0],
            ..edge
        };
        assert!(edge.distance([995.0, 100.0, 10.0], 1000.0, 1000.0) < 0.0);
        assert!(edge.distance([900.0, 100.0, 10.0], 1000.0, 1000.0) > 50.0);
    }

    #[test]
    fn injury_volume_matches_cone() {
        let s = Scenario::default();
        let g = Geometry::new(&s);
        let c = Channel {
            session: 1,
            t_h: 0.0,
            x: 500.0,
            y: 500.0,
            tip: [500.0, 500.0, 500.0],
            r0: 35.0,
            bleeding: true,
        };
        let inj = injury(&[c], &g, &s.device);
        let vol: f64 = inj.iter().map(|v| v.phi).sum::<f64>() * g.h.powi(3);
        let cone = std::f64::consts::PI * 35.0 * 35.0 * 500.0 / 3.0;
        assert!((vol / cone - 1.0).abs() < 0.1, "{vol} vs {cone}");
    }
}
