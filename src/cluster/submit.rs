//! The client side of a cluster run: the physical plan (write stage on top) goes to the scheduler
//! as one job; the client waits for it, cancels it when interrupted, and reads back the write
//! stage's summaries (a few rows per task), never the rows themselves.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use ballista_core::client::BallistaClient;
use ballista_core::config::BallistaConfig;
use ballista_core::extension::{BallistaConfigGrpcEndpoint, SessionConfigExt};
use ballista_core::serde::protobuf::operator_metric::Metric;
use ballista_core::serde::protobuf::scheduler_grpc_client::SchedulerGrpcClient;
use ballista_core::serde::protobuf::{
    CancelJobParams, ExecuteQueryParams, GetJobMetricsParams, GetJobStatusParams, KeyValuePair,
    OperatorWithMetrics, PartitionLocation, execute_query_params::Query, execute_query_result,
    job_status,
};
use ballista_core::utils::{GrpcClientConfig, create_grpc_client_endpoint};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionConfig;
use datafusion_proto::physical_plan::AsExecutionPlan;
use datafusion_proto::protobuf::PhysicalPlanNode;
use futures::TryStreamExt;
use tonic::transport::Channel;

use super::codec::PengineCodec;
use super::progress::JobProgress;
use crate::error::{Error, JobFailure, Result};
use crate::interrupt;
use crate::report::ClusterReport;
use crate::row_flow::ReportedOperator;
use crate::sources::split::SplitMismatch;
use crate::write::WriteSummary;

/// How often the job's state is asked for.
const POLL: Duration = Duration::from_millis(100);
/// How often the job's progress is asked for, while it runs.
const PROGRESS_EVERY: Duration = Duration::from_millis(500);
/// How long an answer about the job's progress may take (it only feeds the display and report).
const PROGRESS_TIMEOUT: Duration = Duration::from_secs(5);

fn unreachable(scheduler: &str, e: impl std::fmt::Display) -> Error {
    Error::Cluster(format!(
        "the cluster scheduler at {scheduler} cannot be reached ({e}); check --cluster and that \
         `pengine cluster scheduler` runs there. Nothing was published"
    ))
}

fn failed(what: &str, e: impl std::fmt::Display) -> Error {
    Error::Cluster(format!("{what}: {e}. Nothing was published"))
}

/// A job's failure, `words` read once for what the run can do about it.
fn job_failed(what: &str, words: &str, shown: impl std::fmt::Display) -> Error {
    Error::ClusterJob {
        message: format!("{what}: {shown}. Nothing was published"),
        cause: failure_cause(words),
    }
}

/// What the words of a failed job (Ballista's text of the task's error) say it failed of.
fn failure_cause(words: &str) -> JobFailure {
    if crate::sources::sampled::is_misfit_message(words) {
        JobFailure::RecordMisfit
    } else if SplitMismatch::is_in_message(words) {
        JobFailure::SplitMismatch
    } else if words.contains("Resources exhausted") && words.contains("HashJoin") {
        JobFailure::HashJoinOutOfMemory
    } else if words.contains("Shuffle fetch partition error")
        || words.contains("Error connecting to Ballista scheduler or executor")
    {
        JobFailure::LostExecutor
    } else {
        JobFailure::Other
    }
}

/// Settings the job runs with: the static planner (the adaptive one is newer and less checked),
/// and the session's own DataFusion settings.
fn job_settings(session: &SessionConfig) -> Vec<KeyValuePair> {
    let config = session
        .clone()
        .upgrade_for_ballista()
        .with_ballista_adaptive_query_planner(false);
    config
        .options()
        .entries()
        .into_iter()
        .map(|entry| KeyValuePair {
            key: entry.key,
            value: entry.value,
        })
        .collect()
}

/// What a finished job returned.
pub struct JobOutcome {
    /// The write stage's summaries, added up.
    pub summary: WriteSummary,
    pub cluster: ClusterReport,
    /// Each stage's id and operators with their row counts; None when the scheduler did not give
    /// them.
    pub stages: Option<Vec<(u32, ReportedOperator)>>,
}

