//! The DataFusion session pengine runs a mapping file in: memory pool and spilling, parallelism,
//! recursive listing, pengine's source factories, and the statements of the mapping file.

use std::sync::Arc;

use datafusion::dataframe::DataFrame;
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::SQLOptions;
use datafusion::execution::disk_manager::{DiskManagerBuilder, DiskManagerMode};
use datafusion::execution::memory_pool::MemoryPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::physical_expr::Partitioning;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::distinct::DistinctRule;
use crate::error::{Error, Result};
use crate::iso_timestamps::IsoTimestampRule;
use crate::mapping::MappingFile;
use crate::memory::{SharedMemory, SpillCapPool};
use crate::sources::SourceTableFactory;
use crate::sources::bad_records::{BadRecordLog, BadRecordPolicy};
use crate::sources::database::{DATABASE_FORMATS, DatabaseTableFactory};
use crate::sources::exclude::Exclusions;
use crate::sources::factory::{FORMATS, RunOutput};
use crate::sources::listing::{SkippedFiles, SourceStores};
use crate::sources::sampled::SampledInference;
use crate::sources::selection::SourceSelection;
use crate::sources::split::FilesReadWhole;
use crate::sources::unchecked_cuts::UncheckedCuts;
use crate::store::StoreRegistry;

/// How the engine may use the machine.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Bytes DataFusion's operators may hold before spilling (None: no limit).
    pub memory_limit: Option<u64>,
    /// Parallel partitions (default: [`default_partitions`]).
    pub threads: usize,
    pub batch_size: usize,
    /// Use hash joins (fast, cannot spill); false plans sort-merge joins, which can.
    pub prefer_hash_join: bool,
    /// Folder for spill files (default: the system temporary folder).
    pub spill_dir: Option<std::path::PathBuf>,
    /// The pool this session draws from when datasets run together (see [`SharedMemory`]);
    /// None: a pool of `memory_limit` of its own.
    pub shared_memory: Option<SharedMemory>,
    /// What the sources' readers do with a record they cannot read.
    pub on_bad_records: BadRecordPolicy,
    /// The output of the run, when planning one: never read as a source, nor a source inside it.
    pub output: Option<url::Url>,
    /// JSON and CSV sources infer their columns from a sample, and the scan checks the other
    /// records fit them ([`crate::sources::sampled`]): a run's first attempt.
    pub sampled_inference: bool,
    /// The files an incremental run reads of its incremental tables (None: every file).
    pub selection: Option<Arc<SourceSelection>>,
    /// Large CSV and back-to-back JSON files may be read in byte ranges whose cuts the scan
    /// checks ([`crate::sources::split`]); off for a run's attempt after a cut fell inside a
    /// record.
    pub split_at_checked_cuts: bool,
    /// Where this attempt's byte ranges note their cuts, for a failed run to check
    /// ([`UncheckedCuts`]).
    pub unchecked_cuts: Option<Arc<UncheckedCuts>>,
}

/// The memory pool when none is given: bounded, so a large export spills instead of growing the
/// process, and 128 MiB under 512 MiB, because the process holds up to 75 MiB beyond a full pool
/// at 100M events (benches/README.md, "Defaults, measured").
pub const DEFAULT_MEMORY_LIMIT: u64 = 384 * 1024 * 1024;

/// The smallest `--memory-limit` accepted: below it a sort of a few partitions' batches cannot
/// hold its inputs (an ORDER BY of 200k events on 3 partitions fails at 8 MiB and runs at 16 MiB),
/// and the process needs far more than that anyway.
pub const MIN_MEMORY_LIMIT: u64 = 16 * 1024 * 1024;

/// Partitions when none are asked for: one more than the cores, so a core whose partition waits
/// (a file read, an exchange) takes up the spare one's work (benches/README.md, "Defaults,
/// measured").
pub fn default_partitions() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get()) + 1
}

impl Default for EngineOptions {
    fn default() -> Self {
        Self {
            memory_limit: Some(DEFAULT_MEMORY_LIMIT),
            threads: default_partitions(),
            batch_size: DEFAULT_BATCH_ROWS,
            prefer_hash_join: true,
            spill_dir: None,
            shared_memory: None,
            on_bad_records: BadRecordPolicy::Fail,
            output: None,
            sampled_inference: false,
            selection: None,
            split_at_checked_cuts: true,
            unchecked_cuts: None,
        }
    }
}

/// Rows per batch: DataFusion's default, a batch of a few columns stays within the caches.
const DEFAULT_BATCH_ROWS: usize = 8192;

