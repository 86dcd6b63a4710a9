//! Throughput of the two field kernels on a production-sized block.
use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use fibrosim::sim::diffusion::LodSolver;
use fibrosim::sim::smoothing::GaussianSmoother;

const NX: usize = 95;
const NY: usize = 95;
const NZ: usize = 80;

fn initial_field() -> Vec<f32> {
    (0..NX * NY * NZ)
        .map(|i| 1.0 + ((i * 2654435761) % 1000) as f32 / 1000.0)
        .collect()
}

fn lod_step(c: &mut Criterion) {
    let solver = LodSolver::new(NX, NY, NZ, 20.0, 108_000.0, 0.1, 0.1);
    let mut scratch = solver.scratch();
    let mut field = initial_field();
    let mut group = c.benchmark_group("solver");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements((NX * NY * NZ) as u64));
    group.bench_function("lod_step_95x95x80", |b| {
        b.iter(|| solver.step(black_box(&mut field), &mut scratch))
    });
    group.finish();
}

fn gaussian_smooth(c: &mut Criterion) {
    let smoother = GaussianSmoother::new(NX, NY, NZ, 20.0, 100.0, 30.0, 5);
    let mut scratch = smoother.scratch();
    let input = initial_field();
    let mut out = vec![0.0f32; NX * NY * NZ];
    let mut group = c.benchmark_group("solver");
    group
        .sample_size(10)
        .measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Elements((NX * NY * NZ) as u64));
    group.bench_function("gaussian_smooth_95x95x80", |b| {
        b.iter(|| smoother.smooth(black_box(&input), &mut out, &mut scratch))
    });
    group.finish();
}

criterion_group!(benches, lod_step, gaussian_smooth);
criterion_main!(benches);
