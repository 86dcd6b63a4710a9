//! Sweeps: expansion, validation, determinism across thread counts, resume, shards and merge,
//! failure recording and the aggregate statistics. Every scenario is tiny (400 × 400 µm block
//! of 40 µm voxels, one session, 10 days of follow-up) so a run takes about a second.

use fibrosim::sweep::hash::run_seed;
use fibrosim::sweep::results::{stats, t975};
use fibrosim::sweep::{
    Combine, SweepError, SweepOptions, inject_failure, load_sweep, merge, run_sweep,
};
use std::path::{Path, PathBuf};

const BASE: &str = r#"
[base.tissue]
domain_um = [400, 400]
voxel_um = 40
[base.schedule]
sessions = 1
follow_up_days = 10
[base.output]
metric_days_after_last = [5, 10]
"#;

/// A fresh scratch directory for one test.
fn scratch(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fibrosim-sweep-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Writes a sweep file `<name>.toml` in `dir` with `head` before the inline base.
fn sweep_file(dir: &Path, name: &str, head: &str) -> PathBuf {
    let p = dir.join(format!("{name}.toml"));
    std::fs::write(&p, format!("{head}\n{BASE}")).unwrap();
    p
}

const TWO_BY_TWO: &str = r#"
replicates = 2
seed = 7
[[axis]]
key = "device.needle_length_mm"
values = [0.5, 1.5]
"#;

fn opts(out: &Path) -> SweepOptions {
    SweepOptions {
        out: Some(out.to_path_buf()),
        shard: None,
        force: false,
        quiet: true,
        charts: false,
    }
}

fn read(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn invalid(head: &str, name: &str) -> Vec<fibrosim::sweep::SweepIssue> {
    let d = scratch(name);
    let f = sweep_file(&d, name, head);
    match load_sweep(&f) {
        Err(SweepError::Invalid(v)) => {
            assert!(!v.is_empty());
            for i in &v {
                assert_eq!(i.file, f, "{i}");
            }
            v
        }
        Err(e) => panic!("expected located issues, got {e}"),
        Ok(_) => panic!("sweep `{name}` was accepted"),
    }
}

#[test]
fn grid_and_zip_expand_with_seeds_by_point_and_replicate() {
    let d = scratch("expand");
    let f = sweep_file(
        &d,
        "grid",
        r#"
replicates = 3
seed = 11
[[axis]]
key = "device.needle_length_mm"
values = [0.5, 1.0]
[[axis]]
key = "device.density_per_cm2"
range = { from = 100, to = 300, step = 100 }
"#,
    );
    let s = load_sweep(&f).unwrap();
    assert_eq!(s.combine, Combine::Grid);
    assert_eq!(s.points, 6);
    assert_eq!(s.runs().len(), 18);
    assert_eq!(
        s.axes[1].values,
        vec![
            toml::Value::Integer(100),
            toml::Value::Integer(200),
            toml::Value::Integer(300)
        ]
    );
    // First axis outermost: point 4 = (1.0, 200).
    let r = &s.runs()[4 * 3 + 2];
    assert_eq!((r.index, r.point, r.replicate), (14, 4, 2));
    assert_eq!(
        r.values,
        vec![toml::Value::Float(1.0), toml::Value::Integer(200)]
    );
    assert_eq!(r.scenario.device.needle_length_mm, 1.0);
    assert_eq!(r.scenario.device.density_per_cm2, 200.0);
    assert!(r.id.starts_with("0014-"));
    for r in s.runs() {
        assert_eq!(r.seed, run_seed(11, r.point, r.replicate));
        assert_eq!(r.scenario.seed, r.seed);
    }
    let mut seeds: Vec<u64> = s.runs().iter().map(|r| r.seed).collect();
    seeds.sort();
    seeds.dedup();
    assert_eq!(seeds.len(), 18, "seeds repeat");
    // Loading again gives the same runs (nothing depends on order or time).
    let again = load_sweep(&f).unwrap();
    assert_eq!(again.hash, s.hash);

    let z = sweep_file(
        &d,
        "zip",
        r#"
combine = "zip"
[[axis]]
key = "device.needle_length_mm"
values = [0.5, 1.0, 2.0]
[[axis]]
key = "schedule.follow_up_days"
range = { from = 10.0, to = 12.0, step = 1.0 }
"#,
    );
    let s = load_sweep(&z).unwrap();
    assert_eq!(s.points, 3);
    assert_eq!(s.runs().len(), 3);
    let last = &s.runs()[2];
    assert_eq!(last.scenario.device.needle_length_mm, 2.0);
    assert_eq!(last.scenario.schedule.follow_up_days, 12.0);
    assert_eq!(last.seed, run_seed(1, 2, 0));
}

#[test]
fn schedule_axes_replace_an_explicit_days_list() {
    let d = scratch("days");
    let p = d.join("s.toml");
    std::fs::write(
        &p,
        r#"
[[axis]]
key = "schedule.sessions"
values = [1, 2]
[base.tissue]
domain_um = [400, 400]
[base.schedule]
days = [0.0]
follow_up_days = 10
[base.output]
metric_days_after_last = [5]
"#,
    )
    .unwrap();
    // `days` together with `sessions` is refused by the scenario itself; the axis removes the
    // explicit list (as `to_toml` writes it) first.
    let s = load_sweep(&p).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(s.runs()[0].scenario.schedule.days, vec![0.0]);
    assert_eq!(s.runs()[1].scenario.schedule.days.len(), 2);
}

#[test]
fn unknown_key_path_is_located_with_a_suggestion() {
    let v = invalid(
        "[[axis]]\nkey = \"device.needle_lenght_mm\"\nvalues = [0.5]\n",
        "badkey",
    );
    assert_eq!(v[0].line, Some(2), "{}", v[0]);
    assert!(v[0].key.contains("needle_lenght_mm"), "{}", v[0]);
    assert!(v[0].message.contains("needle_length_mm"), "{}", v[0]);
}

#[test]
fn out_of_range_value_names_axis_and_point() {
    let v = invalid(
        "[[axis]]\nkey = \"device.needle_length_mm\"\nvalues = [1.0, 5.0]\n",
        "range",
    );
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].line, Some(2));
    assert_eq!(v[0].key, "device.needle_length_mm");
    assert!(v[0].message.contains("axis[0]"), "{}", v[0]);
    assert!(v[0].message.contains("point 1"), "{}", v[0]);
    assert!(v[0].message.contains("out of range"), "{}", v[0]);
}

