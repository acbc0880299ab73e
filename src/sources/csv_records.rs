//! Reads CSV records one by one with their line and byte offset, holding at most one record of a
//! bounded size, and tells a good record from a bad one: a field too many or too few, bytes that
//! are not UTF-8, a quote left open, a record longer than the limit.
//!
//! Schema inference and the scan both read through this, so they agree on which records are bad.
//! A large file may be read in byte ranges ([`super::csv_ranges`]): a range starts at a line start
//! and checks that its end's line start is a record start, so a quoted line break that crosses a
//! cut is found, never read as two records.
//! After a bad record that spans several lines (a quote left open swallows the lines after it),
//! reading starts again at its second line, so one stray quote costs one record, not the file.

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use csv_core::{ReadRecordResult, Reader, ReaderBuilder};
use memchr::memchr_iter;

use super::bad_records::{BadRecord, excerpt};
use super::csv_options::CsvDialect;
use super::split::RangeEnd;

pub use super::DEFAULT_MAX_RECORD_BYTES;

/// Bytes read from the input at a time.
const INPUT_BLOCK: usize = 256 << 10;

/// One record: its fields (UTF-8 checked) and where it starts.
#[derive(Debug)]
pub struct CsvRecord<'a> {
    /// 1-based line of the record's start.
    pub line: u64,
    pub byte_offset: u64,
    fields: &'a [u8],
    ends: &'a [usize],
}

impl<'a> CsvRecord<'a> {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    /// Field `i` as text.
    pub fn get(&self, i: usize) -> &'a str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] };
        let field = &self.fields[start..self.ends[i]];
        // SAFETY: `next_record` returns a record only when each of its fields is valid UTF-8
        // (`invalid_utf8` found none), and `fields`/`ends` are not changed afterwards.
        unsafe { std::str::from_utf8_unchecked(field) }
    }

    /// The fields joined by commas, as a bad record's excerpt.
    pub fn excerpt(&self) -> String {
        let joined: Vec<&str> = (0..self.len()).map(|i| self.get(i)).collect();
        excerpt(joined.join(",").as_bytes())
    }
}

/// What reading the next record gave.
#[derive(Debug)]
pub enum Next<'a> {
    Record(CsvRecord<'a>),
    Bad(BadRecord),
    End,
    /// Reading a byte range, the record read last ran past the range's end `boundary` (a file
    /// offset): that line start is no record start (a quoted line break, or a bad record's lines,
    /// cross it), so the next range did not start at one. `next_start`: where the next record
    /// starts instead.
    CutInRecord {
        boundary: u64,
        next_start: u64,
    },
    /// Reading a segment of a text cut at its end ([`CsvRecords::cut_at_end`]), the record that
    /// starts at text offset `record_start` ran to the segment's end `cut`: the cut is inside
    /// it, so the next segment did not start at a record start.
    SegmentEndInRecord {
        cut: u64,
        record_start: u64,
    },
}

/// Where a byte range of a split file stops ([`crate::sources::split`]).
struct RangeStop {
    end: RangeEnd,
    /// File offset minus text offset: a UTF-8 byte-order mark the text does not have.
    bom: u64,
    /// File offset of the next byte taken from the input.
    pulled: u64,
}

/// The first byte that makes a field not UTF-8, if any (each field is checked on its own: a
/// character split across two fields would pass a check of them together).
fn invalid_utf8(fields: &[u8], ends: &[usize]) -> Option<u8> {
    if fields.is_ascii() {
        return None;
    }
    let mut start = 0;
    for &end in ends {
        let field = &fields[start..end];
        if let Err(e) = std::str::from_utf8(field) {
            return Some(field[e.valid_up_to().min(field.len() - 1)]);
        }
        start = end;
    }
    None
}