/// Runs `plan` (a write stage made with [`crate::write::WriteExec::per_task`]) on the cluster at
/// `scheduler` (`host:port`), its nodes encoded by `codec`, and returns the write stage's summaries.
pub async fn run_job(
    scheduler: &str,
    plan: Arc<dyn ExecutionPlan>,
    session: &SessionConfig,
    codec: PengineCodec,
    on_progress: &(dyn Fn(&JobProgress) + Send + Sync),
) -> Result<JobOutcome> {
    let url = format!("http://{scheduler}");
    // What cannot be sent is a node the cluster cannot run: refused before anything ran.
    let message = PhysicalPlanNode::try_from_physical_plan(plan, &codec)
        .map_err(|e| Error::Usage(format!("{}", e.find_root())))?;
    let mut bytes = Vec::new();
    message
        .try_encode(&mut bytes)
        .map_err(|e| failed("the plan cannot be sent to the cluster", e))?;

    let grpc = GrpcClientConfig::from(&BallistaConfig::default());
    let endpoint = create_grpc_client_endpoint(url.clone(), Some(&grpc))
        .map_err(|e| unreachable(scheduler, e))?;
    let channel = endpoint
        .connect()
        .await
        .map_err(|e| unreachable(scheduler, e))?;
    let mut client = SchedulerGrpcClient::new(channel)
        .max_encoding_message_size(grpc.max_message_size)
        .max_decoding_message_size(grpc.max_message_size);

    let mut request = tonic::Request::new(ExecuteQueryParams {
        query: Some(Query::PhysicalPlan(bytes)),
        settings: job_settings(session),
        session_id: uuid::Uuid::new_v4().to_string(),
        operation_id: uuid::Uuid::new_v4().to_string(),
    });
    ballista_core::version::insert_version_header(request.metadata_mut());
    let submitted = client
        .execute_query(request)
        .await
        .map_err(|e| unreachable(scheduler, e.message()))?
        .into_inner();
    let job = match submitted.result {
        Some(execute_query_result::Result::Success(success)) => success.job_id,
        Some(execute_query_result::Result::Failure(failure)) => {
            return Err(failed(
                "the scheduler refused the job",
                format!("{failure:?}"),
            ));
        }
        None => return Err(failed("the scheduler refused the job", "no answer")),
    };
    tracing::info!("cluster job {job} submitted to {scheduler}");

    let watch = Progress::new(scheduler, &job, on_progress);
    let locations = match interrupt::cancellable(wait_for(&mut client, &job, &watch)).await {
        Ok(locations) => locations,
        Err(e) => {
            cancel(&mut client, &job).await;
            return Err(e);
        }
    };
    let partitions = by_partition(locations);
    let mut summary = WriteSummary::default();
    let mut executors = BTreeSet::new();
    let write_partitions = partitions.len();
    for (partition, attempts) in partitions {
        let (executor, batches) = first_readable(partition, attempts, &grpc).await?;
        executors.insert(executor);
        for batch in batches {
            summary.add(&batch)?;
        }
    }
    let progress = watch.now().await;
    if progress.is_none() {
        tracing::warn!(
            "the scheduler did not give job {job}'s task counts: is it a `pengine cluster \
             scheduler` of this version?"
        );
    }
    let stages = match stage_metrics(&mut client, &job).await {
        Ok(stages) => Some(stages),
        Err(e) => {
            tracing::warn!("the rows through cluster job {job} are not counted: {e}");
            None
        }
    };
    Ok(JobOutcome {
        summary,
        cluster: ClusterReport {
            scheduler: scheduler.to_string(),
            job,
            executors: executors.into_iter().collect(),
            write_partitions,
            tasks: progress.as_ref().map(|p| p.tasks_done),
            task_retries: progress.as_ref().map(|p| p.task_retries),
        },
        stages,
    })
}

/// Each stage's operator tree with its row counts, from the scheduler.
async fn stage_metrics(
    client: &mut SchedulerGrpcClient<Channel>,
    job: &str,
) -> std::result::Result<Vec<(u32, ReportedOperator)>, String> {
    let stages = client
        .get_job_metrics(GetJobMetricsParams {
            job_id: job.to_string(),
        })
        .await
        .map_err(|e| e.message().to_string())?
        .into_inner()
        .stages;
    stages
        .into_iter()
        .map(|stage| {
            let mut operators = stage.operators.into_iter().peekable();
            let root = operators
                .next()
                .ok_or_else(|| format!("stage {} has no operators", stage.stage_id))?;
            let tree = subtree(root, &mut operators);
            match operators.next() {
                None => Ok((stage.stage_id, tree)),
                Some(_) => Err(format!("stage {}'s operators do not nest", stage.stage_id)),
            }
        })
        .collect()
}

/// The operator `node` with its descendants, which follow it in `rest` (depth first, each with
/// its depth).
fn subtree(
    node: OperatorWithMetrics,
    rest: &mut std::iter::Peekable<impl Iterator<Item = OperatorWithMetrics>>,
) -> ReportedOperator {
    let mut out = ReportedOperator {
        name: node.operator_type,
        desc: node.operator_desc,
        ..ReportedOperator::default()
    };
    for metric in node.metrics {
        match metric.metric {
            Some(Metric::OutputRows(n)) => *out.output_rows.get_or_insert(0) += n,
            Some(Metric::Count(named)) => out.counts.push((named.name, named.value)),
            _ => {}
        }
    }
    while let Some(child) = rest.next_if(|c| c.depth == node.depth + 1) {
        out.children.push(subtree(child, rest));
    }
    out
}

