//! `pengine run`: one mapping file from sources to a published Personalize dataset.
//!
//! The final query's partitions are executed in parallel; each partition task converts, checks and
//! encodes its batches, and one writer rolls the encoded rows into parts in the staging area (a
//! bounded channel between them keeps memory bounded). Only a complete run is published.

use std::sync::Arc;
use std::time::Instant;

use datafusion::physical_plan::{ExecutionPlanProperties, SendableRecordBatchStream};
use futures::StreamExt;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::batch::{self, BatchOptions, InvalidPolicy, Tally};
use crate::engine::{self, EngineOptions};
use crate::error::{Error, Result};
use crate::insights;
use crate::interrupt;
use crate::mapping::MappingFile;
use crate::personalize::{ColumnPlan, avro};
use crate::report::{JoinStrategy, RowCounts, RunReport};
use crate::retries::RetryCounts;
use crate::row_flow::{self, RowFlow};
use crate::sink::Destination;
use crate::sink::csv_dialect::{self, EncodedRows};
use crate::sink::publish::{STAGED_BAD_RECORDS, STAGED_REJECTS, SideFiles};
use crate::sink::{PartInfo, PartRoller, Staging};
use crate::sources::bad_records::{self, BadRecordCounts, BadRecordLog};
use crate::store::{self, StoreRegistry};

/// The default output folder when neither `--output` nor an `output` directive is given.
pub const DEFAULT_OUTPUT: &str = "out";
/// The default part size limit.
pub const DEFAULT_MAX_FILE_SIZE: u64 = 256 * 1024 * 1024;

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Overrides the mapping file's `output` directive.
    pub output: Option<String>,
    pub max_file_size: u64,
    pub engine: EngineOptions,
    /// Draw a progress bar (only ever drawn when stderr is a terminal).
    pub progress: bool,
    /// What to do with rows that break a Personalize rule.
    pub on_invalid: InvalidPolicy,
    /// Gather dataset-level checks and insights (a little slower).
    pub insights: bool,
    /// Where progress bars go when several datasets run at once.
    pub progress_group: Option<MultiProgress>,
    /// Publish a query result without rows (else the run stops and the previous export stays).
    pub allow_empty: bool,
    /// Delete files in the data folder that pengine did not write (else the run stops).
    pub take_over: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            output: None,
            max_file_size: DEFAULT_MAX_FILE_SIZE,
            engine: EngineOptions::default(),
            progress: true,
            on_invalid: InvalidPolicy::Fail,
            insights: true,
            progress_group: None,
            allow_empty: false,
            take_over: false,
        }
    }
}

/// What one execution attempt produced in the staging area.
struct Written {
    plan: Arc<ColumnPlan>,
    parts: Vec<PartInfo>,
    /// Whether a rejects file was staged.
    rejects_file: bool,
    /// Source records that could not be read (`--on-bad-records skip`), staged as they came.
    bad_records: BadRecordCounts,
    /// CSV bytes produced, headers included (written, or counted when validating).
    bytes: u64,
    tally: Tally,
    /// The rows through the executed plan, measured.
    flow: RowFlow,
}

/// What a partition task sends to the writer.
enum Chunk {
    Rows(EncodedRows),
    Rejects(EncodedRows),
}

/// Where a mapping file's dataset goes, as given: `--output`, else its `output` directive, else
/// [`DEFAULT_OUTPUT`].
pub fn output_location(mapping: &MappingFile, options: &RunOptions) -> String {
    options
        .output
        .clone()
        .or_else(|| mapping.directives.output.clone())
        .unwrap_or_else(|| DEFAULT_OUTPUT.to_string())
}

/// An output location in one spelling (`out`, `./out/` and `/abs/out` are the same place), for
/// telling whether two datasets share an output.
pub fn same_place_key(output: &str) -> String {
    store::parse_location(output).map_or_else(|_| output.to_string(), |url| url.to_string())
}

/// The output location for a mapping file and options.
pub fn destination(
    mapping: &MappingFile,
    options: &RunOptions,
    stores: &StoreRegistry,
) -> Result<Destination> {
    let output = output_location(mapping, options);
    let url = store::parse_location(&output)?;
    let store = stores.store_for(&url)?;
    let local_root = if url.scheme() == "file" {
        let dir = url
            .to_file_path()
            .map_err(|_| Error::Config(format!("'{output}' is not a usable local folder")))?;
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
        Some(dir)
    } else {
        None
    };
    let root = object_store::path::Path::from_url_path(url.path())
        .map_err(|e| Error::Config(format!("output '{output}': {e}")))?;
    Ok(Destination {
        store,
        root,
        display: output.trim_end_matches('/').to_string(),
        local_root,
    })
}

