//! Charts of a recorded run: the healing cascade, collagen over time, change with depth,
//! cross-sections, the needle pattern and fibroblast states.
//!
//! Charts read only a [`RunRecord`] and never see a simulation. Each chart is drawn by one
//! function generic over the plotters backend, so the PNG, the SVG and the in-memory pixels of
//! a chart come from the same code. SVG output depends only on the record: identical records
//! give byte-identical files.

mod cascade;
mod cells;
mod collagen;
mod depth;
mod needles;
mod section;
pub(crate) mod style;
#[cfg(test)]
pub(crate) mod synthetic;

use crate::fsutil::{FsError, write_atomic};
use crate::observe::record::RunRecord;
use plotters::coord::Shift;
use plotters::prelude::*;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

pub use style::Theme;

/// One chart of a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Chart {
    /// Inflammation, growth factors and activated fibroblasts after the first session.
    Cascade,
    /// Collagen pools over time in the papillary and reticular dermis, treated vs control.
    Collagen,
    /// Collagen and elastin change against depth at snapshot days.
    Depth,
    /// x–z cross-sections of neo collagen and fibroblast density.
    Section,
    /// Microchannels seen from above.
    Needles,
    /// Quiescent, activated and myofibroblasts over time.
    Cells,
}

impl Chart {
    /// Every chart, in report order.
    pub const ALL: [Chart; 6] = [
        Chart::Cascade,
        Chart::Collagen,
        Chart::Depth,
        Chart::Section,
        Chart::Needles,
        Chart::Cells,
    ];

    /// File stem and command-line name: `cascade`, `collagen`, …
    pub fn name(self) -> &'static str {
        match self {
            Chart::Cascade => "cascade",
            Chart::Collagen => "collagen",
            Chart::Depth => "depth",
            Chart::Section => "section",
            Chart::Needles => "needles",
            Chart::Cells => "cells",
        }
    }
}

impl fmt::Display for Chart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Chart {
    type Err = PlotError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim().to_ascii_lowercase();
        Chart::ALL
            .into_iter()
            .find(|c| c.name() == t)
            .ok_or_else(|| PlotError::UnknownChart(s.to_string()))
    }
}

/// Which files to write for each chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    /// PNG only.
    Png,
    /// SVG only.
    Svg,
    /// PNG and SVG.
    #[default]
    Both,
}

impl FromStr for Format {
    type Err = PlotError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "png" => Ok(Format::Png),
            "svg" => Ok(Format::Svg),
            "both" => Ok(Format::Both),
            _ => Err(PlotError::UnknownFormat(s.to_string())),
        }
    }
}

/// What [`render`] draws.
#[derive(Debug, Clone, PartialEq)]
pub struct PlotOptions {
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Output formats.
    pub format: Format,
    /// Charts to draw; `None` draws them all.
    pub only: Option<Vec<Chart>>,
}

impl Default for PlotOptions {
    fn default() -> Self {
        PlotOptions {
            width: 1600,
            height: 1000,
            format: Format::Both,
            only: None,
        }
    }
}

/// Errors drawing charts; each names the chart and the file or series at fault.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The record lacks data the chart needs.
    #[error("{chart} chart: {file}: {what}")]
    MissingData {
        /// The chart.
        chart: Chart,
        /// The run file the data comes from (`global.csv`, `summary.json`, …).
        file: &'static str,
        /// The series or field that is missing or empty.
        what: String,
    },
    /// The drawing backend failed.
    #[error("{chart} chart: drawing failed: {message}")]
    Draw {
        /// The chart.
        chart: Chart,
        /// The backend's message.
        message: String,
    },
    /// The requested size cannot hold a readable chart.
    #[error("chart size {width}×{height} px is too small (at least 400×250)")]
    TooSmall {
        /// Width asked for.
        width: u32,
        /// Height asked for.
        height: u32,
    },
    /// The embedded font could not be registered.
    #[error("embedded DejaVu Sans font could not be registered")]
    Font,
    /// A chart name that does not exist.
    #[error(
        "unknown chart `{0}` (expected one of cascade, collagen, depth, section, needles, cells)"
    )]
    UnknownChart(String),
    /// A format name that does not exist.
    #[error("unknown chart format `{0}` (expected png, svg or both)")]
    UnknownFormat(String),
    /// Writing a chart file failed.
    #[error(transparent)]
    Fs(#[from] FsError),
}

impl PlotError {
    pub(crate) fn missing(chart: Chart, file: &'static str, what: impl Into<String>) -> Self {
        PlotError::MissingData {
            chart,
            file,
            what: what.into(),
        }
    }
}

/// Attaches the chart name to backend errors.
pub(crate) trait DrawCtx<T> {
    fn ctx(self, chart: Chart) -> Result<T, PlotError>;
}

impl<T, E: fmt::Display> DrawCtx<T> for Result<T, E> {
    fn ctx(self, chart: Chart) -> Result<T, PlotError> {
        self.map_err(|e| PlotError::Draw {
            chart,
            message: e.to_string(),
        })
    }
}

/// Registers the embedded DejaVu Sans faces as `sans-serif` (once per process).
fn ensure_fonts() -> Result<(), PlotError> {
    static FONTS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    let ok = *FONTS.get_or_init(|| {
        let regular = plotters::style::register_font(
            "sans-serif",
            FontStyle::Normal,
            dejavu::sans::regular(),
        );
        let bold =
            plotters::style::register_font("sans-serif", FontStyle::Bold, dejavu::sans::bold());
        regular.is_ok() && bold.is_ok()
    });
    if ok { Ok(()) } else { Err(PlotError::Font) }
}

