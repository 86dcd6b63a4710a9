//! Running a scenario: the treated arm and its untreated control side by side, sampled on the
//! output schedule, gathered into a [`RunRecord`]. Each sample is checked by the numerical
//! guards ([`crate::guard`]); a run can save checkpoints and continue from one
//! ([`run_with`]). No files are touched here: checkpoints are handed to a callback.

use crate::guard::{self, NumericalError};
use crate::observe::metrics::{self, MetricInputs};
use crate::observe::record::*;
use crate::observe::sample;
use crate::scenario::Scenario;
use crate::sim::checkpoint::{self, Reader, Writer};
use crate::sim::{Arm, SAMPLE_PHASE, Simulation, WorkStats};
use std::collections::BTreeMap;
use std::path::Path;
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

/// One arm on its way: the simulation, its output schedule and what it has recorded so far.
/// [`ArmRun::advance`] may be called repeatedly with growing limits; the steps and samples
/// are the same as in one uninterrupted call.
pub struct ArmRun {
    /// The simulation.
    pub sim: Simulation,
    /// What has been recorded.
    pub rec: ArmRecord,
    marks: BTreeMap<u64, Marks>,
    end: u64,
    fine: u64,
    section_y_um: f64,
}

impl ArmRun {
    /// Schedules the samples of `sim` from its scenario; `rec` is what was recorded before
    /// (empty for a new run, restored from a checkpoint otherwise).
    pub fn new(sim: Simulation, rec: ArmRecord) -> Self {
        let s = &sim.scenario;
        // Sample times fall on slow-clock boundaries, where the state is brought up to date
        // anyway: sampling then never changes the trajectory, whatever the output schedule.
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
        let section_y_um = s.output.section_y_um;
        ArmRun {
            sim,
            rec,
            marks,
            end,
            fine,
            section_y_um,
        }
    }

    /// The last tick of the arm.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Whether the arm has reached its end.
    pub fn done(&self) -> bool {
        self.sim.tick >= self.end
    }

    fn sample(&mut self) -> Result<(), Box<NumericalError>> {
        let t0 = std::time::Instant::now();
        let r = self.sample_now();
        self.sim.work.phase_seconds[SAMPLE_PHASE] += t0.elapsed().as_secs_f64();
        r
    }

    /// [`ArmRun::sample`] without the timing.
    fn sample_now(&mut self) -> Result<(), Box<NumericalError>> {
        let sim = &mut self.sim;
        let pools = sim.sync_sampled();
        let sums = sample::plane_sums(sim, pools.as_deref());
        if sample::all_clean(&sums) {
            guard::check_cells(sim)?;
        } else {
            guard::check_state(sim)?;
        }
        let m = self.marks.get(&sim.tick).copied();
        let rec = &mut self.rec;
        let deposits = sim.take_deposits();
        rec.global.push(sample::global(sim, &sums, deposits));
        if let Some(m) = m {
            if m.regions {
                rec.regions.extend(sample::regions(sim, &sums));
                if sim.arm == Arm::Treated {
                    rec.centroids
                        .push((sim.day(), sample::neo_centroid_um(sim, &sums)));
                }
            }
            if m.snapshot {
                rec.profiles.extend(sample::profile(sim, &sums));
                if sim.arm == Arm::Treated {
                    rec.sections.extend(sample::section(sim, self.section_y_um));
                }
            }
        }
        Ok(())
    }

    /// Takes the first sample (tick 0).
    pub fn start(&mut self) -> Result<(), Box<NumericalError>> {
        self.sample()
    }

    /// Steps and samples until the end, until the first output step at or past `until`, or
    /// until `halt()` says to stop (checked before each output step).
    pub fn advance(
        &mut self,
        until: u64,
        progress: Progress,
        halt: &(dyn Fn() -> bool + Sync),
    ) -> Result<(), Box<NumericalError>> {
        while self.sim.tick < self.end && self.sim.tick < until {
            if halt() {
                break;
            }
            let sim = &mut self.sim;
            let next_mark = self
                .marks
                .range(sim.tick + 1..)
                .next()
                .map(|(k, _)| *k)
                .unwrap_or(self.end);
            let target = if sim.last_quiet && sim.tick > 0 {
                next_mark
            } else {
                next_mark.min((sim.tick / self.fine + 1) * self.fine)
            };
            // A session is a step boundary already; stop at the target.
            sim.advance_to(target);
            hooks::corrupt(sim);
            self.sample()?;
            progress(self.sim.arm, self.sim.tick as f64 / self.end.max(1) as f64);
        }
        self.rec.work = self.sim.work;
        self.rec.complete = self.done();
        Ok(())
    }
}

