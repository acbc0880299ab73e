//! Cuts a stream of JSON objects (after [`super::framing::Framing`]) into records with their byte
//! offsets, so a reader can set one unreadable record aside and go on with the next.
//!
//! A record is a top-level object, found by its brackets (string contents and escapes skipped);
//! whether its content is valid is for the decoder to say. A line that does not start with `{` is
//! a record of its own ("not a JSON object"); an object the file ends inside is "truncated"; a
//! record longer than the limit is not kept in memory (only its start, for the message), so a 50
//! MB line of garbage costs no more than the limit. After a broken record, reading can restart at
//! the next line that starts an object ([`resync_point`]), which recovers the records after a
//! truncated line in newline-delimited files.

mod scan;
#[cfg(test)]
mod tests;

use memchr::{memchr, memchr3};

use crate::sources::bad_records::excerpt;
use scan::{BLOCK, Block, scan_block};

pub use crate::sources::DEFAULT_MAX_RECORD_BYTES;

/// Bytes of the stream from `base` on: what a reader holds of it.
#[derive(Debug, Default)]
pub struct Window {
    pub base: u64,
    pub bytes: Vec<u8>,
}

impl Window {
    /// The bytes of `[start, end)` (both still in the window).
    pub fn slice(&self, start: u64, end: u64) -> &[u8] {
        &self.bytes[(start - self.base) as usize..(end - self.base) as usize]
    }

    /// Forgets the bytes before `offset`, once they are at least as many as the bytes after it:
    /// moving the bytes still needed to the front then costs no more than the bytes read, and
    /// the window stays within twice what it must hold.
    pub fn drop_before(&mut self, offset: u64) {
        let n = offset
            .saturating_sub(self.base)
            .min(self.bytes.len() as u64) as usize;
        if n > 0 && n >= self.bytes.len() - n {
            self.bytes.drain(..n);
            self.base += n as u64;
        }
    }

    pub fn end(&self) -> u64 {
        self.base + self.bytes.len() as u64
    }
}

/// One record found in the stream: bytes `[start, end)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub start: u64,
    pub end: u64,
    pub kind: PieceKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PieceKind {
    /// A whole top-level object (by its brackets).
    Object,
    /// The stream ended inside this object.
    Truncated,
    /// A line that does not start a JSON object.
    NotAnObject,
    /// A line break inside a string (JSON strings cannot hold one): the record was cut short and
    /// the next line goes on with other records. The piece ends at the line break.
    CutShort,
    /// Longer than the limit; its bytes were not kept. `excerpt` is its start.
    Oversized { excerpt: String },
    /// Found bad earlier (by schema inference), for this reason.
    Rejected(String),
}

impl Piece {
    /// Whether this piece is one whole, valid JSON object (its bytes still in `window`).
    pub fn is_valid_json(&self, window: &Window) -> bool {
        self.kind == PieceKind::Object
            && serde_json::from_slice::<serde::de::IgnoredAny>(window.slice(self.start, self.end))
                .is_ok()
    }

    /// This piece as a bad record of `file` (for `reason`), and the offset to cut the records
    /// after it again from, when it swallowed lines that start records (see [`resync_point`]).
    pub fn to_bad_record(
        &self,
        file: &str,
        reason: String,
        window: &Window,
    ) -> (crate::sources::bad_records::BadRecord, Option<u64>) {
        use crate::sources::bad_records::BadRecord;
        if let PieceKind::Oversized { excerpt } = &self.kind {
            let mut bad = BadRecord::at_byte(file, self.start, reason, b"");
            bad.excerpt = excerpt.clone();
            return (bad, None);
        }
        let record = window.slice(self.start, self.end);
        let resync = resync_point(record);
        let shown = &record[..resync.unwrap_or(record.len())];
        let bad = BadRecord::at_byte(file, self.start, reason, shown);
        (bad, resync.map(|k| self.start + k as u64))
    }

