//! Charts of a sweep, for its headline metric (papillary collagen gain at the last metric day):
//! a dose–response chart per axis (mean against the axis value, one line per value of a second
//! axis, 95 % confidence bands) and, with two axes or more, a heat map of axis 1 × axis 2 with
//! a colour bar and the value printed in every cell. Runs of the same (x, line) values are
//! pooled over any further axes and the replicates.
//!
//! The look is the shared chart style of `src/plot/style.rs` (included here verbatim, as the
//! plot module keeps it private): Okabe–Ito colours, projector-sized fonts, title, legend
//! column. Files: `charts/dose-<axis key>.{png,svg}` and `charts/heatmap.{png,svg}`; identical
//! inputs give byte-identical files.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::colors::colormaps::ViridisRGB;

use super::SweepError;
use super::results::{PointStats, SweepFile, stats};
use crate::fsutil::write_atomic;
#[allow(unused_imports)] // `style` imports these from its parent
use crate::plot::{Chart, DrawCtx, PlotError};

// The plot module keeps `style` private; compiling the same file here shares the look without
// editing it. If `plot` ever exports `style`, replace this with `use crate::plot::style`.
#[path = "../plot/style.rs"]
#[allow(dead_code, clippy::duplicate_mod)]
mod style;
use style::*;

/// Chart size, px.
const W: u32 = 1600;
/// Chart size, px.
const H: u32 = 1000;
/// The chart kind errors are attributed to.
const C: Chart = Chart::Collagen;

fn ensure_fonts() -> Result<(), PlotError> {
    static FONTS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *FONTS.get_or_init(|| {
        let r = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
        let b = plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold());
        r.is_ok() && b.is_ok()
    });
    if ok { Ok(()) } else { Err(PlotError::Font) }
}

/// The distinct values of axis `a`, in order of first appearance, and whether all are numbers.
fn axis_values(sf: &SweepFile, a: usize) -> (Vec<String>, Option<Vec<f64>>) {
    let mut v: Vec<String> = Vec::new();
    for r in &sf.runs {
        if !v.contains(&r.values[a]) {
            v.push(r.values[a].clone());
        }
    }
    let nums: Option<Vec<f64>> = v.iter().map(|s| s.parse::<f64>().ok()).collect();
    (v, nums)
}

/// Pooled statistics of the metric over points whose axes `a` and `b` take the given values.
fn pooled(
    points: &[PointStats],
    per_point: &[Vec<f64>],
    a: usize,
    va: &str,
    b: Option<(usize, &str)>,
) -> (usize, f64, f64, f64) {
    let vals: Vec<f64> = points
        .iter()
        .zip(per_point)
        .filter(|(p, _)| p.values[a] == va && b.is_none_or(|(bi, vb)| p.values[bi] == vb))
        .flat_map(|(_, v)| v.iter().copied())
        .collect();
    stats(&vals)
}

/// A metric label and its unit.
fn metric_label(metric: &str) -> String {
    let day = metric
        .rsplit_once("@last+")
        .map(|(_, d)| d.trim_end_matches('d').to_string())
        .unwrap_or_default();
    format!("Papillary collagen gain vs control, % ({day} d after last session)")
}

fn short_key(key: &str) -> &str {
    key.rsplit('.').next().unwrap_or(key)
}

/// Draws one chart as SVG.
type SvgDraw<'a> =
    dyn for<'b> Fn(&DrawingArea<SVGBackend<'b>, Shift>) -> Result<(), PlotError> + 'a;
/// Draws one chart as pixels.
type PngDraw<'a> =
    dyn for<'b> Fn(&DrawingArea<BitMapBackend<'b>, Shift>) -> Result<(), PlotError> + 'a;

