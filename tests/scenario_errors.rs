//! Scenario-file errors as a user sees them: located, naming the key, the value and what is
//! allowed; plus the template and manifest round trips and a no-panic property test.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use fibrosim::scenario::*;
use proptest::prelude::*;

fn file() -> PathBuf {
    PathBuf::from("scenarios/x.toml")
}

fn errors(text: &str) -> ScenarioErrors {
    match parse(text, &file()) {
        Ok(s) => panic!("accepted:\n{text}\n→ {s:?}"),
        Err(e) => e,
    }
}

fn only(text: &str) -> ScenarioError {
    let e = errors(text);
    assert_eq!(e.0.len(), 1, "expected one error, got:\n{e}");
    e.0.into_iter().next().unwrap()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("fibrosim-scenario-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

#[test]
fn unknown_key_gives_line_path_and_suggestion() {
    let e = only("seed = 2\n\n[device]\nneedle_lenght_mm = 1.5\n");
    assert_eq!((e.line, e.column), (Some(4), Some(1)));
    assert_eq!(e.key, "device.needle_lenght_mm");
    assert!(
        e.message.contains("did you mean `needle_length_mm`?"),
        "{e}"
    );
    assert_eq!(
        e.to_string(),
        "scenarios/x.toml:4:1: device.needle_lenght_mm: unknown key; did you mean `needle_length_mm`?"
    );
}

#[test]
fn unknown_key_far_from_any_lists_the_valid_keys() {
    let e = only("[numerics]\nwobble = 1\n");
    assert!(e.message.contains("unknown key; valid keys here:"), "{e}");
    assert!(e.message.contains("max_memory_gib"), "{e}");
}

#[test]
fn unknown_table_and_enum_value_get_suggestions() {
    let e = errors("[devise]\nkind = \"pen\"\n\n[tissue]\nsite = \"face\"\n");
    let text = e.to_string();
    assert!(e.has_key("devise"), "{text}");
    assert!(
        text.contains("x.toml:1:2: devise: unknown table; did you mean `device`?"),
        "{text}"
    );
    assert!(text.contains("tissue.site = \"face\": unknown site; did you mean `face_cheek`? allowed: face_cheek, forehead"), "{text}");
}

#[test]
fn out_of_range_gives_line_key_value_and_range() {
    let e = only("[device]\nkind = \"pen\"\nneedle_length_mm = 5\n");
    assert_eq!(e.line, Some(3));
    assert_eq!(e.key, "device.needle_length_mm");
    assert_eq!(
        e.to_string(),
        "scenarios/x.toml:3:1: device.needle_length_mm = 5: out of range; allowed 0.1–3.0 mm"
    );
}

#[test]
fn a_signal_grid_edge_is_checked_against_its_range_only() {
    // Any edge in range is accepted: the nearest edge that tiles the block is used.
    for v in ["0", "40", "50", "63.2"] {
        assert!(parse(&format!("[numerics]\nsignal_voxel_um = {v}\n"), &file()).is_ok());
    }
    let e = only("[numerics]\nsignal_voxel_um = 1200\n");
    assert_eq!(
        (e.line, e.key.as_str()),
        (Some(2), "numerics.signal_voxel_um")
    );
}

#[test]
fn dotted_and_inline_keys_are_located() {
    let e = only("seed = 1\ntissue.voxel_um = 500\n");
    assert_eq!(
        (e.line, e.column, e.key.as_str()),
        (Some(2), Some(8), "tissue.voxel_um")
    );
    let e = only(
        "[schedule]\nsessions = 2\n[[schedule.override]]\nsession = 2\ndevice = { kind = \"roller\", tilt_deg = 90 }\n",
    );
    assert_eq!(e.key, "schedule.override[0].device.tilt_deg");
    assert_eq!((e.line, e.column), (Some(5), Some(29)));
    assert!(
        e.message.contains("= 90: out of range; allowed 0–60 °"),
        "{e}"
    );
}

#[test]
fn syntax_error_gives_line_and_column() {
    let e = errors("seed = 1\n[tissue]\nvoxel_um = = 3\n");
    let first = &e.0[0];
    assert_eq!(first.line, Some(3));
    assert!(first.column.is_some());
    assert!(first.to_string().starts_with("scenarios/x.toml:3:"), "{e}");
    assert!(first.message.starts_with("TOML syntax error"), "{e}");
}

#[test]
fn nan_and_inf_are_refused() {
    for v in ["nan", "inf", "-inf", "+nan"] {
        let e = only(&format!("[tissue]\nvoxel_um = {v}\n"));
        assert_eq!(e.key, "tissue.voxel_um");
        assert!(e.message.contains("not a finite number"), "{e}");
    }
    let e = only("[schedule]\ndays = [0, inf]\n");
    assert!(e.message.contains("not a finite number"), "{e}");
}

#[test]
fn wrong_type_is_reported_and_integers_accepted_for_floats() {
    let e = only("[tissue]\nvoxel_um = \"20\"\n");
    assert_eq!(e.key, "tissue.voxel_um");
    assert!(e.message.contains("expected a number"), "{e}");
    let s = parse("[tissue]\nvoxel_um = 25\n", &file()).unwrap();
    assert_eq!(s.tissue.voxel_um, 25.0);
}

#[test]
fn duplicate_session_days_are_refused() {
    let e = only("[schedule]\ndays = [0, 28, 14, 28]\n");
    assert_eq!(e.key, "schedule.days");
    assert_eq!(e.line, Some(2));
    assert!(e.message.contains("day 28 appears more than once"), "{e}");
}

#[test]
fn days_and_sessions_together_are_refused() {
    let e = only("[schedule]\nsessions = 2\ndays = [0, 28]\n");
    assert!(e.message.contains("not both"), "{e}");
}

#[test]
fn metric_day_beyond_follow_up_is_refused() {
    let e = only("[schedule]\nfollow_up_days = 60\n[output]\nmetric_days_after_last = [30, 90]\n");
    assert_eq!(e.key, "output.metric_days_after_last[1]");
    assert_eq!(e.line, Some(4));
    assert!(
        e.message.contains("follow-up must cover the metric days"),
        "{e}"
    );
    // Unset, the defaults beyond the follow-up are dropped instead.
    let s = parse("[schedule]\nfollow_up_days = 60\n", &file()).unwrap();
    assert_eq!(s.output.metric_days_after_last, vec![30.0]);
    assert_eq!(s.output.snapshot_days, vec![7.0, 86.0]);
}

#[test]
fn key_of_another_device_kind_is_refused_with_its_kinds() {
    let e = only("[device]\nkind = \"pen\"\ntilt_deg = 10\n");
    assert_eq!(e.key, "device.tilt_deg");
    assert_eq!(e.line, Some(3));
    assert!(e.message.contains("applies only to kind `roller`"), "{e}");
    let e = only("[device]\nkind = \"roller\"\ndensity_per_cm2 = 100\n");
    assert!(
        e.message
            .contains("applies only to kind `pen` and `custom`"),
        "{e}"
    );
    let e = only(
        "passes = 3\n"
            .replace("passes", "[device]\npasses")
            .as_str(),
    );
    assert!(e.message.contains("`roller` and `stamp`"), "{e}");
}

#[test]
fn several_errors_are_reported_together() {
    let text = "seed = -1\n[tissue]\nvoxel_um = 500\nsite = \"nek\"\n[device]\nneedle_lenght_mm = 1\nhalo_damage = 2\n[output]\ncontrol = 3\n";
    let e = errors(text);
    for key in [
        "seed",
        "tissue.voxel_um",
        "tissue.site",
        "device.needle_lenght_mm",
        "device.halo_damage",
        "output.control",
    ] {
        assert!(e.has_key(key), "missing {key} in:\n{e}");
    }
    let lines: Vec<usize> = e.0.iter().filter_map(|x| x.line).collect();
    assert!(
        lines.windows(2).all(|w| w[0] <= w[1]),
        "sorted by line: {lines:?}"
    );
    assert!(
        e.to_string().ends_with("6 errors in scenarios/x.toml"),
        "{e}"
    );
}

#[test]
fn consistency_rules_name_the_limit() {
    let e = errors("[numerics]\ndt_h = 0.5\n");
    assert!(e.0.iter().all(|x| x.key == "numerics.dt_h"), "{e}");
    assert!(
        e.to_string()
            .contains("tgfb_decay_per_h × dt_h = 0.312 exceeds 0.2"),
        "{e}"
    );
    assert!(e.to_string().contains("largest dt_h allowed 0.32 h"), "{e}");
    let e = only("[numerics]\ndt_h = 0.25\n[tissue]\nvoxel_um = 8\n");
    assert!(
        e.message
            .contains("exceeds half a voxel (4 µm); largest dt_h allowed 0.2 h"),
        "{e}"
    );
    let e = only("[numerics]\ndt_h = 0.2\n[output]\nfine_interval_h = 0.5\n");
    assert_eq!(e.key, "output.fine_interval_h", "{e}");
    let e = only(
        "[device]\nneedle_length_mm = 3.0\npenetration_fraction = 1.0\n[tissue]\nsite = \"neck\"\n",
    );
    assert!(
        e.message
            .contains("must be less than the tissue depth 1450 µm"),
        "{e}"
    );
    let e = only("[tissue]\ndomain_um = [100, 1900]\nvoxel_um = 50\n");
    assert!(e.message.contains("at least 3 voxels"), "{e}");
}

#[test]
fn huge_domain_is_refused_with_an_estimate() {
    let e = only("[tissue]\ndomain_um = [20000, 20000]\nvoxel_um = 5\n[numerics]\ndt_h = 0.1\n");
    assert_eq!(e.key, "numerics.max_memory_gib");
    assert!(
        e.message.contains("GiB") && e.message.contains("voxels") && e.message.contains("2 arms"),
        "{e}"
    );
    assert!(e.message.contains("limit 8 GiB"), "{e}");
    let e = only("[numerics]\nmax_steps = 1000\n");
    assert!(e.message.contains("22656 steps"), "{e}");
}

#[test]
fn no_schedule_gives_three_sessions_and_zero_sessions_is_valid() {
    let s = parse("", Path::new("a/b/cheek.toml")).unwrap();
    assert_eq!(s.schedule.days, vec![0.0, 28.0, 56.0]);
    assert_eq!(s.name, "cheek");
    let s = parse("[schedule]\nsessions = 0\n", &file()).unwrap();
    assert!(s.schedule.days.is_empty());
    assert_eq!(s.output.snapshot_days, vec![7.0, 180.0]);
}

#[test]
fn template_parses_to_the_defaults() {
    let s = parse(&template(), Path::new("init.toml")).unwrap();
    let expected = Scenario {
        name: "init".into(),
        ..Scenario::default()
    };
    assert_eq!(s, expected);
    assert!(template().contains("# tilt_deg = 15.0"));
}

#[test]
fn to_toml_round_trips_the_default() {
    let s = Scenario::default();
    let back = parse(&to_toml(&s), &file()).unwrap();
    assert_eq!(back, s);
}

#[test]
fn to_toml_round_trips_overrides() {
    let text = r#"
name = "roller then stamp"
description = "a \"quoted\" description"
seed = 42
[tissue]
site = "back"
patient_age_years = 61.5
[device]
kind = "roller"
tilt_deg = 20
passes = 8
[schedule]
days = [3, 40.5, 10]
follow_up_days = 100
[[schedule.override]]
session = 2
device = { kind = "stamp", pitch_um = 450, passes = 3 }
[[schedule.override]]
session = 3
device.needle_length_mm = 2.0
[model.fibroblasts]
division_rate_per_h = 0.03
"#;
    let s = parse(text, &file()).unwrap();
    assert_eq!(s.schedule.days, vec![3.0, 10.0, 40.5]);
    assert_eq!(s.schedule.overrides[0].device.kind, DeviceKind::Stamp);
    assert_eq!(s.schedule.overrides[0].device.passes, 3);
    assert_eq!(s.schedule.overrides[1].device.kind, DeviceKind::Roller);
    assert_eq!(s.schedule.overrides[1].device.tilt_deg, 20.0);
    assert_eq!(s.device_for_session(2).needle_length_mm, 2.0);
    let back = parse(&to_toml(&s), &file()).unwrap();
    assert_eq!(back, s);
}

#[test]
fn override_of_a_missing_session_is_refused() {
    let e = only(
        "[schedule]\nsessions = 2\n[[schedule.override]]\nsession = 3\ndevice = { needle_length_mm = 1.5 }\n",
    );
    assert_eq!(e.key, "schedule.override[0].session");
    assert!(e.message.contains("the schedule has 2 sessions"), "{e}");
}

#[test]
fn directory_missing_and_non_utf8_files_give_clear_errors() {
    let dir = std::env::temp_dir();
    let e = load(&dir).unwrap_err();
    assert!(e.to_string().contains("is a directory"), "{e}");
    let e = load(Path::new("/nonexistent/fibrosim.toml")).unwrap_err();
    assert!(e.to_string().contains("no such file"), "{e}");

    let bad = scratch("latin1.toml");
    std::fs::write(&bad, b"seed = 1\ndescription = \"caf\xe9\"\n").unwrap();
    let e = load(&bad).unwrap_err();
    assert_eq!(e.0[0].line, Some(2));
    assert!(
        e.to_string()
            .contains("not valid UTF-8: byte 0xe9 at byte offset 27"),
        "{e}"
    );

    let big = scratch("big.toml");
    std::fs::write(&big, vec![b'#'; 2 << 20]).unwrap();
    let e = load(&big).unwrap_err();
    assert!(e.to_string().contains("limited to 1 MiB"), "{e}");

    let good = scratch("good_one.toml");
    std::fs::write(&good, "seed = 7\n").unwrap();
    let s = load(&good).unwrap();
    assert_eq!((s.seed, s.name.as_str()), (7, "good_one"));
}

/// The template with a few random edits: deletions, duplications and insertions.
fn mutated_template() -> impl Strategy<Value = String> {
    let t = template();
    let n = t.len();
    let edit = (0..n, 0..n, 0usize..4, "[ -~\n]{0,8}");
    proptest::collection::vec(edit, 1..6).prop_map(move |edits| {
        let mut s = t.clone();
        for (a, b, op, ins) in edits {
            let fix = |i: usize, s: &str| {
                let mut i = i.min(s.len());
                while !s.is_char_boundary(i) {
                    i -= 1;
                }
                i
            };
            let (a, b) = (fix(a, &s), fix(b, &s));
            let (lo, hi) = (a.min(b), a.max(b).min(a.min(b) + 40));
            let hi = fix(hi, &s);
            match op {
                0 => s.replace_range(lo..hi, ""),
                1 => {
                    let piece = s[lo..hi].to_string();
                    s.insert_str(lo, &piece)
                }
                _ => s.insert_str(lo, &ins),
            }
        }
        s
    })
}

fn check_never_panics(text: &str) {
    let t0 = Instant::now();
    let r = parse(text, &file());
    assert!(
        t0.elapsed() < Duration::from_secs(1),
        "took {:?}",
        t0.elapsed()
    );
    if let Err(e) = r {
        assert!(!e.0.is_empty());
        for x in &e.0 {
            assert!(x.to_string().starts_with("scenarios/x.toml"), "{x}");
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(text in "\\PC{0,400}") {
        check_never_panics(&text);
    }

    #[test]
    fn tomlish_text_never_panics(text in "([a-z_.\\[\\]]{0,12} ?= ?[-0-9.eafinlstru\"\\[\\], {}]{0,12}\n){0,20}") {
        check_never_panics(&text);
    }

    #[test]
    fn mutated_template_never_panics(text in mutated_template()) {
        check_never_panics(&text);
    }
}
