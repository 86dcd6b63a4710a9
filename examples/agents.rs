//! Times the engine's agent pass alone on the default block 2 and 10 days after a session, and
//! its field gather (`sample_fields`) over all cells and on cache-resident data.
use fibrosim::scenario::Scenario;
use fibrosim::sim::{Arm, Simulation};
use std::time::Instant;
fn main() {
    let s = Scenario::default();
    let mut sim = Simulation::new(&s, Arm::Treated);
    for day in [2.0, 10.0] {
        sim.advance_to(sim.tick_of_day(day));
        let n = sim.cells.len();
        let reps = 40;
        let t0 = Instant::now();
        for _ in 0..reps {
            sim.agent_pass_only();
        }
        let dt = t0.elapsed().as_secs_f64();
        let c = sim.cells.counts();
        println!(
            "day {day}: {n} cells {c:?}, {:.1} ns per cell-step ({} threads)",
            dt / (reps * n) as f64 * 1e9,
            rayon::current_num_threads()
        );
        sample_cost(&sim);
    }
}

fn sample_cost(sim: &Simulation) {
    use fibrosim::sim::fibroblasts::sample_fields;
    let g = &sim.geom;
    let (p, t) = (&sim.fields.p, &sim.fields.t);
    let pos = &sim.cells.pos;
    let reps = 40;
    let t0 = Instant::now();
    let mut acc = 0.0;
    for _ in 0..reps {
        for q in pos {
            let (a, b, gr) = sample_fields(g, p, t, *q);
            acc += a + b + gr[0];
        }
    }
    let d1 = t0.elapsed().as_secs_f64() / (reps * pos.len()) as f64 * 1e9;
    let t0 = Instant::now();
    for k in 0..reps * pos.len() {
        let q = pos[k % 64];
        let (a, b, gr) = sample_fields(g, p, t, q);
        acc += a + b + gr[0];
    }
    let d2 = t0.elapsed().as_secs_f64() / (reps * pos.len()) as f64 * 1e9;
    println!("sample_fields: {d1:.1} ns over all cells, {d2:.1} ns cache-hot ({acc:.3e})");
}
