//! One large file read on every core: DataFusion cuts a file into byte ranges, one per partition
//! (`FileSource::repartitioned`, above `datafusion.optimizer.repartition_file_min_size` and over
//! `datafusion.execution.target_partitions`), and each range reads the records that *start* in
//! it, so every record is read exactly once whatever the cut.
//!
//! A range `[s, e)` reads the records starting at `B(s)` up to, not including, `B(e)`, where
//! `B(0) = 0` and `B(x)` is the first [`Cut`] at or after `x`: for most formats just after the
//! first line break at or after `x - 1` (a line start); for back-to-back JSON objects the `{` of
//! the first `}{` whose `}` is at or after `x - 1`. Cutting at line starts is only right when
//! every line break is between records, so a format splits a file only when its head says so
//! (newline-delimited JSON, CSV without line breaks in values) and it is neither compressed nor
//! transcoded; otherwise the range starting at 0 reads the file whole and the others read nothing.
//! A cut that can fall inside a record (a quoted line break in CSV, a `}{` in a JSON string) is
//! checked by the range before it, which reads past its end to the record that crosses it. Every
//! range decides from the same head bytes, so they all decide alike. Offsets stay those of the
//! file: a bad record's position is the same whether its file was split or not.

use std::io::BufRead;

use bytes::Bytes;
use datafusion::common::Result;
use datafusion::datasource::listing::PartitionedFile;
use futures::StreamExt;
use futures::stream::BoxStream;
use memchr::memchr;

/// Bytes at the start of a file that decide whether it can be split.
pub const HEAD_LEN: u64 = 64 << 10;

/// The part of a file a partition is to read, when it is not the whole file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub start: u64,
    pub end: u64,
}

impl ByteRange {
    /// The range DataFusion gave `file`; None when it is the whole file (or none was given).
    pub fn of(file: &PartitionedFile) -> Option<ByteRange> {
        let range = file.range.as_ref()?;
        let size = file.object_meta.size;
        let start = u64::try_from(range.start).unwrap_or(0);
        let end = u64::try_from(range.end).unwrap_or(0).min(size);
        (start > 0 || end < size).then_some(ByteRange { start, end })
    }
}

/// Where a format's records may be cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cut {
    /// Just after a line break: a line start is a record start, unless a record spans lines (a
    /// pretty-printed or broken JSON record past the head that made the file look
    /// newline-delimited; a CSV quoted line break, which CSV checks itself).
    LineStart,
    /// Between the `}` and `{` of `}{` (back-to-back JSON objects). A string can hold `}{`.
    /// For both cuts, the range before a JSON cut checks that no record crosses it
    /// ([`RangeEnd::crossed_by`]).
    ObjectJoin,
}

impl Cut {
    /// Where in `bytes` the first cut is (the offset of the record start after it). `after_close`:
    /// the byte just before `bytes` was a `}` that may start a cut.
    fn find(self, after_close: bool, bytes: &[u8]) -> Option<usize> {
        match self {
            Cut::LineStart => memchr(b'\n', bytes).map(|k| k + 1),
            Cut::ObjectJoin if after_close && bytes.first() == Some(&b'{') => Some(0),
            Cut::ObjectJoin => memchr::memmem::find(bytes, b"}{").map(|k| k + 1),
        }
    }

    /// Whether `bytes`, searched without a cut, end with the first byte of one.
    fn ends_open(self, bytes: &[u8]) -> bool {
        self == Cut::ObjectJoin && bytes.last() == Some(&b'}')
    }
}

/// Whether a file is read whole or by ranges, decided from its head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Not splittable, and this is the range at 0: read the whole file.
    Whole,
    /// Not splittable, and another range reads it: nothing to read here.
    Nothing,
    /// Read the records starting in `B(start)..B(end)`, cut as given.
    Ranges(ByteRange, Cut),
}

impl Plan {
    /// `cut`: how the file's records may be cut, None when it cannot be split.
    pub fn new(range: ByteRange, cut: Option<Cut>) -> Plan {
        match (cut, range.start) {
            (Some(cut), _) => Plan::Ranges(range, cut),
            (None, 0) => Plan::Whole,
            (None, _) => Plan::Nothing,
        }
    }
}

