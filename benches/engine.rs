//! Engine benchmarks: one active step of the default block, and a whole small scenario (one
//! session, 10 days, treated and control) end to end.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fibrosim::run;
use fibrosim::scenario::Scenario;
use fibrosim::sim::{Arm, Simulation};
use std::sync::atomic::AtomicBool;

fn active_step(c: &mut Criterion) {
    // The default 1900 µm block two days after a session: inflammation, signals and activated
    // cells everywhere, so every phase of the step does its full work.
    let s = Scenario::default();
    let mut sim = Simulation::new(&s, Arm::Treated);
    sim.advance_to(sim.tick_of_day(2.0));
    let mut g = c.benchmark_group("engine");
    g.sample_size(10);
    g.throughput(Throughput::Elements(sim.cells.len() as u64));
    g.bench_function("active_step_default_block", |b| {
        b.iter(|| {
            let t = sim.tick + 1;
            sim.advance_to(t);
        })
    });
    g.finish();
}

fn small_scenario(c: &mut Criterion) {
    let mut s = Scenario::default();
    s.tissue.domain_um = [400.0, 400.0];
    s.output.section_y_um = 200.0;
    s.schedule.days = vec![0.0];
    s.schedule.follow_up_days = 10.0;
    s.output.metric_days_after_last = vec![10.0];
    s.output.snapshot_days = vec![10.0];
    let mut g = c.benchmark_group("engine");
    g.sample_size(10);
    g.bench_function("small_scenario_10_days", |b| {
        b.iter(|| {
            let stop = AtomicBool::new(false);
            run::run(&s, &|_, _| {}, &stop)
        })
    });
    g.finish();
}

criterion_group!(benches, active_step, small_scenario);
criterion_main!(benches);
