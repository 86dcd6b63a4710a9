//! The healing cascade after the first session: neutrophils, macrophages, PDGF, TGF-β and
//! activated fibroblasts over the first four weeks, each scaled to its own peak so that the
//! order of events reads at a glance, on shaded inflammation, proliferation and remodelling
//! phases. Dashed curves are the untreated control on the same scale.

use super::style::*;
use super::{Chart, DrawCtx, PlotError};
use crate::observe::record::{ARM_CONTROL, ARM_TREATED, GlobalRow, RunRecord, files};
use plotters::coord::Shift;
use plotters::prelude::*;

const C: Chart = Chart::Cascade;
/// Length of the window after the first session, days.
const WINDOW: f64 = 28.0;

struct Signal {
    name: &'static str,
    unit: &'static str,
    color: RGBColor,
    get: fn(&GlobalRow) -> f64,
}

const SIGNALS: [Signal; 5] = [
    Signal {
        name: "Neutrophils",
        unit: "",
        color: VERMILLION,
        get: |r| r.neutrophils_rel,
    },
    Signal {
        name: "Macrophages",
        unit: "",
        color: PURPLE,
        get: |r| r.macrophages_rel,
    },
    Signal {
        name: "PDGF",
        unit: " ng/mL",
        color: BLUE_OI,
        get: |r| r.pdgf_ng_per_ml,
    },
    Signal {
        name: "TGF-β",
        unit: " ng/mL",
        color: GREEN_OI,
        get: |r| r.tgfb_ng_per_ml,
    },
    Signal {
        name: "Activated fibroblasts",
        unit: " cells",
        color: ORANGE,
        get: |r| r.activated_cells as f64,
    },
];

/// Phases of wound healing, days after the session, with their shading.
const PHASES: [(&str, f64, f64, RGBColor); 3] = [
    ("Inflammation", 0.0, 3.0, RGBColor(0xFB, 0xE3, 0xD3)),
    ("Proliferation", 3.0, 21.0, RGBColor(0xFD, 0xF6, 0xC9)),
    (
        "Remodelling",
        21.0,
        f64::INFINITY,
        RGBColor(0xDD, 0xEE, 0xF8),
    ),
];

