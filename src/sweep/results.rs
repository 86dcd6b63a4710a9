//! The tables of a sweep, built only from the files of its run directories (so a single-machine
//! run and a merge of shards write byte-identical files).
//!
//! `summary.csv`: one row per run, by run index: `run`, `id`, `status` (`done` | `failed`), one
//! column per axis (named by its key path), `replicate`, `seed`, then every numeric metric of
//! the run's `summary.json` flattened with dots. Metrics at a chosen day carry the suffix
//! `@last+<d>d`, d days after the last session (e.g. `collagen_gain_pct.papillary@last+30d`), so
//! columns line up across points whose schedules differ; `day@last+<d>d` gives the absolute day.
//! Units are part of the metric names (`_pct`, `_um`, `_ug_per_mm2`, `_rel`, `_days…`).
//!
//! `aggregate.csv`: one row per point: `point`, the axis values, `n` (runs done), then for each
//! metric `<metric>.mean`, `<metric>.sd` (sample, n − 1) and `<metric>.ci95` (half-width of the
//! 95 % confidence interval of the mean, t(0.975, n − 1) · sd / √n). Empty cells: no value.
//!
//! Numbers are written in Rust's shortest round-trip form.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::SweepError;

/// What `sweep.json` records of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunEntry {
    /// Global run index.
    pub index: usize,
    /// Directory name under `runs/`.
    pub id: String,
    /// Point index.
    pub point: usize,
    /// Replicate.
    pub replicate: usize,
    /// Seed.
    pub seed: u64,
    /// Axis values as written in CSV files.
    pub values: Vec<String>,
    /// Hash of the resolved scenario.
    pub scenario_hash: String,
}

/// `sweep.json`: the expanded sweep, enough to rebuild every table without the sweep file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SweepFile {
    /// Sweep name.
    pub sweep: String,
    /// fibrosim version.
    pub version: String,
    /// Sweep hash.
    pub hash: String,
    /// `grid` or `zip`.
    pub combine: String,
    /// Replicates per point.
    pub replicates: usize,
    /// Base seed.
    pub seed: u64,
    /// Axis key paths.
    pub axes: Vec<String>,
    /// Every run.
    pub runs: Vec<RunEntry>,
}

/// The outcome of one run as read back from its directory.
#[derive(Debug, Clone, PartialEq)]
pub struct RunResult {
    /// `done` or `failed`.
    pub status: String,
    /// Flattened metrics (name, value), in `summary.json` order.
    pub metrics: Vec<(String, f64)>,
}

/// A metric day suffix: `@last+30d`.
fn day_tag(d: f64) -> String {
    format!("@last+{d}d")
}

fn flatten_into(prefix: &str, suffix: &str, v: &Value, out: &mut Vec<(String, f64)>) {
    match v {
        Value::Number(n) => {
            if let Some(x) = n.as_f64() {
                out.push((format!("{prefix}{suffix}"), x));
            }
        }
        Value::Null => out.push((format!("{prefix}{suffix}"), f64::NAN)),
        Value::Object(m) => {
            for (k, x) in m {
                let p = if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten_into(&p, suffix, x, out);
            }
        }
        _ => {}
    }
}

/// Flattens the `metrics` object of a `summary.json`.
pub fn flatten_metrics(summary: &Value) -> Vec<(String, f64)> {
    let mut out = Vec::new();
    let Some(Value::Object(m)) = summary.get("metrics") else {
        return out;
    };
    for (k, v) in m {
        if k == "at_days" {
            for day in v.as_array().into_iter().flatten() {
                let after = day
                    .get("days_after_last_session")
                    .and_then(Value::as_f64)
                    .unwrap_or(f64::NAN);
                let tag = day_tag(after);
                if let Value::Object(dm) = day {
                    for (dk, dv) in dm {
                        if dk != "days_after_last_session" {
                            flatten_into(dk, &tag, dv, &mut out);
                        }
                    }
                }
            }
        } else {
            flatten_into(k, "", v, &mut out);
        }
    }
    out
}

