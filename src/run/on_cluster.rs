//! A run's plan executed on a Ballista cluster (`--cluster`): the same plan as a local run, with
//! the write stage made per task, sent as one job. What the tasks kept by the job wrote is
//! committed like a local run's parts; what failed or retried attempts left is deleted first.

use std::sync::Arc;

use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionConfig;

use super::written::{Sink, Written};
use crate::batch::{self, BatchOptions, Tally};
use crate::cluster::codec::PengineCodec;
use crate::cluster::progress::JobProgress;
use crate::cluster::submit;
use crate::error::{Error, Result};
use crate::personalize::ColumnPlan;
use crate::row_flow::{self, RowFlow};
use crate::sources::bad_records::{BadRecordCounts, BadRecordPolicy};
use crate::sources::bad_records_out::BadRecordsTo;
use crate::store::StoreRegistry;
use crate::write::{WriteExec, WriteTarget};

/// How long a part's completion may take once its task found the job still open.
const LATE_COMPLETION_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Named when the scheduler did not give the job's counts.
const UNMEASURED: &str = "the cluster's stages (their counts were not given)";

/// What [`execute`] needs of the planned run.
pub(super) struct Planned<'a> {
    pub(super) query: Arc<dyn ExecutionPlan>,
    pub(super) plan: Arc<ColumnPlan>,
    pub(super) options: BatchOptions,
    pub(super) target: WriteTarget,
    pub(super) session: &'a SessionConfig,
    /// Shows the rows the write stage's finished tasks took in.
    pub(super) progress: &'a (dyn Fn(u64) + Send + Sync),
}

/// Runs the planned query on the cluster at `scheduler` into `sink`.
pub(super) async fn execute(
    scheduler: &str,
    planned: Planned<'_>,
    stores: &Arc<StoreRegistry>,
    sink: Sink<'_>,
) -> Result<Written> {
    let Planned {
        query,
        plan,
        options,
        target,
        session,
        progress,
    } = planned;
    let mut codec = PengineCodec::new(Arc::clone(stores));
    let skip_bad_records =
        crate::sources::bad_records::BadRecordLog::of(session).policy() == BadRecordPolicy::Skip;
    if skip_bad_records {
        // The executors' scans write the records they set aside into the staging area.
        let Sink::Stage(staging) = sink else {
            return Err(Error::Usage(
                "--on-bad-records skip needs an output on a cluster: the executors write the \
                 bad records there"
                    .into(),
            ));
        };
        staging.clear_task_bad_records().await?;
        codec = codec.with_bad_records_to(BadRecordsTo {
            url: staging.dest.url()?.to_string(),
            dir: staging.task_bad_records_dir().to_string(),
        });
    }
    let node = Arc::new(WriteExec::per_task(
        query,
        Arc::clone(&plan),
        options,
        target,
    ));
    if let Sink::Stage(staging) = sink {
        staging.open_to_cluster_job().await?;
    }
    let show = |p: &JobProgress| progress(p.rows_to_write);
    let outcome = submit::run_job(scheduler, node, session, codec, &show).await;
    if let Sink::Stage(staging) = sink {
        staging.close_to_cluster_job().await?;
        // A task attempt the scheduler gave up on may have found the staging area open just
        // before it closed: its part is complete within moments, and listed (then deleted) below.
        let may_have_late_attempts = match &outcome {
            Ok(done) => done.cluster.task_retries != Some(0),
            // A job that ran (and failed, or was cancelled) may have tasks still finishing.
            Err(Error::ClusterJob { .. } | Error::Interrupted) => true,
            Err(_) => false,
        };
        if may_have_late_attempts {
            tokio::time::sleep(LATE_COMPLETION_GRACE).await;
        }
    }
    let submit::JobOutcome {
        summary,
        cluster,
        stages,
    } = outcome?;
    let tally = summary.tally.clone().unwrap_or_else(|| Tally::new(&plan));
    if tally.written != summary.counts.written || tally.rejected != summary.counts.rejected {
        return Err(Error::Internal(format!(
            "the cluster's tasks counted {} rows written and {} rejected, their figures {} and \
             {}; nothing is published",
            summary.counts.written, summary.counts.rejected, tally.written, tally.rejected
        )));
    }
    let mut bad_records = BadRecordCounts::default();
    if let Sink::Stage(staging) = sink {
        if skip_bad_records {
            bad_records = staging.gather_bad_records().await?;
        }
        summary.check_parts_hold_every_row()?;
        let deleted = staging
            .keep_only(&summary.parts, &summary.rejects_files)
            .await?;
        if !deleted.is_empty() {
            tracing::info!(
                "deleted {} files of failed or retried task attempts: {}",
                deleted.len(),
                deleted.join(", ")
            );
        }
        if summary.rejects_file {
            staging
                .gather_rejects(&summary.rejects_files, &batch::rejects_header(&plan))
                .await?;
        }
    }
    let flow = match stages {
        Some(stages) => row_flow::measure_stages(&stages, WriteExec::NAME),
        None => RowFlow {
            produced: tally.written + tally.rejected,
            unmeasured: vec![UNMEASURED.to_string()],
            ..RowFlow::default()
        },
    };
    // As a local run: the rows into the write stage are the rows it wrote or rejected.
    if flow.is_measured() && flow.produced != tally.written + tally.rejected {
        return Err(Error::Internal(format!(
            "the cluster's write stage received {} rows but wrote {} and rejected {}; nothing \
             is published",
            flow.produced, tally.written, tally.rejected
        )));
    }
    tracing::info!(
        "cluster job {} wrote {} rows in {} parts, on executors {}",
        cluster.job,
        tally.written,
        summary.parts.len(),
        cluster.executors.join(", ")
    );
    Ok(Written::new(
        plan,
        summary,
        tally,
        flow,
        bad_records,
        Some(cluster),
    ))
}
