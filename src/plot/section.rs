//! A vertical x–z slice through the treated skin at snapshot days: neo collagen (top row) and
//! smoothed fibroblast density ρ (bottom row) as viridis heat maps at true aspect ratio, depth
//! down, with the outlines of the needle channels that cross the slice.

use super::style::*;
use super::{Chart, DrawCtx, PlotError};
use crate::observe::record::{ChannelRow, RunRecord, SectionRow, files};
use plotters::coord::Shift;
use plotters::prelude::*;

const C: Chart = Chart::Section;
/// Colour steps of the heat maps (runs of equal colour are merged into one rectangle).
const LEVELS: usize = 64;

struct Slice {
    day: f64,
    y_um: f64,
    xs: Vec<f64>,
    zs: Vec<f64>,
    /// Row-major by depth then x; NaN where the record has no voxel.
    neo: Vec<f64>,
    rho: Vec<f64>,
}

fn index_of(axis: &[f64], v: f64) -> Option<usize> {
    axis.binary_search_by(|a| {
        if same_day(*a, v) {
            std::cmp::Ordering::Equal
        } else {
            a.total_cmp(&v)
        }
    })
    .ok()
}

fn slice(rows: &[&SectionRow], day: f64) -> Slice {
    let y_um = rows[0].y_um;
    let rows: Vec<&&SectionRow> = rows.iter().filter(|r| same_day(r.y_um, y_um)).collect();
    let xs = unique_days(rows.iter().map(|r| r.x_um));
    let zs = unique_days(rows.iter().map(|r| r.z_um));
    let mut neo = vec![f64::NAN; xs.len() * zs.len()];
    let mut rho = neo.clone();
    for r in rows {
        if let (Some(i), Some(k)) = (index_of(&xs, r.x_um), index_of(&zs, r.z_um)) {
            neo[k * xs.len() + i] = r.neo_collagen_ug_per_mm3;
            rho[k * xs.len() + i] = r.fibroblast_density_rel;
        }
    }
    Slice {
        day,
        y_um,
        xs,
        zs,
        neo,
        rho,
    }
}

/// Tick values for a colour bar from 0 (or `lo`) to `hi`.
fn bar_ticks(lo: f64, hi: f64) -> Vec<f64> {
    let span = hi - lo;
    if span <= 0.0 {
        return vec![lo];
    }
    let raw = span / 4.0;
    let e = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * e)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * e);
    let mut v = (lo / step).ceil() * step;
    let mut out = Vec::new();
    while v <= hi + 1e-9 * span {
        out.push(v);
        v += step;
    }
    out
}

fn level(v: f64, lo: f64, hi: f64) -> usize {
    let f = ((v - lo) / (hi - lo)).clamp(0.0, 1.0);
    (f * (LEVELS - 1) as f64).round() as usize
}

fn level_color(l: usize) -> RGBColor {
    ViridisRGB.get_color(l as f32 / (LEVELS - 1) as f32)
}