/// The reader over one (decompressed) file.
pub struct CsvRecords<R> {
    input: R,
    file: String,
    core: Reader,
    quote: u8,
    delimiter: u8,
    comment: Option<u8>,
    /// Quotes can be counted to find one left open (not with an escape character).
    count_quotes: bool,
    max_record: usize,
    /// Expected fields per record; set by the header or the first record when not given.
    pub width: Option<usize>,
    block: Vec<u8>,
    block_pos: usize,
    /// Bytes to read again before the input (after a bad record spanning lines).
    replay: Vec<u8>,
    replay_pos: usize,
    input_done: bool,
    /// Stream offset and line of the next unread byte.
    offset: u64,
    line: u64,
    out: Vec<u8>,
    ends: Vec<usize>,
    /// The current record's raw bytes (up to the limit), to read again after it if it is bad.
    raw: Vec<u8>,
    /// Reading a byte range: where it stops.
    stop: Option<RangeStop>,
    /// Whether the record read last held a line break before its end.
    spanned_lines: bool,
    /// Whether a record was ended by the end of the input rather than by a line break.
    ended_by_input: bool,
    /// Reading a segment: set once the text was cut where the input ends.
    cut_at_end: Option<Arc<AtomicBool>>,
    /// Reading a segment and on past it: the text offset of its cut, once known (`u64::MAX`
    /// before).
    segment_cut: Option<Arc<AtomicU64>>,
}

impl<R: Read> CsvRecords<R> {
    pub fn new(input: R, file: impl Into<String>, dialect: &CsvDialect, max_record: u64) -> Self {
        let core = ReaderBuilder::new()
            .delimiter(dialect.delimiter)
            .quote(dialect.quote)
            .escape(dialect.escape)
            .double_quote(dialect.escape.is_none())
            .comment(dialect.comment)
            .build();
        Self {
            input,
            file: file.into(),
            core,
            quote: dialect.quote,
            delimiter: dialect.delimiter,
            comment: dialect.comment,
            count_quotes: dialect.escape.is_none(),
            max_record: max_record.max(1) as usize,
            width: None,
            block: Vec::new(),
            block_pos: 0,
            replay: Vec::new(),
            replay_pos: 0,
            input_done: false,
            offset: 0,
            line: 1,
            out: vec![0; 4096],
            ends: vec![0; 64],
            raw: Vec::new(),
            stop: None,
            spanned_lines: false,
            ended_by_input: false,
            cut_at_end: None,
            segment_cut: None,
        }
    }

    /// Reads a piece of a text cut at line starts (a segment of a large compressed file): the
    /// input starts at text offset `offset`, on 1-based line `line`, a record start.
    pub fn starting_at(mut self, offset: u64, line: u64) -> Self {
        self.offset = offset;
        self.line = line;
        self
    }

    /// Reads an input that ends where the text was cut when `cut` is set (it is set before the
    /// input ends): a record that runs to that end is [`Next::SegmentEndInRecord`].
    pub fn cut_at_end(mut self, cut: Arc<AtomicBool>) -> Self {
        self.cut_at_end = Some(cut);
        self
    }

    /// Reads a segment, and on past its cut `at` (a text offset, set by the input once it is
    /// known, before the bytes after it are read) as a whole read would: records stop at the
    /// cut, which is checked to be a record start ([`Next::CutInRecord`]).
    pub fn stopping_at_segment_cut(mut self, at: Arc<AtomicU64>) -> Self {
        self.segment_cut = Some(at);
        self
    }

    /// Reads a byte range: the input starts at text offset `start`, a line start, with the
    /// reader's state there (`width`); records stop at `end`'s line start, which is checked to be
    /// a record start ([`Next::CutInRecord`]). Lines are counted from 1 at `start`. `bom`: bytes
    /// of a byte-order mark the text leaves out (file offset = text offset + `bom`).
    pub fn in_range(mut self, start: u64, bom: u64, end: RangeEnd) -> Self {
        self.offset = start;
        self.stop = Some(RangeStop {
            end,
            bom,
            pulled: start + bom,
        });
        self
    }

    /// Whether the record read last (good or bad) held a line break before its end: a quoted
    /// line break, or a quote left open.
    pub fn spanned_lines(&self) -> bool {
        self.spanned_lines
    }

