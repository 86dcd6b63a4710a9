//! Reading a scenario: the file (size, kind and encoding checks), TOML syntax, stage 1 (serde,
//! reporting every unknown key and wrong type by removing the offender and trying again) and
//! stage 2 ([`validate`](super::validate)); every error is located at its line and column.

use std::collections::HashMap;
use std::io::Read;
use std::ops::Range;
use std::path::Path;

use serde::Deserialize;
use toml::de::DeTable;

use super::error::{ScenarioError, ScenarioErrors, suggest};
use super::locate::{self, Lines, Seg};
use super::raw::RawFile;
use super::types::Scenario;
use super::validate::{Pending, resolve};

/// Largest scenario file accepted, bytes.
pub const MAX_FILE_BYTES: u64 = 1024 * 1024;
/// Most syntax or structure errors reported before giving up.
const MAX_STAGE1_ERRORS: usize = 50;

fn file_error(file: &Path, line: Option<(usize, usize)>, message: String) -> ScenarioErrors {
    ScenarioErrors(vec![ScenarioError {
        file: file.to_path_buf(),
        line: line.map(|l| l.0),
        column: line.map(|l| l.1),
        key: String::new(),
        message,
    }])
}

/// Reads and validates a scenario file.
pub fn load(path: &Path) -> Result<Scenario, ScenarioErrors> {
    let meta = std::fs::metadata(path).map_err(|e| {
        let why = match e.kind() {
            std::io::ErrorKind::NotFound => "no such file".to_string(),
            _ => format!("cannot read the file: {e}"),
        };
        file_error(path, None, why)
    })?;
    if meta.is_dir() {
        return Err(file_error(
            path,
            None,
            "is a directory, not a scenario file; give the path of a .toml file".into(),
        ));
    }
    let too_big = |n: u64| {
        file_error(
            path,
            None,
            format!(
                "the file is {n} bytes; scenario files are limited to 1 MiB ({MAX_FILE_BYTES} bytes)"
            ),
        )
    };
    if meta.len() > MAX_FILE_BYTES {
        return Err(too_big(meta.len()));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| file_error(path, None, format!("cannot read the file: {e}")))?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(too_big(bytes.len() as u64));
    }
    let text = match std::str::from_utf8(&bytes) {
        Ok(t) => t,
        Err(e) => {
            let at = e.valid_up_to();
            return Err(file_error(
                path,
                Some(locate::byte_position(&bytes, at)),
                format!(
                    "not valid UTF-8: byte 0x{:02x} at byte offset {at}; save the file as UTF-8",
                    bytes[at]
                ),
            ));
        }
    };
    parse(text, path)
}

