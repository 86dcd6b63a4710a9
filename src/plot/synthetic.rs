//! A synthetic run record with plausible curves, for testing the charts and the report without
//! running the engine: three sessions at days 0, 28 and 56, follow-up to day 236, neutrophils
//! peaking at day 1.5, macrophages at 3.5, activated fibroblasts at 5, myofibroblasts at 10,
//! neo collagen III rising before I, about +20 % collagen in the papillary dermis, and a 95 × 80
//! voxel cross-section with cones of neo collagen around the channels.
//!
//! Shared by the unit tests and the integration tests (included there by path), so it names
//! types only through `crate::observe::record`.

use crate::observe::record::{
    ARM_CONTROL, ARM_TREATED, ByLayer, ChannelRow, DayMetrics, GlobalRow, Metrics, ProfileRow,
    RegionRow, RunRecord, SectionRow, Summary, TissueSummary, TreatmentSummary,
};

/// Session days.
pub const SESSIONS: [f64; 3] = [0.0, 28.0, 56.0];
/// Last day.
pub const END: f64 = 236.0;
/// Snapshot days of profiles and sections.
pub const SNAPSHOTS: [f64; 5] = [7.0, 28.0, 84.0, 150.0, 236.0];
const VOXEL: f64 = 20.0;
const EPI: f64 = 80.0;
const PAP: f64 = 300.0;
const RET: f64 = 1220.0;
const DOMAIN: f64 = 1900.0;
const DEPTH: f64 = 1000.0;
const PLANE_Y: f64 = 950.0;

/// A pulse rising from 0 at `t = 0` to 1 at `t = peak` and decaying after it.
fn pulse(t: f64, peak: f64) -> f64 {
    if t <= 0.0 {
        0.0
    } else {
        let u = t / peak;
        (u * (1.0 - u).exp()).powi(2)
    }
}

fn after_sessions(day: f64, f: impl Fn(f64) -> f64) -> f64 {
    SESSIONS.iter().map(|s| f(day - s)).sum()
}

/// Neo collagen III (relative units) at `day`: rises within 2–3 weeks, remodelled later.
fn neo3(day: f64) -> f64 {
    after_sessions(day, |t| {
        if t <= 0.0 {
            0.0
        } else {
            (1.0 - (-t / 8.0).exp()) * (-t / 70.0).exp()
        }
    })
}

/// Neo collagen I (relative units): slower, lasting.
fn neo1(day: f64) -> f64 {
    after_sessions(day, |t| {
        if t <= 3.0 {
            0.0
        } else {
            1.0 - (-(t - 3.0) / 45.0).exp()
        }
    })
}