/// Positions `stream` (the file's bytes from `range.start - 1`, or from 0) at `B(range.start)`:
/// returns that offset and the rest of the stream, or None when no record starts in the range
/// (the first cut is at or past `range.end`, so it belongs to the next range).
pub async fn skip_to_record_start(
    mut stream: BoxStream<'static, Result<Bytes>>,
    range: ByteRange,
    cut: Cut,
) -> Result<Option<(u64, BoxStream<'static, Result<Bytes>>)>> {
    if range.start == 0 {
        return Ok(Some((0, stream)));
    }
    let mut at = range.start - 1;
    let mut after_close = false;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if let Some(k) = cut.find(after_close, &chunk) {
            let start = at + k as u64;
            if start >= range.end {
                return Ok(None);
            }
            let rest = chunk.slice(k..);
            let stream = futures::stream::once(async move { Ok(rest) })
                .chain(stream)
                .boxed();
            return Ok(Some((start, stream)));
        }
        if !chunk.is_empty() {
            after_close = cut.ends_open(&chunk);
        }
        at += chunk.len() as u64;
    }
    Ok(None)
}

/// [`skip_to_record_start`] for a blocking reader of the file's bytes from `range.start - 1`.
pub fn skip_to_record_start_blocking(
    reader: &mut dyn BufRead,
    range: ByteRange,
    cut: Cut,
) -> std::io::Result<Option<u64>> {
    if range.start == 0 {
        return Ok(Some(0));
    }
    let mut at = range.start - 1;
    let mut after_close = false;
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(None);
        }
        if let Some(k) = cut.find(after_close, buffer) {
            reader.consume(k);
            let start = at + k as u64;
            return Ok((start < range.end).then_some(start));
        }
        let n = buffer.len();
        after_close = cut.ends_open(buffer);
        reader.consume(n);
        at += n as u64;
    }
}

/// Where a range's records stop: `B(end)`, found as the bytes past `end - 1` arrive.
#[derive(Debug, Clone)]
pub struct RangeEnd {
    /// Where to look for the first cut; None: the range runs to the end of the file.
    search_from: Option<u64>,
    cut: Cut,
    /// The byte before `search_from` is a `}` that may start a cut.
    after_close: bool,
    /// `B(end)`, once found.
    boundary: Option<u64>,
}

impl RangeEnd {
    /// A range reading to the end of the file.
    pub fn none() -> RangeEnd {
        RangeEnd {
            search_from: None,
            cut: Cut::LineStart,
            after_close: false,
            boundary: None,
        }
    }

    /// The end of `range` in a file of `size` bytes, cut at line starts.
    pub fn of(range: ByteRange, size: u64) -> RangeEnd {
        RangeEnd::cut_at(range, size, Cut::LineStart)
    }

    /// The end of `range` in a file of `size` bytes whose records are cut as `cut` says.
    pub fn cut_at(range: ByteRange, size: u64, cut: Cut) -> RangeEnd {
        if range.end >= size {
            return RangeEnd::none();
        }
        RangeEnd {
            // range.end > range.start >= 0: at least 1.
            search_from: Some(range.end.saturating_sub(1)),
            cut,
            after_close: false,
            boundary: None,
        }
    }

    /// Looks for `B(end)` in bytes `base..` of the file, the bytes read since the last call (or
    /// more: those before the point looked at already are skipped).
    pub fn observe(&mut self, base: u64, bytes: &[u8]) {
        let Some(from) = self.search_from.filter(|_| self.boundary.is_none()) else {
            return;
        };
        let end = base + bytes.len() as u64;
        if from >= end {
            return;
        }
        let skip = from.saturating_sub(base) as usize;
        let rest = &bytes[skip..];
        match self.cut.find(self.after_close, rest) {
            Some(k) => self.boundary = Some(from.max(base) + k as u64),
            None => {
                self.after_close = self.cut.ends_open(rest);
                self.search_from = Some(end);
            }
        }
    }

    /// `B(end)` when a record from `start` to `end` crosses it: that cut is no record start, so
    /// the range after it did not start at one.
    pub fn crossed_by(&self, start: u64, end: u64) -> Option<u64> {
        let boundary = self.boundary?;
        (start < boundary && boundary < end).then_some(boundary)
    }

    /// `B(end)` when a JSON record from `start` to `end` crosses it in a way a whole read would
    /// not agree with: any record across a `}{` cut; across a line-start cut only a `valid` one
    /// (pretty-printed), as a broken record is cut again after its first line break followed by
    /// `{` by the whole read too, which ranges agree with.
    pub fn crossed_by_record(
        &self,
        start: u64,
        end: u64,
        valid: impl FnOnce() -> bool,
    ) -> Option<u64> {
        let boundary = self.crossed_by(start, end)?;
        (self.cut == Cut::ObjectJoin || valid()).then_some(boundary)
    }

