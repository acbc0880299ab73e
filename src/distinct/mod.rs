//! `SELECT DISTINCT` as a streaming filter instead of DataFusion's hash aggregation.
//!
//! Removing exact duplicates is the most common step of an interactions job, and DataFusion plans
//! it as an aggregation with no aggregates: a partial and a final hash table over every column,
//! every group held until the end and then emitted, spilled by sorting the groups and merging the
//! sorted runs. On an export of tens of millions of mostly distinct events that is most of the
//! run's time. [`DistinctExec`] instead lets each row through the first time it is seen (so the
//! output streams while the input is read) and remembers it as compact bytes ([`codec`]); beyond
//! its memory budget it moves slices of the hash space to disk and settles them at the end
//! ([`seen`]). The comparison is exact: rows are equal when their encoded bytes are.
//!
//! [`DistinctRule`] is a physical optimizer rule that swaps such aggregations for it; any other
//! aggregation, or nested column types, keep DataFusion's plan.

mod codec;
mod seen;
mod slice;
mod spill;

use std::fmt;
use std::sync::Arc;

use ahash::RandomState;
use datafusion::arrow::array::{ArrayRef, AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::compute::kernels::arity::unary;
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Float32Type, Float64Type, SchemaRef,
};
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::error::Result;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::execution_plan::{Boundedness, CardinalityEffect, EmissionType};
use datafusion::physical_plan::expressions::Column;
use datafusion::physical_plan::metrics::{
    Count, ExecutionPlanMetricsSet, MetricBuilder, MetricsSet,
};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, Distribution, ExecutionPlan, ExecutionPlanProperties,
    InputDistributionRequirements, PlanProperties, replace_children_if_necessary,
};
use futures::{StreamExt, TryStreamExt};

use codec::RowCodec;
use seen::{Outcome, Row, SeenRows, SpilledSlice};
use spill::SpillFiles;

/// How many rows ahead of its insertion a row's table slot is prefetched.
const PREFETCH_AHEAD: usize = 8;

/// Rows read back from disk between two checks of the memory budget.
const ROWS_BETWEEN_CHECKS: usize = 4096;

/// Replaces aggregations that only remove duplicate rows with [`DistinctExec`].
#[derive(Debug, Default)]
pub struct DistinctRule;