/// Parses and validates scenario text; `file` names it in messages and gives the default name.
pub fn parse(text: &str, file: &Path) -> Result<Scenario, ScenarioErrors> {
    let lines = Lines::new(text);
    let locate_span = |span: &Range<usize>| lines.position(span.start);
    let to_error = |p: Pending, index: &HashMap<String, Range<usize>>| {
        let exact = |k: &str| index.get(k).cloned();
        let span = p
            .span
            .or_else(|| exact(&p.key))
            .or_else(|| p.alt.as_deref().and_then(exact))
            .or_else(|| locate::lookup(index, &p.key))
            .or_else(|| p.alt.as_deref().and_then(|k| locate::lookup(index, k)));
        let pos = span.as_ref().map(locate_span);
        ScenarioError {
            file: file.to_path_buf(),
            line: pos.map(|p| p.0),
            column: pos.map(|p| p.1),
            key: p.key,
            message: p.message,
        }
    };
    let (mut root, syntax) = DeTable::parse_recoverable(text);
    if !syntax.is_empty() {
        let errors = syntax
            .iter()
            .take(MAX_STAGE1_ERRORS)
            .map(|e| {
                let message = e.message().lines().next().unwrap_or("syntax error");
                to_error(
                    Pending {
                        key: String::new(),
                        message: format!("TOML syntax error: {message}"),
                        span: Some(e.span().unwrap_or(0..0)),
                        alt: None,
                    },
                    &HashMap::new(),
                )
            })
            .collect();
        return Err(ScenarioErrors(errors));
    }
    let index = locate::index(root.get_ref());
    let mut pending = Vec::new();
    let mut raw = None;
    while pending.len() < MAX_STAGE1_ERRORS {
        let de = toml::de::Deserializer::from(root.clone());
        match RawFile::deserialize(de) {
            Ok(r) => {
                raw = Some(r);
                break;
            }
            Err(e) => {
                let path = e.span().and_then(|s| locate::find(root.get_ref(), &s));
                pending.push(stage1_error(&e, path.as_deref(), text, &index));
                match path {
                    Some(p) if locate::remove(root.get_mut(), &p) => {}
                    _ => break,
                }
            }
        }
    }
    if let Some(raw) = raw {
        let stem = file
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "default".into());
        let (scenario, errors) = resolve(&raw, &stem);
        if pending.is_empty() && errors.is_empty() {
            return Ok(scenario);
        }
        pending.extend(errors);
    }
    let mut errors: Vec<ScenarioError> = pending.into_iter().map(|p| to_error(p, &index)).collect();
    errors.sort_by_key(|e| (e.line.is_none(), e.line, e.column));
    Err(ScenarioErrors(errors))
}

/// The source text of a span, on one line and shortened.
fn snippet(text: &str, span: &Range<usize>) -> String {
    let s = text.get(span.clone()).unwrap_or("").trim();
    let first = s.lines().next().unwrap_or("");
    let short: String = first.chars().take(40).collect();
    if short.len() < s.len() {
        format!("{short}…")
    } else {
        short
    }
}

/// Turns a serde error from stage 1 into a located message.
fn stage1_error(
    e: &toml::de::Error,
    path: Option<&[Seg]>,
    text: &str,
    index: &HashMap<String, Range<usize>>,
) -> Pending {
    let msg = e.message().lines().next().unwrap_or("").to_string();
    let key = path.map(locate::render).unwrap_or_default();
    let span = e.span();
    let quoted: Vec<&str> = msg.split('`').skip(1).step_by(2).collect();
    let message = if let Some(unknown) = msg.strip_prefix("unknown field `") {
        let name = unknown.split('`').next().unwrap_or("");
        let valid: Vec<&str> = quoted.iter().skip(1).copied().collect();
        let prefix = format!("{key}.");
        let is_table = index.keys().any(|k| k.starts_with(&prefix));
        let what = if is_table { "table" } else { "key" };
        match suggest(name, &valid) {
            Some(s) => format!("{key}: unknown {what}; did you mean `{s}`?"),
            None if valid.is_empty() => format!("{key}: unknown {what}"),
            None => format!(
                "{key}: unknown {what}; valid keys here: {}",
                valid.join(", ")
            ),
        }
    } else if let Some(rest) = msg.strip_prefix("invalid type: ") {
        let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, "?"));
        let expected = match expected {
            "f64" => "a number",
            "i64" => "an integer",
            "a boolean" | "bool" => "true or false",
            "a string" => "a string",
            "a sequence" => "an array",
            x if x.starts_with("struct ") => "a table",
            x => x,
        };
        let found = found
            .replace("floating point", "float")
            .replace("sequence", "array")
            .replace("map", "table");
        let value = span.as_ref().map(|s| snippet(text, s)).unwrap_or_default();
        let value = if value.is_empty() {
            found.clone()
        } else {
            value
        };
        format!("{key} = {value}: wrong type; expected {expected}, found {found}")
    } else {
        let value = span.as_ref().map(|s| snippet(text, s)).unwrap_or_default();
        if key.is_empty() {
            msg
        } else {
            format!("{key} = {value}: {msg}")
        }
    };
    Pending {
        key,
        message,
        span,
        alt: None,
    }
}
