//! "Never lose a result": interruptions (SIGINT keeps valid, incomplete results; SIGKILL never
//! leaves a torn file or a half-filled final directory), numerical guards (a NaN is caught,
//! named and the results so far kept), checkpoints (a restored simulation evolves bit for bit
//! like the original; `resume` gives the files of an uninterrupted run; damaged checkpoints are
//! refused) and resource estimates (a run or sweep that does not fit is refused or throttled).
//!
//! Scenarios are tiny (300 × 300 µm, one session, a few days) so that each test takes seconds.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use fibrosim::app;
use fibrosim::cli::Cli;
use fibrosim::guard::{self, Resources};
use fibrosim::run::{self, hooks};
use fibrosim::scenario;
use fibrosim::sim::checkpoint::{self, Reader, Writer};
use fibrosim::sim::{Arm, Simulation};

fn tiny(name: &str, days: f64) -> String {
    format!(
        r#"name = "{name}"
seed = 3

[tissue]
site = "face_cheek"
domain_um = [300.0, 300.0]
voxel_um = 20.0

[schedule]
sessions = 1
follow_up_days = {days:.1}

[output]
metric_days_after_last = [4.0]
snapshot_days = [3.0]
"#
    )
}

/// A temporary directory, removed on drop.
struct Temp(PathBuf);

