//! Executing a mapping file's plan into the staging area: the final query under the write stage
//! ([`WriteExec`]), its partitions in parallel. An attempt that fails in a way another plan
//! avoids (a record the columns of a sample do not cover, a CSV file cut inside a record, a
//! hash join out of memory) is discarded and run again.

use std::sync::Arc;
use std::time::Duration;

use datafusion::physical_plan::ExecutionPlan;
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::task::JoinSet;

use super::RunOptions;
pub(super) use super::written::{Sink, Written};
use crate::batch::BatchOptions;
use crate::dataset_plan;
use crate::engine::{self, EngineOptions};
use crate::error::{Error, JobFailure, Result};
use crate::interrupt;
use crate::mapping::MappingFile;
use crate::partition_pruning;
use crate::report::JoinStrategy;
use crate::row_flow;
use crate::sources::sampled::find_misfit;
use crate::sources::split::SplitMismatch;
use crate::sources::unchecked_cuts::UncheckedCuts;
use crate::store::StoreRegistry;
use crate::write::{WriteExec, WriteSummary, WriteTarget};

/// Jobs a cluster run submits at most when executors are lost.
const CLUSTER_JOB_ATTEMPTS: usize = 3;

/// How often the progress display reads the rows written.
const PROGRESS_TICK: Duration = Duration::from_millis(200);
/// How long interrupted partitions have to stop at a batch's edge before they are aborted.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// Executes the mapping file, discarding what was written and running it again when a record
/// does not fit the columns inferred from a sample (then inferred from every record), or
/// when a hash join runs out of memory (then with sort-merge joins). Returns what was written and
/// the join strategy.
pub(super) async fn execute_with_fallback(
    mapping: &MappingFile,
    options: &RunOptions,
    stores: &Arc<StoreRegistry>,
    sink: Sink<'_>,
) -> Result<(Written, JoinStrategy)> {
    let progress = progress_bar(options, mapping);
    let mut engine = options.engine.clone();
    // JSON and CSV columns from a sample first: one pass over the export when every record
    // fits it.
    engine.sampled_inference = true;
    let mut cluster_jobs_left = CLUSTER_JOB_ATTEMPTS;
    let attempt = loop {
        let cuts = Arc::new(UncheckedCuts::default());
        engine.unchecked_cuts = Some(Arc::clone(&cuts));
        let attempt = execute(mapping, &engine, stores, sink, options, &progress).await;
        let Err(e) = &attempt else {
            break attempt;
        };
        // A cluster's job failure, read where it arrived.
        let cluster = match e {
            Error::ClusterJob { cause, .. } => *cause,
            _ => JobFailure::Other,
        };
        let misfit = find_misfit(e).map(|m| m.to_string());
        let mismatch = crate::sources::find_cause::<SplitMismatch>(e).map(|m| m.to_string());
        if (cluster == JobFailure::RecordMisfit || misfit.is_some()) && engine.sampled_inference {
            let shown = misfit.unwrap_or_else(|| e.to_string());
            tracing::info!("{shown}: inferring the columns from every record and running again");
            engine.sampled_inference = false;
        } else if (cluster == JobFailure::SplitMismatch || mismatch.is_some())
            && engine.split_at_checked_cuts
        {
            let shown = mismatch.unwrap_or_else(|| e.to_string());
            tracing::info!("{shown}: reading such files whole and running again");
            engine.split_at_checked_cuts = false;
        } else if cluster == JobFailure::LostExecutor && cluster_jobs_left > 1 {
            // Ballista re-runs a lost executor's tasks, but a stage whose shuffle output went
            // with it can fail the job; the job then runs again on the executors left.
            tracing::warn!("{e}: an executor was lost; running the job again");
            cluster_jobs_left -= 1;
        } else if e.is_hash_join_out_of_memory() && engine.prefer_hash_join {
            tracing::warn!(
                "a hash join ran out of memory (hash joins cannot spill); retrying with \
                 sort-merge joins, which can"
            );
            tracing::debug!("the hash join failed with: {e}");
            engine = engine.sort_merge();
        } else if let Some(mismatch) = cut_inside_a_record(&cuts, &engine, e).await {
            tracing::info!("{mismatch}: reading such files whole and running again");
            engine.split_at_checked_cuts = false;
        } else {
            break attempt;
        }
        if let Sink::Stage(staging) = sink {
            staging.clear_data().await?;
        }
        progress.set_position(0);
    };
    progress.finish_and_clear();
    let join_strategy = if engine.prefer_hash_join {
        JoinStrategy::Hash
    } else {
        JoinStrategy::SortMerge
    };
    attempt.map(|written| (written, join_strategy))
}

/// When a run that read files in byte ranges fails, whether one of them started inside a record:
/// its rows were then made up of the record's inside, and may be what failed the run
/// ([`UncheckedCuts`]). Not after an interrupt, nor for a cluster's job (its ranges are read on
/// the executors).
async fn cut_inside_a_record(
    cuts: &UncheckedCuts,
    engine: &EngineOptions,
    e: &Error,
) -> Option<SplitMismatch> {
    if !engine.split_at_checked_cuts
        || cuts.files() == 0
        || matches!(e, Error::Interrupted | Error::ClusterJob { .. })
    {
        return None;
    }
    tracing::debug!(
        "checking the cuts of {} file(s) read in byte ranges before reporting: {e}",
        cuts.files()
    );
    // A stop asked for during the check (a read of each file up to its last cut) ends it; the
    // run then stops as interrupted, not with the error it has not checked ([`crate::project`]).
    let check = interrupt::cancellable(async {
        crate::failpoint::hit("checking-cuts");
        Ok(cuts.mismatch().await?)
    });
    match check.await {
        Ok(found) => found,
        Err(check_failed) => {
            tracing::debug!("checking where files were cut: {check_failed}");
            None
        }
    }
}

