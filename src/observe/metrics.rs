//! The metrics of a run (docs/model.md §8), computed from the recorded series of the treated
//! arm and its untreated control (same seed, no sessions).

use crate::observe::record::*;

fn pct(t: f64, c: f64) -> f64 {
    if c > 0.0 { (t / c - 1.0) * 100.0 } else { 0.0 }
}

fn row<'a>(rows: &'a [RegionRow], arm: &str, region: &str, day: f64) -> Option<&'a RegionRow> {
    rows.iter()
        .find(|r| r.arm == arm && r.region == region && (r.day - day).abs() < 1e-6)
}

fn col1(r: &RegionRow) -> f64 {
    r.col1_native_ug_per_mm3 + r.col1_neo_ug_per_mm3
}
fn col3(r: &RegionRow) -> f64 {
    r.col3_native_ug_per_mm3 + r.col3_neo_ug_per_mm3
}
fn elastin(r: &RegionRow) -> f64 {
    r.elastin_native_ug_per_mm3 + r.elastin_neo_ug_per_mm3
}

fn by_layer(rows: &[RegionRow], day: f64, f: impl Fn(&RegionRow, &RegionRow) -> f64) -> ByLayer {
    let get = |region: &str| match (
        row(rows, ARM_TREATED, region, day),
        row(rows, ARM_CONTROL, region, day),
    ) {
        (Some(t), Some(c)) => f(t, c),
        _ => f64::NAN,
    };
    ByLayer {
        papillary: get("papillary"),
        reticular: get("reticular"),
        dermis: get("dermis"),
    }
}

/// Inputs beyond the series.
pub struct MetricInputs<'a> {
    /// Session days.
    pub session_days: &'a [f64],
    /// Metric days (absolute).
    pub metric_days: &'a [f64],
    /// Dermis thickness, mm.
    pub dermis_mm: f64,
    /// Baseline cell count of the block.
    pub baseline_cells: f64,
    /// Depth centroid of neo collagen per sampled day (treated).
    pub centroids: &'a [(f64, f64)],
    /// Bleeding channels per cm² per session.
    pub bleeding_per_cm2: f64,
}