impl Temp {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("fibrosim-rob-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Temp(dir)
    }
    fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
    fn scenario(&self, name: &str, days: f64) -> PathBuf {
        let p = self.join(&format!("{name}.toml"));
        fs::write(&p, tiny(name, days)).unwrap();
        p
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Runs a command line in this process.
fn cli(args: &[&str]) -> Result<(), app::AppError> {
    let mut v = vec!["fibrosim"];
    v.extend_from_slice(args);
    app::execute(Cli::try_parse_from(v).expect("valid command line"))
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn manifest(dir: &Path) -> serde_json::Value {
    serde_json::from_slice(&fs::read(dir.join("manifest.json")).unwrap()).unwrap()
}

/// Every file of `a` except manifest.json equals its namesake in `b`, and both hold the same
/// files.
fn same_outputs(a: &Path, b: &Path) {
    let names = |d: &Path| {
        let mut v: Vec<String> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n != "manifest.json")
            .collect();
        v.sort();
        v
    };
    assert_eq!(names(a), names(b));
    for n in names(a) {
        let (pa, pb) = (a.join(&n), b.join(&n));
        if pa.is_dir() {
            same_outputs(&pa, &pb);
        } else {
            assert!(
                fs::read(&pa).unwrap() == fs::read(&pb).unwrap(),
                "{n} differs between {} and {}",
                a.display(),
                b.display()
            );
        }
    }
}

/// Whether a file left by a run parses completely.
fn parses(path: &Path) -> Result<(), String> {
    let bytes = fs::read(path).map_err(|e| e.to_string())?;
    let name = path.file_name().unwrap().to_string_lossy().into_owned();
    if name.ends_with(".csv") {
        let mut r = csv::Reader::from_reader(&bytes[..]);
        let n = r.headers().map_err(|e| e.to_string())?.len();
        for rec in r.records() {
            let rec = rec.map_err(|e| e.to_string())?;
            if rec.len() != n {
                return Err("short row".into());
            }
        }
        Ok(())
    } else if name.ends_with(".json") {
        serde_json::from_slice::<serde_json::Value>(&bytes)
            .map(|_| ())
            .map_err(|e| e.to_string())
    } else if name == "checkpoint.bin" {
        run::decode_checkpoint(&bytes, path).map(|_| ())
    } else if name.ends_with(".toml") {
        scenario::parse(
            std::str::from_utf8(&bytes).map_err(|e| e.to_string())?,
            path,
        )
        .map(|_| ())
        .map_err(|e| e.to_string())
    } else if name.ends_with(".html") {
        let t = String::from_utf8(bytes).map_err(|e| e.to_string())?;
        if t.trim_end().ends_with("</html>") {
            Ok(())
        } else {
            Err("no closing </html>".into())
        }
    } else {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// checkpoints

/// Equal state bytes, or a failure naming the first differing offset (not the whole state).
fn same_state(a: &Simulation, b: &Simulation, what: &str) {
    let (x, y) = (a.state_bytes(), b.state_bytes());
    if x != y {
        let at = x
            .iter()
            .zip(&y)
            .position(|(p, q)| p != q)
            .unwrap_or(x.len().min(y.len()));
        panic!(
            "{what}: states differ at byte {at} of {} / {}",
            x.len(),
            y.len()
        );
    }
}

#[test]
fn restored_simulation_steps_bit_for_bit_like_the_original() {
    // On the voxel grid, and with P, T and C on a coarser signal grid: 6 × 6 × 32 cells of the
    // face's 1600-µm depth, and 6 × 6 × 29 cells reaching 30 µm below the forehead's 1420 µm.
    let grid = "\n[numerics]\nsignal_voxel_um = 50.0\n";
    for (site, numerics, layers) in [
        ("face_cheek", "", 80),
        ("face_cheek", grid, 32),
        ("forehead", grid, 29),
    ] {
        let text = format!("{}{numerics}", tiny("roundtrip", 8.0))
            .replace("site = \"face_cheek\"", &format!("site = \"{site}\""));
        let sc = scenario::parse(&text, Path::new("roundtrip.toml")).unwrap();
        assert_eq!(
            Simulation::new(&sc, Arm::Treated).fields.sg.nz,
            layers,
            "{site}"
        );
        restored_steps_like_the_original(&sc);
    }
}

fn restored_steps_like_the_original(sc: &scenario::Scenario) {
    let sc = sc.clone();
    for arm in [Arm::Treated, Arm::Control] {
        let mut a = Simulation::new(&sc, arm);
        // Fresh, just after the session (everything live), in the inflammatory phase, during
        // proliferation, and late (quiet fast-forward).
        let ticks = [
            0,
            1,
            5,
            a.tick_of_day(1.0),
            a.tick_of_day(3.0),
            a.tick_of_day(7.0),
        ];
        for t in ticks {
            a.advance_to(t.max(a.tick));
            let mut w = Writer::default();
            a.save_state(&mut w);
            let mut b = Simulation::restore_state(&sc, &mut Reader::new(&w.buf)).unwrap();
            let what = format!("{arm:?} restored at tick {}", a.tick);
            same_state(&a, &b, &what);
            // An odd number of ticks, so that later saves fall between slow-clock boundaries.
            let target = a.tick + 41;
            a.advance_to(target);
            b.advance_to(target);
            same_state(&a, &b, &format!("{what}, stepped to {target}"));
        }
    }
}

#[test]
fn resume_gives_the_files_of_an_uninterrupted_run() {
    let t = Temp::new("resume");
    let f = t.scenario("resume", 6.0);
    let (full, part) = (t.join("full"), t.join("part"));
    cli(&["run", s(&f), "--out", s(&full), "-q", "--no-charts"]).unwrap();
    hooks::stop_after_checkpoints("resume", 1);
    let e = cli(&[
        "run",
        s(&f),
        "--out",
        s(&part),
        "-q",
        "--no-charts",
        "--checkpoint-every-days",
        "2",
    ])
    .unwrap_err();
    assert_eq!(e.exit_code(), 1, "{}", e.message());
    assert!(e.message().contains("fibrosim resume"), "{}", e.message());
    let m = manifest(&part);
    assert_eq!(m["complete"], false);
    let day = m["stopped_at_day"].as_f64().unwrap();
    assert!((2.0..6.0).contains(&day), "stopped at day {day}");
    assert!(part.join("checkpoint.bin").is_file());
    for e in fs::read_dir(&part).unwrap() {
        parses(&e.unwrap().path()).unwrap();
    }
    cli(&["resume", s(&part), "-q", "--no-charts"]).unwrap();
    let m = manifest(&part);
    assert_eq!(m["complete"], true);
    assert_eq!(m["resumed_from_checkpoint"], true);
    assert!(!part.join("checkpoint.bin").exists());
    same_outputs(&full, &part);
}

#[test]
fn damaged_or_foreign_checkpoints_are_refused() {
    let t = Temp::new("damaged");
    let f = t.scenario("damaged", 5.0);
    let part = t.join("part");
    hooks::stop_after_checkpoints("damaged", 1);
    cli(&[
        "run",
        s(&f),
        "--out",
        s(&part),
        "-q",
        "--no-charts",
        "--checkpoint-every-days",
        "1",
    ])
    .unwrap_err();
    let good = fs::read(part.join("checkpoint.bin")).unwrap();
    let (_, payload) = run::decode_checkpoint(&good, &part).unwrap();
    let payload = payload.to_vec();
    let resign = |mut body: Vec<u8>| {
        body.truncate(body.len() - 8);
        let sum = checkpoint::fnv1a64(&body);
        body.extend_from_slice(&sum.to_le_bytes());
        body
    };
    let mut flipped = good.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 0x10;
    let next = checkpoint::FORMAT_VERSION + 1;
    let mut v2 = good.clone();
    v2[13..17].copy_from_slice(&next.to_le_bytes());
    let v2 = resign(v2);
    let next_msg = format!("format version {next}");
    let mut old = Writer::default();
    old.buf.extend_from_slice(checkpoint::MAGIC);
    old.u32(checkpoint::FORMAT_VERSION);
    old.str("0.0.1");
    old.u64(0);
    old.bytes(&payload);
    old.u64(0);
    let old = resign(old.buf);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("truncated", good[..good.len() / 3].to_vec(), "truncated"),
        ("bit-flipped", flipped, "checksum"),
        ("next format", v2, next_msg.as_str()),
        ("old version", old, "fibrosim 0.0.1"),
        ("text", b"FIBROSIM?".to_vec(), "not a fibrosim checkpoint"),
        ("empty", Vec::new(), "not a fibrosim checkpoint"),
    ];
    for (what, bytes, expect) in cases {
        fs::write(part.join("checkpoint.bin"), &bytes).unwrap();
        let e = cli(&["resume", s(&part), "-q", "--no-charts"]).unwrap_err();
        let msg = e.message();
        assert_eq!(e.exit_code(), 2, "{what}: {msg}");
        assert!(msg.contains("checkpoint.bin"), "{what}: {msg}");
        assert!(msg.contains(expect), "{what}: {msg}");
        // The refused run's results are untouched.
        assert_eq!(manifest(&part)["complete"], false, "{what}");
    }
}

// ---------------------------------------------------------------------------------------------
// numerical guards

#[test]
fn a_nan_is_caught_named_and_the_results_so_far_kept() {
    let t = Temp::new("nan");
    for (name, field, keys) in [
        ("nanp", "pdgf", "model.signals.pdgf_*"),
        (
            "nanc",
            "collagen",
            "model.fibroblasts.synthesis_pg_per_cell_day",
        ),
    ] {
        let f = t.scenario(name, 5.0);
        let out = t.join(name);
        hooks::inject_nan(name, field, 2.0);
        let e = cli(&["run", s(&f), "--out", s(&out), "-q", "--no-charts"]).unwrap_err();
        let msg = e.message();
        assert_eq!(e.exit_code(), 1, "{msg}");
        for needle in [
            field,
            "voxel (x ",
            "µm",
            "step ",
            "(day 2",
            keys,
            "non-finite",
        ] {
            assert!(msg.contains(needle), "`{needle}` missing from: {msg}");
        }
        let m = manifest(&out);
        assert_eq!(m["complete"], false);
        assert!(m["error"].as_str().unwrap().contains(field));
        let day = m["stopped_at_day"].as_f64().unwrap();
        assert!((2.0..3.0).contains(&day), "stopped at {day}");
        for e in fs::read_dir(&out).unwrap() {
            parses(&e.unwrap().path()).unwrap();
        }
        let global = fs::read_to_string(out.join("global.csv")).unwrap();
        assert!(
            global.lines().count() > 10,
            "the samples before the NaN are kept"
        );
        assert!(
            !global.contains("NaN"),
            "no sample of the bad state is written"
        );
    }
}

#[test]
fn guards_name_every_kind_of_state() {
    let sc = scenario::parse(&tiny("kinds", 4.0), Path::new("kinds.toml")).unwrap();
    let base = Simulation::new(&sc, Arm::Treated);
    guard::check_state(&base).unwrap();
    let i = base.geom.idx(3, 4, 10);
    type Poke = fn(&mut Simulation, usize);
    let pokes: [(&str, Poke); 6] = [
        ("tgfb", |s, i| s.fields.t[i] = f32::INFINITY),
        ("protease", |s, i| s.fields.c[i] = -1.0),
        ("collagen (III)", |s, i| s.matrix.col3[i] = f64::NAN),
        ("fibrin", |s, i| s.matrix.fibrin[i] = f64::NEG_INFINITY),
        ("cell position", |s, _| s.cells.pos[7][2] = f64::NAN),
        ("epidermis", |s, _| s.epidermis[5] = f64::NAN),
    ];
    for (field, poke) in pokes {
        let mut sim = Simulation::new(&sc, Arm::Treated);
        poke(&mut sim, i);
        let e = guard::check_state(&sim).unwrap_err();
        assert_eq!(e.field, field);
        assert!(!e.keys.is_empty(), "{field}");
        if !matches!(field, "cell position" | "epidermis") {
            assert_eq!(e.voxel, [3, 4, 10]);
            assert_eq!(e.at_um, [70.0, 90.0, 210.0]);
        }
        let text = e.to_string();
        assert!(text.contains(field) && text.contains("treated"), "{text}");
    }
    // On a coarser signal grid the guard reads P, T and C as the outputs do, prolonged to the
    // voxels at each sample.
    let text = format!(
        "{}\n[numerics]\nsignal_voxel_um = 50.0\n",
        tiny("kinds", 4.0)
    );
    let sc = scenario::parse(&text, Path::new("kinds.toml")).unwrap();
    let mut sim = Simulation::new(&sc, Arm::Treated);
    assert!(
        sim.fields.t.len() < sim.geom.voxels(),
        "not on a coarser grid"
    );
    sim.fields.t[40] = f32::NAN;
    sim.fields.refresh_outputs();
    assert_eq!(guard::check_state(&sim).unwrap_err().field, "tgfb");
}

// ---------------------------------------------------------------------------------------------
// interruptions (the real binary)

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fibrosim"))
}

/// Hidden staging folders (`.<name>.partial-<pid>`) in `dir`.
fn staging_dirs(dir: &Path) -> Vec<PathBuf> {
    fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .contains(".partial-")
        })
        .collect()
}

