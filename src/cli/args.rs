//! The command line's shape: clap's types and the value parsers that refuse bad input (sizes,
//! `--var`) before anything runs. Kept apart so the commands never see clap.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::batch::InvalidPolicy;
use crate::engine::EngineOptions;
use crate::mapping::{Vars, vars};
use crate::personalize::DatasetType;
use crate::run::increment::OnChanged;
use crate::sources::bad_records::BadRecordPolicy;

#[derive(Debug, Parser)]
#[command(
    name = "pengine",
    version,
    about = "Turns large historical data exports into Amazon Personalize datasets",
    long_about = "Turns large historical data exports into Amazon Personalize datasets.\n\n\
        Each mapping file (SQL) names its sources and selects the dataset's columns; pengine \
        streams the result into CSV parts in Personalize's dialect, with the Avro schema and a run \
        report beside them, and publishes them only when complete."
)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
    /// More log output (-v: debug, -vv: trace). PENGINE_LOG=<filter> gives full control.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub(crate) verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run mapping files (or every *.sql in a folder) and publish their datasets.
    Run(RunArgs),
    /// Print the Avro schema a mapping file produces (reads source schemas; writes nothing).
    Schema(MappingArgs),
    /// Show how a mapping file is planned: output columns, conversions, DataFusion's plan.
    Explain(MappingArgs),
    /// Check mapping files without reading data, or (with --dataset) a CSV dataset made
    /// elsewhere, with every row and dataset check, writing nothing.
    Validate(ValidateArgs),
    /// Crawl sources (local or s3://) and write commented mapping files and pengine.toml for
    /// them: formats, layouts and schemas detected, dataset types and column roles guessed.
    Init(InitArgs),
    /// Show the sources a mapping file registers (or one location): columns and types, files,
    /// bytes, partition columns.
    Sources(SourcesArgs),
    /// Import an output's datasets into an Amazon Personalize dataset group: create (or reuse)
    /// each schema and dataset, and start import jobs on the runs the output committed.
    #[command(
        after_help = "Datasets go in order: items, users and actions before the interactions \
        that refer to them. Names are deterministic (schema <group>-<dataset>-<hash of the \
        schema>, dataset <group>-<dataset>, job <group>-<dataset>-<run id>), so a second import \
        reuses what the first created. --dry-run reads only the output (its pointers and \
        records), calls no AWS API and assumes nothing exists yet in Personalize; with --json it \
        prints each request's input as `aws personalize <command> --cli-input-json` reads it."
    )]
    Import(ImportArgs),
    /// Serve a Ballista cluster that `pengine run --cluster` runs on: a scheduler, or an executor
    /// joining one (a stock Ballista cluster cannot run pengine's plans).
    #[cfg(feature = "cluster")]
    #[command(subcommand)]
    Cluster(ClusterCommand),
}

#[cfg(feature = "cluster")]
#[derive(Debug, Subcommand)]
pub(crate) enum ClusterCommand {
    /// Start a scheduler; prints the address it listens on, then serves until stopped.
    Scheduler {
        /// The address to listen on (port 0: a free one). Use 0.0.0.0:50050 for executors and
        /// clients on other hosts.
        #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:50050")]
        bind: std::net::SocketAddr,
    },
    /// Start an executor serving a scheduler's tasks, until stopped. Several can start side by
    /// side on one host with no other flag (free ports, a new work folder each).
    Executor {
        /// The scheduler, HOST:PORT (or df://HOST:PORT).
        #[arg(long, value_name = "HOST:PORT", value_parser = parse_cluster)]
        scheduler: String,
        /// The address to listen on for results and shuffle data (Arrow Flight); the scheduler's
        /// calls come on the next port. Port 0: free ports.
        #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:0")]
        bind: std::net::SocketAddr,
        /// The name the scheduler, other executors and clients reach this executor by (default:
        /// the --bind address, or this host's name when binding 0.0.0.0).
        #[arg(long, value_name = "NAME")]
        external_host: Option<String>,
        /// Tasks run at once (default: one per core).
        #[arg(long, default_value_t = 0)]
        slots: usize,
        /// Where shuffle and spill files go (default: a new folder under the temporary folder,
        /// removed when the executor stops on SIGTERM or Ctrl+C).
        #[arg(long, value_name = "DIR")]
        work_dir: Option<PathBuf>,
        /// Memory for the tasks' joins, sorts and aggregations before they spill, shared by the
        /// slots, e.g. 4GiB, or `unlimited` (default: Ballista's share of the host's memory).
        #[arg(long, value_name = "SIZE", value_parser = parse_memory_limit)]
        memory_limit: Option<MemoryLimit>,
    },
}

