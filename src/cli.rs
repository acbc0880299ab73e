//! The command line: arguments → validated options → the engine, as three stages.
//!
//! Value parsers reject bad input (sizes, `--var`) before anything runs; errors are printed whole
//! on stderr and mapped to the documented exit codes (see [`crate::error::exit_code`]).

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::batch::InvalidPolicy;
use crate::engine::EngineOptions;
use crate::error::{Error, Result, exit_code};
use crate::mapping::{MappingFile, Vars, vars};
use crate::personalize::{DatasetType, avro};
use crate::run::{self, RunOptions};
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
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
    /// More log output (-v: debug, -vv: trace). PENGINE_LOG=<filter> gives full control.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    /// Only errors on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// A source location: a file or folder, local or s3://bucket/prefix/ (repeatable).
    #[arg(long = "source", value_name = "URI", required = true)]
    pub sources: Vec<String>,
    /// Where to write the mapping files and pengine.toml.
    #[arg(long, value_name = "DIR", default_value = ".")]
    pub into: PathBuf,
    /// Replace files that already exist.
    #[arg(long)]
    pub force: bool,
    /// What to do with source records that cannot be read: stop, naming the file, position and
    /// record; or leave them out of the schema and the profile.
    #[arg(long, value_enum, default_value_t = BadRecordPolicy::Fail)]
    pub on_bad_records: BadRecordPolicy,
    /// Print what was found and written as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct SourcesArgs {
    /// A mapping file, or a source location (file or folder, local or s3://).
    #[arg(value_name = "FILE|URI")]
    pub target: String,
    /// Fill ${NAME} in the mapping file (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = vars::parse_assignment)]
    pub vars: Vec<(String, String)>,
    /// What to do with source records that cannot be read: stop, naming the file, position and
    /// record; or leave them out of the schema.
    #[arg(long, value_enum, default_value_t = BadRecordPolicy::Fail)]
    pub on_bad_records: BadRecordPolicy,
    /// Print the sources as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Mapping files or folders; with --dataset, the data location (folder of CSV parts, a
    /// file, or s3://bucket/prefix/).
    #[arg(required = true, value_name = "FILE|LOCATION")]
    pub targets: Vec<String>,
    /// Check existing CSV data of this dataset type.
    #[arg(long, value_name = "TYPE", value_parser = parse_dataset)]
    pub dataset: Option<DatasetType>,
    /// The data's Avro schema file: header names and order, types, categorical/textual flags.
    #[arg(long, value_name = "FILE", requires = "dataset")]
    pub schema: Option<PathBuf>,
    /// Fill ${NAME} in mapping files (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = vars::parse_assignment)]
    pub vars: Vec<(String, String)>,
    /// What to do with source records that cannot be read while the mapping files' source
    /// schemas are inferred: stop, naming the file, position and record; or leave them out.
    #[arg(long, value_enum, default_value_t = BadRecordPolicy::Fail)]
    pub on_bad_records: BadRecordPolicy,
    /// Print the results as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

fn parse_dataset(text: &str) -> std::result::Result<DatasetType, String> {
    text.parse()
}

#[derive(Debug, Args)]
pub struct MappingArgs {
    /// Mapping files, or folders of them.
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
    /// Fill ${NAME} in the mapping file (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE", value_parser = vars::parse_assignment)]
    pub vars: Vec<(String, String)>,
    /// What to do with source records that cannot be read (broken JSON, a CSV row with a field
    /// too many, a value that is not its column's type, a corrupt Parquet file): stop, naming the
    /// file, position and record; or leave them out (`run` writes them to
    /// <dataset>.bad-records.jsonl).
    #[arg(long, value_enum, default_value_t = BadRecordPolicy::Fail)]
    pub on_bad_records: BadRecordPolicy,
    /// Parallel partitions (default: one more than the number of cores, so that a core never waits
    /// while a partition's input is read).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    pub threads: Option<u16>,
    /// Memory for joins, sorts and aggregations before they spill to disk, e.g. 2GiB, or
    /// `unlimited`.
    #[arg(long, value_name = "SIZE", default_value = "512MiB", value_parser = parse_memory_limit)]
    pub memory_limit: MemoryLimit,
    /// Folder for spill files (default: the system temporary folder).
    #[arg(long, value_name = "DIR")]
    pub spill_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub mapping: MappingArgs,
    /// Where the datasets go: a local folder or s3://bucket/prefix (default: the mapping
    /// file's `output` directive, else ./out).
    #[arg(short, long, value_name = "URI")]
    pub output: Option<String>,
    /// Largest CSV part, e.g. 256MiB or 1GB (at least 1KiB).
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_part_size)]
    pub max_file_size: u64,
    /// What to do with rows that break a Personalize rule: stop the run, or write them to
    /// <dataset>.rejects.csv (with the reason) and publish the rest.
    #[arg(long, value_enum, default_value_t = InvalidPolicy::Fail)]
    pub on_invalid: InvalidPolicy,
    /// Skip the dataset-level checks and insights (row checks always run).
    #[arg(long)]
    pub no_insights: bool,
    /// Print the run report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Never draw a progress bar (it is drawn only when stderr is a terminal anyway).
    #[arg(long)]
    pub no_progress: bool,
    /// Publish the dataset even when the query returns no rows (by default such a run stops
    /// and the previous export is kept).
    #[arg(long)]
    pub allow_empty: bool,
    /// Replace a data folder that holds files pengine did not write (by default such a run
    /// stops before writing anything, naming them). The report lists what was deleted.
    #[arg(long)]
    pub take_over: bool,
}