async fn execute(
    mapping: &MappingFile,
    engine_options: &EngineOptions,
    stores: &Arc<StoreRegistry>,
    sink: Sink<'_>,
    options: &RunOptions,
    progress: &ProgressBar,
) -> Result<Written> {
    progress.set_message("planning: reading source schemas");
    let (ctx, plan, query, bad_record_log, logical) = interrupt::cancellable(async {
        let dataset_plan::Planned {
            ctx,
            frame,
            columns,
            bad_records,
        } = dataset_plan::plan(mapping, engine_options, Arc::clone(stores)).await?;
        // Optimized once, as create_physical_plan would: its scans' filters name the partitions
        // pruned (crate::partition_pruning).
        let (state, logical) = frame.into_parts();
        let logical = state.optimize(&logical)?;
        let physical = state
            .query_planner()
            .create_physical_plan(&logical, &state)
            .await?;
        let physical = engine::spread_over_threads(physical, engine_options.threads)?;
        Ok::<_, Error>((ctx, Arc::new(columns), physical, bad_records, logical))
    })
    .await?;
    let target = match sink {
        Sink::Stage(staging) => WriteTarget::Stage {
            dest: staging.dest.clone(),
            data_dir: staging.data_dir(),
            side_dir: staging.dir(),
            max_file_size: options.max_file_size,
            allow_empty: options.allow_empty,
        },
        Sink::Discard => WriteTarget::Discard,
    };
    let batch_options = BatchOptions {
        policy: options.on_invalid,
        insights: options.insights,
    };
    #[cfg(feature = "cluster")]
    if let Some(scheduler) = &options.cluster {
        let state = ctx.state();
        // The write stage's tasks report their rows as they end.
        let show = |rows| progress.set_position(rows);
        let planned = super::on_cluster::Planned {
            query,
            plan,
            options: batch_options,
            target,
            session: state.config(),
            progress: &show,
        };
        progress.set_message(format!("running on the cluster at {scheduler}"));
        let written = super::on_cluster::execute(scheduler, planned, stores, sink).await?;
        progress.set_position(written.tally.written);
        return Ok(written);
    }
    let node = Arc::new(WriteExec::new(
        Arc::clone(&query),
        Arc::clone(&plan),
        batch_options,
        target,
    ));
    let task_ctx = ctx.task_ctx();
    let mut partitions = JoinSet::new();
    for partition in 0..node.properties().output_partitioning().partition_count() {
        let stream = node.execute(partition, Arc::clone(&task_ctx))?;
        partitions.spawn(stream.collect::<Vec<_>>());
    }
    progress.set_message("running");
    let mut ticks = tokio::time::interval(PROGRESS_TICK);
    // Dropped where it stands on Ctrl-C; the partitions' tasks are then stopped below.
    let outcome: Result<WriteSummary> = interrupt::cancellable(async {
        let mut summary = WriteSummary::default();
        loop {
            tokio::select! {
                Some(joined) = partitions.join_next() => {
                    let batches = joined
                        .map_err(|e| Error::Internal(format!("a write task failed: {e}")))?;
                    for batch in batches {
                        summary.add(&batch?)?;
                    }
                }
                _ = ticks.tick(), if !partitions.is_empty() => {
                    progress.set_position(node.rows_written());
                }
                else => break,
            }
        }
        Ok(summary)
    })
    .await;
    let summary = match outcome {
        Ok(summary) => summary,
        Err(e) => {
            // Interrupted, the partitions stop at their next batch by themselves, so that none
            // is cut in the middle of completing a file (which would outlive the staging area);
            // those that do not within the grace period are aborted. After a failure no file is
            // completed (the failed partition never finishes), so they are aborted at once.
            let ended = match e {
                Error::Interrupted => tokio::time::timeout(STOP_GRACE, async {
                    while partitions.join_next().await.is_some() {}
                })
                .await
                .is_ok(),
                _ => false,
            };
            if !ended {
                partitions.abort_all();
                while partitions.join_next().await.is_some() {}
            }
            node.abort().await;
            return Err(e);
        }
    };
    progress.set_position(node.rows_written());
    let tally = node.tally();
    if let Sink::Stage(_) = sink {
        summary.check_parts_hold_every_row()?;
    }
    let bad_record_counts = bad_record_log.counts();
    if !summary.parts.is_empty() {
        crate::failpoint::hit("after-parts-written");
    }
    let mut flow = row_flow::measure(&query);
    // A report figure: a failed listing leaves it out, it does not fail a run whose parts exist.
    let state = ctx.state();
    match interrupt::cancellable(partition_pruning::measure(&state, &logical, &query)).await {
        Ok(pruned) => flow.pruned.extend(pruned.entries()),
        Err(Error::Interrupted) => return Err(Error::Interrupted),
        Err(e) => tracing::warn!("pruned partitions not reported: {e}"),
    }
    Ok(Written::new(
        plan,
        summary,
        tally,
        flow,
        bad_record_counts,
        None,
    ))
}

/// A spinner on stderr (drawn only when stderr is a terminal) with the stage and rows written.
fn progress_bar(options: &RunOptions, mapping: &MappingFile) -> ProgressBar {
    if !options.progress {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
    let template = format!(
        "{{spinner}} {{elapsed_precise}} {}: {{msg}}, {{human_pos}} rows written ({{per_sec}})",
        mapping.dataset
    );
    bar.set_style(
        ProgressStyle::with_template(&template)
            .unwrap_or_else(|_| ProgressStyle::default_spinner()),
    );
    let bar = match &options.progress_group {
        Some(group) => group.add(bar),
        None => bar,
    };
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}