#[derive(Debug, Args)]
pub(crate) struct ImportArgs {
    /// The output `pengine run` wrote, on S3 (s3://bucket/prefix): Personalize reads only S3.
    #[arg(value_name = "OUTPUT")]
    pub(crate) output: String,
    /// Import only this dataset (repeatable; default: every dataset the output committed).
    #[arg(long = "dataset", value_name = "NAME", value_parser = parse_dataset)]
    pub(crate) datasets: Vec<DatasetType>,
    /// The dataset group (arn:aws:personalize:REGION:ACCOUNT:dataset-group/NAME); its region is
    /// the one called.
    #[arg(long, value_name = "ARN", value_parser = parse_group_arn)]
    pub(crate) dataset_group_arn: String,
    /// The IAM role Personalize assumes to read the output's bucket
    /// (arn:aws:iam::ACCOUNT:role/NAME).
    #[arg(long, value_name = "ARN", value_parser = parse_role_arn)]
    pub(crate) role_arn: String,
    /// full: the current data (its full run in FULL mode, then its increments); incremental:
    /// only the increments not imported into this group yet.
    #[arg(long, value_enum, default_value_t = ImportModeArg::Full)]
    pub(crate) mode: ImportModeArg,
    /// Follow each job until it is ACTIVE (exit 0) or fails (exit 5, with the service's reason).
    /// Needed when a dataset has several runs to import: Personalize runs one at a time.
    #[arg(long)]
    pub(crate) wait: bool,
    /// Print the requests instead of making them.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// Print the result (with --dry-run: the requests) as JSON on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

/// `--mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum ImportModeArg {
    Full,
    Incremental,
}

fn parse_group_arn(text: &str) -> std::result::Result<String, String> {
    crate::import::plan::GroupArn::parse(text).map(|g| g.arn)
}

fn parse_role_arn(text: &str) -> std::result::Result<String, String> {
    crate::import::plan::check_role_arn(text)
}

#[derive(Debug, Args)]
pub(crate) struct InitArgs {
    /// A source location: a file or folder, local or s3://bucket/prefix/ (repeatable).
    #[arg(long = "source", value_name = "URI", required = true)]
    pub(crate) sources: Vec<String>,
    /// Where to write the mapping files and pengine.toml.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub(crate) into: PathBuf,
    /// Replace files that already exist.
    #[arg(long)]
    pub(crate) force: bool,
    /// What to do with source records that cannot be read: stop, naming the file, position and
    /// record; or leave them out of the schema and the profile.
    #[arg(long, value_enum, default_value_t = BadRecordPolicy::Fail)]
    pub(crate) on_bad_records: BadRecordPolicy,
    /// Print what was found and written as JSON on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct SourcesArgs {
    /// A mapping file, or a source location (file or folder, local or s3://).
    #[arg(value_name = "FILE|URI")]
    pub(crate) target: String,
    /// Fill ${NAME} in the mapping file (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = vars::parse_assignment)]
    pub(crate) vars: Vec<(String, String)>,
    /// What to do with source records that cannot be read: stop, naming the file, position and
    /// record; or leave them out of the schema.
    #[arg(long, value_enum, default_value_t = BadRecordPolicy::Fail)]
    pub(crate) on_bad_records: BadRecordPolicy,
    /// Print the sources as JSON on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct ValidateArgs {
    /// Mapping files or folders; with --dataset, the data location (folder of CSV parts, a
    /// file, or s3://bucket/prefix/).
    #[arg(required = true, value_name = "FILE|LOCATION")]
    pub(crate) targets: Vec<String>,
    /// Check existing CSV data of this dataset type.
    #[arg(long, value_name = "TYPE", value_parser = parse_dataset)]
    pub(crate) dataset: Option<DatasetType>,
    /// The data's Avro schema file: header names and order, types, categorical/textual flags.
    #[arg(long, value_name = "FILE", requires = "dataset")]
    pub(crate) schema: Option<PathBuf>,
    /// Fill ${NAME} in mapping files (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = vars::parse_assignment)]
    pub(crate) vars: Vec<(String, String)>,
    /// What to do with source records that cannot be read while the mapping files' source
    /// schemas are inferred: stop, naming the file, position and record; or leave them out.
    #[arg(long, value_enum, default_value_t = BadRecordPolicy::Fail)]
    pub(crate) on_bad_records: BadRecordPolicy,
    /// Print the results as JSON on stdout.
    #[arg(long)]
    pub(crate) json: bool,
}