impl PhysicalOptimizerRule for DistinctRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            Ok(match replacement(&node)? {
                Some(distinct) => Transformed::yes(distinct),
                None => Transformed::no(node),
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "pengine_distinct"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The distinct operator that can stand for `node`, if `node` is a duplicate-removing
/// aggregation of a shape this operator handles.
fn replacement(node: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(aggregate) = node.downcast_ref::<AggregateExec>() else {
        return Ok(None);
    };
    if !only_removes_duplicates(aggregate) {
        return Ok(None);
    }
    let schema = aggregate.schema();
    let input = match aggregate.mode() {
        // One stage over input already partitioned by every column (or one partition).
        AggregateMode::Single | AggregateMode::SinglePartitioned => Arc::clone(aggregate.input()),
        // Partial → repartition by every column (or coalesce) → final: drop the partial stage.
        AggregateMode::Final | AggregateMode::FinalPartitioned => {
            let exchange = aggregate.input();
            let [partial_node] = exchange.children()[..] else {
                return Ok(None);
            };
            let Some(partial) = partial_node.downcast_ref::<AggregateExec>() else {
                return Ok(None);
            };
            let same_columns = partial.schema().fields().len() == schema.fields().len()
                && partial
                    .input()
                    .schema()
                    .fields()
                    .iter()
                    .zip(partial.schema().fields())
                    .all(|(a, b)| a.name() == b.name() && a.data_type() == b.data_type());
            if *partial.mode() != AggregateMode::Partial
                || !only_removes_duplicates(partial)
                || !same_columns
                || !matches!(
                    exchange.output_partitioning(),
                    Partitioning::Hash(..) | Partitioning::UnknownPartitioning(1)
                )
            {
                return Ok(None);
            }
            replace_children_if_necessary(Arc::clone(exchange), vec![Arc::clone(partial.input())])?
        }
        _ => return Ok(None),
    };
    Ok(Some(Arc::new(DistinctExec::new(input, schema))))
}

/// An aggregation with no aggregate function, one grouping set, no limit, grouping by each of its
/// input's columns in order, all of flat types (nested ones keep DataFusion's plan).
fn only_removes_duplicates(aggregate: &AggregateExec) -> bool {
    let input = aggregate.input().schema();
    let groups = aggregate.group_expr();
    aggregate.aggr_expr().is_empty()
        && groups.is_single()
        && aggregate.limit_options().is_none()
        && groups.expr().len() == input.fields().len()
        && groups.expr().iter().enumerate().all(|(i, (expr, _))| {
            expr.downcast_ref::<Column>()
                .is_some_and(|column| column.index() == i)
        })
        && input.fields().iter().all(|f| flat(f.data_type()))
}

/// Types whose values are compared as a whole (by [`codec`]): equal bytes, equal values.
fn flat(data_type: &DataType) -> bool {
    use DataType::*;
    matches!(
        data_type,
        Null | Boolean
            | Int8
            | Int16
            | Int32
            | Int64
            | UInt8
            | UInt16
            | UInt32
            | UInt64
            | Float32
            | Float64
            | Utf8
            | LargeUtf8
            | Utf8View
            | Binary
            | LargeBinary
            | BinaryView
            | FixedSizeBinary(_)
            | Date32
            | Date64
            | Time32(_)
            | Time64(_)
            | Timestamp(..)
            | Duration(_)
            | Interval(_)
            | Decimal128(..)
            | Decimal256(..)
    )
}

/// DataFusion's grouping counts -0.0 and 0.0 as one value (and every NaN as one), and writes 0.0:
/// so does this operator, by normalizing float columns before comparing and emitting them.
fn normalize_floats(columns: &[ArrayRef]) -> Vec<ArrayRef> {
    columns
        .iter()
        .map(|column| match column.data_type() {
            DataType::Float64 => canonical_floats::<Float64Type>(column, 0.0, f64::NAN),
            DataType::Float32 => canonical_floats::<Float32Type>(column, 0.0, f32::NAN),
            _ => Arc::clone(column),
        })
        .collect()
}

/// `column` with -0.0 as `zero` and every NaN as `nan`.
fn canonical_floats<T: ArrowPrimitiveType>(
    column: &ArrayRef,
    zero: T::Native,
    nan: T::Native,
) -> ArrayRef {
    Arc::new(unary::<_, _, T>(column.as_primitive::<T>(), |v| {
        if v == zero {
            zero
        } else if v.partial_cmp(&v).is_none() {
            nan
        } else {
            v
        }
    }))
}

/// Lets each distinct row through once, in one pass over its input partition.
#[derive(Debug)]
pub struct DistinctExec {
    input: Arc<dyn ExecutionPlan>,
    schema: SchemaRef,
    properties: Arc<PlanProperties>,
    /// Spill files, rows and bytes written (EXPLAIN ANALYZE shows them).
    metrics: ExecutionPlanMetricsSet,
}

impl DistinctExec {
    /// `schema`: the output's, column for column the input's types (the names may differ).
    pub fn new(input: Arc<dyn ExecutionPlan>, schema: SchemaRef) -> Self {
        let properties = PlanProperties::new(
            EquivalenceProperties::new(Arc::clone(&schema)),
            input.output_partitioning().clone(),
            EmissionType::Both,
            Boundedness::Bounded,
        );
        Self {
            input,
            schema,
            properties: Arc::new(properties),
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }

    fn all_columns(&self) -> Vec<Arc<dyn PhysicalExpr>> {
        self.input
            .schema()
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| Arc::new(Column::new(f.name(), i)) as Arc<dyn PhysicalExpr>)
            .collect()
    }
}

impl DisplayAs for DistinctExec {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let names: Vec<&str> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.name().as_str())
            .collect();
        write!(f, "DistinctExec (pengine): on=[{}]", names.join(", "))
    }
}

impl ExecutionPlan for DistinctExec {
    fn name(&self) -> &str {
        "DistinctExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn input_distribution_requirements(&self) -> InputDistributionRequirements {
        InputDistributionRequirements::new(vec![if self
            .input
            .output_partitioning()
            .partition_count()
            == 1
        {
            Distribution::SinglePartition
        } else {
            Distribution::KeyPartitioned(self.all_columns())
        }])
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(DistinctExec::new(
            children.swap_remove(0),
            Arc::clone(&self.schema),
        )))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn cardinality_effect(&self) -> CardinalityEffect {
        CardinalityEffect::LowerEqual
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, Arc::clone(&context))?;
        let types: Vec<DataType> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.data_type().clone())
            .collect();
        let codec = RowCodec::new(&types)?;
        let reservation = MemoryConsumer::new(format!("DistinctExec[{partition}]"))
            .with_can_spill(true)
            .register(context.memory_pool());
        let files = SpillFiles::new(
            Arc::clone(&context.runtime_env().disk_manager),
            &self.metrics,
            partition,
        );
        // Fixed seeds: runs over the same data spill the same slices.
        let hasher = RandomState::with_seeds(
            0x7065_6e67_696e_6501,
            0x6469_7374_696e_6374,
            0x0123_4567_89ab_cdef,
            0xfedc_ba98_7654_3210,
        );
        let state = Distinct {
            input: Some(input),
            schema: Arc::clone(&self.schema),
            seen: Some(SeenRows::new(0, hasher.clone(), files.clone())),
            codec,
            spilled: Vec::new(),
            reservation,
            batch_size: context.session_config().batch_size().max(1),
            hasher,
            files,
            output_rows: MetricBuilder::new(&self.metrics).output_rows(partition),
        };
        let stream = futures::stream::try_unfold(state, |mut state| async move {
            let batch = state.next_batch().await?;
            if let Some(batch) = &batch {
                state.output_rows.add(batch.num_rows());
            }
            Ok(batch.map(|b| (b, state)))
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            Arc::clone(&self.schema),
            stream.into_stream().boxed(),
        )))
    }
}