#[test]
fn empty_grid_and_unequal_zip_are_refused() {
    let v = invalid(
        "[[axis]]\nkey = \"device.needle_length_mm\"\nvalues = []\n",
        "empty",
    );
    assert!(v[0].message.contains("grid is empty"), "{}", v[0]);
    assert_eq!(v[0].line, Some(2));
    let v = invalid("replicates = 2\n", "noaxis");
    assert!(v[0].message.contains("grid is empty"), "{}", v[0]);
    let v = invalid(
        "combine = \"zip\"\n[[axis]]\nkey = \"device.needle_length_mm\"\nvalues = [0.5, 1]\n\
         [[axis]]\nkey = \"device.density_per_cm2\"\nvalues = [100]\n",
        "zip",
    );
    assert!(v[0].message.contains("equal lengths"), "{}", v[0]);
    assert_eq!(v[0].line, Some(6));
    assert_eq!(v[0].key, "device.density_per_cm2");
}

#[test]
fn replicates_and_steps_out_of_range_are_refused() {
    let axis = "[[axis]]\nkey = \"device.needle_length_mm\"\nvalues = [1.0]\n";
    for bad in ["0", "1001"] {
        let v = invalid(&format!("replicates = {bad}\n{axis}"), "reps");
        assert_eq!((v[0].line, v[0].key.as_str()), (Some(1), "replicates"));
        assert!(v[0].message.contains("1–1000"), "{}", v[0]);
    }
    for step in ["0", "-0.5"] {
        let v = invalid(
            &format!(
                "[[axis]]\nkey = \"device.needle_length_mm\"\nrange = {{ from = 0.5, to = 1.0, step = {step} }}\n"
            ),
            "step",
        );
        assert_eq!(v[0].key, "axis[0].range.step");
        assert_eq!(v[0].line, Some(3));
        assert!(v[0].message.contains("must be > 0"), "{}", v[0]);
    }
    let v = invalid(&format!("replicate = 3\n{axis}"), "typo");
    assert_eq!(v[0].line, Some(1));
    assert!(
        v[0].message.contains("did you mean `replicates`"),
        "{}",
        v[0]
    );
}