fn parse_dataset(text: &str) -> std::result::Result<DatasetType, String> {
    text.parse()
}

#[derive(Debug, Args)]
pub(crate) struct MappingArgs {
    /// Mapping files, or folders of them.
    #[arg(required = true, value_name = "FILE")]
    pub(crate) files: Vec<PathBuf>,
    /// Fill ${NAME} in the mapping file (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = vars::parse_assignment)]
    pub(crate) vars: Vec<(String, String)>,
    /// What to do with source records that cannot be read (broken JSON, a CSV row with a field
    /// too many, a value that is not its column's type, a corrupt Parquet file): stop, naming the
    /// file, position and record; or leave them out (`run` writes them to
    /// <dataset>.bad-records.jsonl).
    #[arg(long, value_enum, default_value_t = BadRecordPolicy::Fail)]
    pub(crate) on_bad_records: BadRecordPolicy,
    /// Parallel partitions (default: one more than the number of cores, so that a core never waits
    /// while a partition's input is read).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub(crate) threads: Option<u16>,
    /// Memory for joins, sorts and aggregations before they spill to disk, e.g. 2GiB, or
    /// `unlimited`.
    #[arg(long, value_name = "SIZE", value_parser = parse_memory_limit,
          default_value_t = MemoryLimit(Some(crate::engine::DEFAULT_MEMORY_LIMIT)))]
    pub(crate) memory_limit: MemoryLimit,
    /// Folder for spill files (default: the system temporary folder).
    #[arg(long, value_name = "DIR")]
    pub(crate) spill_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct RunArgs {
    #[command(flatten)]
    pub(crate) mapping: MappingArgs,
    /// Where the datasets go: a local folder or s3://bucket/prefix (default: the mapping
    /// file's `output` directive, else ./out).
    #[arg(short, long, value_name = "URI")]
    pub(crate) output: Option<String>,
    /// Largest CSV part, e.g. 256MiB or 1GB (at least 1KiB).
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_part_size)]
    pub(crate) max_file_size: u64,
    /// What to do with rows that break a Personalize rule: stop the run, or write them to
    /// <dataset>.rejects.csv (with the reason) and publish the rest.
    #[arg(long, value_enum, default_value_t = InvalidPolicy::Fail)]
    pub(crate) on_invalid: InvalidPolicy,
    /// Skip the dataset-level checks and insights (row checks always run).
    #[arg(long)]
    pub(crate) no_insights: bool,
    /// Print the run report as JSON on stdout.
    #[arg(long)]
    pub(crate) json: bool,
    /// Never draw a progress bar (it is drawn only when stderr is a terminal anyway).
    #[arg(long)]
    pub(crate) no_progress: bool,
    /// Run on a Ballista cluster started with `pengine cluster scheduler` (and executors), given
    /// as HOST:PORT or df://HOST:PORT. The same output, report and guarantees as a local run.
    #[arg(long, value_name = "HOST:PORT", value_parser = parse_cluster)]
    pub(crate) cluster: Option<String>,
    /// Publish the dataset even when the query returns no rows (by default such a run stops
    /// and the previous export is kept).
    #[arg(long)]
    pub(crate) allow_empty: bool,
    /// Replace a data folder that holds files pengine did not write (by default such a run
    /// stops before writing anything, naming them). The report lists what was deleted.
    #[arg(long)]
    pub(crate) take_over: bool,
    /// How many earlier versions of each dataset (immutable snapshots under
    /// <output>/.pengine/snapshots/) to keep after a run commits, for imports that began before
    /// it; older ones are deleted.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub(crate) keep_previous: usize,
    /// Convert only the files of the tables a mapping file names in `-- pengine: incremental =
    /// TABLE` that its dataset's last committed run did not convert, as an increment (other
    /// tables are read whole; mapping files without the directive are converted whole).
    #[arg(long, conflicts_with = "full")]
    pub(crate) incremental: bool,
    /// Convert every file (the default; with incremental tables, records them for the next
    /// `--incremental` run).
    #[arg(long)]
    pub(crate) full: bool,
    /// With --incremental, what to do with a file converted before that changed since: stop and
    /// name it, or convert it again in this increment.
    #[arg(long, value_enum, default_value_t = OnChanged::Fail, value_name = "WHAT", requires = "incremental")]
    pub(crate) on_changed: OnChanged,
}

