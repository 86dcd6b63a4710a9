//! Writing scenarios: the commented template of `fibrosim init` and the fully resolved TOML of a
//! [`Scenario`] recorded in run manifests (`parse(to_toml(s)) == s`).

use std::fmt::Write as _;

use super::raw::{FloatRows, Row};
use super::types::*;
use super::validate::{applies, num, pattern_name, toml_string};

/// A float as TOML that reads back to the same `f64` (`20.0`, `1e-8`).
fn f(v: f64) -> String {
    if v.is_finite() {
        format!("{v:?}")
    } else {
        num(v)
    }
}

fn list(v: &[f64]) -> String {
    let items: Vec<String> = v.iter().map(|&x| f(x)).collect();
    format!("[{}]", items.join(", "))
}

/// `key = value` padded, then `# comment`; commented out with `# ` when `active` is false.
fn line(out: &mut String, active: bool, assignment: &str, comment: &str) {
    let lead = if active { "" } else { "# " };
    let text = format!("{lead}{assignment}");
    let _ = writeln!(out, "{text:<44} # {comment}");
}

fn row_comment(r: &Row, default: &str) -> String {
    let unit = if r.unit.is_empty() {
        String::new()
    } else {
        format!(" {}", r.unit)
    };
    format!(
        "{}; default {default}{unit}; allowed {}",
        r.help,
        r.allowed()
    )
}

fn rows(out: &mut String, rows: &[Row], inactive: &[&str]) {
    for r in rows {
        line(
            out,
            !inactive.contains(&r.key),
            &format!("{} = {}", r.key, f(r.value)),
            &row_comment(r, &f(r.value)),
        );
    }
}

