//! Scenario errors: one [`ScenarioError`] per problem, located in the file, collected into
//! [`ScenarioErrors`]; and the "did you mean" suggestion used for unknown keys and values.

use std::fmt;
use std::path::PathBuf;

/// One problem with a scenario file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioError {
    /// The scenario file.
    pub file: PathBuf,
    /// 1-based line of the offending key or token, when known.
    pub line: Option<usize>,
    /// 1-based column (in characters) of the offending key or token, when known.
    pub column: Option<usize>,
    /// Dotted key path, e.g. `device.needle_length_mm`; empty for file and syntax errors.
    pub key: String,
    /// The complete message: key, value and what is allowed, e.g.
    /// `device.needle_length_mm = 5: out of range; allowed 0.1–3.0 mm`.
    pub message: String,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        write!(f, ": {}", self.message)
    }
}

impl std::error::Error for ScenarioError {}

/// Every problem found in a scenario file (never empty when returned as an error).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScenarioErrors(pub Vec<ScenarioError>);

impl ScenarioErrors {
    /// Whether any error carries exactly this key.
    pub fn has_key(&self, key: &str) -> bool {
        self.0.iter().any(|e| e.key == key)
    }
}

impl fmt::Display for ScenarioErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for e in &self.0 {
            writeln!(f, "{e}")?;
        }
        let n = self.0.len();
        let file = self
            .0
            .first()
            .map(|e| e.file.display().to_string())
            .unwrap_or_default();
        write!(f, "{n} error{} in {file}", if n == 1 { "" } else { "s" })
    }
}

impl std::error::Error for ScenarioErrors {}

/// Optimal-string-alignment (restricted Damerau–Levenshtein) distance, in characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let (n, m) = (a.len(), b.len());
    // Three rolling rows: i-2, i-1, i.
    let mut prev2 = vec![0usize; m + 1];
    let mut prev: Vec<usize> = (0..=m).collect();
    let mut cur = vec![0usize; m + 1];
    for i in 1..=n {
        cur[0] = i;
        for j in 1..=m {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut d = (prev[j] + 1).min(cur[j - 1] + 1).min(prev[j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                d = d.min(prev2[j - 2] + 1);
            }
            cur[j] = d;
        }
        std::mem::swap(&mut prev2, &mut prev);
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[m]
}

/// The candidate closest to `word`, if it is close enough to be a plausible typo (or `word` is a
/// prefix of it, as `face` of `face_cheek`).
pub fn suggest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    // Long inputs cannot be typos of short keys; skip the quadratic distance for them.
    if word.is_empty() || word.chars().count() > 64 {
        return None;
    }
    let lower = word.to_ascii_lowercase();
    let mut best: Option<(usize, &str)> = None;
    for &c in candidates {
        let d = edit_distance(&lower, c);
        let limit = (c.chars().count() / 3).clamp(1, 3);
        let prefix = lower.chars().count() >= 3 && (c.starts_with(&lower) || lower.starts_with(c));
        if (d <= limit || prefix) && best.is_none_or(|(bd, _)| d < bd) {
            best = Some((d, c));
        }
    }
    best.map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_transpositions_once() {
        assert_eq!(edit_distance("needle_lenght_mm", "needle_length_mm"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }

    #[test]
    fn suggestions_are_close_or_prefixes() {
        let keys = ["needle_length_mm", "penetration_fraction", "kind"];
        assert_eq!(suggest("needle_lenght_mm", &keys), Some("needle_length_mm"));
        assert_eq!(suggest("zzz", &keys), None);
        assert_eq!(
            suggest("face", &["face_cheek", "forehead"]),
            Some("face_cheek")
        );
        assert_eq!(suggest("kin", &keys), Some("kind"));
    }
}
