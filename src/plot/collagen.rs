//! Collagen over the whole run in the papillary and the reticular dermis: total, type I,
//! type III and treatment-born (neo) collagen, treated solid against the untreated control
//! dashed, with every session marked.

use super::style::*;
use super::{Chart, PlotError};
use crate::observe::record::{ARM_CONTROL, ARM_TREATED, RegionRow, RunRecord, files};
use plotters::coord::Shift;
use plotters::prelude::*;

const C: Chart = Chart::Collagen;

struct Pool {
    name: &'static str,
    color: RGBColor,
    get: fn(&RegionRow) -> f64,
}

const POOLS: [Pool; 4] = [
    Pool {
        name: "Total collagen",
        color: BLACK_OI,
        get: |r| r.collagen_total_ug_per_mm3,
    },
    Pool {
        name: "Type I (all)",
        color: BLUE_OI,
        get: |r| r.col1_native_ug_per_mm3 + r.col1_neo_ug_per_mm3,
    },
    Pool {
        name: "Type III (all)",
        color: ORANGE,
        get: |r| r.col3_native_ug_per_mm3 + r.col3_neo_ug_per_mm3,
    },
    Pool {
        name: "Neo (new I + III)",
        color: VERMILLION,
        get: |r| r.col1_neo_ug_per_mm3 + r.col3_neo_ug_per_mm3,
    },
];

fn rows<'a>(rec: &'a RunRecord, arm: &str, region: &str) -> Vec<&'a RegionRow> {
    let mut v: Vec<&RegionRow> = rec
        .regions
        .iter()
        .filter(|r| r.arm == arm && r.region == region)
        .collect();
    v.sort_by(|a, b| a.day.total_cmp(&b.day));
    v
}

pub(super) fn draw<DB: DrawingBackend>(
    rec: &RunRecord,
    root: &DrawingArea<DB, Shift>,
    th: &Theme,
) -> Result<(), PlotError> {
    let layers = [
        ("papillary", "Papillary dermis"),
        ("reticular", "Reticular dermis"),
    ];
    let mut data = Vec::new();
    for (region, title) in layers {
        let t = rows(rec, ARM_TREATED, region);
        if t.len() < 2 {
            return Err(PlotError::missing(
                C,
                files::TIMESERIES,
                format!("series treated/{region} has fewer than two rows"),
            ));
        }
        let c = rows(rec, ARM_CONTROL, region);
        data.push((title, t, c));
    }
    let has_control = data.iter().all(|d| !d.2.is_empty());
    let days = extent(data.iter().flat_map(|d| d.1.iter().map(|r| r.day))).unwrap_or((0.0, 1.0));
    let x_range = days.0..days.1.max(days.0 + 1.0);

    let body = header(
        root,
        th,
        C,
        "Collagen in the dermis over time",
        "Treated skin (solid) against the untreated control (dashed); grey lines mark the sessions",
    )?;
    let (plots, legend_area) = split_legend(&body, 0.25);
    let (pw, _) = plots.dim_in_pixel();
    let (left, right) = plots.split_horizontally(pw as i32 / 2);
    for ((title, t, c), area) in data.iter().zip([&left, &right]) {
        let ymax = extent(
            t.iter()
                .chain(c.iter())
                .flat_map(|r| POOLS.iter().map(move |p| (p.get)(r))),
        )
        .map(|e| e.1)
        .unwrap_or(1.0);
        let spec = PanelSpec {
            caption: Some(title),
            x_desc: "Day",
            y_desc: "Collagen (µg/mm³)",
        };
        let mut ctx = panel(
            area,
            th,
            C,
            &spec,
            x_range.clone(),
            0.0..nice_ceil(ymax * 1.12),
            &|v| fmt_tick(*v),
            &|v| fmt_tick(*v),
        )?;
        session_lines(&mut ctx, th, C, &rec.summary.treatment.session_days, 0.0)?;
        for p in &POOLS {
            let pts = |rs: &[&RegionRow]| -> Vec<(f64, f64)> {
                rs.iter()
                    .map(|r| (r.day, (p.get)(r)))
                    .filter(|q| q.1.is_finite())
                    .collect()
            };
            series(&mut ctx, th, C, &pts(c), p.color, true)?;
            series(&mut ctx, th, C, &pts(t), p.color, false)?;
        }
    }
    let mut entries = vec![Entry::new(Swatch::Heading, "Collagen pool")];
    for p in &POOLS {
        entries.push(Entry::new(Swatch::Line(p.color), p.name));
    }
    entries.push(Entry::new(Swatch::Heading, "Arm"));
    entries.push(Entry::new(Swatch::Line(GREY), "Treated"));
    if has_control {
        entries.push(Entry::new(Swatch::Dashed(GREY), "Untreated control"));
    } else {
        entries.push(Entry::new(Swatch::Heading, "(no control arm in this run)"));
    }
    entries.push(Entry::new(Swatch::Thin(GREY), "Session (S1, S2, …)"));
    legend(&legend_area, th, C, th.px(70.0), &entries)
}