    /// The text offset of the next unread byte.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// Reads the next record. I/O errors end the file (they are not bad records).
    pub fn next_record(&mut self) -> std::io::Result<Next<'_>> {
        loop {
            let before = self.offset;
            self.skip_between_records()?;
            if let Some(stop) = self.range_stop(before) {
                return Ok(stop);
            }
            let start_offset = self.offset;
            let start_line = self.line;
            self.raw.clear();
            let mut out_len = 0;
            let mut ends_len = 0;
            let mut oversized: Option<String> = None;
            let mut has_quote = false;
            let mut lines_spanned = 0u64;
            let mut record_len = 0usize;
            loop {
                self.fill_input()?;
                let input = unread(&self.replay, self.replay_pos, &self.block, self.block_pos);
                let at_end = input.is_empty();
                let (result, nin, nout, nend) = self.core.read_record(
                    input,
                    &mut self.out[out_len..],
                    &mut self.ends[ends_len..],
                );
                let consumed = &input[..nin];
                let newlines = memchr_iter(b'\n', consumed).count() as u64;
                if self.count_quotes && !has_quote {
                    has_quote = memchr::memchr(self.quote, consumed).is_some();
                }

                lines_spanned += newlines;
                record_len += nin;
                if self.raw.len() < self.max_record {
                    self.raw.extend_from_slice(consumed);
                }
                self.advance(nin, newlines);
                // csv_core gives `ends` from the record's start, across calls.
                out_len += nout;
                ends_len += nend;
                self.ended_by_input = at_end
                    && matches!(
                        result,
                        ReadRecordResult::Record | ReadRecordResult::InputEmpty
                    );
                match result {
                    ReadRecordResult::InputEmpty if at_end => {}
                    ReadRecordResult::InputEmpty => continue,
                    ReadRecordResult::OutputFull | ReadRecordResult::OutputEndsFull => {
                        if self.out.len() + self.ends.len() * 8 < self.max_record {
                            if result == ReadRecordResult::OutputFull {
                                self.out.resize(self.out.len() * 2, 0);
                            } else {
                                self.ends.resize(self.ends.len() * 2, 0);
                            }
                        } else {
                            // Too long to hold: keep its start for the message, drop the rest.
                            oversized.get_or_insert_with(|| excerpt(&self.out[..out_len]));
                            out_len = 0;
                            ends_len = 0;
                        }
                        continue;
                    }
                    ReadRecordResult::Record => {}
                    ReadRecordResult::End => return Ok(Next::End),
                }
                break;
            }
            // A record the end of a cut segment ended (a quoted line break crosses the cut).
            if self.ended_by_input
                && let Some(cut) = &self.cut_at_end
                && cut.load(Ordering::SeqCst)
            {
                return Ok(Next::SegmentEndInRecord {
                    cut: self.offset,
                    record_start: start_offset,
                });
            }
            // A line with nothing on it is not a record.
            if oversized.is_none()
                && ends_len == 1
                && out_len == 0
                && lines_spanned <= 1
                && self.raw.iter().all(|b| matches!(b, b'\n' | b'\r'))
            {
                continue;
            }
            self.spanned_lines =
                lines_spanned > 1 || (lines_spanned == 1 && !self.raw.ends_with(b"\n"));
            if oversized.is_none() && record_len > self.max_record {
                oversized = Some(excerpt(&self.raw));
            }
            let file = &self.file;
            let bad = |reason: String, shown: String| {
                let mut bad = BadRecord::at_byte(file, start_offset, reason, b"");
                bad.line = Some(start_line);
                bad.excerpt = shown;
                bad
            };
            if let Some(shown) = oversized {
                return Ok(Next::Bad(bad(
                    format!(
                        "record longer than the limit of {} bytes (set the table option \
                         'format.max_record_bytes' to read longer records)",
                        self.max_record
                    ),
                    shown,
                )));
            }
            let reason = {
                let fields = &self.out[..out_len];
                // Only a record over several lines, or cut by the end of the input, can hide a
                // quote that swallowed what follows.
                let spans_lines = lines_spanned > 1
                    || (lines_spanned == 1 && !self.raw.ends_with(b"\n"))
                    || (lines_spanned == 0 && self.input_done);
                if has_quote && spans_lines && self.raw.len() < self.max_record && self.misquoted()
                {
                    Some(
                        "a quote is left open, or a quoted value goes on after its closing quote"
                            .to_string(),
                    )
                } else if let Some(byte) = invalid_utf8(fields, &self.ends[..ends_len]) {
                    Some(format!(
                        "not UTF-8: byte 0x{byte:02X} (Latin-1 or another encoding?); name the \
                         file's encoding with OPTIONS ('format.encoding' 'windows-1252') (or \
                         'latin1', 'utf-16le', ...), or convert the file to UTF-8"
                    ))
                } else {
                    match self.width {
                        Some(width) if width != ends_len => {
                            Some(format!("{ends_len} field(s) where the header has {width}"))
                        }
                        _ => None,
                    }
                }
            };
            let Some(reason) = reason else {
                self.width.get_or_insert(ends_len);
                return Ok(Next::Record(CsvRecord {
                    line: start_line,
                    byte_offset: start_offset,
                    fields: &self.out[..out_len],
                    ends: &self.ends[..ends_len],
                }));
            };
            let bad = bad(reason, excerpt(&self.raw));
            if self.spanned_lines {
                self.read_again_after_first_line(start_offset, start_line);
            }
            return Ok(Next::Bad(bad));
        }
    }

    /// Whether the record's raw text breaks the quoting rules csv_core lets pass: a quoted value
    /// still open at the end, or text right after a closing quote (a stray quote earlier made
    /// the parser pair quotes wrongly). A quote inside an unquoted value is fine (`5" screen`).
    fn misquoted(&self) -> bool {
        let raw = &self.raw;
        let (quote, delimiter) = (self.quote, self.delimiter);
        let mut in_quotes = false;
        let mut field_start = true;
        let mut i = 0;
        while i < raw.len() {
            let b = raw[i];
            if in_quotes {
                if b == quote {
                    if raw.get(i + 1) == Some(&quote) {
                        i += 2;
                        continue;
                    }
                    in_quotes = false;
                    if !matches!(raw.get(i + 1), None | Some(b'\r' | b'\n'))
                        && raw.get(i + 1) != Some(&delimiter)
                    {
                        return true;
                    }
                }
            } else {
                if b == quote && field_start {
                    in_quotes = true;
                }
                field_start = b == delimiter || b == b'\n' || b == b'\r';
            }
            i += 1;
        }
        in_quotes
    }

    /// A bad record spanning lines: read from its second line again (its first line is the bad
    /// record; a stray quote there swallowed what follows).
    fn read_again_after_first_line(&mut self, start_offset: u64, start_line: u64) {
        let Some(first_break) = memchr::memchr(b'\n', &self.raw) else {
            return;
        };
        let again = &self.raw[first_break + 1..];
        let mut replay = again.to_vec();
        replay.extend_from_slice(&self.replay[self.replay_pos..]);
        self.replay = replay;
        self.replay_pos = 0;
        self.offset = start_offset + first_break as u64 + 1;
        self.line = start_line + 1;
        self.core.reset();
    }

    /// Skips what csv_core skips before a record (line breaks, comment lines), so that a record's
    /// offset and line are those of its first byte, not of a blank line or the `\n` of a CRLF
    /// before it; a record then starts at a line start, where a byte range can begin.
    fn skip_between_records(&mut self) -> std::io::Result<()> {
        let comment = self.comment;
        let mut in_comment = false;
        loop {
            self.fill_input()?;
            let input = unread(&self.replay, self.replay_pos, &self.block, self.block_pos);
            if input.is_empty() {
                return Ok(());
            }
            let mut skipped = 0;
            let mut newlines = 0;
            for &b in input {
                match b {
                    b'\n' => {
                        in_comment = false;
                        newlines += 1;
                    }
                    _ if in_comment => {}
                    b'\r' => {}
                    _ if Some(b) == comment => in_comment = true,
                    _ => break,
                }
                skipped += 1;
            }
            let all = skipped == input.len();
            self.advance(skipped, newlines);
            if !all {
                return Ok(());
            }
        }
    }

    /// Whether a byte range's records are all read, `before..=self.offset` being where the next
    /// record may start (its first byte, or the line breaks and comments before it): its end
    /// falls there (done), or the record read last ran past it (the cut was inside a record).
    fn range_stop(&self, before: u64) -> Option<Next<'static>> {
        // The bytes up to `self.offset` were read: an unknown end is further on.
        let (boundary, bom) = match (&self.stop, &self.segment_cut) {
            (Some(stop), _) => (stop.end.boundary()?.checked_sub(stop.bom)?, stop.bom),
            (None, Some(cut)) => (cut.load(Ordering::SeqCst), 0),
            (None, None) => return None,
        };
        if boundary == u64::MAX {
            return None;
        }
        if before > boundary {
            return Some(Next::CutInRecord {
                boundary: boundary + bom,
                next_start: before + bom,
            });
        }
        (boundary <= self.offset).then_some(Next::End)
    }

    /// Makes sure there are bytes to parse (replayed ones first, then the input's), unless the
    /// input is done.
    fn fill_input(&mut self) -> std::io::Result<()> {
        if self.replay_pos < self.replay.len() {
            return Ok(());
        }
        if self.block_pos == self.block.len() && !self.input_done {
            self.block.clear();
            self.block_pos = 0;
            (&mut self.input)
                .take(INPUT_BLOCK as u64)
                .read_to_end(&mut self.block)?;
            self.input_done = self.block.is_empty();
            if let Some(stop) = &mut self.stop {
                stop.end.observe(stop.pulled, &self.block);
                stop.pulled += self.block.len() as u64;
            }
        }
        Ok(())
    }

    fn advance(&mut self, consumed: usize, newlines: u64) {
        if self.replay_pos < self.replay.len() {
            self.replay_pos += consumed;
        } else {
            self.block_pos += consumed;
        }
        self.offset += consumed as u64;
        self.line += newlines;
    }
}