pub(super) fn draw<DB: DrawingBackend>(
    rec: &RunRecord,
    root: &DrawingArea<DB, Shift>,
    th: &Theme,
) -> Result<(), PlotError> {
    let sessions = &rec.summary.treatment.session_days;
    let s0 = *sessions
        .first()
        .ok_or_else(|| PlotError::missing(C, files::SUMMARY, "treatment.session_days is empty"))?;
    let next = sessions.get(1).copied().unwrap_or(f64::INFINITY);
    let end = (s0 + WINDOW)
        .min(next)
        .min(rec.summary.end_day.max(s0 + 1.0));
    let window = |r: &&GlobalRow| r.day >= s0 - 1.0 && r.day <= end + 1e-9;
    let treated: Vec<&GlobalRow> = rec
        .global
        .iter()
        .filter(|r| r.arm == ARM_TREATED)
        .filter(window)
        .collect();
    if treated.len() < 2 {
        return Err(PlotError::missing(
            C,
            files::GLOBAL,
            format!(
                "no treated rows between day {} and day {}",
                fmt_day(s0),
                fmt_day(end)
            ),
        ));
    }
    let control: Vec<&GlobalRow> = rec
        .global
        .iter()
        .filter(|r| r.arm == ARM_CONTROL)
        .filter(window)
        .collect();

    let x0 = (treated[0].day - s0).clamp(-1.0, 0.0);
    let x1 = end - s0;
    let mut entries = vec![Entry::new(Swatch::Heading, "Treated (peak)")];
    let mut curves = Vec::new();
    for sig in &SIGNALS {
        let pts: Vec<(f64, f64)> = treated
            .iter()
            .map(|r| (r.day - s0, (sig.get)(r)))
            .filter(|p| p.1.is_finite())
            .collect();
        let peak = extent(pts.iter().map(|p| p.1)).map(|e| e.1).unwrap_or(0.0);
        if pts.is_empty() {
            return Err(PlotError::missing(
                C,
                files::GLOBAL,
                format!("series {} has no finite values", sig.name),
            ));
        }
        let norm = if peak > 0.0 { peak } else { 1.0 };
        let ctrl: Vec<(f64, f64)> = control
            .iter()
            .map(|r| (r.day - s0, (sig.get)(r) / norm))
            .filter(|p| p.1.is_finite())
            .collect();
        entries.push(Entry::new(
            Swatch::Line(sig.color),
            format!("{} ({}{})", sig.name, fmt_sig(peak), sig.unit),
        ));
        curves.push((
            sig.color,
            pts.iter().map(|&(x, y)| (x, y / norm)).collect::<Vec<_>>(),
            ctrl,
        ));
    }
    if control.is_empty() {
        entries.push(Entry::new(Swatch::Heading, "(no control arm in this run)"));
    } else {
        entries.push(Entry::new(Swatch::Dashed(GREY), "Untreated control"));
    }
    entries.push(Entry::new(Swatch::Thin(GREY), "Session 1 (S1)"));
    entries.push(Entry::new(Swatch::Heading, "Phase"));
    for (name, a, b, fill) in PHASES {
        let span = if b.is_finite() {
            format!("{name} {}–{}\u{a0}d", fmt_day(a), fmt_day(b))
        } else {
            format!("{name} {}+\u{a0}d", fmt_day(a))
        };
        entries.push(Entry::new(Swatch::Patch(fill), span));
    }

    let body = header(
        root,
        th,
        C,
        "Healing cascade after the first microneedling session",
        "Each curve is scaled to its own peak; dashed: the untreated control on the same scale",
    )?;
    let (plot_area, legend_area) = split_legend(&body, 0.27);
    let spec = PanelSpec {
        caption: None,
        x_desc: "Days after session 1",
        y_desc: "Level relative to peak (0–1)",
    };
    let mut ctx = panel(
        &plot_area,
        th,
        C,
        &spec,
        x0..x1,
        0.0..1.18,
        &|v| fmt_tick(*v),
        &|v| fmt_tick(*v),
    )?;
    for (name, a, b, fill) in PHASES {
        let (a, b) = (a.max(x0), b.min(x1));
        if a >= b {
            continue;
        }
        ctx.draw_series(std::iter::once(Rectangle::new(
            [(a, 0.0), (b, 1.18)],
            fill.filled(),
        )))
        .ctx(C)?;
        let style = th
            .bold(th.note, &RGBColor(0x44, 0x44, 0x44))
            .pos(Pos::new(HPos::Center, VPos::Top));
        let (w, _) = plot_area.estimate_text_size(name, &style).ctx(C)?;
        let (pa, _) = ctx.backend_coord(&(a, 0.0));
        let (pb, _) = ctx.backend_coord(&(b, 0.0));
        if (pb - pa) as u32 > w + th.px(8.0) as u32 {
            text_at(
                &ctx,
                C,
                name,
                ((a + b) / 2.0, 1.18),
                (0, th.px(8.0)),
                &style,
            )?;
        }
    }
    // Redraw the grid's top reference: 1 = peak.
    ctx.draw_series(std::iter::once(PathElement::new(
        vec![(x0, 1.0), (x1, 1.0)],
        GRID.stroke_width(th.px(2.0) as u32),
    )))
    .ctx(C)?;
    for (color, _, ctrl) in &curves {
        series(&mut ctx, th, C, ctrl, *color, true)?;
    }
    for (color, pts, _) in &curves {
        series(&mut ctx, th, C, pts, *color, false)?;
    }
    session_lines(&mut ctx, th, C, &sessions[..1], s0)?;
    legend(&legend_area, th, C, th.px(20.0), &entries)
}
