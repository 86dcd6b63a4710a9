//! Stage 2: raw file → typed [`Scenario`], collecting every error. Each key is range-checked
//! against its declaration, enumerations are matched with suggestions, the schedule, overrides
//! and output days are resolved, then the cross-key consistency rules (time step stability,
//! voxel and block sizes, channel depth) and the resource limits are checked.

use super::error::suggest;
use super::estimate::{GIB, estimate};
use super::raw::*;
use super::types::*;

/// An error before it is located in the file.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    /// Dotted key path.
    pub key: String,
    /// Full message (starts with the key).
    pub message: String,
    /// Byte span, when known better than by the key path.
    pub span: Option<std::ops::Range<usize>>,
    /// Another key to point at when `key` is not in the file (the other side of a
    /// consistency rule).
    pub alt: Option<String>,
}

/// Collects errors while resolving.
#[derive(Debug, Default)]
pub(crate) struct Cx {
    /// The errors so far.
    pub errors: Vec<Pending>,
}

impl Cx {
    /// Records an error; `rest` follows the key in the message (` = 5: out of range; …`).
    pub fn err(&mut self, key: &str, rest: impl AsRef<str>) {
        self.errors.push(Pending {
            key: key.to_string(),
            message: format!("{key}{}", rest.as_ref()),
            span: None,
            alt: None,
        });
    }

    /// Records an error on `key` that is located at `alt` when `key` is not in the file.
    fn err_alt(&mut self, key: &str, alt: &str, rest: impl AsRef<str>) {
        self.err(key, rest);
        if let Some(last) = self.errors.last_mut() {
            last.alt = Some(alt.to_string());
        }
    }

    /// Whether an error was recorded for `key` or below it.
    fn failed(&self, key: &str) -> bool {
        self.errors.iter().any(|e| {
            e.key == key
                || e.key
                    .strip_prefix(key)
                    .is_some_and(|r| r.starts_with('.') || r.starts_with('['))
        })
    }

    /// Checks a number against an inclusive range; records an error and returns false if it is
    /// non-finite or outside.
    #[allow(clippy::too_many_arguments)]
    pub fn check_range(
        &mut self,
        key: &str,
        v: f64,
        min: f64,
        max: f64,
        min_text: &str,
        max_text: &str,
        unit: &str,
    ) -> bool {
        let range = allowed(min_text, max_text, unit);
        if !v.is_finite() {
            self.err(
                key,
                format!(" = {}: not a finite number; allowed {range}", num(v)),
            );
            false
        } else if v < min || v > max {
            self.err(key, format!(" = {}: out of range; allowed {range}", num(v)));
            false
        } else {
            true
        }
    }

    /// An integer in an inclusive range, or `None` (error recorded).
    fn int(&mut self, key: &str, v: i64, min: i64, max: i64, unit: &str) -> Option<i64> {
        if v < min || v > max {
            let range = allowed(&min.to_string(), &max.to_string(), unit);
            self.err(key, format!(" = {v}: out of range; allowed {range}"));
            None
        } else {
            Some(v)
        }
    }

    /// A float in a range, or `default` (error recorded).
    #[allow(clippy::too_many_arguments)]
    fn float(
        &mut self,
        key: &str,
        v: Option<f64>,
        default: f64,
        min: f64,
        max: f64,
        unit: &str,
    ) -> f64 {
        match v {
            Some(x) if self.check_range(key, x, min, max, &num(min), &num(max), unit) => x,
            _ => default,
        }
    }

