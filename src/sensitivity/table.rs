//! The sensitivity table, built from a [`Report`] alone: `sensitivity.md` ([`markdown`]), the
//! console table ([`text`]) and `sensitivity.csv` ([`csv`]). Nothing here runs a simulation, so
//! the tables can be tested on synthetic reports.

use std::fmt::Write as _;

use super::{Headline, Report, Row, Varied};
use crate::validate::checks::num;

/// A change with its sign (`+4.1`, `-3.7`, `0`; `n/a` when unknown).
pub fn signed(v: f64) -> String {
    if v > 0.0 && v.is_finite() {
        format!("+{}", num(v))
    } else {
        num(v)
    }
}

/// Escapes `|` for a Markdown table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|")
}

/// The cells of one table row: parameter, level, value, the four metrics (with their change),
/// claims passed (with its change), verdicts changed.
fn cells(row: &Row, change: Option<&Varied>, units: &str) -> Vec<String> {
    let param = if row.parameter.is_empty() {
        "baseline (defaults)".to_string()
    } else {
        format!("{} `{}`", row.symbol, row.parameter)
    };
    let value = if row.value.is_nan() {
        "—".to_string()
    } else if units.is_empty() {
        num(row.value)
    } else {
        format!("{} {units}", num(row.value))
    };
    let mut out = vec![param, row.level.name().to_string(), value];
    let metrics = row.headline.columns();
    let deltas: Option<Headline> = change.map(|c| c.change.headline);
    for (k, (_, _, v)) in metrics.iter().enumerate() {
        out.push(match &deltas {
            Some(d) => format!("{} ({})", num(*v), signed(d.columns()[k].2)),
            None => num(*v),
        });
    }
    out.push(match change {
        Some(c) => format!(
            "{}/{} ({})",
            row.passed,
            row.total,
            signed(c.change.passed as f64)
        ),
        None => format!("{}/{}", row.passed, row.total),
    });
    let mut flips = Vec::new();
    if let Some(c) = change {
        if !c.change.now_pass.is_empty() {
            flips.push(format!("now pass {}", c.change.now_pass.join(", ")));
        }
        if !c.change.now_fail.is_empty() {
            flips.push(format!("now fail {}", c.change.now_fail.join(", ")));
        }
    }
    if row.incomplete_runs > 0 {
        flips.push(format!("{} run(s) stopped early", row.incomplete_runs));
    }
    out.push(flips.join("; "));
    out
}

/// Headers of the table.
fn headers() -> Vec<String> {
    let mut h = vec!["parameter".to_string(), "level".into(), "value".into()];
    let zero = Headline {
        activated_cell_days: 0.0,
        course_papillary_gain_pct: 0.0,
        col3_peak_gain_pct: 0.0,
        depth_centroid_change_um: 0.0,
    };
    for (_, name, _) in zero.columns() {
        h.push(format!("{name} (Δ)"));
    }
    h.push("claims passed (Δ)".into());
    h.push("verdicts changed".into());
    h
}

/// Every row of the table, baseline first, with the unit of each value.
fn table_rows(r: &Report) -> Vec<Vec<String>> {
    let mut rows = vec![cells(&r.baseline, None, "")];
    for v in &r.rows {
        let unit = r
            .parameters
            .iter()
            .find(|p| p.key == v.row.parameter)
            .map(|p| p.unit.as_str())
            .unwrap_or("");
        rows.push(cells(&v.row, Some(v), unit));
    }
    rows
}