/// Runs one arm to the end (or until `stop` is raised, or a numerical guard fails).
pub fn run_arm(sim: &mut Simulation, progress: Progress, stop: &AtomicBool) -> ArmRecord {
    let placeholder = Simulation::new(&sim.scenario, sim.arm);
    let mut run = ArmRun::new(std::mem::replace(sim, placeholder), ArmRecord::default());
    let _ = run
        .start()
        .and_then(|()| run.advance(u64::MAX, progress, &|| stop.load(Ordering::Relaxed)));
    run.rec.work = run.sim.work;
    *sim = run.sim;
    run.rec
}

/// Test hooks: process-wide, keyed by scenario name so that tests running side by side do
/// not disturb each other.
pub mod hooks {
    use crate::sim::Simulation;
    use std::sync::Mutex;

    static NAN: Mutex<Vec<(String, String, f64)>> = Mutex::new(Vec::new());
    static STOP_AFTER: Mutex<Vec<(String, usize)>> = Mutex::new(Vec::new());

    /// Writes NaN into `field` (`pdgf`, `tgfb`, `collagen`) of runs of scenario `name` at the
    /// first output step at or after `day` (for tests of the numerical guards).
    #[doc(hidden)]
    pub fn inject_nan(name: &str, field: &str, day: f64) {
        NAN.lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((name.into(), field.into(), day));
    }

    /// Makes runs of scenario `name` stop after writing their `n`-th checkpoint, as if
    /// interrupted (for tests of resuming).
    #[doc(hidden)]
    pub fn stop_after_checkpoints(name: &str, n: usize) {
        STOP_AFTER
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((name.into(), n));
    }

    pub(super) fn stop_after(name: &str) -> Option<usize> {
        STOP_AFTER
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .find(|(s, _)| s == name)
            .map(|(_, n)| *n)
    }

    pub(super) fn corrupt(sim: &mut Simulation) {
        let list = NAN.lock().unwrap_or_else(|e| e.into_inner());
        for (name, field, day) in list.iter() {
            if *name != sim.scenario.name || sim.day() < *day {
                continue;
            }
            let i = sim.geom.voxels() / 2;
            let j = sim.fields.p.len() / 2;
            match field.as_str() {
                "pdgf" => sim.fields.p[j] = f32::NAN,
                "tgfb" => sim.fields.t[j] = f32::NAN,
                _ => {
                    sim.sync();
                    sim.matrix.n1[i] = f64::NAN;
                    sim.matrix.neo_live = true;
                }
            }
        }
    }
}

/// The outcome of a whole run.
pub struct RunOutput {
    /// Everything recorded.
    pub record: RunRecord,
    /// Work of the treated arm.
    pub work_treated: WorkStats,
    /// Work of the control arm.
    pub work_control: WorkStats,
    /// Why the run stopped before its end, other than being asked to (a numerical guard, a
    /// checkpoint that could not be written).
    pub error: Option<String>,
}

/// Saving checkpoints during a run.
pub struct Checkpointing<'a> {
    /// Simulated days between checkpoints.
    pub every_days: f64,
    /// Stores one checkpoint file (the bytes of [`encode_checkpoint`]); an error stops the run.
    pub save: &'a (dyn Fn(&[u8]) -> Result<(), String> + Sync),
}

/// How to run: from the start or from a checkpoint, with or without checkpoints.
#[derive(Default)]
pub struct RunOptions<'a> {
    /// Save checkpoints.
    pub checkpoint: Option<Checkpointing<'a>>,
    /// The payload of a checkpoint to continue from ([`decode_checkpoint`]).
    pub resume: Option<&'a [u8]>,
}

