//! A large CSV file read whole (a compressed one cannot be cut into byte ranges) parsed on
//! several cores: its text is cut into segments ([`crate::sources::segments`]) at line breaks
//! that look like record ends, and each segment's records are read as a whole read reads them
//! there.
//!
//! A line break looks like a record's end when the segment holds an even number of quote
//! characters before it (so it is outside quoted values; an escaped quote is two of them) and
//! its line holds an even number too (a quote left open on that line would make a whole read
//! take the lines after it into one bad record). A stray quote inside an unquoted value
//! (`5" screen`) upsets the segment's count, so a segment that finds no such line break goes on
//! for at most [`FORCED_CUT_BYTES`] and is then cut after any line of even quotes. Either way the
//! cut is checked: a segment's reader stops with [`Next::SegmentEndInRecord`] when its last
//! record ran into the cut instead of ending at a line break before it. Segment 0 starts where a
//! whole read starts, so, segment after segment, each one starts at a record start with the
//! whole read's state there (the header read, the field count set by the head's first good
//! record) and reads exactly the whole read's records; a failed check stops the scan with a
//! [`SplitMismatch`], and the run reads CSV files whole.
//!
//! [`Next::SegmentEndInRecord`]: crate::sources::csv_records::Next
//! [`SplitMismatch`]: crate::sources::split::SplitMismatch

use std::io::{self, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::Result;
use datafusion::error::DataFusionError;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path;

use super::{FileReading, read_in_blocking_task};
use crate::sources::compression;
use crate::sources::csv_ranges::{HeadFacts, first_good_record};
use crate::sources::json::framing::bom_len;
use crate::sources::object_read;
use crate::sources::segments::{self, CutRule, FORCED_CUT_BYTES, Segment, size_reached_at};
use crate::sources::split::HEAD_LEN;

/// Cuts at line breaks after an even number of quotes in the segment and in the line.
struct OutsideQuotes {
    quote: u8,
    /// Whether the segment so far holds an odd number of quotes.
    odd: bool,
    /// Whether the line so far does.
    line_odd: bool,
}

/// Whether `bytes` hold an odd number of `quote`s.
fn odd_count(quote: u8, bytes: &[u8]) -> bool {
    memchr::memchr_iter(quote, bytes).count() % 2 == 1
}

impl CutRule for OutsideQuotes {
    // Bad records name their line.
    const COUNTS_LINES: bool = true;
    // A bad record over several lines is read again from its second line, which can start a
    // segment: only its end, in the next segment, says whether it is bad.
    const READS_ON: bool = true;

    fn segment_end(&mut self, held: u64, chunk: &[u8]) -> Option<usize> {
        let from = size_reached_at(held, chunk);
        let before = &chunk[..from];
        self.odd ^= odd_count(self.quote, before);
        match memchr::memrchr(b'\n', before) {
            Some(k) => self.line_odd = odd_count(self.quote, &before[k + 1..]),
            None => self.line_odd ^= odd_count(self.quote, before),
        }
        for k in memchr::memchr2_iter(b'\n', self.quote, &chunk[from..]) {
            let k = from + k;
            if chunk[k] == self.quote {
                self.odd = !self.odd;
                self.line_odd = !self.line_odd;
                continue;
            }
            let even_line = !std::mem::take(&mut self.line_odd);
            if even_line && (!self.odd || held + k as u64 >= FORCED_CUT_BYTES) {
                // The next segment counts its own quotes.
                self.odd = false;
                return Some(k + 1);
            }
        }
        None
    }
}

/// The batches of a large CSV file read whole, compressed or not, its text in segments parsed
/// on several cores; None when its head says not to cut it (a record over several lines, no good
/// record, a UTF-16 mark): it is then read as any file read whole. `reading` reads the whole
/// file (no byte range).
pub(super) async fn read(
    reading: &FileReading,
    store: &Arc<dyn ObjectStore>,
    local: Option<&LocalFileSystem>,
    location: &Path,
    size: u64,
) -> Result<Option<BoxStream<'static, Result<RecordBatch>>>> {
    let raw = object_read::byte_stream(store, local, location).await?;
    let (compression, raw) = compression::sniffed(raw, location.as_ref()).await;
    let text = compression.decoded_stream(raw, size)?;
    let (head, rest) = object_read::head_of(text, HEAD_LEN as usize).await;
    // A UTF-16 mark makes a whole read transcode the text: its bytes are no lines to cut at.
    if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
        return Ok(None);
    }
    // Offsets are the text's, without a byte-order mark, as in a whole read.
    let bom = bom_len(&head);
    let complete = match (head.len() as u64) < HEAD_LEN {
        true => head.len(),
        false => memchr::memrchr(b'\n', &head).map_or(0, |k| k + 1),
    };
    let Some((first_good, width)) = head
        .get(bom..complete)
        .and_then(|lines| first_good_record(lines, &reading.dialect, reading.max_record_bytes))
    else {
        return Ok(None);
    };
    let facts = HeadFacts {
        bom: 0,
        first_good,
        width,
    };
    let head = head.slice(bom..);
    let text = futures::stream::once(async move { Ok(head) })
        .chain(rest)
        .boxed();
    tracing::debug!(
        "{}: its text is cut in segments, parsed on several cores",
        reading.file
    );
    let rule = OutsideQuotes {
        quote: reading.dialect.quote,
        odd: false,
        line_odd: false,
    };
    let reading = Arc::new(reading.clone());
    Ok(Some(segments::decode(
        text,
        rule,
        Arc::new(move |segment| decode_segment(Arc::clone(&reading), segment, facts)),
    )))
}

