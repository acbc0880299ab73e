//! Opens one JSON file and streams it as record batches: sniff compression, unwrap arrays,
//! decode with arrow's streaming JSON decoder. Memory is one chunk plus one batch.

use std::sync::Arc;

use bytes::{Buf, Bytes};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::json::ReaderBuilder;
use datafusion::arrow::json::reader::Decoder;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::Result;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileOpenFuture, FileOpener};
use datafusion::error::DataFusionError;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::ObjectStore;

use super::framing::Framing;
use crate::sources::compression::{Compression, SNIFF_LEN};

pub struct JsonExportOpener {
    pub batch_size: usize,
    pub schema: SchemaRef,
    pub store: Arc<dyn ObjectStore>,
}

impl FileOpener for JsonExportOpener {
    fn open(&self, file: PartitionedFile) -> Result<FileOpenFuture> {
        let store = Arc::clone(&self.store);
        let schema = Arc::clone(&self.schema);
        let batch_size = self.batch_size;
        Ok(Box::pin(async move {
            let location = file.object_meta.location.clone();
            let mut input = crate::sources::object_read::byte_stream(&store, &location).await?;
            // Read enough of the start to sniff the compression.
            let mut head = Vec::new();
            while head.len() < SNIFF_LEN {
                match input.next().await {
                    Some(chunk) => {
                        let chunk: Bytes = chunk?;
                        head.extend_from_slice(&chunk)
                    }
                    None => break,
                }
            }
            let compression = Compression::sniff(&head, location.as_ref());
            let raw = futures::stream::once(async move { Ok(Bytes::from(head)) })
                .chain(input)
                .boxed();
            let bytes = compression.file_compression_type().convert_stream(raw)?;
            let decoder = ReaderBuilder::new(schema)
                .with_batch_size(batch_size)
                .with_coerce_primitive(true)
                .build_decoder()?;
            let state = DecodeState {
                input: bytes,
                decoder,
                framing: Framing::default(),
                pending: Bytes::new(),
                eof: false,
                location: location.to_string(),
            };
            Ok(futures::stream::try_unfold(state, |mut state| async move {
                let batch = state.next_batch().await?;
                Ok(batch.map(|b| (b, state)))
            })
            .boxed())
        }))
    }
}

struct DecodeState {
    input: BoxStream<'static, Result<Bytes>>,
    decoder: Decoder,
    framing: Framing,
    pending: Bytes,
    eof: bool,
    location: String,
}

impl DecodeState {
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            if self.pending.is_empty() && !self.eof {
                match self.input.next().await {
                    Some(chunk) => {
                        let chunk = chunk.map_err(|e| self.context(e))?;
                        self.pending = match self.framing.process(&chunk) {
                            Some(rewritten) => Bytes::from(rewritten),
                            None => chunk,
                        };
                    }
                    None => self.eof = true,
                }
            }
            if self.pending.is_empty() && self.eof {
                return self.decoder.flush().map_err(|e| self.context(e.into()));
            }
            let consumed = self
                .decoder
                .decode(&self.pending)
                .map_err(|e| self.context(e.into()))?;
            self.pending.advance(consumed);
            if !self.pending.is_empty() {
                // The decoder holds a full batch.
                if let Some(batch) = self.decoder.flush().map_err(|e| self.context(e.into()))? {
                    return Ok(Some(batch));
                }
            }
        }
    }

    fn context(&self, e: DataFusionError) -> DataFusionError {
        DataFusionError::Execution(format!(
            "reading JSON {}: {}",
            self.location,
            e.strip_backtrace()
        ))
    }
}
