//! Fibroblast states over the whole run, one panel each with its own scale: resting
//! (quiescent) cells, activated fibroblasts, and myofibroblasts (about a hundredth as many as
//! the activated cells, so a shared axis would hide them); treated solid against the untreated
//! control dashed, sessions marked.

use super::style::*;
use super::{Chart, PlotError};
use crate::observe::record::{ARM_CONTROL, ARM_TREATED, GlobalRow, RunRecord, files};
use plotters::coord::Shift;
use plotters::prelude::*;

const C: Chart = Chart::Cells;

fn pts(rows: &[&GlobalRow], get: fn(&GlobalRow) -> u64) -> Vec<(f64, f64)> {
    rows.iter().map(|r| (r.day, get(r) as f64)).collect()
}

pub(super) fn draw<DB: DrawingBackend>(
    rec: &RunRecord,
    root: &DrawingArea<DB, Shift>,
    th: &Theme,
) -> Result<(), PlotError> {
    let arm = |a: &str| -> Vec<&GlobalRow> {
        let mut v: Vec<&GlobalRow> = rec.global.iter().filter(|r| r.arm == a).collect();
        v.sort_by(|a, b| a.day.total_cmp(&b.day));
        v
    };
    let t = arm(ARM_TREATED);
    let c = arm(ARM_CONTROL);
    if t.len() < 2 {
        return Err(PlotError::missing(
            C,
            files::GLOBAL,
            "series treated cell counts has fewer than two rows",
        ));
    }
    let (d0, d1) = extent(t.iter().chain(c.iter()).map(|r| r.day)).unwrap_or((0.0, 1.0));
    let x = d0..d1.max(d0 + 1.0);

    let body = header(
        root,
        th,
        C,
        "Fibroblasts by state over time",
        "Treated skin (solid) against the untreated control (dashed); grey lines mark the sessions",
    )?;
    let (plots, legend_area) = split_legend(&body, 0.25);
    let areas = plots.split_evenly((3, 1));

    type Get = fn(&GlobalRow) -> u64;
    let q: Get = |r| r.quiescent_cells;
    let a: Get = |r| r.activated_cells;
    let m: Get = |r| r.myofibroblasts;
    let panels: [(&str, Get, RGBColor); 3] = [
        ("Quiescent (resting)", q, BLUE_OI),
        ("Activated", a, ORANGE),
        ("Myofibroblasts", m, PURPLE),
    ];
    for (i, ((title, g, col), area)) in panels.iter().zip(&areas).enumerate() {
        let vals = t.iter().chain(c.iter()).map(|r| g(r) as f64);
        let (lo, hi) = extent(vals).unwrap_or((0.0, 1.0));
        // Resting cells vary little around a large number: zoom in on their range.
        let y = if i == 0 {
            let pad = ((hi - lo) * 0.15).max(hi * 0.01).max(1.0);
            let base = ((lo - pad).max(0.0) / nice_ceil(hi / 20.0)).floor() * nice_ceil(hi / 20.0);
            base..(hi + pad)
        } else {
            0.0..nice_ceil(hi.max(1.0) * 1.1)
        };
        // Thousands where the counts run into thousands, plain counts otherwise.
        let thousands = y.end >= 5000.0;
        let spec = PanelSpec {
            caption: Some(title),
            x_desc: if i == 2 { "Day" } else { "" },
            y_desc: if thousands { "Cells (×1000)" } else { "Cells" },
        };
        let scale = if thousands { 1000.0 } else { 1.0 };
        let mut ctx = panel(area, th, C, &spec, x.clone(), y, &|v| fmt_tick(*v), &|v| {
            fmt_tick(*v / scale)
        })?;
        session_lines(&mut ctx, th, C, &rec.summary.treatment.session_days, 0.0)?;
        series(&mut ctx, th, C, &pts(&c, *g), *col, true)?;
        series(&mut ctx, th, C, &pts(&t, *g), *col, false)?;
    }
    let mut entries = vec![
        Entry::new(Swatch::Heading, "Fibroblast state"),
        Entry::new(Swatch::Line(BLUE_OI), "Quiescent"),
        Entry::new(Swatch::Line(ORANGE), "Activated"),
        Entry::new(Swatch::Line(PURPLE), "Myofibroblasts"),
        Entry::new(Swatch::Heading, "Arm"),
        Entry::new(Swatch::Line(GREY), "Treated"),
    ];
    if c.is_empty() {
        entries.push(Entry::new(Swatch::Heading, "(no control arm in this run)"));
    } else {
        entries.push(Entry::new(Swatch::Dashed(GREY), "Untreated control"));
    }
    entries.push(Entry::new(Swatch::Thin(GREY), "Session (S1, S2, …)"));
    legend(&legend_area, th, C, th.px(70.0), &entries)
}