/// Where a pass writes: a run's staging area, or nowhere (validation only counts).
#[derive(Clone, Copy)]
enum Sink<'a> {
    Stage(&'a Staging),
    Discard,
}

/// Runs one mapping file and publishes its dataset.
pub async fn run(mapping: &MappingFile, options: &RunOptions) -> Result<RunReport> {
    let staged = stage(mapping, options).await?;
    publish(staged, options, &[]).await
}

/// A staged dataset's id samples, for the cross-dataset checks of the datasets staged with it.
pub struct SiblingIds {
    dataset: crate::personalize::DatasetType,
    output: String,
    samples: Vec<(&'static str, insights::sampler::SampledCounter)>,
}

/// A mapping file executed into its staging area, not yet published.
pub struct Staged {
    mapping: MappingFile,
    dest: Destination,
    staging: Staging,
    written: Written,
    join_strategy: JoinStrategy,
    started: Instant,
    /// Time from the start to the end of execution (publication not included, so datasets
    /// published together each report their own time).
    wall: std::time::Duration,
    retries: Arc<RetryCounts>,
}

impl Staged {
    /// Removes what was staged, publishing nothing.
    pub async fn discard(self) {
        self.staging.discard().await;
    }

    pub fn ids(&self) -> SiblingIds {
        SiblingIds {
            dataset: self.mapping.dataset,
            output: same_place_key(&self.dest.display),
            samples: insights::cross::id_samples(self.mapping.dataset, &self.written.tally.stats),
        }
    }
}

/// Executes a mapping file into a new staging area (the previous export is untouched).
pub async fn stage(mapping: &MappingFile, options: &RunOptions) -> Result<Staged> {
    let started = Instant::now();
    let stores = Arc::new(StoreRegistry::new());
    let dest = destination(mapping, options, &stores)?;
    let mut options = options.clone();
    options.engine.output = Some(store::parse_location(&dest.display)?);
    let options = &options;
    let staging =
        interrupt::cancellable(Staging::begin(&dest, mapping.dataset, options.take_over)).await?;
    let executed = execute_with_fallback(mapping, options, &stores, Sink::Stage(&staging)).await;
    let executed = executed.and_then(|(written, join_strategy)| {
        check_balance(&written)?;
        refuse_empty(mapping, options, &dest, &written)?;
        Ok((written, join_strategy))
    });
    match executed {
        Ok((written, join_strategy)) => Ok(Staged {
            mapping: mapping.clone(),
            dest,
            staging,
            written,
            join_strategy,
            started,
            wall: started.elapsed(),
            retries: stores.retries(),
        }),
        Err(e) => {
            staging.discard().await;
            Err(e)
        }
    }
}

/// Stops a run whose counts do not add up (rows lost or invented between the query and the
/// writer): nothing of it is published.
fn check_balance(written: &Written) -> Result<()> {
    let counts = RowCounts::new(
        &written.flow,
        written.bad_records.total,
        written.tally.written,
        written.tally.rejected,
    );
    counts.balance().map_err(|e| {
        Error::Internal(format!(
            "the row counts do not add up, so nothing was published: {e}"
        ))
    })
}

/// An empty result is not published over an export unless asked for: a filter that matches
/// nothing, or an empty source folder, is a mistake far more often than a wish.
fn refuse_empty(
    mapping: &MappingFile,
    options: &RunOptions,
    dest: &Destination,
    written: &Written,
) -> Result<()> {
    if written.tally.written > 0 || options.allow_empty {
        return Ok(());
    }
    let mut counts = format!("{} rows read from the sources", written.flow.read);
    if written.tally.rejected > 0 {
        counts.push_str(&format!(
            ", {} rejected by the row checks",
            written.tally.rejected
        ));
    }
    if written.bad_records.total > 0 {
        counts.push_str(&format!(
            ", {} source records unreadable",
            written.bad_records.total
        ));
    }
    Err(Error::Empty(format!(
        "{}: the query returned no rows to publish ({counts}); nothing was published and the \
         previous export in {}/ is kept. Check the query's filters and the sources' LOCATION \
         (and --var values), or pass --allow-empty to publish an empty {} dataset on purpose",
        mapping.display_name(),
        dest.show(&dest.data_dir(mapping.dataset)),
        mapping.dataset
    )))
}

/// Checks a staged run across datasets, then commits and promotes it. `siblings` are the other
/// datasets staged by the same run: their ids are compared directly (other datasets' ids are
/// read from their last published export in the output).
pub async fn publish(
    staged: Staged,
    options: &RunOptions,
    siblings: &[SiblingIds],
) -> Result<RunReport> {
    let Staged {
        mapping,
        dest,
        staging,
        written,
        join_strategy,
        started,
        wall,
        retries,
    } = staged;
    let dataset = mapping.dataset;
    let prepared = interrupt::cancellable(async {
        let schema_text = avro::schema_text(&written.plan)?;
        let places = Places {
            run_id: staging.run_id.clone(),
            data_location: format!("{}/", dest.show(&dest.data_dir(dataset))),
            schema_file: Some(dest.show(&dest.schema_path(dataset))),
            report_file: Some(dest.show(&dest.report_path(dataset))),
            rejects_file: written
                .rejects_file
                .then(|| dest.show(&dest.rejects_path(dataset))),
            bad_records_file: (written.bad_records.total > 0)
                .then(|| dest.show(&dest.bad_records_path(dataset))),
        };
        let mut report = build_report(
            &mapping,
            options,
            &written,
            join_strategy,
            (started, wall),
            places,
        );
        report.storage_retries = retries.snapshot();
        let ids = if options.insights {
            cross_check(&dest, dataset, &written, siblings, &mut report).await?
        } else {
            Vec::new()
        };
        let ids: Vec<(&str, Vec<u8>)> = ids.iter().map(|(c, s)| (*c, s.to_bytes())).collect();
        let deletions = staging.deletions(&written.parts).await?;
        let data_dir = dest.data_dir(dataset);
        report.deleted_files = deletions
            .iter()
            .map(|name| dest.show(&data_dir.clone().join(name.as_str())))
            .collect();
        let report_text = serde_json::to_string_pretty(&report)
            .map_err(|e| Error::Internal(format!("report serialisation: {e}")))?;
        Ok::<_, Error>((report, ids, deletions, schema_text, report_text))
    })
    .await;
    let (mut report, ids, deletions, schema_text, report_text) = match prepared {
        Ok(prepared) => prepared,
        Err(e) => {
            staging.discard().await;
            return Err(e);
        }
    };
    staging
        .commit(
            &written.parts,
            deletions,
            SideFiles {
                rejects: written.rejects_file,
                bad_records: written.bad_records.total > 0,
            },
            &ids,
            &schema_text,
            &report_text,
        )
        .await?;
    // The printed report also counts the retries of the publication.
    report.storage_retries = retries.snapshot();
    Ok(report)
}

/// Runs a mapping file through every check without writing anything (`pengine validate`):
/// invalid rows are counted, not fatal. `location` names the data checked, for the report;
/// `data_bytes` is its size on storage (the import-size checks use it rather than the size
/// pengine's encoding of the rows would have).
pub async fn check_only(
    mapping: &MappingFile,
    options: &RunOptions,
    location: &str,
    data_bytes: u64,
) -> Result<RunReport> {
    let started = Instant::now();
    let stores = Arc::new(StoreRegistry::new());
    let options = RunOptions {
        on_invalid: InvalidPolicy::Skip,
        insights: true,
        ..options.clone()
    };
    let (mut written, join_strategy) =
        execute_with_fallback(mapping, &options, &stores, Sink::Discard).await?;
    check_balance(&written)?;
    written.bytes = data_bytes;
    let places = Places {
        run_id: String::new(),
        data_location: location.to_string(),
        schema_file: None,
        report_file: None,
        rejects_file: None,
        bad_records_file: None,
    };
    let mut report = build_report(
        mapping,
        &options,
        &written,
        join_strategy,
        (started, started.elapsed()),
        places,
    );
    report.storage_retries = stores.retries().snapshot();
    Ok(report)
}

/// Executes the mapping file, discarding what was written and running it again when a record
/// does not fit the JSON columns inferred from a sample (then inferred from every record), or
/// when a hash join runs out of memory (then with sort-merge joins). Returns what was written and
/// the join strategy.
async fn execute_with_fallback(
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

/// Compares this dataset's ids with the other datasets of the same output, adding the results
/// to the report: a sibling staged by the same run when there is one, else the other dataset's
/// last published export. Returns this dataset's id samples to keep.
async fn cross_check(
    dest: &Destination,
    dataset: crate::personalize::DatasetType,
    written: &Written,
    siblings: &[SiblingIds],
    report: &mut RunReport,
) -> Result<Vec<(&'static str, insights::sampler::SampledCounter)>> {
    use insights::cross::{PAIRS, compare, id_samples};
    use insights::sampler::SampledCounter;
    let own = id_samples(dataset, &written.tally.stats);
    let Some(checks) = report.checks.as_mut() else {
        return Ok(own);
    };
    let place = same_place_key(&dest.display);
    for &(interactions, entities, column) in PAIRS {
        let Some((_, mine)) = own.iter().find(|(c, _)| *c == column) else {
            continue;
        };
        let other = if dataset == interactions {
            entities
        } else if dataset == entities {
            interactions
        } else {
            continue;
        };
        let sibling = siblings
            .iter()
            .filter(|s| s.dataset == other && s.output == place)
            .flat_map(|s| &s.samples)
            .find(|(c, _)| *c == column)
            .map(|(_, sample)| sample.clone());
        let theirs = match sibling {
            Some(sample) => sample,
            None => {
                let Some(bytes) = dest.read_ids(other, column).await? else {
                    continue;
                };
                let Some(sample) = SampledCounter::from_bytes(&bytes) else {
                    tracing::warn!(
                        "the id sample of {other} is unreadable; skipping the cross-dataset check"
                    );
                    continue;
                };
                sample
            }
        };
        let (check, findings) = if dataset == interactions {
            compare((interactions, entities, column), mine, &theirs)
        } else {
            compare((interactions, entities, column), &theirs, mine)
        };
        checks.cross_dataset.push(check);
        checks.findings.extend(findings);
    }
    Ok(own)
}

/// Where a report says things are.
struct Places {
    run_id: String,
    data_location: String,
    schema_file: Option<String>,
    report_file: Option<String>,
    rejects_file: Option<String>,
    bad_records_file: Option<String>,
}

fn build_report(
    mapping: &MappingFile,
    options: &RunOptions,
    written: &Written,
    join_strategy: JoinStrategy,
    (started, wall): (Instant, std::time::Duration),
    places: Places,
) -> RunReport {
    let started_at =
        chrono::Utc::now() - chrono::Duration::milliseconds(started.elapsed().as_millis() as i64);
    let wall = wall.as_secs_f64();
    let tally = &written.tally;
    RunReport {
        pengine_version: env!("CARGO_PKG_VERSION"),
        dataset: mapping.dataset,
        mapping_file: mapping.display_name(),
        run_id: places.run_id,
        started_at: started_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        data_location: places.data_location,
        schema_file: places.schema_file,
        report_file: places.report_file,
        wall_seconds: wall,
        rows: RowCounts::new(
            &written.flow,
            written.bad_records.total,
            tally.written,
            tally.rejected,
        ),
        bad_records: written.bad_records.clone(),
        bad_records_file: places.bad_records_file,
        on_bad_records: options.engine.on_bad_records,
        rejected_by_rule: tally
            .rejected_by_rule
            .iter()
            .map(|(rule, n)| (rule.key().to_string(), *n))
            .collect(),
        reject_examples: tally.examples.clone(),
        rejects_file: places.rejects_file,
        on_invalid: options.on_invalid,
        rows_per_second: if wall > 0.0 {
            tally.written as f64 / wall
        } else {
            0.0
        },
        bytes_written: written.bytes,
        files: written.parts.clone(),
        line_breaks_replaced: written
            .plan
            .columns
            .iter()
            .zip(&tally.changes.line_breaks_replaced)
            .map(|(c, n)| (c.name.clone(), *n))
            .collect(),
        columns: written.plan.columns.clone(),
        schema: avro::schema_value(&written.plan),
        join_strategy,
        storage_retries: Default::default(),
        deleted_files: Vec::new(),
        checks: options
            .insights
            .then(|| insights::findings::evaluate(&written.plan, &tally.stats, written.bytes)),
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