/// Batch rows in sort-merge mode: spilled sorts merge one batch per spill file at a time, and
/// small batches keep that merge within the pool.
const SORT_MERGE_BATCH_SIZE: usize = 1024;

impl EngineOptions {
    /// The same options planning sort-merge joins, which can spill (a hash join cannot). The
    /// session then also caps every spillable consumer (see [`SpillCapPool`]) and uses small
    /// batches, so both sorts of a join fit the pool.
    pub fn sort_merge(&self) -> Self {
        Self {
            prefer_hash_join: false,
            batch_size: self.batch_size.min(SORT_MERGE_BATCH_SIZE),
            ..self.clone()
        }
    }
}

/// Largest build side (bytes of its files, as DataFusion estimates) of a hash join collected once
/// for all partitions; also at most an eighth of the memory limit.
const BROADCAST_JOIN_MAX_BYTES: usize = 128 * 1024 * 1024;
/// Largest build side in rows (estimated) collected once for all partitions.
const BROADCAST_JOIN_MAX_ROWS: usize = 4_000_000;

/// The final plan, its batches dealt round robin to `threads` partitions unless it has an order
/// to keep. A source's partitions are not always even: one Parquet row group or one CSV file is
/// read by one task, and the work on each batch after the query (conversion, checks, insights,
/// CSV encoding) would then run on that task's core alone. An ORDER BY keeps its single sorted
/// partition. A plan already over every thread gets the exchange too, so the write stage runs
/// beside the operator that feeds it (benches/README.md, "Defaults, measured").
pub fn spread_over_threads(
    plan: Arc<dyn ExecutionPlan>,
    threads: usize,
) -> Result<Arc<dyn ExecutionPlan>> {
    if threads <= 1 || plan.output_ordering().is_some() {
        return Ok(plan);
    }
    Ok(Arc::new(RepartitionExec::try_new(
        plan,
        Partitioning::RoundRobinBatch(threads),
    )?))
}

/// A session configured for pengine; `label` names it in memory errors (the dataset).
pub fn session(
    options: &EngineOptions,
    stores: Arc<StoreRegistry>,
    label: &str,
) -> Result<SessionContext> {
    let skipped = Arc::new(SkippedFiles::default());
    let exclusions = Arc::new(Exclusions::default());
    // The pool first: a small share runs on fewer partitions (see [`SharedMemory::partitions`]).
    let shared = options.memory_limit.map(|limit| {
        options
            .shared_memory
            .clone()
            .unwrap_or_else(|| SharedMemory::new(limit as usize))
    });
    let partitions = shared
        .as_ref()
        .map_or(options.threads.max(1), |s| s.partitions(options.threads));
    let mut config = SessionConfig::new()
        .with_target_partitions(partitions)
        .with_batch_size(options.batch_size)
        .with_information_schema(true)
        .with_extension(Arc::new(BadRecordLog::new(options.on_bad_records)))
        .with_extension(Arc::clone(&skipped))
        .with_extension(Arc::clone(&exclusions));
    if let Some(output) = &options.output {
        config = config.with_extension(Arc::new(RunOutput(output.clone())));
    }
    if options.sampled_inference {
        config = config.with_extension(Arc::new(SampledInference::default()));
    }
    if let Some(cuts) = &options.unchecked_cuts {
        config = config.with_extension(Arc::clone(cuts));
    }
    if !options.split_at_checked_cuts {
        config = config.with_extension(Arc::new(FilesReadWhole));
    }
    let settings = config.options_mut();
    settings.execution.listing_table_ignore_subdirectory = false;
    settings.execution.listing_table_factory_infer_partitions = true;
    // File sizes (and Parquet footers) let the planner build hash joins on the smaller side.
    settings.execution.collect_statistics = true;
    settings.optimizer.prefer_hash_join = options.prefer_hash_join;
    // A catalog of up to hundreds of thousands of rows is built once and shared by every
    // partition (DataFusion's defaults, 1 MiB / 128k rows, hash-partition both sides instead: a
    // shuffle of every event). Bounded by the pool: the build side is held whole.
    let broadcast_bytes = options
        .memory_limit
        .map_or(BROADCAST_JOIN_MAX_BYTES, |limit| (limit / 8) as usize)
        .min(BROADCAST_JOIN_MAX_BYTES);
    settings.optimizer.hash_join_single_partition_threshold = broadcast_bytes;
    settings.optimizer.hash_join_single_partition_threshold_rows = BROADCAST_JOIN_MAX_ROWS;
    if let Some(shared) = &shared {
        // Each sort reserves this much for its merge phase up front (and a join has two sorts
        // per partition): keep the sum a fraction of the dataset's share of a small pool.
        let per_sort = (shared.share() / (16 * partitions)) as u64;
        let reservation = per_sort.min(settings.execution.sort_spill_reservation_bytes as u64);
        settings.execution.sort_spill_reservation_bytes = reservation as usize;
    }

    let sources = SourceStores::new(
        stores,
        skipped,
        options.output.clone(),
        options.selection.clone(),
        exclusions,
    );
    let mut runtime = RuntimeEnvBuilder::new().with_object_store_registry(Arc::new(sources));
    if let Some(shared) = shared {
        let share = shared.dataset_pool(label);
        let pool: Arc<dyn MemoryPool> = if options.prefer_hash_join {
            Arc::new(share)
        } else {
            // Sort-merge joins: two sorts per partition, each capped so both sides fit.
            let cap = shared.limit() / (4 * partitions);
            Arc::new(SpillCapPool::new(share, cap))
        };
        runtime = runtime.with_memory_pool(pool);
    }
    let disk = match &options.spill_dir {
        Some(dir) => {
            DiskManagerBuilder::default().with_mode(DiskManagerMode::Directories(vec![dir.clone()]))
        }
        None => DiskManagerBuilder::default().with_mode(DiskManagerMode::OsTmpDirectory),
    };
    runtime = runtime.with_disk_manager_builder(disk);
    let runtime = runtime.build_arc()?;

    let mut state = SessionStateBuilder::new()
        .with_config(config)
        .with_runtime_env(runtime)
        .with_default_features()
        .with_physical_optimizer_rule(Arc::new(DistinctRule))
        .with_physical_optimizer_rule(Arc::new(IsoTimestampRule))
        .build();
    let factory = Arc::new(SourceTableFactory);
    for format in FORMATS {
        state
            .table_factories_mut()
            .insert((*format).to_string(), factory.clone());
    }
    let databases = Arc::new(DatabaseTableFactory::default());
    for format in DATABASE_FORMATS {
        state
            .table_factories_mut()
            .insert((*format).to_string(), databases.clone());
    }
    Ok(SessionContext::new_with_state(state))
}