/// The bytes to read next: what is left to replay after a bad record's resync, else the rest of
/// the block. Takes the fields, not the reader, so the reader's other fields stay writable.
fn unread<'a>(replay: &'a [u8], replay_pos: usize, block: &'a [u8], block_pos: usize) -> &'a [u8] {
    if replay_pos < replay.len() {
        &replay[replay_pos..]
    } else {
        &block[block_pos..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn dialect() -> CsvDialect {
        CsvDialect::from_options(&HashMap::new()).unwrap()
    }

    /// Reads `text`; good records as joined fields, bad ones as "line: reason".
    fn read(text: &[u8], width: Option<usize>, max: u64) -> Vec<String> {
        let mut records = CsvRecords::new(text, "f.csv", &dialect(), max);
        records.width = width;
        let mut out = Vec::new();
        loop {
            match records.next_record().unwrap() {
                Next::Record(r) => {
                    out.push((0..r.len()).map(|i| r.get(i)).collect::<Vec<_>>().join("|"))
                }
                Next::Bad(b) => out.push(format!("{}: {}", b.line.unwrap(), b.reason)),
                Next::End | Next::CutInRecord { .. } | Next::SegmentEndInRecord { .. } => {
                    return out;
                }
            }
        }
    }

    #[test]
    fn good_records_with_quoted_line_breaks_and_blank_lines() {
        let got = read(b"a,b\n\n1,\"x\ny\"\r\n2,\"q\"\"\"\n", None, 1 << 20);
        assert_eq!(got, ["a|b", "1|x\ny", "2|q\""]);
    }

    #[test]
    fn ragged_rows_latin1_and_long_records_are_bad() {
        let mut text = b"a,b\n1,2,3\n4\ncaf\xe9,5\n6,7\n".to_vec();
        text.extend_from_slice(format!("{},8\n9,10\n", "x".repeat(5000)).as_bytes());
        let got = read(&text, None, 1000);
        assert_eq!(
            got,
            [
                "a|b",
                "2: 3 field(s) where the header has 2",
                "3: 1 field(s) where the header has 2",
                "4: not UTF-8: byte 0xE9 (Latin-1 or another encoding?); name the file's \
                 encoding with OPTIONS ('format.encoding' 'windows-1252') (or 'latin1', \
                 'utf-16le', ...), or convert the file to UTF-8",
                "6|7",
                "6: record longer than the limit of 1000 bytes (set the table option \
                 'format.max_record_bytes' to read longer records)",
                "9|10",
            ]
        );
    }

    /// A segment's records: offsets and lines from where it starts; a record that runs to the
    /// end of a segment cut there is a [`Next::SegmentEndInRecord`], whether it would be good or
    /// bad, and only when the text was cut (the last segment's last record is the file's).
    #[test]
    fn a_record_cut_by_the_end_of_a_cut_segment_is_found() {
        let outcome = |text: &[u8], cut: bool| {
            let flag = Arc::new(AtomicBool::new(cut));
            let mut records = CsvRecords::new(text, "f.csv", &dialect(), 1 << 20)
                .starting_at(1000, 40)
                .cut_at_end(flag);
            records.width = Some(2);
            let mut got = Vec::new();
            loop {
                match records.next_record().unwrap() {
                    Next::Record(r) => got.push(format!("{}@{}", r.line, r.byte_offset)),
                    Next::Bad(b) => got.push(format!("bad {}", b.line.unwrap())),
                    Next::SegmentEndInRecord { cut, record_start } => {
                        got.push(format!("cut {cut} in {record_start}"));
                        break;
                    }
                    Next::End | Next::CutInRecord { .. } => break,
                }
            }
            got
        };
        let clean = b"1,2\n3,\"x\ny\"\r\n";
        assert_eq!(outcome(clean, true), ["40@1000", "41@1004"]);
        // Inside a quoted value: a good record, had the text gone on.
        let quoted = b"1,2\n3,\"x\ny";
        assert_eq!(outcome(quoted, true), ["40@1000", "cut 1010 in 1004"]);
        assert_eq!(outcome(quoted, false), ["40@1000", "bad 41", "bad 42"]);
        // A line without its line break: a whole read's next bytes would belong to it.
        assert_eq!(outcome(b"1,2\n3,4", true), ["40@1000", "cut 1007 in 1004"]);
        assert_eq!(outcome(b"1,2\n3,4", false), ["40@1000", "41@1004"]);
    }

    /// A record's line and offset are its first byte's, after blank lines, comments and CRLF
    /// line ends, and a bad record there is reported once.
    #[test]
    fn records_start_at_their_first_byte() {
        let text = b"a,b\r\n1,2\r\n3,4,5\r\n\r\n\n6,7\r\n# note, \"x\r\n8,9";
        let dialect = CsvDialect {
            comment: Some(b'#'),
            ..dialect()
        };
        let mut records = CsvRecords::new(&text[..], "f.csv", &dialect, 1 << 20);
        let mut got = Vec::new();
        loop {
            match records.next_record().unwrap() {
                Next::Record(r) => got.push(format!("{}@{}", r.line, r.byte_offset)),
                Next::Bad(b) => got.push(format!(
                    "bad {}@{}",
                    b.line.unwrap(),
                    b.byte_offset.unwrap()
                )),
                Next::End | Next::CutInRecord { .. } | Next::SegmentEndInRecord { .. } => break,
            }
        }
        assert_eq!(got, ["1@0", "2@5", "bad 3@10", "6@20", "8@37"]);
    }

    #[test]
    fn a_quote_left_open_costs_one_record() {
        let got = read(b"a,b\n1,\"open\n2,x\n3,\"y\"\n4,z\n", None, 1 << 20);
        assert_eq!(got[0], "a|b");
        assert!(got[1].starts_with("2: "), "{got:?}");
        assert_eq!(&got[2..], ["2|x", "3|y", "4|z"]);
    }

    #[test]
    fn a_stray_quote_that_pairs_with_a_later_one_is_caught() {
        let got = read(
            b"a,b\nx,\"open\n1,\"one\ntwo\"\n2,5\" screen\n",
            None,
            1 << 20,
        );
        assert!(got[1].starts_with("2: a quote is left open"), "{got:?}");
        assert_eq!(&got[2..], ["1|one\ntwo", "2|5\" screen"]);
    }

    #[test]
    fn a_quote_left_open_at_the_end_is_bad() {
        let got = read(b"a,b\n1,2\n3,\"cut", None, 1 << 20);
        assert_eq!(
            got,
            [
                "a|b",
                "1|2",
                "3: a quote is left open, or a quoted value goes on after its closing quote"
            ]
        );
    }
}
