//! One large compressed file decoded on several cores.
//!
//! A gzip or zstd file cannot be cut into byte ranges, so one partition inflates it from its
//! start ([`crate::sources::read_ahead`] does that on a core of its own). Its inflated text can be
//! cut, though, where a line start is (most likely) a record start. Here the inflated stream is
//! cut into segments of a few MiB, each decoded by a task of its own, as a byte range of a plain
//! file would be; the segments' batches come out in file order, so a segment's error comes before
//! anything a later segment decoded. Where a cut may fall is the format's [`CutRule`]
//! (newline-delimited JSON in `json::segments`, CSV in `csv_scan::segments`). A record
//! that spans a cut all the same is still open when its segment ends: the decoder then stops the
//! scan with a [`SplitMismatch`], and the run starts again reading such files whole. A line longer
//! than a segment flows through its segment chunk by chunk, as through one reader, so memory
//! stays bounded whatever the line length.
//!
//! [`SplitMismatch`]: crate::sources::split::SplitMismatch

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::Result;
use datafusion::error::DataFusionError;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

/// Inflated bytes per segment, at least (a segment ends at the first cut past this): small, as
/// the segments in flight hold their batches until they are handed on.
pub const SEGMENT_BYTES: u64 = 2 << 20;

/// A segment that found no place its rule prefers to end at by this size ends at a line break its
/// rule still allows (the check on its end catches a record it cuts): its batches are held until
/// it ends, so it must end.
pub const FORCED_CUT_BYTES: u64 = 4 * SEGMENT_BYTES;

/// Segments decoded ahead of the one whose batches are being handed on.
const SEGMENTS_AHEAD: usize = 2;

/// Chunks queued for a segment's decoder.
const CHUNKS_QUEUED: usize = 4;

/// Where a segment starts in the inflated text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentStart {
    /// Offset of its first byte.
    pub offset: u64,
    /// 1-based line of its first byte (1 unless the rule [counts lines](CutRule::COUNTS_LINES)).
    pub line: u64,
}

/// Where a format's inflated text may be cut between two segments.
pub trait CutRule: Send + 'static {
    /// Whether segments are told their first line (CSV's bad records name lines).
    const COUNTS_LINES: bool;

    /// Whether a segment's decoder may read on past its cut, into the next segment's text
    /// ([`Segment::following`]), to find where a record that crosses the cut ends, as a whole
    /// read would.
    const READS_ON: bool;

    /// Where in `chunk` the segment that holds `held` bytes before it ends: just past a line
    /// break, once it holds [`SEGMENT_BYTES`]. None: it goes on past the chunk. Called on every
    /// byte of the text once, in order: the rule has seen `chunk` up to the end it returns, or
    /// all of it; a segment starts after each end.
    fn segment_end(&mut self, held: u64, chunk: &[u8]) -> Option<usize>;
}

/// Where in `chunk` a segment that holds `held` bytes may start looking for its end: the segment
/// holds [`SEGMENT_BYTES`] by the line break at that index.
pub fn size_reached_at(held: u64, chunk: &[u8]) -> usize {
    usize::try_from(SEGMENT_BYTES.saturating_sub(held).saturating_sub(1))
        .unwrap_or(usize::MAX)
        .min(chunk.len())
}

/// Text handed to a decoder, and whether it was cut at its end (set before its bytes end;
/// unset, the file ends there).
pub struct Piece {
    pub input: BoxStream<'static, Result<Bytes>>,
    pub cut: Arc<AtomicBool>,
}

/// One segment to decode.
pub struct Segment {
    /// Its text.
    pub text: Piece,
    pub start: SegmentStart,
    /// For rules that [read on](CutRule::READS_ON): the next segment's text, up to its own cut,
    /// as it is cut. Dropping it stops it.
    pub following: Option<Piece>,
}

/// Decodes the records of a segment.
pub type SegmentDecoder = Arc<dyn Fn(Segment) -> SegmentBatches + Send + Sync>;

/// A segment's batches, in order.
pub type SegmentBatches = BoxStream<'static, Result<RecordBatch>>;

/// The batches of the text `inflated` (a whole file, from its start), cut where `rule` says, its
/// segments decoded by `decode` on tasks of their own. Needs a tokio runtime.
pub fn decode(
    inflated: BoxStream<'static, Result<Bytes>>,
    rule: impl CutRule,
    decode: SegmentDecoder,
) -> BoxStream<'static, Result<RecordBatch>> {
    let (decoded, in_order) = mpsc::channel::<JoinHandle<Result<Vec<RecordBatch>>>>(SEGMENTS_AHEAD);
    tokio::spawn(cut(inflated, rule, decode, decoded));
    futures::stream::unfold(in_order, |mut in_order| async move {
        let segment = in_order.recv().await?;
        let batches = match segment.await {
            Ok(batches) => batches,
            Err(e) => Err(DataFusionError::Internal(format!(
                "decoding a segment of a compressed file failed: {e}"
            ))),
        };
        Some((batches, in_order))
    })
    .flat_map(|batches| {
        let batches: Vec<Result<RecordBatch>> = match batches {
            Ok(batches) => batches.into_iter().map(Ok).collect(),
            Err(e) => vec![Err(e)],
        };
        futures::stream::iter(batches)
    })
    .boxed()
}