    /// One of a fixed set of names.
    fn choice<T: Copy>(
        &mut self,
        key: &str,
        value: &str,
        what: &str,
        options: &[(&'static str, T)],
    ) -> Option<T> {
        if let Some((_, t)) = options.iter().find(|(n, _)| *n == value) {
            return Some(*t);
        }
        let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
        let hint = match suggest(value, &names) {
            Some(s) => format!("; did you mean `{s}`? allowed:"),
            None => "; allowed:".to_string(),
        };
        self.err(
            key,
            format!(
                " = {}: unknown {what}{hint} {}",
                toml_string(value),
                names.join(", ")
            ),
        );
        None
    }

    /// A list of days: each finite, ≥ 0 and at most `max`; sorted; duplicates refused.
    fn days(&mut self, key: &str, list: &[f64], max: f64, max_text: &str) -> Option<Vec<f64>> {
        let mut ok = true;
        for (i, &d) in list.iter().enumerate() {
            let k = format!("{key}[{i}]");
            if !d.is_finite() {
                self.err(
                    &k,
                    format!(
                        " = {}: not a finite number; days must be finite and ≥ 0",
                        num(d)
                    ),
                );
                ok = false;
            } else if d < 0.0 {
                self.err(&k, format!(" = {}: negative; days must be ≥ 0", num(d)));
                ok = false;
            } else if d > max {
                self.err(&k, format!(" = {}: beyond {max_text}", num(d)));
                ok = false;
            }
        }
        if !ok {
            return None;
        }
        let mut sorted = list.to_vec();
        sorted.sort_by(f64::total_cmp);
        let dups: Vec<f64> = sorted
            .windows(2)
            .filter(|w| w[0] == w[1])
            .map(|w| w[0])
            .collect();
        if let Some(&d) = dups.first() {
            self.err(
                key,
                format!(
                    ": day {} appears more than once; days must be distinct",
                    num(d)
                ),
            );
            return None;
        }
        Some(sorted)
    }
}

/// A number as a user would write it: `5`, `0.25`, `nan`, `inf`.
pub(crate) fn num(v: f64) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf".into() } else { "-inf".into() }
    } else {
        format!("{v}")
    }
}

/// A computed bound, rounded down to 3 significant digits (so that it is safe to use).
pub(crate) fn floor_sig(v: f64) -> String {
    if !(v.is_finite() && v > 0.0) {
        return num(v);
    }
    let scale = 10f64.powi(2 - v.log10().floor() as i32);
    num((v * scale).floor() / scale)
}

/// A string as a TOML basic string.
pub(crate) fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

const SITES: [(&str, Site); 6] = [
    ("face_cheek", Site::FaceCheek),
    ("forehead", Site::Forehead),
    ("neck", Site::Neck),
    ("abdomen", Site::Abdomen),
    ("back", Site::Back),
    ("hand_dorsum", Site::HandDorsum),
];
const KINDS: [(&str, DeviceKind); 4] = [
    ("pen", DeviceKind::Pen),
    ("roller", DeviceKind::Roller),
    ("stamp", DeviceKind::Stamp),
    ("custom", DeviceKind::Custom),
];
const PATTERNS: [(&str, Pattern); 3] = [
    ("jittered_grid", Pattern::JitteredGrid),
    ("grid", Pattern::Grid),
    ("poisson", Pattern::Poisson),
];

/// The name of a pattern in scenario files.
pub(crate) fn pattern_name(p: Pattern) -> &'static str {
    PATTERNS
        .iter()
        .find(|(_, q)| *q == p)
        .map_or("grid", |(n, _)| n)
}

/// Resolves a raw file into a scenario; the scenario is meaningful only without errors.
pub(crate) fn resolve(raw: &RawFile, stem: &str) -> (Scenario, Vec<Pending>) {
    let mut cx = Cx::default();
    let mut s = Scenario {
        name: stem.to_string(),
        ..Scenario::default()
    };
    if let Some(name) = &raw.name {
        if name.trim().is_empty()
            || name == "."
            || name == ".."
            || name
                .chars()
                .any(|c| c.is_control() || c == '/' || c == '\\')
        {
            cx.err(
                "name",
                format!(
                    " = {}: not usable as a folder name; use a non-empty name without / \\ or control characters",
                    toml_string(name)
                ),
            );
        } else {
            s.name = name.clone();
        }
    }
    if let Some(d) = &raw.description {
        s.description = d.clone();
    }
    if let Some(seed) = raw.seed {
        if seed < 0 {
            cx.err(
                "seed",
                format!(" = {seed}: negative; allowed 0–{}", i64::MAX),
            );
        } else {
            s.seed = seed as u64;
        }
    }
    s.tissue = tissue(&mut cx, raw.tissue.as_ref());
    s.device = device(&mut cx, raw.device.as_ref(), &Device::default(), "device");
    s.schedule = schedule(&mut cx, raw.schedule.as_ref(), &s.device);
    s.numerics = numerics(&mut cx, raw.numerics.as_ref());
    if let Some(m) = &raw.model {
        if let Some(t) = &m.immune {
            t.apply_floats(&mut cx, "model.immune", &mut s.model.immune);
        }
        if let Some(t) = &m.signals {
            t.apply_floats(&mut cx, "model.signals", &mut s.model.signals);
        }
        if let Some(t) = &m.matrix {
            t.apply_floats(&mut cx, "model.matrix", &mut s.model.matrix);
        }
        if let Some(t) = &m.fibroblasts {
            t.apply_floats(&mut cx, "model.fibroblasts", &mut s.model.fibroblasts);
        }
        if let Some(t) = &m.epidermis {
            t.apply_floats(&mut cx, "model.epidermis", &mut s.model.epidermis);
        }
    }
    s.output = output(&mut cx, raw.output.as_ref(), &s);
    consistency(&mut cx, &s);
    let resources_known = !["tissue", "schedule", "numerics", "output"]
        .iter()
        .any(|k| cx.failed(k));
    if resources_known {
        resources(&mut cx, &s);
    }
    (s, cx.errors)
}