/// The final stage's outputs by partition. After a lost executor Ballista runs a stage's tasks
/// again, and a partition can then be listed once per attempt that completed it: each attempt
/// wrote the whole partition, so one is read, and the files of the others, reported by no one,
/// are deleted before the commit.
fn by_partition(
    locations: Vec<PartitionLocation>,
) -> std::collections::BTreeMap<(u32, u32), Vec<PartitionLocation>> {
    let mut partitions: std::collections::BTreeMap<_, Vec<_>> = Default::default();
    for location in locations {
        let id = location
            .partition_id
            .as_ref()
            .map_or((0, 0), |p| (p.stage_id, p.partition_id));
        partitions.entry(id).or_default().push(location);
    }
    partitions
}

/// The summaries of the first attempt at `partition` that can be read (the executor of another
/// may be gone), and that attempt's executor.
async fn first_readable(
    partition: (u32, u32),
    attempts: Vec<PartitionLocation>,
    grpc: &GrpcClientConfig,
) -> Result<(String, Vec<datafusion::arrow::record_batch::RecordBatch>)> {
    if attempts.len() > 1 {
        tracing::info!(
            "partition {} of stage {} was completed {} times (a stage ran again); reading one",
            partition.1,
            partition.0,
            attempts.len()
        );
    }
    let mut last_error = None;
    for location in attempts {
        let executor = location
            .executor_meta
            .as_ref()
            .map(|e| e.id.clone())
            .unwrap_or_default();
        match fetch(location, grpc).await {
            Ok(batches) => return Ok((executor, batches)),
            Err(e) => last_error = Some(e),
        }
    }
    Err(last_error.unwrap_or_else(|| Error::Internal("a partition without a location".into())))
}

/// Asks the scheduler for a job's progress ([`super::progress`]) and shows it.
struct Progress<'a> {
    http: Option<reqwest::Client>,
    scheduler: &'a str,
    job: &'a str,
    show: &'a (dyn Fn(&JobProgress) + Send + Sync),
}

impl<'a> Progress<'a> {
    fn new(
        scheduler: &'a str,
        job: &'a str,
        show: &'a (dyn Fn(&JobProgress) + Send + Sync),
    ) -> Self {
        let http = reqwest::Client::builder()
            .timeout(PROGRESS_TIMEOUT)
            .build()
            .inspect_err(|e| tracing::warn!("the job's progress will not be shown: {e}"))
            .ok();
        Progress {
            http,
            scheduler,
            job,
            show,
        }
    }

    /// The job's progress now, shown; None when the scheduler does not say.
    async fn now(&self) -> Option<JobProgress> {
        let http = self.http.as_ref()?;
        match super::progress::fetch(http, self.scheduler, self.job).await {
            Ok(progress) => {
                (self.show)(&progress);
                Some(progress)
            }
            Err(e) => {
                tracing::debug!("the progress of cluster job {} is not known: {e}", self.job);
                None
            }
        }
    }
}

/// Waits for the job's end: the final stage's partitions when it succeeded.
async fn wait_for(
    client: &mut SchedulerGrpcClient<Channel>,
    job: &str,
    progress: &Progress<'_>,
) -> Result<Vec<PartitionLocation>> {
    let mut last_shown = tokio::time::Instant::now();
    loop {
        if last_shown.elapsed() >= PROGRESS_EVERY {
            progress.now().await;
            last_shown = tokio::time::Instant::now();
        }
        let status = client
            .get_job_status(GetJobStatusParams {
                job_id: job.to_string(),
            })
            .await
            .map_err(|e| failed(&format!("asking for job {job}"), e.message()))?
            .into_inner()
            .status
            .and_then(|s| s.status);
        match status {
            Some(job_status::Status::Failed(failure)) => {
                return Err(job_failed(
                    &format!("cluster job {job} failed"),
                    &failure.error,
                    format!(
                        "{} (a task's error, after Ballista's retries; executors read and \
                         write with their own credentials)",
                        task_error(&failure.error)
                    ),
                ));
            }
            Some(job_status::Status::Successful(done)) => return Ok(done.partition_location),
            None | Some(job_status::Status::Queued(_)) | Some(job_status::Status::Running(_)) => {
                tokio::time::sleep(POLL).await
            }
        }
    }
}