/// A commented TOML template listing every key with its unit, default and allowed range.
/// Keys whose defaults derive from other keys, and keys of other device kinds, are commented
/// out; parsing the template gives [`Scenario::default`] (named after the file).
pub fn template() -> String {
    let s = Scenario::default();
    let mut o = String::new();
    o.push_str(
        "# fibrosim scenario: skin remodelling after microneedling.\n\
         #\n\
         # Every key is optional: a missing key takes the default shown here. The comment after\n\
         # each key gives its meaning, unit, default and allowed range (inclusive). Keys that are\n\
         # commented out default to values derived from other keys, or apply to another device\n\
         # kind. Integers are accepted wherever a number is expected.\n\n",
    );
    line(
        &mut o,
        false,
        "name = \"my_scenario\"",
        "output folder name; default the file name without .toml",
    );
    line(
        &mut o,
        true,
        "description = \"\"",
        "free text; default empty",
    );
    line(
        &mut o,
        true,
        "seed = 1",
        "random seed; integer ≥ 0; default 1",
    );

    o.push_str("\n[tissue]\n");
    let sites: Vec<&str> = Site::ALL.iter().map(|x| x.name()).collect();
    line(
        &mut o,
        true,
        &format!("site = \"{}\"", s.tissue.site.name()),
        &format!(
            "body-site preset of layer thicknesses: {}; default face_cheek",
            sites.join(" | ")
        ),
    );
    line(
        &mut o,
        true,
        &format!("domain_um = {}", list(&s.tissue.domain_um)),
        "lateral size [x, y] of the periodic block; µm; default [1900.0, 1900.0]; each 100–20000 and at least 3 voxels",
    );
    for r in s.tissue.float_rows() {
        let from_site = ["epidermis_um", "papillary_um", "reticular_um"].contains(&r.key);
        let default = if from_site {
            format!("from the site, face_cheek {}", f(r.value))
        } else {
            f(r.value)
        };
        line(
            &mut o,
            !from_site,
            &format!("{} = {}", r.key, f(r.value)),
            &row_comment(&r, &default),
        );
    }

    o.push_str("\n[device]\n");
    line(
        &mut o,
        true,
        "kind = \"pen\"",
        "pen | roller | stamp | custom; default pen; the other defaults depend on the kind",
    );
    line(
        &mut o,
        true,
        "pattern = \"jittered_grid\"",
        "channel layout (pen, custom only): jittered_grid | grid | poisson; default jittered_grid",
    );
    line(
        &mut o,
        false,
        "passes = 15",
        "roller: passes per session; stamp: stamps per session (roller, stamp only); default 15 (roller), 1 (stamp); allowed 1–100",
    );
    let pen = Device::defaults(DeviceKind::Pen);
    for r in pen.float_rows() {
        if applies(r.key, DeviceKind::Pen) {
            let default = if r.key == "penetration_fraction" {
                format!("{} (0.3 for a roller)", f(r.value))
            } else {
                f(r.value)
            };
            line(
                &mut o,
                true,
                &format!("{} = {}", r.key, f(r.value)),
                &row_comment(&r, &default),
            );
        } else {
            let kind = [DeviceKind::Roller, DeviceKind::Stamp]
                .into_iter()
                .find(|&k| applies(r.key, k))
                .unwrap_or(DeviceKind::Roller);
            let v = Device::defaults(kind)
                .float_rows()
                .into_iter()
                .find(|x| x.key == r.key)
                .map_or(r.value, |x| x.value);
            let comment = format!("{} only; {}", kind.name(), row_comment(&r, &f(v)));
            line(&mut o, false, &format!("{} = {}", r.key, f(v)), &comment);
        }
    }

    o.push_str("\n[schedule]\n");
    line(
        &mut o,
        true,
        "sessions = 3",
        "number of sessions; default 3; allowed 0–100 (0: an untreated control)",
    );
    line(
        &mut o,
        true,
        "interval_days = 28.0",
        "days between sessions; days; default 28.0; allowed 1–3650",
    );
    line(
        &mut o,
        true,
        "start_day = 0.0",
        "day of the first session; days; default 0.0; allowed 0–3650",
    );
    line(
        &mut o,
        false,
        "days = [0.0, 28.0, 56.0]",
        "explicit session days instead of sessions/interval_days/start_day; each ≥ 0, distinct",
    );
    line(
        &mut o,
        true,
        &format!("follow_up_days = {}", f(s.schedule.follow_up_days)),
        "days simulated after the last session; days; default 180.0; allowed 1–3650",
    );
    o.push_str(
        "\n# A device change for one session: the [device] above with these keys applied (a\n\
         # different kind starts from that kind's defaults). One block per overridden session.\n\
         # [[schedule.override]]\n\
         # session = 2                                # session number, from 1\n\
         # device = { needle_length_mm = 1.5 }        # any [device] keys, kind included\n",
    );

    o.push_str("\n[output]\n");
    rows(&mut o, &s.output.float_rows(), &[]);
    line(
        &mut o,
        false,
        "snapshot_days = [7.0, 86.0, 146.0, 236.0]",
        "absolute days of depth profiles and cross-sections; default first session + 7, then each metric day",
    );
    line(
        &mut o,
        false,
        "metric_days_after_last = [30.0, 90.0, 180.0]",
        "metric days after the last session; days; default [30, 90, 180] within the follow-up; each ≤ follow_up_days",
    );
    line(
        &mut o,
        true,
        "control = true",
        "also run the untreated control; default true",
    );
    line(
        &mut o,
        false,
        "section_y_um = 950.0",
        "y of the cross-section plane; µm; default the middle of the block; allowed 0–domain_um y",
    );

    o.push_str("\n[numerics]\n");
    rows(&mut o, &s.numerics.float_rows(), &[]);
    line(
        &mut o,
        true,
        "fast_forward = true",
        "allow the quiet fast-forward; default true",
    );
    line(
        &mut o,
        true,
        &format!("max_dt_h = {}", f(s.numerics.max_dt_h)),
        "longest fast-forward step; h; default 24.0; allowed dt_h–240",
    );
    line(
        &mut o,
        true,
        &format!("max_steps = {}", s.numerics.max_steps),
        "most time steps a run may take (fast-forward not counted); default 5000000; ≥ 1",
    );

    let m = &s.model;
    for (name, r) in [
        ("immune", m.immune.float_rows()),
        ("signals", m.signals.float_rows()),
        ("matrix", m.matrix.float_rows()),
        ("fibroblasts", m.fibroblasts.float_rows()),
        ("epidermis", m.epidermis.float_rows()),
    ] {
        let _ = writeln!(o, "\n[model.{name}]");
        rows(&mut o, &r, &[]);
    }
    o
}

