//! Chart and report checks on a synthetic run record: every chart draws to PNG and SVG at the
//! requested size, is not blank, carries its title and axis labels, is reproducible byte for
//! byte, and missing data is reported by name instead of panicking.

/// Lets the shared synthetic-record module name record types as `crate::observe::record`.
mod observe {
    pub use fibrosim::observe::*;
}
#[path = "../src/plot/synthetic.rs"]
#[allow(dead_code)]
mod synthetic;

use fibrosim::observe::record::RunRecord;
use fibrosim::plot::{Chart, Format, PlotError, PlotOptions, render, render_rgb, render_svg};
use fibrosim::report::{report_html, write_report};
use std::path::{Path, PathBuf};

fn scratch(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Width and height from a PNG's IHDR chunk, after checking the signature.
fn png_size(bytes: &[u8]) -> (u32, u32) {
    assert!(bytes.len() > 33, "PNG too short");
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n", "not a PNG signature");
    assert_eq!(&bytes[12..16], b"IHDR", "first chunk is not IHDR");
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert!(
        bytes.windows(4).any(|w| w == b"IDAT"),
        "PNG has no image data"
    );
    (w, h)
}

/// Variance of grey levels and the share of pixels that are not white.
fn pixel_stats(rgb: &[u8]) -> (f64, f64) {
    let n = rgb.len() / 3;
    let grey: Vec<f64> = rgb
        .chunks(3)
        .map(|p| (p[0] as f64 + p[1] as f64 + p[2] as f64) / 3.0)
        .collect();
    let mean = grey.iter().sum::<f64>() / n as f64;
    let var = grey.iter().map(|g| (g - mean).powi(2)).sum::<f64>() / n as f64;
    let inked = rgb.chunks(3).filter(|p| p != &[255, 255, 255]).count() as f64 / n as f64;
    (var, inked)
}

/// Texts each chart's SVG must contain: the title and the axis descriptions.
fn expected_texts(chart: Chart) -> &'static [&'static str] {
    match chart {
        Chart::Cascade => &[
            "Healing cascade after the first microneedling session",
            "Days after session 1",
            "Level relative to peak (0–1)",
            "Inflammation",
            "Proliferation",
            "Untreated control",
            "PDGF",
            "TGF-β",
        ],
        Chart::Collagen => &[
            "Collagen in the dermis over time",
            "Collagen (µg/mm³)",
            "Papillary dermis",
            "Reticular dermis",
            "Untreated control",
            "S3",
        ],
        Chart::Depth => &[
            "Collagen and elastin change with depth",
            "Depth below surface (µm)",
            "Collagen change vs control (%)",
            "Elastin change vs control (%)",
            "Needle depth",
            "Papillary dermis",
        ],
        Chart::Section => &[
            "Cross-section of treated skin",
            "x (mm)",
            "Depth (mm)",
            "Neo collagen",
            "µg/mm³",
            "Fibroblast density ρ",
            "× baseline",
        ],
        Chart::Needles => &[
            "Needle channels seen from above",
            "x (mm)",
            "y (mm)",
            "305/cm²",
            "Bleeding channel",
            "No bleeding",
        ],
        Chart::Cells => &[
            "Fibroblasts by state over time",
            "Cells (×1000)",
            "Day",
            "Quiescent",
            "Myofibroblasts",
            "Untreated control",
        ],
    }
}

