//! JSON sources as exports really are: newline-delimited, Firehose back-to-back objects, or a
//! top-level array; plain, gzip or zstd, sniffed file by file; schema from every record.
//!
//! Registered in place of DataFusion's JSON format (see `sources::factory`). The scan decodes with
//! arrow's JSON decoder in "coerce primitive" mode, so a number read into a text column keeps its
//! exact digits (`-2996180203100007228` stays that string, never a float); flat columns go through
//! `direct`, which gives the same batches in one pass and leaves anything else to arrow's decoder.

pub mod direct;
pub mod framing;
pub mod infer;
mod opener;
pub mod ranges;
pub mod records;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::GetExt;
use datafusion::common::{Result, Statistics};
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::physical_plan::{FileOpener, FileScanConfig, FileSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::DataFusionError;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::physical_plan::ExecutionPlan;
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectMeta, ObjectStore};

use super::bad_records::BadRecordLog;
use super::compression::read_object_blocking;
use super::encoding::TextEncoding;
use super::scan::{ExportSource, RecordFormat, ScanFiles};
use infer::{FileInference, Inferred};

/// Files whose schemas are inferred at the same time.
const INFER_CONCURRENCY: usize = 4;

/// The JSON file format pengine registers for `STORED AS JSON`.
#[derive(Debug, Clone)]
pub struct ExportJsonFormat {
    /// Records to read for inference; `None` (the default) reads them all.
    pub infer_limit: Option<usize>,
    /// Longest record read; a longer one is a bad record.
    pub max_record_bytes: u64,
    pub bad_records: Arc<BadRecordLog>,
    /// Bad records inference found, per file (offset, reason): the scan sets them aside too.
    pub known_bad: KnownBad,
    /// The store the files are on, to name them ([`crate::sources::file_name`]).
    pub store_url: ObjectStoreUrl,
    /// The files' text encoding (`'format.encoding'`).
    pub encoding: TextEncoding,
}

/// Bad records found by schema inference: per file, (offset, reason) in file order.
pub type KnownBad = Arc<Mutex<HashMap<String, Vec<(u64, String)>>>>;

impl Default for ExportJsonFormat {
    fn default() -> Self {
        Self {
            infer_limit: None,
            max_record_bytes: records::DEFAULT_MAX_RECORD_BYTES,
            bad_records: Arc::new(BadRecordLog::default()),
            known_bad: Arc::default(),
            store_url: ObjectStoreUrl::local_filesystem(),
            encoding: TextEncoding::default(),
        }
    }
}

#[async_trait]
impl FileFormat for ExportJsonFormat {
    fn get_ext(&self) -> String {
        "json".into()
    }

    fn get_ext_with_compression(&self, c: &FileCompressionType) -> Result<String> {
        Ok(format!("json{}", c.get_ext()))
    }

    fn compression_type(&self) -> Option<FileCompressionType> {
        // Sniffed per file by the opener.
        None
    }

    async fn infer_schema(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        objects: &[ObjectMeta],
    ) -> Result<SchemaRef> {
        let split = ranges::InferSplit::of(state.config_options());
        let per_file: Vec<FileInference> = futures::stream::iter(objects.iter().cloned())
            .map(|object| {
                let store = Arc::clone(store);
                let format = self.clone();
                async move { infer_file(store, object, format, split).await }
            })
            .buffered(INFER_CONCURRENCY)
            .try_collect()
            .await?;
        let mut merged = Inferred::Null;
        let mut known_bad = self.known_bad.lock().unwrap_or_else(|p| p.into_inner());
        for (object, file) in objects.iter().zip(per_file) {
            merged = merged.merge(file.merged);
            if !file.bad.is_empty() {
                known_bad.insert(object.location.to_string(), file.bad);
            }
        }
        drop(known_bad);
        let schema = infer::to_schema(&merged)
            .map_err(|e| DataFusionError::Plan(format!("cannot infer the JSON schema: {e}")))?;
        Ok(Arc::new(schema))
    }

    async fn infer_stats(
        &self,
        _state: &dyn Session,
        _store: &Arc<dyn ObjectStore>,
        table_schema: SchemaRef,
        object: &ObjectMeta,
    ) -> Result<Statistics> {
        Ok(crate::sources::file_size_statistics(&table_schema, object))
    }

    async fn create_physical_plan(
        &self,
        _state: &dyn Session,
        conf: FileScanConfig,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(DataSourceExec::from_data_source(conf))
    }

    fn file_source(&self, table_schema: TableSchema) -> Arc<dyn FileSource> {
        Arc::new(ExportSource::new(table_schema, Arc::new(self.clone())))
    }
}

/// Infers one file's record type, reading it through in a blocking task (a large
/// newline-delimited file in byte ranges, each in its own).
async fn infer_file(
    store: Arc<dyn ObjectStore>,
    object: ObjectMeta,
    format: ExportJsonFormat,
    split: ranges::InferSplit,
) -> Result<FileInference> {
    if let Some(inferred) = ranges::infer_in_ranges(&store, &object, &format, split).await? {
        return Ok(inferred);
    }
    let file = crate::sources::file_name(format.store_url.as_ref(), &object.location);
    read_object_blocking(store, object, file.clone(), move |reader| {
        let reader = format.encoding.reader(reader);
        let reading = infer::Reading {
            file: &file,
            limit: format.infer_limit,
            max_record_bytes: format.max_record_bytes,
            bad_records: &format.bad_records,
        };
        infer::infer_records(reader, &reading)
    })
    .await
}

impl RecordFormat for ExportJsonFormat {
    fn file_type(&self) -> &'static str {
        "json"
    }

    fn opener(&self, scan: ScanFiles) -> Arc<dyn FileOpener> {
        Arc::new(opener::JsonExportOpener {
            batch_size: scan.batch_size,
            schema: scan.projected_schema,
            store: scan.store,
            local: scan.local,
            bad_records: Arc::clone(&self.bad_records),
            max_record_bytes: self.max_record_bytes,
            known_bad: Arc::clone(&self.known_bad),
            store_url: self.store_url.clone(),
            encoding: self.encoding,
        })
    }

    fn splits_files(&self) -> bool {
        true
    }
}
