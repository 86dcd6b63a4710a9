//! Running a scenario: the treated arm and its untreated control side by side, sampled on the
//! output schedule, gathered into a [`RunRecord`]. No files are touched here.

use crate::observe::metrics::{self, MetricInputs};
use crate::observe::record::*;
use crate::observe::sample;
use crate::scenario::Scenario;
use crate::sim::{Arm, Simulation, WorkStats};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};

/// What to sample at a tick.
#[derive(Debug, Clone, Copy, Default)]
struct Marks {
    regions: bool,
    snapshot: bool,
}

/// The records of one arm.
#[derive(Debug, Default)]
pub struct ArmRecord {
    /// Per-region rows.
    pub regions: Vec<RegionRow>,
    /// Whole-block rows.
    pub global: Vec<GlobalRow>,
    /// Profiles.
    pub profiles: Vec<ProfileRow>,
    /// Sections (treated only).
    pub sections: Vec<SectionRow>,
    /// (day, neo-collagen depth centroid µm) at region samples.
    pub centroids: Vec<(f64, f64)>,
    /// Work done.
    pub work: WorkStats,
    /// Whether the arm reached its end.
    pub complete: bool,
}

/// Progress reports: (arm, fraction of simulated time done).
pub type Progress<'a> = &'a (dyn Fn(Arm, f64) + Sync);

/// Runs one arm to the end (or until `stop` is raised).
pub fn run_arm(sim: &mut Simulation, progress: Progress, stop: &AtomicBool) -> ArmRecord {
    let s = sim.scenario.clone();
    // Sample times fall on slow-clock boundaries, where the state is brought up to date anyway:
    // sampling then never changes the trajectory, whatever the output schedule.
    let slow = sim.slow_ticks();
    let snap = |k: u64| k.div_ceil(slow) * slow;
    let end = snap(sim.tick_of_day(s.end_day()));
    let coarse = snap(((s.output.interval_days * 24.0 / sim.par.dt).round() as u64).max(1));
    let fine = snap(((s.output.fine_interval_h / sim.par.dt).round() as u64).max(1));
    let mut marks: BTreeMap<u64, Marks> = BTreeMap::new();
    let mut t = 0;
    while t <= end {
        marks.entry(t).or_default().regions = true;
        t += coarse;
    }
    marks.entry(end).or_default().regions = true;
    let last = s.schedule.days.last().copied().unwrap_or(0.0);
    for d in &s.output.metric_days_after_last {
        marks
            .entry(snap(sim.tick_of_day(last + d)))
            .or_default()
            .regions = true;
    }
    for d in &s.output.snapshot_days {
        let k = snap(sim.tick_of_day(*d));
        if k <= end {
            let m = marks.entry(k).or_default();
            m.regions = true;
            m.snapshot = true;
        }
    }
    let mut rec = ArmRecord::default();
    let sample = |sim: &mut Simulation, rec: &mut ArmRecord, m: Option<Marks>| {
        let deposits = sim.take_deposits();
        rec.global.push(sample::global(sim, deposits));
        if let Some(m) = m {
            if m.regions {
                rec.regions.extend(sample::regions(sim));
                if sim.arm == Arm::Treated {
                    rec.centroids
                        .push((sim.day(), sample::neo_centroid_um(sim)));
                }
            }
            if m.snapshot {
                rec.profiles.extend(sample::profile(sim));
                if sim.arm == Arm::Treated {
                    rec.sections
                        .extend(sample::section(sim, s.output.section_y_um));
                }
            }
        }
    };
    sim.sync();
    sample(sim, &mut rec, marks.get(&0).copied());
    while sim.tick < end {
        if stop.load(Ordering::Relaxed) {
            rec.work = sim.work;
            return rec;
        }
        let next_mark = marks
            .range(sim.tick + 1..)
            .next()
            .map(|(k, _)| *k)
            .unwrap_or(end);
        let target = if sim.last_quiet && sim.tick > 0 {
            next_mark
        } else {
            next_mark.min((sim.tick / fine + 1) * fine)
        };
        // A session is a step boundary already; stop at the target.
        sim.advance_to(target);
        sim.sync();
        sample(sim, &mut rec, marks.get(&target).copied());
        progress(sim.arm, sim.tick as f64 / end.max(1) as f64);
    }
    rec.work = sim.work;
    rec.complete = true;
    rec
}