fn parse_size(text: &str) -> std::result::Result<u64, String> {
    text.trim()
        .parse::<bytesize::ByteSize>()
        .map(|s| s.as_u64())
        .map_err(|e| format!("'{text}' is not a size like 512MiB or 2GB: {e}"))
}

/// `--memory-limit`: a size, or no limit.
#[derive(Debug, Clone, Copy)]
pub struct MemoryLimit(pub Option<u64>);

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
    fn json(&self) -> bool {
        match self {
            Command::Run(args) => args.json,
            Command::Validate(args) => args.json,
            Command::Init(args) => args.json,
            Command::Sources(args) => args.json,
            Command::Schema(_) | Command::Explain(_) => false,
        }
    }
}

/// Refuses `--var` names the mapping files do not use; warns of unused pengine.toml entries.
fn check_variables(paths: &[PathBuf], vars: &Vars) -> Result<()> {
    for warning in crate::mapping::check_variables(paths, vars)? {
        tracing::warn!("{warning}");
    }
    Ok(())
}

impl MappingArgs {
    fn vars(&self) -> Vars {
        self.vars.iter().cloned().collect()
    }

    fn engine(&self) -> EngineOptions {
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

    fn load(&self) -> Result<Vec<MappingFile>> {
        let vars = self.vars();
        let paths = mapping_paths(&self.files)?;
        check_variables(&paths, &vars)?;
        paths
            .iter()
            .map(|path| MappingFile::load(path, &vars))
            .collect()
    }
}

/// The mapping files named, folders expanded to their `*.sql` files (sorted).
fn mapping_paths(files: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in files {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(|e| Error::io(format!("cannot read folder {}", path.display()), e))?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e == "sql"))
                .collect();
            if found.is_empty() {
                return Err(Error::Config(format!(
                    "no *.sql mapping files in {}",
                    path.display()
                )));
            }
            found.sort();
            out.extend(found);
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

/// Parses arguments, runs the command, prints errors; returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    let json = cli.command.json();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            say(format_args!("error: cannot start the async runtime: {e}\n"));
            return exit_code::INTERNAL;
        }
    };
    // A run stops cleanly on Ctrl-C, SIGTERM or SIGHUP (aborting its uploads, removing what it
    // staged); other commands write nothing and stop at once.
    let clean_stop = matches!(cli.command, Command::Run(_));
    let result = runtime.block_on(async {
        let mut signals = match crate::interrupt::Signals::listen() {
            Ok(signals) => signals,
            Err(e) => return Err(Error::io("listening for signals", e)),
        };
        // The command runs on a worker so a signal is seen whatever the command is doing.
        let mut command = tokio::spawn(execute(cli));
        let joined = tokio::select! {
            joined = &mut command => joined,
            signal = signals.next() => {
                crate::interrupt::request(signal);
                if !clean_stop {
                    return Err(Error::Interrupted);
                }
                say(format_args!(
                    "pengine: {} received: stopping, aborting uploads and removing what this run \
                     staged (send it again to quit at once)\n",
                    signal.name()
                ));
                tokio::select! {
                    joined = &mut command => joined,
                    _ = signals.next() => return Err(Error::Interrupted),
                }
            }
        };
        joined.unwrap_or_else(|e| Err(Error::Internal(format!("the command failed: {e}"))))
    });
    // Do not wait for tasks still running after an error or an interrupt.
    runtime.shutdown_background();
    let Err(e) = result else {
        return result.unwrap_or(exit_code::INTERNAL);
    };
    let code = match &e {
        Error::Interrupted => crate::interrupt::received().exit_code(),
        e => e.exit_code(),
    };
    let message = match &e {
        Error::Interrupted => format!(
            "interrupted by {}: nothing was published; the previous export is untouched (the \
             next run removes anything this one staged)",
            crate::interrupt::received().name()
        ),
        e => crate::error::message(e),
    };
    say(format_args!("error: {message}\n"));
    if json {
        let failure =
            serde_json::json!({ "status": "failed", "exit_code": code, "error": message });
        // Nothing more can be done when stdout is gone too.
        let _ = outln(failure);
    }
    code
}

