//! `fibrosim sensitivity`: the parameter list against the scenario keys and the shipped
//! protocols, the refusals (unknown `--param`, existing output) through the binary, and one
//! small run end to end on tiny protocol files (a 200 µm block of 40 µm voxels, days instead of
//! months), whose baseline must equal a plain `fibrosim validate` of the same files and whose
//! table must not depend on the thread count.

use fibrosim::sensitivity::{self, PARAMS};
use std::path::{Path, PathBuf};

mod common;

fn tmp(tag: &str) -> PathBuf {
    common::tmp("sensitivity", tag)
}

use common::{fibrosim, text};

fn shipped() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/validation")
}

#[test]
fn every_end_of_every_range_is_a_valid_key_and_value() {
    for p in &PARAMS {
        let (table, field) = p.key.rsplit_once('.').unwrap();
        for v in [p.low, p.high] {
            let toml = format!("[{table}]\n{field} = {v:?}\n");
            let s = fibrosim::scenario::parse(&toml, Path::new("x.toml"))
                .unwrap_or_else(|e| panic!("{} = {v}: {e}", p.key));
            let mut want = fibrosim::scenario::Model::default();
            (p.set)(&mut want, v);
            assert_eq!(
                s.model, want,
                "{} does not set the field its key names",
                p.key
            );
        }
    }
    let all: Vec<_> = PARAMS.iter().collect();
    for quick in [false, true] {
        let protocols = fibrosim::validate::load_protocols(&shipped(), quick).unwrap();
        sensitivity::check_values(&protocols, &all).unwrap();
    }
}

#[test]
fn calibration_doc_lists_every_parameter() {
    let doc =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/calibration.md"))
            .expect("docs/calibration.md");
    for p in &PARAMS {
        assert!(doc.contains(&format!("`{}`", p.key)), "{} missing", p.key);
    }
}

#[test]
fn unknown_param_exits_2_and_names_the_nearest() {
    let d = tmp("unknown");
    let o = fibrosim(&["sensitivity", "--param", "densty_cap", "--out", "s"], &d);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let msg = String::from_utf8_lossy(&o.stderr);
    assert!(msg.contains("--param densty_cap"), "{msg}");
    assert!(
        msg.contains("did you mean `model.fibroblasts.density_cap`"),
        "{msg}"
    );
    assert!(
        msg.contains("model.signals.pdgf_macrophage_ng_per_ml_h"),
        "{msg}"
    );
    assert!(!d.join("s").exists(), "an output was created");
}

#[test]
fn existing_output_is_refused_without_force() {
    let d = tmp("exists");
    std::fs::create_dir_all(d.join("s")).unwrap();
    std::fs::write(d.join("s/keep.txt"), "x").unwrap();
    let o = fibrosim(&["sensitivity", "--param", "density_cap", "--out", "s"], &d);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(text(&o).contains("--force"), "{}", text(&o));
    assert!(d.join("s/keep.txt").is_file());
}

