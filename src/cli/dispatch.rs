//! Each command line to its command: arguments become the command's plain inputs, its result is
//! printed (stderr for people, stdout with `--json`) and judged by the exit-code policy.

use super::args::{
    Cli, Command, ImportArgs, InitArgs, MappingArgs, RunArgs, SourcesArgs, ValidateArgs,
};
use super::exit::{self, Outcome};
use super::output::{out, outln, say, to_json};
use super::{progress, show_import, show_run};
use crate::commands::{self, validate::Validated};
use crate::engine::EngineOptions;
use crate::error::Result;
use crate::mapping::Vars;
use crate::run::RunOptions;
use crate::sources::bad_records::BadRecordPolicy;
use crate::validate::StaticResult;

/// Runs a parsed command line; returns the exit code (or the error that decides it).
pub(crate) async fn dispatch(cli: Cli) -> Result<i32> {
    let quiet = cli.quiet;
    match cli.command {
        Command::Run(args) => run(args, quiet).await,
        Command::Schema(args) => schema(args).await,
        Command::Explain(args) => explain(args).await,
        Command::Validate(args) => validate(args, quiet).await,
        Command::Init(args) => init(args, quiet).await,
        Command::Sources(args) => sources(args).await,
        Command::Import(args) => import(args, quiet).await,
        #[cfg(feature = "cluster")]
        Command::Cluster(command) => cluster(command).await,
    }
}

/// Serves until the process is stopped (an error ends it).
#[cfg(feature = "cluster")]
async fn cluster(command: super::args::ClusterCommand) -> Result<i32> {
    use super::args::ClusterCommand;
    use crate::cluster::serve;
    use crate::error::Error;
    match command {
        ClusterCommand::Scheduler { bind } => {
            let listener = tokio::net::TcpListener::bind(bind)
                .await
                .map_err(|e| Error::io(format!("listening on {bind}"), e))?;
            let address = listener
                .local_addr()
                .map_err(|e| Error::io(format!("listening on {bind}"), e))?;
            // The address first, on stdout: whoever started it with port 0 reads it there.
            outln(format_args!(
                "pengine cluster scheduler listening on {address}"
            ))?;
            serve::scheduler(listener).await?;
        }
        ClusterCommand::Executor {
            scheduler,
            bind,
            external_host,
            slots,
            work_dir,
            memory_limit,
        } => {
            let resolved = tokio::net::lookup_host(&scheduler)
                .await
                .ok()
                .and_then(|mut found| found.next())
                .ok_or_else(|| {
                    Error::Cluster(format!(
                        "the scheduler address {scheduler} does not resolve"
                    ))
                })?;
            let options = serve::ExecutorOptions {
                scheduler: resolved,
                bind,
                external_host,
                slots,
                work_dir,
                memory_limit: memory_limit.map(|limit| limit.0.unwrap_or(0)),
            };
            serve::executor(options).await?;
        }
    }
    Ok(exit::exit_code(Outcome::Success))
}

async fn import(args: ImportArgs, quiet: bool) -> Result<i32> {
    // Each step on its own line (a job's status changes are few); none with --json or -q.
    let tell = !quiet && !args.json;
    let step = |dataset: crate::personalize::DatasetType, what: &str| {
        if tell {
            say(format_args!("{dataset}: {what}\n"));
        }
    };
    let imported = commands::import::import(&args.options(), args.dry_run, &step).await?;
    show_import::show(imported, quiet, args.json)
}

async fn run(args: RunArgs, quiet: bool) -> Result<i32> {
    let (draw, group) = progress::for_run(args.no_progress, quiet);
    let options = RunOptions {
        output: args.output.clone(),
        max_file_size: args.max_file_size,
        engine: args.mapping.engine(),
        progress: draw,
        on_invalid: args.on_invalid,
        insights: !args.no_insights,
        progress_group: group,
        allow_empty: args.allow_empty,
        take_over: args.take_over,
        keep_previous: args.keep_previous,
        incremental: args.incremental && !args.full,
        on_changed: args.on_changed,
        cluster: args.cluster.clone(),
    };
    let project = commands::run::run(&args.mapping.files, &args.mapping.vars(), &options).await?;
    show_run::show(project, quiet, args.json)
}

async fn schema(args: MappingArgs) -> Result<i32> {
    commands::schema::schemas(&args.files, &args.vars(), &args.engine(), outln).await?;
    Ok(exit::exit_code(Outcome::Success))
}

async fn explain(args: MappingArgs) -> Result<i32> {
    commands::explain::explain(&args.files, &args.vars(), &args.engine(), out).await?;
    Ok(exit::exit_code(Outcome::Success))
}

/// Options of the commands that only read sources' schemas or records.
fn reading(on_bad_records: BadRecordPolicy) -> EngineOptions {
    EngineOptions {
        on_bad_records,
        ..EngineOptions::default()
    }
}

async fn validate(args: ValidateArgs, quiet: bool) -> Result<i32> {
    let options = RunOptions {
        progress: progress::for_check(quiet),
        engine: reading(args.on_bad_records),
        ..RunOptions::default()
    };
    let validated = match args.dataset {
        Some(dataset) => {
            commands::validate::data(dataset, &args.targets, args.schema.as_deref(), &options)
                .await?
        }
        None => {
            let vars: Vars = args.vars.iter().cloned().collect();
            let checked = |result: &StaticResult| {
                if !quiet {
                    say(checked_line(result));
                }
            };
            commands::validate::mappings(&args.targets, &vars, &options, checked).await?
        }
    };
    match validated {
        Validated::Data(report) => {
            if args.json {
                outln(to_json(&report)?)?;
            }
            if !quiet {
                say(report.human());
                for example in &report.reject_examples {
                    say(format_args!("  invalid: {example}\n"));
                }
            }
            Ok(exit::exit_code(exit::of_data_check(&report)))
        }
        Validated::Mappings(results) => {
            if args.json {
                outln(to_json(&results)?)?;
            }
            Ok(exit::exit_code(exit::of_validation(&results)))
        }
    }
}

/// One mapping file's verdict for a person.
fn checked_line(result: &StaticResult) -> String {
    match &result.error {
        None => format!("{}: ok\n", result.file),
        // Mapping errors already start with the file name.
        Some(error) if error.starts_with(&result.file) => format!("{error}\n"),
        Some(error) => format!("{}: {error}\n", result.file),
    }
}

async fn init(args: InitArgs, quiet: bool) -> Result<i32> {
    let report = commands::init::init(&crate::init::InitOptions {
        sources: args.sources,
        into: args.into,
        force: args.force,
        engine: reading(args.on_bad_records),
    })
    .await?;
    if !quiet {
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
    }
    Ok(exit::exit_code(exit::of_init(&report)))
}

async fn sources(args: SourcesArgs) -> Result<i32> {
    let engine = reading(args.on_bad_records);
    // Files that fit no table are told first, before the tables are described.
    let skipped = |file: &str, why: &str| {
        if args.json {
            return Ok(());
        }
        outln(format_args!("skipped {file}: {why}"))
    };
    let sources = commands::sources::sources(&args.target, &args.vars, &engine, skipped).await?;
    if args.json {
        outln(to_json(&sources)?)?;
    } else {
        for source in &sources {
            out(source.human())?;
        }
    }
    Ok(exit::exit_code(Outcome::Success))
}