/// Text being handed to a decoder.
struct Feed {
    input: mpsc::Sender<Result<Bytes>>,
    cut: Arc<AtomicBool>,
}

impl Feed {
    /// A feed, and the piece its decoder reads; `cut`: the flag the piece's cut sets.
    fn new(cut: Arc<AtomicBool>) -> (Feed, Piece) {
        let (input, chunks) = mpsc::channel::<Result<Bytes>>(CHUNKS_QUEUED);
        let chunks = futures::stream::unfold(chunks, |mut chunks| async move {
            chunks.recv().await.map(|chunk| (chunk, chunks))
        })
        .boxed();
        let piece = Piece {
            input: chunks,
            cut: Arc::clone(&cut),
        };
        (Feed { input, cut }, piece)
    }
}

/// A segment being fed: its text, the bytes sent so far, and the previous segment's following
/// text (the same bytes) while its decoder reads it.
struct Feeding {
    text: Feed,
    bytes: u64,
    previous: Option<mpsc::Sender<Result<Bytes>>>,
}

/// Cuts `inflated` into segments, starting a decoding task for each and queueing its handle in
/// `decoded` (in file order). Stops when the reader of `decoded` is gone.
async fn cut<R: CutRule>(
    mut inflated: BoxStream<'static, Result<Bytes>>,
    mut rule: R,
    decode: SegmentDecoder,
    decoded: mpsc::Sender<JoinHandle<Result<Vec<RecordBatch>>>>,
) {
    let mut at = SegmentStart { offset: 0, line: 1 };
    let mut feeding: Option<Feeding> = None;
    // The following text of the segment fed last, which the next segment's bytes go to.
    let mut following: Option<Feed> = None;
    while let Some(next) = inflated.next().await {
        let mut chunk = match next {
            Ok(chunk) => chunk,
            Err(e) => {
                // The error reaches the reader through the segment it falls in.
                if feeding.is_none() {
                    feeding = start::<R>(&decode, &decoded, at, &mut following).await;
                }
                if let Some(segment) = feeding {
                    // The previous decoder, reading on, must not take this as the file's end.
                    segment.text.cut.store(true, Ordering::SeqCst);
                    let _ = segment.text.input.send(Err(e)).await;
                }
                return;
            }
        };
        while !chunk.is_empty() {
            if feeding.is_none() {
                match start::<R>(&decode, &decoded, at, &mut following).await {
                    Some(segment) => feeding = Some(segment),
                    None => return,
                }
            }
            let Some(segment) = feeding.as_mut() else {
                return;
            };
            let end = rule.segment_end(segment.bytes, &chunk);
            let piece = match end {
                Some(end) => chunk.split_to(end),
                None => std::mem::take(&mut chunk),
            };
            segment.bytes += piece.len() as u64;
            at.offset += piece.len() as u64;
            if R::COUNTS_LINES {
                at.line += memchr::memchr_iter(b'\n', &piece).count() as u64;
            }
            // A closed previous feed: its decoder read on as far as it needed.
            if let Some(previous) = &segment.previous
                && previous.send(Ok(piece.clone())).await.is_err()
            {
                segment.previous = None;
            }
            // A closed input: the decoder stopped at an error, which its handle gives.
            if segment.text.input.send(Ok(piece)).await.is_err() {
                return;
            }
            if end.is_some() {
                // Set before the input closes: the decoder reads it once its bytes end (the
                // previous decoder, once the following text ends: the same flag).
                segment.text.cut.store(true, Ordering::SeqCst);
                feeding = None;
            }
        }
    }
}