/// The outcome of a whole run.
pub struct RunOutput {
    /// Everything recorded.
    pub record: RunRecord,
    /// Work of the treated arm.
    pub work_treated: WorkStats,
    /// Work of the control arm.
    pub work_control: WorkStats,
}

/// Runs the treated arm and (if enabled) its control in parallel.
pub fn run(s: &Scenario, progress: Progress, stop: &AtomicBool) -> RunOutput {
    let mut treated = Simulation::new(s, Arm::Treated);
    let control_on = s.output.control;
    let (rt, rc) = rayon::join(
        || run_arm(&mut treated, progress, stop),
        || {
            control_on.then(|| {
                let mut c = Simulation::new(s, Arm::Control);
                run_arm(&mut c, progress, stop)
            })
        },
    );
    let rc = rc.unwrap_or_default();
    let complete = rt.complete && (rc.complete || !control_on);
    let mut regions = rt.regions;
    regions.extend(rc.regions);
    let mut global = rt.global;
    global.extend(rc.global);
    let mut profiles = rt.profiles;
    profiles.extend(rc.profiles);
    let g = &treated.geom;
    let [e, p, r] = g.realised_um();
    let last = s.schedule.days.last().copied().unwrap_or(0.0);
    let metric_days: Vec<f64> = s
        .output
        .metric_days_after_last
        .iter()
        .map(|d| last + d)
        .collect();
    let nsess = s.schedule.days.len().max(1) as f64;
    let bleeding_per_cm2 = treated.channels.iter().filter(|c| c.bleeding).count() as f64
        / nsess
        / (g.area_mm2() * 0.01);
    let baseline_cells = (g.papillary.cells_per_voxel * (g.z_ret - g.z_pap) as f64
        + g.reticular.cells_per_voxel * (g.nz - g.z_ret) as f64)
        * g.plane() as f64;
    let metrics = (control_on && !s.schedule.days.is_empty()).then(|| {
        metrics::compute(
            &regions,
            &global,
            &MetricInputs {
                session_days: &s.schedule.days,
                metric_days: &metric_days,
                dermis_mm: (p + r) * 1e-3,
                baseline_cells,
                centroids: &rt.centroids,
                bleeding_per_cm2,
            },
        )
    });
    let dev0 = s.device_for_session(0);
    let summary = Summary {
        scenario: s.name.clone(),
        seed: s.seed,
        version: env!("CARGO_PKG_VERSION").into(),
        complete,
        end_day: treated.day(),
        tissue: TissueSummary {
            site: s.tissue.site.name().into(),
            domain_x_um: g.lx(),
            domain_y_um: g.ly(),
            voxel_um: g.h,
            epidermis_um: e,
            papillary_um: p,
            reticular_um: r,
            patient_age_years: s.tissue.patient_age_years,
            age_factor: g.age_factor,
        },
        treatment: TreatmentSummary {
            device: dev0.kind.name().into(),
            needle_length_mm: dev0.needle_length_mm,
            penetration_depth_um: crate::sim::treatment::channel_depth_um(dev0),
            session_days: s.schedule.days.clone(),
            channels_per_cm2: treated.session_density.clone(),
            bleeding_channels_per_cm2: bleeding_per_cm2,
        },
        metrics,
    };
    let channels = treated
        .channels
        .iter()
        .map(|c| ChannelRow {
            session: c.session,
            day: c.t_h / 24.0,
            x_um: c.x,
            y_um: c.y,
            tip_x_um: c.tip[0],
            tip_y_um: c.tip[1],
            depth_um: c.depth(),
            radius_um: c.r0,
            bleeding: c.bleeding,
        })
        .collect();
    RunOutput {
        record: RunRecord {
            regions,
            global,
            profiles,
            sections: rt.sections,
            channels,
            summary,
        },
        work_treated: rt.work,
        work_control: rc.work,
    }
}