#[test]
fn sigint_stops_cleanly_and_the_run_resumes() {
    let t = Temp::new("sigint");
    let f = t.scenario("sigint", 30.0);
    let (full, part) = (t.join("full"), t.join("part"));
    let st = binary()
        .args(["run", s(&f), "--out", s(&full), "-q", "--no-charts"])
        .status()
        .unwrap();
    assert!(st.success());
    let child = binary()
        .args(["run", s(&f), "--out", s(&part), "-q", "--no-charts"])
        .args(["--checkpoint-every-days", "2"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Wait for the first checkpoint, then interrupt.
    let t0 = Instant::now();
    while !staging_dirs(&t.0)
        .iter()
        .any(|d| d.join("checkpoint.bin").exists())
    {
        assert!(t0.elapsed() < Duration::from_secs(60), "no checkpoint");
        std::thread::sleep(Duration::from_millis(20));
    }
    // SAFETY: sending a signal to our own child process.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("stopped at day"), "{err}");
    let m = manifest(&part);
    assert_eq!(m["complete"], false);
    assert!(m["stopped_at_day"].as_f64().unwrap() < 30.0);
    for e in fs::read_dir(&part).unwrap() {
        parses(&e.unwrap().path()).unwrap();
    }
    assert!(staging_dirs(&t.0).is_empty());
    let st = binary()
        .args(["resume", s(&part), "-q", "--no-charts"])
        .status()
        .unwrap();
    assert!(st.success());
    same_outputs(&full, &part);
}

#[test]
fn sigkill_never_leaves_a_torn_file_and_the_staging_folder_resumes() {
    let t = Temp::new("sigkill");
    let f = t.scenario("sigkill", 30.0);
    let full = t.join("full");
    let st = binary()
        .args(["run", s(&f), "--out", s(&full), "-q"])
        .status()
        .unwrap();
    assert!(st.success());
    let mut resumed = false;
    for (k, delay_ms) in [30u64, 400, 1200, 2500].into_iter().enumerate() {
        let out = t.join(&format!("k{k}"));
        let mut child = binary()
            .args(["run", s(&f), "--out", s(&out), "-q"])
            .args(["--checkpoint-every-days", "1"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        child.kill().unwrap();
        child.wait().unwrap();
        // The final directory is absent or complete, never half-filled.
        if out.exists() {
            assert_eq!(manifest(&out)["complete"], true, "k{k}");
            for e in fs::read_dir(&out).unwrap() {
                let p = e.unwrap().path();
                if p.is_file() {
                    parses(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
                }
            }
        }
        // Every file in a staging folder is complete, or a hidden temporary of an atomic write.
        for d in staging_dirs(&t.0) {
            for e in fs::read_dir(&d).unwrap() {
                let p = e.unwrap().path();
                let name = p.file_name().unwrap().to_string_lossy().into_owned();
                if name.contains(".tmp-") || p.is_dir() {
                    continue;
                }
                parses(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
            }
            if !resumed && d.join("checkpoint.bin").is_file() {
                let st = binary().args(["resume", s(&d), "-q"]).status().unwrap();
                assert!(st.success());
                assert!(!d.exists(), "the staging folder is removed once resumed");
                same_outputs(&full, &out);
                resumed = true;
            } else {
                fs::remove_dir_all(&d).unwrap();
            }
        }
    }
    assert!(resumed, "no kill left a checkpoint to resume from");
}

// ---------------------------------------------------------------------------------------------
// resources

#[test]
fn runs_that_do_not_fit_are_refused_with_the_estimate() {
    let sc = scenario::parse(&tiny("fit", 8.0), Path::new("fit.toml")).unwrap();
    let need = Resources::of(&sc, true);
    assert!(need.memory_bytes > 1 << 20 && need.disk_bytes > 1 << 20);
    assert!(Resources::of(&sc, false).disk_bytes < need.disk_bytes);
    let dir = Path::new("/somewhere");
    need.check(4.0, Some(u64::MAX), Some(u64::MAX), dir)
        .unwrap();
    let e = need.check(4.0, Some(1 << 20), None, dir).unwrap_err();
    assert!(
        e.contains("MiB memory") && e.contains("MemAvailable"),
        "{e}"
    );
    let e = need.check(4.0, None, Some(1 << 20), dir).unwrap_err();
    assert!(e.contains("/somewhere") && e.contains("MiB disk"), "{e}");
    let e = need.check(1e-6, None, None, dir).unwrap_err();
    assert!(e.contains("numerics.max_memory_gib"), "{e}");
    assert!(guard::available_memory().is_some_and(|m| m > 0));
    assert!(guard::free_disk(&std::env::temp_dir().join("no/such/dir")).is_some());
}

#[test]
fn sweeps_run_no_more_at_once_than_memory_allows() {
    assert_eq!(guard::parallel_runs(Some(10 << 30), 4 << 30, 16), 2);
    assert_eq!(guard::parallel_runs(Some(1 << 30), 4 << 30, 16), 1);
    assert_eq!(guard::parallel_runs(Some(100 << 30), 1 << 30, 8), 8);
}