fn check_size(width: u32, height: u32) -> Result<(), PlotError> {
    if width < 400 || height < 250 || width > 20_000 || height > 20_000 {
        return Err(PlotError::TooSmall { width, height });
    }
    Ok(())
}

/// Draws `chart` onto any plotters backend.
fn draw_chart<DB: DrawingBackend>(
    rec: &RunRecord,
    chart: Chart,
    root: &DrawingArea<DB, Shift>,
) -> Result<(), PlotError> {
    let (w, h) = root.dim_in_pixel();
    let th = Theme::new(w, h);
    root.fill(&WHITE).ctx(chart)?;
    match chart {
        Chart::Cascade => cascade::draw(rec, root, &th)?,
        Chart::Collagen => collagen::draw(rec, root, &th)?,
        Chart::Depth => depth::draw(rec, root, &th)?,
        Chart::Section => section::draw(rec, root, &th)?,
        Chart::Needles => needles::draw(rec, root, &th)?,
        Chart::Cells => cells::draw(rec, root, &th)?,
    }
    root.present().ctx(chart)
}

/// Renders one chart as an SVG document. Identical records give identical strings.
pub fn render_svg(
    rec: &RunRecord,
    chart: Chart,
    width: u32,
    height: u32,
) -> Result<String, PlotError> {
    check_size(width, height)?;
    ensure_fonts()?;
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        draw_chart(rec, chart, &root)?;
    }
    Ok(out)
}

/// Renders one chart into raw 8-bit RGB pixels, row by row (`width × height × 3` bytes): the
/// exact pixels of the PNG file.
pub fn render_rgb(
    rec: &RunRecord,
    chart: Chart,
    width: u32,
    height: u32,
) -> Result<Vec<u8>, PlotError> {
    check_size(width, height)?;
    ensure_fonts()?;
    let mut buf = vec![255u8; width as usize * height as usize * 3];
    {
        let root = BitMapBackend::with_buffer(&mut buf, (width, height)).into_drawing_area();
        draw_chart(rec, chart, &root)?;
    }
    Ok(buf)
}

/// Writes a PNG: drawn into a temporary `.png` sibling, synced, then renamed into place.
fn write_png(
    rec: &RunRecord,
    chart: Chart,
    path: &Path,
    width: u32,
    height: u32,
) -> Result<(), PlotError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let tmp = dir.join(format!(".{}.tmp-{}.png", chart.name(), std::process::id()));
    let result = (|| {
        {
            let root = BitMapBackend::new(&tmp, (width, height)).into_drawing_area();
            draw_chart(rec, chart, &root)?;
        }
        let sync = std::fs::File::open(&tmp).and_then(|f| f.sync_all());
        sync.and_then(|_| std::fs::rename(&tmp, path))
            .map_err(|e| PlotError::Fs(FsError::io(path, e)))
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Draws the charts chosen in `opts` into `charts_dir` (created if needed) as
/// `<name>.png` and/or `<name>.svg`, each written atomically. Returns the files written.
///
/// Every chart is attempted; the first error is returned after the others are drawn, so one
/// missing series does not cost the remaining charts.
pub fn render(
    rec: &RunRecord,
    charts_dir: &Path,
    opts: &PlotOptions,
) -> Result<Vec<PathBuf>, PlotError> {
    check_size(opts.width, opts.height)?;
    ensure_fonts()?;
    std::fs::create_dir_all(charts_dir).map_err(|e| FsError::io(charts_dir, e))?;
    let charts: Vec<Chart> = opts.only.clone().unwrap_or_else(|| Chart::ALL.to_vec());
    let mut written = Vec::new();
    let mut first_err = None;
    for chart in charts {
        let result = (|| {
            if matches!(opts.format, Format::Svg | Format::Both) {
                let svg = render_svg(rec, chart, opts.width, opts.height)?;
                let path = charts_dir.join(format!("{}.svg", chart.name()));
                write_atomic(&path, svg.as_bytes())?;
                written.push(path);
            }
            if matches!(opts.format, Format::Png | Format::Both) {
                let path = charts_dir.join(format!("{}.png", chart.name()));
                write_png(rec, chart, &path, opts.width, opts.height)?;
                written.push(path);
            }
            Ok::<(), PlotError>(())
        })();
        if let Err(e) = result {
            first_err.get_or_insert(e);
        }
    }
    match first_err {
        Some(e) => Err(e),
        None => Ok(written),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chart_names_round_trip() {
        for c in Chart::ALL {
            assert_eq!(c.name().parse::<Chart>().unwrap(), c);
        }
        assert!(matches!(
            "histogram".parse::<Chart>(),
            Err(PlotError::UnknownChart(_))
        ));
        assert_eq!("SVG".parse::<Format>().unwrap(), Format::Svg);
    }

    #[test]
    fn defaults_are_projector_sized() {
        let o = PlotOptions::default();
        assert_eq!((o.width, o.height, o.format), (1600, 1000, Format::Both));
        assert!(o.only.is_none());
    }

    #[test]
    fn every_chart_draws_from_the_synthetic_record() {
        let rec = synthetic::record();
        for c in Chart::ALL {
            let svg = render_svg(&rec, c, 800, 500).unwrap();
            assert!(svg.starts_with("<svg"), "{c}");
        }
    }

    #[test]
    fn tiny_sizes_are_refused() {
        let rec = synthetic::record();
        assert!(matches!(
            render_svg(&rec, Chart::Cells, 100, 100),
            Err(PlotError::TooSmall { .. })
        ));
    }
}
