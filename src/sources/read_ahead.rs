//! A reader run on a thread of its own, a few blocks ahead of whoever takes its bytes: how a
//! large compressed file is inflated while it is parsed.
//!
//! A gzip or zstd file cannot be cut into byte ranges (neither format says where a reader could
//! start without inflating what comes before), so one partition reads it from its start. Inflated
//! on the thread that also parses it, an export of one large compressed file kept one core busy
//! and left the others idle. Here a blocking task inflates it into blocks that it hands over a
//! small channel, so inflating and parsing one file run on two cores; memory is the few blocks
//! in flight. [`super::compression`] decides which files are worth it.

use std::io::{self, BufRead, Read};

use bytes::{Buf, Bytes};
use datafusion::common::Result;
use datafusion::error::DataFusionError;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use tokio::sync::mpsc;

/// Bytes per block handed over: large enough that a hand-off costs nothing next to parsing it.
const BLOCK_BYTES: usize = 256 << 10;

/// Blocks inflated ahead of the parser at most.
const BLOCKS_AHEAD: usize = 4;

/// What the inflating task sends: a block, the end (an empty block), or the error it stopped at.
type Message = io::Result<Bytes>;

/// The bytes `decode` reads from `raw` (a decompressor over a file's bytes), read by a blocking
/// task ahead of the stream's reader. Needs a tokio runtime.
pub fn stream(
    raw: BoxStream<'static, Result<Bytes>>,
    decode: impl FnOnce(Box<dyn Read + Send>) -> io::Result<Box<dyn Read + Send>> + Send + 'static,
) -> BoxStream<'static, Result<Bytes>> {
    let receiver = spawn(move || {
        let raw = tokio_util::io::StreamReader::new(raw.map_err(io::Error::other));
        decode(Box::new(tokio_util::io::SyncIoBridge::new(raw)))
    });
    futures::stream::unfold(Some(receiver), |receiver| async move {
        let mut receiver = receiver?;
        match received(receiver.recv().await) {
            Ok(Some(block)) => Some((Ok(block), Some(receiver))),
            Ok(None) => None,
            Err(e) => Some((Err(DataFusionError::from(e)), None)),
        }
    })
    .boxed()
}

/// The reader `open` gives, read by a blocking task ahead of the returned reader, which blocks
/// (read it in a blocking task, as the synchronous parsers are). Needs a tokio runtime.
pub fn reader(
    open: impl FnOnce() -> io::Result<Box<dyn Read + Send>> + Send + 'static,
) -> impl BufRead + Send + 'static {
    AheadReader {
        receiver: spawn(open),
        block: Bytes::new(),
        ended: false,
    }
}

/// Starts the task that opens the reader and reads it block by block.
fn spawn(
    open: impl FnOnce() -> io::Result<Box<dyn Read + Send>> + Send + 'static,
) -> mpsc::Receiver<Message> {
    let (sender, receiver) = mpsc::channel::<Message>(BLOCKS_AHEAD);
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        // A bridged stream (another store than this machine's) needs the runtime to poll it.
        let _guard = runtime.enter();
        let mut decoded = match open() {
            Ok(decoded) => decoded,
            Err(e) => {
                let _ = sender.blocking_send(Err(e));
                return;
            }
        };
        loop {
            let block = next_block(&mut decoded);
            let last = !matches!(&block, Ok(b) if !b.is_empty());
            // A failed send: the reader is gone (the scan ended early or was cancelled).
            if sender.blocking_send(block).is_err() || last {
                return;
            }
        }
    });
    receiver
}

/// Up to [`BLOCK_BYTES`] of `decoded`; empty at its end.
fn next_block(decoded: &mut dyn Read) -> io::Result<Bytes> {
    let mut block = Vec::with_capacity(BLOCK_BYTES);
    decoded.take(BLOCK_BYTES as u64).read_to_end(&mut block)?;
    Ok(Bytes::from(block))
}

/// What a message says: a block, the end (`None`), or an error. A channel closed before the
/// end was sent means the task stopped (it panicked): an error, never a short file.
fn received(message: Option<Message>) -> io::Result<Option<Bytes>> {
    match message {
        Some(Ok(block)) if block.is_empty() => Ok(None),
        Some(Ok(block)) => Ok(Some(block)),
        Some(Err(e)) => Err(e),
        None => Err(io::Error::other(
            "the decompressing task stopped before the end of the file",
        )),
    }
}

/// The blocking side of the channel, as a buffered reader.
struct AheadReader {
    receiver: mpsc::Receiver<Message>,
    block: Bytes,
    ended: bool,
}

