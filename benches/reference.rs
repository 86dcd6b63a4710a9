//! The reference workload of `fibrosim bench` under criterion: the deposit reduction alone
//! (21 000 agents' cloud-in-cell deposits summed in agent order) and one whole reference step
//! (4 field solves on 100 × 100 × 80 voxels, the parallel agent pass, the reduction).
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fibrosim::bench::{Config, Reference};

fn deposition(c: &mut Criterion) {
    let mut r = Reference::new(Config::default());
    r.agent_pass();
    let mut group = c.benchmark_group("reference");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements(r.cfg.agents as u64));
    group.bench_function("deposit_reduction_21000_agents", |b| {
        b.iter(|| r.apply_deposits())
    });
    group.finish();
}

fn step(c: &mut Criterion) {
    let mut r = Reference::new(Config::default());
    let mut group = c.benchmark_group("reference");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(10));
    group.throughput(Throughput::Elements(r.geom.voxels() as u64));
    group.bench_function("step_100x100x80_21000_agents", |b| b.iter(|| r.step()));
    group.finish();
}

criterion_group!(benches, deposition, step);
criterion_main!(benches);
