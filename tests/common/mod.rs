//! Helpers shared by the tests that drive the `fibrosim` binary: a fresh scratch directory,
//! running the binary, and its combined output.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// An empty directory `fibrosim-{prefix}-{tag}-{pid}` under the system's temporary folder.
pub fn tmp(prefix: &str, tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("fibrosim-{prefix}-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

/// Runs the binary with `args` in `cwd`.
pub fn fibrosim(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fibrosim"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the binary runs")
}

/// stdout followed by stderr, as text.
pub fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}