/// A segment's text and, when it was cut, the following text after it: the input a whole read
/// would read from the segment's start on, as far as the next cut.
struct ReadOn<R> {
    text: R,
    following: Option<R>,
    /// Whether the segment was cut at its end.
    cut: Arc<AtomicBool>,
    /// Whether the following text was cut at its end (unset: the file ends there).
    following_cut: Arc<AtomicBool>,
    /// The segment's cut (a text offset), set when its text ends.
    cut_at: Arc<AtomicU64>,
    /// Text offset of the next byte of the segment's text.
    offset: u64,
    /// Set once the input ends where the text was cut (so not at the file's end).
    truncated: Arc<AtomicBool>,
}

impl<R: Read> Read for ReadOn<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.cut_at.load(Ordering::SeqCst) == u64::MAX {
            let n = self.text.read(buf)?;
            if n > 0 || buf.is_empty() {
                self.offset += n as u64;
                return Ok(n);
            }
            if !self.cut.load(Ordering::SeqCst) {
                // The last segment: the file's end.
                self.following = None;
            }
            // Known before a byte past it is read.
            self.cut_at.store(self.offset, Ordering::SeqCst);
        }
        let n = match &mut self.following {
            Some(following) => following.read(buf)?,
            None => 0,
        };
        if n == 0 && self.following.is_some() {
            self.truncated
                .store(self.following_cut.load(Ordering::SeqCst), Ordering::SeqCst);
        }
        Ok(n)
    }
}

/// A blocking reader of a piece of text (read it in a blocking task with the runtime entered).
fn blocking(input: BoxStream<'static, Result<Bytes>>) -> impl Read + Send {
    let input = tokio_util::io::StreamReader::new(input.map_err(|e| match e {
        DataFusionError::IoError(e) => e,
        other => io::Error::other(other),
    }));
    tokio_util::io::SyncIoBridge::new(input)
}

/// The batches of one segment's records, read by a blocking task, reading on past its cut when
/// a record crosses it. `facts`: the head's, which give the state of a whole read at the
/// segment's start.
fn decode_segment(
    reading: Arc<FileReading>,
    segment: Segment,
    facts: HeadFacts,
) -> BoxStream<'static, Result<RecordBatch>> {
    read_in_blocking_task(move |batches| {
        let at = segment.start;
        let cut_at = Arc::new(AtomicU64::new(u64::MAX));
        let truncated = Arc::new(AtomicBool::new(false));
        let (following, following_cut) = match segment.following {
            Some(piece) => (Some(blocking(piece.input)), piece.cut),
            None => (None, Arc::new(AtomicBool::new(false))),
        };
        let input = ReadOn {
            text: blocking(segment.text.input),
            following,
            cut: segment.text.cut,
            following_cut,
            cut_at: Arc::clone(&cut_at),
            offset: at.offset,
            truncated: Arc::clone(&truncated),
        };
        let start = facts.start_at(at.offset, reading.dialect.has_header);
        let mut records = reading
            .records(input)
            .starting_at(at.offset, at.line)
            .stopping_at_segment_cut(cut_at)
            .cut_at_end(truncated);
        records.width = start.width;
        reading.read(records, start.header_pending, &mut |batch| {
            batches.emit(batch)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::segments::SEGMENT_BYTES;

    fn ends(text: &[u8], held: u64) -> Vec<usize> {
        let mut rule = OutsideQuotes {
            quote: b'"',
            odd: false,
            line_odd: false,
        };
        let mut found = Vec::new();
        let mut at = 0;
        let mut held = held;
        while at < text.len() {
            match rule.segment_end(held, &text[at..]) {
                Some(end) => {
                    at += end;
                    found.push(at);
                    held = SEGMENT_BYTES;
                }
                None => break,
            }
        }
        found
    }

    #[test]
    fn cuts_fall_at_line_breaks_outside_quoted_values_after_lines_of_even_quotes() {
        let text = b"1,\"a\nb\",x\n2,\"c\"\"\",y\n3,\"d\ne\"\n4,z\n";
        // Past the size from the start: after `2,"c""",y` and `4,z`; not after the lines of a
        // quoted line break (a cut after `b",x` would do, but its line's quotes are odd).
        assert_eq!(ends(text, SEGMENT_BYTES), vec![20, 32]);
        // The size is reached 3 bytes into the text: the quote before counts.
        assert_eq!(ends(text, SEGMENT_BYTES - 3)[0], 20);
        assert_eq!(ends(text, 0), Vec::<usize>::new(), "size not reached");
    }

    #[test]
    fn quotes_before_the_size_is_reached_count() {
        // The quoted value opens before the size is reached and closes after it.
        let text = b"1,\"open\nstill open\",x\n2,y\n";
        let held = SEGMENT_BYTES - 6;
        assert_eq!(ends(text, held), vec![26]);
    }

    #[test]
    fn no_cut_after_a_line_with_a_quote_left_open() {
        // Two quotes left open: the segment's count is even after the second, its line's odd (a
        // whole read takes the line after it into the bad record).
        let text = b"-3,\"open,x\n1,a\n-3,\"open,x\n2,b\n";
        assert_eq!(ends(text, SEGMENT_BYTES), vec![30]);
    }

    #[test]
    fn a_segment_without_a_break_outside_quotes_is_cut_at_its_size_limit() {
        // A stray quote makes every later line break look quoted.
        let text = b"1,5\" screen\n2,x\n3,y\n";
        assert_eq!(ends(text, SEGMENT_BYTES), Vec::<usize>::new());
        // Not after the stray quote's own line.
        assert_eq!(ends(text, FORCED_CUT_BYTES), vec![16, 20]);
    }
}