fn tissue(cx: &mut Cx, raw: Option<&RawTissue>) -> Tissue {
    let mut t = Tissue::default();
    let Some(raw) = raw else { return t };
    if let Some(site) = &raw.site {
        if let Some(site) = cx.choice("tissue.site", site, "site", &SITES) {
            t.site = site;
            [t.epidermis_um, t.papillary_um, t.reticular_um] = site.thicknesses_um();
        }
    }
    if let Some(d) = &raw.domain_um {
        if d.len() != 2 {
            cx.err(
                "tissue.domain_um",
                format!(
                    ": expected [x, y], 2 numbers in µm; got {} numbers",
                    d.len()
                ),
            );
        } else {
            for (i, axis) in ["x", "y"].iter().enumerate() {
                let key = format!("tissue.domain_um[{i}]");
                if cx.check_range(&key, d[i], 100.0, 20000.0, "100", "20000", "µm") {
                    t.domain_um[i] = d[i];
                } else if let Some(last) = cx.errors.last_mut() {
                    last.message =
                        last.message
                            .replacen(&key, &format!("tissue.domain_um {axis}"), 1);
                }
            }
        }
    }
    raw.apply_floats(cx, "tissue", &mut t);
    t
}

/// Which kinds each kind-specific key applies to.
const KIND_KEYS: [(&str, &[DeviceKind]); 8] = [
    ("tilt_deg", &[DeviceKind::Roller]),
    ("roller_needles", &[DeviceKind::Roller]),
    ("roller_width_mm", &[DeviceKind::Roller]),
    ("roller_diameter_mm", &[DeviceKind::Roller]),
    ("pitch_um", &[DeviceKind::Stamp]),
    ("density_per_cm2", &[DeviceKind::Pen, DeviceKind::Custom]),
    ("pattern", &[DeviceKind::Pen, DeviceKind::Custom]),
    ("passes", &[DeviceKind::Roller, DeviceKind::Stamp]),
];

/// Whether a device key applies to a kind.
pub(crate) fn applies(key: &str, kind: DeviceKind) -> bool {
    KIND_KEYS
        .iter()
        .find(|(k, _)| *k == key)
        .is_none_or(|(_, kinds)| kinds.contains(&kind))
}

