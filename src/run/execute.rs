//! Executing a mapping file's plan into the staging area: the final query's partitions run in
//! parallel, each converting, checking and encoding its batches, and one writer rolls the encoded
//! rows into parts (a bounded channel between them keeps memory bounded). An attempt that fails
//! in a way another plan avoids (a record the sampled JSON columns do not cover, a hash join out
//! of memory) is discarded and run again.

use std::sync::Arc;

use datafusion::physical_plan::{ExecutionPlanProperties, SendableRecordBatchStream};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::RunOptions;
use crate::batch::{self, BatchOptions, Tally};
use crate::engine::{self, EngineOptions};
use crate::error::{Error, Result};
use crate::interrupt;
use crate::mapping::MappingFile;
use crate::personalize::ColumnPlan;
use crate::report::JoinStrategy;
use crate::row_flow::{self, RowFlow};
use crate::sink::csv_dialect::{self, EncodedRows};
use crate::sink::publish::{STAGED_BAD_RECORDS, STAGED_REJECTS};
use crate::sink::{PartInfo, PartRoller, Staging};
use crate::sources::bad_records::{self, BadRecordCounts, BadRecordLog};
use crate::store::StoreRegistry;

/// What one execution attempt produced in the staging area.
pub(super) struct Written {
    pub(super) plan: Arc<ColumnPlan>,
    pub(super) parts: Vec<PartInfo>,
    /// Whether a rejects file was staged.
    pub(super) rejects_file: bool,
    /// Source records that could not be read (`--on-bad-records skip`), staged as they came.
    pub(super) bad_records: BadRecordCounts,
    /// CSV bytes produced, headers included (written, or counted when validating).
    pub(super) bytes: u64,
    pub(super) tally: Tally,
    /// The rows through the executed plan, measured.
    pub(super) flow: RowFlow,
}

/// What a partition task sends to the writer.
enum Chunk {
    Rows(EncodedRows),
    Rejects(EncodedRows),
}

/// Where a pass writes: a run's staging area, or nowhere (validation only counts).
#[derive(Clone, Copy)]
pub(super) enum Sink<'a> {
    Stage(&'a Staging),
    Discard,
}

