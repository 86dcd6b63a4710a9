//! Renders the report of the synthetic record in headless Chromium and checks that a
//! full-page screenshot comes out (`target/tmp/report-screenshot.png`). Without Chromium it
//! tries `apt-get install -y chromium` when running as root, and otherwise prints a SKIPPED
//! line with the reason.

mod observe {
    pub use fibrosim::observe::*;
}
#[path = "../src/plot/synthetic.rs"]
#[allow(dead_code)]
mod synthetic;

use std::path::{Path, PathBuf};
use std::process::Command;

fn find_chromium() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser", "google-chrome", "chrome"] {
        if let Ok(out) = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {name}"))
            .output()
        {
            let p = String::from_utf8_lossy(&out.stdout).trim().to_string();
            if out.status.success() && !p.is_empty() {
                return Some(PathBuf::from(p));
            }
        }
    }
    None
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

#[test]
fn report_screenshot_in_headless_chromium() {
    let chromium = match find_chromium() {
        Some(c) => c,
        None if is_root() => {
            let ok = Command::new("apt-get")
                .args(["install", "-y", "chromium"])
                .status()
                .map(|s| s.success())
                .unwrap_or(false);
            match find_chromium() {
                Some(c) if ok => c,
                _ => {
                    println!(
                        "SKIPPED: chromium not found and `apt-get install -y chromium` failed"
                    );
                    return;
                }
            }
        }
        None => {
            println!("SKIPPED: chromium not found and not running as root to install it");
            return;
        }
    };
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-chromium");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let report = fibrosim::report::write_report(&synthetic::record(), &dir).unwrap();
    let shot = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-screenshot.png");
    let _ = std::fs::remove_file(&shot);
    let out = Command::new(&chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--hide-scrollbars",
            &format!("--screenshot={}", shot.display()),
            "--window-size=1600,4000",
        ])
        .arg(format!("file://{}", report.display()))
        .output()
        .expect("chromium runs");
    assert!(
        shot.is_file(),
        "no screenshot; chromium said: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let bytes = std::fs::read(&shot).unwrap();
    assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
    let w = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
    let h = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
    assert_eq!((w, h), (1600, 4000));
    // A blank page compresses to a few kB; a page with six charts does not.
    assert!(
        bytes.len() > 100_000,
        "screenshot looks blank ({} bytes)",
        bytes.len()
    );
    println!("screenshot: {}", shot.display());
}