/// Resolves a device table on top of `base` (or of the defaults of a different kind).
fn device(cx: &mut Cx, raw: Option<&RawDevice>, base: &Device, prefix: &str) -> Device {
    let Some(raw) = raw else { return base.clone() };
    let kind = match &raw.kind {
        Some(k) => cx
            .choice(&format!("{prefix}.kind"), k, "device kind", &KINDS)
            .unwrap_or(base.kind),
        None => base.kind,
    };
    let mut d = if kind == base.kind {
        base.clone()
    } else {
        Device::defaults(kind)
    };
    let mut raw = raw.clone();
    let present: Vec<&str> = raw
        .present_floats()
        .iter()
        .map(|(k, _)| *k)
        .chain(raw.pattern.as_ref().map(|_| "pattern"))
        .chain(raw.passes.as_ref().map(|_| "passes"))
        .collect();
    for key in present {
        if applies(key, kind) {
            continue;
        }
        let kinds = KIND_KEYS
            .iter()
            .find(|(k, _)| *k == key)
            .map_or(&[][..], |(_, k)| k);
        let names: Vec<String> = kinds.iter().map(|k| format!("`{}`", k.name())).collect();
        cx.err(
            &format!("{prefix}.{key}"),
            format!(
                ": does not apply to a `{}` device; it applies only to kind {}",
                kind.name(),
                names.join(" and ")
            ),
        );
        match key {
            "tilt_deg" => raw.tilt_deg = None,
            "roller_needles" => raw.roller_needles = None,
            "roller_width_mm" => raw.roller_width_mm = None,
            "roller_diameter_mm" => raw.roller_diameter_mm = None,
            "pitch_um" => raw.pitch_um = None,
            "density_per_cm2" => raw.density_per_cm2 = None,
            "pattern" => raw.pattern = None,
            _ => raw.passes = None,
        }
    }
    if let Some(p) = &raw.pattern {
        if let Some(p) = cx.choice(&format!("{prefix}.pattern"), p, "pattern", &PATTERNS) {
            d.pattern = p;
        }
    }
    if let Some(n) = raw.passes {
        if let Some(n) = cx.int(&format!("{prefix}.passes"), n, 1, 100, "") {
            d.passes = n as u32;
        }
    }
    raw.apply_floats(cx, prefix, &mut d);
    d
}

fn schedule(cx: &mut Cx, raw: Option<&RawSchedule>, base: &Device) -> Schedule {
    let mut s = Schedule::default();
    let Some(raw) = raw else { return s };
    if let Some(list) = &raw.days {
        let generated: Vec<&str> = [
            ("sessions", raw.sessions.is_some()),
            ("interval_days", raw.interval_days.is_some()),
            ("start_day", raw.start_day.is_some()),
        ]
        .iter()
        .filter(|(_, set)| *set)
        .map(|(k, _)| *k)
        .collect();
        if !generated.is_empty() {
            cx.err(
                "schedule.days",
                format!(
                    ": give either an explicit `days` list or `sessions`/`interval_days`/`start_day`, not both (also set: {})",
                    generated.join(", ")
                ),
            );
        }
        if list.len() > 100 {
            cx.err(
                "schedule.days",
                format!(": {} sessions; at most 100 allowed", list.len()),
            );
        } else if let Some(days) = cx.days("schedule.days", list, 36500.0, "100 years (36500 days)")
        {
            s.days = days;
        }
    } else {
        let n = match raw.sessions {
            Some(n) => cx
                .int("schedule.sessions", n, 0, 100, "sessions")
                .unwrap_or(3),
            None => 3,
        };
        let interval = cx.float(
            "schedule.interval_days",
            raw.interval_days,
            28.0,
            1.0,
            3650.0,
            "days",
        );
        let start = cx.float(
            "schedule.start_day",
            raw.start_day,
            0.0,
            0.0,
            3650.0,
            "days",
        );
        s.days = (0..n).map(|i| start + i as f64 * interval).collect();
    }
    s.follow_up_days = cx.float(
        "schedule.follow_up_days",
        raw.follow_up_days,
        180.0,
        1.0,
        3650.0,
        "days",
    );
    for (i, o) in raw.overrides.iter().flatten().enumerate() {
        let prefix = format!("schedule.override[{i}]");
        let session = match o.session {
            None => {
                cx.err(
                    &prefix,
                    ": missing `session = N` (the session number, from 1)",
                );
                None
            }
            Some(n) if n < 1 || n as u128 > s.days.len() as u128 => {
                cx.err(
                    &format!("{prefix}.session"),
                    format!(
                        " = {n}: no such session; the schedule has {} session{} (numbered from 1)",
                        s.days.len(),
                        if s.days.len() == 1 { "" } else { "s" }
                    ),
                );
                None
            }
            Some(n) => Some(n as u32),
        };
        let Some(raw_device) = &o.device else {
            cx.err(
                &prefix,
                ": missing `device = { ... }` (the keys that change at this session)",
            );
            continue;
        };
        let device = device(cx, Some(raw_device), base, &format!("{prefix}.device"));
        if let Some(session) = session {
            if s.overrides.iter().any(|p| p.session == session) {
                cx.err(
                    &format!("{prefix}.session"),
                    format!(
                        " = {session}: session already overridden; give one override per session"
                    ),
                );
            } else {
                s.overrides.push(SessionOverride { session, device });
            }
        }
    }
    s
}