    /// Where this range's records may be cut.
    pub fn cut(&self) -> Cut {
        self.cut
    }

    /// `B(end)`, once found (None: not yet, or the range runs to the end of the file).
    pub fn boundary(&self) -> Option<u64> {
        self.boundary
    }

    /// Whether a record starting at `start` is this range's. Right as soon as the bytes up to the
    /// record's start were observed: until `B(end)` is found, no line starts past `end - 1`.
    pub fn includes(&self, start: u64) -> bool {
        self.boundary.is_none_or(|b| start < b)
    }

    /// Whether the range's records are all found: past `B(end)`, with no record of the range
    /// still open. `pending`: where the record being cut started (None between records);
    /// `scanned`: the offset cut so far.
    pub fn reached(&self, pending: Option<u64>, scanned: u64) -> bool {
        self.boundary
            .is_some_and(|b| pending.map_or(scanned, |p| p) >= b)
    }
}

/// A file read in byte ranges where a cut turned out not to be a record start (a quoted line break
/// in CSV, `}{` in a JSON string): the run reads such files whole ([`FilesReadWhole`]) and starts
/// again.
#[derive(Debug, Clone)]
pub struct SplitMismatch {
    /// The file, as named in messages.
    pub file: String,
    /// The cut a byte range started at.
    pub boundary: u64,
    /// What crosses the cut, and where the record around it is.
    pub detail: String,
}

/// The words of every mismatch's message that no other message has.
const MISMATCH_WORDS: &str = "began inside a record (";

impl SplitMismatch {
    /// Whether an error's text (a cluster's job, whose error came back as text) is a mismatch's.
    pub fn is_in_message(text: &str) -> bool {
        text.contains(MISMATCH_WORDS)
    }

    pub fn into_error(self) -> datafusion::error::DataFusionError {
        datafusion::error::DataFusionError::External(Box::new(self))
    }
}

impl std::fmt::Display for SplitMismatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} was read in byte ranges, and the one starting at byte {} {MISMATCH_WORDS}{})",
            self.file, self.boundary, self.detail
        )
    }
}

impl std::error::Error for SplitMismatch {}

/// A session extension: files whose cuts need checking (CSV, back-to-back JSON) are read whole;
/// a run's attempt after a [`SplitMismatch`].
#[derive(Debug, Default)]
pub struct FilesReadWhole;

/// How schema inference splits a large file: as DataFusion's scan would (the same two settings),
/// so one file is inferred on every core.
#[derive(Debug, Clone, Copy)]
pub struct InferSplit {
    /// `datafusion.execution.target_partitions`: ranges per file.
    parts: usize,
    /// `datafusion.optimizer.repartition_file_min_size`: smaller files are read in one go.
    min_size: u64,
}

impl InferSplit {
    pub fn of(config: &datafusion::config::ConfigOptions) -> InferSplit {
        let split = config.optimizer.repartition_file_scans;
        InferSplit {
            parts: if split {
                config.execution.target_partitions
            } else {
                1
            },
            min_size: config.optimizer.repartition_file_min_size as u64,
        }
    }

