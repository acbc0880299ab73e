//! [`IntegerBooleansExec`]: reads a database's integer-coded booleans (MySQL's `TINYINT(1)`) as
//! booleans. A node of its own, not a projection with casts: the physical optimizer pushes
//! filters through projections into the database's scan, and the provider crate would send the
//! cast to MySQL in a syntax it refuses. Filters stop here and run after the conversion.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::Result as DfResult;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, ExecutionPlanProperties, PlanProperties,
};
use futures::StreamExt;

/// Its input's rows, with the columns at `columns` cast from integers to booleans (non-zero is
/// true, as in MySQL).
#[derive(Debug)]
pub struct IntegerBooleansExec {
    input: Arc<dyn ExecutionPlan>,
    columns: Vec<usize>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
}

impl IntegerBooleansExec {
    /// `schema` is the input's with the `columns` typed Boolean.
    pub fn new(input: Arc<dyn ExecutionPlan>, columns: Vec<usize>, schema: SchemaRef) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            input.output_partitioning().clone(),
            input.pipeline_behavior(),
            input.boundedness(),
        );
        IntegerBooleansExec {
            input,
            columns,
            schema,
            properties: Arc::new(properties),
        }
    }
}

impl DisplayAs for IntegerBooleansExec {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let names: Vec<&str> = self
            .columns
            .iter()
            .map(|&i| self.schema.field(i).name().as_str())
            .collect();
        write!(f, "IntegerBooleansExec: {}", names.join(", "))
    }
}

impl ExecutionPlan for IntegerBooleansExec {
    fn name(&self) -> &str {
        "IntegerBooleansExec"
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

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(IntegerBooleansExec::new(
            children.swap_remove(0),
            self.columns.clone(),
            Arc::clone(&self.schema),
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        let (schema, columns) = (Arc::clone(&self.schema), self.columns.clone());
        let converted = input.map(move |batch| {
            let batch = batch?;
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
