//! `statusDetails` within the AWS limits: at most 10 pairs, keys `[a-zA-Z0-9:_-]{1,128}`,
//! values non-empty strings of at most 1024 characters with no control characters. The
//! first value set for a key keeps its place; later pairs past the tenth are dropped, so
//! callers add the most important keys first.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub const MAX_PAIRS: usize = 10;
pub const MAX_VALUE_CHARS: usize = 1024;
pub const MAX_KEY_CHARS: usize = 128;

/// An ordered, limit-respecting `statusDetails` map.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Details(Vec<(String, String)>);

impl Details {
    pub fn new() -> Self {
        Self::default()
    }

    /// Set `key` (replacing its value in place when present). Invalid keys are dropped, values
    /// are cleaned; an empty value removes nothing and adds nothing.
    pub fn set(&mut self, key: &str, value: impl AsRef<str>) -> &mut Self {
        let value = clean_value(value.as_ref());
        if value.is_empty() || !valid_key(key) {
            return self;
        }
        if let Some(slot) = self.0.iter_mut().find(|(k, _)| k == key) {
            slot.1 = value;
        } else if self.0.len() < MAX_PAIRS {
            self.0.push((key.to_owned(), value));
        }
        self
    }

    /// Add pairs whose keys are not set yet (existing keys keep their value).
    pub fn fill<'a>(&mut self, pairs: impl IntoIterator<Item = &'a (String, String)>) -> &mut Self {
        for (k, v) in pairs {
            if self.get(k).is_none() {
                self.set(k, v);
            }
        }
        self
    }

    pub fn with(mut self, key: &str, value: impl AsRef<str>) -> Self {
        self.set(key, value);
        self
    }

    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.0.iter().cloned().collect()
    }

    pub fn to_json(&self) -> serde_json::Value {
        serde_json::Value::Object(
            self.0.iter().map(|(k, v)| (k.clone(), serde_json::Value::String(v.clone()))).collect(),
        )
    }
}

fn valid_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_KEY_CHARS
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, ':' | '_' | '-'))
}

/// Control characters become spaces (runs collapsed), whitespace is trimmed, and the value is
/// cut to [`MAX_VALUE_CHARS`] characters, keeping the end when it is long (the tail of an
/// output is what explains a failure) with a leading `…`.
pub fn clean_value(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len().min(4 * MAX_VALUE_CHARS));
    let mut last_space = false;
    for c in raw.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if c == ' ' && last_space {
            continue;
        }
        last_space = c == ' ';
        out.push(c);
    }
    let trimmed = out.trim();
    let count = trimmed.chars().count();
    if count <= MAX_VALUE_CHARS {
        return trimmed.to_owned();
    }
    let keep: String = trimmed.chars().skip(count - (MAX_VALUE_CHARS - 1)).collect();
    format!("…{keep}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn at_most_ten_pairs_first_come_first_kept() {
        let mut d = Details::new();
        for i in 0..15 {
            d.set(&format!("k{i}"), "v");
        }
        assert_eq!(d.pairs().len(), MAX_PAIRS);
        assert_eq!(d.get("k9"), Some("v"));
        assert_eq!(d.get("k10"), None);
        d.set("k0", "replaced");
        assert_eq!(d.pairs()[0], ("k0".to_owned(), "replaced".to_owned()));
    }

    #[test]
    fn values_are_cleaned_and_cut_on_char_boundaries() {
        assert_eq!(clean_value("a\n\n\tb\u{7}c  "), "a b c");
        let long = "é".repeat(3000) + "END";
        let v = clean_value(&long);
        assert_eq!(v.chars().count(), MAX_VALUE_CHARS);
        assert!(v.starts_with('…') && v.ends_with("END"));
    }

    #[test]
    fn bad_keys_and_empty_values_are_dropped() {
        let d = Details::new().with("bad key", "x").with("empty", " \n ").with("ok:key_1-2", "y");
        assert_eq!(d.pairs(), &[("ok:key_1-2".to_owned(), "y".to_owned())]);
        let filled =
            Details::new().with("a", "1").clone().fill(&[("a".into(), "2".into()), ("b".into(), "3".into())]).clone();
        assert_eq!(filled.to_map().get("a").map(String::as_str), Some("1"));
        assert_eq!(filled.to_json(), serde_json::json!({"a":"1","b":"3"}));
    }
}
