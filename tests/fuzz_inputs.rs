//! Bad input, exhaustively: the scenario and sweep parsers are fed arbitrary bytes and mutated
//! valid files (proptest, bounded) and must never panic, hang or allocate without bound, and
//! every error names the file (and, for a key, its line and the key). Then explicit cases:
//! NaN and infinities, negative and zero sizes, a voxel bigger than the block, a needle longer
//! than the block is deep, duplicate or negative session days, huge counts, non-UTF-8 bytes, a
//! 100 MB file, a directory given as a scenario, an output that cannot be created, and a full
//! disk.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use fibrosim::scenario::{self, ScenarioErrors};
use fibrosim::sweep::{self, SweepError};
use proptest::prelude::*;

const VALID: &str = r#"name = "fz"
seed = 1

[tissue]
site = "face_cheek"
domain_um = [300.0, 300.0]
voxel_um = 20.0
patient_age_years = 40

[device]
kind = "pen"
needle_length_mm = 0.5

[schedule]
sessions = 1
interval_days = 28
follow_up_days = 8.0

[output]
interval_days = 2
snapshot_days = [4.0]
metric_days_after_last = [4.0]

[numerics]
dt_h = 0.25
"#;

const SWEEP: &str = r#"name = "fzs"
base = "base.toml"
replicates = 2
seed = 1
combine = "grid"

[[axis]]
key = "device.needle_length_mm"
values = [0.25, 0.5]

[[axis]]
key = "schedule.interval_days"
range = { from = 14, to = 28, step = 14 }
"#;

/// A temporary directory, removed on drop.
struct Temp(PathBuf);

impl Temp {
    fn new(test: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("fibrosim-fuzz-{}-{test}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Temp(dir)
    }
    fn join(&self, p: &str) -> PathBuf {
        self.0.join(p)
    }
}

impl Drop for Temp {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Whether the file sets `key` (its last segment appears as `leaf =`): an error about a key the
/// file sets must give its line (a missing key has none).
fn sets(text: &str, key: &str) -> bool {
    let leaf = key.rsplit('.').next().unwrap_or(key);
    let leaf = leaf.split('[').next().unwrap_or(leaf);
    !leaf.is_empty()
        && text
            .lines()
            .any(|l| l.trim_start().starts_with(leaf) && l.contains('='))
}

/// Every error names `file`; an error about a key the file sets gives its line.
fn well_located(e: &ScenarioErrors, file: &Path) {
    assert!(!e.0.is_empty());
    let text = String::from_utf8_lossy(&fs::read(file).unwrap()).into_owned();
    for err in &e.0 {
        assert_eq!(err.file, file, "{err}");
        assert!(err.to_string().starts_with(&file.display().to_string()));
        if sets(&text, &err.key) {
            assert!(err.line.is_some(), "no line for key {}: {err}", err.key);
        }
    }
}

fn sweep_located(e: &SweepError, file: &Path) {
    let body = String::from_utf8_lossy(&fs::read(file).unwrap()).into_owned();
    let text = e.to_string();
    assert!(
        text.contains(&file.display().to_string())
            || text.contains("base.toml")
            || text.contains("base scenario"),
        "{text}"
    );
    for i in e.issues() {
        if i.file == file && sets(&body, &i.key) {
            assert!(i.line.is_some(), "no line for key {}: {i}", i.key);
        }
    }
}

/// Loads `bytes` as a scenario file; must return quickly without panicking.
fn load_scenario(dir: &Path, bytes: &[u8]) -> Result<scenario::Scenario, ScenarioErrors> {
    let p = dir.join("s.toml");
    fs::write(&p, bytes).unwrap();
    let t0 = Instant::now();
    let r = scenario::load(&p);
    assert!(t0.elapsed() < Duration::from_secs(5), "slow parse");
    if let Err(e) = &r {
        well_located(e, &p);
    }
    r
}

fn load_sweep(dir: &Path, bytes: &[u8]) -> Result<sweep::Sweep, SweepError> {
    let p = dir.join("w.toml");
    fs::write(&p, bytes).unwrap();
    let t0 = Instant::now();
    let r = sweep::load_sweep(&p);
    assert!(t0.elapsed() < Duration::from_secs(5), "slow sweep parse");
    if let Err(e) = &r {
        sweep_located(e, &p);
    }
    r
}

/// Hostile replacements for a `key = value` line.
const VALUES: [&str; 16] = [
    "nan",
    "inf",
    "-inf",
    "-1",
    "0",
    "1e308",
    "-1e-308",
    "9223372036854775807",
    "\"text\"",
    "[]",
    "[1, 2, 3, 4]",
    "{ a = 1 }",
    "true",
    "1979-05-27",
    "[nan, nan]",
    "\"\\u0000\"",
];

/// A mutation of a valid file.
#[derive(Debug, Clone)]
enum Mutation {
    Value(usize, usize),
    Delete(usize),
    Duplicate(usize),
    Truncate(usize),
    Byte(usize, u8),
    Insert(usize, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (0..64usize, 0..VALUES.len()).prop_map(|(l, v)| Mutation::Value(l, v)),
        (0..64usize).prop_map(Mutation::Delete),
        (0..64usize).prop_map(Mutation::Duplicate),
        (0..2048usize).prop_map(Mutation::Truncate),
        (0..2048usize, any::<u8>()).prop_map(|(i, b)| Mutation::Byte(i, b)),
        (0..2048usize, proptest::collection::vec(any::<u8>(), 1..16))
            .prop_map(|(i, b)| Mutation::Insert(i, b)),
    ]
}

fn mutate(text: &str, muts: &[Mutation]) -> Vec<u8> {
    let mut lines: Vec<String> = text.lines().map(String::from).collect();
    let mut bytes: Option<Vec<u8>> = None;
    for m in muts {
        let n = lines.len().max(1);
        match m {
            Mutation::Value(l, v) => {
                let l = l % n;
                if let Some((k, _)) = lines[l].split_once('=') {
                    lines[l] = format!("{k}= {}", VALUES[*v]);
                }
            }
            Mutation::Delete(l) => {
                if !lines.is_empty() {
                    lines.remove(l % n);
                }
            }
            Mutation::Duplicate(l) => {
                if !lines.is_empty() {
                    let d = lines[l % n].clone();
                    lines.insert(l % n, d);
                }
            }
            _ => {
                let b = bytes.get_or_insert_with(|| lines.join("\n").into_bytes());
                let len = b.len().max(1);
                match m {
                    Mutation::Truncate(i) => b.truncate(i % len),
                    Mutation::Byte(i, x) if !b.is_empty() => b[i % len] = *x,
                    Mutation::Insert(i, x) => {
                        let at = (i % len).min(b.len());
                        b.splice(at..at, x.iter().copied());
                    }
                    _ => {}
                }
            }
        }
    }
    bytes.unwrap_or_else(|| lines.join("\n").into_bytes())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..4096)) {
        let t = Temp::new("arb");
        fs::write(t.join("base.toml"), VALID).unwrap();
        let _ = load_scenario(&t.0, &bytes);
        let _ = load_sweep(&t.0, &bytes);
    }