/// Renders `draw` to `<stem>.svg` and `<stem>.png` in `dir`.
fn write_both(
    dir: &Path,
    stem: &str,
    draw: &SvgDraw,
    draw_px: &PngDraw,
) -> Result<Vec<PathBuf>, SweepError> {
    let cerr = |p: &Path, e: PlotError| SweepError::Chart {
        path: p.to_path_buf(),
        message: e.to_string(),
    };
    let svg_path = dir.join(format!("{stem}.svg"));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (W, H)).into_drawing_area();
        root.fill(&WHITE).ctx(C).map_err(|e| cerr(&svg_path, e))?;
        draw(&root).map_err(|e| cerr(&svg_path, e))?;
        root.present().ctx(C).map_err(|e| cerr(&svg_path, e))?;
    }
    write_atomic(&svg_path, svg.as_bytes())?;
    let png_path = dir.join(format!("{stem}.png"));
    let tmp = dir.join(format!(".{stem}.tmp-{}.png", std::process::id()));
    let res = (|| {
        let root = BitMapBackend::new(&tmp, (W, H)).into_drawing_area();
        root.fill(&WHITE).ctx(C)?;
        draw_px(&root)?;
        root.present().ctx(C)
    })();
    if let Err(e) = res {
        let _ = std::fs::remove_file(&tmp);
        return Err(cerr(&png_path, e));
    }
    std::fs::rename(&tmp, &png_path).map_err(|e| SweepError::io(&png_path, e))?;
    Ok(vec![svg_path, png_path])
}

/// Legend text, colour and points (x, mean, 95 % CI half-width) of one line.
type Line = (String, RGBColor, Vec<(f64, f64, f64)>);

/// Data of one dose–response chart.
struct Dose {
    title: String,
    x_desc: String,
    y_desc: String,
    /// Tick labels of a categorical x axis (None: numeric).
    labels: Option<Vec<String>>,
    /// One line per value of the second axis.
    lines: Vec<Line>,
}

