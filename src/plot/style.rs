//! Shared look of every chart: Okabe–Ito colours, projector-sized fonts scaled with the image,
//! titles, legends drawn beside the plot, axis meshes and session markers.

use super::{Chart, DrawCtx, PlotError};
use plotters::coord::Shift;
use plotters::coord::types::RangedCoordf64;
use plotters::prelude::*;
pub use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::ops::Range;

/// Okabe–Ito palette (colour-blind safe).
pub const BLACK_OI: RGBColor = RGBColor(0x00, 0x00, 0x00);
/// Orange.
pub const ORANGE: RGBColor = RGBColor(0xE6, 0x9F, 0x00);
/// Sky blue.
pub const SKY: RGBColor = RGBColor(0x56, 0xB4, 0xE9);
/// Bluish green.
pub const GREEN_OI: RGBColor = RGBColor(0x00, 0x9E, 0x73);
/// Blue.
pub const BLUE_OI: RGBColor = RGBColor(0x00, 0x72, 0xB2);
/// Vermillion.
pub const VERMILLION: RGBColor = RGBColor(0xD5, 0x5E, 0x00);
/// Reddish purple.
pub const PURPLE: RGBColor = RGBColor(0xCC, 0x79, 0xA7);
/// Session markers and secondary ink.
pub const GREY: RGBColor = RGBColor(0x70, 0x70, 0x70);
/// Grid lines.
pub const GRID: RGBColor = RGBColor(0xDD, 0xDD, 0xDD);

/// Colours for an ordered list of series (sessions, snapshot days), most distinct first.
pub const SEQUENCE: [RGBColor; 7] = [BLUE_OI, ORANGE, GREEN_OI, PURPLE, VERMILLION, SKY, BLACK_OI];

/// plotters font size per pixel of em size (the SVG backend writes `font-size = size / 1.24`).
const EM_TO_SIZE: f64 = 1.24;

/// Sizes of text and lines for one image size; 1.0 at 1600×1000.
#[derive(Debug, Clone, Copy)]
pub struct Theme {
    /// Scale factor against 1600×1000.
    pub s: f64,
    /// Title size, px.
    pub title: f64,
    /// Subtitle size, px.
    pub sub: f64,
    /// Axis descriptions, px.
    pub label: f64,
    /// Tick labels, px.
    pub tick: f64,
    /// Legend entries, px.
    pub legend: f64,
    /// Annotations inside plots, px.
    pub note: f64,
}

impl Theme {
    /// Theme for an image of `w × h` pixels.
    ///
    /// Sizes are given as the em size a reader sees (the SVG `font-size`); plotters' font size
    /// is 1.24 times that. At 1600×1000 the title is 42 px and every other text at least 28 px.
    pub fn new(w: u32, h: u32) -> Self {
        let s = (w as f64 / 1600.0).min(h as f64 / 1000.0);
        let em = |px: f64| px * EM_TO_SIZE * s;
        Theme {
            s,
            title: em(42.0),
            sub: em(28.4),
            label: em(28.4),
            tick: em(28.4),
            legend: em(28.4),
            note: em(28.4),
        }
    }

    /// A pixel length scaled with the image.
    pub fn px(&self, v: f64) -> i32 {
        (v * self.s).round().max(1.0) as i32
    }

    /// Line width for data series.
    pub fn line(&self) -> u32 {
        self.px(4.0) as u32
    }

    /// Regular text of `size` px in `color`.
    pub fn font(&self, size: f64, color: &RGBColor) -> TextStyle<'static> {
        ("sans-serif", size).into_font().color(color)
    }

    /// Bold text.
    pub fn bold(&self, size: f64, color: &RGBColor) -> TextStyle<'static> {
        // Built in one step: `FontDesc::style` would keep the regular face's glyphs.
        ("sans-serif", size, FontStyle::Bold)
            .into_font()
            .color(color)
    }
}

/// Draws the title (bold) and a one-line subtitle; returns the area below them.
pub fn header<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    th: &Theme,
    chart: Chart,
    title: &str,
    subtitle: &str,
) -> Result<DrawingArea<DB, Shift>, PlotError> {
    let (w, _) = root.dim_in_pixel();
    let top = th.px(14.0);
    let title_style = th
        .bold(th.title, &BLACK_OI)
        .pos(Pos::new(HPos::Center, VPos::Top));
    root.draw_text(title, &title_style, (w as i32 / 2, top))
        .ctx(chart)?;
    let sub_y = top + (th.title * 1.25) as i32;
    let sub_style = th
        .font(th.sub, &RGBColor(0x33, 0x33, 0x33))
        .pos(Pos::new(HPos::Center, VPos::Top));
    root.draw_text(subtitle, &sub_style, (w as i32 / 2, sub_y))
        .ctx(chart)?;
    let used = sub_y + (th.sub * 1.6) as i32;
    Ok(root.split_vertically(used).1)
}

