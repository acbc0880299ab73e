//! Detects a file's compression from its first bytes (and its name as a fallback).
//!
//! Firehose and hand-made exports mix compressed and plain files in one folder, often without a
//! telling extension, so each file is sniffed on its own instead of trusting a table option.

use std::io::Read;

use bytes::Bytes;
use datafusion::common::Result;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use futures::stream::BoxStream;

use super::{gzip, read_ahead};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    None,
    Gzip,
    Zstd,
}

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];

/// A compressed file at least this large is inflated on a thread of its own, ahead of its parser
/// ([`read_ahead`]); smaller ones (an hourly export's) in place, where many of them already keep
/// every core busy and a hand-off per file would cost more than it wins.
const AHEAD_MIN_BYTES: u64 = 4 << 20;

/// Whether a file of `size` bytes is large enough to spread over cores when it is read whole: its
/// inflating ([`Compression::reads_ahead`]), its parsing in segments ([`super::segments`]).
pub fn is_large(size: u64) -> bool {
    size >= AHEAD_MIN_BYTES
}

/// Bytes needed at the start of a file to sniff it.
pub const SNIFF_LEN: usize = 4;

impl Compression {
    /// Decides from the file's first bytes, falling back to its extension when it is too short.
    pub fn sniff(head: &[u8], name: &str) -> Compression {
        if head.starts_with(GZIP_MAGIC) {
            Compression::Gzip
        } else if head.starts_with(ZSTD_MAGIC) {
            Compression::Zstd
        } else if head.len() < SNIFF_LEN && name.ends_with(".gz") {
            Compression::Gzip
        } else if head.len() < SNIFF_LEN && name.ends_with(".zst") {
            Compression::Zstd
        } else {
            Compression::None
        }
    }

    /// The streaming decompressor DataFusion provides for this compression.
    pub fn file_compression_type(self) -> FileCompressionType {
        match self {
            Compression::None => FileCompressionType::UNCOMPRESSED,
            Compression::Gzip => FileCompressionType::GZIP,
            Compression::Zstd => FileCompressionType::ZSTD,
        }
    }

    /// Whether a file of `size` bytes is inflated by a task of its own ([`read_ahead`]).
    pub fn reads_ahead(self, size: u64) -> bool {
        self != Compression::None && is_large(size)
    }

    /// `raw`, the bytes of a file of `size` bytes, decompressed as a stream: a large compressed
    /// file by a task of its own ahead of the stream's reader ([`read_ahead`]).
    pub fn decoded_stream(
        self,
        raw: BoxStream<'static, Result<Bytes>>,
        size: u64,
    ) -> Result<BoxStream<'static, Result<Bytes>>> {
        match self {
            Compression::None => Ok(raw),
            _ if self.reads_ahead(size) => Ok(read_ahead::stream(raw, move |r| self.reader(r))),
            Compression::Gzip => Ok(gzip::inflated_stream(raw)),
            Compression::Zstd => self.file_compression_type().convert_stream(raw),
        }
    }

    /// Wraps a blocking reader of a file of `size` bytes with the matching decompressor: a large
    /// compressed file's inflated by a task of its own ahead of the returned reader.
    pub fn reader_ahead(
        self,
        inner: impl Read + Send + 'static,
        size: u64,
    ) -> std::io::Result<Box<dyn Read + Send>> {
        match self {
            Compression::None => Ok(Box::new(inner)),
            _ if self.reads_ahead(size) => {
                Ok(Box::new(read_ahead::reader(move || self.reader(inner))))
            }
            _ => self.reader(inner),
        }
    }

    /// Wraps a blocking reader with the matching decompressor.
    pub fn reader<'a>(
        self,
        inner: impl Read + Send + 'a,
    ) -> std::io::Result<Box<dyn Read + Send + 'a>> {
        Ok(match self {
            Compression::None => Box::new(inner),
            Compression::Gzip => Box::new(gzip::GzipReader::new(inner)),
            Compression::Zstd => Box::new(zstd::stream::read::Decoder::new(inner)?),
        })
    }
}

/// The compression the first bytes of `raw` (a file's bytes from its start) say, and `raw`
/// whole again; `name` is the fallback for a file too short to tell.
pub async fn sniffed(
    raw: BoxStream<'static, Result<Bytes>>,
    name: &str,
) -> (Compression, BoxStream<'static, Result<Bytes>>) {
    use futures::StreamExt;
    let (head, rest) = super::object_read::head_of(raw, SNIFF_LEN).await;
    let compression = Compression::sniff(&head, name);
    let raw = futures::stream::once(async move { Ok(head) })
        .chain(rest)
        .boxed();
    (compression, raw)
}

/// Runs `read` on one object as a blocking, decompressed reader (compression sniffed), in a
/// blocking task: schema inference reads files through synchronous parsers. An error names the
/// object by `location`, its name for a person ([`super::file_name`]).
pub async fn read_object_blocking<T: Send + 'static>(
    store: std::sync::Arc<dyn object_store::ObjectStore>,
    object: object_store::ObjectMeta,
    location: String,
    read: impl FnOnce(Box<dyn Read + Send + '_>) -> Result<T, String> + Send + 'static,
) -> datafusion::common::Result<T> {
    let name = location.clone();
    let size = object.size;
    read_bytes_blocking(store, &object.location, 0, location, move |mut reader| {
        let head = reader
            .fill_buf()
            .map_err(|e| e.to_string())?
            .get(..SNIFF_LEN)
            .map(<[u8]>::to_vec)
            .unwrap_or_default();
        let decoded = Compression::sniff(&head, &name)
            .reader_ahead(reader, size)
            .map_err(|e| e.to_string())?;
        read(decoded)
    })
    .await
}

/// Runs `read` on the object's bytes from `offset` on, as they are (a byte range of a split file
/// is never compressed), in a blocking task; errors as [`read_object_blocking`]'s.
pub async fn read_bytes_blocking<T: Send + 'static>(
    store: std::sync::Arc<dyn object_store::ObjectStore>,
    object: &object_store::path::Path,
    offset: u64,
    location: String,
    read: impl FnOnce(Box<dyn std::io::BufRead + Send>) -> Result<T, String> + Send + 'static,
) -> datafusion::common::Result<T> {
    use datafusion::error::DataFusionError;
    // Inference is given the store alone (no URL to tell a local one by): through the store.
    let reader = super::object_read::blocking_reader_from(&store, None, object, offset).await?;
    let handle = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        // A bridged stream needs the runtime to poll it.
        let _guard = handle.enter();
        read(reader)
    })
    .await
    .map_err(|e| DataFusionError::Internal(format!("reading {location} failed: {e}")))?
    // Unreadable content is a data error (exit code 4), not a mapping-file mistake.
    .map_err(|e| {
        DataFusionError::External(Box::new(crate::error::Error::Data(format!(
            "{location}: {e}"
        ))))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_magic_bytes_before_names() {
        assert_eq!(
            Compression::sniff(&[0x1f, 0x8b, 8, 0], "x.json"),
            Compression::Gzip
        );
        assert_eq!(Compression::sniff(ZSTD_MAGIC, "part"), Compression::Zstd);
        assert_eq!(Compression::sniff(b"{\"a\"", "x.gz"), Compression::None);
        assert_eq!(Compression::sniff(b"", "x.gz"), Compression::Gzip);
    }
}