fn draw_dose<DB: DrawingBackend>(d: &Dose, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError> {
    let th = Theme::new(W, H);
    let body = header(
        root,
        &th,
        C,
        &d.title,
        "mean of the runs at each value; shaded: 95 % confidence interval of the mean",
    )?;
    let (plot, leg) = split_legend(&body, 0.26);
    let xs = extent(d.lines.iter().flat_map(|l| l.2.iter().map(|p| p.0))).unwrap_or((0.0, 1.0));
    let ys = extent(d.lines.iter().flat_map(|l| {
        l.2.iter().flat_map(|p| {
            let ci = if p.2.is_finite() { p.2 } else { 0.0 };
            [p.1 - ci, p.1 + ci]
        })
    }))
    .unwrap_or((0.0, 1.0));
    let pad_x = ((xs.1 - xs.0) * 0.05).max(0.5 * f64::from(d.labels.is_some() as u8));
    let pad_x = if pad_x > 0.0 { pad_x } else { 0.5 };
    let span = (ys.1 - ys.0).max(1e-6);
    let y_lo = (ys.0 - 0.1 * span).min(0.0);
    let y_hi = ys.1 + 0.1 * span;
    let labels = d.labels.clone();
    let x_fmt = move |v: &f64| -> String {
        match &labels {
            Some(l) => {
                let k = v.round();
                if (v - k).abs() < 1e-6 && k >= 0.0 && (k as usize) < l.len() {
                    l[k as usize].clone()
                } else {
                    String::new()
                }
            }
            None => fmt_tick(*v),
        }
    };
    let mut ctx = panel(
        &plot,
        &th,
        C,
        &PanelSpec {
            caption: None,
            x_desc: &d.x_desc,
            y_desc: &d.y_desc,
        },
        (xs.0 - pad_x)..(xs.1 + pad_x),
        y_lo..y_hi,
        &x_fmt,
        &|v| fmt_tick(*v),
    )?;
    let mut entries = Vec::new();
    for (name, color, pts) in &d.lines {
        let band: Vec<(f64, f64)> = pts
            .iter()
            .map(|p| (p.0, p.1 + if p.2.is_finite() { p.2 } else { 0.0 }))
            .chain(
                pts.iter()
                    .rev()
                    .map(|p| (p.0, p.1 - if p.2.is_finite() { p.2 } else { 0.0 })),
            )
            .collect();
        ctx.draw_series(std::iter::once(Polygon::new(
            band,
            color.mix(0.18).filled(),
        )))
        .ctx(C)?;
        let line: Vec<(f64, f64)> = pts.iter().map(|p| (p.0, p.1)).collect();
        series(&mut ctx, &th, C, &line, *color, false)?;
        ctx.draw_series(
            line.iter()
                .map(|&p| Circle::new(p, th.px(8.0), color.filled())),
        )
        .ctx(C)?;
        entries.push(Entry::new(Swatch::Line(*color), name.clone()));
    }
    entries.push(Entry::new(
        Swatch::Patch(RGBColor(0xCC, 0xCC, 0xCC)),
        "95 % CI",
    ));
    legend(&leg, &th, C, th.px(20.0), &entries)
}

/// Data of the heat map.
struct Heat {
    title: String,
    x_desc: String,
    y_desc: String,
    x_labels: Vec<String>,
    y_labels: Vec<String>,
    /// Mean per (x index, y index); NaN where no run is done.
    cells: Vec<Vec<f64>>,
    unit: String,
}

fn draw_heat<DB: DrawingBackend>(h: &Heat, root: &DrawingArea<DB, Shift>) -> Result<(), PlotError> {
    let th = Theme::new(W, H);
    let body = header(
        root,
        &th,
        C,
        &h.title,
        "mean of the runs in each cell (replicates and any further axes pooled)",
    )?;
    let (plot, bar) = split_legend(&body, 0.2);
    let (nx, ny) = (h.x_labels.len(), h.y_labels.len());
    let (lo, hi) = extent(h.cells.iter().flatten().copied()).unwrap_or((0.0, 1.0));
    let hi = if hi > lo { hi } else { lo + 1.0 };
    let lab = |l: &[String]| {
        let l = l.to_vec();
        move |v: &f64| -> String {
            let k = v.round();
            if (v - k).abs() < 1e-6 && k >= 0.0 && (k as usize) < l.len() {
                l[k as usize].clone()
            } else {
                String::new()
            }
        }
    };
    let ctx = panel(
        &plot,
        &th,
        C,
        &PanelSpec {
            caption: None,
            x_desc: &h.x_desc,
            y_desc: &h.y_desc,
        },
        -0.5..(nx as f64 - 0.5),
        -0.5..(ny as f64 - 0.5),
        &lab(&h.x_labels),
        &lab(&h.y_labels),
    )?;
    let mut ctx = ctx;
    for (i, col) in h.cells.iter().enumerate() {
        for (j, &v) in col.iter().enumerate() {
            let (x, y) = (i as f64, j as f64);
            let fill = if v.is_finite() {
                ViridisRGB::get_color_normalized(v, lo, hi)
            } else {
                GRID
            };
            ctx.draw_series(std::iter::once(Rectangle::new(
                [(x - 0.5, y - 0.5), (x + 0.5, y + 0.5)],
                fill.filled(),
            )))
            .ctx(C)?;
            let t = (v - lo) / (hi - lo);
            let ink = if v.is_finite() && t < 0.6 {
                RGBColor(255, 255, 255)
            } else {
                BLACK_OI
            };
            let style = th
                .bold(th.note, &ink)
                .pos(Pos::new(HPos::Center, VPos::Center));
            let text = if v.is_finite() {
                fmt_sig(v)
            } else {
                "–".into()
            };
            text_at(&ctx, C, &text, (x, y), (0, 0), &style)?;
        }
    }
    // Colour bar.
    let (bw, bh) = bar.dim_in_pixel();
    let top = th.px(40.0);
    let bottom = bh as i32 - th.px(110.0);
    let x0 = th.px(30.0);
    let x1 = x0 + th.px(50.0).min(bw as i32 / 4);
    let steps = 100;
    for k in 0..steps {
        let f0 = k as f64 / steps as f64;
        let y0 = bottom - ((bottom - top) as f64 * (f0 + 1.0 / steps as f64)) as i32;
        let y1 = bottom - ((bottom - top) as f64 * f0) as i32;
        let c = ViridisRGB::get_color_normalized(lo + f0 * (hi - lo), lo, hi);
        bar.draw(&Rectangle::new([(x0, y0), (x1, y1)], c.filled()))
            .ctx(C)?;
    }
    bar.draw(&Rectangle::new(
        [(x0, top), (x1, bottom)],
        BLACK_OI.stroke_width(1),
    ))
    .ctx(C)?;
    let ts = th
        .font(th.tick, &BLACK_OI)
        .pos(Pos::new(HPos::Left, VPos::Center));
    for k in 0..=4 {
        let f = k as f64 / 4.0;
        let y = bottom - ((bottom - top) as f64 * f) as i32;
        bar.draw(&PathElement::new(
            vec![(x1, y), (x1 + th.px(8.0), y)],
            BLACK_OI.stroke_width(1),
        ))
        .ctx(C)?;
        bar.draw_text(&fmt_sig(lo + f * (hi - lo)), &ts, (x1 + th.px(12.0), y))
            .ctx(C)?;
    }
    let us = th
        .font(th.label, &BLACK_OI)
        .pos(Pos::new(HPos::Left, VPos::Top));
    bar.draw_text(&h.unit, &us, (x0, bottom + th.px(20.0)))
        .ctx(C)?;
    Ok(())
}

/// Draws every chart of a sweep into `dir` for metric column `k` named `metric`.
pub fn draw_all(
    dir: &Path,
    sf: &SweepFile,
    points: &[PointStats],
    k: usize,
    metric: &str,
) -> Result<Vec<PathBuf>, SweepError> {
    ensure_fonts().map_err(|e| SweepError::Chart {
        path: dir.to_path_buf(),
        message: e.to_string(),
    })?;
    std::fs::create_dir_all(dir).map_err(|e| SweepError::io(dir, e))?;
    let per_point: Vec<Vec<f64>> = points.iter().map(|p| p.samples[k].clone()).collect();
    let y_desc = metric_label(metric);
    let mut written = Vec::new();
    let naxes = sf.axes.len();
    for a in 0..naxes {
        let (vals, nums) = axis_values(sf, a);
        let xs: Vec<f64> = nums
            .clone()
            .unwrap_or_else(|| (0..vals.len()).map(|i| i as f64).collect());
        let other = (0..naxes).find(|&b| b != a);
        let groups: Vec<Option<String>> = match other {
            Some(b) => axis_values(sf, b).0.into_iter().map(Some).collect(),
            None => vec![None],
        };
        let lines = groups
            .iter()
            .enumerate()
            .map(|(gi, g)| {
                let pts: Vec<(f64, f64, f64)> = vals
                    .iter()
                    .zip(&xs)
                    .filter_map(|(v, &x)| {
                        let b = other.zip(g.as_deref());
                        let (n, mean, _, ci) = pooled(points, &per_point, a, v, b);
                        (n > 0).then_some((x, mean, ci))
                    })
                    .collect();
                let name = match (other, g) {
                    (Some(b), Some(g)) => format!("{} = {g}", short_key(&sf.axes[b])),
                    _ => "all runs".to_string(),
                };
                (name, SEQUENCE[gi % SEQUENCE.len()], pts)
            })
            .collect();
        let d = Dose {
            title: format!("{}: dose–response of {}", sf.sweep, short_key(&sf.axes[a])),
            x_desc: sf.axes[a].clone(),
            y_desc: y_desc.clone(),
            labels: nums.is_none().then_some(vals.clone()),
            lines,
        };
        let stem = format!("dose-{}", sf.axes[a].replace('.', "-"));
        written.extend(write_both(dir, &stem, &|r| draw_dose(&d, r), &|r| {
            draw_dose(&d, r)
        })?);
    }
    if naxes >= 2 {
        let (xv, _) = axis_values(sf, 0);
        let (yv, _) = axis_values(sf, 1);
        let cells = xv
            .iter()
            .map(|x| {
                yv.iter()
                    .map(|y| {
                        let (n, mean, _, _) = pooled(points, &per_point, 0, x, Some((1, y)));
                        if n > 0 { mean } else { f64::NAN }
                    })
                    .collect()
            })
            .collect();
        let h = Heat {
            title: format!(
                "{}: {} × {}",
                sf.sweep,
                short_key(&sf.axes[0]),
                short_key(&sf.axes[1])
            ),
            x_desc: sf.axes[0].clone(),
            y_desc: sf.axes[1].clone(),
            x_labels: xv,
            y_labels: yv,
            cells,
            unit: "% gain vs control".into(),
        };
        written.extend(write_both(dir, "heatmap", &|r| draw_heat(&h, r), &|r| {
            draw_heat(&h, r)
        })?);
    }
    Ok(written)
}
