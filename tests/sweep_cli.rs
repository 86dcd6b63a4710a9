//! `fibrosim sweep` through the binary: a tiny sweep run whole, the same sweep run as two
//! shards and merged, and the exit status of a bad sweep file (2).

use std::path::PathBuf;

/// 2 needle lengths × 1 replicate on a 400 × 400 µm block of 40 µm voxels, 5 days.
const TINY: &str = r#"name = "tiny"
replicates = 1
seed = 3
[[axis]]
key = "device.needle_length_mm"
values = [0.5, 1.5]
[base.tissue]
domain_um = [400, 400]
voxel_um = 40
[base.schedule]
sessions = 1
follow_up_days = 5
[base.output]
metric_days_after_last = [5]
"#;

mod common;

fn tmp(tag: &str) -> PathBuf {
    common::tmp("sweep-cli", tag)
}

use common::{fibrosim, text};

#[test]
fn tiny_sweep_runs_shards_and_merges() {
    let d = tmp("run");
    std::fs::write(d.join("tiny.toml"), TINY).unwrap();
    let o = fibrosim(&["sweep", "tiny.toml", "--out", "whole", "--no-charts"], &d);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert!(
        text(&o).contains("2 runs"),
        "no description printed: {}",
        text(&o)
    );
    assert!(d.join("whole/summary.csv").is_file());

    for shard in ["0/2", "1/2"] {
        let o = fibrosim(
            &[
                "sweep",
                "tiny.toml",
                "--out",
                "split",
                "--shard",
                shard,
                "--quiet",
            ],
            &d,
        );
        assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    }
    let o = fibrosim(&["sweep", "merge", "split"], &d);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    assert_eq!(
        std::fs::read(d.join("whole/summary.csv")).unwrap(),
        std::fs::read(d.join("split/summary.csv")).unwrap(),
        "merged shards differ from the whole run"
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[test]
fn bad_sweep_file_exits_2() {
    let d = tmp("bad");
    std::fs::write(
        d.join("bad.toml"),
        "name = \"bad\"\nreplicates = 0\n[[axis]]\nkey = \"device.nope\"\nvalues = [1]\n",
    )
    .unwrap();
    let o = fibrosim(&["sweep", "bad.toml"], &d);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = fibrosim(&["sweep", "missing.toml"], &d);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = fibrosim(&["sweep", "merge", "nowhere"], &d);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let o = fibrosim(&["sweep", "tiny.toml", "--shard", "2/2"], &d);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&d);
}