/// Splits off a legend column of `frac` of the width on the right.
pub fn split_legend<DB: DrawingBackend>(
    body: &DrawingArea<DB, Shift>,
    frac: f64,
) -> (DrawingArea<DB, Shift>, DrawingArea<DB, Shift>) {
    let (w, _) = body.dim_in_pixel();
    body.split_horizontally(((w as f64) * (1.0 - frac)) as i32)
}

/// How a legend entry is drawn.
#[derive(Debug, Clone)]
pub enum Swatch {
    /// A solid line.
    Line(RGBColor),
    /// A dashed line.
    Dashed(RGBColor),
    /// A thin line (session markers).
    Thin(RGBColor),
    /// A filled circle.
    Dot(RGBColor),
    /// An open circle.
    Ring(RGBColor),
    /// A filled square (shaded areas).
    Patch(RGBColor),
    /// No symbol: a heading.
    Heading,
}

/// One legend line.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Symbol.
    pub swatch: Swatch,
    /// Text.
    pub text: String,
}

impl Entry {
    /// Builds an entry.
    pub fn new(swatch: Swatch, text: impl Into<String>) -> Self {
        Entry {
            swatch,
            text: text.into(),
        }
    }
}

/// Draws legend entries top-down in `area`, starting `top` px below its top edge. Texts longer
/// than the column are wrapped at spaces.
pub fn legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    th: &Theme,
    chart: Chart,
    top: i32,
    entries: &[Entry],
) -> Result<(), PlotError> {
    let (w, _) = area.dim_in_pixel();
    let x0 = th.px(16.0);
    let sym_w = th.px(56.0);
    let text_x = x0 + sym_w + th.px(12.0);
    let line_h = (th.legend * 1.25) as i32;
    let text_style = th
        .font(th.legend, &BLACK_OI)
        .pos(Pos::new(HPos::Left, VPos::Center));
    let head_style = th
        .bold(th.legend, &BLACK_OI)
        .pos(Pos::new(HPos::Left, VPos::Center));
    let max_w = w as i32 - text_x - th.px(6.0);
    let mut y = top + line_h / 2;
    for e in entries {
        let style = if matches!(e.swatch, Swatch::Heading) {
            &head_style
        } else {
            &text_style
        };
        let lines = wrap(area, &e.text, style, max_w.max(40)).ctx(chart)?;
        let lw = th.line() as i32;
        let cy = y;
        let r = th.px(11.0);
        match &e.swatch {
            Swatch::Line(c) => area
                .draw(&PathElement::new(
                    vec![(x0, cy), (x0 + sym_w, cy)],
                    c.stroke_width(lw as u32),
                ))
                .ctx(chart)?,
            Swatch::Thin(c) => area
                .draw(&PathElement::new(
                    vec![(x0, cy), (x0 + sym_w, cy)],
                    c.stroke_width((lw / 2).max(1) as u32),
                ))
                .ctx(chart)?,
            Swatch::Dashed(c) => {
                let seg = sym_w / 5;
                for k in [0, 2, 4] {
                    area.draw(&PathElement::new(
                        vec![(x0 + k * seg, cy), (x0 + (k + 1) * seg, cy)],
                        c.stroke_width(lw as u32),
                    ))
                    .ctx(chart)?;
                }
            }
            Swatch::Dot(c) => area
                .draw(&Circle::new((x0 + sym_w / 2, cy), r, c.filled()))
                .ctx(chart)?,
            Swatch::Ring(c) => area
                .draw(&Circle::new(
                    (x0 + sym_w / 2, cy),
                    r,
                    c.stroke_width(th.px(3.0) as u32),
                ))
                .ctx(chart)?,
            Swatch::Patch(c) => area
                .draw(&Rectangle::new(
                    [(x0, cy - r), (x0 + sym_w, cy + r)],
                    c.filled(),
                ))
                .ctx(chart)?,
            Swatch::Heading => {}
        }
        let tx = if matches!(e.swatch, Swatch::Heading) {
            x0
        } else {
            text_x
        };
        for (i, l) in lines.iter().enumerate() {
            area.draw_text(l, style, (tx, y + i as i32 * line_h))
                .ctx(chart)?;
        }
        y += line_h * lines.len() as i32 + (th.legend * 0.3) as i32;
    }
    Ok(())
}