pub(super) fn draw<DB: DrawingBackend>(
    rec: &RunRecord,
    root: &DrawingArea<DB, Shift>,
    th: &Theme,
) -> Result<(), PlotError> {
    let all_days = unique_days(rec.sections.iter().map(|r| r.day));
    if all_days.is_empty() {
        return Err(PlotError::missing(C, files::SECTIONS, "no section rows"));
    }
    let days = spread(&all_days, 3);
    let slices: Vec<Slice> = days
        .iter()
        .map(|&d| {
            let rows: Vec<&SectionRow> =
                rec.sections.iter().filter(|r| same_day(r.day, d)).collect();
            slice(&rows, d)
        })
        .collect();
    let voxel = if rec.summary.tissue.voxel_um > 0.0 {
        rec.summary.tissue.voxel_um
    } else {
        slices[0]
            .xs
            .windows(2)
            .map(|w| w[1] - w[0])
            .fold(f64::INFINITY, f64::min)
            .min(1e6)
    };
    let x_lo = slices.iter().map(|s| s.xs[0]).fold(f64::INFINITY, f64::min) - voxel / 2.0;
    let x_hi = slices
        .iter()
        .map(|s| s.xs[s.xs.len() - 1])
        .fold(f64::NEG_INFINITY, f64::max)
        + voxel / 2.0;
    let z_lo =
        (slices.iter().map(|s| s.zs[0]).fold(f64::INFINITY, f64::min) - voxel / 2.0).max(0.0);
    let z_hi = slices
        .iter()
        .map(|s| s.zs[s.zs.len() - 1])
        .fold(f64::NEG_INFINITY, f64::max)
        + voxel / 2.0;
    let neo_hi = extent(slices.iter().flat_map(|s| s.neo.iter().copied()))
        .map(|e| e.1)
        .unwrap_or(0.0);
    let rho_hi = extent(slices.iter().flat_map(|s| s.rho.iter().copied()))
        .map(|e| e.1)
        .unwrap_or(0.0);
    let neo_hi = if neo_hi > 0.0 { nice_ceil(neo_hi) } else { 1.0 };
    let rho_hi = if rho_hi > 0.0 { nice_ceil(rho_hi) } else { 1.0 };

    let y_plane = slices[0].y_um;
    let body = header(
        root,
        th,
        C,
        "Cross-section of treated skin: where new collagen forms",
        &format!(
            "Vertical slice at y = {} mm, true scale; white outlines: needle channels crossing the slice",
            fmt_sig(y_plane / 1000.0)
        ),
    )?;
    let (bw, _) = body.dim_in_pixel();
    // Colour-bar column: gap, bar, ticks, widest tick label, gap, rotated title.
    let tick_style = th
        .font(th.tick, &BLACK_OI)
        .pos(Pos::new(HPos::Left, VPos::Center));
    let mut tick_w = 0;
    for t in bar_ticks(0.0, neo_hi)
        .into_iter()
        .chain(bar_ticks(0.0, rho_hi))
    {
        tick_w = tick_w.max(body.estimate_text_size(&fmt_tick(t), &tick_style).ctx(C)?.0 as i32);
    }
    let bar_w = th.px(30.0);
    // Units go below the bars, the quantity names down the left side of each row.
    let unit_style = th
        .bold(th.note, &BLACK_OI)
        .pos(Pos::new(HPos::Left, VPos::Top));
    let units = ["µg/mm³", "× baseline"];
    let mut unit_w = 0;
    for u in units {
        unit_w = unit_w.max(body.estimate_text_size(u, &unit_style).ctx(C)?.0 as i32);
    }
    let bar_col = (th.px(24.0) + bar_w + th.px(12.0) + tick_w + th.px(12.0))
        .max(th.px(24.0) + unit_w + th.px(12.0));
    let row_col = (th.label * 1.4) as i32;
    let (grid, _) = body.split_horizontally(bw as i32 - bar_col);
    let (row_titles, grid) = grid.split_horizontally(row_col);
    let n = slices.len();
    let cells = grid.split_evenly((2, n));
    let (cw, ch) = cells[0].dim_in_pixel();
    let ylab = th.px(120.0);
    let xlab = th.px(84.0);
    let cap = (th.label * 1.5) as i32;
    let right = th.px(18.0);
    let avail_w = (cw as i32 - th.px(16.0) - ylab - right).max(10) as f64;
    let avail_h = (ch as i32 - cap - xlab).max(10) as f64;
    let (wx, dz) = (x_hi - x_lo, z_hi - z_lo);
    let ppu = (avail_w / wx).min(avail_h / dz);
    let plot_w = (wx * ppu).round() as i32;
    let plot_h = (dz * ppu).round() as i32;
    let left = th.px(16.0);
    let total_w = left + ylab + plot_w + right;

    let mut bars: Vec<i32> = Vec::new();
    for row in 0..2 {
        let hi = if row == 0 { neo_hi } else { rho_hi };
        for (col, s) in slices.iter().enumerate() {
            let cell = &cells[row * n + col];
            let ox = ((cw as i32 - total_w) / 2).max(0);
            let area = cell.clone().shrink((ox, 0), (total_w, cap + plot_h + xlab));
            let mut b = ChartBuilder::on(&area);
            b.margin_top(cap)
                .margin_right(right)
                .margin_left(left)
                .margin_bottom(0)
                .x_label_area_size(xlab)
                .y_label_area_size(ylab);
            let mut ctx = b.build_cartesian_2d(x_lo..x_hi, -z_hi..-z_lo).ctx(C)?;
            let mut mesh = ctx.configure_mesh();
            mesh.disable_mesh()
                .label_style(th.font(th.tick, &BLACK_OI))
                .axis_desc_style(th.font(th.label, &BLACK_OI))
                .x_labels(4)
                .y_labels(5)
                .x_label_formatter(&|v| fmt_tick(*v / 1000.0))
                .y_label_formatter(&|v| fmt_tick(-*v / 1000.0))
                .axis_style(BLACK_OI.stroke_width(th.px(2.0) as u32))
                .set_all_tick_mark_size(th.px(8.0));
            if row == 1 {
                mesh.x_desc("x (mm)");
            }
            if col == 0 {
                mesh.y_desc("Depth (mm)");
            }
            mesh.draw().ctx(C)?;
            // Heat map: one rectangle per run of equal colour along x.
            let values = if row == 0 { &s.neo } else { &s.rho };
            let nx = s.xs.len();
            for (k, z) in s.zs.iter().enumerate() {
                let mut i = 0;
                while i < nx {
                    let v = values[k * nx + i];
                    if !v.is_finite() {
                        i += 1;
                        continue;
                    }
                    let l = level(v, 0.0, hi);
                    let mut j = i + 1;
                    while j < nx {
                        let w = values[k * nx + j];
                        if !w.is_finite() || level(w, 0.0, hi) != l {
                            break;
                        }
                        j += 1;
                    }
                    let x0 = s.xs[i] - voxel / 2.0;
                    let x1 = s.xs[j - 1] + voxel / 2.0;
                    ctx.draw_series(std::iter::once(Rectangle::new(
                        [(x0, -(z - voxel / 2.0)), (x1, -(z + voxel / 2.0))],
                        level_color(l).filled(),
                    )))
                    .ctx(C)?;
                    i = j;
                }
            }
            let near: Vec<&ChannelRow> = rec
                .channels
                .iter()
                .filter(|c| c.day <= s.day + 1e-6 && (c.y_um - s.y_um).abs() <= c.radius_um + voxel)
                .collect();
            for c in near {
                let cone = vec![
                    (c.x_um - c.radius_um, 0.0),
                    (c.tip_x_um, -c.depth_um),
                    (c.x_um + c.radius_um, 0.0),
                ];
                ctx.draw_series(std::iter::once(PathElement::new(
                    cone.clone(),
                    BLACK_OI.stroke_width(th.px(6.0) as u32),
                )))
                .ctx(C)?;
                ctx.draw_series(std::iter::once(PathElement::new(
                    cone,
                    WHITE.stroke_width(th.px(3.0) as u32),
                )))
                .ctx(C)?;
            }
            let sessions = &rec.summary.treatment.session_days;
            let caption = match sessions.iter().rposition(|d| *d <= s.day + 1e-6) {
                Some(i) => format!(
                    "Day {} (S{} + {} d)",
                    fmt_day(s.day),
                    i + 1,
                    fmt_day(s.day - sessions[i])
                ),
                None => format!("Day {}", fmt_day(s.day)),
            };
            let style = th
                .bold(th.label, &BLACK_OI)
                .pos(Pos::new(HPos::Center, VPos::Bottom));
            area.draw_text(
                &caption,
                &style,
                (left + ylab + plot_w / 2, cap - th.px(8.0)),
            )
            .ctx(C)?;
            if col == 0 {
                bars.push(area.get_base_pixel().1 + cap);
            }
        }
    }
    // Colour bars, one per row, aligned with that row's plots.
    let bar_x = bw as i32 - bar_col + th.px(24.0);
    for (row, top) in bars.iter().enumerate() {
        let (hi, title) = if row == 0 {
            (neo_hi, "Neo collagen")
        } else {
            (rho_hi, "Fibroblast density ρ")
        };
        let top = *top;
        let bottom = top + plot_h;
        let steps = LEVELS as i32;
        for l in 0..steps {
            let y1 = bottom - (l * plot_h) / steps;
            let y0 = bottom - ((l + 1) * plot_h) / steps;
            root.draw(&Rectangle::new(
                [(bar_x, y0), (bar_x + bar_w, y1)],
                level_color(l as usize).filled(),
            ))
            .ctx(C)?;
        }
        root.draw(&Rectangle::new(
            [(bar_x, top), (bar_x + bar_w, bottom)],
            BLACK_OI.stroke_width(th.px(2.0) as u32),
        ))
        .ctx(C)?;
        for t in bar_ticks(0.0, hi) {
            let y = bottom - ((t / hi) * plot_h as f64).round() as i32;
            root.draw(&PathElement::new(
                vec![(bar_x + bar_w, y), (bar_x + bar_w + th.px(8.0), y)],
                BLACK_OI.stroke_width(th.px(2.0) as u32),
            ))
            .ctx(C)?;
            root.draw_text(&fmt_tick(t), &tick_style, (bar_x + bar_w + th.px(12.0), y))
                .ctx(C)?;
        }
        root.draw_text(units[row], &unit_style, (bar_x, bottom + th.px(10.0)))
            .ctx(C)?;
        // Quantity of the row, written upwards left of its first panel.
        let style = th
            .bold(th.label, &BLACK_OI)
            .transform(FontTransform::Rotate270)
            .pos(Pos::new(HPos::Center, VPos::Center));
        let base = row_titles.get_base_pixel();
        root.draw_text(title, &style, (base.0 + row_col / 2, top + plot_h / 2))
            .ctx(C)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colour_bar_ticks_cover_the_range() {
        assert_eq!(bar_ticks(0.0, 200.0), vec![0.0, 50.0, 100.0, 150.0, 200.0]);
        assert_eq!(bar_ticks(0.0, 3.0).last().copied(), Some(3.0));
    }

    #[test]
    fn levels_clamp() {
        assert_eq!(level(-1.0, 0.0, 1.0), 0);
        assert_eq!(level(2.0, 0.0, 1.0), LEVELS - 1);
    }
}
