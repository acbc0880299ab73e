//! A job's progress as its scheduler knows it: stages and tasks finished, task attempts that
//! failed and ran again, and the rows the finished write tasks took in.
//!
//! Ballista's gRPC API gives the metrics of finished stages only, and no task attempts. pengine's
//! scheduler serves these figures beside it, on the same port (`GET /pengine/v1/jobs/{job}`), from
//! the job's execution graph; the client asks for them while it waits (its progress bar) and once
//! the job is done (the report's `task_retries`).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use ballista_core::serde::protobuf::task_status;
use ballista_scheduler::cluster::JobState;
use ballista_scheduler::scheduler_server::SchedulerServer;
use ballista_scheduler::state::execution_graph::ExecutionGraph;
use ballista_scheduler::state::execution_stage::{ExecutionStage, TaskInfo};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::MetricsSet;
use datafusion_proto::protobuf::{LogicalPlanNode, PhysicalPlanNode};
use serde::{Deserialize, Serialize};

use crate::write::WriteExec;

/// The route, below the scheduler's address.
const ROUTE: &str = "/pengine/v1/jobs/{job}";

/// What a job has done so far.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobProgress {
    pub stages: usize,
    pub stages_done: usize,
    /// Task attempts that completed.
    pub tasks_done: usize,
    /// Task attempts that failed or were lost with their executor, and whose partitions ran again.
    pub task_retries: usize,
    /// Rows the finished tasks of the write stage took in (written or rejected).
    pub rows_to_write: u64,
}

type Scheduler = SchedulerServer<LogicalPlanNode, PhysicalPlanNode>;

#[derive(Clone)]
struct Jobs {
    scheduler: Scheduler,
    /// Where finished jobs' graphs are kept.
    finished: Arc<dyn JobState>,
}

/// The route serving [`JobProgress`], for the scheduler's own HTTP server.
pub(super) fn routes(scheduler: Scheduler, finished: Arc<dyn JobState>) -> axum::Router {
    axum::Router::new()
        .route(ROUTE, axum::routing::get(job_progress))
        .with_state(Jobs {
            scheduler,
            finished,
        })
}