impl BufRead for AheadReader {
    fn fill_buf(&mut self) -> io::Result<&[u8]> {
        if self.block.is_empty() && !self.ended {
            match received(self.receiver.blocking_recv())? {
                Some(block) => self.block = block,
                None => self.ended = true,
            }
        }
        Ok(&self.block)
    }

    fn consume(&mut self, amount: usize) {
        self.block.advance(amount);
    }
}

impl Read for AheadReader {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let available = self.fill_buf()?;
        let n = available.len().min(buf.len());
        buf[..n].copy_from_slice(&available[..n]);
        self.consume(n);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::compression::Compression;
    use crate::sources::in_chunks;
    use std::io::Write;

    /// Text of `lines` numbered lines, long enough to span many blocks.
    fn text(lines: usize) -> Vec<u8> {
        (0..lines)
            .flat_map(|i| {
                format!("{{\"n\":{i},\"pad\":\"{}\"}}\n", "x".repeat(i % 97)).into_bytes()
            })
            .collect()
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(bytes).unwrap();
        gz.finish().unwrap()
    }

    fn gunzip(raw: Box<dyn Read + Send>) -> io::Result<Box<dyn Read + Send>> {
        Compression::Gzip.reader(raw)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_stream_gives_every_byte_in_order() {
        let plain = text(40_000);
        let zstd = zstd::encode_all(&plain[..], 3).unwrap();
        for (compressed, compression) in
            [(gzip(&plain), Compression::Gzip), (zstd, Compression::Zstd)]
        {
            for chunk in [1 << 10, 300_000] {
                let inflated: Vec<Bytes> = stream(in_chunks(&compressed, chunk), move |r| {
                    compression.reader(r)
                })
                .try_collect()
                .await
                .unwrap();
                assert_eq!(
                    inflated.concat(),
                    plain,
                    "{compression:?}, chunks of {chunk}"
                );
                assert!(inflated.len() > 1, "{compression:?}: one block");
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_reader_gives_every_byte_in_order() {
        let plain = text(40_000);
        let compressed = gzip(&plain);
        let read = tokio::task::spawn_blocking(move || {
            let mut inflated = Vec::new();
            reader(move || Compression::Gzip.reader(std::io::Cursor::new(compressed)))
                .read_to_end(&mut inflated)
                .map(|_| inflated)
        });
        assert_eq!(read.await.unwrap().unwrap(), plain);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_corrupt_file_is_an_error_not_a_short_one() {
        let plain = text(40_000);
        let mut compressed = gzip(&plain);
        let middle = compressed.len() / 2;
        compressed[middle..middle + 64].fill(0xff);
        let inflated: Result<Vec<Bytes>> = stream(in_chunks(&compressed, 4096), gunzip)
            .try_collect()
            .await;
        assert!(inflated.is_err(), "a corrupt stream read to its end");
        // Cut short: the end of the compressed stream is missing.
        let truncated = compressed[..middle].to_vec();
        let read = tokio::task::spawn_blocking(move || {
            let mut inflated = Vec::new();
            reader(move || Compression::Gzip.reader(std::io::Cursor::new(truncated)))
                .read_to_end(&mut inflated)
        });
        assert!(
            read.await.unwrap().is_err(),
            "a truncated file read to its end"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_error_of_the_store_reaches_the_reader() {
        let compressed = gzip(&text(40_000));
        let head = Bytes::copy_from_slice(&compressed[..compressed.len() / 2]);
        let raw = futures::stream::iter(vec![
            Ok(head),
            Err(DataFusionError::Execution("the store went away".into())),
        ])
        .boxed();
        let inflated: Result<Vec<Bytes>> = stream(raw, gunzip).try_collect().await;
        let error = inflated.unwrap_err().to_string();
        assert!(error.contains("the store went away"), "{error}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reader_that_stops_early_stops_the_task() {
        // An endless source: a task that went on reading it would never end, and the runtime
        // waits for its blocking tasks when it shuts down, so this test would hang.
        let endless = |_| Ok(Box::new(std::io::repeat(b'x')) as Box<dyn Read + Send>);
        let raw = futures::stream::iter([Ok(Bytes::from_static(b"x"))]).boxed();
        let mut read = stream(raw, endless);
        assert_eq!(read.next().await.unwrap().unwrap().len(), BLOCK_BYTES);
        drop(read);
        let taken = tokio::task::spawn_blocking(|| {
            let mut reader = reader(|| Ok(Box::new(std::io::repeat(b'y'))));
            let mut first = [0; 10];
            reader.read_exact(&mut first).map(|_| first)
        });
        assert_eq!(taken.await.unwrap().unwrap(), [b'y'; 10]);
    }

    #[test]
    fn a_closed_channel_before_the_end_is_an_error() {
        assert!(received(None).is_err());
        assert!(received(Some(Ok(Bytes::new()))).unwrap().is_none());
    }
}
