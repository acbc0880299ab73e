//! Gzip sources inflated by zlib-rs.
//!
//! flate2 picks its inflater when it is built, and the system's C zlib wins as soon as any crate
//! asks for it: the MySQL driver does. zlib-rs, already built for Parquet, inflates nearly twice
//! as fast (benches/README.md, "Gzip inflated by zlib-rs"), and a large gzip file is inflated by
//! one thread that its parsers wait on. So pengine inflates its sources' gzip with zlib-rs
//! itself: as a blocking reader ([`GzipReader`]) and as a stream of chunks ([`inflated_stream`]).
//!
//! A file may hold several gzip members one after another (`cat a.gz b.gz`); each is inflated in
//! turn, as `gzip -d` does. Input that ends inside a member is an error, never a short file.

use std::io::{self, BufRead, Read};

use bytes::{Buf, Bytes, BytesMut};
use datafusion::common::Result;
use datafusion::error::DataFusionError;
use futures::StreamExt;
use futures::stream::BoxStream;
use zlib_rs::{Inflate, InflateFlush, Status};

/// zlib's window bits for a gzip header and trailer around a deflate stream of a 32 KiB window.
const GZIP_WINDOW_BITS: u8 = 16 + 15;

/// Compressed bytes read at a time by [`GzipReader`].
const READ_BUFFER_BYTES: usize = 64 << 10;

/// Inflated bytes per chunk of [`inflated_stream`].
const CHUNK_BYTES: usize = 64 << 10;

/// The members of one gzip file, inflated in turn.
struct Members {
    /// The member being inflated; None before the first and between two.
    current: Option<Inflate>,
}

impl Members {
    fn new() -> Self {
        Self { current: None }
    }

    /// Inflates what it can of `input` into `out`: the bytes of `input` consumed and of `out`
    /// written. `ended`: no input follows `input`. Both 0 with `input` empty: more input is
    /// needed, or, when `ended`, the file ended after a whole member (or held none).
    fn inflate(&mut self, input: &[u8], ended: bool, out: &mut [u8]) -> io::Result<(usize, usize)> {
        if input.is_empty() && (self.current.is_none() || !ended) {
            return Ok((0, 0));
        }
        let member = self
            .current
            .get_or_insert_with(|| Inflate::new(true, GZIP_WINDOW_BITS));
        let (read_before, written_before) = (member.total_in(), member.total_out());
        let status = member
            .decompress(input, out, InflateFlush::NoFlush)
            .map_err(|e| {
                let detail = member.error_message().unwrap_or(e.as_str());
                io::Error::new(
                    io::ErrorKind::InvalidData,
                    format!("not valid gzip data ({detail})"),
                )
            })?;
        let consumed = (member.total_in() - read_before) as usize;
        let written = (member.total_out() - written_before) as usize;
        if status == Status::StreamEnd {
            self.current = None;
        } else if consumed == 0 && written == 0 && !out.is_empty() {
            // Nothing moves although there is room: the input ended inside the member.
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the gzip data ends inside a compressed stream (is the file truncated?)",
            ));
        }
        Ok((consumed, written))
    }
}

/// A blocking reader of the inflated bytes of `R`'s gzip data.
pub struct GzipReader<R> {
    compressed: io::BufReader<R>,
    members: Members,
}

impl<R: Read> GzipReader<R> {
    pub fn new(compressed: R) -> Self {
        Self {
            compressed: io::BufReader::with_capacity(READ_BUFFER_BYTES, compressed),
            members: Members::new(),
        }
    }
}

impl<R: Read> Read for GzipReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        loop {
            let input = self.compressed.fill_buf()?;
            let ended = input.is_empty();
            let (consumed, written) = self.members.inflate(input, ended, out)?;
            self.compressed.consume(consumed);
            if written > 0 || ended {
                return Ok(written);
            }
        }
    }
}

