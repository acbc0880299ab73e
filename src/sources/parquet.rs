//! Parquet sources: DataFusion's Parquet format, with unreadable files handled as bad records.
//!
//! A Parquet file whose footer cannot be read (truncated, not Parquet at all, corrupt metadata)
//! is met while the schema is inferred or its statistics are gathered, both before any row is
//! read. Under `--on-bad-records fail` that stops the run naming the file; under `skip` the file
//! is left out of the scan and recorded once as a bad record (position: the file, since its rows
//! cannot be counted). A file whose footer reads but whose pages are corrupt still stops the run.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::{Result, Statistics};
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfig, FileSource};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::physical_plan::ExecutionPlan;
use object_store::{ObjectMeta, ObjectStore};

use super::bad_records::{BadRecord, BadRecordLog};

#[derive(Debug)]
pub struct ExportParquetFormat {
    inner: Arc<dyn FileFormat>,
    bad_records: Arc<BadRecordLog>,
    /// Files found unreadable: why, and whether the bad record was written yet.
    unreadable: Mutex<BTreeMap<String, (String, bool)>>,
    /// The store the files are on, to name them ([`super::file_name`]).
    pub store_url: ObjectStoreUrl,
}

impl ExportParquetFormat {
    pub fn new(inner: Arc<dyn FileFormat>, bad_records: Arc<BadRecordLog>) -> Self {
        Self {
            inner,
            bad_records,
            unreadable: Mutex::default(),
            store_url: ObjectStoreUrl::local_filesystem(),
        }
    }

    /// Takes the unreadable files out of a scan, recording each as a bad record (once).
    fn leave_out_unreadable(&self, conf: &mut FileScanConfig) -> Result<()> {
        let mut unreadable = self.unreadable.lock().unwrap_or_else(|p| p.into_inner());
        if !unreadable.is_empty() {
            let mut groups = Vec::with_capacity(conf.file_groups.len());
            for group in std::mem::take(&mut conf.file_groups) {
                let mut kept = Vec::new();
                for file in group.into_inner() {
                    let name =
                        super::file_name(self.store_url.as_ref(), &file.object_meta.location);
                    match unreadable.get_mut(&name) {
                        None => kept.push(file),
                        Some((reason, recorded)) => {
                            if !std::mem::replace(recorded, true) {
                                let bad = BadRecord {
                                    file: name,
                                    byte_offset: None,
                                    line: None,
                                    row_group: None,
                                    reason: reason.clone(),
                                    excerpt: String::new(),
                                };
                                self.bad_records.record(bad)?;
                            }
                        }
                    }
                }
                if !kept.is_empty() {
                    groups.push(FileGroup::new(kept));
                }
            }
            conf.file_groups = groups;
        }
        Ok(())
    }

    /// A file could not be read: the error under `fail`; remembered under `skip`.
    fn unreadable(&self, object: &ObjectMeta, e: datafusion::error::DataFusionError) -> Result<()> {
        let bad = BadRecord {
            file: super::file_name(self.store_url.as_ref(), &object.location),
            byte_offset: None,
            line: None,
            row_group: None,
            reason: format!("not a readable Parquet file: {}", e.strip_backtrace()),
            excerpt: String::new(),
        };
        if let Err(message) = self.bad_records.seen_while_inferring(&bad) {
            return Err(datafusion::error::DataFusionError::External(Box::new(
                crate::error::Error::Data(format!("{}: {message}", bad.file)),
            )));
        }
        let mut unreadable = self.unreadable.lock().unwrap_or_else(|p| p.into_inner());
        unreadable.entry(bad.file).or_insert((bad.reason, false));
        Ok(())
    }
}

#[async_trait]
impl FileFormat for ExportParquetFormat {
    fn get_ext(&self) -> String {
        self.inner.get_ext()
    }

    fn get_ext_with_compression(&self, c: &FileCompressionType) -> Result<String> {
        self.inner.get_ext_with_compression(c)
    }

    fn compression_type(&self) -> Option<FileCompressionType> {
        self.inner.compression_type()
    }

    async fn infer_schema(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        objects: &[ObjectMeta],
    ) -> Result<SchemaRef> {
        if let Ok(schema) = self.inner.infer_schema(state, store, objects).await {
            return Ok(schema);
        }
        // Find the unreadable files; the schema is the others'.
        let mut readable = Vec::new();
        for object in objects {
            match self
                .inner
                .infer_schema(state, store, std::slice::from_ref(object))
                .await
            {
                Ok(_) => readable.push(object.clone()),
                Err(e) => self.unreadable(object, e)?,
            }
        }
        self.inner.infer_schema(state, store, &readable).await
    }

    async fn infer_stats(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        table_schema: SchemaRef,
        object: &ObjectMeta,
    ) -> Result<Statistics> {
        match self
            .inner
            .infer_stats(state, store, Arc::clone(&table_schema), object)
            .await
        {
            Ok(statistics) => Ok(statistics),
            Err(e) => {
                self.unreadable(object, e)?;
                Ok(Statistics::new_unknown(&table_schema))
            }
        }
    }

    async fn create_physical_plan(
        &self,
        state: &dyn Session,
        mut conf: FileScanConfig,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.leave_out_unreadable(&mut conf)?;
        self.inner.create_physical_plan(state, conf).await
    }

    fn file_source(&self, table_schema: TableSchema) -> Arc<dyn FileSource> {
        self.inner.file_source(table_schema)
    }
}
