//! Development driver: runs a (possibly reduced) default scenario and prints the series.
use fibrosim::run;
use fibrosim::scenario::Scenario;
use std::sync::atomic::AtomicBool;
fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut s = Scenario::default();
    s.output.snapshot_days = vec![];
    let get = |i: usize| args.get(i).and_then(|a| a.parse::<f64>().ok());
    if let Some(d) = get(1) {
        s.schedule.follow_up_days = d;
        s.output.metric_days_after_last.retain(|m| *m <= d);
        if s.output.metric_days_after_last.is_empty() {
            s.output.metric_days_after_last = vec![d];
        }
        if s.output.snapshot_days.is_empty() {
            s.output.snapshot_days = vec![d];
        }
    }
    if let Some(l) = get(2) {
        s.tissue.domain_um = [l, l];
        s.output.section_y_um = l / 2.0;
    }
    if let Some(n) = get(3) {
        let n = n as usize;
        s.schedule.days.truncate(n);
    }
    if let Some(l) = get(4) {
        s.device.needle_length_mm = l;
    }
    let t0 = std::time::Instant::now();
    let stop = AtomicBool::new(false);
    let out = run::run(&s, &|_, _| {}, &stop);
    eprintln!(
        "wall {:.2}s\ntreated {:?}\ncontrol {:?}",
        t0.elapsed().as_secs_f64(),
        out.work_treated,
        out.work_control
    );
    let g: Vec<_> = out
        .record
        .global
        .iter()
        .filter(|g| g.arm == "treated")
        .collect();
    let every = std::env::var("EVERY")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    for r in g.iter().step_by(every) {
        eprintln!(
            "d{:6.2} dt{:5.2} q{} a{} m{} N{:.3} Npap{:.3} M{:.3} P{:.3}/{:.2} T{:.3}/{:.2} C{:.3} fib{:.4} d3 {:.4} d1 {:.4} E{:.1} open{:.4}",
            r.day,
            r.dt_h,
            r.quiescent_cells,
            r.activated_cells,
            r.myofibroblasts,
            r.neutrophils_rel,
            r.neutrophils_papillary_rel,
            r.macrophages_rel,
            r.pdgf_ng_per_ml,
            r.pdgf_max_ng_per_ml,
            r.tgfb_ng_per_ml,
            r.tgfb_max_ng_per_ml,
            r.protease_ng_per_ml,
            r.fibrin_rel,
            r.neo_col3_deposition_ug_per_mm2_day,
            r.neo_col1_deposition_ug_per_mm2_day,
            r.epidermis_um,
            r.open_channel_area_fraction
        );
    }
    if std::env::var("PROFILE").is_ok() {
        let last = out
            .record
            .profiles
            .iter()
            .map(|p| p.day)
            .fold(0.0, f64::max);
        for p in out
            .record
            .profiles
            .iter()
            .filter(|p| p.arm == "treated" && p.day == last)
        {
            eprintln!(
                "z {:6.0} neo {:8.3} cells {:.3}",
                p.z_top_um,
                p.col1_neo_ug_per_mm3 + p.col3_neo_ug_per_mm3,
                p.cell_density_rel
            );
        }
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&out.record.summary.metrics).unwrap()
    );
}
