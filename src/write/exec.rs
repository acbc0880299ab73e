//! [`WriteExec`]: the node above the final query that converts, checks, encodes and writes each
//! partition's rows, and returns what it wrote.

use std::fmt;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, Partitioning, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, EmptyRecordBatchStream, ExecutionPlan, ExecutionPlanProperties,
    PlanProperties,
};
use futures::StreamExt;

pub use super::files::WriteTarget;
use super::files::{FilesWritten, OutputFiles};
use super::summary::{self, PartitionCounts};
use crate::batch::{self, BatchOptions, Tally};
use crate::error::Result;
use crate::personalize::ColumnPlan;
use crate::sources::bad_records::BadRecordLog;

/// Writes the rows of its input's partitions as one dataset's files.
///
/// The partitions of one node share its files: parts are numbered in the order rows arrive, and
/// the partition that finishes last completes them. Its output is one summary batch per
/// partition ([`summary`]).
///
/// On a cluster ([`WriteExec::per_task`]) each task executes its own copy of the node for one
/// partition: every execution then writes files of its own, named after the task (job, stage,
/// task and attempt: Ballista renumbers partitions per task), and returns its figures in its
/// summary for the client to add up.
pub struct WriteExec {
    input: Arc<dyn ExecutionPlan>,
    plan: Arc<ColumnPlan>,
    options: BatchOptions,
    target: WriteTarget,
    shared: Arc<Shared>,
    per_task: bool,
    properties: Arc<PlanProperties>,
}

/// State the partitions of one node share.
struct Shared {
    files: tokio::sync::Mutex<OutputFiles>,
    /// Partitions not finished yet: the one that takes this to zero completes the files.
    unfinished: AtomicUsize,
    /// Every finished partition's figures, added up.
    tally: Mutex<Tally>,
    rows_written: AtomicU64,
}

impl WriteExec {
    pub fn new(
        input: Arc<dyn ExecutionPlan>,
        plan: Arc<ColumnPlan>,
        options: BatchOptions,
        target: WriteTarget,
    ) -> Self {
        Self::build(input, plan, options, target, false)
    }

    /// The node for a cluster: each execution writes files of its own, named after its task.
    pub fn per_task(
        input: Arc<dyn ExecutionPlan>,
        plan: Arc<ColumnPlan>,
        options: BatchOptions,
        target: WriteTarget,
    ) -> Self {
        Self::build(input, plan, options, target, true)
    }

    fn build(
        input: Arc<dyn ExecutionPlan>,
        plan: Arc<ColumnPlan>,
        options: BatchOptions,
        target: WriteTarget,
        per_task: bool,
    ) -> Self {
        // At least one partition, so that an input without any still completes the files.
        let partitions = input.output_partitioning().partition_count().max(1);
        let shared = Arc::new(Shared::new(&target, &plan, None, partitions));
        let properties = PlanProperties::new(
            EquivalenceProperties::new(summary::schema()),
            Partitioning::UnknownPartitioning(partitions),
            EmissionType::Final,
            Boundedness::Bounded,
        );
        Self {
            input,
            plan,
            options,
            target,
            shared,
            per_task,
            properties: Arc::new(properties),
        }
    }

    /// What the node writes and how (for a cluster's codec).
    pub fn parts(&self) -> (&Arc<ColumnPlan>, BatchOptions, &WriteTarget, bool) {
        (&self.plan, self.options, &self.target, self.per_task)
    }

    /// Rows written so far, by every partition (for progress).
    pub fn rows_written(&self) -> u64 {
        self.shared.rows_written.load(Ordering::Relaxed)
    }

    /// The figures of every finished partition, added up.
    pub fn tally(&self) -> Tally {
        lock(&self.shared.tally).clone()
    }

    /// Aborts the uploads in progress after a failure or an interrupt. Call it once the
    /// partitions' tasks have stopped.
    pub async fn abort(&self) {
        self.shared.files.lock().await.abort().await;
    }
}

impl Shared {
    fn new(target: &WriteTarget, plan: &ColumnPlan, tag: Option<&str>, partitions: usize) -> Self {
        Self {
            files: tokio::sync::Mutex::new(OutputFiles::new(target, plan, tag)),
            unfinished: AtomicUsize::new(partitions),
            tally: Mutex::new(Tally::new(plan)),
            rows_written: AtomicU64::new(0),
        }
    }
}

/// The tag of the files one partition of a cluster task writes, from DataFusion's task id, which
/// Ballista's executors set to `TID <job>/<stage>.<stage attempt>/<task>.<task attempt>`:
/// `<stage>.<attempt>-<task>.<attempt>-<partition>`. A task can run several partitions, numbered
/// from 0 within the task (Ballista renumbers them), so the partition alone names nothing.
pub fn task_tag(task_id: &str, partition: usize) -> Option<String> {
    let rest = task_id.strip_prefix("TID ")?;
    let mut pieces = rest.split('/');
    let (_job, stage, task) = (pieces.next()?, pieces.next()?, pieces.next()?);
    let numbered = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    (pieces.next().is_none() && numbered(stage) && numbered(task))
        .then(|| format!("{stage}-{task}-{partition}"))
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

impl fmt::Debug for WriteExec {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("WriteExec")
            .field("dataset", &self.plan.dataset)
            .finish_non_exhaustive()
    }
}

