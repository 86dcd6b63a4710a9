//! Memory bandwidth of this machine, for comparison with the diffusion solver's throughput:
//! a parallel triad a = b + s·c over f32 arrays far larger than the caches (12 bytes moved per
//! element: two reads, one write), best of several repetitions, with the rayon pool of the
//! environment (`RAYON_NUM_THREADS`).
//!
//! `cargo run --release --example bandwidth`

use rayon::prelude::*;
use std::time::Instant;

fn main() {
    let n = 64 << 20; // 64 Mi elements, 256 MiB per array
    let b = vec![1.0f32; n];
    let c = vec![2.0f32; n];
    let mut a = vec![0.0f32; n];
    let s = 0.5f32;
    let mut best = f64::INFINITY;
    for _ in 0..8 {
        let t = Instant::now();
        a.par_chunks_mut(1 << 16)
            .zip(b.par_chunks(1 << 16))
            .zip(c.par_chunks(1 << 16))
            .for_each(|((a, b), c)| {
                for ((x, &y), &z) in a.iter_mut().zip(b).zip(c) {
                    *x = y + s * z;
                }
            });
        best = best.min(t.elapsed().as_secs_f64());
    }
    let bytes = 12.0 * n as f64;
    println!(
        "triad: {:.1} GB/s ({} threads; checksum {})",
        bytes / best / 1e9,
        rayon::current_num_threads(),
        a[n / 2]
    );
}