/// The words of a task's error inside Ballista's wrapping of it (the error's debug text: a
/// quoted string, its quotes and backslashes escaped).
fn task_error(text: &str) -> String {
    const START: &str = "Execution(\"";
    let Some(from) = text.rfind(START).map(|i| i + START.len()) else {
        return text.to_string();
    };
    let mut words = String::new();
    let mut chars = text[from..].chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => return words,
            '\\' => match chars.next() {
                Some('n') => words.push('\n'),
                Some(other) => words.push(other),
                None => break,
            },
            c => words.push(c),
        }
    }
    text.to_string()
}

async fn cancel(client: &mut SchedulerGrpcClient<Channel>, job: &str) {
    let asked = client
        .cancel_job(CancelJobParams {
            job_id: job.to_string(),
        })
        .await;
    match asked {
        Ok(_) => tracing::info!("cluster job {job} cancelled"),
        Err(e) => tracing::warn!("cluster job {job} could not be cancelled: {}", e.message()),
    }
}

/// The summary batches of one final partition, from the executor holding them.
async fn fetch(
    location: PartitionLocation,
    grpc: &GrpcClientConfig,
) -> Result<Vec<datafusion::arrow::record_batch::RecordBatch>> {
    let layout = location.layout();
    let (Some(executor), Some(partition)) = (location.executor_meta, location.partition_id) else {
        return Err(Error::Internal(
            "the scheduler named a result without its executor".into(),
        ));
    };
    let what = || format!("reading the write summaries from executor {}", executor.id);
    // An executor that cannot be reached is one lost since its task ended.
    fn lost(what: &str, e: impl std::fmt::Display) -> Error {
        let words = e.to_string();
        job_failed(what, &words, &words)
    }
    let mut client = BallistaClient::try_new(
        &executor.host,
        executor.port as u16,
        super::MAX_MESSAGE_BYTES.max(grpc.max_message_size),
        false,
        // An executor that stalls fails the read rather than hanging it.
        Some(Arc::new(BallistaConfigGrpcEndpoint::new(
            super::serve::peer_liveness(),
        ))),
        3,
        100,
        0,
        0,
    )
    .await
    .map_err(|e| lost(&what(), e))?;
    let stream = client
        .fetch_partition(
            &executor.id,
            &partition.into(),
            location.file_id,
            layout,
            true,
        )
        .await
        .map_err(|e| lost(&what(), e))?;
    stream.try_collect().await.map_err(|e| lost(&what(), e))
}

#[cfg(test)]
mod tests {
    use super::{JobFailure, failure_cause, task_error};
    use crate::sources::split::SplitMismatch;

    #[test]
    fn a_failed_job_s_words_are_read_once_for_what_the_run_can_do() {
        // As Ballista sends them: the task's error in its debug wrapping.
        let wrapped = |inner: &str| {
            format!(
                "Job failed due to stage 2 failed: Task failed due to runtime execution error: \
                 DataFusionError(Shared(External(DataFusionError(Execution({inner:?})))))"
            )
        };
        let mismatch = SplitMismatch {
            file: "/d/big.csv".into(),
            boundary: 100,
            detail: "a quoted value holds a line break; the next record starts at byte 130".into(),
        };
        let cases = [
            (
                wrapped("e.json: byte 9: records did not show the field `price`"),
                JobFailure::RecordMisfit,
            ),
            (wrapped(&mismatch.to_string()), JobFailure::SplitMismatch),
            (
                wrapped("Resources exhausted: Failed to allocate 1 MB for HashJoinInput[0]"),
                JobFailure::HashJoinOutOfMemory,
            ),
            (
                "Job failed due to stage 1 failed: Shuffle fetch partition error from \
                 Executor 3f: connection refused"
                    .to_string(),
                JobFailure::LostExecutor,
            ),
            (
                "Error connecting to Ballista scheduler or executor at http://127.0.0.1:5".into(),
                JobFailure::LostExecutor,
            ),
            (
                wrapped("writing s3://b/p.csv: 403 Forbidden"),
                JobFailure::Other,
            ),
        ];
        for (words, cause) in cases {
            assert_eq!(failure_cause(&words), cause, "{words}");
        }
    }

    #[test]
    fn a_task_s_error_is_read_out_of_ballista_s_wrapping() {
        let wrapped = r#"Job failed due to stage 1 failed: Task failed due to runtime execution error: DataFusionError(Shared(External(DataFusionError(Execution("writing s3://b/p.csv: 403 <Code>\"NotSignedUp\"</Code>")))))"#;
        assert_eq!(
            task_error(wrapped),
            r#"writing s3://b/p.csv: 403 <Code>"NotSignedUp"</Code>"#
        );
        assert_eq!(task_error("plain words"), "plain words");
    }
}
