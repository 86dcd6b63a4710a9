//! The HTML report of a run: one self-contained `report.html` with the scenario in plain
//! words, a table of key metrics against the untreated control, and every chart as inline SVG
//! with a caption saying what it teaches. No scripts, no external files; prints cleanly.

use crate::fsutil::{FsError, write_atomic};
use crate::observe::record::{ByLayer, RunRecord, Summary};
use crate::plot::{Chart, render_svg};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Name of the report inside a run directory.
pub const REPORT_FILE: &str = "report.html";
/// Size at which charts are drawn into the report (scaled to the page width by CSS).
const CHART_SIZE: (u32, u32) = (1600, 1000);

/// Errors writing the report.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The run directory does not exist.
    #[error("{0}: run directory not found")]
    NoRunDir(PathBuf),
    /// Writing the file failed.
    #[error(transparent)]
    Fs(#[from] FsError),
}

/// Escapes text for HTML element content and attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A number with about three significant digits, a true minus sign and grouped thousands.
fn num(v: f64) -> String {
    if !v.is_finite() {
        return "–".into();
    }
    let a = v.abs();
    let s = if a >= 1000.0 {
        let d = (a.round() as u64).to_string();
        let mut g = String::new();
        for (i, c) in d.chars().enumerate() {
            if i > 0 && (d.len() - i) % 3 == 0 {
                g.push('\u{202F}');
            }
            g.push(c);
        }
        g
    } else if a >= 100.0 || a == 0.0 {
        format!("{a:.0}")
    } else if a >= 10.0 {
        format!("{a:.1}")
    } else {
        format!("{a:.2}")
    };
    if v < 0.0 && s.chars().any(|c| c.is_ascii_digit() && c != '0') {
        format!("−{s}")
    } else {
        s
    }
}

/// A number for prose: like [`num`] without trailing zeros ("45", "80", "1.5").
fn plain(v: f64) -> String {
    let s = num(v);
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        s
    }
}

/// A signed percentage.
fn pct(v: f64) -> String {
    if v.is_finite() && v > 0.0 {
        format!("+{}", num(v))
    } else {
        num(v)
    }
}

fn day(d: f64) -> String {
    if (d - d.round()).abs() < 0.05 {
        format!("{}", d.round() as i64)
    } else {
        format!("{d:.1}")
    }
}

/// What each chart teaches, one sentence each.
pub fn caption(chart: Chart) -> &'static str {
    match chart {
        Chart::Cascade => {
            "After needling, neutrophils arrive first, macrophages and growth factors (PDGF, then TGF-β) follow, and fibroblasts activate days later: inflammation hands over to proliferation within the first week, while the untreated control stays flat."
        }
        Chart::Collagen => {
            "New collagen III is laid down first and is gradually replaced by the stronger collagen I, so total collagen in the treated skin climbs above the control over months, building up with every session."
        }
        Chart::Depth => {
            "The gain in collagen and elastin is largest just below the epidermis and fades towards the needle tip, showing that needle depth sets where remodelling happens."
        }
        Chart::Section => {
            "Seen in a vertical slice, new collagen forms in cones around each needle channel and fills the spaces between them over time, where activated fibroblasts first gathered."
        }
        Chart::Needles => {
            "Each session places a fresh pattern of microchannels; only those reaching the capillaries of the papillary dermis bleed, and the density per cm² sets how much tissue is injured."
        }
        Chart::Cells => {
            "Resting fibroblasts are recruited into an activated state after each session and some become contractile myofibroblasts, before the population returns to rest, while the control barely changes."
        }
    }
}