/// Metric columns in order of first appearance over runs taken by index.
pub fn metric_columns(results: &[Option<RunResult>]) -> Vec<String> {
    let mut cols: Vec<String> = Vec::new();
    let mut seen = std::collections::HashSet::new();
    for r in results.iter().flatten() {
        for (k, _) in &r.metrics {
            if seen.insert(k.clone()) {
                cols.push(k.clone());
            }
        }
    }
    cols
}

/// The headline metric: papillary collagen gain at the last metric day, if recorded.
pub fn headline(columns: &[String]) -> Option<String> {
    let prefix = "collagen_gain_pct.papillary@last+";
    columns
        .iter()
        .filter_map(|c| {
            let d: f64 = c.strip_prefix(prefix)?.strip_suffix('d')?.parse().ok()?;
            Some((d, c))
        })
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c.clone())
}

/// A number for CSV: shortest round-trip form; empty when not finite.
pub fn num(v: f64) -> String {
    if v.is_finite() {
        format!("{v}")
    } else {
        String::new()
    }
}

/// Two-sided 95 % quantile of Student's t for `df` degrees of freedom (t(0.975, df)); for df
/// between tabulated values the next lower one is used (a slightly wider, conservative interval).
pub fn t975(df: usize) -> f64 {
    const T: [f64; 30] = [
        12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160,
        2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056,
        2.052, 2.048, 2.045, 2.042,
    ];
    const TAIL: [(usize, f64); 6] = [
        (40, 2.021),
        (50, 2.009),
        (60, 2.000),
        (80, 1.990),
        (100, 1.984),
        (120, 1.980),
    ];
    match df {
        0 => f64::NAN,
        1..=30 => T[df - 1],
        _ if df >= 1000 => 1.962,
        _ => TAIL
            .iter()
            .rev()
            .find(|(d, _)| *d <= df)
            .map(|(_, t)| *t)
            .unwrap_or(2.042),
    }
}

/// Mean, sample standard deviation and 95 % CI half-width of the finite values.
pub fn stats(values: &[f64]) -> (usize, f64, f64, f64) {
    let v: Vec<f64> = values.iter().copied().filter(|x| x.is_finite()).collect();
    let n = v.len();
    if n == 0 {
        return (0, f64::NAN, f64::NAN, f64::NAN);
    }
    let mean = v.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return (1, mean, f64::NAN, f64::NAN);
    }
    let ss: f64 = v.iter().map(|x| (x - mean) * (x - mean)).sum();
    let sd = (ss / (n - 1) as f64).sqrt();
    (n, mean, sd, t975(n - 1) * sd / (n as f64).sqrt())
}

fn csv_bytes(rows: Vec<Vec<String>>) -> Result<Vec<u8>, SweepError> {
    let mut w = csv::Writer::from_writer(Vec::new());
    for r in rows {
        w.write_record(&r)
            .map_err(|e| SweepError::io(Path::new("summary.csv"), e))?;
    }
    w.into_inner()
        .map_err(|e| SweepError::io(Path::new("summary.csv"), e))
}

/// `summary.csv` bytes.
pub fn summary_csv(
    sf: &SweepFile,
    results: &[Option<RunResult>],
    columns: &[String],
) -> Result<Vec<u8>, SweepError> {
    let mut rows = Vec::with_capacity(sf.runs.len() + 1);
    let mut head: Vec<String> = vec!["run".into(), "id".into(), "status".into()];
    head.extend(sf.axes.iter().cloned());
    head.extend(["replicate".into(), "seed".into()]);
    head.extend(columns.iter().cloned());
    rows.push(head);
    for (e, r) in sf.runs.iter().zip(results) {
        let mut row = vec![
            e.index.to_string(),
            e.id.clone(),
            r.as_ref()
                .map(|r| r.status.clone())
                .unwrap_or_else(|| "missing".into()),
        ];
        row.extend(e.values.iter().cloned());
        row.extend([e.replicate.to_string(), e.seed.to_string()]);
        for c in columns {
            let v = r
                .as_ref()
                .and_then(|r| r.metrics.iter().find(|(k, _)| k == c))
                .map(|(_, v)| num(*v))
                .unwrap_or_default();
            row.push(v);
        }
        rows.push(row);
    }
    csv_bytes(rows)
}

