//! JSON sources as exports really are: newline-delimited, Firehose back-to-back objects, or a
//! top-level array; plain, gzip or zstd, sniffed file by file; schema from every record.
//!
//! Registered in place of DataFusion's JSON format (see `sources::factory`). The scan decodes with
//! arrow's JSON decoder in "coerce primitive" mode, so a number read into a text column keeps its
//! exact digits (`-2996180203100007228` stays that string, never a float); flat columns go through
//! `direct`, which gives the same batches in one pass and leaves anything else to arrow's decoder.

pub mod cursor;
pub mod direct;
pub mod fit;
pub mod framing;
pub mod infer;
mod opener;
pub mod ranges;
pub mod records;
mod segments;

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
use super::sampled::{
    PROBE_FILES, PROBE_RECORDS, SAMPLE_RECORDS, SampleTaken, SampledInference, in_path_order,
    spread, take_sample,
};
use super::scan::{ExportSource, RecordFormat, ScanFiles};
use super::scan_spec::{FormatSpec, InferredSpec, JsonSpec, encoding_of};
use super::unchecked_cuts::UncheckedCuts;
use fit::Shape;
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
    /// Infer from the first [`SAMPLE_RECORDS`] records only (see [`SampledInference`]).
    pub sampled: Option<Arc<SampledInference>>,
    /// Set by a sampled inference that did not read every record: what the scan checks them
    /// against.
    pub shape: Arc<Mutex<Option<Arc<Shape>>>>,
    /// Large files may be read in byte ranges ([`ranges`]) and large compressed ones in segments
    /// ([`crate::sources::segments`]); off for a run's attempt after a cut fell inside a record.
    pub split_at_cuts: bool,
    /// Where the ranges past a file's start note their cuts, for a failed run to check (a run's
    /// session; not on a cluster's executors).
    pub unchecked_cuts: Option<Arc<UncheckedCuts>>,
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
            sampled: None,
            shape: Arc::default(),
            split_at_cuts: true,
            unchecked_cuts: None,
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
        let objects = &in_path_order(objects);
        if self.sampled.is_some() && self.infer_limit.is_none() {
            return self.infer_from_sample(store, objects, split).await;
        }
        self.infer_every_record(store, objects, split).await
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

impl ExportJsonFormat {
    /// Every record's columns (files in parallel, merged in listing order).
    async fn infer_every_record(
        &self,
        store: &Arc<dyn ObjectStore>,
        objects: &[ObjectMeta],
        split: ranges::InferSplit,
    ) -> Result<SchemaRef> {
        let per_file: Vec<FileInference> = self
            .infer_files(store, objects.to_vec(), None, split)
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
        schema_of(&merged)
    }

    /// The columns of the first [`SAMPLE_RECORDS`] records in the order full inference reads
    /// them (whole files in listing order, the last one up to the budget). When that was not
    /// every record, the sample's type is kept for the scan to check the rest against.
    async fn infer_from_sample(
        &self,
        store: &Arc<dyn ObjectStore>,
        objects: &[ObjectMeta],
        split: ranges::InferSplit,
    ) -> Result<SchemaRef> {
        let files = self.infer_files(store, objects.to_vec(), Some(SAMPLE_RECORDS), split);
        let mut merged = Inferred::Null;
        let SampleTaken {
            records,
            files: read,
            whole,
        } = take_sample(files, objects.len(), |index, file: FileInference| {
            merged = std::mem::replace(&mut merged, Inferred::Null).merge(file.merged);
            if !file.bad.is_empty() {
                self.known_bad
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(objects[index].location.to_string(), file.bad);
            }
            // A file that read as many records as the limit may have more.
            (file.records, file.records >= SAMPLE_RECORDS)
        })
        .await?;
        let schema = schema_of(&merged)?;
        if whole {
            return Ok(schema);
        }
        // The file the sample stopped in has unread records too: its tail is probed with the rest.
        if !self
            .probes_fit(store, &objects[read - 1..], &merged, split)
            .await?
        {
            tracing::debug!(
                "records of later files do not fit the columns of the first {records}: \
                 inferring them from every record"
            );
            return self.infer_every_record(store, objects, split).await;
        }
        tracing::debug!(
            "JSON columns inferred from the first {records} records ({read} of {} files); the \
             scan checks every other record fits them",
            objects.len()
        );
        *self.shape.lock().unwrap_or_else(|p| p.into_inner()) = Some(Shape::new(merged, records));
        if let Some(sampled) = &self.sampled {
            sampled.left_records_unread();
        }
        Ok(schema)
    }