#[test]
fn thread_count_does_not_change_results() {
    let d = scratch("threads");
    let f = sweep_file(&d, "threads", TWO_BY_TWO);
    let s = load_sweep(&f).unwrap();
    let mut outs = Vec::new();
    for threads in [1, 2] {
        let out = d.join(format!("t{threads}"));
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        let r = pool.install(|| run_sweep(&s, &opts(&out))).unwrap();
        assert_eq!((r.executed, r.failed), (4, 0));
        outs.push(out);
    }
    for f in ["summary.csv", "aggregate.csv"] {
        assert_eq!(read(&outs[0].join(f)), read(&outs[1].join(f)), "{f}");
    }
    let text = String::from_utf8(read(&outs[0].join("summary.csv"))).unwrap();
    let head = text.lines().next().unwrap();
    assert!(head.starts_with("run,id,status,device.needle_length_mm,replicate,seed,"));
    assert!(
        head.contains("collagen_gain_pct.papillary@last+10d"),
        "{head}"
    );
    assert_eq!(text.lines().count(), 5);
}

#[test]
fn resume_runs_only_what_is_missing() {
    let d = scratch("resume");
    let f = sweep_file(&d, "resume", TWO_BY_TWO);
    let s = load_sweep(&f).unwrap();
    let out = d.join("out");
    let first = run_sweep(&s, &opts(&out)).unwrap();
    assert_eq!((first.executed, first.skipped), (4, 0));
    let summary = read(&out.join("summary.csv"));
    let aggregate = read(&out.join("aggregate.csv"));
    let victim = &s.runs()[2].id;
    std::fs::remove_file(out.join("runs").join(victim).join("done.json")).unwrap();
    let second = run_sweep(&s, &opts(&out)).unwrap();
    assert_eq!((second.executed, second.skipped), (1, 3));
    assert_eq!(read(&out.join("summary.csv")), summary);
    assert_eq!(read(&out.join("aggregate.csv")), aggregate);
    let third = run_sweep(&s, &opts(&out)).unwrap();
    assert_eq!((third.executed, third.skipped), (0, 4));

    // The base changes: the old results are refused, then replaced with --force.
    std::fs::write(
        &f,
        format!("{TWO_BY_TWO}\n{}", BASE.replace("[400, 400]", "[400, 440]")),
    )
    .unwrap();
    let changed = load_sweep(&f).unwrap();
    match run_sweep(&changed, &opts(&out)) {
        Err(SweepError::Changed { dir, why }) => {
            assert!(dir.starts_with(out.join("runs")), "{}", dir.display());
            assert!(why.contains("scenario changed"), "{why}");
        }
        other => panic!("a changed scenario was not refused: {other:?}"),
    }
    let forced = run_sweep(
        &changed,
        &SweepOptions {
            force: true,
            ..opts(&out)
        },
    )
    .unwrap();
    assert_eq!(forced.executed, 4);
}

#[test]
fn shards_merge_to_the_single_machine_result() {
    let d = scratch("shards");
    let f = sweep_file(
        &d,
        "shards",
        r#"
replicates = 2
[[axis]]
key = "device.needle_length_mm"
values = [0.5, 1.5]
[[axis]]
key = "device.density_per_cm2"
values = [150, 300]
"#,
    );
    let s = load_sweep(&f).unwrap();
    let single = d.join("single");
    run_sweep(
        &s,
        &SweepOptions {
            charts: true,
            ..opts(&single)
        },
    )
    .unwrap();
    let sharded = d.join("sharded");
    for i in 0..2 {
        let r = run_sweep(
            &s,
            &SweepOptions {
                shard: Some((i, 2)),
                ..opts(&sharded)
            },
        )
        .unwrap();
        assert_eq!(r.executed, 4);
        assert!(sharded.join(format!("shard-{i}-of-2.json")).is_file());
    }
    let m = merge(&sharded).unwrap();
    assert_eq!(m.failed, 0);
    let mut names = vec!["summary.csv".to_string(), "aggregate.csv".to_string()];
    for stem in [
        "dose-device-needle_length_mm",
        "dose-device-density_per_cm2",
        "heatmap",
    ] {
        names.push(format!("charts/{stem}.svg"));
        names.push(format!("charts/{stem}.png"));
    }
    for n in &names {
        assert_eq!(read(&single.join(n)), read(&sharded.join(n)), "{n}");
    }
    // Missing shard: refused, naming it.
    let partial = d.join("partial");
    run_sweep(
        &s,
        &SweepOptions {
            shard: Some((0, 2)),
            ..opts(&partial)
        },
    )
    .unwrap();
    let e = merge(&partial).unwrap_err().to_string();
    assert!(e.contains("shard 1 of 2 is missing"), "{e}");
}