/// One partition's distinct stream.
struct Distinct {
    /// None once read to the end.
    input: Option<SendableRecordBatchStream>,
    schema: SchemaRef,
    /// While reading: level 0. Afterwards: the spilled slice being settled, emitting its new rows.
    seen: Option<SeenRows>,
    codec: RowCodec,
    /// Slices on disk, waiting to be settled.
    spilled: Vec<SpilledSlice>,
    reservation: MemoryReservation,
    batch_size: usize,
    hasher: RandomState,
    files: SpillFiles,
    /// Rows emitted: how many the DISTINCT kept, for the run's row accounting.
    output_rows: Count,
}

impl Distinct {
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            if let Some(input) = &mut self.input {
                match input.next().await {
                    Some(batch) => {
                        let batch = self.first_occurrences(batch?)?;
                        if batch.num_rows() > 0 {
                            return Ok(Some(batch));
                        }
                    }
                    None => {
                        self.input = None;
                        self.end_level()?;
                    }
                }
                continue;
            }
            if let Some(seen) = &mut self.seen {
                match seen.next_pending(self.batch_size, &self.codec)? {
                    Some(columns) => {
                        return Ok(Some(RecordBatch::try_new(
                            Arc::clone(&self.schema),
                            columns,
                        )?));
                    }
                    None => self.end_level()?,
                }
                continue;
            }
            match self.spilled.pop() {
                // Nothing came after the slice went to disk: nothing new to emit.
                Some(slice) if slice.incoming.rows() == 0 => {}
                Some(slice) => self.seen = Some(self.settle(slice)?),
                None => {
                    self.reservation.free();
                    return Ok(None);
                }
            }
        }
    }

    /// The rows of `batch` not seen before (in its order), remembering them.
    fn first_occurrences(&mut self, batch: RecordBatch) -> Result<RecordBatch> {
        let seen = self.seen.as_mut().expect("level 0 while reading");
        let columns = normalize_floats(batch.columns());
        let rows = self.codec.encode(&columns)?;
        let hashes: Vec<u64> = rows.iter().map(|bytes| seen.hash(bytes)).collect();
        let mut keep = Vec::with_capacity(batch.num_rows());
        for (i, (bytes, &hash)) in rows.iter().zip(&hashes).enumerate() {
            // The table slot of a row a few ahead is fetched while this one is inserted, so that
            // the cache misses of a batch overlap instead of coming one after another.
            if let Some(&ahead) = hashes.get(i + PREFETCH_AHEAD) {
                seen.prefetch(ahead);
            }
            keep.push(seen.insert(hash, bytes, Row::Input, &self.reservation)? == Outcome::New);
        }
        drop(rows);
        seen.fit(&self.reservation)?;
        let batch = RecordBatch::try_new(Arc::clone(&self.schema), columns)?;
        Ok(if keep.iter().all(|&k| k) {
            batch
        } else {
            filter_record_batch(&batch, &BooleanArray::from(keep))?
        })
    }

    /// Ends the current level: its rows in memory are done with, its spilled slices wait.
    fn end_level(&mut self) -> Result<()> {
        if let Some(seen) = self.seen.take() {
            self.spilled.extend(seen.finish()?);
        }
        self.reservation.resize(0);
        Ok(())
    }

    /// Loads a spilled slice: the rows already emitted, then the undecided ones (the new among
    /// them pending), at the slice's level of the hash space.
    fn settle(&mut self, slice: SpilledSlice) -> Result<SeenRows> {
        let mut seen = SeenRows::new(slice.level, self.hasher.clone(), self.files.clone());
        let files = slice.seen.iter().map(|file| (file, Row::Emitted));
        for (file, kind) in files.chain([(&slice.incoming, Row::Candidate)]) {
            let mut since_check = 0;
            file.reader()?.for_each_row(|row| {
                let hash = seen.hash(row);
                seen.insert(hash, row, kind, &self.reservation)?;
                since_check += 1;
                if since_check == ROWS_BETWEEN_CHECKS {
                    seen.fit(&self.reservation)?;
                    since_check = 0;
                }
                Ok(())
            })?;
        }
        seen.fit(&self.reservation)?;
        Ok(seen)
    }
}

#[cfg(test)]
mod tests;