/// `sensitivity.md`: how it was run, the table, the definitions and the parameters.
pub fn markdown(r: &Report) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "# fibrosim sensitivity\n");
    let n = r.parameters.len();
    let _ = writeln!(
        o,
        "fibrosim {}: one-at-a-time sensitivity of {n} calibrated parameter{} over the {} \
         validation protocols; {} seed{} per protocol (seeds 1–{}); {} runs of the suite \
         (baseline + low and high end of each parameter); wall time {:.0} s.\n",
        r.version,
        if n == 1 { "" } else { "s" },
        r.protocols.len(),
        r.seeds,
        if r.seeds == 1 { "" } else { "s" },
        r.seeds,
        1 + r.rows.len(),
        r.wall_seconds
    );
    if r.quick {
        let _ = writeln!(o, "**Reduced run.** {}.\n", r.reduction);
    }
    let _ = writeln!(
        o,
        "Each row sets one parameter to the low or the high end of its plausible range \
         (docs/calibration.md), every other parameter at its default, and runs every protocol \
         of `fibrosim validate`. Values are means over seeds; Δ is the change from the baseline \
         (percentage points for %). Claims are those of `validation.md`; per-seed values of \
         every claim are in `sensitivity.json`, one row per run of the suite in \
         `sensitivity.csv`.\n"
    );
    let h = headers();
    let _ = writeln!(o, "| {} |", h.join(" | "));
    let _ = writeln!(
        o,
        "|{}",
        h.iter()
            .enumerate()
            .map(|(k, _)| if (2..h.len() - 1).contains(&k) {
                "---:|"
            } else {
                "---|"
            })
            .collect::<String>()
    );
    for row in table_rows(r) {
        let _ = writeln!(
            o,
            "| {} |",
            row.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | ")
        );
    }
    let _ = writeln!(o, "\n## Metrics\n");
    let _ = writeln!(
        o,
        "- activated-cell-days per session: ∫ (activated + myofibroblast count) dt ÷ the block's \
         baseline cell count, per session, one 1.0 mm session (`pen-1.0mm-x1`).\n\
         - papillary collagen gain of the course: papillary collagen over control − 1, {} days \
         after the last of five monthly 1.5 mm sessions (`pen-1.5mm-x5-monthly`; claim 4.2).\n\
         - collagen III peak rise: the largest dermal collagen III (native + neo) over control \
         − 1 after one 1.0 mm session (claim 5.1).\n\
         - depth centroid change: neo-collagen depth centroid {} days after one session with \
         2.0 mm needles minus that with 0.5 mm needles (check 3).",
        num(super::COURSE_GAIN_DAY),
        num(crate::validate::DEPTH_DAY)
    );
    let _ = writeln!(o, "\n## Parameters\n");
    for p in &r.parameters {
        let u = if p.unit.is_empty() {
            String::new()
        } else {
            format!(" {}", p.unit)
        };
        let _ = writeln!(
            o,
            "- {} `{}`: default {}{u}; range {}–{}{u} ({}); fitted to: {}.",
            p.symbol,
            p.key,
            num(p.default),
            num(p.low),
            num(p.high),
            p.range,
            p.target
        );
    }
    o
}

/// The console table: the rows of `sensitivity.md`, aligned.
pub fn text(r: &Report) -> String {
    let mut rows = vec![headers()];
    rows.extend(table_rows(r).into_iter().map(|mut row| {
        row[0] = row[0].replace('`', "");
        row
    }));
    let cols = rows[0].len();
    let mut w = vec![0usize; cols];
    for row in &rows {
        for (k, c) in row.iter().enumerate() {
            w[k] = w[k].max(c.chars().count());
        }
    }
    let mut o = String::new();
    for row in &rows {
        let mut line = String::new();
        for (k, c) in row.iter().enumerate() {
            line.push_str(c);
            if k + 1 < cols {
                line.push_str(&" ".repeat(w[k] - c.chars().count() + 2));
            }
        }
        let _ = writeln!(o, "{}", line.trim_end());
    }
    o
}

/// A number for the CSV: shortest exact form, empty when unknown.
fn csv_num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        String::new()
    }
}