/// Executes the mapping file, discarding what was written and running it again when a record
/// does not fit the JSON columns inferred from a sample (then inferred from every record), or
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
    // JSON columns from a sample first: one pass over the export when every record fits it.
    engine.sampled_inference = true;
    let attempt = loop {
        let attempt = execute(mapping, &engine, stores, sink, options, &progress).await;
        let Err(e) = &attempt else {
            break attempt;
        };
        if let Some(misfit) = crate::sources::json::fit::find_misfit(e)
            && engine.sampled_inference
        {
            tracing::info!(
                "{misfit}: inferring the JSON columns from every record and running again"
            );
            engine.sampled_inference = false;
        } else if e.is_hash_join_out_of_memory() && engine.prefer_hash_join {
            tracing::warn!(
                "a hash join ran out of memory (hash joins cannot spill); retrying with \
                 sort-merge joins, which can"
            );
            tracing::debug!("the hash join failed with: {e}");
            engine = engine.sort_merge();
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

async fn execute(
    mapping: &MappingFile,
    engine_options: &EngineOptions,
    stores: &Arc<StoreRegistry>,
    sink: Sink<'_>,
    options: &RunOptions,
    progress: &ProgressBar,
) -> Result<Written> {
    progress.set_message("planning: reading source schemas");
    let (ctx, plan, physical, bad_record_log) = interrupt::cancellable(async {
        let engine::Planned {
            ctx,
            frame,
            columns,
            bad_records,
        } = engine::plan(mapping, engine_options, Arc::clone(stores)).await?;
        let physical = frame.create_physical_plan().await?;
        let physical = engine::spread_over_threads(physical, engine_options.threads)?;
        Ok::<_, Error>((ctx, Arc::new(columns), physical, bad_records))
    })
    .await?;
    let task_ctx = ctx.task_ctx();
    let partitions = physical.output_partitioning().partition_count();

    let (sender, mut receiver) = mpsc::channel::<Chunk>(partitions.max(1) * 2);
    let mut encoders = JoinSet::new();
    for partition in 0..partitions {
        let stream = physical.execute(partition, Arc::clone(&task_ctx))?;
        encoders.spawn(encode_partition(
            stream,
            Arc::clone(&plan),
            BatchOptions {
                policy: options.on_invalid,
                insights: options.insights,
            },
            sender.clone(),
        ));
    }
    drop(sender);

    let header = csv_dialect::header(plan.names());
    let (mut roller, mut rejects, mut bad_records) = match sink {
        Sink::Stage(staging) => (
            Some(PartRoller::new(
                &staging.dest,
                staging.data_dir(),
                header.clone(),
                options.max_file_size,
            )),
            Some(PartRoller::single_file(
                &staging.dest,
                staging.dir(),
                STAGED_REJECTS,
                batch::rejects_header(&plan),
            )),
            Some(PartRoller::single_file(
                &staging.dest,
                staging.dir(),
                STAGED_BAD_RECORDS,
                Vec::new(),
            )),
        ),
        Sink::Discard => (None, None, None),
    };
    let mut rejects_written = false;
    progress.set_message("running");
    let mut tally = Tally::new(&plan);
    // Dropped where it stands on Ctrl-C; the writers it borrows are then aborted below.
    let outcome: Result<Vec<PartInfo>> = interrupt::cancellable(async {
        loop {
            tokio::select! {
                Some(chunk) = receiver.recv() => match chunk {
                    Chunk::Rows(encoded) => {
                        if let Some(roller) = roller.as_mut() {
                            roller.write(&encoded).await?;
                        }
                        progress.inc(encoded.row_ends.len() as u64);
                    }
                    Chunk::Rejects(encoded) => {
                        if let Some(rejects) = rejects.as_mut() {
                            rejects.write(&encoded).await?;
                        }
                        rejects_written = true;
                    }
                },
                Some(joined) = encoders.join_next() => {
                    let partition = joined
                        .map_err(|e| Error::Internal(format!("encoder task failed: {e}")))??;
                    tally.add(&partition);
                }
                // While sources are read (a pending wait would keep the loop from ending).
                _ = bad_record_log.many_pending(), if !encoders.is_empty() => {
                    write_bad_records(&bad_record_log, bad_records.as_mut()).await?;
                }
                else => break,
            }
        }
        write_bad_records(&bad_record_log, bad_records.as_mut()).await?;
        let parts = match roller.as_mut() {
            Some(roller) if options.allow_empty => roller.finish_at_least_one().await?,
            Some(roller) => roller.finish().await?,
            None => Vec::new(),
        };
        for side_file in [&mut rejects, &mut bad_records].into_iter().flatten() {
            side_file.finish().await?;
        }
        Ok(parts)
    })
    .await;
    let parts = match outcome {
        Ok(parts) => parts,
        Err(e) => {
            encoders.abort_all();
            for writer in [&mut roller, &mut rejects, &mut bad_records]
                .into_iter()
                .flatten()
            {
                writer.abort().await;
            }
            return Err(e);
        }
    };
    let bad_record_counts = bad_record_log.counts();
    if !parts.is_empty() {
        crate::failpoint::hit("after-parts-written");
    }
    // Every part repeats the header; validation counts one, as for a single file.
    let bytes = tally.row_bytes + header.len() as u64 * parts.len().max(1) as u64;
    Ok(Written {
        plan,
        bytes,
        parts,
        rejects_file: rejects_written,
        tally,
        flow: row_flow::measure(&physical),
        bad_records: bad_record_counts,
    })
}

/// Appends the bad records noted so far to the staged bad-records file.
async fn write_bad_records(log: &BadRecordLog, file: Option<&mut PartRoller>) -> Result<()> {
    let pending = log.take_pending();
    let Some(file) = file else {
        return Ok(());
    };
    if pending.is_empty() {
        return Ok(());
    }
    let mut lines = EncodedRows::default();
    for bad in &pending {
        lines.bytes.extend(bad_records::to_json_line(bad));
        lines.row_ends.push(lines.bytes.len());
    }
    file.write(&lines).await
}

/// Converts, checks and encodes one partition's batches.
async fn encode_partition(
    mut stream: SendableRecordBatchStream,
    plan: Arc<ColumnPlan>,
    options: BatchOptions,
    sender: mpsc::Sender<Chunk>,
) -> Result<Tally> {
    let mut tally = Tally::new(&plan);
    let mut lose_a_batch = crate::failpoint::armed_for("lose-a-batch");
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        if batch.num_rows() == 0 {
            continue;
        }
        if std::mem::take(&mut lose_a_batch) {
            continue;
        }
        let encoded = batch::process(&plan, &batch, options, &mut tally)?;
        let mut chunks = vec![Chunk::Rows(encoded.rows)];
        chunks.extend(encoded.rejects.map(Chunk::Rejects));
        for chunk in chunks {
            if sender.send(chunk).await.is_err() {
                // The writer stopped (it failed); its error is the one reported.
                return Ok(tally);
            }
        }
    }
    Ok(tally)
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
