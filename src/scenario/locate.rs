//! Where things are in the source text: byte offset → line:column, dotted key path → the span of
//! the key, and the entry a serde error points at (so that it can be reported and removed).

use std::collections::HashMap;
use std::ops::Range;

use toml::de::{DeTable, DeValue};

/// Byte offsets of line starts, for offset → (line, column) conversion.
pub(crate) struct Lines<'a> {
    text: &'a str,
    starts: Vec<usize>,
}

impl<'a> Lines<'a> {
    /// Indexes `text`.
    pub fn new(text: &'a str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Lines { text, starts }
    }

    /// 1-based line and column (in characters) of a byte offset (clamped to the text).
    pub fn position(&self, offset: usize) -> (usize, usize) {
        let mut offset = offset.min(self.text.len());
        while !self.text.is_char_boundary(offset) {
            offset -= 1;
        }
        let line = self.starts.partition_point(|&s| s <= offset).max(1);
        let start = self.starts[line - 1];
        let column = self.text[start..offset].chars().count() + 1;
        (line, column)
    }
}

/// 1-based line and column of a byte offset in raw bytes (for text that is not UTF-8).
pub(crate) fn byte_position(bytes: &[u8], offset: usize) -> (usize, usize) {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let start = before
        .iter()
        .rposition(|&b| b == b'\n')
        .map_or(0, |i| i + 1);
    (line, offset - start + 1)
}

/// A step of a path into the document.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Seg {
    /// A key of a table.
    Key(String),
    /// An element of an array.
    Index(usize),
}

/// Renders a path as `a.b[2].c`.
pub(crate) fn render(path: &[Seg]) -> String {
    let mut s = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}

/// Span of every key (and array element) by dotted path.
pub(crate) fn index(root: &DeTable<'_>) -> HashMap<String, Range<usize>> {
    fn table(t: &DeTable<'_>, prefix: &str, out: &mut HashMap<String, Range<usize>>) {
        for (k, v) in t.iter() {
            let path = if prefix.is_empty() {
                k.get_ref().to_string()
            } else {
                format!("{prefix}.{}", k.get_ref())
            };
            value(v.get_ref(), &path, out);
            out.insert(path, k.span());
        }
    }
    fn value(v: &DeValue<'_>, path: &str, out: &mut HashMap<String, Range<usize>>) {
        match v {
            DeValue::Table(t) => table(t, path, out),
            DeValue::Array(a) => {
                for (i, e) in a.iter().enumerate() {
                    let p = format!("{path}[{i}]");
                    value(e.get_ref(), &p, out);
                    out.insert(p, e.span());
                }
            }
            _ => {}
        }
    }
    let mut out = HashMap::new();
    table(root, "", &mut out);
    out
}

/// The span for a dotted path, falling back to its nearest located ancestor.
pub(crate) fn lookup(index: &HashMap<String, Range<usize>>, path: &str) -> Option<Range<usize>> {
    let mut p = path;
    loop {
        if let Some(span) = index.get(p) {
            return Some(span.clone());
        }
        let cut = p.rfind(['.', '['])?;
        p = &p[..cut];
    }
}

fn contains(outer: &Range<usize>, inner: &Range<usize>) -> bool {
    outer.start <= inner.start && inner.end <= outer.end && outer.start < outer.end
}

/// The deepest entry whose key is `span` or whose value contains `span`.
pub(crate) fn find(root: &DeTable<'_>, span: &Range<usize>) -> Option<Vec<Seg>> {
    fn table(t: &DeTable<'_>, span: &Range<usize>, path: &mut Vec<Seg>) -> bool {
        for (k, v) in t.iter() {
            if k.span() == *span || contains(&v.span(), span) {
                path.push(Seg::Key(k.get_ref().to_string()));
                value(v.get_ref(), span, path);
                return true;
            }
        }
        // Tables from `[header]`s may span only their header: search inside them too.
        for (k, v) in t.iter() {
            path.push(Seg::Key(k.get_ref().to_string()));
            if value(v.get_ref(), span, path) {
                return true;
            }
            path.pop();
        }
        false
    }
    fn value(v: &DeValue<'_>, span: &Range<usize>, path: &mut Vec<Seg>) -> bool {
        match v {
            DeValue::Table(t) => table(t, span, path),
            DeValue::Array(a) => {
                for (i, e) in a.iter().enumerate() {
                    path.push(Seg::Index(i));
                    if contains(&e.span(), span) {
                        value(e.get_ref(), span, path);
                        return true;
                    }
                    if value(e.get_ref(), span, path) {
                        return true;
                    }
                    path.pop();
                }
                false
            }
            _ => false,
        }
    }
    let mut path = Vec::new();
    table(root, span, &mut path).then_some(path)
}

/// Removes the entry at `path` (an array element removes its whole key). Whether it was found.
pub(crate) fn remove(root: &mut DeTable<'_>, path: &[Seg]) -> bool {
    fn in_value(v: &mut DeValue<'_>, path: &[Seg]) -> bool {
        match (v, path.first()) {
            (DeValue::Table(t), Some(_)) => in_table(t, path),
            (DeValue::Array(a), Some(Seg::Index(j))) => match a.get_mut(*j) {
                Some(e) => in_value(e.get_mut(), &path[1..]),
                None => false,
            },
            _ => false,
        }
    }
    fn in_table(t: &mut DeTable<'_>, path: &[Seg]) -> bool {
        match path {
            [Seg::Key(k)] => t.remove(k.as_str()).is_some(),
            [Seg::Key(k), rest @ ..] => match t.get_mut(k.as_str()) {
                Some(v) => in_value(v.get_mut(), rest),
                None => false,
            },
            _ => false,
        }
    }
    let mut path = path.to_vec();
    while matches!(path.last(), Some(Seg::Index(_))) {
        path.pop();
    }
    in_table(root, &path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_characters() {
        let l = Lines::new("a = 1\nµµ = 2\n");
        assert_eq!(l.position(0), (1, 1));
        assert_eq!(l.position(6), (2, 1));
        assert_eq!(l.position(10), (2, 3));
        assert_eq!(l.position(1000), (3, 1));
    }

    #[test]
    fn keys_are_indexed_and_removed() {
        let text = "[device]\nkind = \"pen\"\n[[schedule.override]]\nsession = 2\ndevice = { tilt_deg = 3 }\n";
        let mut root = DeTable::parse(text).unwrap().into_inner();
        let idx = index(&root);
        let span = idx["device.kind"].clone();
        assert_eq!(&text[span.clone()], "kind");
        let tilt = idx["schedule.override[0].device.tilt_deg"].clone();
        assert_eq!(&text[tilt.clone()], "tilt_deg");
        let path = find(&root, &tilt).unwrap();
        assert_eq!(render(&path), "schedule.override[0].device.tilt_deg");
        assert!(remove(&mut root, &path));
        assert!(!index(&root).contains_key("schedule.override[0].device.tilt_deg"));
        assert_eq!(
            lookup(&idx, "device.needle_length_mm"),
            Some(idx["device"].clone())
        );
    }
}