async fn job_progress(State(jobs): State<Jobs>, Path(job): Path<String>) -> Response {
    let id = job.clone().into();
    let running = jobs
        .scheduler
        .state
        .task_manager
        .get_running_job_cache()
        .get(&id)
        .map(|cached| Arc::clone(&cached.execution_graph));
    let progress = match running {
        Some(graph) => of_graph(graph.read().await.as_ref()),
        None => match jobs.finished.get_execution_graph(&id).await {
            Ok(Some(graph)) => of_graph(graph.as_ref()),
            Ok(None) => return (StatusCode::NOT_FOUND, format!("no job {job}")).into_response(),
            Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
        },
    };
    match serde_json::to_string(&progress) {
        Ok(json) => ([("content-type", "application/json")], json).into_response(),
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}

fn of_graph(graph: &dyn ExecutionGraph) -> JobProgress {
    let mut progress = JobProgress {
        stages: graph.stage_count(),
        stages_done: graph.completed_stages(),
        ..JobProgress::default()
    };
    for stage in graph.stages().values() {
        let (tasks, plan, metrics): (&[TaskInfo], _, _) = match stage {
            ExecutionStage::Running(s) => (&s.task_infos, &s.plan, s.stage_metrics.as_deref()),
            ExecutionStage::Successful(s) => (&s.task_infos, &s.plan, Some(&s.stage_metrics[..])),
            ExecutionStage::Failed(s) => (&s.task_infos, &s.plan, None),
            ExecutionStage::UnResolved(_) | ExecutionStage::Resolved(_) => continue,
        };
        for task in tasks {
            match task.task_status {
                task_status::Status::Successful(_) => progress.tasks_done += 1,
                task_status::Status::Failed(_) => progress.task_retries += 1,
                _ => {}
            }
        }
        if let Some(rows) = metrics.and_then(|m| rows_into(plan.as_ref(), WriteExec::NAME, m)) {
            progress.rows_to_write += rows;
        }
    }
    progress
}

/// The rows into the node named `node` in a stage's `plan`, from the stage's `metrics` (one set
/// per node that has metrics, in the plan's depth-first order, as Ballista collects them).
fn rows_into(plan: &dyn ExecutionPlan, node: &str, metrics: &[MetricsSet]) -> Option<u64> {
    // (name, depth, index of its metrics) of each node, depth first.
    let mut nodes: Vec<(&str, usize, Option<usize>)> = Vec::new();
    let mut index = 0;
    let mut stack = vec![(plan, 0)];
    while let Some((plan, depth)) = stack.pop() {
        let at = plan.metrics().is_some().then(|| {
            index += 1;
            index - 1
        });
        nodes.push((plan.name(), depth, at));
        let children = plan.children().into_iter().rev();
        stack.extend(children.map(|c| (c.as_ref(), depth + 1)));
    }
    // Depth first, a node's first child (if it has one) comes right after it.
    let sink = nodes.iter().position(|(name, _, _)| *name == node)?;
    let (_, depth, child) = nodes.get(sink + 1)?;
    if *depth != nodes[sink].1 + 1 {
        return None;
    }
    Some(metrics.get((*child)?)?.output_rows()? as u64)
}

/// The progress of `job` from the pengine scheduler at `scheduler` (`host:port`).
pub async fn fetch(
    client: &reqwest::Client,
    scheduler: &str,
    job: &str,
) -> Result<JobProgress, String> {
    let url = format!("http://{scheduler}{}", ROUTE.replace("{job}", job));
    let response = client.get(&url).send().await.map_err(|e| e.to_string())?;
    let status = response.status();
    let body = response.text().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{url}: {status} {body}"));
    }
    serde_json::from_str(&body).map_err(|e| format!("{url}: {e}"))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::datatypes::Schema;
    use datafusion::physical_expr::expressions::Column;
    use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
    use datafusion::physical_plan::empty::EmptyExec;
    use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricBuilder};
    use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};
    use datafusion::physical_plan::union::UnionExec;

    use super::*;

    fn with_rows(rows: usize) -> MetricsSet {
        let set = ExecutionPlanMetricsSet::new();
        MetricBuilder::new(&set).output_rows(0).add(rows);
        set.clone_inner()
    }

    #[test]
    fn the_rows_into_a_node_are_its_first_child_s_output_counting_only_nodes_with_metrics() {
        let schema = Arc::new(Schema::new(vec![datafusion::arrow::datatypes::Field::new(
            "a",
            datafusion::arrow::datatypes::DataType::Int32,
            true,
        )]));
        let empty = || -> Arc<dyn ExecutionPlan> { Arc::new(EmptyExec::new(Arc::clone(&schema))) };
        let project = ProjectionExec::try_new(
            [ProjectionExpr::new(Arc::new(Column::new("a", 0)), "a")],
            Arc::new(CoalescePartitionsExec::new(empty())),
        )
        .unwrap();
        // Depth first: Union (metrics 0), Empty (none), Projection (1), Coalesce (2), Empty.
        let plan = UnionExec::try_new(vec![empty(), Arc::new(project)]).unwrap();
        let metrics = [with_rows(1), with_rows(2), with_rows(3)];
        assert_eq!(
            rows_into(plan.as_ref(), "ProjectionExec", &metrics),
            Some(3)
        );
        // Its first child (Empty) has no metrics; nor does a node with no child.
        assert_eq!(rows_into(plan.as_ref(), "UnionExec", &metrics), None);
        assert_eq!(rows_into(plan.as_ref(), "EmptyExec", &metrics), None);
        assert_eq!(rows_into(plan.as_ref(), WriteExec::NAME, &metrics), None);
    }
}