fn numerics(cx: &mut Cx, raw: Option<&RawNumerics>) -> Numerics {
    let mut n = Numerics::default();
    let Some(raw) = raw else { return n };
    raw.apply_floats(cx, "numerics", &mut n);
    if let Some(f) = raw.fast_forward {
        n.fast_forward = f;
    }
    if let Some(m) = raw.max_steps {
        if let Some(m) = cx.int("numerics.max_steps", m, 1, i64::MAX, "steps") {
            n.max_steps = m as u64;
        }
    }
    if let Some(m) = raw.max_dt_h {
        let min = n.dt_h;
        if cx.check_range(
            "numerics.max_dt_h",
            m,
            min,
            240.0,
            &format!("dt_h ({})", num(min)),
            "240",
            "h",
        ) {
            n.max_dt_h = m;
        }
    }
    n
}

fn output(cx: &mut Cx, raw: Option<&RawOutput>, s: &Scenario) -> Output {
    let empty = RawOutput::default();
    let raw = raw.unwrap_or(&empty);
    let mut o = Output::default();
    raw.apply_floats(cx, "output", &mut o);
    if let Some(c) = raw.control {
        o.control = c;
    }
    let ly = s.tissue.domain_um[1];
    o.section_y_um = ly / 2.0;
    if let Some(y) = raw.section_y_um {
        if cx.check_range(
            "output.section_y_um",
            y,
            0.0,
            ly,
            "0",
            &format!("domain_um y ({})", num(ly)),
            "µm",
        ) {
            o.section_y_um = y;
        } else if let Some(last) = cx.errors.last_mut() {
            last.message
                .push_str(": the section must lie inside the block");
        }
    }
    let follow = s.schedule.follow_up_days;
    o.metric_days_after_last = match &raw.metric_days_after_last {
        None => [30.0, 90.0, 180.0]
            .into_iter()
            .filter(|&d| d <= follow)
            .collect(),
        Some(list) => {
            let key = "output.metric_days_after_last";
            let mut ok = true;
            for (i, &d) in list.iter().enumerate() {
                if d.is_finite() && d > follow {
                    cx.err(
                        &format!("{key}[{i}]"),
                        format!(
                            " = {}: beyond schedule.follow_up_days = {}; the follow-up must cover the metric days",
                            num(d),
                            num(follow)
                        ),
                    );
                    ok = false;
                }
            }
            let days = if ok {
                cx.days(key, list, follow, "the follow-up")
            } else {
                None
            };
            days.unwrap_or_default()
        }
    };
    let first = s.schedule.days.first().copied();
    let last = s.schedule.days.last().copied().unwrap_or(0.0);
    let end = last + follow;
    o.snapshot_days = match &raw.snapshot_days {
        None => {
            let mut v: Vec<f64> = match first {
                Some(f) => std::iter::once(f + 7.0)
                    .chain(o.metric_days_after_last.iter().map(|m| last + m))
                    .collect(),
                None => vec![7.0, follow],
            };
            v.retain(|&d| d <= end);
            v.sort_by(f64::total_cmp);
            v.dedup();
            v
        }
        Some(list) => cx
            .days(
                "output.snapshot_days",
                list,
                end,
                &format!("the end of the run (day {})", num(end)),
            )
            .unwrap_or_default(),
    };
    o
}