/// The nine protocol files, tiny: same names and needles as the shipped ones, sessions 3 days
/// apart, 8 days of follow-up.
fn tiny_protocols(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    let treated = |name: &str, needle: f64, sessions: u32| {
        format!(
            "name = \"{name}\"\n[tissue]\ndomain_um = [200.0, 200.0]\nvoxel_um = 40.0\n\
             [device]\nneedle_length_mm = {needle:?}\n\
             [schedule]\nsessions = {sessions}\ninterval_days = 3.0\nfollow_up_days = 8.0\n\
             [numerics]\nburn_in_days = 10\n"
        )
    };
    for (name, needle, sessions) in [
        ("pen-0.5mm-x1", 0.5, 1),
        ("pen-1.0mm-x1", 1.0, 1),
        ("pen-1.5mm-x1", 1.5, 1),
        ("pen-2.0mm-x1", 2.0, 1),
        ("pen-1.5mm-x2-monthly", 1.5, 2),
        ("pen-1.5mm-x4-monthly", 1.5, 4),
        ("pen-1.5mm-x5-monthly", 1.5, 5),
        ("pen-1.5mm-x6-monthly", 1.5, 6),
    ] {
        std::fs::write(
            dir.join(format!("{name}.toml")),
            treated(name, needle, sessions),
        )
        .unwrap();
    }
    std::fs::write(
        dir.join("untreated-12-months.toml"),
        "name = \"untreated-12-months\"\n[tissue]\ndomain_um = [200.0, 200.0]\nvoxel_um = 40.0\n\
         [schedule]\nsessions = 0\nfollow_up_days = 20.0\n[output]\ncontrol = false\n\
         [numerics]\nburn_in_days = 10\n",
    )
    .unwrap();
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn small_run_end_to_end_matches_validate_and_not_the_thread_count() {
    let d = tmp("e2e");
    tiny_protocols(&d.join("proto"));
    let run = |out: &str, threads: &str| {
        let o = fibrosim(
            &[
                "sensitivity",
                "--scenarios",
                "proto",
                "--seeds",
                "1",
                "--param",
                "density_cap",
                "-j",
                threads,
                "--quiet",
                "--out",
                out,
            ],
            &d,
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
        o
    };
    let o = run("s1", "1");
    assert!(String::from_utf8_lossy(&o.stdout).contains("ρ_cap"));
    for f in ["sensitivity.md", "sensitivity.json", "sensitivity.csv"] {
        assert!(d.join("s1").join(f).is_file(), "{f} missing");
    }
    let md = std::fs::read_to_string(d.join("s1/sensitivity.md")).unwrap();
    assert_eq!(
        md.lines().filter(|l| l.starts_with("| ")).count(),
        4,
        "header + baseline + low + high:\n{md}"
    );

    // The same table on two threads.
    run("s2", "2");
    assert_eq!(
        std::fs::read(d.join("s1/sensitivity.csv")).unwrap(),
        std::fs::read(d.join("s2/sensitivity.csv")).unwrap(),
        "the table depends on the thread count"
    );

    // The baseline is a plain validation of the same files.
    let o = fibrosim(
        &[
            "validate",
            "--scenarios",
            "proto",
            "--seeds",
            "1",
            "--quiet",
            "--out",
            "v",
        ],
        &d,
    );
    assert!(matches!(o.status.code(), Some(0) | Some(1)), "{}", text(&o));
    let v = json(&d.join("v/validation.json"));
    let s = json(&d.join("s1/sensitivity.json"));
    let want: Vec<(String, serde_json::Value)> = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["items"].as_array().unwrap().iter())
        .map(|i| (i["id"].as_str().unwrap().to_string(), i["values"].clone()))
        .collect();
    let got: Vec<(String, serde_json::Value)> = s["baseline"]["claims"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["id"].as_str().unwrap().to_string(), c["values"].clone()))
        .collect();
    assert_eq!(want.len(), 25);
    assert_eq!(got, want);
    let passed = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|c| c["items"].as_array().unwrap().iter())
        .filter(|i| {
            let p = i["passes"].as_array().unwrap();
            !p.is_empty() && p.iter().all(|x| x.as_bool() == Some(true))
        })
        .count();
    assert_eq!(s["baseline"]["passed"].as_u64(), Some(passed as u64));
    // Both ends were run and differ from the baseline somewhere.
    let rows = s["rows"].as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["value"].as_f64(), Some(1.5));
    assert_eq!(rows[1]["value"].as_f64(), Some(6.0));
    assert_ne!(rows[1]["claims"], s["baseline"]["claims"]);

    // Refused without --force, replaced with it.
    let again = fibrosim(
        &[
            "sensitivity",
            "--scenarios",
            "proto",
            "--param",
            "density_cap",
            "--out",
            "s1",
        ],
        &d,
    );
    assert_eq!(again.status.code(), Some(2), "{}", text(&again));
    let _ = std::fs::remove_dir_all(&d);
}