/// Starts decoding a segment at `at`, its following text fed next; `following`: the previous
/// segment's, which this one's bytes go to. None when the reader of `decoded` is gone.
async fn start<R: CutRule>(
    decode: &SegmentDecoder,
    decoded: &mpsc::Sender<JoinHandle<Result<Vec<RecordBatch>>>>,
    at: SegmentStart,
    following: &mut Option<Feed>,
) -> Option<Feeding> {
    // The previous segment's following text ends where this one is cut: one flag.
    let (previous, cut) = match following.take() {
        Some(feed) => (Some(feed.input), feed.cut),
        None => (None, Arc::new(AtomicBool::new(false))),
    };
    let (text, piece) = Feed::new(cut);
    let next_piece = if R::READS_ON {
        let (feed, piece) = Feed::new(Arc::new(AtomicBool::new(false)));
        *following = Some(feed);
        Some(piece)
    } else {
        None
    };
    let batches = decode(Segment {
        text: piece,
        start: at,
        following: next_piece,
    });
    let task = tokio::spawn(batches.try_collect::<Vec<RecordBatch>>());
    decoded.send(task).await.ok()?;
    Some(Feeding {
        text,
        bytes: 0,
        previous,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::in_chunks;
    use datafusion::arrow::array::{Array, UInt64Array};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    /// Lines of about 100 bytes, `{..}` each, about `len` bytes in all.
    fn lines(len: usize) -> Vec<u8> {
        let mut text = Vec::new();
        let mut n = 0;
        while text.len() < len {
            text.extend(format!("{{\"n\":{n},\"pad\":\"{}\"}}\n", "x".repeat(n % 90)).bytes());
            n += 1;
        }
        text
    }

    /// Cuts after any line break once the size is reached, counting lines.
    struct AnyLine;

    impl CutRule for AnyLine {
        const COUNTS_LINES: bool = true;
        const READS_ON: bool = false;

        fn segment_end(&mut self, held: u64, chunk: &[u8]) -> Option<usize> {
            let from = size_reached_at(held, chunk);
            memchr::memchr(b'\n', &chunk[from..]).map(|k| from + k + 1)
        }
    }

    /// A decoder that gives one row per segment: its start and first line, its length, whether
    /// it was cut.
    fn describing() -> SegmentDecoder {
        Arc::new(|segment: Segment| {
            let (at, cut) = (segment.start, segment.text.cut);
            let input = segment.text.input;
            futures::stream::once(async move {
                let bytes: Vec<Bytes> = input.try_collect().await?;
                let len = bytes.iter().map(Bytes::len).sum::<usize>() as u64;
                let cut = u64::from(cut.load(Ordering::SeqCst));
                let schema = Arc::new(Schema::new(
                    ["at", "line", "len", "cut"]
                        .map(|n| Field::new(n, DataType::UInt64, false))
                        .to_vec(),
                ));
                let columns = [at.offset, at.line, len, cut]
                    .map(|v| Arc::new(UInt64Array::from(vec![v])) as Arc<dyn Array>);
                Ok(RecordBatch::try_new(schema, columns.to_vec())?)
            })
            .boxed()
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn segments_cover_the_text_in_order_cut_where_the_rule_says() {
        let text = lines(3 * SEGMENT_BYTES as usize + 12_345);
        for chunk in [4096, 256 << 10, 1 << 20] {
            let batches: Vec<RecordBatch> = decode(in_chunks(&text, chunk), AnyLine, describing())
                .try_collect()
                .await
                .unwrap();
            let column = |b: &RecordBatch, i: usize| {
                b.column(i)
                    .as_any()
                    .downcast_ref::<UInt64Array>()
                    .unwrap()
                    .value(0)
            };
            let mut expected_at = 0;
            for (i, batch) in batches.iter().enumerate() {
                let (at, line) = (column(batch, 0), column(batch, 1));
                let (len, cut) = (column(batch, 2), column(batch, 3));
                assert_eq!(at, expected_at, "chunks of {chunk}: segment {i}");
                let lines_before = memchr::memchr_iter(b'\n', &text[..at as usize]).count();
                assert_eq!(
                    line,
                    lines_before as u64 + 1,
                    "chunks of {chunk}: segment {i}"
                );
                let last = i + 1 == batches.len();
                assert_eq!(cut, u64::from(!last), "chunks of {chunk}: segment {i}");
                if !last {
                    assert!(
                        len >= SEGMENT_BYTES,
                        "chunks of {chunk}: segment {i} of {len}"
                    );
                    let end = (at + len) as usize;
                    assert_eq!(text[end - 1], b'\n', "chunks of {chunk}");
                    // The first line break past the size.
                    assert!(
                        !text[..end - 1][at as usize + SEGMENT_BYTES as usize - 1..]
                            .contains(&b'\n')
                    );
                }
                expected_at = at + len;
            }
            assert_eq!(expected_at, text.len() as u64, "chunks of {chunk}");
            assert_eq!(batches.len(), 4, "chunks of {chunk}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_error_comes_after_the_batches_before_it_and_ends_the_stream() {
        let text = lines(2 * SEGMENT_BYTES as usize + 100);
        let most = Bytes::copy_from_slice(&text[..text.len() * 3 / 4]);
        let inflated = futures::stream::iter(vec![
            Ok(most),
            Err(DataFusionError::Execution("corrupt deflate stream".into())),
        ])
        .boxed();
        let results: Vec<Result<RecordBatch>> =
            decode(inflated, AnyLine, describing()).collect().await;
        let errors: Vec<String> = results
            .iter()
            .filter_map(|r| r.as_ref().err().map(|e| e.to_string()))
            .collect();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(errors[0].contains("corrupt deflate stream"), "{errors:?}");
        assert!(
            results.last().unwrap().is_err(),
            "the error is the last item"
        );
        assert!(
            results.len() >= 2,
            "the first segment's batch before the error"
        );
    }
}