/// The files a table's LOCATION holds, as its listing table reads them (recursively, without
/// hidden files or pengine's outputs, and without the files `options.selection` leaves out).
pub async fn list_table_files(
    options: &EngineOptions,
    stores: Arc<StoreRegistry>,
    table: &crate::mapping::ExternalTable,
) -> Result<TableFiles> {
    use datafusion::datasource::listing::ListingTableUrl;
    use futures::TryStreamExt;
    let ctx = session(options, stores, &table.name)?;
    let url = ListingTableUrl::parse(&table.location)?;
    let store = ctx.runtime_env().object_store(&url)?;
    if let Some(value) = &table.exclude {
        // The names the table leaves out are not among its files here either.
        Exclusions::register(ctx.state().config(), &url, value)
            .map_err(|e| Error::Config(format!("table {}: {e}", table.name)))?;
    }
    let extension = crate::sources::factory::file_extension(&table.format, &url);
    let state = ctx.state();
    let files = url
        .list_all_files(&state, store.as_ref(), extension)
        .await?
        .try_collect()
        .await?;
    let store_url = url::Url::parse(url.object_store().as_str())
        .map_err(|e| Error::Internal(format!("store of {}: {e}", table.location)))?;
    Ok(TableFiles {
        store: store_url,
        prefix: url.prefix().clone(),
        files,
    })
}

/// What [`list_table_files`] found.
pub struct TableFiles {
    /// The store's URL (`s3://bucket/`, `file:///`).
    pub store: url::Url,
    /// The table's location in the store.
    pub prefix: object_store::path::Path,
    pub files: Vec<object_store::ObjectMeta>,
}

/// A mapping file, planned: its session, its final query, and what the caller's check of the
/// query made of it.
pub struct Planned<T> {
    pub ctx: SessionContext,
    pub frame: DataFrame,
    /// What `check` returned for the final query.
    pub checked: T,
    /// Where the sources' readers note the records they could not read.
    pub bad_records: Arc<BadRecordLog>,
}