/// Computes [`Metrics`] from both arms' records.
pub fn compute(regions: &[RegionRow], global: &[GlobalRow], inp: &MetricInputs) -> Metrics {
    let last = inp.session_days.last().copied().unwrap_or(0.0);
    let treated_g: Vec<&GlobalRow> = global.iter().filter(|g| g.arm == ARM_TREATED).collect();
    let control_g: Vec<&GlobalRow> = global.iter().filter(|g| g.arm == ARM_CONTROL).collect();
    let at_days = inp
        .metric_days
        .iter()
        .map(|&day| {
            let neo = row(regions, ARM_TREATED, "dermis", day)
                .map(|r| (r.col1_neo_ug_per_mm3 + r.col3_neo_ug_per_mm3) * inp.dermis_mm)
                .unwrap_or(f64::NAN);
            let cell_rel = |region: &str| {
                row(regions, ARM_TREATED, region, day)
                    .map(|r| r.cell_density_rel)
                    .unwrap_or(f64::NAN)
            };
            let epi = |rows: &[&GlobalRow]| {
                rows.iter()
                    .find(|g| (g.day - day).abs() < 1e-6)
                    .map(|g| g.epidermis_um)
                    .unwrap_or(f64::NAN)
            };
            DayMetrics {
                day,
                days_after_last_session: day - last,
                collagen_gain_pct: by_layer(regions, day, |t, c| {
                    pct(t.collagen_total_ug_per_mm3, c.collagen_total_ug_per_mm3)
                }),
                collagen1_gain_pct: by_layer(regions, day, |t, c| pct(col1(t), col1(c))),
                collagen3_gain_pct: by_layer(regions, day, |t, c| pct(col3(t), col3(c))),
                elastin_gain_pct: by_layer(regions, day, |t, c| pct(elastin(t), elastin(c))),
                neocollagen_ug_per_mm2: neo,
                cell_density_rel: ByLayer {
                    papillary: cell_rel("papillary"),
                    reticular: cell_rel("reticular"),
                    dermis: cell_rel("dermis"),
                },
                epidermis_change_pct: pct(epi(&treated_g), epi(&control_g)),
            }
        })
        .collect();

    // Peak collagen III (dermis) over control.
    let (mut peak3, mut peak3_day) = (f64::NEG_INFINITY, f64::NAN);
    for t in regions
        .iter()
        .filter(|r| r.arm == ARM_TREATED && r.region == "dermis")
    {
        if let Some(c) = row(regions, ARM_CONTROL, "dermis", t.day) {
            let g = pct(col3(t), col3(c));
            if g > peak3 {
                peak3 = g;
                peak3_day = t.day;
            }
        }
    }

    // Timing after the first session, within its window.
    let s1 = inp.session_days.first().copied().unwrap_or(0.0);
    let s2 = inp.session_days.get(1).copied().unwrap_or(f64::INFINITY);
    let window: Vec<&&GlobalRow> = treated_g
        .iter()
        .filter(|g| g.day >= s1 && g.day < s2)
        .collect();
    let argmax = |f: &dyn Fn(&GlobalRow) -> f64| -> f64 {
        let mut best = (f64::NEG_INFINITY, f64::NAN);
        for g in &window {
            let v = f(g);
            if v > best.0 {
                best = (v, g.day - s1);
            }
        }
        best.1
    };
    let n_peak = argmax(&|g| g.neutrophils_rel);
    let a_peak = argmax(&|g| g.activated_cells as f64);
    let m_peak = argmax(&|g| g.myofibroblasts as f64);

    // Erythema: time with papillary N above half its peak, per session window.
    let mut erythema = 0.0;
    let mut act_days = 0.0;
    let mut tail_days = 0.0;
    for (k, &s) in inp.session_days.iter().enumerate() {
        let e = inp
            .session_days
            .get(k + 1)
            .copied()
            .unwrap_or(f64::INFINITY);
        let w: Vec<&&GlobalRow> = treated_g
            .iter()
            .filter(|g| g.day >= s && g.day < e)
            .collect();
        let peak = w
            .iter()
            .map(|g| g.neutrophils_papillary_rel)
            .fold(0.0, f64::max);
        for pair in w.windows(2) {
            let dt = pair[1].day - pair[0].day;
            if peak > 0.0 && pair[0].neutrophils_papillary_rel > 0.5 * peak {
                erythema += dt;
            }
            act_days += dt * (pair[0].activated_cells + pair[0].myofibroblasts) as f64;
            tail_days += dt * pair[0].tail_cells;
        }
    }
    let nsess = inp.session_days.len().max(1) as f64;
    let centroid = inp
        .metric_days
        .last()
        .and_then(|d| inp.centroids.iter().find(|c| (c.0 - d).abs() < 1e-6))
        .map(|c| c.1)
        .unwrap_or(f64::NAN);
    Metrics {
        at_days,
        peak_collagen3_gain_pct: peak3,
        peak_collagen3_day: peak3_day,
        neutrophil_peak_days_after_session: n_peak,
        activated_peak_days_after_session: a_peak,
        myofibroblast_peak_days_after_session: m_peak,
        neo_collagen_depth_centroid_um: centroid,
        bleeding_channels_per_cm2: inp.bleeding_per_cm2,
        erythema_days: erythema,
        activated_cell_days_per_session: if inp.baseline_cells > 0.0 {
            act_days / inp.baseline_cells / nsess
        } else {
            0.0
        },
        tail_cell_days_per_session: if inp.baseline_cells > 0.0 {
            tail_days / inp.baseline_cells / nsess
        } else {
            0.0
        },
    }
}