/// Splits `text` at spaces into lines no wider than `max_w` px.
pub fn wrap<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    text: &str,
    style: &TextStyle,
    max_w: i32,
) -> Result<Vec<String>, DrawingAreaErrorKind<DB::ErrorType>> {
    let mut lines: Vec<String> = Vec::new();
    let mut cur = String::new();
    for word in text.split(' ') {
        let cand = if cur.is_empty() {
            word.to_string()
        } else {
            format!("{cur} {word}")
        };
        let (tw, _) = area.estimate_text_size(&cand, style)?;
        if tw as i32 > max_w && !cur.is_empty() {
            lines.push(std::mem::take(&mut cur));
            cur = word.to_string();
        } else {
            cur = cand;
        }
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    Ok(lines)
}

/// A 2-D chart on f64 axes.
pub type Ctx2<'a, DB> = ChartContext<'a, DB, Cartesian2d<RangedCoordf64, RangedCoordf64>>;

/// Margins and label areas for one plot panel.
pub struct PanelSpec<'t> {
    /// Caption drawn above the panel (bold), if any.
    pub caption: Option<&'t str>,
    /// x-axis description.
    pub x_desc: &'t str,
    /// y-axis description.
    pub y_desc: &'t str,
}

/// Builds a panel with projector-sized axes, a light grid and the given ranges.
#[allow(clippy::too_many_arguments)] // each argument is one independent axis setting
pub fn panel<'a, DB: DrawingBackend>(
    area: &'a DrawingArea<DB, Shift>,
    th: &Theme,
    chart: Chart,
    spec: &PanelSpec,
    x: Range<f64>,
    y: Range<f64>,
    x_fmt: &dyn Fn(&f64) -> String,
    y_fmt: &dyn Fn(&f64) -> String,
) -> Result<Ctx2<'a, DB>, PlotError> {
    let mut b = ChartBuilder::on(area);
    b.margin_top(th.px(12.0))
        .margin_right(th.px(28.0))
        .margin_left(th.px(8.0))
        .margin_bottom(th.px(8.0))
        .x_label_area_size(th.px(92.0))
        .y_label_area_size(th.px(130.0));
    if let Some(c) = spec.caption {
        b.caption(c, th.bold(th.label, &BLACK_OI));
    }
    let mut ctx = b.build_cartesian_2d(x, y).ctx(chart)?;
    ctx.configure_mesh()
        .x_desc(spec.x_desc)
        .y_desc(spec.y_desc)
        .axis_desc_style(th.font(th.label, &BLACK_OI))
        .label_style(th.font(th.tick, &BLACK_OI))
        .x_labels(7)
        .y_labels(6)
        .x_label_formatter(x_fmt)
        .y_label_formatter(y_fmt)
        .bold_line_style(GRID.stroke_width(1))
        .light_line_style(TRANSPARENT)
        .axis_style(BLACK_OI.stroke_width(th.px(2.0) as u32))
        .set_all_tick_mark_size(th.px(8.0))
        .draw()
        .ctx(chart)?;
    Ok(ctx)
}

/// Draws a solid (treated) or dashed (control) line.
pub fn series<DB: DrawingBackend>(
    ctx: &mut Ctx2<'_, DB>,
    th: &Theme,
    chart: Chart,
    pts: &[(f64, f64)],
    color: RGBColor,
    dashed: bool,
) -> Result<(), PlotError> {
    if pts.is_empty() {
        return Ok(());
    }
    let style = color.stroke_width(th.line());
    if dashed {
        ctx.draw_series(DashedLineSeries::new(
            pts.iter().copied(),
            th.px(14.0),
            th.px(10.0),
            style,
        ))
        .ctx(chart)?;
    } else {
        ctx.draw_series(LineSeries::new(pts.iter().copied(), style))
            .ctx(chart)?;
    }
    Ok(())
}

/// Vertical session lines labelled S1, S2, … at the top of the plot.
pub fn session_lines<DB: DrawingBackend>(
    ctx: &mut Ctx2<'_, DB>,
    th: &Theme,
    chart: Chart,
    days: &[f64],
    x_offset: f64,
) -> Result<(), PlotError> {
    let xr = ctx.x_range();
    let yr = ctx.y_range();
    let label = th.bold(th.note, &GREY).pos(Pos::new(HPos::Left, VPos::Top));
    for (i, d) in days.iter().enumerate() {
        let x = d - x_offset;
        if x < xr.start || x > xr.end {
            continue;
        }
        ctx.draw_series(std::iter::once(PathElement::new(
            vec![(x, yr.start), (x, yr.end)],
            GREY.stroke_width(th.px(3.0) as u32),
        )))
        .ctx(chart)?;
        text_at(
            ctx,
            chart,
            &format!("S{}", i + 1),
            (x, yr.end),
            (th.px(6.0), th.px(4.0)),
            &label,
        )?;
    }
    Ok(())
}