/// Plans a mapping file without reading data (source schemas are inferred, though), and runs
/// `check` on the final query (the caller's rules for its output). With
/// [`EngineOptions::sampled_inference`], a plan or check that fails on the columns of a sample (a
/// field the first records do not have, a type they show narrower) is made again on every
/// record's.
pub async fn plan<T>(
    mapping: &MappingFile,
    options: &EngineOptions,
    stores: Arc<StoreRegistry>,
    check: impl Fn(&DataFrame) -> Result<T>,
) -> Result<Planned<T>> {
    let ctx = session(options, Arc::clone(&stores), mapping.dataset.key())?;
    let sample_was_partial = |ctx: &SessionContext| {
        ctx.state()
            .config()
            .get_extension::<SampledInference>()
            .is_some_and(|sampled| sampled.partial())
    };
    match plan_in(ctx.clone(), mapping, &check).await {
        Err(e)
            if sample_was_partial(&ctx) && !matches!(e, Error::Io { .. } | Error::Interrupted) =>
        {
            // A warning: on a large export the full read takes a while, and a typo in a column
            // name ends the same way after it (with the columns of every record to suggest).
            tracing::warn!(
                "planning on columns inferred from the first records failed; inferring them \
                 from every record to tell a field that appears later from a mistake: {e}"
            );
            let every_record = EngineOptions {
                sampled_inference: false,
                ..options.clone()
            };
            let ctx = session(&every_record, stores, mapping.dataset.key())?;
            plan_in(ctx, mapping, &check).await
        }
        planned => planned,
    }
}

async fn plan_in<T>(
    ctx: SessionContext,
    mapping: &MappingFile,
    check: &impl Fn(&DataFrame) -> Result<T>,
) -> Result<Planned<T>> {
    let frame = plan_mapping(&ctx, mapping).await?;
    let checked = check(&frame)?;
    let bad_records = BadRecordLog::of(ctx.state().config());
    Ok(Planned {
        bad_records,
        ctx,
        frame,
        checked,
    })
}

/// Runs the mapping file's setup statements and plans its final query.
async fn plan_mapping(ctx: &SessionContext, mapping: &MappingFile) -> Result<DataFrame> {
    register_sources(ctx, mapping).await?;
    ctx.sql_with_options(&mapping.query.sql, query_only())
        .await
        .map_err(|e| located(mapping, mapping.query.line, e))
}

/// What a mapping's final query may be, whatever its words: a read (no DDL, DML such as INSERT
/// or COPY, or SET).
pub fn query_only() -> SQLOptions {
    SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false)
}

/// Runs the mapping file's setup statements (its sources and views) in `ctx`.
pub async fn register_sources(ctx: &SessionContext, mapping: &MappingFile) -> Result<()> {
    // Sources and views only: nothing that writes (INSERT, COPY), whatever the words.
    let no_writes = SQLOptions::new().with_allow_dml(false);
    for statement in &mapping.setup {
        let frame = ctx
            .sql_with_options(&statement.sql, no_writes)
            .await
            .map_err(|e| located(mapping, statement.line, e))?;
        // DDL runs when planned; collecting the (empty) result finishes it.
        frame
            .collect()
            .await
            .map_err(|e| located(mapping, statement.line, e))?;
    }
    Ok(())
}

/// Puts the mapping file and line in front of a planning error.
fn located(mapping: &MappingFile, line: usize, e: datafusion::error::DataFusionError) -> Error {
    use datafusion::error::DataFusionError as D;
    let root = e.find_root();
    // Storage failures keep their kind (exit code), with the statement's place in the message.
    if matches!(root, D::ObjectStore(_) | D::IoError(_)) {
        return Error::Io {
            context: format!("{}:{line}", mapping.display_name()),
            source: std::io::Error::other(e.strip_backtrace()),
        };
    }
    if let D::External(inner) = root
        && let Some(own) = inner.downcast_ref::<Error>()
    {
        let place = format!("{}:{line}", mapping.display_name());
        match own {
            Error::Data(message) => return Error::Data(format!("{place}: {message}")),
            // A database that cannot be reached or read is the source's fault, not the file's.
            Error::Database(message) => return Error::Database(format!("{place}: {message}")),
            _ => {}
        }
    }
    Error::mapping(&mapping.path, line, e.strip_backtrace())
}

#[cfg(test)]
mod tests {
    use datafusion::physical_plan::displayable;

    use super::*;

    async fn final_plan(sql: &str) -> String {
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
        ctx.sql("CREATE TABLE t AS VALUES (1, 'a'), (2, 'b'), (3, 'c')")
            .await
            .unwrap();
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let plan = spread_over_threads(plan, 2).unwrap();
        displayable(plan.as_ref()).indent(false).to_string()
    }

    #[tokio::test]
    async fn unordered_results_are_dealt_to_every_thread_and_sorted_ones_are_kept_whole() {
        let spread = final_plan("SELECT * FROM t").await;
        assert!(
            spread.starts_with("RepartitionExec: partitioning=RoundRobinBatch(2)"),
            "{spread}"
        );
        let sorted = final_plan("SELECT * FROM t ORDER BY column1 DESC").await;
        assert!(!sorted.contains("RoundRobinBatch"), "{sorted}");
    }
}