/// The inflated bytes of the gzip data `compressed`, in chunks of at most [`CHUNK_BYTES`],
/// inflated on the task that polls the stream (for files small enough that a thread of their own
/// would cost more than it wins; see [`super::compression`]).
pub fn inflated_stream(
    compressed: BoxStream<'static, Result<Bytes>>,
) -> BoxStream<'static, Result<Bytes>> {
    struct State {
        compressed: BoxStream<'static, Result<Bytes>>,
        pending: Bytes,
        ended: bool,
        members: Members,
    }
    let state = State {
        compressed,
        pending: Bytes::new(),
        ended: false,
        members: Members::new(),
    };
    futures::stream::try_unfold(state, |mut state| async move {
        // Filled before it is handed on, however small the compressed chunks come.
        let mut out = BytesMut::zeroed(CHUNK_BYTES);
        let mut filled = 0;
        while filled < out.len() {
            if state.pending.is_empty() && !state.ended {
                match state.compressed.next().await {
                    Some(chunk) => state.pending = chunk?,
                    None => state.ended = true,
                }
                continue;
            }
            let (consumed, written) = state
                .members
                .inflate(&state.pending, state.ended, &mut out[filled..])
                .map_err(|e| DataFusionError::External(Box::new(e)))?;
            state.pending.advance(consumed);
            filled += written;
            if state.ended && state.pending.is_empty() && written == 0 {
                break;
            }
        }
        if filled == 0 {
            return Ok(None);
        }
        out.truncate(filled);
        Ok(Some((out.freeze(), state)))
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use futures::TryStreamExt;

    use super::*;

    fn gzip(text: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(text).unwrap();
        encoder.finish().unwrap()
    }

    /// Lines of varied text, long enough to fill several chunks.
    fn text(lines: usize) -> Vec<u8> {
        (0..lines)
            .flat_map(|i| {
                format!("{{\"u\":{i},\"s\":\"line {}\"}}\n", i * 7919 % 1000).into_bytes()
            })
            .collect()
    }

    fn read_all(compressed: &[u8]) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        GzipReader::new(compressed).read_to_end(&mut out)?;
        Ok(out)
    }

    async fn stream_all(compressed: &[u8], piece: usize) -> Result<Vec<u8>> {
        let chunks: Vec<Result<Bytes>> = compressed
            .chunks(piece)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        let chunks = inflated_stream(futures::stream::iter(chunks).boxed())
            .try_collect::<Vec<_>>()
            .await?;
        assert!(
            chunks
                .iter()
                .all(|c| !c.is_empty() && c.len() <= CHUNK_BYTES)
        );
        Ok(chunks.concat())
    }

    #[tokio::test]
    async fn members_are_inflated_in_turn_by_reader_and_stream() {
        let (first, second) = (text(100_000), text(3));
        let mut both = gzip(&first);
        both.extend(gzip(&second));
        let whole = [first, second].concat();
        assert_eq!(read_all(&both).unwrap(), whole);
        for piece in [1, 7, 4096, both.len()] {
            assert_eq!(stream_all(&both, piece).await.unwrap(), whole, "{piece}");
        }
        assert_eq!(read_all(&gzip(b"")).unwrap(), b"");
        assert_eq!(read_all(b"").unwrap(), b"");
        assert_eq!(stream_all(b"", 1).await.unwrap(), b"");
    }

    #[tokio::test]
    async fn truncated_or_corrupt_data_is_an_error() {
        let whole = gzip(&text(50_000));
        for cut in [whole.len() - 4, whole.len() / 2, 5] {
            let error = read_all(&whole[..cut]).unwrap_err();
            assert_eq!(error.kind(), io::ErrorKind::UnexpectedEof, "{cut}: {error}");
            let error = stream_all(&whole[..cut], 999).await.unwrap_err();
            assert!(error.to_string().contains("truncated"), "{cut}: {error}");
        }
        let mut corrupt = whole.clone();
        let middle = corrupt.len() / 2;
        corrupt[middle..middle + 512].fill(0xa5);
        let error = read_all(&corrupt).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::InvalidData, "{error}");
        let error = stream_all(&corrupt, 4096).await.unwrap_err();
        assert!(error.to_string().contains("not valid gzip data"), "{error}");
        // Bytes after a whole member that do not start another one.
        let mut trailing = whole;
        trailing.extend(b"not gzip");
        assert_eq!(
            read_all(&trailing).unwrap_err().kind(),
            io::ErrorKind::InvalidData
        );
    }
}
