//! Charts of a validation: one figure per check, one strip per claim, showing the published
//! band (shaded; a one-sided bound shades the allowed side), a published point value where one
//! exists (black cross), every seed's model value (blue when it passes, vermillion when not),
//! and the model mean with ± 1 SD.

use plotters::coord::Shift;
use plotters::prelude::*;
use std::path::{Path, PathBuf};

use super::{Check, Criterion, Item};
use crate::fsutil::write_atomic;
use crate::plot::style::{BLACK_OI, BLUE_OI, GREEN_OI, GREY, Theme, VERMILLION};

/// Chart size, px.
pub const SIZE: (u32, u32) = (1600, 1000);

fn ensure_fonts() {
    static FONTS: std::sync::OnceLock<()> = std::sync::OnceLock::new();
    FONTS.get_or_init(|| {
        let _ = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
        let _ = plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold());
    });
}

/// The x range of a strip: the band, its published point and every finite value, padded.
fn x_range(item: &Item) -> (f64, f64) {
    let mut v: Vec<f64> = item
        .values
        .iter()
        .copied()
        .filter(|x| x.is_finite())
        .collect();
    match item.criterion {
        Criterion::Within { lo, hi } => v.extend([lo, hi]),
        Criterion::Below { bound } | Criterion::Above { bound } => v.push(bound),
    }
    v.extend(item.published_point);
    let lo = v.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = v.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let span = (hi - lo).abs().max(lo.abs() * 0.1).max(1e-6);
    (lo - 0.15 * span, hi + 0.15 * span)
}

fn draw_item<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    th: &Theme,
    item: &Item,
) -> Result<(), String> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    let (x0, x1) = x_range(item);
    let caption = format!(
        "{} {}{}{}",
        item.id,
        item.claim,
        if item.unit.is_empty() { "" } else { " (" },
        if item.unit.is_empty() {
            String::new()
        } else {
            format!("{})", item.unit)
        }
    );
    let mut ctx = ChartBuilder::on(area)
        .margin_left(th.px(24.0))
        .margin_right(th.px(40.0))
        .margin_top(th.px(4.0))
        .caption(caption, th.font(th.note * 0.8, &BLACK_OI))
        .x_label_area_size(th.px(40.0))
        .build_cartesian_2d(x0..x1, 0.0..1.0)
        .map_err(e)?;
    ctx.configure_mesh()
        .disable_y_mesh()
        .disable_y_axis()
        .x_labels(8)
        .label_style(th.font(th.tick * 0.7, &BLACK_OI))
        .bold_line_style(RGBColor(0xDD, 0xDD, 0xDD).stroke_width(1))
        .light_line_style(TRANSPARENT)
        .draw()
        .map_err(e)?;
    let band = GREEN_OI.mix(0.25).filled();
    let (blo, bhi) = match item.criterion {
        Criterion::Within { lo, hi } => (lo, hi),
        Criterion::Below { bound } => (x0, bound),
        Criterion::Above { bound } => (bound, x1),
    };
    ctx.draw_series(std::iter::once(Rectangle::new(
        [(blo, 0.05), (bhi, 0.95)],
        band,
    )))
    .map_err(e)?;
    if let Some(p) = item.published_point {
        ctx.draw_series(std::iter::once(Cross::new(
            (p, 0.75),
            th.px(12.0),
            BLACK_OI.stroke_width(th.px(3.0) as u32),
        )))
        .map_err(e)?;
    }
    let r = th.px(9.0);
    ctx.draw_series(
        item.values
            .iter()
            .zip(&item.passes)
            .filter(|(v, _)| v.is_finite())
            .map(|(&v, &ok)| {
                Circle::new(
                    (v, 0.5),
                    r,
                    if ok {
                        BLUE_OI.filled()
                    } else {
                        VERMILLION.filled()
                    },
                )
            }),
    )
    .map_err(e)?;
    let (m, sd) = (item.mean(), item.sd());
    if m.is_finite() {
        let stroke = GREY.stroke_width(th.px(3.0) as u32);
        ctx.draw_series(std::iter::once(PathElement::new(
            vec![(m - sd, 0.25), (m + sd, 0.25)],
            stroke,
        )))
        .map_err(e)?;
        ctx.draw_series(std::iter::once(TriangleMarker::new(
            (m, 0.25),
            th.px(11.0),
            BLACK_OI.filled(),
        )))
        .map_err(e)?;
    }
    Ok(())
}

fn draw<DB: DrawingBackend>(root: &DrawingArea<DB, Shift>, check: &Check) -> Result<(), String> {
    let (w, h) = root.dim_in_pixel();
    let th = Theme::new(w, h);
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let title = format!(
        "Check {}: {} — {}",
        check.number,
        check.title,
        if check.pass() { "pass" } else { "FAIL" }
    );
    root.draw_text(
        &title,
        &th.bold(th.title * 0.8, &BLACK_OI),
        (th.px(24.0), th.px(12.0)),
    )
    .map_err(|e| e.to_string())?;
    root.draw_text(
        "band: published (green); dots: seeds (blue pass, red fail); ▲ mean ± SD; ✕ published value",
        &th.font(th.sub * 0.7, &GREY),
        (th.px(24.0), th.px(12.0) + (th.title * 0.9) as i32),
    )
    .map_err(|e| e.to_string())?;
    let body = root
        .split_vertically(th.px(12.0) + (th.title * 0.9 + th.sub * 0.9) as i32)
        .1;
    let n = check.items.len().max(1);
    for (area, item) in body.split_evenly((n, 1)).iter().zip(&check.items) {
        draw_item(area, &th, item)?;
    }
    root.present().map_err(|e| e.to_string())
}

/// Writes `check-<n>.svg` and `check-<n>.png` for every check into `dir` (created if needed);
/// returns the files written.
pub fn write_charts(checks: &[Check], dir: &Path) -> Result<Vec<PathBuf>, String> {
    ensure_fonts();
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut written = Vec::new();
    for c in checks {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
            draw(&root, c)?;
        }
        let path = dir.join(format!("check-{}.svg", c.number));
        write_atomic(&path, svg.as_bytes()).map_err(|e| e.to_string())?;
        written.push(path);
        let path = dir.join(format!("check-{}.png", c.number));
        let tmp = dir.join(format!(
            ".check-{}.tmp-{}.png",
            c.number,
            std::process::id()
        ));
        let drawn = (|| {
            {
                let root = BitMapBackend::new(&tmp, SIZE).into_drawing_area();
                draw(&root, c)?;
            }
            std::fs::rename(&tmp, &path).map_err(|e| format!("{}: {e}", path.display()))
        })();
        if drawn.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        drawn?;
        written.push(path);
    }
    Ok(written)
}