#[test]
fn a_failed_run_is_recorded_and_the_others_complete() {
    let d = scratch("failing");
    let f = sweep_file(&d, "failing-sweep", TWO_BY_TWO);
    let s = load_sweep(&f).unwrap();
    inject_failure("failing-sweep", 1);
    let out = d.join("out");
    let r = run_sweep(&s, &opts(&out)).unwrap();
    assert_eq!((r.executed, r.failed), (4, 1));
    let id = &s.runs()[1].id;
    assert_eq!(r.failed_ids, vec![id.clone()]);
    let failed = String::from_utf8(read(&out.join("runs").join(id).join("failed.json"))).unwrap();
    assert!(failed.contains("injected failure"), "{failed}");
    let summary = String::from_utf8(read(&out.join("summary.csv"))).unwrap();
    let statuses: Vec<&str> = summary
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap())
        .collect();
    assert_eq!(statuses, ["done", "failed", "done", "done"]);
    // The failed run's point aggregates one run.
    let agg = String::from_utf8(read(&out.join("aggregate.csv"))).unwrap();
    let n: Vec<&str> = agg
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(2).unwrap())
        .collect();
    assert_eq!(n, ["1", "2"]);
}

#[test]
fn aggregate_statistics_match_hand_computation() {
    // 1, 2, 3, 4: mean 2.5, sd √(5/3), CI t(0.975, 3) = 3.182 × sd / 2.
    let (n, mean, sd, ci) = stats(&[1.0, 2.0, 3.0, 4.0]);
    assert_eq!(n, 4);
    assert!((mean - 2.5).abs() < 1e-12);
    assert!((sd - 1.2909944487358056).abs() < 1e-12);
    assert!((ci - 3.182 * 1.2909944487358056 / 2.0).abs() < 1e-12);
    let (n, mean, sd, ci) = stats(&[5.0, f64::NAN]);
    assert_eq!(n, 1);
    assert_eq!(mean, 5.0);
    assert!(sd.is_nan() && ci.is_nan());
    assert_eq!(t975(2), 4.303);
    assert_eq!(t975(29), 2.045);

    // And in a real aggregate.csv: recompute point 0 from summary.csv.
    let d = scratch("aggregate");
    let f = sweep_file(
        &d,
        "agg",
        "replicates = 3\n[[axis]]\nkey = \"device.needle_length_mm\"\nvalues = [1.5]\n",
    );
    let s = load_sweep(&f).unwrap();
    let out = d.join("out");
    run_sweep(&s, &opts(&out)).unwrap();
    let col = "collagen_gain_pct.papillary@last+10d";
    let table = |name: &str| -> (Vec<String>, Vec<Vec<String>>) {
        let mut r = csv::Reader::from_path(out.join(name)).unwrap();
        let h = r.headers().unwrap().iter().map(String::from).collect();
        let rows = r
            .records()
            .map(|x| x.unwrap().iter().map(String::from).collect())
            .collect();
        (h, rows)
    };
    let (sh, srows) = table("summary.csv");
    let k = sh.iter().position(|h| h == col).unwrap();
    let v: Vec<f64> = srows.iter().map(|r| r[k].parse().unwrap()).collect();
    assert_eq!(v.len(), 3);
    let m = (v[0] + v[1] + v[2]) / 3.0;
    let sd = (((v[0] - m).powi(2) + (v[1] - m).powi(2) + (v[2] - m).powi(2)) / 2.0).sqrt();
    let ci = 4.303 * sd / 3f64.sqrt();
    let (ah, arows) = table("aggregate.csv");
    let get = |suffix: &str| -> f64 {
        let j = ah
            .iter()
            .position(|h| *h == format!("{col}.{suffix}"))
            .unwrap();
        arows[0][j].parse().unwrap()
    };
    assert_eq!(arows[0][ah.iter().position(|h| h == "n").unwrap()], "3");
    assert!((get("mean") - m).abs() <= 1e-12 * m.abs().max(1.0));
    assert!((get("sd") - sd).abs() <= 1e-12 * sd.max(1.0));
    assert!((get("ci95") - ci).abs() <= 1e-12 * ci.max(1.0));
}

#[test]
fn shipped_sweeps_are_valid() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/sweeps");
    for (file, runs) in [
        ("needle-depth.toml", 15),
        ("interval.toml", 15),
        ("sessions.toml", 18),
        ("depth-x-interval.toml", 36),
    ] {
        let s = load_sweep(&dir.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        assert_eq!(s.runs().len(), runs, "{file}");
        assert_eq!(s.replicates, 3, "{file}");
        assert!(s.describe().contains(&format!("{runs} runs")), "{file}");
    }
}
