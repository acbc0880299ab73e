//! Reads a source object as bytes, in large blocks.
//!
//! object_store streams a local file in 8 KiB pieces, each read in its own blocking task: for an
//! export of thousands of files that is hundreds of thousands of thread hand-offs, and it showed
//! as the top of the profile (scheduler and futex time). pengine reads local files itself, in
//! 1 MiB blocks, and other stores (S3, GCS, ...) as the store streams them.
//!
//! When the scan knows the store is this machine's file system, a local file is opened (and, for
//! JSON, read) on the thread that decodes it, as DataFusion's own readers read local files: a blocking task per open and per block still cost two thread hand-offs per
//! file (an hourly export has thousands of ~100 KiB files), each a futex wake-up and a contended
//! lock in tokio's blocking pool, for reads that the page cache serves in microseconds.

use std::io::{Read, Seek, SeekFrom};
use std::sync::Arc;

use bytes::Bytes;
use datafusion::common::Result;
use datafusion::error::DataFusionError;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::local::LocalFileSystem;
use object_store::{
    GetOptions, GetRange, GetResultPayload, ObjectStore, ObjectStoreExt, path::Path,
};

/// Bytes per block read from a local file.
const LOCAL_BLOCK: usize = 1 << 20;

/// The object's bytes as a stream of blocks. `local`: the store's file system when it is this
/// machine's ([`crate::store::local_file_system`]).
pub async fn byte_stream(
    store: &Arc<dyn ObjectStore>,
    local: Option<&LocalFileSystem>,
    location: &Path,
) -> Result<BoxStream<'static, Result<Bytes>>> {
    if let Some(local) = local {
        return Ok(local_blocks(open_local(local, location)?).boxed());
    }
    let result = store.get(location).await?;
    match result.payload {
        GetResultPayload::File(file, _) => Ok(local_blocks(file).boxed()),
        GetResultPayload::Stream(_) => {
            Ok(result.into_stream().map_err(DataFusionError::from).boxed())
        }
    }
}

/// `stream`'s first `n` bytes or more (all there are when fewer) in one chunk, and the rest; an
/// error met on the way is the rest's first item.
pub async fn head_of(
    mut stream: BoxStream<'static, Result<Bytes>>,
    n: usize,
) -> (Bytes, BoxStream<'static, Result<Bytes>>) {
    let mut first = Vec::new();
    let mut failed = None;
    while first.len() < n && failed.is_none() {
        match stream.next().await {
            Some(Ok(chunk)) => first.extend_from_slice(&chunk),
            Some(Err(e)) => failed = Some(Err(e)),
            None => break,
        }
    }
    let rest = futures::stream::iter(failed).chain(stream).boxed();
    (Bytes::from(first), rest)
}

/// The object's bytes from `offset` on, as [`byte_stream`] gives them from 0: a byte range of a
/// split file ([`super::split`]). Read lazily: a range stops pulling once its records are read.
pub async fn byte_stream_from(
    store: &Arc<dyn ObjectStore>,
    local: Option<&LocalFileSystem>,
    location: &Path,
    offset: u64,
) -> Result<BoxStream<'static, Result<Bytes>>> {
    if offset == 0 {
        return byte_stream(store, local, location).await;
    }
    if let Some(local) = local {
        let mut file = open_local(local, location)?;
        file.seek(SeekFrom::Start(offset))?;
        return Ok(local_blocks(file).boxed());
    }
    let options = GetOptions {
        range: Some(GetRange::Offset(offset)),
        ..GetOptions::default()
    };
    let result = store.get_opts(location, options).await?;
    match result.payload {
        GetResultPayload::File(mut file, _) => {
            file.seek(SeekFrom::Start(result.range.start))?;
            Ok(local_blocks(file).boxed())
        }
        GetResultPayload::Stream(_) => {
            Ok(result.into_stream().map_err(DataFusionError::from).boxed())
        }
    }
}

/// The object's first `len` bytes (fewer when it is shorter): what decides whether a file can be
/// split ([`super::split::HEAD_LEN`]).
pub async fn read_head(
    store: &Arc<dyn ObjectStore>,
    local: Option<&LocalFileSystem>,
    location: &Path,
    len: u64,
) -> Result<Bytes> {
    if len == 0 {
        return Ok(Bytes::new());
    }
    if let Some(local) = local {
        let mut head = Vec::new();
        open_local(local, location)?
            .take(len)
            .read_to_end(&mut head)?;
        return Ok(Bytes::from(head));
    }
    Ok(store.get_range(location, 0..len).await?)
}

/// Opens `location` as the local store would, with the store's errors.
fn open_local(local: &LocalFileSystem, location: &Path) -> Result<std::fs::File> {
    let path = local.path_to_filesystem(location)?;
    std::fs::File::open(&path).map_err(|source| {
        let error = match source.kind() {
            std::io::ErrorKind::NotFound => object_store::Error::NotFound {
                path: path.display().to_string(),
                source: Box::new(source),
            },
            _ => object_store::Error::Generic {
                store: "LocalFileSystem",
                source: format!("opening {}: {source}", path.display()).into(),
            },
        };
        DataFusionError::from(error)
    })
}