impl DisplayAs for WriteExec {
    fn fmt_as(&self, _format: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let target = match &self.target {
            WriteTarget::Stage { dest, data_dir, .. } => dest.show(data_dir),
            WriteTarget::Discard => "nowhere (validation)".to_string(),
        };
        write!(
            f,
            "WriteExec (pengine): {} as Personalize CSV into {target}",
            self.plan.dataset
        )
    }
}

impl WriteExec {
    /// The node's name in plans and in a cluster's stage metrics.
    pub const NAME: &'static str = "WriteExec";
}

impl ExecutionPlan for WriteExec {
    fn name(&self) -> &str {
        Self::NAME
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
        Ok(Arc::new(WriteExec::build(
            children.swap_remove(0),
            Arc::clone(&self.plan),
            self.options,
            self.target.clone(),
            self.per_task,
        )))
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let input = if partition < self.input.output_partitioning().partition_count() {
            self.input.execute(partition, Arc::clone(&context))?
        } else {
            Box::pin(EmptyRecordBatchStream::new(self.input.schema()))
        };
        let shared = if self.per_task {
            let task_id = context.task_id().unwrap_or_default();
            let tag = task_tag(&task_id, partition).ok_or_else(|| {
                DataFusionError::Internal(format!(
                    "a cluster's write node ran outside a cluster task (task id {task_id:?})"
                ))
            })?;
            Arc::new(Shared::new(&self.target, &self.plan, Some(&tag), 1))
        } else {
            Arc::clone(&self.shared)
        };
        let task = PartitionWrite {
            partition,
            plan: Arc::clone(&self.plan),
            options: self.options,
            shared,
            per_task: self.per_task,
            bad_records: BadRecordLog::of(context.session_config()),
        };
        let per_task = self.per_task;
        let files = Arc::clone(&task.shared);
        let stream = futures::stream::once(async move {
            let ran = task.run(input).await;
            if per_task && ran.is_err() {
                // A cluster task's files are its own: a failed attempt leaves no upload behind.
                files.files.lock().await.abort().await;
            }
            ran.map_err(|e| {
                if per_task {
                    // Ballista sends a task's error to the client as its debug text: plain words
                    // read better there than the error's structure.
                    DataFusionError::Execution(e.to_string())
                } else {
                    DataFusionError::from(e)
                }
            })
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(
            summary::schema(),
            stream,
        )))
    }
}

/// One partition's share of the writing.
struct PartitionWrite {
    partition: usize,
    plan: Arc<ColumnPlan>,
    options: BatchOptions,
    shared: Arc<Shared>,
    /// A cluster's task: its figures go back in its summary.
    per_task: bool,
    bad_records: Arc<BadRecordLog>,
}

impl PartitionWrite {
    async fn run(self, mut input: SendableRecordBatchStream) -> Result<RecordBatch> {
        let mut tally = Tally::new(&self.plan);
        let mut lose_a_batch = crate::failpoint::armed_for("lose-a-batch");
        loop {
            // Stopped at a batch's edge, so that no upload is left half done behind the run.
            if crate::interrupt::requested() {
                return Err(crate::error::Error::Interrupted);
            }
            let next = tokio::select! {
                next = input.next() => next,
                // While waiting for rows (a join's build, a sort) nothing is half written: stop
                // now rather than at the next batch, which may be minutes away.
                _ = crate::interrupt::wait() => return Err(crate::error::Error::Interrupted),
                // Bad records are written while the sources are read, not held to the end.
                _ = self.bad_records.many_pending() => {
                    self.write_bad_records().await?;
                    continue;
                }
            };
            let Some(batch) = next else {
                break;
            };
            let batch = batch?;
            if batch.num_rows() == 0 || std::mem::take(&mut lose_a_batch) {
                continue;
            }
            let encoded = batch::process(&self.plan, &batch, self.options, &mut tally)?;
            let rows = encoded.rows.row_ends.len() as u64;
            {
                let mut files = self.shared.files.lock().await;
                files.write_rows(&encoded.rows).await?;
                if let Some(rejects) = &encoded.rejects {
                    files.write_rejects(rejects).await?;
                }
            }
            self.shared.rows_written.fetch_add(rows, Ordering::Relaxed);
            crate::failpoint::hit("while-writing");
        }
        let counts = PartitionCounts {
            written: tally.written,
            row_bytes: tally.row_bytes,
            rejected: tally.rejected,
        };
        lock(&self.shared.tally).add(&tally);
        let files = self.finish_if_last().await?;
        summary::encode(
            self.partition,
            counts,
            files.as_ref(),
            self.per_task.then_some(&tally),
        )
    }

    async fn write_bad_records(&self) -> Result<()> {
        let pending = self.bad_records.take_pending();
        self.shared
            .files
            .lock()
            .await
            .write_bad_records(&pending)
            .await
    }

    /// Completes the files when every other partition already finished.
    async fn finish_if_last(&self) -> Result<Option<FilesWritten>> {
        if self.shared.unfinished.fetch_sub(1, Ordering::AcqRel) != 1 {
            return Ok(None);
        }
        self.write_bad_records().await?;
        let mut files = self.shared.files.lock().await;
        // Interrupted: the files are aborted, never completed (a completed part would outlive
        // the staging area's removal).
        if crate::interrupt::requested() {
            return Err(crate::error::Error::Interrupted);
        }
        let written = files.finish().await?;
        Ok(Some(written))
    }
}

#[cfg(test)]
mod tests;