    /// Each of `objects` inferred (up to `limit` records each), a few files at a time, in order.
    fn infer_files<'a>(
        &'a self,
        store: &'a Arc<dyn ObjectStore>,
        objects: Vec<ObjectMeta>,
        limit: Option<usize>,
        split: ranges::InferSplit,
    ) -> impl futures::Stream<Item = Result<FileInference>> + 'a {
        futures::stream::iter(objects)
            .map(move |object| {
                let format = ExportJsonFormat {
                    infer_limit: limit.or(self.infer_limit),
                    ..self.clone()
                };
                infer_file(Arc::clone(store), object, format, split)
            })
            .buffered(INFER_CONCURRENCY)
    }
}

impl ExportJsonFormat {
    /// Whether records of `rest` (from the file the sample stopped in to the last) fit `sample`
    /// (merging their types into it changes nothing): the first records of files spread over the
    /// files after the sample's, and the tails of the first and last file of `rest`. Only a hint:
    /// the scan checks every record anyway.
    async fn probes_fit(
        &self,
        store: &Arc<dyn ObjectStore>,
        rest: &[ObjectMeta],
        sample: &Inferred,
        split: ranges::InferSplit,
    ) -> Result<bool> {
        let fits = |inferred: Inferred| sample.clone().merge(inferred) == *sample;
        let after_sample = rest.get(1..).unwrap_or_default();
        let picked: Vec<ObjectMeta> = spread(after_sample.len(), PROBE_FILES)
            .map(|i| after_sample[i].clone())
            .collect();
        let mut files = self.infer_files(store, picked, Some(PROBE_RECORDS), split);
        while let Some(file) = files.try_next().await? {
            if !fits(file.merged) {
                return Ok(false);
            }
        }
        // The first and the last file of `rest`, once each.
        let ends = rest
            .first()
            .into_iter()
            .chain(rest.get(1..).and_then(<[_]>::last));
        for object in ends {
            match ranges::infer_tail(store, object, self, PROBE_TAIL_BYTES).await {
                Ok(Some(tail)) => {
                    if !fits(tail.merged) {
                        return Ok(false);
                    }
                }
                Ok(None) => {}
                // A bad record there is for the scan to report, in its place.
                Err(e) => tracing::debug!("probing the end of {}: {e}", object.location),
            }
        }
        Ok(true)
    }
}

/// Bytes read from the end of the first and last probed files when they are large: an export
/// that comes as a few large files gains its new fields at their ends.
const PROBE_TAIL_BYTES: u64 = 1024 * 1024;

fn schema_of(merged: &Inferred) -> Result<SchemaRef> {
    let schema = infer::to_schema(merged)
        .map_err(|e| DataFusionError::Plan(format!("cannot infer the JSON schema: {e}")))?;
    Ok(Arc::new(schema))
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

impl ExportJsonFormat {
    /// The reader `spec` describes, recording bad records in `bad_records`.
    pub fn from_spec(spec: JsonSpec, bad_records: Arc<BadRecordLog>) -> crate::error::Result<Self> {
        let JsonSpec {
            max_record_bytes,
            known_bad,
            store_url,
            encoding,
            shape,
            split_at_cuts,
        } = spec;
        Ok(ExportJsonFormat {
            max_record_bytes,
            bad_records,
            known_bad: Arc::new(Mutex::new(known_bad)),
            store_url: ObjectStoreUrl::parse(&store_url)?,
            encoding: encoding_of(encoding.as_deref())?,
            shape: Arc::new(Mutex::new(
                shape.map(|(record, sampled)| Shape::new(record.to_inferred(), sampled)),
            )),
            split_at_cuts,
            ..ExportJsonFormat::default()
        })
    }
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
            shape: self.shape.lock().unwrap_or_else(|p| p.into_inner()).clone(),
            split_at_cuts: self.split_at_cuts,
            unchecked_cuts: self.unchecked_cuts.clone(),
        })
    }

    fn spec(&self) -> FormatSpec {
        let known_bad = self
            .known_bad
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let shape = self
            .shape
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(|shape| Some((InferredSpec::of(shape.record())?, shape.sampled)));
        FormatSpec::Json(JsonSpec {
            max_record_bytes: self.max_record_bytes,
            known_bad,
            store_url: self.store_url.as_str().to_string(),
            encoding: self.encoding.label().map(str::to_string),
            shape,
            split_at_cuts: self.split_at_cuts,
        })
    }

    fn splits_files(&self) -> bool {
        true
    }
}
