//! Development driver: untreated block for a year, cell count and collagen drift per seed.
use fibrosim::scenario::Scenario;
use fibrosim::sim::{Arm, Simulation};
fn main() {
    let l: f64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(400.0);
    for seed in 1..=4 {
        let mut s = Scenario::default();
        s.tissue.domain_um = [l, l];
        s.schedule.days.clear();
        s.seed = seed;
        let mut sim = Simulation::new(&s, Arm::Control);
        let n0 = sim.cells.len() as f64;
        let mut line = format!("seed {seed} n0 {n0}:");
        for q in 1..=4 {
            sim.advance_to(sim.tick_of_day(91.25 * q as f64));
            line += &format!(" {:.4}", sim.cells.len() as f64 / n0);
        }
        println!("{line}");
    }
}