    #[test]
    fn arbitrary_text_never_panics(text in "[a-z_.=\\[\\]{}\"0-9 \n,#-]{0,600}") {
        let t = Temp::new("text");
        fs::write(t.join("base.toml"), VALID).unwrap();
        let _ = load_scenario(&t.0, text.as_bytes());
        let _ = load_sweep(&t.0, text.as_bytes());
    }

    #[test]
    fn mutated_scenarios_are_refused_or_valid(muts in proptest::collection::vec(mutation(), 1..6)) {
        let t = Temp::new("mscen");
        if let Ok(s) = load_scenario(&t.0, &mutate(VALID, &muts)) {
            // Whatever is accepted is within the resource limits.
            let e = scenario::estimate(&s);
            prop_assert!(e.memory_bytes as f64 <= s.numerics.max_memory_gib * 1024.0 * 1024.0 * 1024.0);
        }
    }

    #[test]
    fn mutated_sweeps_are_refused_or_valid(muts in proptest::collection::vec(mutation(), 1..6)) {
        let t = Temp::new("msweep");
        fs::write(t.join("base.toml"), VALID).unwrap();
        if let Ok(sw) = load_sweep(&t.0, &mutate(SWEEP, &muts)) {
            prop_assert!(sw.runs().len() <= 1_000_000);
        }
    }
}

