//! `pengine run`: one mapping file from sources to a published Personalize dataset.
//!
//! A run stages the dataset ([`execute`]: the query's partitions in parallel into parts in a
//! staging area), checks it (row balance, an empty result, the datasets staged with it), and
//! publishes it: only a complete run is published.

use std::sync::Arc;
use std::time::Instant;

use indicatif::MultiProgress;

use crate::batch::InvalidPolicy;
use crate::engine::EngineOptions;
use crate::error::{Error, Result};
use crate::insights;
use crate::interrupt;
use crate::mapping::MappingFile;
use crate::personalize::avro;
use crate::report::IncrementReport;
use crate::report::{JoinStrategy, RowCounts, RunReport};
use crate::retries::RetryCounts;
use crate::sink::Destination;
use crate::sink::Staging;
use crate::sink::publish::pointer::RunKind;
use crate::sink::publish::{PublishOptions, SideFiles};
use crate::store::{self, StoreRegistry};
use execute::{Sink, Written, execute_with_fallback};
use increment::OnChanged;

mod execute;
pub(crate) mod increment;
#[cfg(feature = "cluster")]
mod on_cluster;
mod written;

/// The default output folder when neither `--output` nor an `output` directive is given.
pub(crate) const DEFAULT_OUTPUT: &str = "out";
/// The default part size limit.
pub(crate) const DEFAULT_MAX_FILE_SIZE: u64 = 256 * 1024 * 1024;

#[derive(Debug, Clone)]
pub(crate) struct RunOptions {
    /// Overrides the mapping file's `output` directive.
    pub(crate) output: Option<String>,
    pub(crate) max_file_size: u64,
    pub(crate) engine: EngineOptions,
    /// Draw a progress bar (only ever drawn when stderr is a terminal).
    pub(crate) progress: bool,
    /// What to do with rows that break a Personalize rule.
    pub(crate) on_invalid: InvalidPolicy,
    /// Gather dataset-level checks and insights (a little slower).
    pub(crate) insights: bool,
    /// Where progress bars go when several datasets run at once.
    pub(crate) progress_group: Option<MultiProgress>,
    /// Publish a query result without rows (else the run stops and the previous export stays).
    pub(crate) allow_empty: bool,
    /// Delete files in the data folder that pengine did not write (else the run stops).
    pub(crate) take_over: bool,
    /// Earlier versions of each dataset kept after a commit (`--keep-previous`).
    pub(crate) keep_previous: usize,
    /// Convert only the new files of the incremental tables (`--incremental`).
    pub(crate) incremental: bool,
    /// What to do with a file converted before that changed since.
    pub(crate) on_changed: OnChanged,
    /// The Ballista scheduler (`host:port`) to run on, instead of this process.
    pub(crate) cluster: Option<String>,
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
            keep_previous: 1,
            incremental: false,
            on_changed: OnChanged::Fail,
            cluster: None,
        }
    }
}

/// Where a mapping file's dataset goes, as given: `--output`, else its `output` directive, else
/// [`DEFAULT_OUTPUT`].
pub(crate) fn output_location(mapping: &MappingFile, options: &RunOptions) -> String {
    options
        .output
        .clone()
        .or_else(|| mapping.directives.output.clone())
        .unwrap_or_else(|| DEFAULT_OUTPUT.to_string())
}

/// An output location in one spelling (`out`, `./out/` and `/abs/out` are the same place), for
/// telling whether two datasets share an output.
pub(crate) fn same_place_key(output: &str) -> String {
    store::parse_location(output).map_or_else(|_| output.to_string(), |url| url.to_string())
}

/// The output location for a mapping file and options.
pub(crate) fn destination(
    mapping: &MappingFile,
    options: &RunOptions,
    stores: &StoreRegistry,
) -> Result<Destination> {
    let output = output_location(mapping, options);
    let url = store::parse_location(&output)?;
    // Publication relies on how a store copies and lists; GCS writes cannot be tested here (no
    // emulator takes object_store's XML-API writes), so they are not offered.
    if url.scheme() == "gs" {
        return Err(Error::Config(format!(
            "output '{output}': gs:// is a source only; pengine does not write to GCS. Write to a \
             local folder (or s3:// or az://) and copy the dataset folder, e.g. `gcloud storage \
             cp -r`"
        )));
    }
    Destination::at(&url, &output, stores)
}

/// A staged dataset's id samples, for the cross-dataset checks of the datasets staged with it.
pub(crate) struct SiblingIds {
    dataset: crate::personalize::DatasetType,
    output: String,
    samples: Vec<(&'static str, insights::sampler::SampledCounter)>,
}

/// A mapping file executed into its staging area, not yet published.
pub(crate) struct Staged {
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
    /// What an incremental mapping file's run converted.
    increment: Option<IncrementReport>,
}

impl Staged {
    /// Removes what was staged, publishing nothing.
    pub(crate) async fn discard(self) {
        self.staging.discard().await;
    }