/// A deterministic pseudo-random stream (xorshift), so the record is identical every time.
struct Stream(u64);
impl Stream {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn channels() -> Vec<ChannelRow> {
    let mut rng = Stream(0x9E37_79B9_7F4A_7C15);
    let mut out = Vec::new();
    for (i, &day) in SESSIONS.iter().enumerate() {
        for k in 0..11 {
            // The first three channels of each session lie on the section plane.
            let x = 120.0 + rng.next() * (DOMAIN - 240.0);
            let y = if k < 3 {
                PLANE_Y + (rng.next() - 0.5) * 30.0
            } else {
                60.0 + rng.next() * (DOMAIN - 120.0)
            };
            let tilt = (rng.next() - 0.5) * 120.0;
            out.push(ChannelRow {
                session: i as u32 + 1,
                day,
                x_um: x,
                y_um: y,
                tip_x_um: x + tilt,
                tip_y_um: y,
                depth_um: DEPTH + (rng.next() - 0.5) * 80.0,
                radius_um: 55.0,
                bleeding: rng.next() < 0.4,
            });
        }
    }
    out
}

fn output_days() -> Vec<f64> {
    let mut d: Vec<f64> = (0..=90).map(|i| i as f64).collect();
    d.extend(
        (1..=36)
            .map(|i| 90.0 + 4.0 * i as f64)
            .filter(|&x| x <= END),
    );
    if *d.last().unwrap() < END {
        d.push(END);
    }
    d
}

/// Fraction of neo collagen at depth `z` (µm): most below the epidermis, fading to the tip.
fn depth_weight(z: f64) -> f64 {
    if z < EPI {
        0.0
    } else {
        (1.0 - (z - EPI) / (DEPTH + 60.0 - EPI))
            .clamp(0.0, 1.0)
            .powf(0.7)
    }
}

fn region_row(arm: &str, day: f64, region: &str, z0: f64, z1: f64) -> RegionRow {
    let treated = arm == ARM_TREATED;
    let zm = 0.5 * (z0 + z1);
    let papillary = zm < EPI + PAP;
    let (c1, c3) = if papillary {
        (400.0, 110.0)
    } else {
        (620.0, 90.0)
    };
    let w = if treated { depth_weight(zm) } else { 0.0 };
    let n3 = 45.0 * w * neo3(day);
    let n1 = 40.0 * w * neo1(day);
    let drift = 1.0 - 0.0001 * day;
    let act = if treated {
        after_sessions(day, |t| pulse(t, 5.0))
    } else {
        0.0
    };
    let myo = if treated {
        after_sessions(day, |t| pulse(t, 10.0))
    } else {
        0.0
    };
    let infl = if treated {
        after_sessions(day, |t| pulse(t, 1.5))
    } else {
        0.0
    };
    let vol_cells = 1000.0 * (z1 - z0) / 60.0;
    RegionRow {
        arm: arm.into(),
        day,
        region: region.into(),
        z_top_um: z0,
        z_bottom_um: z1,
        col1_native_ug_per_mm3: c1 * drift,
        col3_native_ug_per_mm3: c3 * drift,
        col1_neo_ug_per_mm3: n1,
        col3_neo_ug_per_mm3: n3,
        collagen_total_ug_per_mm3: (c1 + c3) * drift + n1 + n3,
        elastin_native_ug_per_mm3: 40.0,
        elastin_neo_ug_per_mm3: 2.0 * w * neo1(day),
        fibrin_rel: 0.5 * infl,
        quiescent_cells: (vol_cells * (1.0 - 0.2 * act)) as u64,
        activated_cells: (vol_cells * 0.25 * act) as u64 + 2,
        myofibroblasts: (vol_cells * 0.06 * myo) as u64,
        cells_per_mm3: 8000.0 * (1.0 + 0.3 * act),
        cell_density_rel: 1.0 + 0.3 * act,
        neutrophils_rel: infl,
        macrophages_rel: 0.6 * after_sessions(day, |t| pulse(t, 3.5)) * f64::from(treated),
        pdgf_ng_per_ml: 2.0 * after_sessions(day, |t| pulse(t, 1.0)) * f64::from(treated),
        tgfb_ng_per_ml: 0.2 + 1.2 * after_sessions(day, |t| pulse(t, 4.0)) * f64::from(treated),
        protease_ng_per_ml: 0.5,
        damage_rel: 0.5 * after_sessions(day, |t| pulse(t, 0.3)) * f64::from(treated),
    }
}

fn global_rows(arm: &str) -> Vec<GlobalRow> {
    let treated = f64::from(arm == ARM_TREATED);
    (0..=(END * 4.0) as usize)
        .map(|i| {
            let day = i as f64 / 4.0;
            let act = treated * after_sessions(day, |t| pulse(t, 5.0));
            let myo = treated * after_sessions(day, |t| pulse(t, 10.0));
            let n = treated * after_sessions(day, |t| pulse(t, 1.5));
            GlobalRow {
                arm: arm.into(),
                day,
                dt_h: 0.5,
                quiescent_cells: (24_000.0 * (1.0 - 0.18 * act - 0.05 * myo)
                    + 1500.0 * treated * neo1(day) / 3.0) as u64,
                activated_cells: (60.0 + 4200.0 * act) as u64,
                tail_cells: 2000.0 * treated * neo1(day) / 3.0,
                myofibroblasts: (4.0 + 900.0 * myo) as u64,
                neutrophils_rel: 0.9 * n,
                neutrophils_papillary_rel: 1.2 * n,
                macrophages_rel: treated * 0.55 * after_sessions(day, |t| pulse(t, 3.5)),
                pdgf_ng_per_ml: 0.05 + treated * 2.4 * after_sessions(day, |t| pulse(t, 1.0)),
                tgfb_ng_per_ml: 0.3 + treated * 1.1 * after_sessions(day, |t| pulse(t, 4.0)),
                protease_ng_per_ml: 0.4,
                pdgf_max_ng_per_ml: 0.1 + treated * 9.0 * after_sessions(day, |t| pulse(t, 1.0)),
                tgfb_max_ng_per_ml: 0.5 + treated * 4.0 * after_sessions(day, |t| pulse(t, 4.0)),
                damage_rel: treated * 0.2 * after_sessions(day, |t| pulse(t, 0.3)),
                fibrin_rel: treated * 0.3 * n,
                neo_col3_deposition_ug_per_mm2_day: treated
                    * 0.8
                    * after_sessions(day, |t| pulse(t, 9.0)),
                neo_col1_deposition_ug_per_mm2_day: treated
                    * 0.5
                    * after_sessions(day, |t| pulse(t, 20.0)),
                epidermis_um: 80.0 + treated * 6.0 * after_sessions(day, |t| pulse(t, 7.0)),
                open_channel_area_fraction: treated * 0.03 * after_sessions(day, |t| pulse(t, 0.1)),
            }
        })
        .collect()
}

fn profiles() -> Vec<ProfileRow> {
    let mut out = Vec::new();
    for arm in [ARM_TREATED, ARM_CONTROL] {
        for &day in &SNAPSHOTS {
            let mut z = EPI;
            while z < EPI + PAP + RET - 1e-9 {
                let r = region_row(arm, day, "x", z, z + VOXEL);
                let papillary = z + VOXEL / 2.0 < EPI + PAP;
                out.push(ProfileRow {
                    arm: arm.into(),
                    day,
                    z_top_um: z,
                    z_bottom_um: z + VOXEL,
                    layer: if papillary { "papillary" } else { "reticular" }.into(),
                    col1_native_ug_per_mm3: r.col1_native_ug_per_mm3,
                    col3_native_ug_per_mm3: r.col3_native_ug_per_mm3,
                    col1_neo_ug_per_mm3: r.col1_neo_ug_per_mm3,
                    col3_neo_ug_per_mm3: r.col3_neo_ug_per_mm3,
                    collagen_total_ug_per_mm3: r.collagen_total_ug_per_mm3,
                    elastin_total_ug_per_mm3: r.elastin_native_ug_per_mm3
                        + r.elastin_neo_ug_per_mm3,
                    cell_density_rel: r.cell_density_rel,
                });
                z += VOXEL;
            }
        }
    }
    out
}

fn sections(chs: &[ChannelRow]) -> Vec<SectionRow> {
    let mut out = Vec::new();
    for &day in &SNAPSHOTS {
        let near: Vec<&ChannelRow> = chs
            .iter()
            .filter(|c| c.day <= day && (c.y_um - PLANE_Y).abs() <= c.radius_um + VOXEL)
            .collect();
        for iz in 0..80 {
            let z = (iz as f64 + 0.5) * VOXEL;
            for ix in 0..95 {
                let x = (ix as f64 + 0.5) * VOXEL;
                let mut neo = 0.0;
                let mut rho: f64 = if z < EPI { 0.0 } else { 1.0 };
                for c in &near {
                    if z > c.depth_um + 40.0 || z < EPI {
                        continue;
                    }
                    let f = (z / c.depth_um).min(1.0);
                    let axis = c.x_um + f * (c.tip_x_um - c.x_um);
                    let d = (x - axis).abs();
                    let age = day - c.day;
                    let g = (-(d * d) / (2.0 * 70.0 * 70.0)).exp();
                    neo += 160.0 * g * (neo1(c.day + age) + neo3(c.day + age)) / 3.0
                        * depth_weight(z).max(0.2);
                    rho += 1.5 * g * pulse(age, 6.0);
                }
                out.push(SectionRow {
                    day,
                    y_um: PLANE_Y,
                    x_um: x,
                    z_um: z,
                    neo_collagen_ug_per_mm3: neo,
                    collagen_total_ug_per_mm3: if z < EPI { 0.0 } else { 600.0 + neo },
                    fibroblast_density_rel: rho,
                });
            }
        }
    }
    out
}

fn by(p: f64, r: f64) -> ByLayer {
    ByLayer {
        papillary: p,
        reticular: r,
        dermis: 0.3 * p + 0.7 * r,
    }
}

/// The synthetic record.
pub fn record() -> RunRecord {
    let mut regions = Vec::new();
    for arm in [ARM_TREATED, ARM_CONTROL] {
        for &day in &output_days() {
            regions.push(region_row(arm, day, "papillary", EPI, EPI + PAP));
            regions.push(region_row(
                arm,
                day,
                "reticular",
                EPI + PAP,
                EPI + PAP + RET,
            ));
            regions.push(region_row(arm, day, "dermis", EPI, EPI + PAP + RET));
            let mut z = EPI;
            while z < EPI + PAP + RET - 1e-9 {
                regions.push(region_row(
                    arm,
                    day,
                    "band",
                    z,
                    (z + 60.0).min(EPI + PAP + RET),
                ));
                z += 60.0;
            }
        }
    }
    let mut global = global_rows(ARM_TREATED);
    global.extend(global_rows(ARM_CONTROL));
    let chs = channels();
    let at = |day: f64, p: f64, r: f64| DayMetrics {
        day,
        days_after_last_session: day - 56.0,
        collagen_gain_pct: by(p, r),
        collagen1_gain_pct: by(p * 0.9, r * 0.9),
        collagen3_gain_pct: by(p * 1.4, r * 1.3),
        elastin_gain_pct: by(4.0, 1.5),
        neocollagen_ug_per_mm2: 38.0 * p / 20.0,
        cell_density_rel: by(1.05, 1.02),
        epidermis_change_pct: 3.0,
    };
    RunRecord {
        regions,
        global,
        profiles: profiles(),
        sections: sections(&chs),
        channels: chs,
        summary: Summary {
            scenario: "forehead-3x-pen".into(),
            seed: 42,
            version: "0.1.0".into(),
            complete: true,
            end_day: END,
            tissue: TissueSummary {
                site: "forehead".into(),
                domain_x_um: DOMAIN,
                domain_y_um: DOMAIN,
                voxel_um: VOXEL,
                epidermis_um: EPI,
                papillary_um: PAP,
                reticular_um: RET,
                patient_age_years: 45.0,
                age_factor: 0.8,
            },
            treatment: TreatmentSummary {
                device: "pen".into(),
                needle_length_mm: 1.5,
                penetration_depth_um: DEPTH,
                session_days: SESSIONS.to_vec(),
                channels_per_cm2: vec![305.0, 305.0, 305.0],
                bleeding_channels_per_cm2: 120.0,
            },
            metrics: Some(Metrics {
                at_days: vec![at(84.0, 14.0, 5.0), at(236.0, 20.0, 7.0)],
                peak_collagen3_gain_pct: 31.0,
                peak_collagen3_day: 70.0,
                neutrophil_peak_days_after_session: 1.5,
                activated_peak_days_after_session: 5.0,
                myofibroblast_peak_days_after_session: 10.0,
                neo_collagen_depth_centroid_um: 410.0,
                bleeding_channels_per_cm2: 120.0,
                erythema_days: 7.5,
                activated_cell_days_per_session: 0.9,
                tail_cell_days_per_session: 1.1,
            }),
        },
    }
}