/// Replaces `key = ...` in `[section]` of the valid scenario (or appends it there).
fn with(section: &str, key: &str, value: &str) -> String {
    let mut out = String::new();
    let mut current = String::new();
    let mut done = false;
    for line in VALID.lines() {
        if line.starts_with('[') {
            if current == section && !done {
                out.push_str(&format!("{key} = {value}\n"));
                done = true;
            }
            current = line.trim_matches(['[', ']']).to_string();
        } else if current == section && line.split('=').next().map(str::trim) == Some(key) {
            out.push_str(&format!("{key} = {value}\n"));
            done = true;
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    if !done {
        out.push_str(&format!("[{section}]\n{key} = {value}\n"));
    }
    out
}

#[test]
fn explicit_bad_values_name_file_line_and_key() {
    let t = Temp::new("explicit");
    let cases: [(&str, &str, &str, &str); 15] = [
        ("tissue", "voxel_um", "nan", "tissue.voxel_um"),
        ("tissue", "voxel_um", "inf", "tissue.voxel_um"),
        (
            "tissue",
            "patient_age_years",
            "-inf",
            "tissue.patient_age_years",
        ),
        ("tissue", "domain_um", "[0.0, 300.0]", "tissue.domain_um"),
        ("tissue", "domain_um", "[-300.0, 300.0]", "tissue.domain_um"),
        ("tissue", "voxel_um", "0", "tissue.voxel_um"),
        ("tissue", "voxel_um", "-20", "tissue.voxel_um"),
        ("tissue", "voxel_um", "400", "tissue.voxel_um"),
        ("schedule", "sessions", "1000000000", "schedule.sessions"),
        (
            "schedule",
            "follow_up_days",
            "nan",
            "schedule.follow_up_days",
        ),
        (
            "schedule",
            "follow_up_days",
            "-8",
            "schedule.follow_up_days",
        ),
        ("numerics", "dt_h", "0", "numerics.dt_h"),
        ("numerics", "dt_h", "inf", "numerics.dt_h"),
        ("output", "snapshot_days", "[nan]", "output.snapshot_days"),
        ("output", "interval_days", "-2", "output.interval_days"),
    ];
    for (section, key, value, full) in cases {
        let text = with(section, key, value);
        let Err(e) = load_scenario(&t.0, text.as_bytes()) else {
            panic!("{full} = {value} was accepted");
        };
        let err =
            e.0.iter()
                .find(|x| x.key.starts_with(full) || x.message.contains(full))
                .unwrap_or_else(|| panic!("{full} = {value}: no error names the key:\n{e}"));
        assert!(err.line.is_some(), "{full} = {value}: no line: {err}");
    }
    // The needle longer than the block is deep: thin tissue, long needle.
    let text = with("tissue", "reticular_um", "100").replace(
        "needle_length_mm = 0.5",
        "needle_length_mm = 2.5\npenetration_fraction = 1.0",
    );
    let e = load_scenario(&t.0, text.as_bytes()).unwrap_err();
    assert!(e.to_string().contains("needle_length_mm"), "{e}");
}

#[test]
fn schedules_with_duplicate_or_negative_days_are_refused() {
    let t = Temp::new("days");
    // (Days out of order are sorted, not refused.)
    for days in ["[10.0, 10.0]", "[-5.0, 10.0]", "[nan]", "[inf]"] {
        let text = VALID.replace(
            "sessions = 1\ninterval_days = 28\n",
            &format!("days = {days}\n"),
        );
        let Err(e) = load_scenario(&t.0, text.as_bytes()) else {
            panic!("days = {days} was accepted");
        };
        assert!(
            e.0.iter()
                .any(|x| x.key.starts_with("schedule.days") && x.line.is_some()),
            "days = {days}:\n{e}"
        );
    }
}

#[test]
fn sweeps_with_huge_counts_or_bad_values_are_refused() {
    let t = Temp::new("sweepbad");
    fs::write(t.join("base.toml"), VALID).unwrap();
    for (from, to, key) in [
        ("replicates = 2", "replicates = 1000000000000", "replicates"),
        ("replicates = 2", "replicates = -1", "replicates"),
        (
            "values = [0.25, 0.5]",
            "values = [nan, 0.5]",
            "needle_length_mm",
        ),
        ("values = [0.25, 0.5]", "values = [inf]", "needle_length_mm"),
        ("step = 14 }", "step = 0 }", "axis"),
        ("step = 14 }", "step = -14 }", "axis"),
        ("to = 28", "to = 1e15", "axis"),
        (
            "values = [0.25, 0.5]",
            "values = [-0.25]",
            "device.needle_length_mm",
        ),
    ] {
        let text = SWEEP.replace(from, to);
        assert_ne!(text, SWEEP, "{from}");
        let t0 = Instant::now();
        let Err(e) = load_sweep(&t.0, text.as_bytes()) else {
            panic!("{to} was accepted");
        };
        assert!(t0.elapsed() < Duration::from_secs(5), "{to}: slow");
        assert!(
            e.issues()
                .iter()
                .any(|i| (i.key.contains(key) || i.message.contains(key)) && i.line.is_some()),
            "{to}: no located issue for {key}:\n{e}"
        );
    }
}

#[test]
fn non_utf8_is_located() {
    let t = Temp::new("utf8");
    let mut bytes = VALID.as_bytes().to_vec();
    let at = VALID.find("site").unwrap();
    bytes.splice(at..at, [0xff, 0xfe]);
    let e = load_scenario(&t.0, &bytes).unwrap_err();
    assert!(e.0[0].line == Some(5), "{e}");
    assert!(e.to_string().contains("UTF-8"));
    fs::write(t.join("base.toml"), VALID).unwrap();
    let e = load_sweep(&t.0, &bytes).unwrap_err();
    assert!(e.to_string().contains("w.toml"), "{e}");
}

#[test]
fn huge_files_are_refused_before_reading() {
    let t = Temp::new("huge");
    let p = t.join("huge.toml");
    // Sparse: 100 MB of nothing, created instantly.
    fs::File::create(&p)
        .unwrap()
        .set_len(100 * 1024 * 1024)
        .unwrap();
    let t0 = Instant::now();
    let e = scenario::load(&p).unwrap_err();
    assert!(e.to_string().contains("1 MiB"), "{e}");
    let e = sweep::load_sweep(&p).unwrap_err();
    assert!(e.to_string().contains("1 MiB"), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(1));
    // Just over the limit.
    fs::write(&p, vec![b'#'; 1024 * 1024 + 1]).unwrap();
    assert!(scenario::load(&p).is_err());
    assert!(sweep::load_sweep(&p).is_err());
}

#[test]
fn a_directory_is_not_a_scenario() {
    let t = Temp::new("dir");
    let e = scenario::load(&t.0).unwrap_err();
    assert!(e.to_string().contains("is a directory"), "{e}");
    let e = sweep::load_sweep(&t.0).unwrap_err();
    assert!(e.to_string().contains("is a directory"), "{e}");
}

fn binary() -> Command {
    Command::new(env!("CARGO_BIN_EXE_fibrosim"))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

#[test]
fn an_output_that_cannot_be_created_fails_clearly() {
    let t = Temp::new("ro");
    let f = t.join("s.toml");
    fs::write(&f, VALID).unwrap();
    let (parent, out) = if is_root() {
        // Permissions are not enforced for root: make the parent a regular file instead.
        let p = t.join("file");
        fs::write(&p, "x").unwrap();
        (p.clone(), p.join("out"))
    } else {
        let p = t.join("ro");
        fs::create_dir(&p).unwrap();
        use std::os::unix::fs::PermissionsExt;
        fs::set_permissions(&p, fs::Permissions::from_mode(0o555)).unwrap();
        (p.clone(), p.join("out"))
    };
    let o = binary()
        .args([
            "run",
            f.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-q",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success());
    assert!(err.contains(parent.to_str().unwrap()), "{err}");
    assert!(!out.exists());
}

#[test]
fn a_full_disk_is_refused_with_the_estimate_and_leaves_nothing() {
    let t = Temp::new("full");
    let mnt = t.join("mnt");
    fs::create_dir(&mnt).unwrap();
    if !is_root() {
        println!("skipped: mounting a tmpfs needs root");
        return;
    }
    let ok = Command::new("mount")
        .args([
            "-t",
            "tmpfs",
            "-o",
            "size=1m",
            "tmpfs",
            mnt.to_str().unwrap(),
        ])
        .status()
        .is_ok_and(|s| s.success());
    if !ok {
        println!("skipped: cannot mount a tmpfs here");
        return;
    }
    struct Unmount(PathBuf);
    impl Drop for Unmount {
        fn drop(&mut self) {
            let _ = Command::new("umount").arg(&self.0).status();
        }
    }
    let _guard = Unmount(mnt.clone());
    let f = t.join("s.toml");
    fs::write(&f, VALID).unwrap();
    let out = mnt.join("out");
    let o = binary()
        .args([
            "run",
            f.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "-q",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{err}");
    assert!(err.contains(mnt.to_str().unwrap()), "{err}");
    assert!(err.contains("MiB disk"), "{err}");
    assert!(fs::read_dir(&mnt).unwrap().next().is_none(), "left files");
}
