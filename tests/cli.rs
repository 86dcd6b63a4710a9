//! End-to-end tests of the `fibrosim` binary: files written by `run`, determinism across thread
//! counts, refusal to overwrite, exit codes and messages for bad scenarios, `check` on the
//! shipped scenarios, `init`, and `plot` / `report` from recorded files.
//!
//! Every test runs the real binary on a small block (400 × 400 µm, one session, 10 days) in
//! its own temporary directory, removed when the test ends.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A small scenario: one session, ten days, on a 20 × 20 voxel block.
const SMALL: &str = r#"name = "small"
seed = 1

[tissue]
site = "face_cheek"
domain_um = [400.0, 400.0]
voxel_um = 20.0

[schedule]
sessions = 1
follow_up_days = 10.0

[output]
metric_days_after_last = [5.0, 10.0]
snapshot_days = [5.0]
"#;

/// Every file a run with charts writes, relative to its directory.
const RUN_FILES: [&str; 9] = [
    "timeseries.csv",
    "global.csv",
    "profiles.csv",
    "sections.csv",
    "channels.csv",
    "summary.json",
    "manifest.json",
    "scenario.toml",
    "report.html",
];
const CHARTS: [&str; 6] = [
    "cascade", "collagen", "depth", "section", "needles", "cells",
];

/// A temporary directory unique to this process and test, removed on drop.
struct Temp(PathBuf);

impl Temp {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("fibrosim-cli-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Temp(dir)
    }

    fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }

    /// Writes `text` into `name` and returns its path.
    fn file(&self, name: &str, text: &str) -> PathBuf {
        let p = self.join(name);
        fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Runs the binary with `args` in `cwd`.
fn fibrosim(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fibrosim"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the fibrosim binary starts")
}

fn code(o: &Output) -> i32 {
    o.status.code().expect("exited, not killed")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// Runs `run` on `scenario` into `out` with extra flags and asserts success.
fn run_ok(t: &Temp, scenario: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "run",
        scenario.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ];
    args.extend_from_slice(extra);
    let o = fibrosim(&t.0, &args);
    assert_eq!(code(&o), 0, "run failed: {}", stderr(&o));
    o
}

/// Every file under `dir`, by path relative to it, with its bytes.
fn tree(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Vec<u8>>) {
        for e in fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(root, &p, out);
            } else {
                let rel = p.strip_prefix(root).unwrap().to_string_lossy().into_owned();
                out.insert(rel, fs::read(&p).unwrap());
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(dir, dir, &mut out);
    out
}

/// Entries of `dir` whose names start with a dot (staging or replaced results).
fn hidden_entries(dir: &Path) -> Vec<String> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect()
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