    pub(crate) fn ids(&self) -> SiblingIds {
        SiblingIds {
            dataset: self.mapping.dataset,
            output: same_place_key(&self.dest.display),
            samples: insights::cross::id_samples(self.mapping.dataset, &self.written.tally.stats),
        }
    }
}

/// Executes a mapping file into a new staging area (the previous export is untouched).
pub(crate) async fn stage(mapping: &MappingFile, options: &RunOptions) -> Result<Staged> {
    let started = Instant::now();
    let stores = Arc::new(StoreRegistry::new());
    let dest = destination(mapping, options, &stores)?;
    let mut options = options.clone();
    options.engine.output = Some(store::parse_location(&dest.display)?);
    let publish_options = PublishOptions {
        take_over: options.take_over,
        keep_previous: options.keep_previous,
        kind: RunKind::Full,
    };
    let mut staging =
        interrupt::cancellable(Staging::begin(&dest, mapping.dataset, publish_options)).await?;
    let increment =
        match interrupt::cancellable(plan_increment(mapping, &mut options, &stores, &mut staging))
            .await
        {
            Ok(increment) => increment,
            Err(e) => {
                staging.discard().await;
                return Err(e);
            }
        };
    let options = &options;
    let executed = execute_with_fallback(mapping, options, &stores, Sink::Stage(&staging))
        .await
        .map_err(|e| increment::explain_failure(e, increment.as_ref()));
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
            increment,
        }),
        Err(e) => {
            staging.discard().await;
            Err(e)
        }
    }
}

/// For a mapping file with incremental tables: chooses the files the run reads, makes the run an
/// increment when it converts only new ones (with parts small enough for an incremental import),
/// and keeps the record of converted files in its snapshot.
async fn plan_increment(
    mapping: &MappingFile,
    options: &mut RunOptions,
    stores: &Arc<StoreRegistry>,
    staging: &mut Staging,
) -> Result<Option<IncrementReport>> {
    let plan = increment::prepare(
        mapping,
        &options.engine,
        stores,
        staging,
        options.incremental,
        options.on_changed,
    )
    .await?;
    let Some(plan) = plan else {
        return Ok(None);
    };
    if plan.kind == RunKind::Increment {
        staging.make_increment()?;
        options.max_file_size = options
            .max_file_size
            .min(increment::INCREMENT_PART_MAX_BYTES);
    }
    staging.keep_file(increment::STATE_FILE, plan.state_bytes()?);
    options.engine.selection = Some(Arc::clone(&plan.selection));
    Ok(Some(plan.report))
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
pub(crate) async fn publish(
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
        increment,
    } = staged;
    let dataset = mapping.dataset;
    let prepared = interrupt::cancellable(async {
        let schema_text = avro::schema_text(&written.plan)?;
        let places = Places {
            run_id: staging.run_id.clone(),
            data_location: staging.data_location(),
            current_file: Some(dest.show(&dest.current_path(dataset))),
            mirror_location: Some(format!("{}/", dest.show(&dest.data_dir(dataset)))),
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
        report.increment = increment;
        if staging.kind() == RunKind::Increment {
            same_schema_as_the_dataset(&staging, &schema_text).await?;
        }
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

/// An increment is imported into the dataset its chain began with: its columns must be the
/// same (Personalize cannot change a dataset's schema, and the CSV header must match it).
async fn same_schema_as_the_dataset(staging: &Staging, schema_text: &str) -> Result<()> {
    let Some(base) = staging.before().map(|b| &b.chain[0]) else {
        return Ok(());
    };
    let dest = &staging.dest;
    let path = dest
        .snapshot_dir(staging.dataset, &base.run_id)
        .join(crate::sink::publish::STAGED_SCHEMA);
    let Some(base_schema) = dest.read_optional(&path).await? else {
        return Err(Error::Destination(format!(
            "{} is missing: the dataset's snapshot was changed by hand. Re-run with --full",
            dest.show(&path)
        )));
    };
    let parse = |text: &[u8]| serde_json::from_slice::<serde_json::Value>(text).ok();
    if parse(&base_schema) == parse(schema_text.as_bytes()) {
        return Ok(());
    }
    Err(Error::Data(format!(
        "the new files give the {} dataset other columns or types than its snapshot {} has          (compare {} with this run's schema): an increment must have the dataset's schema.          Declare the columns in the mapping file's CREATE EXTERNAL TABLE (so that new files          alone give the same ones), or re-run with --full",
        staging.dataset,
        base.run_id,
        dest.show(&path)
    )))
}

/// Runs a mapping file through every check without writing anything (`pengine validate`):
/// invalid rows are counted, not fatal. `location` names the data checked, for the report;
/// `data_bytes` is its size on storage (the import-size checks use it rather than the size
/// pengine's encoding of the rows would have).
pub(crate) async fn check_only(
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
        current_file: None,
        mirror_location: None,
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
    current_file: Option<String>,
    mirror_location: Option<String>,
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
        current_file: places.current_file,
        increment: None,
        mirror_location: places.mirror_location,
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
        cluster: written.cluster.clone(),
    }
}