/// Writes to standard error. A reader that went away (`pengine run ... 2>&1 | head`) changes
/// nothing: the run's outcome, not its messages, decides the exit code.
pub fn say(text: impl std::fmt::Display) {
    use std::io::Write;
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "{text}").and_then(|()| stderr.flush());
}

fn init_logging(verbose: u8, quiet: bool) {
    use tracing_subscriber::EnvFilter;
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "pengine=debug,warn",
        (false, _) => "pengine=trace,info",
    };
    // A bare level (`PENGINE_LOG=debug`) is pengine's own; dependencies' chatter (the SQL
    // parser's, the HTTP client's) only when asked for by name (`PENGINE_LOG=datafusion=debug`).
    let filter = match std::env::var("PENGINE_LOG") {
        Ok(text) if !text.contains(['=', ',']) && !text.trim().is_empty() => {
            EnvFilter::try_new(format!("pengine={},warn", text.trim()))
        }
        Ok(text) => EnvFilter::try_new(text),
        Err(_) => EnvFilter::try_new(default),
    }
    .unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
}

/// Writes to standard output. A reader that went away (`pengine schema x.sql | head`) is not an
/// error: the rest is simply not wanted.
fn out(text: impl std::fmt::Display) -> Result<()> {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    match write!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::io("writing to standard output", e))
        }
        _ => Ok(()),
    }
}

/// [`out`] with a line break.
fn outln(text: impl std::fmt::Display) -> Result<()> {
    out(format_args!("{text}\n"))
}

fn to_json(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string_pretty(value).map_err(|e| Error::Internal(e.to_string()))
}

/// Runs a parsed command line.
pub async fn execute(cli: Cli) -> Result<i32> {
    match cli.command {
        Command::Run(args) => {
            let mappings = args.mapping.load()?;
            let options = RunOptions {
                output: args.output.clone(),
                max_file_size: args.max_file_size,
                engine: args.mapping.engine(),
                progress: !args.no_progress && !cli.quiet,
                on_invalid: args.on_invalid,
                insights: !args.no_insights,
                progress_group: None,
                allow_empty: args.allow_empty,
                take_over: args.take_over,
            };
            if let [mapping] = mappings.as_slice() {
                let report = run::run(mapping, &options).await?;
                if !cli.quiet {
                    say(report.human());
                } else {
                    say(failed_checks(&report));
                }
                if args.json {
                    outln(to_json(&report)?)?;
                }
                let failed_checks = report.checks.as_ref().is_some_and(|c| c.errors() > 0);
                return Ok(if failed_checks {
                    exit_code::CHECKS
                } else {
                    exit_code::OK
                });
            }
            let project = crate::project::run_all(mappings, &options).await?;
            if !cli.quiet {
                for report in project.datasets.iter().filter_map(|d| d.report.as_ref()) {
                    say(report.human());
                }
                say(project.human());
            } else {
                // Errors are never quiet: failed datasets and failed checks.
                for dataset in &project.datasets {
                    if let Some(error) = &dataset.error {
                        say(format_args!("error: {}: {error}\n", dataset.mapping_file));
                    }
                }
                for report in project.datasets.iter().filter_map(|d| d.report.as_ref()) {
                    say(failed_checks(report));
                }
            }
            if args.json {
                outln(to_json(&project)?)?;
            }
            Ok(project.exit_code())
        }
        Command::Schema(args) => {
            let engine = args.engine();
            for mapping in args.load()? {
                let planned = crate::dataset_plan::plan(
                    &mapping,
                    &engine,
                    std::sync::Arc::new(crate::store::StoreRegistry::new()),
                )
                .await?;
                outln(avro::schema_text(&planned.columns)?)?;
            }
            Ok(exit_code::OK)
        }
        Command::Validate(args) => validate(args, cli.quiet).await,
        Command::Init(args) => {
            let report = crate::init::init(&crate::init::InitOptions {
                sources: args.sources,
                into: args.into,
                force: args.force,
                engine: EngineOptions {
                    on_bad_records: args.on_bad_records,
                    ..EngineOptions::default()
                },
            })
            .await?;
            if !cli.quiet {
                say(report.human());
            }
            if args.json {
                outln(to_json(&report)?)?;
            }
            if report.mappings_written() == 0 {
                // Nothing to run: success would be a lie.
                say(
                    "error: init wrote no mapping file: no source could be given a dataset type \
                     (see above); name the sources after their dataset (events, catalog, users) \
                     or write the mapping by hand\n",
                );
                return Ok(exit_code::MAPPING);
            }
            Ok(if report.all_valid() {
                exit_code::OK
            } else {
                exit_code::MAPPING
            })
        }
        Command::Sources(args) => {
            let engine = EngineOptions {
                on_bad_records: args.on_bad_records,
                ..EngineOptions::default()
            };
            let is_mapping =
                args.target.ends_with(".sql") && std::path::Path::new(&args.target).is_file();
            let sources = if is_mapping {
                let vars: Vars = args.vars.iter().cloned().collect();
                check_variables(&[PathBuf::from(&args.target)], &vars)?;
                let mapping = MappingFile::load(std::path::Path::new(&args.target), &vars)?;
                crate::describe::describe_mapping(&mapping, &engine).await?
            } else {
                if let Some((name, _)) = args.vars.first() {
                    return Err(Error::Usage(format!(
                        "--var {name}: variables fill mapping files, and {} is a location",
                        args.target
                    )));
                }
                // An export root: each table found in it.
                let stores = crate::store::StoreRegistry::new();
                let found = crate::crawl::tables::tables(&args.target, &stores).await?;
                if !args.json {
                    for (file, why) in &found.skipped {
                        outln(format_args!("skipped {file}: {why}"))?;
                    }
                }
                let mut described = Vec::new();
                for table in &found.locations {
                    described.push(crate::describe::describe_location(table, &engine).await?);
                }
                described
            };
            if args.json {
                outln(to_json(&sources)?)?;
            } else {
                for source in &sources {
                    out(source.human())?;
                }
            }
            Ok(exit_code::OK)
        }
        Command::Explain(args) => {
            let engine = args.engine();
            for mapping in args.load()? {
                out(crate::explain::explain(&mapping, &engine).await?)?;
            }
            Ok(exit_code::OK)
        }
    }
}