fn consistency(cx: &mut Cx, s: &Scenario) {
    let t = &s.tissue;
    let dt = s.numerics.dt_h;
    if !cx.failed("tissue") {
        for (i, axis) in ["x", "y"].iter().enumerate() {
            let l = t.domain_um[i];
            if t.voxel_um * 3.0 > l {
                cx.err_alt(
                    "tissue.voxel_um",
                    "tissue.domain_um",
                    format!(
                        " = {}: the block must be at least 3 voxels wide; domain_um {axis} = {} µm allows voxel_um ≤ {} µm",
                        num(t.voxel_um),
                        num(l),
                        floor_sig(l / 3.0)
                    ),
                );
            }
        }
        let total = t.epidermis_um + t.papillary_um + t.reticular_um;
        let devices = std::iter::once(("device".to_string(), &s.device)).chain(
            s.schedule
                .overrides
                .iter()
                .enumerate()
                .map(|(i, o)| (format!("schedule.override[{i}].device"), &o.device)),
        );
        for (prefix, d) in devices {
            if cx.failed(&prefix) {
                continue;
            }
            let depth = d.needle_length_mm * 1000.0 * d.penetration_fraction;
            if depth >= total {
                cx.err_alt(
                    &format!("{prefix}.needle_length_mm"),
                    &format!("{prefix}.penetration_fraction"),
                    format!(
                        " = {}: channel depth {} µm (needle_length_mm × 1000 × penetration_fraction {}) must be less than the tissue depth {} µm (epidermis + papillary + reticular)",
                        num(d.needle_length_mm),
                        num(depth),
                        num(d.penetration_fraction),
                        num(total)
                    ),
                );
            }
        }
    }
    if cx.failed("numerics.dt_h") {
        return;
    }
    let sig = &s.model.signals;
    let decays = [
        ("model.signals.pdgf_decay_per_h", "", sig.pdgf_decay_per_h),
        ("model.signals.tgfb_decay_per_h", "", sig.tgfb_decay_per_h),
        (
            "model.signals.protease_decay_per_h",
            "",
            sig.protease_decay_per_h,
        ),
        (
            "model.immune.macrophage_clearance_per_day",
            " ÷ 24",
            s.model.immune.macrophage_clearance_per_day / 24.0,
        ),
    ];
    for (field, per_h, k) in decays {
        if k * dt > 0.2 {
            cx.err_alt(
                "numerics.dt_h",
                field,
                format!(
                    " = {}: {field}{per_h} × dt_h = {} exceeds 0.2 (explicit decay would be inaccurate); largest dt_h allowed {} h",
                    num(dt),
                    floor_sig(k * dt),
                    floor_sig(0.2 / k)
                ),
            );
        }
    }
    if !cx.failed("tissue.voxel_um") {
        let f = &s.model.fibroblasts;
        let half = t.voxel_um / 2.0;
        for (name, v) in [
            ("speed_quiescent_um_per_h", f.speed_quiescent_um_per_h),
            ("speed_activated_um_per_h", f.speed_activated_um_per_h),
            (
                "speed_myofibroblast_um_per_h",
                f.speed_myofibroblast_um_per_h,
            ),
        ] {
            if v * dt > half {
                cx.err_alt(
                    "numerics.dt_h",
                    &format!("model.fibroblasts.{name}"),
                    format!(
                        " = {}: model.fibroblasts.{name} × dt_h = {} µm exceeds half a voxel ({} µm); largest dt_h allowed {} h",
                        num(dt),
                        num(v * dt),
                        num(half),
                        floor_sig(half / v)
                    ),
                );
            }
        }
    }
    let multiple = |x: f64| {
        let r = x / dt;
        (r - r.round()).abs() <= 1e-9
    };
    let o = &s.output;
    if !cx.failed("output.fine_interval_h") && !multiple(o.fine_interval_h) {
        cx.err_alt(
            "output.fine_interval_h",
            "numerics.dt_h",
            format!(
                " = {}: not a multiple of numerics.dt_h = {} h",
                num(o.fine_interval_h),
                num(dt)
            ),
        );
    }
    let slow = s.numerics.slow_interval_h;
    if !cx.failed("numerics.slow_interval_h") && !multiple(slow) {
        cx.err_alt(
            "numerics.slow_interval_h",
            "numerics.dt_h",
            format!(
                " = {}: not a multiple of numerics.dt_h = {} h",
                num(slow),
                num(dt)
            ),
        );
    }
    let settle = s.numerics.settle_step_h;
    if !cx.failed("numerics.settle_step_h")
        && !cx.failed("numerics.slow_interval_h")
        && multiple(slow)
        && (!multiple(settle) || settle > slow + 1e-9 || {
            let k = slow / settle;
            (k - k.round()).abs() > 1e-6
        })
    {
        cx.err_alt(
            "numerics.settle_step_h",
            "numerics.slow_interval_h",
            format!(
                " = {}: must be a multiple of numerics.dt_h = {} h that divides numerics.slow_interval_h = {} h",
                num(settle),
                num(dt),
                num(slow)
            ),
        );
    }
    if !cx.failed("output.interval_days") && !multiple(o.interval_days * 24.0) {
        cx.err_alt(
            "output.interval_days",
            "numerics.dt_h",
            format!(
                " = {}: {} h is not a multiple of numerics.dt_h = {} h",
                num(o.interval_days),
                num(o.interval_days * 24.0),
                num(dt)
            ),
        );
    }
    if !cx.failed("numerics.max_dt_h") && s.numerics.max_dt_h < dt {
        cx.err(
            "numerics.max_dt_h",
            format!(
                " = {}: smaller than numerics.dt_h = {} h; allowed dt_h–240 h",
                num(s.numerics.max_dt_h),
                num(dt)
            ),
        );
    }
}