/// Draws text at a data position with an anchor.
pub fn text_at<DB: DrawingBackend>(
    ctx: &Ctx2<'_, DB>,
    chart: Chart,
    text: &str,
    at: (f64, f64),
    offset: (i32, i32),
    style: &TextStyle,
) -> Result<(), PlotError> {
    let (px, py) = ctx.backend_coord(&at);
    let area = ctx.plotting_area();
    let base = area.get_base_pixel();
    area.strip_coord_spec()
        .draw_text(
            text,
            style,
            (px - base.0 + offset.0, py - base.1 + offset.1),
        )
        .ctx(chart)
}

/// A "nice" upper bound at or above `v` (1, 2, 2.5, 5 × 10ⁿ).
pub fn nice_ceil(v: f64) -> f64 {
    if !(v.is_finite()) || v <= 0.0 {
        return 1.0;
    }
    let e = v.log10().floor();
    let base = 10f64.powf(e);
    for m in [1.0, 1.2, 1.5, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0] {
        if m * base >= v * (1.0 - 1e-9) {
            return m * base;
        }
    }
    10.0 * base
}

/// Formats a tick value: no trailing zeros, thousands grouped with spaces, a true minus sign.
pub fn fmt_tick(v: f64) -> String {
    if v.abs() < 1e-9 {
        return "0".into();
    }
    let a = v.abs();
    let s = if a >= 1000.0 {
        group_thousands(a.round() as u64)
    } else if a >= 10.0 {
        trim(format!("{a:.1}"))
    } else if a >= 1.0 {
        trim(format!("{a:.2}"))
    } else {
        trim(format!("{a:.3}"))
    };
    if v < 0.0 { format!("−{s}") } else { s }
}

/// Formats a value to about three significant digits.
pub fn fmt_sig(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let a = v.abs();
    let s = if a >= 1000.0 {
        group_thousands(a.round() as u64)
    } else if a >= 100.0 {
        format!("{a:.0}")
    } else if a >= 10.0 {
        trim(format!("{a:.1}"))
    } else if a >= 1.0 {
        trim(format!("{a:.2}"))
    } else if a == 0.0 {
        "0".into()
    } else {
        let d = (-(a.log10().floor()) as usize + 2).min(8);
        trim(format!("{a:.d$}"))
    };
    if v < 0.0 { format!("−{s}") } else { s }
}

fn trim(s: String) -> String {
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            // No-break space: a number never wraps across legend lines.
            out.push('\u{a0}');
        }
        out.push(c);
    }
    out
}

/// Formats a day number without needless decimals.
pub fn fmt_day(d: f64) -> String {
    if (d - d.round()).abs() < 0.05 {
        format!("{}", d.round() as i64)
    } else {
        format!("{d:.1}")
    }
}

/// Finite extent of `vals` as (min, max), or `None` when there is no finite value.
pub fn extent(vals: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    let mut lo = f64::INFINITY;
    let mut hi = f64::NEG_INFINITY;
    for v in vals {
        if v.is_finite() {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    (lo <= hi).then_some((lo, hi))
}

/// Unique days in ascending order (values within 1e-6 d are the same day).
pub fn unique_days(days: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut v: Vec<f64> = days.into_iter().filter(|d| d.is_finite()).collect();
    v.sort_by(f64::total_cmp);
    v.dedup_by(|a, b| (*a - *b).abs() < 1e-6);
    v
}

/// Whether two recorded days are the same.
pub fn same_day(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6
}

/// Picks at most `n` items spread evenly over `all`, always keeping the last.
pub fn spread<T: Copy>(all: &[T], n: usize) -> Vec<T> {
    if all.len() <= n {
        return all.to_vec();
    }
    (0..n)
        .map(|i| all[(i * (all.len() - 1) + (n - 1) / 2) / (n - 1).max(1)])
        .collect::<Vec<_>>()
        .into_iter()
        .enumerate()
        .map(|(i, v)| if i == n - 1 { all[all.len() - 1] } else { v })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_read_cleanly() {
        assert_eq!(fmt_tick(0.0), "0");
        assert_eq!(fmt_tick(2.50), "2.5");
        assert_eq!(fmt_tick(-20.0), "−20");
        assert_eq!(fmt_tick(50000.0), "50\u{a0}000");
        assert_eq!(fmt_sig(0.01234), "0.0123");
        assert_eq!(fmt_sig(1234.4), "1\u{a0}234");
    }

    #[test]
    fn nice_bounds() {
        assert_eq!(nice_ceil(0.93), 1.0);
        assert_eq!(nice_ceil(730.0), 800.0);
        assert_eq!(nice_ceil(0.0), 1.0);
    }

    #[test]
    fn spread_keeps_ends() {
        let d = [0, 7, 14, 28, 56, 84, 236];
        let s = spread(&d, 3);
        assert_eq!(s.len(), 3);
        assert_eq!(s[0], 0);
        assert_eq!(s[2], 236);
        assert_eq!(spread(&d[..2], 3), vec![0, 7]);
    }
}
