//! Finding the end of a log: its last whole record, and the torn bytes a crash left after it.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};

use super::record::AuditRecord;

/// The end of a log: its last whole record and whatever torn bytes follow it.
pub(super) struct Tail {
    /// Length of the file up to and including the last whole record's newline.
    pub(super) whole_len: u64,
    /// The last whole record's line (without its newline).
    pub(super) last_whole: Option<Vec<u8>>,
    /// Bytes after it: a line without a newline, or a last line that is not a record.
    pub(super) torn: Vec<u8>,
}

/// Reads the file's end, growing the window until it holds the last two lines.
pub(super) fn read_tail(file: &mut File) -> std::io::Result<Tail> {
    let len = file.seek(SeekFrom::End(0))?;
    let mut window = 4096u64;
    loop {
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start))?;
        let mut tail = Vec::new();
        file.read_to_end(&mut tail)?;
        if let Some(split) = split_tail(&tail, start == 0) {
            return Ok(Tail {
                whole_len: start + split.whole_len as u64,
                last_whole: split.last_whole.map(<[u8]>::to_vec),
                torn: tail[split.whole_len..].to_vec(),
            });
        }
        window *= 4;
    }
}

struct Split<'a> {
    whole_len: usize,
    last_whole: Option<&'a [u8]>,
}

/// Splits the end of a log (`at_start`: `tail` is the whole file) into whole records and a torn
/// tail; `None` when `tail` does not reach back far enough to tell.
fn split_tail(tail: &[u8], at_start: bool) -> Option<Split<'_>> {
    if tail.is_empty() {
        return at_start.then_some(Split {
            whole_len: 0,
            last_whole: None,
        });
    }
    let complete = tail.ends_with(b"\n");
    let body = if complete {
        &tail[..tail.len() - 1]
    } else {
        tail
    };
    // The last line starts after `last_start`; the line before it ends there.
    let last_start = match body.iter().rposition(|&b| b == b'\n') {
        Some(at) => at + 1,
        None if at_start => 0,
        None => return None,
    };
    let last = &body[last_start..];
    if complete && serde_json::from_slice::<AuditRecord>(last).is_ok() {
        return Some(Split {
            whole_len: tail.len(),
            last_whole: Some(last),
        });
    }
    if last_start == 0 {
        return Some(Split {
            whole_len: 0,
            last_whole: None,
        });
    }
    let before = &body[..last_start - 1];
    let previous = match before.iter().rposition(|&b| b == b'\n') {
        Some(at) => &before[at + 1..],
        None if at_start => before,
        None => return None,
    };
    Some(Split {
        whole_len: last_start,
        last_whole: Some(previous),
    })
}