fn plain_rows(out: &mut String, rows: &[Row]) {
    for r in rows {
        let _ = writeln!(out, "{} = {}", r.key, f(r.value));
    }
}

fn device_body(out: &mut String, d: &Device) {
    let _ = writeln!(out, "kind = \"{}\"", d.kind.name());
    if applies("pattern", d.kind) {
        let _ = writeln!(out, "pattern = \"{}\"", pattern_name(d.pattern));
    }
    if applies("passes", d.kind) {
        let _ = writeln!(out, "passes = {}", d.passes);
    }
    let rows: Vec<Row> = d
        .float_rows()
        .into_iter()
        .filter(|r| applies(r.key, d.kind))
        .collect();
    plain_rows(out, &rows);
}

/// The scenario as TOML with every key explicit (session days as a `days` list). Keys that do
/// not apply to a device's kind are left out (they keep the kind's defaults). Parsing the result
/// gives `s` back for any scenario `parse` can produce.
pub fn to_toml(s: &Scenario) -> String {
    let mut o = String::new();
    let _ = writeln!(o, "name = {}", toml_string(&s.name));
    let _ = writeln!(o, "description = {}", toml_string(&s.description));
    let _ = writeln!(o, "seed = {}", s.seed);

    let t = &s.tissue;
    o.push_str("\n[tissue]\n");
    let _ = writeln!(o, "site = \"{}\"", t.site.name());
    let _ = writeln!(o, "domain_um = {}", list(&t.domain_um));
    plain_rows(&mut o, &t.float_rows());

    o.push_str("\n[device]\n");
    device_body(&mut o, &s.device);

    o.push_str("\n[schedule]\n");
    let _ = writeln!(o, "days = {}", list(&s.schedule.days));
    let _ = writeln!(o, "follow_up_days = {}", f(s.schedule.follow_up_days));
    for ov in &s.schedule.overrides {
        let _ = writeln!(o, "\n[[schedule.override]]\nsession = {}", ov.session);
        o.push_str("[schedule.override.device]\n");
        device_body(&mut o, &ov.device);
    }

    let out = &s.output;
    o.push_str("\n[output]\n");
    plain_rows(&mut o, &out.float_rows());
    let _ = writeln!(o, "snapshot_days = {}", list(&out.snapshot_days));
    let _ = writeln!(
        o,
        "metric_days_after_last = {}",
        list(&out.metric_days_after_last)
    );
    let _ = writeln!(o, "control = {}", out.control);
    let _ = writeln!(o, "section_y_um = {}", f(out.section_y_um));

    let n = &s.numerics;
    o.push_str("\n[numerics]\n");
    plain_rows(&mut o, &n.float_rows());
    let _ = writeln!(o, "fast_forward = {}", n.fast_forward);
    let _ = writeln!(o, "max_dt_h = {}", f(n.max_dt_h));
    let _ = writeln!(o, "max_steps = {}", n.max_steps);

    let m = &s.model;
    for (name, r) in [
        ("immune", m.immune.float_rows()),
        ("signals", m.signals.float_rows()),
        ("matrix", m.matrix.float_rows()),
        ("fibroblasts", m.fibroblasts.float_rows()),
        ("epidermis", m.epidermis.float_rows()),
    ] {
        let _ = writeln!(o, "\n[model.{name}]");
        plain_rows(&mut o, &r);
    }
    o
}