fn sessions_in_words(s: &Summary) -> String {
    let d = &s.treatment.session_days;
    match d.len() {
        0 => "no treatment sessions (untreated run)".into(),
        1 => format!("one session on day {}", day(d[0])),
        n => {
            let gaps: Vec<f64> = d.windows(2).map(|w| w[1] - w[0]).collect();
            let even = gaps.iter().all(|g| (g - gaps[0]).abs() < 0.05);
            let list: Vec<String> = d.iter().map(|x| day(*x)).collect();
            if even {
                format!(
                    "{n} sessions {} days apart (days {})",
                    day(gaps[0]),
                    list.join(", ")
                )
            } else {
                format!("{n} sessions on days {}", list.join(", "))
            }
        }
    }
}

fn scenario_html(s: &Summary) -> String {
    let t = &s.tissue;
    let tr = &s.treatment;
    let last = tr.session_days.last().copied();
    let follow = match last {
        Some(l) => format!(
            "Follow-up runs to day {}, {} days after the last session.",
            day(s.end_day),
            day(s.end_day - l)
        ),
        None => format!("The run lasts {} days.", day(s.end_day)),
    };
    let density = if tr.channels_per_cm2.is_empty() {
        String::new()
    } else {
        let mean = tr.channels_per_cm2.iter().sum::<f64>() / tr.channels_per_cm2.len() as f64;
        format!(
            " Each session makes about {} channels per cm², {} of them bleeding.",
            plain(mean),
            plain(tr.bleeding_channels_per_cm2)
        )
    };
    let mut h = String::new();
    let _ = write!(
        h,
        "<p>Skin of the <strong>{site}</strong> of a <strong>{age}-year-old</strong> patient \
         (epidermis {epi} µm, papillary dermis {pap} µm, reticular dermis {ret} µm) is treated \
         with a <strong>{device}</strong> with {len} mm needles reaching <strong>{depth} µm</strong> \
         below the surface, in {sessions}.{density} {follow}</p>",
        site = escape(&t.site),
        age = plain(t.patient_age_years),
        epi = plain(t.epidermis_um),
        pap = plain(t.papillary_um),
        ret = plain(t.reticular_um),
        device = escape(&tr.device),
        len = plain(tr.needle_length_mm),
        depth = plain(tr.penetration_depth_um),
        sessions = escape(&sessions_in_words(s)),
    );
    let _ = write!(
        h,
        "<p class=\"meta\">Scenario <code>{}</code>, seed {}, fibrosim {}; simulated block \
         {} × {} µm, voxel {} µm{}. Every result is compared with an untreated control of the same \
         skin and seed.</p>",
        escape(&s.scenario),
        s.seed,
        escape(&s.version),
        plain(t.domain_x_um),
        plain(t.domain_y_um),
        plain(t.voxel_um),
        if s.complete {
            ""
        } else {
            "; <strong>the run did not complete</strong>"
        },
    );
    h
}

fn layer_cells(b: &ByLayer) -> String {
    format!(
        "<td>{}</td><td>{}</td><td>{}</td>",
        pct(b.papillary),
        pct(b.reticular),
        pct(b.dermis)
    )
}

