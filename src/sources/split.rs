//! One large file read on every core: DataFusion cuts a file into byte ranges, one per partition
//! (`FileSource::repartitioned`, above `datafusion.optimizer.repartition_file_min_size` and over
//! `datafusion.execution.target_partitions`), and each range reads the records that *start* in
//! it, so every record is read exactly once whatever the cut.
//!
//! A range `[s, e)` reads the records starting at `B(s)` up to, not including, `B(e)`, where
//! `B(0) = 0` and `B(x)` is just after the first line break at or after `x - 1`: the first line
//! start at or after `x`. Cutting at line starts is only right when every line break is between
//! records, so a format splits a file only when its head says so (newline-delimited JSON, CSV
//! without line breaks in values) and it is neither compressed nor transcoded; otherwise the range
//! starting at 0 reads the file whole and the others read nothing. Every range decides from the
//! same head bytes, so they all decide alike. Offsets stay those of the file: a bad record's
//! position is the same whether its file was split or not.

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

/// Whether a file is read whole or by line ranges, decided from its head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Plan {
    /// Not splittable, and this is the range at 0: read the whole file.
    Whole,
    /// Not splittable, and another range reads it: nothing to read here.
    Nothing,
    /// Read the records starting in `B(start)..B(end)`.
    Lines(ByteRange),
}

impl Plan {
    pub fn new(range: ByteRange, splittable: bool) -> Plan {
        match (splittable, range.start) {
            (true, _) => Plan::Lines(range),
            (false, 0) => Plan::Whole,
            (false, _) => Plan::Nothing,
        }
    }
}

/// Positions `stream` (the file's bytes from `range.start - 1`, or from 0) at `B(range.start)`:
/// returns that offset and the rest of the stream, or None when no record starts in the range
/// (the first line start is at or past `range.end`, so it belongs to the next range).
pub async fn skip_to_line_start(
    mut stream: BoxStream<'static, Result<Bytes>>,
    range: ByteRange,
) -> Result<Option<(u64, BoxStream<'static, Result<Bytes>>)>> {
    if range.start == 0 {
        return Ok(Some((0, stream)));
    }
    let mut at = range.start - 1;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        if let Some(k) = memchr(b'\n', &chunk) {
            let start = at + k as u64 + 1;
            if start >= range.end {
                return Ok(None);
            }
            let rest = chunk.slice(k + 1..);
            let stream = futures::stream::once(async move { Ok(rest) })
                .chain(stream)
                .boxed();
            return Ok(Some((start, stream)));
        }
        at += chunk.len() as u64;
    }
    Ok(None)
}

/// [`skip_to_line_start`] for a blocking reader of the file's bytes from `range.start - 1`.
pub fn skip_to_line_start_blocking(
    reader: &mut dyn BufRead,
    range: ByteRange,
) -> std::io::Result<Option<u64>> {
    if range.start == 0 {
        return Ok(Some(0));
    }
    let mut at = range.start - 1;
    loop {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            return Ok(None);
        }
        if let Some(k) = memchr(b'\n', buffer) {
            reader.consume(k + 1);
            let start = at + k as u64 + 1;
            return Ok((start < range.end).then_some(start));
        }
        let n = buffer.len();
        reader.consume(n);
        at += n as u64;
    }
}

/// Where a range's records stop: `B(end)`, found as the bytes past `end - 1` arrive.
#[derive(Debug, Clone)]
pub struct RangeEnd {
    /// Where to look for the first line break; None: the range runs to the end of the file.
    search_from: Option<u64>,
    /// `B(end)`, once found.
    boundary: Option<u64>,
}

impl RangeEnd {
    /// A range reading to the end of the file.
    pub fn none() -> RangeEnd {
        RangeEnd {
            search_from: None,
            boundary: None,
        }
    }

    /// The end of `range` in a file of `size` bytes.
    pub fn of(range: ByteRange, size: u64) -> RangeEnd {
        if range.end >= size {
            return RangeEnd::none();
        }
        RangeEnd {
            // range.end > range.start >= 0: at least 1.
            search_from: Some(range.end.saturating_sub(1)),
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
        match memchr(b'\n', &bytes[skip..]) {
            Some(k) => self.boundary = Some(base + (skip + k) as u64 + 1),
            None => self.search_from = Some(end),
        }
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

    /// The first line start at or after `x` (the definition, byte by byte).
    fn boundary(bytes: &[u8], x: u64) -> u64 {
        if x == 0 {
            return 0;
        }
        (x - 1..bytes.len() as u64)
            .find(|&i| bytes[i as usize] == b'\n')
            .map_or(bytes.len() as u64, |i| i + 1)
    }

    fn chunked(bytes: &[u8], size: usize) -> BoxStream<'static, Result<Bytes>> {
        let chunks: Vec<Result<Bytes>> = bytes
            .chunks(size.max(1))
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        futures::stream::iter(chunks).boxed()
    }

    /// Every range start and end, fed in every chunk size: the start found by the stream, the
    /// blocking reader and the end found by [`RangeEnd`] are the definition's.
    #[tokio::test]
    async fn line_starts_match_the_definition_for_every_cut() {
        let text = b"{\"a\":1}\n\n{\"a\":22}\r\n{\"a\":333}\nno newline at the end";
        let size = text.len() as u64;
        for start in 0..size {
            for end in start + 1..=size {
                let range = ByteRange { start, end };
                let expected_start = boundary(text, start);
                let expected_end = boundary(text, end);
                let from = start.saturating_sub(1) as usize;
                for chunk in [1, 3, 64] {
                    let found = skip_to_line_start(chunked(&text[from..], chunk), range)
                        .await
                        .unwrap()
                        .map(|(at, _)| at);
                    let expected = (expected_start < end).then_some(expected_start);
                    assert_eq!(found, expected, "{start}..{end}");
                    let mut reader = std::io::BufReader::with_capacity(chunk, &text[from..]);
                    let found = skip_to_line_start_blocking(&mut reader, range).unwrap();
                    assert_eq!(found, expected, "{start}..{end}");

                    let mut range_end = RangeEnd::of(range, size);
                    for (i, part) in text.chunks(chunk).enumerate() {
                        range_end.observe((i * chunk) as u64, part);
                    }
                    let found = range_end.boundary.unwrap_or(size);
                    assert_eq!(found, expected_end, "{start}..{end}");
                }
            }
        }
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
        assert_eq!(Plan::new(at(0), false), Plan::Whole);
        assert_eq!(Plan::new(at(3), false), Plan::Nothing);
        assert_eq!(Plan::new(at(3), true), Plan::Lines(at(3)));
    }
}
