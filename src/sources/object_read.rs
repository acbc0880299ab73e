//! Reads a source object as bytes, in large blocks.
//!
//! object_store streams a local file in 8 KiB pieces, each read in its own blocking task: for an
//! export of thousands of files that is hundreds of thousands of thread hand-offs, and it showed
//! as the top of the profile (scheduler and futex time). pengine reads local files itself, in
//! 1 MiB blocks, and other stores (S3, GCS, ...) as the store streams them.

use std::io::Read;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::common::Result;
use datafusion::error::DataFusionError;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::{GetResultPayload, ObjectStore, ObjectStoreExt, path::Path};

/// Bytes per block read from a local file.
const LOCAL_BLOCK: usize = 1 << 20;

/// The object's bytes as a stream of blocks.
pub async fn byte_stream(
    store: &Arc<dyn ObjectStore>,
    location: &Path,
) -> Result<BoxStream<'static, Result<Bytes>>> {
    let result = store.get(location).await?;
    match result.payload {
        GetResultPayload::File(file, _) => Ok(local_blocks(file).boxed()),
        GetResultPayload::Stream(_) => {
            Ok(result.into_stream().map_err(DataFusionError::from).boxed())
        }
    }
}

/// A local file in [`LOCAL_BLOCK`] blocks, each read in a blocking task.
fn local_blocks(file: std::fs::File) -> impl futures::Stream<Item = Result<Bytes>> {
    futures::stream::try_unfold(Some(file), |file| async move {
        let Some(mut file) = file else {
            return Ok(None);
        };
        let (block, file) = tokio::task::spawn_blocking(move || {
            let mut block = Vec::with_capacity(LOCAL_BLOCK);
            (&mut file)
                .take(LOCAL_BLOCK as u64)
                .read_to_end(&mut block)
                .map(|_| (block, file))
        })
        .await
        .map_err(|e| DataFusionError::Internal(format!("reading a local file: {e}")))??;
        if block.is_empty() {
            return Ok(None);
        }
        let next = (block.len() == LOCAL_BLOCK).then_some(file);
        Ok(Some((Bytes::from(block), next)))
    })
}

/// The object as a buffered blocking reader, for synchronous parsers (run it in a blocking
/// task): a local file directly, another store's stream through a bridge to the runtime.
pub async fn blocking_reader(
    store: &Arc<dyn ObjectStore>,
    location: &Path,
) -> Result<Box<dyn std::io::BufRead + Send>> {
    let result = store.get(location).await?;
    match result.payload {
        GetResultPayload::File(file, _) => Ok(Box::new(std::io::BufReader::with_capacity(
            LOCAL_BLOCK,
            file,
        ))),
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
