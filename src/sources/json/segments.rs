//! One large compressed newline-delimited file decoded on several cores.
//!
//! A gzip or zstd file cannot be cut into byte ranges, so one partition inflates it from its
//! start ([`crate::sources::read_ahead`] does that on a core of its own). Its inflated text can be
//! cut, though: in newline-delimited JSON a line start is a record start. Here the inflated stream
//! is cut into segments of a few MiB, each decoded by a task of its own, as a byte range of a
//! plain file would be; the segments' batches come out in file order, so a segment's error comes
//! before anything a later segment decoded. A cut falls at a line break between a line that ends
//! with `}` and one that starts with `{`. A record that spans it all the same (a pretty-printed
//! one, or a broken line, past the head that said the file is newline-delimited) is still open
//! when its segment ends: the decoder then stops the scan with a [`SplitMismatch`], and the run
//! starts again reading such files whole. A line longer than a segment flows through its segment
//! chunk by chunk, as through one reader, so memory stays bounded whatever the line length.
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
const SEGMENT_BYTES: u64 = 2 << 20;

/// Segments decoded ahead of the one whose batches are being handed on.
const SEGMENTS_AHEAD: usize = 2;

/// Chunks queued for a segment's decoder.
const CHUNKS_QUEUED: usize = 4;

/// Decodes the records of a segment: its inflated bytes, where in the file it starts, and
/// whether it was cut (set before its bytes end; unset, the file ends there).
pub type SegmentDecoder = Arc<
    dyn Fn(BoxStream<'static, Result<Bytes>>, u64, Arc<AtomicBool>) -> SegmentBatches + Send + Sync,
>;

/// A segment's batches, in order.
pub type SegmentBatches = BoxStream<'static, Result<RecordBatch>>;

/// The batches of the newline-delimited text `inflated` (a whole file, from its start), its
/// segments decoded by `decode` on tasks of their own. Needs a tokio runtime.
pub fn decode(
    inflated: BoxStream<'static, Result<Bytes>>,
    decode: SegmentDecoder,
) -> BoxStream<'static, Result<RecordBatch>> {
    let (decoded, in_order) = mpsc::channel::<JoinHandle<Result<Vec<RecordBatch>>>>(SEGMENTS_AHEAD);
    tokio::spawn(cut(inflated, decode, decoded));
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

/// A segment being fed: its decoder's input, the bytes sent so far, and whether it was cut.
struct Feeding {
    input: mpsc::Sender<Result<Bytes>>,
    bytes: u64,
    cut: Arc<AtomicBool>,
}

/// Cuts `inflated` into segments, starting a decoding task for each and queueing its handle in
/// `decoded` (in file order). Stops when the reader of `decoded` is gone.
async fn cut(
    mut inflated: BoxStream<'static, Result<Bytes>>,
    decode: SegmentDecoder,
    decoded: mpsc::Sender<JoinHandle<Result<Vec<RecordBatch>>>>,
) {
    let mut at = 0u64;
    let mut feeding: Option<Feeding> = None;
    while let Some(next) = inflated.next().await {
        let mut chunk = match next {
            Ok(chunk) => chunk,
            Err(e) => {
                // The error reaches the reader through the segment it falls in.
                if feeding.is_none() {
                    feeding = start(&decode, &decoded, at).await;
                }
                if let Some(segment) = feeding {
                    let _ = segment.input.send(Err(e)).await;
                }
                return;
            }
        };
        while !chunk.is_empty() {
            if feeding.is_none() {
                match start(&decode, &decoded, at).await {
                    Some(segment) => feeding = Some(segment),
                    None => return,
                }
            }
            let Some(segment) = feeding.as_mut() else {
                return;
            };
            let end = segment_end(segment.bytes, &chunk);
            let piece = match end {
                Some(end) => chunk.split_to(end),
                None => std::mem::take(&mut chunk),
            };
            segment.bytes += piece.len() as u64;
            at += piece.len() as u64;
            // A closed input: the decoder stopped at an error, which its handle gives.
            if segment.input.send(Ok(piece)).await.is_err() {
                return;
            }
            if end.is_some() {
                // Set before the input closes: the decoder reads it once its bytes end.
                segment.cut.store(true, Ordering::SeqCst);
                feeding = None;
            }
        }
    }
}

/// Where in `chunk` the segment that holds `held` bytes ends: just past the first line break,
/// once it holds [`SEGMENT_BYTES`], between a line that ends with `}` and one that starts with
/// `{` (both in `chunk`). None: it goes on past the chunk.
fn segment_end(held: u64, chunk: &[u8]) -> Option<usize> {
    let from = usize::try_from(SEGMENT_BYTES.saturating_sub(held).saturating_sub(1))
        .unwrap_or(usize::MAX)
        .min(chunk.len());
    memchr::memchr_iter(b'\n', &chunk[from..])
        .map(|k| from + k)
        .find(|&k| {
            let line = chunk[..k].strip_suffix(b"\r").unwrap_or(&chunk[..k]);
            line.last() == Some(&b'}') && chunk.get(k + 1) == Some(&b'{')
        })
        .map(|k| k + 1)
}

/// Starts decoding a segment at `at`; None when the reader of `decoded` is gone.
async fn start(
    decode: &SegmentDecoder,
    decoded: &mpsc::Sender<JoinHandle<Result<Vec<RecordBatch>>>>,
    at: u64,
) -> Option<Feeding> {
    let (input, chunks) = mpsc::channel::<Result<Bytes>>(CHUNKS_QUEUED);
    let chunks = futures::stream::unfold(chunks, |mut chunks| async move {
        chunks.recv().await.map(|chunk| (chunk, chunks))
    })
    .boxed();
    let cut = Arc::new(AtomicBool::new(false));
    let batches = decode(chunks, at, Arc::clone(&cut));
    let task = tokio::spawn(batches.try_collect::<Vec<RecordBatch>>());
    decoded.send(task).await.ok()?;
    Some(Feeding {
        input,
        bytes: 0,
        cut,
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

    /// A decoder that gives one row per segment: its start, its length, whether it was cut.
    fn describing() -> SegmentDecoder {
        Arc::new(|input, at, cut| {
            futures::stream::once(async move {
                let bytes: Vec<Bytes> = input.try_collect().await?;
                let len = bytes.iter().map(Bytes::len).sum::<usize>() as u64;
                let cut = u64::from(cut.load(Ordering::SeqCst));
                let schema = Arc::new(Schema::new(
                    ["at", "len", "cut"]
                        .map(|n| Field::new(n, DataType::UInt64, false))
                        .to_vec(),
                ));
                let columns =
                    [at, len, cut].map(|v| Arc::new(UInt64Array::from(vec![v])) as Arc<dyn Array>);
                Ok(RecordBatch::try_new(schema, columns.to_vec())?)
            })
            .boxed()
        })
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn segments_cover_the_text_in_order_cut_between_records() {
        let text = lines(3 * SEGMENT_BYTES as usize + 12_345);
        for chunk in [4096, 256 << 10, 1 << 20] {
            let batches: Vec<RecordBatch> = decode(in_chunks(&text, chunk), describing())
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
                let (at, len, cut) = (column(batch, 0), column(batch, 1), column(batch, 2));
                assert_eq!(at, expected_at, "chunks of {chunk}: segment {i}");
                let last = i + 1 == batches.len();
                assert_eq!(cut, u64::from(!last), "chunks of {chunk}: segment {i}");
                if !last {
                    assert!(
                        len >= SEGMENT_BYTES,
                        "chunks of {chunk}: segment {i} of {len}"
                    );
                    let end = (at + len) as usize;
                    assert_eq!(&text[end - 2..end + 1], b"}\n{", "chunks of {chunk}");
                }
                expected_at = at + len;
            }
            assert_eq!(expected_at, text.len() as u64, "chunks of {chunk}");
            assert_eq!(batches.len(), 4, "chunks of {chunk}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_cut_where_the_next_line_is_not_a_record_start() {
        // Past the segment size, every line break is followed by a space: no cut at all.
        let mut text = lines(SEGMENT_BYTES as usize - 4096);
        for _ in 0..1000 {
            text.extend(b"{\"a\":1}\n ");
        }
        let batches: Vec<RecordBatch> = decode(in_chunks(&text, 1 << 16), describing())
            .try_collect()
            .await
            .unwrap();
        assert_eq!(batches.len(), 1);
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
        let results: Vec<Result<RecordBatch>> = decode(inflated, describing()).collect().await;
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

    #[test]
    fn a_segment_ends_past_its_size_between_a_close_and_an_open() {
        let held = SEGMENT_BYTES - 10;
        let mut chunk = b"{\"a\":1}\n{\"a\":2}\r\n{\"b\":3".to_vec();
        // The first break is before the size is reached.
        assert_eq!(segment_end(held, &chunk), Some(17));
        assert_eq!(segment_end(0, &chunk), None);
        chunk[16] = b' ';
        assert_eq!(
            segment_end(held, &chunk),
            None,
            "no line break past the size"
        );
        assert_eq!(
            segment_end(SEGMENT_BYTES + 5, b"{\"a\":1}\n"),
            None,
            "nothing after it"
        );
    }
}