/// A local file in [`LOCAL_BLOCK`] blocks, read when the stream is polled.
fn local_blocks(file: std::fs::File) -> impl futures::Stream<Item = Result<Bytes>> {
    futures::stream::try_unfold(Some(file), |file| async move {
        let Some(mut file) = file else {
            return Ok(None);
        };
        let mut block = Vec::with_capacity(LOCAL_BLOCK);
        (&mut file)
            .take(LOCAL_BLOCK as u64)
            .read_to_end(&mut block)?;
        if block.is_empty() {
            return Ok(None);
        }
        let next = (block.len() == LOCAL_BLOCK).then_some(file);
        Ok(Some((Bytes::from(block), next)))
    })
}

/// The object as a buffered blocking reader, for synchronous parsers (run it in a blocking
/// task): a local file directly (opened here when `local` is the store's file system, as in
/// [`byte_stream`]), another store's stream through a bridge to the runtime.
pub async fn blocking_reader(
    store: &Arc<dyn ObjectStore>,
    local: Option<&LocalFileSystem>,
    location: &Path,
) -> Result<Box<dyn std::io::BufRead + Send>> {
    blocking_reader_from(store, local, location, 0).await
}

/// [`blocking_reader`] of the object's bytes from `offset` on (a byte range of a split file).
pub async fn blocking_reader_from(
    store: &Arc<dyn ObjectStore>,
    local: Option<&LocalFileSystem>,
    location: &Path,
    offset: u64,
) -> Result<Box<dyn std::io::BufRead + Send>> {
    let local_file =
        |mut file: std::fs::File, at: u64| -> Result<Box<dyn std::io::BufRead + Send>> {
            if at > 0 {
                file.seek(SeekFrom::Start(at))?;
            }
            Ok(Box::new(std::io::BufReader::with_capacity(
                LOCAL_BLOCK,
                file,
            )))
        };
    if let Some(local) = local {
        return local_file(open_local(local, location)?, offset);
    }
    let options = GetOptions {
        range: (offset > 0).then_some(GetRange::Offset(offset)),
        ..GetOptions::default()
    };
    let result = store.get_opts(location, options).await?;
    match result.payload {
        GetResultPayload::File(file, _) => local_file(file, result.range.start),
        GetResultPayload::Stream(_) => {
            let stream = result.into_stream().map_err(std::io::Error::other);
            let reader = tokio_util::io::StreamReader::new(stream);
            Ok(Box::new(std::io::BufReader::with_capacity(
                LOCAL_BLOCK,
                tokio_util::io::SyncIoBridge::new(reader),
            )))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn read_all(local: Option<&LocalFileSystem>, location: &Path) -> Result<Vec<u8>> {
        let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new());
        let blocks: Vec<Bytes> = byte_stream(&store, local, location)
            .await?
            .try_collect()
            .await?;
        Ok(blocks.concat())
    }

    async fn read_all_blocking(local: Option<&LocalFileSystem>, location: &Path) -> Vec<u8> {
        let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new());
        let mut reader = blocking_reader(&store, local, location).await.unwrap();
        let mut bytes = Vec::new();
        reader.read_to_end(&mut bytes).unwrap();
        bytes
    }

    /// Read directly or through the store, as blocks or by a blocking reader, a file comes back
    /// whole, across block boundaries.
    #[tokio::test]
    async fn local_files_read_whole_either_way() {
        let dir = tempfile::tempdir().unwrap();
        for size in [0, 10, LOCAL_BLOCK, 2 * LOCAL_BLOCK + 17] {
            let path = dir.path().join(format!("f{size}"));
            let bytes: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            std::fs::write(&path, &bytes).unwrap();
            let location = Path::from_filesystem_path(&path).unwrap();
            let local = LocalFileSystem::new();
            assert_eq!(read_all(Some(&local), &location).await.unwrap(), bytes);
            assert_eq!(read_all(None, &location).await.unwrap(), bytes);
            assert_eq!(read_all_blocking(Some(&local), &location).await, bytes);
            assert_eq!(read_all_blocking(None, &location).await, bytes);
        }
    }

    /// A file gone since it was listed is the store's "not found", naming the file.
    #[tokio::test]
    async fn a_missing_local_file_is_not_found_with_its_path() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("gone.json");
        let location = Path::from_filesystem_path(dir.path())
            .unwrap()
            .join("gone.json");
        let error = read_all(Some(&LocalFileSystem::new()), &location)
            .await
            .unwrap_err();
        let not_found = match &error {
            DataFusionError::ObjectStore(e) => matches!(**e, object_store::Error::NotFound { .. }),
            _ => false,
        };
        assert!(not_found, "{error:?}");
        assert!(
            error.to_string().contains(&path.display().to_string()),
            "{error}"
        );
    }
}