#[test]
fn run_writes_every_file_and_a_manifest() {
    let t = Temp::new("every-file");
    t.file("small.toml", SMALL);
    let out = t.join("out");
    let run = fibrosim(&t.0, &["run", "small.toml", "--out", "out"]);
    assert_eq!(code(&run), 0, "{}", stderr(&run));
    for f in RUN_FILES {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    for c in CHARTS {
        for ext in ["svg", "png"] {
            assert!(out.join(format!("charts/{c}.{ext}")).is_file(), "{c}.{ext}");
        }
    }
    let m = manifest(&out);
    assert_eq!(m["complete"], true);
    assert_eq!(m["seed"], 1);
    assert!(m["threads"].as_u64().unwrap() >= 1);
    assert!(m["wall_seconds"].as_f64().unwrap() > 0.0);
    let named = fs::read_to_string("/proc/cpuinfo").is_ok_and(|c| c.contains("model name"));
    assert_eq!(m["machine"].is_string(), named, "machine: {}", m["machine"]);
    assert!(m["work_treated"]["active_steps"].as_u64().unwrap() > 0);
    assert!(m["work_control"].is_object());
    assert!(
        m["scenario"]
            .as_str()
            .unwrap()
            .contains("domain_um = [400.0, 400.0]")
    );
    let cmd: Vec<&str> = m["command_line"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(&cmd[1..], ["run", "small.toml", "--out", "out"]);
    // The recorded scenario is the resolved one, and valid on its own.
    let o = fibrosim(&t.0, &["check", "out/scenario.toml"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    // The summary names the directory and the gains with their unit.
    let text = stdout(&run);
    assert!(
        text.contains("out") && text.contains("papillary +"),
        "{text}"
    );
    assert!(text.contains(" %"), "{text}");
    assert!(
        hidden_entries(&t.0).is_empty(),
        "{:?}",
        hidden_entries(&t.0)
    );
}

#[test]
fn thread_count_does_not_change_any_file_but_the_manifest() {
    let t = Temp::new("threads");
    let s = t.file("small.toml", SMALL);
    let (a, b) = (t.join("one"), t.join("two"));
    run_ok(&t, &s, &a, &["--threads", "1"]);
    run_ok(&t, &s, &b, &["--threads", "2"]);
    let (ta, tb) = (tree(&a), tree(&b));
    let names_a: Vec<&String> = ta.keys().collect();
    let names_b: Vec<&String> = tb.keys().collect();
    assert_eq!(names_a, names_b);
    assert!(
        ta.keys().any(|k| k.ends_with(".svg")),
        "charts compared too"
    );
    for (name, bytes) in &ta {
        if name == "manifest.json" {
            continue;
        }
        assert!(bytes == &tb[name], "{name} differs between 1 and 2 threads");
    }
    assert_eq!(manifest(&a)["threads"], 1);
    assert_eq!(manifest(&b)["threads"], 2);
}

#[test]
fn existing_output_is_replaced_only_with_force() {
    let t = Temp::new("force");
    let s = t.file("small.toml", SMALL);
    let out = t.join("out");
    run_ok(&t, &s, &out, &["--no-charts"]);
    let before = tree(&out);

    let o = fibrosim(
        &t.0,
        &[
            "run",
            "small.toml",
            "--out",
            "out",
            "--quiet",
            "--no-charts",
        ],
    );
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    assert_eq!(tree(&out), before, "the first result was touched");

    let o = fibrosim(
        &t.0,
        &[
            "run",
            "small.toml",
            "--out",
            "out",
            "--quiet",
            "--no-charts",
            "--force",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let after = manifest(&out);
    assert!(
        after["command_line"]
            .as_array()
            .unwrap()
            .contains(&"--force".into()),
        "the new result is in place"
    );
    assert!(
        hidden_entries(&t.0).is_empty(),
        "{:?}",
        hidden_entries(&t.0)
    );
}

#[test]
fn a_different_seed_changes_the_channels() {
    let t = Temp::new("seed");
    let s = t.file("small.toml", SMALL);
    let (a, b) = (t.join("a"), t.join("b"));
    run_ok(&t, &s, &a, &["--no-charts"]);
    run_ok(&t, &s, &b, &["--no-charts", "--seed", "7"]);
    let (ca, cb) = (
        fs::read(a.join("channels.csv")).unwrap(),
        fs::read(b.join("channels.csv")).unwrap(),
    );
    assert_ne!(ca, cb);
    assert_eq!(manifest(&b)["seed"], 7);
    let toml = fs::read_to_string(b.join("scenario.toml")).unwrap();
    assert!(
        toml.contains("seed = 7"),
        "the resolved scenario records the seed"
    );
}

/// Runs a bad scenario without `--out` and checks the exit code, the located message and that
/// nothing was created.
fn assert_bad_scenario(test: &str, text: &str, expected: &[&str]) {
    let t = Temp::new(test);
    t.file("bad.toml", text);
    let o = fibrosim(&t.0, &["run", "bad.toml"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    let err = stderr(&o);
    for e in expected {
        assert!(err.contains(e), "`{e}` not in: {err}");
    }
    let mut entries: Vec<String> = fs::read_dir(&t.0)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries, ["bad.toml"], "no output folder, no staging dir");
}

#[test]
fn unknown_key_exits_2_with_location_and_no_output() {
    let text = SMALL.replace("voxel_um = 20.0", "voxel_um = 20.0\nvoxel_size = 20.0");
    assert_bad_scenario("unknown-key", &text, &["bad.toml:8", "tissue.voxel_size"]);
}

#[test]
fn out_of_range_value_exits_2_with_location_and_no_output() {
    let text = SMALL.replace("follow_up_days = 10.0", "follow_up_days = 99999.0");
    assert_bad_scenario(
        "out-of-range",
        &text,
        &["bad.toml:11", "schedule.follow_up_days"],
    );
}

#[test]
fn toml_syntax_error_exits_2_with_location_and_no_output() {
    let text = SMALL.replace("sessions = 1", "sessions = = 1");
    assert_bad_scenario("syntax", &text, &["bad.toml:10", "syntax"]);
}

#[test]
fn check_accepts_every_shipped_scenario() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<String> = fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    files.sort();
    for name in ["default", "control", "pen", "roller", "stamp", "custom"] {
        assert!(
            files.iter().any(|f| f.ends_with(&format!("/{name}.toml"))),
            "{name}.toml is shipped"
        );
    }
    let mut args = vec!["check"];
    args.extend(files.iter().map(String::as_str));
    let o = fibrosim(&dir, &args);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    assert_eq!(
        out.lines().filter(|l| l.starts_with("ok: ")).count(),
        files.len()
    );
    assert!(out.contains("voxels") && out.contains("MiB"), "{out}");
}

#[test]
fn check_reports_each_file_and_fails_if_any_is_bad() {
    let t = Temp::new("check-mixed");
    t.file("good.toml", SMALL);
    t.file("bad.toml", &SMALL.replace("sessions = 1", "sessions = -1"));
    let o = fibrosim(&t.0, &["check", "good.toml", "bad.toml"]);
    assert_eq!(code(&o), 2);
    assert!(stdout(&o).contains("ok: good.toml"), "{}", stdout(&o));
    assert!(stderr(&o).contains("bad.toml:10"), "{}", stderr(&o));
}

#[test]
fn check_names_the_grid_of_the_signals() {
    let t = Temp::new("check-signals");
    t.file("voxels.toml", SMALL);
    t.file(
        "coarse.toml",
        &format!("{SMALL}\n[numerics]\nsignal_voxel_um = 50.0\n"),
    );
    let o = fibrosim(&t.0, &["check", "voxels.toml", "coarse.toml"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let out = stdout(&o);
    let line = |f: &str| out.lines().find(|l| l.contains(f)).unwrap().to_string();
    assert!(
        line("voxels.toml").contains("P/T/C on the voxel grid"),
        "{out}"
    );
    // 400 µm across in 8 cells, 1600 µm deep in 32.
    let coarse = line("coarse.toml");
    assert!(
        coarse.contains("P/T/C on a 8 × 8 × 32 grid of 50 µm"),
        "{out}"
    );
    assert!(coarse.contains("fewer myofibroblasts"), "{out}");
}

#[test]
fn init_writes_a_template_that_check_accepts() {
    let t = Temp::new("init");
    let o = fibrosim(&t.0, &["init", "mine.toml"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    let o = fibrosim(&t.0, &["check", "mine.toml"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(stdout(&o).contains("ok: mine.toml"));

    fs::write(t.join("mine.toml"), "# mine\n").unwrap();
    let o = fibrosim(&t.0, &["init", "mine.toml"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("--force"), "{}", stderr(&o));
    assert_eq!(fs::read_to_string(t.join("mine.toml")).unwrap(), "# mine\n");
    let o = fibrosim(&t.0, &["init", "mine.toml", "--force"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_ne!(fs::read_to_string(t.join("mine.toml")).unwrap(), "# mine\n");
}

#[test]
fn plot_and_report_redraw_identically_from_recorded_files() {
    let t = Temp::new("plot");
    let s = t.file("small.toml", SMALL);
    let out = t.join("out");
    run_ok(&t, &s, &out, &[]);
    let charts = out.join("charts");
    let svgs: BTreeMap<String, Vec<u8>> = tree(&charts)
        .into_iter()
        .filter(|(k, _)| k.ends_with(".svg"))
        .collect();
    assert_eq!(svgs.len(), CHARTS.len());
    let report = fs::read(out.join("report.html")).unwrap();
    fs::remove_dir_all(&charts).unwrap();
    fs::remove_file(out.join("report.html")).unwrap();

    let o = fibrosim(&t.0, &["plot", "out", "--format", "svg"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(tree(&charts), svgs, "re-drawn SVGs differ from the run's");

    let o = fibrosim(&t.0, &["report", "out"]);
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert_eq!(fs::read(out.join("report.html")).unwrap(), report);

    let o = fibrosim(
        &t.0,
        &[
            "plot",
            "out",
            "--only",
            "needles,cells",
            "--format",
            "png",
            "--size",
            "800x500",
        ],
    );
    assert_eq!(code(&o), 0, "{}", stderr(&o));
    assert!(charts.join("needles.png").is_file() && charts.join("cells.png").is_file());
    assert!(!charts.join("cascade.png").exists());

    let o = fibrosim(&t.0, &["plot", "out", "--only", "histogram"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
}

#[test]
fn plot_names_a_corrupt_file_and_a_missing_directory() {
    let t = Temp::new("corrupt");
    let s = t.file("small.toml", SMALL);
    let out = t.join("out");
    run_ok(&t, &s, &out, &["--no-charts"]);
    fs::write(out.join("profiles.csv"), "arm,day\ntreated,not-a-number\n").unwrap();
    let o = fibrosim(&t.0, &["plot", "out"]);
    assert_eq!(code(&o), 2, "{}", stderr(&o));
    assert!(stderr(&o).contains("profiles.csv"), "{}", stderr(&o));

    let o = fibrosim(&t.0, &["plot", "nowhere"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("nowhere"), "{}", stderr(&o));
}

#[test]
fn usage_errors_exit_2_and_help_documents_exit_codes() {
    let t = Temp::new("usage");
    let o = fibrosim(&t.0, &["run"]);
    assert_eq!(code(&o), 2);
    let o = fibrosim(&t.0, &["run", "x.toml", "--threads", "0"]);
    assert_eq!(code(&o), 2);
    let o = fibrosim(&t.0, &["frobnicate"]);
    assert_eq!(code(&o), 2);
    let o = fibrosim(&t.0, &["--help"]);
    assert_eq!(code(&o), 0);
    let help = stdout(&o);
    assert!(
        help.contains("Exit codes") && help.contains("2  bad input"),
        "{help}"
    );
    let o = fibrosim(&t.0, &["run", "missing.toml"]);
    assert_eq!(code(&o), 2);
    assert!(stderr(&o).contains("missing.toml"), "{}", stderr(&o));
}
