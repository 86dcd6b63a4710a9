//! Where the new matrix sits: collagen and elastin change against the untreated control (%)
//! with depth pointing down, at a few snapshot days, over the shaded epidermis, papillary and
//! reticular dermis, with the needle penetration depth marked.

use super::style::*;
use super::{Chart, DrawCtx, PlotError};
use crate::observe::record::{ARM_CONTROL, ARM_TREATED, ProfileRow, RunRecord, files};
use plotters::coord::Shift;
use plotters::prelude::*;

const C: Chart = Chart::Depth;
const EPI_FILL: RGBColor = RGBColor(0xF3, 0xE6, 0xD8);
const PAP_FILL: RGBColor = RGBColor(0xFC, 0xEE, 0xF3);
const RET_FILL: RGBColor = RGBColor(0xF2, 0xF2, 0xF2);

/// Change in % of `get` (treated against control) per voxel layer, as (change, mid-depth).
fn change(t: &[&ProfileRow], c: &[&ProfileRow], get: fn(&ProfileRow) -> f64) -> Vec<(f64, f64)> {
    t.iter()
        .filter_map(|tr| {
            let cr = c.iter().find(|cr| same_day(cr.z_top_um, tr.z_top_um))?;
            let (a, b) = (get(tr), get(cr));
            (b > 0.0 && a.is_finite())
                .then(|| (100.0 * (a / b - 1.0), -0.5 * (tr.z_top_um + tr.z_bottom_um)))
        })
        .collect()
}

