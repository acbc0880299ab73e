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

use memchr::{memchr, memchr3};

use crate::sources::bad_records::excerpt;

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

    /// Forgets the bytes before `offset`.
    pub fn drop_before(&mut self, offset: u64) {
        let n = offset
            .saturating_sub(self.base)
            .min(self.bytes.len() as u64) as usize;
        if n > 0 {
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

/// Bytes of an object scanned at once by [`scan_block`].
const BLOCK: usize = 64;

/// What [`scan_block`] found in 64 bytes of an object.
#[derive(Debug, PartialEq, Eq)]
enum Block {
    /// The object goes on past the block.
    Inside,
    /// The object's closing brace is the block's byte `k`.
    Ends(usize),
    /// Byte `k` is a line break inside a string.
    CutShort(usize),
    /// The block's first backslash is byte `k`: left to the byte-by-byte scan, which knows what
    /// it escapes (in a string) or that it escapes nothing (outside one).
    Escape(usize),
}

/// One bit per byte of a block (bit `k` for byte `k`), for each byte the scan looks for.
#[derive(Debug, Default, PartialEq, Eq)]
struct Masks {
    backslashes: u64,
    quotes: u64,
    opens: u64,
    closes: u64,
    breaks: u64,
}

impl Masks {
    /// The masks of `block`, 16 bytes at a time with SSE2 (part of every x86-64 processor).
    #[cfg(target_arch = "x86_64")]
    fn of(block: &[u8; BLOCK]) -> Self {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_set1_epi8,
        };
        let mut masks = Masks::default();
        for (lane, bytes) in block.chunks_exact(16).enumerate() {
            // SAFETY: `bytes` is 16 readable bytes (an unaligned load is allowed); SSE2 is
            // enabled on every x86-64 target, so its intrinsics are available.
            let bits = |byte: u8| unsafe {
                let v = _mm_loadu_si128(bytes.as_ptr().cast::<__m128i>());
                let equal = _mm_cmpeq_epi8(v, _mm_set1_epi8(byte as i8));
                u64::from(_mm_movemask_epi8(equal) as u16) << (16 * lane)
            };
            masks.backslashes |= bits(b'\\');
            masks.quotes |= bits(b'"');
            masks.opens |= bits(b'{');
            masks.closes |= bits(b'}');
            masks.breaks |= bits(b'\n');
        }
        masks
    }

    /// The masks of `block`, byte by byte.
    #[cfg(not(target_arch = "x86_64"))]
    fn of(block: &[u8; BLOCK]) -> Self {
        let mut masks = Masks::default();
        for (k, &b) in block.iter().enumerate() {
            let bit = 1u64 << k;
            match b {
                b'\\' => masks.backslashes |= bit,
                b'"' => masks.quotes |= bit,
                b'{' => masks.opens |= bit,
                b'}' => masks.closes |= bit,
                b'\n' => masks.breaks |= bit,
                _ => {}
            }
        }
        masks
    }
}

/// Bit `k` = the parity of the set bits at `0..=k`: from a mask of quotes, the bytes inside
/// strings (the opening quote in, the closing one out).
fn prefix_xor(mut bits: u64) -> u64 {
    for shift in [1, 2, 4, 8, 16, 32] {
        bits ^= bits << shift;
    }
    bits
}

/// Scans 64 bytes of an object without escapes at once, as bit masks (one bit per byte): the
/// quotes give the bytes inside strings, and only the braces and line breaks outside / inside
/// them are looked at one by one. Updates `in_string` and `depth` as the byte-by-byte scan would
/// (fully when the object goes on, up to the event otherwise).
fn scan_block(block: &[u8; BLOCK], in_string: &mut bool, depth: &mut u32) -> Block {
    let Masks {
        backslashes,
        quotes,
        opens,
        closes,
        breaks,
    } = Masks::of(block);
    if backslashes != 0 {
        return Block::Escape(backslashes.trailing_zeros() as usize);
    }
    let mut inside = prefix_xor(quotes);
    if *in_string {
        inside = !inside;
    }
    let cut = breaks & inside;
    let mut events = ((opens | closes) & !inside) | cut;
    while events != 0 {
        let k = events.trailing_zeros() as usize;
        let bit = 1u64 << k;
        if cut & bit != 0 {
            return Block::CutShort(k);
        }
        if opens & bit != 0 {
            *depth += 1;
        } else {
            *depth -= 1;
            if *depth == 0 {
                return Block::Ends(k);
            }
        }
        events &= events - 1;
    }
    *in_string = inside >> (BLOCK - 1) == 1;
    Block::Inside
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits `text` fed in chunks of `chunk` bytes; returns (kind, text) of each piece.
    fn split(text: &[u8], chunk: usize, max: u64) -> Vec<(PieceKind, String)> {
        split_with(text, chunk, max, true)
    }

    /// [`split`], with or without the 64-byte blocks.
    fn split_with(text: &[u8], chunk: usize, max: u64, blocks: bool) -> Vec<(PieceKind, String)> {
        let mut splitter = Splitter::new(max);
        splitter.blocks = blocks;
        let mut window = Window::default();
        let mut pieces = Vec::new();
        let mut shown = Vec::new();
        let mut take = |pieces: &mut Vec<Piece>, window: &Window| {
            for p in pieces.drain(..) {
                let text = match p.kind {
                    PieceKind::Oversized { .. } => String::new(),
                    _ => String::from_utf8_lossy(window.slice(p.start, p.end)).into_owned(),
                };
                shown.push((p.kind, text));
            }
        };
        for part in text.chunks(chunk) {
            window.bytes.extend_from_slice(part);
            splitter.split(&window, false, &mut pieces);
            take(&mut pieces, &window);
            window.drop_before(splitter.keep_from());
        }
        splitter.split(&window, true, &mut pieces);
        take(&mut pieces, &window);
        shown
    }

    fn objects(texts: &[&str]) -> Vec<(PieceKind, String)> {
        texts
            .iter()
            .map(|t| (PieceKind::Object, t.to_string()))
            .collect()
    }

    #[test]
    fn objects_in_any_layout_and_any_chunking() {
        let text = br#"{"a":"}{\"","b":[{"c":1}]}{"a":2}
  {"a":"x\\"}"#;
        for chunk in 1..=text.len() {
            assert_eq!(
                split(text, chunk, 1 << 20),
                objects(&[
                    r#"{"a":"}{\"","b":[{"c":1}]}"#,
                    r#"{"a":2}"#,
                    r#"{"a":"x\\"}"#
                ]),
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn blocks_cut_as_the_byte_by_byte_scan_does() {
        // Random streams over the bytes that matter (and filler), long runs without escapes so
        // that whole blocks are taken, fed in chunks of several sizes.
        let alphabet = b"{{}}\"\"\"::,,aaaaaaaaaa   \n[]\\x";
        let mut random = crate::test_random::Random(0x9e37_79b9_7f4a_7c15);
        let mut next = || random.next();
        for case in 0..400 {
            let len = 1 + (next() % 700) as usize;
            let escapes = case % 3 == 0;
            let text: Vec<u8> = (0..len)
                .map(|_| {
                    loop {
                        let b = alphabet[(next() % alphabet.len() as u64) as usize];
                        if escapes || b != b'\\' {
                            break b;
                        }
                    }
                })
                .collect();
            for chunk in [1, 7, 64, 100, 1000] {
                for max in [50, 1 << 20] {
                    assert_eq!(
                        split_with(&text, chunk, max, true),
                        split_with(&text, chunk, max, false),
                        "case {case}, chunk {chunk}, max {max}: {:?}",
                        String::from_utf8_lossy(&text)
                    );
                }
            }
        }
    }

    #[test]
    fn a_block_finds_the_end_past_strings_with_braces() {
        let mut text = br#"{"a":"}}}{{{","b":{"c":"x"},"d":""#.to_vec();
        text.resize(130, b'y');
        text.extend_from_slice(b"\"}\n{\"e\":1}");
        let got = split(&text, 1 << 10, 1 << 20);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].1.len(), 132);
        assert_eq!(got[1], (PieceKind::Object, "{\"e\":1}".into()));
    }

    #[test]
    fn garbage_lines_and_truncated_ends_are_pieces_of_their_own() {
        let text = b"{\"a\":1}\n\x00\xffgarbage {\"a\"\n{\"a\":2}\n{\"a\":3,\"b\":\"cut";
        for chunk in [1, 3, 64] {
            let got = split(text, chunk, 1 << 20);
            assert_eq!(got.len(), 4, "{got:?}");
            assert_eq!(got[1].0, PieceKind::NotAnObject);
            assert_eq!(got[1].1, "\0\u{fffd}garbage {\"a\"");
            assert_eq!(got[2], (PieceKind::Object, "{\"a\":2}".into()));
            assert_eq!(got[3].0, PieceKind::Truncated);
        }
    }

    #[test]
    fn oversized_records_are_not_kept() {
        let mut text = b"{\"a\":1}\n{\"big\":\"".to_vec();
        text.extend(std::iter::repeat_n(b'x', 5000));
        text.extend_from_slice(b"\"}\n{\"a\":2}\n");
        let mut splitter = Splitter::new(1000);
        let mut window = Window::default();
        let mut pieces = Vec::new();
        let mut most_held = 0;
        let mut taken = Vec::new();
        for part in text.chunks(100) {
            window.bytes.extend_from_slice(part);
            splitter.split(&window, false, &mut taken);
            // A reader takes the pieces as they come; the window keeps what is still needed.
            pieces.append(&mut taken);
            window.drop_before(splitter.keep_from());
            most_held = most_held.max(window.bytes.len());
        }
        splitter.split(&window, true, &mut pieces);
        assert!(most_held < 1200, "held {most_held} bytes");
        assert_eq!(pieces.len(), 3);
        let PieceKind::Oversized { excerpt } = &pieces[1].kind else {
            panic!("{pieces:?}");
        };
        assert!(excerpt.starts_with("{\"big\":\"xxx"));
        assert_eq!(pieces[1].end - pieces[1].start, 5010);
        assert!(pieces[1].kind_reason(1000).unwrap().contains("5010 bytes"));
    }

    #[test]
    fn a_line_break_inside_a_string_cuts_the_record_short() {
        let text = b"{\"a\":1}{\"a\":\"cut\n{\"a\":\"x\\\nok\"}\n";
        for chunk in [1, 2, 64] {
            let got = split(text, chunk, 1 << 20);
            assert_eq!(
                got,
                [
                    (PieceKind::Object, "{\"a\":1}".into()),
                    (PieceKind::CutShort, "{\"a\":\"cut".into()),
                    (PieceKind::Object, "{\"a\":\"x\\\nok\"}".into()),
                ],
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn resync_after_a_cut_line_but_not_inside_valid_json() {
        let cut = b"{\"a\":\"cut\n{\"a\":2}\n{\"a\":3}";
        assert_eq!(resync_point(cut), Some(10));
        let valid = b"{\"a\":\n{\"b\":1}}";
        assert_eq!(resync_point(valid), None);
        assert_eq!(resync_point(b"{\"a\":tru}"), None);
    }

    #[test]
    fn a_broken_line_followed_by_more_than_the_limit_loses_only_itself() {
        // A line cut before its closing brace nests the lines after it in the object; past the
        // limit the splitter resyncs at the next object line, as a whole read of a small file does.
        let mut text = b"{\"a\":1,\n".to_vec();
        for i in 0..40 {
            text.extend_from_slice(format!("{{\"a\":{i}}}\n").as_bytes());
        }
        for chunk in [1, 7, 64, 4096] {
            let pieces = split(&text, chunk, 64);
            assert_eq!(
                pieces[0],
                (PieceKind::Truncated, "{\"a\":1,\n".into()),
                "chunk {chunk}"
            );
            let objects: Vec<&String> = pieces[1..]
                .iter()
                .map(|(kind, text)| {
                    assert_eq!(*kind, PieceKind::Object, "chunk {chunk}");
                    text
                })
                .collect();
            assert_eq!(objects.len(), 40, "chunk {chunk}");
            assert_eq!(objects[39], "{\"a\":39}");
        }
    }
}