    /// Why this piece is a bad record, when its kind alone says so.
    pub fn kind_reason(&self, max_record: u64) -> Option<String> {
        match &self.kind {
            PieceKind::Object => None,
            PieceKind::Rejected(reason) => Some(reason.clone()),
            PieceKind::Truncated => Some("the file ends inside this record (truncated)".into()),
            PieceKind::NotAnObject => Some("not a JSON object".into()),
            PieceKind::CutShort => Some(
                "the record is cut short: a line break inside a string (JSON strings cannot hold \
                 one)"
                    .into(),
            ),
            PieceKind::Oversized { .. } => Some(format!(
                "record of {} bytes is longer than the limit of {} bytes (set the table option \
                 'format.max_record_bytes' to read longer records)",
                self.end - self.start,
                max_record
            )),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum State {
    Between,
    Object,
    Garbage,
    OversizedObject(String),
    OversizedGarbage(String),
}

/// The streaming cutter. Feed it the window as it grows; take its pieces in order.
#[derive(Debug)]
pub struct Splitter {
    max_record: u64,
    state: State,
    depth: u32,
    in_string: bool,
    /// The byte after a backslash in a string is skipped (it may be in the next chunk).
    skip_next: bool,
    /// Stream offset scanned so far.
    scanned: u64,
    /// Start of the record being scanned.
    start: u64,
    /// Whether objects are scanned 64 bytes at a time ([`scan_block`]); off only to test the
    /// byte-at-a-time path against it.
    blocks: bool,
}

impl Splitter {
    pub fn new(max_record: u64) -> Self {
        Self {
            max_record,
            state: State::Between,
            depth: 0,
            in_string: false,
            skip_next: false,
            scanned: 0,
            start: 0,
            blocks: true,
        }
    }

    pub fn max_record(&self) -> u64 {
        self.max_record
    }

    /// The first stream offset the splitter still needs in the window.
    pub fn keep_from(&self) -> u64 {
        match self.state {
            State::Object | State::Garbage => self.start,
            _ => self.scanned,
        }
    }

    /// Where the record being cut started; None between records.
    pub fn pending_start(&self) -> Option<u64> {
        (self.state != State::Between).then_some(self.start)
    }

    /// The stream offset cut so far.
    pub fn scanned(&self) -> u64 {
        self.scanned
    }

    /// Starts again at `offset` (between records), after a broken record.
    pub fn restart_at(&mut self, offset: u64) {
        *self = Self {
            scanned: offset,
            blocks: self.blocks,
            ..Self::new(self.max_record)
        };
    }

    /// Scans what the window holds past the last scan, pushing each record that ends there. With
    /// `at_end`, the stream has no more bytes: a record still open is pushed as it is.
    pub fn split(&mut self, window: &Window, at_end: bool, out: &mut Vec<Piece>) {
        let bytes = &window.bytes;
        let base = window.base;
        let mut i = (self.scanned - base) as usize;
        let n = bytes.len();
        while i < n {
            match self.state {
                State::Between => {
                    let b = bytes[i];
                    if b.is_ascii_whitespace() {
                        i += 1;
                        continue;
                    }
                    self.start = base + i as u64;
                    if b == b'{' {
                        self.state = State::Object;
                        self.depth = 1;
                        self.in_string = false;
                        self.skip_next = false;
                        i += 1;
                    } else {
                        self.state = State::Garbage;
                    }
                }
                State::Garbage | State::OversizedGarbage(_) => match memchr(b'\n', &bytes[i..]) {
                    Some(k) => {
                        i += k;
                        self.finish(window, base + i as u64, out);
                        i += 1;
                    }
                    None => i = n,
                },
                State::Object | State::OversizedObject(_) => {
                    let block = if self.blocks && !self.skip_next {
                        bytes
                            .get(i..i + BLOCK)
                            .and_then(|b| <&[u8; BLOCK]>::try_from(b).ok())
                    } else {
                        None
                    };
                    if let Some(block) = block {
                        match scan_block(block, &mut self.in_string, &mut self.depth) {
                            Block::Inside => i += BLOCK,
                            Block::Ends(k) => {
                                i += k;
                                self.finish(window, base + i as u64 + 1, out);
                                i += 1;
                            }
                            Block::CutShort(k) => {
                                i += k;
                                self.cut_short(window, base + i as u64, out);
                                i += 1;
                            }
                            // An escape: byte by byte to just past the escaped byte, then
                            // blocks again from there.
                            Block::Escape(k) => {
                                let past = (i + k + 2).min(n);
                                self.scalar_steps(&bytes[..past], &mut i, window, out);
                            }
                        }
                    } else {
                        self.scalar_step(bytes, &mut i, window, out);
                    }
                }
            }
        }
        self.scanned = base + n as u64;
        if self.state == State::Object && self.scanned - self.start > self.max_record {
            // An object that grew past the limit because a broken line swallowed the lines
            // after it: cut it where a whole read would resync (the next line that starts an
            // object), instead of dropping the rest of the file with its bytes.
            let held = window.slice(self.start, self.scanned);
            if let Some(k) = resync_point(held) {
                out.push(Piece {
                    start: self.start,
                    end: self.start + k as u64,
                    kind: PieceKind::Truncated,
                });
                self.restart_at(self.start + k as u64);
                return self.split(window, at_end, out);
            }
        }
        if matches!(self.state, State::Object | State::Garbage)
            && self.scanned - self.start > self.max_record
        {
            // Too long to keep: remember its start, stop holding its bytes.
            let shown = excerpt(window.slice(self.start, self.scanned));
            self.state = match self.state {
                State::Object => State::OversizedObject(shown),
                _ => State::OversizedGarbage(shown),
            };
        }
        if at_end {
            let end = self.scanned;
            let kind = match std::mem::replace(&mut self.state, State::Between) {
                State::Between => return,
                State::Object => PieceKind::Truncated,
                State::Garbage => PieceKind::NotAnObject,
                State::OversizedObject(excerpt) | State::OversizedGarbage(excerpt) => {
                    PieceKind::Oversized { excerpt }
                }
            };
            out.push(Piece {
                start: self.start,
                end,
                kind,
            });
        }
    }

    /// Steps through `bytes` byte-oriented while inside the object (to its end at most).
    fn scalar_steps(&mut self, bytes: &[u8], i: &mut usize, window: &Window, out: &mut Vec<Piece>) {
        while *i < bytes.len() && matches!(self.state, State::Object | State::OversizedObject(_)) {
            self.scalar_step(bytes, i, window, out);
        }
    }

    /// One step inside an object, byte-oriented: to the next quote, backslash or line break in a
    /// string, or the next quote or brace outside one.
    fn scalar_step(&mut self, bytes: &[u8], i: &mut usize, window: &Window, out: &mut Vec<Piece>) {
        let base = window.base;
        let n = bytes.len();
        if self.skip_next {
            self.skip_next = false;
            *i += 1;
        } else if self.in_string {
            match memchr3(b'"', b'\\', b'\n', &bytes[*i..]) {
                Some(k) => {
                    *i += k;
                    match bytes[*i] {
                        b'\\' => self.skip_next = true,
                        b'"' => self.in_string = false,
                        _ => self.cut_short(window, base + *i as u64, out),
                    }
                    *i += 1;
                }
                None => *i = n,
            }
        } else {
            // Only braces decide where an object ends (brackets nest inside them).
            match memchr3(b'"', b'{', b'}', &bytes[*i..]) {
                Some(k) => {
                    *i += k;
                    match bytes[*i] {
                        b'"' => self.in_string = true,
                        b'{' => self.depth += 1,
                        _ => {
                            self.depth -= 1;
                            if self.depth == 0 {
                                self.finish(window, base + *i as u64 + 1, out);
                            }
                        }
                    }
                    *i += 1;
                }
                None => *i = n,
            }
        }
    }

    /// The record being scanned met a line break inside a string at `at`: it ends there, and the
    /// next line starts afresh.
    fn cut_short(&mut self, window: &Window, at: u64, out: &mut Vec<Piece>) {
        let kind = match std::mem::replace(&mut self.state, State::Between) {
            State::OversizedObject(excerpt) => PieceKind::Oversized { excerpt },
            _ if at - self.start > self.max_record => PieceKind::Oversized {
                excerpt: excerpt(window.slice(self.start, at)),
            },
            _ => PieceKind::CutShort,
        };
        out.push(Piece {
            start: self.start,
            end: at,
            kind,
        });
    }

    /// The record being scanned ends at `end` (exclusive).
    fn finish(&mut self, window: &Window, end: u64, out: &mut Vec<Piece>) {
        let too_long = end - self.start > self.max_record;
        let kind = match std::mem::replace(&mut self.state, State::Between) {
            State::Object | State::Garbage if too_long => PieceKind::Oversized {
                excerpt: excerpt(window.slice(self.start, end)),
            },
            State::Object => PieceKind::Object,
            State::Garbage => PieceKind::NotAnObject,
            State::OversizedObject(excerpt) | State::OversizedGarbage(excerpt) => {
                PieceKind::Oversized { excerpt }
            }
            State::Between => return,
        };
        out.push(Piece {
            start: self.start,
            end,
            kind,
        });
    }
}

/// Where to start reading again inside a broken record: just after the first line break that is
/// followed (after blanks) by `{`. None when the record is one line, or valid JSON (a value of the
/// wrong type breaks only its own record).
pub fn resync_point(record: &[u8]) -> Option<usize> {
    if serde_json::from_slice::<serde::de::IgnoredAny>(record).is_ok() {
        return None;
    }
    let mut from = 0;
    while let Some(k) = memchr(b'\n', &record[from..]) {
        let next = from + k + 1;
        let rest = &record[next..];
        if rest
            .iter()
            .find(|b| !b.is_ascii_whitespace())
            .is_some_and(|b| *b == b'{')
        {
            return Some(next);
        }
        from = next;
    }
    None
}
