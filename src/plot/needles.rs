//! The needle pattern seen from above: one marker per microchannel at true size inside the
//! simulated block, coloured by session, filled where the channel bled and open where it did
//! not, with the realised channel density of each session.

use super::style::*;
use super::{Chart, DrawCtx, PlotError};
use crate::observe::record::{RunRecord, files};
use plotters::coord::Shift;
use plotters::prelude::*;

const C: Chart = Chart::Needles;

pub(super) fn draw<DB: DrawingBackend>(
    rec: &RunRecord,
    root: &DrawingArea<DB, Shift>,
    th: &Theme,
) -> Result<(), PlotError> {
    if rec.channels.is_empty() {
        return Err(PlotError::missing(C, files::CHANNELS, "no channels"));
    }
    let tis = &rec.summary.tissue;
    let tr = &rec.summary.treatment;
    let (ex_lo, ex_hi) = extent(
        rec.channels
            .iter()
            .flat_map(|c| [c.x_um - c.radius_um, c.x_um + c.radius_um, c.tip_x_um]),
    )
    .unwrap_or((0.0, 1.0));
    let (ey_lo, ey_hi) = extent(
        rec.channels
            .iter()
            .flat_map(|c| [c.y_um - c.radius_um, c.y_um + c.radius_um, c.tip_y_um]),
    )
    .unwrap_or((0.0, 1.0));
    let dx = if tis.domain_x_um > 0.0 {
        tis.domain_x_um
    } else {
        ex_hi
    };
    let dy = if tis.domain_y_um > 0.0 {
        tis.domain_y_um
    } else {
        ey_hi
    };
    let x_lo = ex_lo.min(0.0);
    let x_hi = ex_hi.max(dx);
    let y_lo = ey_lo.min(0.0);
    let y_hi = ey_hi.max(dy);
    let pad = 0.03 * (x_hi - x_lo).max(y_hi - y_lo);
    let (x_lo, x_hi, y_lo, y_hi) = (x_lo - pad, x_hi + pad, y_lo - pad, y_hi + pad);

    let mut sessions: Vec<u32> = rec.channels.iter().map(|c| c.session).collect();
    sessions.sort_unstable();
    sessions.dedup();
    let density = |s: u32| tr.channels_per_cm2.get(s as usize - 1).copied();
    let mean_density = if tr.channels_per_cm2.is_empty() {
        None
    } else {
        Some(tr.channels_per_cm2.iter().sum::<f64>() / tr.channels_per_cm2.len() as f64)
    };
    let sub = match mean_density {
        Some(d) => format!(
            "{} session{}, {} channels/cm² per session on average, {} bleeding channels/cm²",
            sessions.len(),
            if sessions.len() == 1 { "" } else { "s" },
            fmt_sig(d),
            fmt_sig(tr.bleeding_channels_per_cm2)
        ),
        None => format!("{} channels", rec.channels.len()),
    };
    let body = header(root, th, C, "Needle channels seen from above", &sub)?;
    let (plot_area, legend_area) = split_legend(&body, 0.36);
    let (aw, ah) = plot_area.dim_in_pixel();
    let ylab = th.px(120.0);
    let xlab = th.px(90.0);
    let top = th.px(10.0);
    let right = th.px(20.0);
    let ppu = ((aw as i32 - ylab - right) as f64 / (x_hi - x_lo))
        .min((ah as i32 - xlab - top) as f64 / (y_hi - y_lo));
    let pw = ((x_hi - x_lo) * ppu).round() as i32;
    let ph = ((y_hi - y_lo) * ppu).round() as i32;
    let total_w = ylab + pw + right;
    let area = plot_area.clone().shrink(
        (((aw as i32 - total_w) / 2).max(0), 0),
        (total_w, top + ph + xlab),
    );
    let mut ctx = ChartBuilder::on(&area)
        .margin_top(top)
        .margin_right(right)
        .margin_left(0)
        .margin_bottom(0)
        .x_label_area_size(xlab)
        .y_label_area_size(ylab)
        .build_cartesian_2d(x_lo..x_hi, y_lo..y_hi)
        .ctx(C)?;
    ctx.configure_mesh()
        .disable_mesh()
        .x_desc("x (mm)")
        .y_desc("y (mm)")
        .label_style(th.font(th.tick, &BLACK_OI))
        .axis_desc_style(th.font(th.label, &BLACK_OI))
        .x_labels(5)
        .y_labels(5)
        .x_label_formatter(&|v| fmt_tick(*v / 1000.0))
        .y_label_formatter(&|v| fmt_tick(*v / 1000.0))
        .axis_style(BLACK_OI.stroke_width(th.px(2.0) as u32))
        .set_all_tick_mark_size(th.px(8.0))
        .draw()
        .ctx(C)?;
    ctx.draw_series(std::iter::once(Rectangle::new(
        [(0.0, 0.0), (dx, dy)],
        RGBColor(0xFB, 0xF4, 0xEE).filled(),
    )))
    .ctx(C)?;
    ctx.draw_series(std::iter::once(Rectangle::new(
        [(0.0, 0.0), (dx, dy)],
        BLACK_OI.stroke_width(th.px(3.0) as u32),
    )))
    .ctx(C)?;
    let color_of = |s: u32| {
        let i = sessions.iter().position(|&t| t == s).unwrap_or(0);
        SEQUENCE[i % SEQUENCE.len()]
    };
    for c in &rec.channels {
        let col = color_of(c.session);
        let r = ((c.radius_um * ppu).round() as i32).max(th.px(7.0));
        let tilt = ((c.tip_x_um - c.x_um).powi(2) + (c.tip_y_um - c.y_um).powi(2)).sqrt();
        if tilt > 1.0 {
            ctx.draw_series(std::iter::once(PathElement::new(
                vec![(c.x_um, c.y_um), (c.tip_x_um, c.tip_y_um)],
                col.stroke_width(th.px(3.0) as u32),
            )))
            .ctx(C)?;
        }
        let style = if c.bleeding {
            col.mix(0.85).filled()
        } else {
            col.stroke_width(th.px(4.0) as u32)
        };
        ctx.draw_series(std::iter::once(Circle::new((c.x_um, c.y_um), r, style)))
            .ctx(C)?;
    }

    let mut entries = vec![Entry::new(Swatch::Heading, "Session: day, density")];
    for &s in &sessions {
        let day = rec
            .channels
            .iter()
            .find(|c| c.session == s)
            .map(|c| c.day)
            .unwrap_or(0.0);
        let d = density(s)
            .map(|d| format!("{}/cm²", fmt_sig(d)))
            .unwrap_or_else(|| "density not recorded".into());
        entries.push(Entry::new(
            Swatch::Dot(color_of(s)),
            format!("S{s}: day {}, {d}", fmt_day(day)),
        ));
    }
    let bleeding = rec.channels.iter().filter(|c| c.bleeding).count();
    entries.push(Entry::new(Swatch::Heading, "Marker"));
    entries.push(Entry::new(
        Swatch::Dot(GREY),
        format!("Bleeding channel ({bleeding})"),
    ));
    entries.push(Entry::new(
        Swatch::Ring(GREY),
        format!("No bleeding ({})", rec.channels.len() - bleeding),
    ));
    entries.push(Entry::new(Swatch::Thin(GREY), "Tilt: surface to tip"));
    entries.push(Entry::new(
        Swatch::Patch(RGBColor(0xFB, 0xF4, 0xEE)),
        format!(
            "Simulated block {} × {} mm",
            fmt_sig(dx / 1000.0),
            fmt_sig(dy / 1000.0)
        ),
    ));
    legend(&legend_area, th, C, th.px(20.0), &entries)
}
