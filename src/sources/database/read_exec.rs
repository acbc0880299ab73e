//! [`DatabaseReadExec`]: the rows of a database scan as pengine reads them. A failure while
//! reading names the table and server (exit 5, as a failed connection), and a database's
//! integer-coded booleans (MySQL's `TINYINT(1)`) become booleans.
//!
//! A node of its own, not a projection with casts: the physical optimizer pushes filters
//! through projections into the provider crate's scan, which edits its SQL text with them (and
//! would send a cast to MySQL in a syntax it refuses). Filters stop here; the ones the query
//! planner pushed down are already in the scan's SQL.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricBuilder, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
};
use futures::StreamExt;

use crate::error::Error;
use crate::row_flow::SOURCE_ROWS;

/// Its input's rows, with the columns at `columns` cast from integers to booleans (non-zero is
/// true, as in MySQL), and its errors told as a database read's (`reading` names what it reads).
#[derive(Debug)]
pub struct DatabaseReadExec {
    input: Arc<dyn ExecutionPlan>,
    columns: Vec<usize>,
    schema: SchemaRef,
    reading: Arc<str>,
    properties: Arc<PlanProperties>,
    /// The rows read, for the run's row accounting (the crate's scan below counts none).
    metrics: ExecutionPlanMetricsSet,
}

impl DatabaseReadExec {
    /// `schema` is the input's with the `columns` typed Boolean; `reading` is `table t: cannot
    /// read x of server` for messages.
    pub fn new(
        input: Arc<dyn ExecutionPlan>,
        columns: Vec<usize>,
        schema: SchemaRef,
        reading: Arc<str>,
    ) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            input.output_partitioning().clone(),
            input.pipeline_behavior(),
            input.boundedness(),
        );
        DatabaseReadExec {
            input,
            columns,
            schema,
            reading,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }
}

impl DisplayAs for DatabaseReadExec {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let names: Vec<&str> = self
            .columns
            .iter()
            .map(|&i| self.schema.field(i).name().as_str())
            .collect();
        match names.is_empty() {
            true => write!(f, "DatabaseReadExec"),
            false => write!(f, "DatabaseReadExec: booleans {}", names.join(", ")),
        }
    }
}

impl ExecutionPlan for DatabaseReadExec {
    fn name(&self) -> &str {
        "DatabaseReadExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(DatabaseReadExec::new(
            children.swap_remove(0),
            self.columns.clone(),
            Arc::clone(&self.schema),
            Arc::clone(&self.reading),
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let reading = Arc::clone(&self.reading);
        let failed = move |e: DataFusionError| {
            let why = e.strip_backtrace();
            let why: Vec<&str> = why
                .lines()
                .filter(|l| !l.trim().is_empty() && !l.starts_with("For details"))
                .collect();
            DataFusionError::External(Box::new(Error::Database(format!(
                "{reading}: {}",
                why.join(" ")
            ))))
        };
        let input = self.input.execute(partition, context).map_err(&failed)?;
        let (schema, columns) = (Arc::clone(&self.schema), self.columns.clone());
        let read = MetricBuilder::new(&self.metrics).counter(SOURCE_ROWS, partition);
        let converted = input.map(move |batch| {
            let batch = batch.map_err(&failed)?;
            read.add(batch.num_rows());
            let mut arrays = batch.columns().to_vec();
            for &i in &columns {
                arrays[i] = cast(&arrays[i], &DataType::Boolean)?;
            }
            Ok(RecordBatch::try_new(Arc::clone(&schema), arrays)?)
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            converted,
        )))
    }
}