/// Runs the treated arm and (if enabled) its control in parallel.
pub fn run(s: &Scenario, progress: Progress, stop: &AtomicBool) -> RunOutput {
    match run_with(s, &RunOptions::default(), progress, stop) {
        Ok(o) => o,
        // Without a checkpoint to read, nothing can be refused.
        Err(e) => unreachable!("a run without a checkpoint failed to start: {e}"),
    }
}

/// Hash of a resolved scenario, as recorded in checkpoints.
pub fn scenario_hash(s: &Scenario) -> u64 {
    checkpoint::fnv1a64(crate::scenario::to_toml(s).as_bytes())
}

fn write_rows<T: serde::Serialize>(w: &mut Writer, rows: &[T]) {
    w.bytes(&to_csv(rows));
}

fn read_rows<T: for<'de> serde::Deserialize<'de>>(r: &mut Reader) -> Result<Vec<T>, String> {
    let bytes = r.bytes()?;
    let mut rdr = csv::Reader::from_reader(bytes);
    rdr.deserialize()
        .map(|row| row.map_err(|e| format!("recorded rows: {e}")))
        .collect()
}

fn write_record(w: &mut Writer, rec: &ArmRecord) {
    write_rows(w, &rec.regions);
    write_rows(w, &rec.global);
    write_rows(w, &rec.profiles);
    write_rows(w, &rec.sections);
    w.u64(rec.centroids.len() as u64);
    for (d, c) in &rec.centroids {
        w.f64(*d);
        w.f64(*c);
    }
    checkpoint::write_work_stats(w, &rec.work);
}

fn read_record(r: &mut Reader) -> Result<ArmRecord, String> {
    let mut rec = ArmRecord {
        regions: read_rows(r)?,
        global: read_rows(r)?,
        profiles: read_rows(r)?,
        sections: read_rows(r)?,
        ..Default::default()
    };
    let n = r.u64()?;
    let mut centroids = Vec::new();
    for _ in 0..n {
        centroids.push((r.f64()?, r.f64()?));
    }
    rec.centroids = centroids;
    rec.work = checkpoint::read_work_stats(r)?;
    Ok(rec)
}

/// The bytes of `checkpoint.bin` for the arms of a run in progress: the resolved scenario,
/// then per arm its simulation state and its records so far.
pub fn encode_checkpoint(s: &Scenario, arms: &[&ArmRun]) -> Vec<u8> {
    let mut w = Writer::default();
    let toml = crate::scenario::to_toml(s);
    w.str(&toml);
    w.u64(arms.len() as u64);
    for a in arms {
        a.sim.save_state(&mut w);
        write_record(&mut w, &a.rec);
    }
    checkpoint::encode_file(checkpoint::fnv1a64(toml.as_bytes()), &w.buf)
}

/// Checks the container of a checkpoint file and returns its scenario (as written in it) and
/// the payload to pass to [`RunOptions::resume`]. The message says what is wrong.
pub fn decode_checkpoint<'a>(bytes: &'a [u8], file: &Path) -> Result<(Scenario, &'a [u8]), String> {
    let (hash, payload) = checkpoint::decode_file(bytes)?;
    let mut r = Reader::new(payload);
    let toml = r.str()?;
    if checkpoint::fnv1a64(toml.as_bytes()) != hash {
        return Err("the scenario inside does not match the header's hash".into());
    }
    let s = crate::scenario::parse(toml, file)
        .map_err(|e| format!("the scenario inside is invalid: {e}"))?;
    if scenario_hash(&s) != hash {
        return Err("the scenario inside resolves differently in this version".into());
    }
    Ok((s, payload))
}

fn restore_arms(s: &Scenario, payload: &[u8]) -> Result<Vec<ArmRun>, String> {
    let mut r = Reader::new(payload);
    r.str()?;
    let n = r.u64()?;
    let want = if s.output.control { 2 } else { 1 };
    if n != want {
        return Err(format!("{n} arms saved; the scenario runs {want}"));
    }
    let mut arms = Vec::new();
    for _ in 0..n {
        let sim = Simulation::restore_state(s, &mut r)?;
        let rec = read_record(&mut r)?;
        arms.push(ArmRun::new(sim, rec));
    }
    if !r.at_end() {
        return Err("trailing bytes after the last arm".into());
    }
    if arms[0].sim.arm != Arm::Treated || arms.get(1).is_some_and(|a| a.sim.arm != Arm::Control) {
        return Err("the arms are not in the order treated, control".into());
    }
    Ok(arms)
}