pub(super) fn draw<DB: DrawingBackend>(
    rec: &RunRecord,
    root: &DrawingArea<DB, Shift>,
    th: &Theme,
) -> Result<(), PlotError> {
    let of = |arm: &str, day: f64| -> Vec<&ProfileRow> {
        let mut v: Vec<&ProfileRow> = rec
            .profiles
            .iter()
            .filter(|r| r.arm == arm && same_day(r.day, day))
            .collect();
        v.sort_by(|a, b| a.z_top_um.total_cmp(&b.z_top_um));
        v
    };
    let t_days = unique_days(
        rec.profiles
            .iter()
            .filter(|r| r.arm == ARM_TREATED)
            .map(|r| r.day),
    );
    if t_days.is_empty() {
        return Err(PlotError::missing(
            C,
            files::PROFILES,
            "no treated profile rows",
        ));
    }
    let days: Vec<f64> = t_days
        .into_iter()
        .filter(|&d| !of(ARM_CONTROL, d).is_empty())
        .collect();
    if days.is_empty() {
        return Err(PlotError::missing(
            C,
            files::PROFILES,
            "no control profile rows at the treated snapshot days (change vs control needs the untreated control)",
        ));
    }
    let days = spread(&days, 4);
    let mut col = Vec::new();
    let mut ela = Vec::new();
    for &d in &days {
        let (t, c) = (of(ARM_TREATED, d), of(ARM_CONTROL, d));
        col.push(change(&t, &c, |r| r.collagen_total_ug_per_mm3));
        ela.push(change(&t, &c, |r| r.elastin_total_ug_per_mm3));
    }
    if col.iter().all(|v| v.is_empty()) {
        return Err(PlotError::missing(
            C,
            files::PROFILES,
            "series collagen_total_ug_per_mm3 has no control value above zero",
        ));
    }

    let tis = &rec.summary.tissue;
    let epi = tis.epidermis_um.max(0.0);
    let pap_end = epi + tis.papillary_um.max(0.0);
    let ret_end = pap_end + tis.reticular_um.max(0.0);
    let deepest = extent(rec.profiles.iter().map(|r| r.z_bottom_um))
        .map(|e| e.1)
        .unwrap_or(0.0)
        .max(ret_end);
    let pen = rec.summary.treatment.penetration_depth_um;
    let last_session = rec
        .summary
        .treatment
        .session_days
        .last()
        .copied()
        .unwrap_or(0.0);

    let body = header(
        root,
        th,
        C,
        "Collagen and elastin change with depth",
        "Treated against untreated control at each depth (0 % = control); depth increases downwards",
    )?;
    let (plots, legend_area) = split_legend(&body, 0.25);
    let (pw, _) = plots.dim_in_pixel();
    let (left, right) = plots.split_horizontally(pw as i32 / 2);
    let panels = [
        (
            "Collagen (all types)",
            "Collagen change vs control (%)",
            &col,
        ),
        ("Elastin", "Elastin change vs control (%)", &ela),
    ];
    for ((title, xdesc, curves), area) in panels.iter().zip([&left, &right]) {
        let (lo, hi) = extent(curves.iter().flatten().map(|p| p.0)).unwrap_or((0.0, 1.0));
        let lo = lo.min(0.0);
        let hi = hi.max(0.0);
        let span = (hi - lo).max(1.0);
        let hi = hi + 0.08 * span;
        // Leave room left of zero for the layer names: k is their share of the plot width.
        let label = th
            .font(th.note, &RGBColor(0x44, 0x44, 0x44))
            .pos(Pos::new(HPos::Left, VPos::Top));
        let (name_w, _) = area.estimate_text_size("Epidermis", &label).ctx(C)?;
        let (aw, _) = area.dim_in_pixel();
        let plot_w = (aw as i32 - th.px(166.0)).max(50) as f64;
        let k = ((name_w as i32 + th.px(24.0)) as f64 / plot_w).min(0.45);
        let lo = (lo - 0.05 * span).min(-k * hi / (1.0 - k));
        let x = lo..hi;
        let spec = PanelSpec {
            caption: Some(title),
            x_desc: xdesc,
            y_desc: "Depth below surface (µm)",
        };
        let mut ctx = panel(
            area,
            th,
            C,
            &spec,
            x.clone(),
            -deepest..0.0,
            &|v| fmt_tick(*v),
            &|v| fmt_tick(-*v),
        )?;
        let bands = [
            ("Epidermis", 0.0, epi, EPI_FILL),
            ("Papillary", epi, pap_end, PAP_FILL),
            ("Reticular", pap_end, ret_end, RET_FILL),
        ];
        for (name, a, b, fill) in bands {
            if b <= a {
                continue;
            }
            ctx.draw_series(std::iter::once(Rectangle::new(
                [(x.start, -a), (x.end, -b)],
                fill.filled(),
            )))
            .ctx(C)?;
            let (_, pa) = ctx.backend_coord(&(0.0, -a));
            let (_, pb) = ctx.backend_coord(&(0.0, -b));
            if pb - pa > (th.note * 1.1) as i32 {
                text_at(
                    &ctx,
                    C,
                    name,
                    (x.start, -a),
                    (th.px(8.0), th.px(4.0)),
                    &label,
                )?;
            }
        }
        ctx.draw_series(std::iter::once(PathElement::new(
            vec![(0.0, 0.0), (0.0, -deepest)],
            BLACK_OI.stroke_width(th.px(2.0) as u32),
        )))
        .ctx(C)?;
        if pen > 0.0 && pen <= deepest {
            ctx.draw_series(DashedLineSeries::new(
                [(x.start, -pen), (x.end, -pen)],
                th.px(10.0),
                th.px(8.0),
                GREY.stroke_width(th.px(3.0) as u32),
            ))
            .ctx(C)?;
            let style = th
                .bold(th.note, &GREY)
                .pos(Pos::new(HPos::Right, VPos::Top));
            // Below the line and right-aligned: the curves are near zero at that depth.
            text_at(
                &ctx,
                C,
                "Needle tip",
                (x.end, -pen),
                (-th.px(8.0), th.px(6.0)),
                &style,
            )?;
        }
        for (i, pts) in curves.iter().enumerate() {
            series(&mut ctx, th, C, pts, SEQUENCE[i % SEQUENCE.len()], false)?;
        }
    }
    let mut entries = vec![Entry::new(Swatch::Heading, "Snapshot")];
    for (i, d) in days.iter().enumerate() {
        let after = d - last_session;
        let what = if after >= 0.0 {
            format!(
                "Day {} (last session + {}\u{a0}d)",
                fmt_day(*d),
                fmt_day(after)
            )
        } else {
            format!("Day {}", fmt_day(*d))
        };
        entries.push(Entry::new(Swatch::Line(SEQUENCE[i % SEQUENCE.len()]), what));
    }
    if pen > 0.0 {
        entries.push(Entry::new(
            Swatch::Dashed(GREY),
            format!("Needle depth {}\u{a0}µm", fmt_sig(pen)),
        ));
    }
    entries.push(Entry::new(Swatch::Heading, "Layers"));
    entries.push(Entry::new(
        Swatch::Patch(EPI_FILL),
        format!("Epidermis {}\u{a0}µm", fmt_sig(epi)),
    ));
    entries.push(Entry::new(
        Swatch::Patch(PAP_FILL),
        format!("Papillary dermis {}\u{a0}µm", fmt_sig(pap_end - epi)),
    ));
    entries.push(Entry::new(
        Swatch::Patch(RET_FILL),
        format!("Reticular dermis {}\u{a0}µm", fmt_sig(ret_end - pap_end)),
    ));
    legend(&legend_area, th, C, th.px(70.0), &entries)
}