#[test]
fn every_chart_renders_png_and_svg_that_are_not_blank() {
    let rec = synthetic::record();
    let dir = scratch("charts-all");
    let charts_dir = dir.join("charts");
    let files = render(&rec, &charts_dir, &PlotOptions::default()).unwrap();
    assert_eq!(files.len(), 12, "{files:?}");
    for chart in Chart::ALL {
        let png = charts_dir.join(format!("{}.png", chart.name()));
        let bytes = std::fs::read(&png).unwrap();
        assert_eq!(png_size(&bytes), (1600, 1000), "{chart}");
        let svg =
            std::fs::read_to_string(charts_dir.join(format!("{}.svg", chart.name()))).unwrap();
        assert!(svg.starts_with("<svg"), "{chart}");
        assert!(svg.contains(r#"viewBox="0 0 1600 1000""#), "{chart}");
        let rgb = render_rgb(&rec, chart, 1600, 1000).unwrap();
        assert_eq!(rgb.len(), 1600 * 1000 * 3);
        let (var, inked) = pixel_stats(&rgb);
        assert!(var > 200.0, "{chart}: pixel variance {var} looks blank");
        assert!(inked > 0.03, "{chart}: only {inked} of pixels drawn");
    }
    // No temporary files are left behind.
    let leftovers: Vec<_> = std::fs::read_dir(&charts_dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn svgs_carry_titles_and_axis_labels() {
    let rec = synthetic::record();
    for chart in Chart::ALL {
        let svg = render_svg(&rec, chart, 1600, 1000).unwrap();
        for t in expected_texts(chart) {
            assert!(svg.contains(t), "{chart}: SVG lacks text {t:?}");
        }
    }
}

#[test]
fn svg_is_reproducible() {
    let rec = synthetic::record();
    for chart in Chart::ALL {
        let a = render_svg(&rec, chart, 1600, 1000).unwrap();
        let b = render_svg(&synthetic::record(), chart, 1600, 1000).unwrap();
        assert!(a == b, "{chart}: two renderings differ");
    }
}

#[test]
fn other_sizes_and_formats() {
    let rec = synthetic::record();
    let dir = scratch("charts-small");
    let opts = PlotOptions {
        width: 800,
        height: 500,
        format: Format::Png,
        only: Some(vec![Chart::Section, Chart::Needles]),
    };
    let files = render(&rec, &dir, &opts).unwrap();
    assert_eq!(files.len(), 2);
    for f in &files {
        assert_eq!(png_size(&std::fs::read(f).unwrap()), (800, 500), "{f:?}");
    }
    let svg_only = PlotOptions {
        format: Format::Svg,
        only: Some(vec![Chart::Cells]),
        ..PlotOptions::default()
    };
    let files = render(&rec, &dir, &svg_only).unwrap();
    assert_eq!(files, vec![dir.join("cells.svg")]);
}

fn err_text(rec: &RunRecord, chart: Chart) -> String {
    match render_svg(rec, chart, 1600, 1000) {
        Ok(_) => panic!("{chart}: expected an error"),
        Err(e) => {
            assert!(matches!(e, PlotError::MissingData { .. }), "{chart}: {e}");
            e.to_string()
        }
    }
}

#[test]
fn missing_data_is_named() {
    let base = synthetic::record();

    let mut rec = base.clone();
    rec.global.clear();
    let e = err_text(&rec, Chart::Cascade);
    assert!(e.contains("cascade") && e.contains("global.csv"), "{e}");
    let e = err_text(&rec, Chart::Cells);
    assert!(e.contains("cells") && e.contains("global.csv"), "{e}");

    let mut rec = base.clone();
    rec.regions.retain(|r| r.region != "reticular");
    let e = err_text(&rec, Chart::Collagen);
    assert!(
        e.contains("timeseries.csv") && e.contains("reticular"),
        "{e}"
    );

    let mut rec = base.clone();
    rec.profiles.retain(|r| r.arm != "control");
    let e = err_text(&rec, Chart::Depth);
    assert!(e.contains("profiles.csv") && e.contains("control"), "{e}");

    let mut rec = base.clone();
    rec.sections.clear();
    let e = err_text(&rec, Chart::Section);
    assert!(e.contains("sections.csv"), "{e}");

    let mut rec = base.clone();
    rec.channels.clear();
    let e = err_text(&rec, Chart::Needles);
    assert!(e.contains("channels.csv"), "{e}");

    let mut rec = base.clone();
    rec.summary.treatment.session_days.clear();
    let e = err_text(&rec, Chart::Cascade);
    assert!(
        e.contains("summary.json") && e.contains("session_days"),
        "{e}"
    );

    // render() still draws the other charts, then reports the failure.
    let mut rec = base;
    rec.channels.clear();
    let dir = scratch("charts-partial");
    let e = render(&rec, &dir, &PlotOptions::default()).unwrap_err();
    assert!(e.to_string().contains("channels.csv"), "{e}");
    assert!(dir.join("cascade.png").is_file());
    assert!(!dir.join("needles.png").exists());
}

#[test]
fn odd_values_do_not_panic() {
    let mut rec = synthetic::record();
    for r in rec.global.iter_mut().step_by(7) {
        r.pdgf_ng_per_ml = f64::NAN;
    }
    for r in rec.sections.iter_mut().step_by(5) {
        r.neo_collagen_ug_per_mm3 = f64::INFINITY;
    }
    rec.regions.retain(|r| r.arm != "control");
    rec.global.retain(|r| r.arm != "control");
    rec.summary.metrics = None;
    for chart in Chart::ALL {
        if chart == Chart::Depth {
            continue;
        }
        render_svg(&rec, chart, 1600, 1000).unwrap_or_else(|e| panic!("{chart}: {e}"));
    }
}

#[test]
fn report_is_self_contained() {
    let rec = synthetic::record();
    let dir = scratch("report");
    let path = write_report(&rec, &dir).unwrap();
    assert_eq!(path, dir.join("report.html"));
    let html = std::fs::read_to_string(&path).unwrap();
    assert_eq!(html.matches("<svg").count(), Chart::ALL.len());
    for chart in Chart::ALL {
        assert!(
            html.contains(&format!("id=\"chart-{}\"", chart.name())),
            "{chart}"
        );
    }
    assert!(html.contains("<table class=\"metrics\" id=\"metrics-by-day\">"));
    assert!(html.contains("Collagen gain (all types)"));
    assert!(html.contains("µg/mm²"));
    assert!(html.contains("forehead"));
    assert!(html.contains("3 sessions 28 days apart"));
    assert!(html.contains("45-year-old"));
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("<script"));
    assert!(!lower.contains("http://") || !lower.contains("src=\"http"));
    assert!(!lower.contains("<link"));
    assert!(!lower.contains("<img"));
    assert_eq!(html, report_html(&rec), "report is not reproducible");
}

/// Renders every chart into `target/chart-preview/` for looking at them.
#[test]
fn preview_files_for_inspection() {
    let rec = synthetic::record();
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("chart-preview");
    std::fs::create_dir_all(&dir).unwrap();
    render(&rec, &dir.join("charts"), &PlotOptions::default()).unwrap();
    write_report(&rec, &dir).unwrap();
}