/// Per point: its axis values and, per metric, the values of its done runs.
pub struct PointStats {
    /// Point index.
    pub point: usize,
    /// Axis values as text.
    pub values: Vec<String>,
    /// Runs done.
    pub n: usize,
    /// Per metric column: (n, mean, sd, ci95).
    pub metrics: Vec<(usize, f64, f64, f64)>,
    /// Per metric column: the finite values of the done runs, by run index.
    pub samples: Vec<Vec<f64>>,
}

/// Statistics of every point.
pub fn point_stats(
    sf: &SweepFile,
    results: &[Option<RunResult>],
    columns: &[String],
) -> Vec<PointStats> {
    let npoints = sf.runs.iter().map(|r| r.point + 1).max().unwrap_or(0);
    (0..npoints)
        .map(|p| {
            let mine: Vec<&RunResult> = sf
                .runs
                .iter()
                .zip(results)
                .filter(|(e, _)| e.point == p)
                .filter_map(|(_, r)| r.as_ref())
                .filter(|r| r.status == "done")
                .collect();
            let values = sf
                .runs
                .iter()
                .find(|e| e.point == p)
                .map(|e| e.values.clone())
                .unwrap_or_default();
            let samples: Vec<Vec<f64>> = columns
                .iter()
                .map(|c| {
                    mine.iter()
                        .filter_map(|r| r.metrics.iter().find(|(k, _)| k == c).map(|x| x.1))
                        .filter(|x| x.is_finite())
                        .collect()
                })
                .collect();
            PointStats {
                point: p,
                values,
                n: mine.len(),
                metrics: samples.iter().map(|v| stats(v)).collect(),
                samples,
            }
        })
        .collect()
}

/// `aggregate.csv` bytes.
pub fn aggregate_csv(
    sf: &SweepFile,
    points: &[PointStats],
    columns: &[String],
) -> Result<Vec<u8>, SweepError> {
    let mut head: Vec<String> = vec!["point".into()];
    head.extend(sf.axes.iter().cloned());
    head.push("n".into());
    for c in columns {
        head.extend([format!("{c}.mean"), format!("{c}.sd"), format!("{c}.ci95")]);
    }
    let mut rows = vec![head];
    for p in points {
        let mut row = vec![p.point.to_string()];
        row.extend(p.values.iter().cloned());
        row.push(p.n.to_string());
        for &(_, mean, sd, ci) in &p.metrics {
            row.extend([num(mean), num(sd), num(ci)]);
        }
        rows.push(row);
    }
    csv_bytes(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles() {
        assert_eq!(t975(1), 12.706);
        assert_eq!(t975(2), 4.303);
        assert_eq!(t975(45), 2.021);
        assert!(t975(0).is_nan());
    }

    #[test]
    fn flattening_tags_days() {
        let v: Value = serde_json::from_str(
            r#"{"metrics":{"at_days":[{"day":86.0,"days_after_last_session":30.0,
                "collagen_gain_pct":{"papillary":1.5}}],"erythema_days":2.0}}"#,
        )
        .unwrap();
        let f = flatten_metrics(&v);
        assert!(f.contains(&("collagen_gain_pct.papillary@last+30d".into(), 1.5)));
        assert!(f.contains(&("day@last+30d".into(), 86.0)));
        assert!(f.contains(&("erythema_days".into(), 2.0)));
        let cols: Vec<String> = f.into_iter().map(|x| x.0).collect();
        assert_eq!(
            headline(&cols).as_deref(),
            Some("collagen_gain_pct.papillary@last+30d")
        );
    }
}