/// Runs the treated arm and (if enabled) its control in parallel, from the start or from a
/// checkpoint, saving checkpoints on the way if asked. Both arms advance to each checkpoint
/// day, the checkpoint is saved, and they go on; the steps and samples are those of an
/// uninterrupted run. When stopped (`stop`, a failed guard) with checkpointing on, the state
/// at the stop is saved too. Fails only when the checkpoint to resume from does not fit.
pub fn run_with(
    s: &Scenario,
    opts: &RunOptions,
    progress: Progress,
    stop: &AtomicBool,
) -> Result<RunOutput, String> {
    let control_on = s.output.control;
    let mut arms = match opts.resume {
        Some(payload) => restore_arms(s, payload)?,
        None => {
            let treated = Simulation::new(s, Arm::Treated);
            let control = control_on.then(|| treated.control_twin());
            let mut v = vec![ArmRun::new(treated, ArmRecord::default())];
            if let Some(c) = control {
                v.push(ArmRun::new(c, ArmRecord::default()));
            }
            v
        }
    };
    let abort = AtomicBool::new(false);
    let halted = || stop.load(Ordering::Relaxed) || abort.load(Ordering::Relaxed);
    let mut errors: Vec<String> = Vec::new();
    if opts.resume.is_none() {
        for a in &mut arms {
            if let Err(e) = a.start() {
                errors.push(e.to_string());
            }
        }
    }
    let every = opts.checkpoint.as_ref().map(|c| {
        let dt = arms[0].sim.par.dt;
        ((c.every_days * 24.0 / dt).round() as u64).max(1)
    });
    let stop_after = hooks::stop_after(&s.name);
    let mut saved = 0usize;
    let mut saved_at: Option<Vec<u64>> = None;
    let save = |arms: &[ArmRun], saved: &mut usize, at: &mut Option<Vec<u64>>| {
        let Some(c) = &opts.checkpoint else {
            return Ok(());
        };
        let ticks: Vec<u64> = arms.iter().map(|a| a.sim.tick).collect();
        if at.as_ref() == Some(&ticks) {
            return Ok(());
        }
        let refs: Vec<&ArmRun> = arms.iter().collect();
        (c.save)(&encode_checkpoint(s, &refs))?;
        *saved += 1;
        *at = Some(ticks);
        Ok::<(), String>(())
    };
    while errors.is_empty() && !halted() && !arms.iter().all(ArmRun::done) {
        let tick = arms.iter().map(|a| a.sim.tick).max().unwrap_or(0);
        let until = every.map_or(u64::MAX, |k| (tick / k + 1) * k);
        let (first, rest) = arms.split_at_mut(1);
        let (rt, rc) = rayon::join(
            || first[0].advance(until, progress, &halted),
            || {
                rest.first_mut()
                    .map(|a| a.advance(until, progress, &halted))
            },
        );
        for e in [rt.err(), rc.and_then(|r| r.err())].into_iter().flatten() {
            abort.store(true, Ordering::Relaxed);
            errors.push(e.to_string());
        }
        if !errors.is_empty() || halted() || arms.iter().all(ArmRun::done) {
            break;
        }
        if let Err(e) = save(&arms, &mut saved, &mut saved_at) {
            errors.push(format!("saving a checkpoint: {e}"));
            break;
        }
        if stop_after.is_some_and(|n| saved >= n) {
            abort.store(true, Ordering::Relaxed);
        }
    }
    if !arms.iter().all(ArmRun::done)
        && let Err(e) = save(&arms, &mut saved, &mut saved_at)
    {
        errors.push(format!("saving a checkpoint: {e}"));
    }
    for a in &mut arms {
        a.rec.work = a.sim.work;
        a.rec.complete = a.done();
    }
    let mut it = arms.into_iter();
    let ArmRun {
        sim: treated,
        rec: rt,
        ..
    } = it.next().ok_or("no treated arm")?;
    let rc = it.next().map(|a| a.rec);
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
    Ok(RunOutput {
        error: (!errors.is_empty()).then(|| errors.join("; ")),
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
    })
}