fn resources(cx: &mut Cx, s: &Scenario) {
    let e = estimate(s);
    let limit = s.numerics.max_memory_gib;
    let gib = e.memory_bytes as f64 / GIB;
    if gib > limit {
        let arms = if s.output.control { 2 } else { 1 };
        cx.err_alt(
            "numerics.max_memory_gib",
            "tissue.voxel_um",
            format!(
                " = {}: the scenario needs ≈ {gib:.1} GiB ({:.1e} voxels, {:.1e} agents at peak, × {arms} arm{}); limit {} GiB: use a larger voxel_um or a smaller domain_um",
                num(limit),
                e.voxels as f64,
                e.agents_peak as f64,
                if arms == 1 { "" } else { "s" },
                num(limit)
            ),
        );
    }
    if e.steps_upper_bound > s.numerics.max_steps {
        cx.err_alt(
            "numerics.max_steps",
            "numerics.dt_h",
            format!(
                " = {}: the run needs up to {} steps (end day {} × 24 h ÷ dt_h {} h): use a larger dt_h or a shorter schedule, or raise max_steps",
                s.numerics.max_steps,
                e.steps_upper_bound,
                num(s.end_day()),
                num(s.numerics.dt_h)
            ),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(text: &str) -> (Scenario, Vec<Pending>) {
        let raw: RawFile = toml::from_str(text).unwrap();
        resolve(&raw, "t")
    }

    #[test]
    fn floor_sig_never_rounds_up() {
        assert_eq!(floor_sig(0.32), "0.32");
        assert_eq!(floor_sig(2.0 / 3.0), "0.666");
        assert_eq!(floor_sig(633.333), "633");
    }

    #[test]
    fn override_of_another_kind_starts_from_its_defaults() {
        let (s, e) = run(
            "[device]\nneedle_length_mm = 1.5\n[[schedule.override]]\nsession = 1\ndevice = { kind = \"roller\" }\n",
        );
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(
            s.schedule.overrides[0].device,
            Device::defaults(DeviceKind::Roller)
        );
        assert_eq!(s.device.needle_length_mm, 1.5);
    }

    #[test]
    fn same_kind_override_keeps_the_base_keys() {
        let (s, e) = run(
            "[device]\nneedle_length_mm = 1.5\n[[schedule.override]]\nsession = 2\ndevice = { channel_radius_um = 50 }\n",
        );
        assert!(e.is_empty(), "{e:?}");
        let d = &s.schedule.overrides[0].device;
        assert_eq!((d.needle_length_mm, d.channel_radius_um), (1.5, 50.0));
    }

    #[test]
    fn generated_days_and_snapshots() {
        let (s, e) = run(
            "[schedule]\nsessions = 2\ninterval_days = 10\nstart_day = 5\nfollow_up_days = 40\n",
        );
        assert!(e.is_empty(), "{e:?}");
        assert_eq!(s.schedule.days, vec![5.0, 15.0]);
        assert_eq!(s.output.metric_days_after_last, vec![30.0]);
        assert_eq!(s.output.snapshot_days, vec![12.0, 45.0]);
        assert_eq!(s.output.section_y_um, 950.0);
    }

    #[test]
    fn errors_in_a_table_suppress_consistency_checks_on_it() {
        let (_, e) = run("[tissue]\nvoxel_um = 500\ndomain_um = [100, 100]\n");
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].key, "tissue.voxel_um");
    }
}