fn metrics_html(s: &Summary) -> String {
    let Some(m) = &s.metrics else {
        return "<p>No untreated control was run, so no metrics against control are available.</p>"
            .into();
    };
    let mut h = String::new();
    h.push_str(
        "<table class=\"metrics\" id=\"metrics-by-day\">\n<caption>Change against the untreated \
         control at the metric days</caption>\n<thead><tr><th rowspan=\"2\">Quantity</th>\
         <th rowspan=\"2\">Unit</th>",
    );
    for d in &m.at_days {
        let _ = write!(
            h,
            "<th colspan=\"3\">Day {} ({} d after last session)</th>",
            day(d.day),
            day(d.days_after_last_session)
        );
    }
    h.push_str("</tr>\n<tr>");
    for _ in &m.at_days {
        h.push_str("<th>Papillary</th><th>Reticular</th><th>Dermis</th>");
    }
    h.push_str("</tr></thead>\n<tbody>\n");
    type Get = fn(&crate::observe::record::DayMetrics) -> ByLayer;
    let rows: [(&str, &str, Get); 5] = [
        ("Collagen gain (all types)", "%", |d| d.collagen_gain_pct),
        ("Collagen I gain", "%", |d| d.collagen1_gain_pct),
        ("Collagen III gain", "%", |d| d.collagen3_gain_pct),
        ("Elastin gain", "%", |d| d.elastin_gain_pct),
        ("Cell density", "× baseline", |d| d.cell_density_rel),
    ];
    for (name, unit, get) in rows {
        let _ = write!(h, "<tr><th scope=\"row\">{name}</th><td>{unit}</td>");
        for d in &m.at_days {
            let b = get(d);
            if unit == "%" {
                h.push_str(&layer_cells(&b));
            } else {
                let _ = write!(
                    h,
                    "<td>{}</td><td>{}</td><td>{}</td>",
                    num(b.papillary),
                    num(b.reticular),
                    num(b.dermis)
                );
            }
        }
        h.push_str("</tr>\n");
    }
    h.push_str("<tr><th scope=\"row\">Neo collagen per skin area</th><td>µg/mm²</td>");
    for d in &m.at_days {
        let _ = write!(
            h,
            "<td colspan=\"3\">{}</td>",
            num(d.neocollagen_ug_per_mm2)
        );
    }
    h.push_str("</tr>\n<tr><th scope=\"row\">Epidermal thickness change</th><td>%</td>");
    for d in &m.at_days {
        let _ = write!(h, "<td colspan=\"3\">{}</td>", pct(d.epidermis_change_pct));
    }
    h.push_str("</tr>\n</tbody></table>\n");

    h.push_str(
        "<table class=\"metrics\" id=\"metrics-run\">\n<caption>Course of healing</caption>\n\
         <thead><tr><th>Quantity</th><th>Value</th><th>Unit</th></tr></thead>\n<tbody>\n",
    );
    let single: [(&str, String, &str); 10] = [
        (
            "Peak collagen III gain (dermis)",
            pct(m.peak_collagen3_gain_pct),
            "%",
        ),
        ("Day of that peak", day(m.peak_collagen3_day), "day"),
        (
            "Neutrophil peak after session 1",
            num(m.neutrophil_peak_days_after_session),
            "days",
        ),
        (
            "Activated fibroblast peak after session 1",
            num(m.activated_peak_days_after_session),
            "days",
        ),
        (
            "Myofibroblast peak after session 1",
            num(m.myofibroblast_peak_days_after_session),
            "days",
        ),
        (
            "Depth centroid of neo collagen",
            num(m.neo_collagen_depth_centroid_um),
            "µm below surface",
        ),
        (
            "Bleeding channels",
            num(m.bleeding_channels_per_cm2),
            "per cm² per session",
        ),
        (
            "Erythema (papillary neutrophils above half their peak)",
            num(m.erythema_days),
            "days, all sessions",
        ),
        (
            "Activated-cell-days per session",
            num(m.activated_cell_days_per_session),
            "baseline cells × day",
        ),
        (
            "Tail-cell-days per session",
            num(m.tail_cell_days_per_session),
            "baseline cells × day",
        ),
    ];
    for (name, v, unit) in single {
        let _ = writeln!(
            h,
            "<tr><th scope=\"row\">{}</th><td>{}</td><td>{}</td></tr>",
            escape(name),
            escape(&v),
            escape(unit)
        );
    }
    h.push_str("</tbody></table>\n");
    h
}