/// `sensitivity.csv`: a header, the baseline, then a row per parameter and end; per claim its
/// mean and whether it passed (`1`/`0`), in the baseline's claim order.
pub fn csv(r: &Report) -> String {
    let ids: Vec<&str> = r.baseline.claims.iter().map(|c| c.id.as_str()).collect();
    let mut header: Vec<String> = ["parameter", "symbol", "level", "value", "default", "unit"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    for (name, _, _) in r.baseline.headline.columns() {
        header.push(name.into());
        header.push(format!("{name}_change"));
    }
    for h in [
        "claims_passed",
        "claims_total",
        "claims_passed_change",
        "now_pass",
        "now_fail",
        "incomplete_runs",
    ] {
        header.push(h.into());
    }
    for id in &ids {
        header.push(format!("claim_{id}"));
        header.push(format!("pass_{id}"));
    }
    let line = |row: &Row, change: Option<&Varied>| -> Vec<String> {
        let info = r.parameters.iter().find(|p| p.key == row.parameter);
        let mut v = vec![
            row.parameter.clone(),
            row.symbol.clone(),
            row.level.name().into(),
            csv_num(row.value),
            info.map(|p| csv_num(p.default)).unwrap_or_default(),
            info.map(|p| p.unit.clone()).unwrap_or_default(),
        ];
        let d = change.map(|c| c.change.headline.columns());
        for (k, (_, _, x)) in row.headline.columns().iter().enumerate() {
            v.push(csv_num(*x));
            v.push(d.map(|d| csv_num(d[k].2)).unwrap_or_default());
        }
        v.push(row.passed.to_string());
        v.push(row.total.to_string());
        v.push(
            change
                .map(|c| c.change.passed.to_string())
                .unwrap_or_default(),
        );
        v.push(
            change
                .map(|c| c.change.now_pass.join(" "))
                .unwrap_or_default(),
        );
        v.push(
            change
                .map(|c| c.change.now_fail.join(" "))
                .unwrap_or_default(),
        );
        v.push(row.incomplete_runs.to_string());
        for id in &ids {
            match row.claim(id) {
                Some(c) => {
                    v.push(csv_num(c.mean));
                    v.push(if c.pass { "1".into() } else { "0".into() });
                }
                None => {
                    v.push(String::new());
                    v.push(String::new());
                }
            }
        }
        v
    };
    let mut w = ::csv::Writer::from_writer(Vec::new());
    let mut all = vec![header, line(&r.baseline, None)];
    all.extend(r.rows.iter().map(|v| line(&v.row, Some(v))));
    for rec in all {
        // Writing to memory cannot fail.
        let _ = w.write_record(&rec);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::super::*;
    use super::*;
    use crate::validate::checks::{Criterion, Item};

    fn item(id: &str, values: &[f64], pass: bool) -> Item {
        Item {
            id: id.into(),
            claim: String::new(),
            measure: String::new(),
            unit: String::new(),
            criterion: Criterion::Above { bound: 0.0 },
            published_point: None,
            source: String::new(),
            ordinal: false,
            values: values.to_vec(),
            passes: vec![pass; values.len()],
        }
    }

    fn check(items: Vec<Item>) -> Check {
        Check {
            number: 1,
            title: String::new(),
            protocols: Vec::new(),
            items,
        }
    }

    fn head(a: f64, g: f64, c3: f64, z: f64) -> Headline {
        Headline {
            activated_cell_days: a,
            course_papillary_gain_pct: g,
            col3_peak_gain_pct: c3,
            depth_centroid_change_um: z,
        }
    }

    /// A report of one parameter (ρ_cap) over a suite of three claims.
    fn report() -> Report {
        let p = params::find("density_cap").unwrap();
        let base = Row::new(
            None,
            Level::Baseline,
            f64::NAN,
            head(15.8, 30.0, 7.0, -54.0),
            &[check(vec![
                item("1.1", &[1.0, 2.0], true),
                item("3.1", &[-20.0, -30.0], false),
                item("5.1", &[7.0, 7.0], true),
            ])],
            0,
        );
        let low = Row::new(
            Some(p),
            Level::Low,
            1.5,
            head(10.0, 20.0, 5.0, -54.0),
            &[check(vec![
                item("1.1", &[1.0, 2.0], true),
                item("3.1", &[-20.0, -30.0], false),
                item("5.1", &[5.0, 5.0], false),
            ])],
            0,
        );
        let high = Row::new(
            Some(p),
            Level::High,
            6.0,
            head(25.0, 45.5, 12.0, 10.0),
            &[check(vec![
                item("1.1", &[1.0, 2.0], true),
                item("3.1", &[10.0, 12.0], true),
                item("5.1", &[12.0, 12.0], true),
            ])],
            1,
        );
        Report::build(
            "test",
            2,
            true,
            vec!["a".into()],
            1.0,
            &[p],
            base,
            vec![low, high],
        )
    }

    #[test]
    fn rows_count_claims_and_take_changes_against_the_baseline() {
        let r = report();
        assert_eq!((r.baseline.passed, r.baseline.total), (2, 3));
        assert_eq!(r.baseline.claim("1.1").unwrap().mean, 1.5);
        let low = &r.rows[0];
        assert_eq!(low.row.level, Level::Low);
        assert_eq!(low.row.passed, 1);
        assert_eq!(low.change.passed, -1);
        assert_eq!(low.change.now_fail, vec!["5.1".to_string()]);
        assert!(low.change.now_pass.is_empty());
        assert_eq!(low.change.headline, head(10.0 - 15.8, -10.0, -2.0, 0.0));
        let high = &r.rows[1];
        assert_eq!(high.change.passed, 1);
        assert_eq!(high.change.now_pass, vec!["3.1".to_string()]);
        assert_eq!(high.change.headline.depth_centroid_change_um, 64.0);
        assert_eq!(r.parameters[0].key, "model.fibroblasts.density_cap");
        assert_eq!(r.parameters[0].default, 3.0);
    }

    #[test]
    fn markdown_has_one_row_per_run_with_values_and_changes() {
        let md = markdown(&report());
        let rows: Vec<&str> = md.lines().filter(|l| l.starts_with("| ")).collect();
        assert_eq!(rows.len(), 4, "{md}");
        assert!(rows[0].starts_with("| parameter | level | value | activated-cell-days"));
        assert_eq!(
            rows[1],
            "| baseline (defaults) | baseline | — | 15.8 | 30 | 7 | -54 | 2/3 |  |"
        );
        assert_eq!(
            rows[2],
            "| ρ_cap `model.fibroblasts.density_cap` | low | 1.50 | 10 (-5.80) | 20 (-10) | \
             5 (-2) | -54 (0) | 1/3 (-1) | now fail 5.1 |"
        );
        assert_eq!(
            rows[3],
            "| ρ_cap `model.fibroblasts.density_cap` | high | 6 | 25 (+9.20) | 45.5 (+15.5) | \
             12 (+5) | 10 (+64) | 3/3 (+1) | now pass 3.1; 1 run(s) stopped early |"
        );
        assert!(md.contains("**Reduced run.**"));
        assert!(md.contains("- ρ_cap `model.fibroblasts.density_cap`: default 3; range 1.50–6"));
    }

    #[test]
    fn csv_has_a_column_per_claim_and_exact_numbers() {
        let text = csv(&report());
        let mut rd = ::csv::Reader::from_reader(text.as_bytes());
        let h = rd.headers().unwrap().clone();
        let col = |name: &str| h.iter().position(|x| x == name).unwrap();
        let recs: Vec<::csv::StringRecord> = rd.records().map(|r| r.unwrap()).collect();
        assert_eq!(recs.len(), 3);
        assert_eq!(&recs[0][col("level")], "baseline");
        assert_eq!(&recs[0][col("value")], "");
        assert_eq!(&recs[0][col("activated_cell_days_per_session_change")], "");
        assert_eq!(&recs[1][col("symbol")], "ρ_cap");
        assert_eq!(&recs[1][col("value")], "1.5");
        assert_eq!(&recs[1][col("default")], "3");
        assert_eq!(
            &recs[1][col("activated_cell_days_per_session_change")],
            format!("{}", 10.0 - 15.8)
        );
        assert_eq!(&recs[1][col("claims_passed_change")], "-1");
        assert_eq!(&recs[1][col("now_fail")], "5.1");
        assert_eq!(&recs[2][col("claim_3.1")], "11");
        assert_eq!(&recs[2][col("pass_3.1")], "1");
        assert_eq!(&recs[1][col("pass_5.1")], "0");
        assert_eq!(&recs[2][col("incomplete_runs")], "1");
    }

    #[test]
    fn console_table_is_aligned() {
        let t = text(&report());
        let lines: Vec<Vec<char>> = t.lines().map(|l| l.chars().collect()).collect();
        assert_eq!(lines.len(), 4);
        let at = |l: &[char], w: &str| {
            let w: Vec<char> = w.chars().collect();
            l.windows(w.len()).position(|x| x == w.as_slice()).unwrap()
        };
        let col = at(&lines[0], "level");
        assert_eq!(at(&lines[1], "baseline  "), col);
        assert_eq!(at(&lines[2], "low"), col);
        assert_eq!(at(&lines[3], "high"), col);
        assert!(t.contains("ρ_cap model.fibroblasts.density_cap"));
    }

    #[test]
    fn signs_are_explicit() {
        assert_eq!(signed(4.1), "+4.10");
        assert_eq!(signed(-3.7), "-3.70");
        assert_eq!(signed(0.0), "0");
        assert_eq!(signed(f64::NAN), "n/a");
    }
}
