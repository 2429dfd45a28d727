//! Bounded tails of a child's stdout / stderr, and their conversion to `statusDetails` text.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use tokio::io::{AsyncRead, AsyncReadExt};

/// The most characters of output put into one `statusDetails` value (the AWS limit).
pub(super) const DETAIL_MAX_CHARS: usize = 1024;

/// The last `capacity` bytes written, and how many bytes were written in all.
#[derive(Debug, Clone)]
pub(super) struct Tail {
    bytes: VecDeque<u8>,
    capacity: usize,
    total: u64,
}

impl Tail {
    pub fn new(capacity: usize) -> Self {
        Self { bytes: VecDeque::with_capacity(capacity.min(64 * 1024)), capacity, total: 0 }
    }

    pub fn push(&mut self, data: &[u8]) {
        self.total += data.len() as u64;
        let keep = data.len().min(self.capacity);
        let overflow = (self.bytes.len() + keep).saturating_sub(self.capacity);
        self.bytes.drain(..overflow);
        self.bytes.extend(&data[data.len() - keep..]);
    }

    pub fn total(&self) -> u64 {
        self.total
    }

    /// The tail as text for `statusDetails`: valid UTF-8 (a character cut by the bound is
    /// dropped), control characters other than newline and tab removed, surrounding
    /// whitespace trimmed, at most `max_chars` characters (the last ones).
    pub fn text(&self, max_chars: usize) -> String {
        let (a, b) = self.bytes.as_slices();
        let mut raw = Vec::with_capacity(a.len() + b.len());
        raw.extend_from_slice(a);
        raw.extend_from_slice(b);
        let start = raw.iter().position(|&b| (b & 0xC0) != 0x80).unwrap_or(raw.len());
        let text = String::from_utf8_lossy(&raw[start..]);
        let cleaned: Vec<char> = text
            .chars()
            .filter(|&c| c == '\n' || c == '\t' || !c.is_control())
            .collect::<String>()
            .trim()
            .chars()
            .collect();
        let skip = cleaned.len().saturating_sub(max_chars);
        cleaned[skip..].iter().collect::<String>().trim_start().to_owned()
    }
}

pub(super) type SharedTail = Arc<Mutex<Tail>>;

/// Read `reader` to its end into `tail`. Kept in a shared tail so that what was read so far
/// survives when the reading task is aborted (a leftover grandchild holding the pipe).
pub(super) async fn drain<R: AsyncRead + Unpin>(mut reader: R, tail: SharedTail) {
    let mut buf = vec![0u8; 8192];
    loop {
        match reader.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => tail.lock().unwrap_or_else(|e| e.into_inner()).push(&buf[..n]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_only_the_last_bytes() {
        let mut t = Tail::new(8);
        t.push(b"hello ");
        t.push(b"world, again");
        assert_eq!(t.total(), 18);
        assert_eq!(t.text(100), "d, again");
        assert_eq!(t.text(3), "ain");
    }

    #[test]
    fn text_is_clean_utf8() {
        let mut t = Tail::new(100);
        t.push("a\u{1b}[0mb\r\n\tc\u{7}\n".as_bytes());
        assert_eq!(t.text(100), "a[0mb\n\tc");
        let mut t = Tail::new(4);
        t.push("ééé".as_bytes()); // 6 bytes: the first kept byte is a continuation byte
        assert_eq!(t.text(100), "éé");
    }
}