const CSS: &str = "\
body{font-family:'DejaVu Sans',Verdana,Arial,sans-serif;color:#111;background:#fff;max-width:1100px;margin:2em auto;padding:0 1.5em;line-height:1.45}\
h1{font-size:1.9em;margin-bottom:.2em}h2{font-size:1.35em;margin-top:1.6em;border-bottom:2px solid #0072B2;padding-bottom:.15em}\
p.meta{color:#444;font-size:.92em}\
table.metrics{border-collapse:collapse;margin:1em 0;font-size:.92em;width:100%}\
table.metrics caption{text-align:left;font-weight:bold;margin-bottom:.3em}\
table.metrics th,table.metrics td{border:1px solid #bbb;padding:.3em .5em;text-align:right}\
table.metrics th[scope=row],table.metrics thead th:first-child{text-align:left}\
table.metrics thead th{background:#eef4fa}\
figure{margin:1.5em 0;break-inside:avoid;page-break-inside:avoid}\
figure svg{width:100%;height:auto;display:block;border:1px solid #ddd}\
figcaption{margin-top:.4em;font-size:.95em}\
.missing{border:2px dashed #D55E00;padding:1em;color:#7a2d00}\
@media print{body{max-width:none;margin:0}h2{break-after:avoid}figure svg{border:none}a{color:inherit}}";

/// Builds the report as a string (deterministic for a given record).
pub fn report_html(rec: &RunRecord) -> String {
    let s = &rec.summary;
    let mut h = String::new();
    let title = format!("fibrosim report: {}", s.scenario);
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n",
        escape(&title)
    );
    let _ = writeln!(
        h,
        "<h1>Skin remodelling after microneedling: {}</h1>",
        escape(&s.scenario)
    );
    h.push_str("<h2>Scenario</h2>\n");
    h.push_str(&scenario_html(s));
    h.push_str("\n<h2>Key metrics</h2>\n");
    h.push_str(&metrics_html(s));
    h.push_str("\n<h2>Charts</h2>\n");
    for (i, chart) in Chart::ALL.into_iter().enumerate() {
        let _ = writeln!(h, "<figure id=\"chart-{}\">", chart.name());
        match render_svg(rec, chart, CHART_SIZE.0, CHART_SIZE.1) {
            Ok(svg) => h.push_str(&svg),
            Err(e) => {
                let _ = write!(
                    h,
                    "<div class=\"missing\">This chart could not be drawn: {}</div>",
                    escape(&e.to_string())
                );
            }
        }
        let _ = writeln!(
            h,
            "<figcaption><strong>Figure {}.</strong> {}</figcaption>\n</figure>",
            i + 1,
            escape(caption(chart))
        );
    }
    h.push_str("</body>\n</html>\n");
    h
}

/// Writes `<run_dir>/report.html` atomically and returns its path.
pub fn write_report(rec: &RunRecord, run_dir: &Path) -> Result<PathBuf, ReportError> {
    if !run_dir.is_dir() {
        return Err(ReportError::NoRunDir(run_dir.to_path_buf()));
    }
    let path = run_dir.join(REPORT_FILE);
    write_atomic(&path, report_html(rec).as_bytes())?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<b>\"a\" & 'b'</b>"),
            "&lt;b&gt;&quot;a&quot; &amp; &#39;b&#39;&lt;/b&gt;"
        );
    }

    #[test]
    fn numbers_read_well() {
        assert_eq!(num(-3.5), "−3.50");
        assert_eq!(pct(20.0), "+20.0");
        assert_eq!(num(1234.0), "1\u{202F}234");
        assert_eq!(num(-0.001), "0.00");
        assert_eq!(plain(45.0), "45");
        assert_eq!(plain(1.5), "1.5");
    }

    #[test]
    fn scenario_names_are_escaped() {
        let mut rec = crate::plot::synthetic::record();
        rec.summary.scenario = "<script>alert(1)</script>".into();
        let html = report_html(&rec);
        assert!(!html.contains("<script"));
        assert!(html.contains("&lt;script&gt;"));
    }

    #[test]
    fn sessions_are_described() {
        let rec = crate::plot::synthetic::record();
        assert_eq!(
            sessions_in_words(&rec.summary),
            "3 sessions 28 days apart (days 0, 28, 56)"
        );
    }
}
