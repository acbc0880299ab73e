//! The scan side of pengine's own source formats (JSON and CSV): DataFusion's file-scan plumbing
//! (file groups per partition, projection, partition columns) around a format's own reader.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::Result;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::physical_plan::{FileOpener, FileScanConfig, FileSource};
use datafusion::datasource::projection::{ProjectionOpener, SplitProjection};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion::physical_plan::projection::ProjectionExprs;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;

use super::bad_records_out::BadRecordsOut;

/// A format whose files pengine reads itself.
pub trait RecordFormat: fmt::Debug + Send + Sync + 'static {
    fn file_type(&self) -> &'static str;

    /// The reader of one partition's files.
    fn opener(&self, scan: ScanFiles) -> Arc<dyn FileOpener>;

    /// The reader's settings as data, to rebuild the same reader in another process
    /// ([`crate::sources::scan_spec`]).
    fn spec(&self) -> crate::sources::scan_spec::FormatSpec;

    /// Whether DataFusion may cut this format's large files into byte ranges, one per partition:
    /// the opener then reads the records starting in its range, and reads a file it cannot split
    /// whole in the range at 0 ([`crate::sources::split`]).
    fn splits_files(&self) -> bool {
        false
    }
}

/// What a reader is asked for.
pub struct ScanFiles {
    /// The columns of the files.
    pub file_schema: SchemaRef,
    /// The columns to produce, in order: `file_schema` projected to `projection`.
    pub projected_schema: SchemaRef,
    pub projection: Vec<usize>,
    pub batch_size: usize,
    pub store: Arc<dyn ObjectStore>,
    /// The local file system, when the store is it ([`crate::store::local_file_system`]).
    pub local: Option<LocalFileSystem>,
}

/// The scan side: one opener per partition. A format that [splits files](RecordFormat::splits_files)
/// lets DataFusion spread one large file over the partitions in byte ranges (shown as
/// `file:start..end` in the plan's file groups); the others read every file whole.
#[derive(Clone)]
pub struct ExportSource {
    table_schema: TableSchema,
    format: Arc<dyn RecordFormat>,
    batch_size: Option<usize>,
    metrics: ExecutionPlanMetricsSet,
    projection: SplitProjection,
    /// Where the readers' bad records go when no write stage in this process gathers them.
    bad_records_out: Option<Arc<BadRecordsOut>>,
}

impl ExportSource {
    pub fn new(table_schema: TableSchema, format: Arc<dyn RecordFormat>) -> Self {
        Self {
            projection: SplitProjection::unprojected(&table_schema),
            table_schema,
            format,
            batch_size: None,
            metrics: ExecutionPlanMetricsSet::new(),
            bad_records_out: None,
        }
    }

    /// Where the scan writes its readers' bad records itself, if it does.
    pub fn bad_records_out(&self) -> Option<&BadRecordsOut> {
        self.bad_records_out.as_deref()
    }

    /// The scan, writing its readers' bad records out itself (a cluster's executor).
    pub fn with_bad_records_out(mut self, out: Arc<BadRecordsOut>) -> Self {
        self.bad_records_out = Some(out);
        self
    }
}

impl ExportSource {
    /// The format whose reader this scan runs.
    pub fn format(&self) -> &Arc<dyn RecordFormat> {
        &self.format
    }
}

impl FileSource for ExportSource {
    fn create_file_opener(
        &self,
        object_store: Arc<dyn ObjectStore>,
        base_config: &FileScanConfig,
        _partition: usize,
    ) -> Result<Arc<dyn FileOpener>> {
        let url: &url::Url = base_config.object_store_url.as_ref();
        let file_schema = self.table_schema.file_schema();
        let projected: Schema = file_schema.project(&self.projection.file_indices)?;
        let inner = self.format.opener(ScanFiles {
            file_schema: Arc::clone(file_schema),
            projected_schema: Arc::new(projected),
            projection: self.projection.file_indices.clone(),
            batch_size: self.batch_size.unwrap_or(8192),
            store: object_store,
            local: crate::store::local_file_system(url),
        });
        let inner = match &self.bad_records_out {
            Some(out) => out.around(inner),
            None => inner,
        };
        ProjectionOpener::try_new(self.projection.clone(), inner, file_schema)
    }

    fn table_schema(&self) -> &TableSchema {
        &self.table_schema
    }

    fn with_batch_size(&self, batch_size: usize) -> Arc<dyn FileSource> {
        let mut source = self.clone();
        source.batch_size = Some(batch_size);
        Arc::new(source)
    }

    fn projection(&self) -> Option<&ProjectionExprs> {
        Some(&self.projection.source)
    }

    fn try_pushdown_projection(
        &self,
        projection: &ProjectionExprs,
    ) -> Result<Option<Arc<dyn FileSource>>> {
        let mut source = self.clone();
        let merged = self.projection.source.try_merge(projection)?;
        source.projection = SplitProjection::new(self.table_schema.file_schema(), &merged);
        Ok(Some(Arc::new(source)))
    }

    fn metrics(&self) -> &ExecutionPlanMetricsSet {
        &self.metrics
    }

    fn file_type(&self) -> &str {
        self.format.file_type()
    }

    fn supports_repartitioning(&self) -> bool {
        self.format.splits_files()
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        datafusion::physical_plan::apply_expression_roots(self.projection.source.iter(), f)
    }
}

impl fmt::Debug for ExportSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExportSource").finish()
    }
}