    /// The ranges to infer `size` bytes in; None: read the file in one go (small, one core, or
    /// with a record limit, which is counted from the start of the file).
    pub fn ranges(&self, size: u64, limit: Option<usize>) -> Option<Vec<ByteRange>> {
        if self.parts < 2 || size < self.min_size.max(2) || limit.is_some() {
            return None;
        }
        let parts = (self.parts as u64).min(size);
        let step = size.div_ceil(parts);
        let ranges = (0..parts)
            .map(|i| ByteRange {
                start: i * step,
                end: ((i + 1) * step).min(size),
            })
            .filter(|r| r.start < r.end)
            .collect();
        Some(ranges)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::in_chunks;

    /// `B(x)`, the definition byte by byte: the first line start at or after `x`, or the `{` of
    /// the first `}{` whose `}` is at or after `x - 1`.
    fn boundary(bytes: &[u8], x: u64, cut: Cut) -> u64 {
        if x == 0 {
            return 0;
        }
        let n = bytes.len() as u64;
        let is_cut = |i: u64| match cut {
            Cut::LineStart => bytes[i as usize] == b'\n',
            Cut::ObjectJoin => {
                bytes[i as usize] == b'}' && bytes.get(i as usize + 1) == Some(&b'{')
            }
        };
        (x - 1..n).find(|&i| is_cut(i)).map_or(n, |i| i + 1)
    }

    /// Every range start and end, fed in every chunk size: the start found by the stream, the
    /// blocking reader and the end found by [`RangeEnd`] are the definition's, for both cuts.
    #[tokio::test]
    async fn record_starts_match_the_definition_for_every_cut() {
        let lines: &[u8] = b"{\"a\":1}\n\n{\"a\":22}\r\n{\"a\":333}\nno newline at the end";
        let joined: &[u8] = b"{\"a\":1}{\"a\":\"}{\"}}{\"b\":{}}\n{}}}{{\"c\":2}x}";
        for (text, cut) in [(lines, Cut::LineStart), (joined, Cut::ObjectJoin)] {
            let size = text.len() as u64;
            for start in 0..size {
                for end in start + 1..=size {
                    let range = ByteRange { start, end };
                    let expected_start = boundary(text, start, cut);
                    let expected_end = boundary(text, end, cut);
                    let from = start.saturating_sub(1) as usize;
                    for chunk in [1, 2, 3, 64] {
                        let found =
                            skip_to_record_start(in_chunks(&text[from..], chunk), range, cut)
                                .await
                                .unwrap()
                                .map(|(at, _)| at);
                        let expected = (expected_start < end).then_some(expected_start);
                        assert_eq!(found, expected, "{cut:?} {start}..{end}");
                        let mut reader = std::io::BufReader::with_capacity(chunk, &text[from..]);
                        let found = skip_to_record_start_blocking(&mut reader, range, cut).unwrap();
                        assert_eq!(found, expected, "{cut:?} {start}..{end}");

                        let mut range_end = RangeEnd::cut_at(range, size, cut);
                        for (i, part) in text.chunks(chunk).enumerate() {
                            range_end.observe((i * chunk) as u64, part);
                        }
                        let found = range_end.boundary.unwrap_or(size);
                        assert_eq!(found, expected_end, "{cut:?} {start}..{end}");
                    }
                }
            }
        }
    }

    #[test]
    fn only_a_record_across_a_cut_crosses_it() {
        let mut end = RangeEnd::cut_at(ByteRange { start: 0, end: 5 }, 100, Cut::ObjectJoin);
        end.observe(0, b"{\"a\":\"}{\"}{}");
        // The first record is `{"a":"}{"}`, bytes 0..10; its string holds the first `}{`.
        assert_eq!(end.boundary, Some(7));
        assert_eq!(end.crossed_by(0, 10), Some(7));
        assert_eq!(end.crossed_by(0, 7), None);
        assert_eq!(end.crossed_by(7, 10), None);
        // A record over two lines crosses the line-start cut inside it.
        let mut lines = RangeEnd::of(ByteRange { start: 0, end: 5 }, 100);
        lines.observe(0, b"{\"a\":\n1}\n");
        assert_eq!(lines.crossed_by(0, 9), Some(6));
        assert_eq!(lines.crossed_by(6, 9), None);
        // For JSON records: a valid one across a line start is a mismatch, a broken one (cut
        // again after its first line break by the whole read too) is not; any one across `}{`.
        assert_eq!(lines.crossed_by_record(0, 9, || true), Some(6));
        assert_eq!(lines.crossed_by_record(0, 9, || false), None);
        assert_eq!(end.crossed_by_record(0, 10, || false), Some(7));
    }

    #[test]
    fn a_range_is_done_when_no_record_of_it_is_open() {
        let mut end = RangeEnd::of(ByteRange { start: 0, end: 5 }, 100);
        assert!(!end.reached(None, 50));
        end.observe(0, b"{\"a\":1}\n{");
        assert_eq!(end.boundary, Some(8));
        assert!(end.includes(7) && !end.includes(8));
        assert!(!end.reached(Some(0), 9));
        assert!(!end.reached(None, 7));
        assert!(end.reached(None, 8) && end.reached(Some(8), 9));
        let whole = RangeEnd::none();
        assert!(whole.includes(u64::MAX) && !whole.reached(None, u64::MAX));
    }

    #[test]
    fn plans() {
        let at = |start| ByteRange { start, end: 10 };
        assert_eq!(Plan::new(at(0), None), Plan::Whole);
        assert_eq!(Plan::new(at(3), None), Plan::Nothing);
        assert_eq!(
            Plan::new(at(3), Some(Cut::ObjectJoin)),
            Plan::Ranges(at(3), Cut::ObjectJoin)
        );
    }
}