fn parse_size(text: &str) -> std::result::Result<u64, String> {
    text.trim()
        .parse::<bytesize::ByteSize>()
        .map(|s| s.as_u64())
        .map_err(|e| format!("'{text}' is not a size like 512MiB or 2GB: {e}"))
}

/// `--memory-limit`: a size, or no limit.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MemoryLimit(pub(crate) Option<u64>);

/// As a user would write it (the help's default): whole MiB when it is, else bytes.
impl std::fmt::Display for MemoryLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const MIB: u64 = 1024 * 1024;
        match self.0 {
            None => write!(f, "unlimited"),
            Some(bytes) if bytes % MIB == 0 => write!(f, "{}MiB", bytes / MIB),
            Some(bytes) => write!(f, "{bytes}"),
        }
    }
}

fn parse_memory_limit(text: &str) -> std::result::Result<MemoryLimit, String> {
    match text.trim().to_ascii_lowercase().as_str() {
        "unlimited" | "none" => Ok(MemoryLimit(None)),
        _ => {
            let size = parse_size(text)?;
            if size < crate::engine::MIN_MEMORY_LIMIT {
                return Err(format!(
                    "'{text}' is too small: a query needs at least {} (a sort holds a batch per \
                     partition), so give at least that, or more",
                    bytesize::ByteSize(crate::engine::MIN_MEMORY_LIMIT)
                ));
            }
            Ok(MemoryLimit(Some(size)))
        }
    }
}

/// `HOST:PORT` or `df://HOST:PORT` (Ballista's scheme), as `HOST:PORT`.
fn parse_cluster(text: &str) -> std::result::Result<String, String> {
    let address = text
        .strip_prefix("df://")
        .unwrap_or(text)
        .trim_end_matches('/');
    match address.rsplit_once(':') {
        Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0) => {
            Ok(address.to_string())
        }
        _ => Err(format!(
            "'{text}' is not a scheduler address: give HOST:PORT, e.g. df://10.0.0.5:50050"
        )),
    }
}

fn parse_part_size(text: &str) -> std::result::Result<u64, String> {
    let size = parse_size(text)?;
    if size < 1024 {
        return Err(format!(
            "'{text}' is too small: parts must allow at least 1KiB"
        ));
    }
    Ok(size)
}

impl Command {
    /// Whether the command prints JSON on stdout (then a failure is printed as JSON there too).
    pub(crate) fn json(&self) -> bool {
        match self {
            Command::Run(args) => args.json,
            Command::Validate(args) => args.json,
            Command::Init(args) => args.json,
            Command::Sources(args) => args.json,
            Command::Import(args) => args.json,
            Command::Schema(_) | Command::Explain(_) => false,
            #[cfg(feature = "cluster")]
            Command::Cluster(_) => false,
        }
    }
}

impl ImportArgs {
    pub(crate) fn options(&self) -> crate::import::ImportOptions {
        crate::import::ImportOptions {
            output: self.output.clone(),
            datasets: self.datasets.clone(),
            dataset_group_arn: self.dataset_group_arn.clone(),
            role_arn: self.role_arn.clone(),
            mode: match self.mode {
                ImportModeArg::Full => crate::import::Mode::Full,
                ImportModeArg::Incremental => crate::import::Mode::Incremental,
            },
            wait: self.wait,
        }
    }
}

impl MappingArgs {
    pub(crate) fn vars(&self) -> Vars {
        self.vars.iter().cloned().collect()
    }

    pub(crate) fn engine(&self) -> EngineOptions {
        let mut engine = EngineOptions {
            memory_limit: self.memory_limit.0,
            spill_dir: self.spill_dir.clone(),
            on_bad_records: self.on_bad_records,
            ..EngineOptions::default()
        };
        if let Some(threads) = self.threads {
            engine.threads = threads as usize;
        }
        engine
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The help shows the default as text that clap parses back: it must read as the same limit.
    #[test]
    fn a_memory_limit_reads_back_from_how_it_is_shown() {
        for limit in [
            Some(crate::engine::DEFAULT_MEMORY_LIMIT),
            Some(crate::engine::MIN_MEMORY_LIMIT),
            Some(3 * 1024 * 1024 * 1024 + 17),
            None,
        ] {
            let shown = MemoryLimit(limit).to_string();
            assert_eq!(parse_memory_limit(&shown).unwrap().0, limit, "{shown}");
        }
        assert_eq!(MemoryLimit(Some(384 << 20)).to_string(), "384MiB");
    }
}