/// The failed dataset-level checks of a run, for `-q` (errors are never quiet).
fn failed_checks(report: &crate::report::RunReport) -> String {
    use crate::insights::Severity;
    let Some(checks) = &report.checks else {
        return String::new();
    };
    checks
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .map(|f| format!("error: {}: [{}] {}\n", report.dataset, f.check, f.message))
        .collect()
}

async fn validate(args: ValidateArgs, quiet: bool) -> Result<i32> {
    let options = RunOptions {
        progress: !quiet,
        engine: EngineOptions {
            on_bad_records: args.on_bad_records,
            ..EngineOptions::default()
        },
        ..RunOptions::default()
    };
    if let Some(dataset) = args.dataset {
        let [location] = args.targets.as_slice() else {
            return Err(Error::Config(
                "with --dataset, give one data location (a folder of CSV parts or a file)".into(),
            ));
        };
        let report =
            crate::validate::check_data(dataset, location, args.schema.as_deref(), &options)
                .await?;
        if args.json {
            outln(
                serde_json::to_string_pretty(&report)
                    .map_err(|e| Error::Internal(e.to_string()))?,
            )?;
        }
        if !quiet {
            say(report.human());
            for example in &report.reject_examples {
                say(format_args!("  invalid: {example}\n"));
            }
        }
        return Ok(if report.rows.rejected > 0 {
            exit_code::DATA
        } else if report.checks.as_ref().is_some_and(|c| c.errors() > 0) {
            exit_code::CHECKS
        } else {
            exit_code::OK
        });
    }
    let vars: Vars = args.vars.iter().cloned().collect();
    let files: Vec<PathBuf> = args.targets.iter().map(PathBuf::from).collect();
    let paths = mapping_paths(&files)?;
    check_variables(&paths, &vars)?;
    let mut results = Vec::new();
    for path in paths {
        let result = match MappingFile::load(&path, &vars) {
            Ok(mapping) => crate::validate::check_mapping(&mapping, &options).await,
            Err(e) => crate::validate::StaticResult {
                file: path.display().to_string(),
                dataset: None,
                ok: false,
                exit_code: e.exit_code(),
                error: Some(e.to_string()),
                schema: None,
            },
        };
        if !quiet {
            match &result.error {
                None => say(format_args!("{}: ok\n", result.file)),
                // Mapping errors already start with the file name.
                Some(error) if error.starts_with(&result.file) => say(format_args!("{error}\n")),
                Some(error) => say(format_args!("{}: {error}\n", result.file)),
            }
        }
        results.push(result);
    }
    if args.json {
        outln(serde_json::to_string_pretty(&results).map_err(|e| Error::Internal(e.to_string()))?)?;
    }
    Ok(results
        .iter()
        .map(|r| r.exit_code)
        .find(|code| *code != 0)
        .unwrap_or(exit_code::OK))
}
