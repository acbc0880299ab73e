//! The exit-code policy, in one place: what each outcome of a command exits with, errors by
//! their kind. Every code the process returns comes from [`exit_code`]; the README's table
//! ("Exit codes") documents the same codes.

use datafusion::error::DataFusionError;

use crate::error::Error;
use crate::init::InitReport;
use crate::interrupt::StopSignal;
use crate::project::ProjectReport;
use crate::report::RunReport;
use crate::validate::StaticResult;

/// Process exit codes, documented in the README.
mod code {
    /// The command succeeded.
    pub(super) const OK: i32 = 0;
    /// An unexpected internal failure (a bug: please report it).
    pub(super) const INTERNAL: i32 = 1;
    /// The command line was wrong (clap's own code).
    pub(super) const USAGE: i32 = 2;
    /// The mapping file is wrong: syntax, directive, variable or SQL planning error.
    pub(super) const MAPPING: i32 = 3;
    /// The data breaks a Personalize rule or cannot be coerced.
    pub(super) const DATA: i32 = 4;
    /// A source or the destination could not be read or written, or a cloud service (Amazon
    /// Personalize) refused a request or failed an import job.
    pub(super) const IO: i32 = 5;
    /// The data was checked (and, for `run`, published) but a dataset-level rule fails: the
    /// service would refuse to train on it (e.g. fewer than 1,000 interactions).
    pub(super) const CHECKS: i32 = 6;
    /// The query needed more memory than `--memory-limit` allows (and could not spill).
    pub(super) const OUT_OF_MEMORY: i32 = 7;
    /// Stopped by a signal: 128 + its number (130 Ctrl-C, 143 SIGTERM, 129 SIGHUP).
    pub(super) const SIGNALLED: i32 = 128;
}

/// How a command ended, as far as the exit code is concerned.
#[derive(Debug)]
pub(crate) enum Outcome<'a> {
    /// Done, and every check passed.
    Success,
    /// The data was checked (for `run`, published) but a dataset-level check fails.
    ChecksFailed,
    /// Rows of data made elsewhere break a Personalize rule (`validate --dataset`).
    RowsRejected,
    /// `init` wrote no mapping file, or one it wrote does not validate.
    NothingToRun,
    /// The command (or the one dataset or file that decides) failed with this error.
    Failed(&'a Error),
}

/// The process exit code for an outcome.
pub(crate) fn exit_code(outcome: Outcome<'_>) -> i32 {
    match outcome {
        Outcome::Success => code::OK,
        Outcome::ChecksFailed => code::CHECKS,
        Outcome::RowsRejected => code::DATA,
        Outcome::NothingToRun => code::MAPPING,
        Outcome::Failed(e) => error_code(e),
    }
}

fn signalled(signal: StopSignal) -> i32 {
    code::SIGNALLED + signal.number()
}

/// The code for each kind of error.
fn error_code(e: &Error) -> i32 {
    match e {
        Error::NothingNew(_) => code::OK,
        Error::Mapping { .. } | Error::Config(_) => code::MAPPING,
        Error::Column { .. } | Error::Data(_) | Error::Arrow(_) | Error::Empty(_) => code::DATA,
        Error::Storage { .. }
        | Error::Io { .. }
        | Error::DiskFull { .. }
        | Error::Destination(_)
        | Error::Database(_)
        | Error::Cluster(_)
        | Error::ClusterJob { .. }
        | Error::Service(_) => code::IO,
        Error::Usage(_) => code::USAGE,
        // The signal's own code, as shells report a process it killed.
        Error::Interrupted => signalled(crate::interrupt::received()),
        Error::Internal(_) => code::INTERNAL,
        Error::DataFusion(_) if e.out_of_memory().is_some() => code::OUT_OF_MEMORY,
        Error::DataFusion(inner) => datafusion_code(inner),
    }
}

/// A DataFusion error by its root cause (pengine's own errors raised inside a scan by theirs).
fn datafusion_code(e: &DataFusionError) -> i32 {
    use DataFusionError as D;
    match e.find_root() {
        D::ObjectStore(_) | D::IoError(_) => code::IO,
        D::ArrowError(..) | D::ParquetError(_) | D::Execution(_) => code::DATA,
        D::External(inner) => inner.downcast_ref::<Error>().map_or(code::IO, error_code),
        D::SQL(..) | D::Plan(_) | D::SchemaError(..) | D::NotImplemented(_) => code::MAPPING,
        _ => code::INTERNAL,
    }
}

/// A published (or validated) dataset: whether its dataset-level checks pass.
pub(crate) fn of_report(report: &RunReport) -> Outcome<'static> {
    if report.checks.as_ref().is_some_and(|c| c.errors() > 0) {
        Outcome::ChecksFailed
    } else {
        Outcome::Success
    }
}

/// Several datasets run at once: the first failure (in file order), else the checks' verdict.
pub(crate) fn of_project(project: &ProjectReport) -> Outcome<'_> {
    if let Some(e) = project
        .datasets
        .iter()
        .filter_map(|d| d.result.as_ref().err())
        .find(|e| !matches!(e, Error::NothingNew(_)))
    {
        return Outcome::Failed(e);
    }
    let reports = project
        .datasets
        .iter()
        .filter_map(|d| d.result.as_ref().ok());
    for report in reports {
        if let Outcome::ChecksFailed = of_report(report) {
            return Outcome::ChecksFailed;
        }
    }
    Outcome::Success
}

/// Data made elsewhere: rejected rows first, then the dataset-level checks.
pub(crate) fn of_data_check(report: &RunReport) -> Outcome<'static> {
    if report.rows.rejected > 0 {
        Outcome::RowsRejected
    } else {
        of_report(report)
    }
}

/// Mapping files validated: the first one that failed decides.
pub(crate) fn of_validation(results: &[StaticResult]) -> Outcome<'_> {
    match results.iter().find_map(|r| r.failure.as_ref()) {
        Some(e) => Outcome::Failed(e),
        None => Outcome::Success,
    }
}

/// `init`: success only when it wrote mapping files and they all validate.
pub(crate) fn of_init(report: &InitReport) -> Outcome<'static> {
    if report.mappings_written() == 0 || !report.all_valid() {
        Outcome::NothingToRun
    } else {
        Outcome::Success
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_map_to_the_documented_codes() {
        assert_eq!(exit_code(Outcome::Success), 0);
        assert_eq!(exit_code(Outcome::ChecksFailed), 6);
        assert_eq!(exit_code(Outcome::RowsRejected), 4);
        assert_eq!(exit_code(Outcome::NothingToRun), 3);
        let mapping = Error::mapping("x.sql", 1, "bad");
        assert_eq!(exit_code(Outcome::Failed(&mapping)), 3);
        let usage = Error::Usage("bad flag".into());
        assert_eq!(exit_code(Outcome::Failed(&usage)), 2);
        let service = Error::Service("items: CreateSchema: InvalidInputException".into());
        assert_eq!(exit_code(Outcome::Failed(&service)), 5);
        let plan = Error::DataFusion(DataFusionError::Plan("no such column".into()));
        assert_eq!(exit_code(Outcome::Failed(&plan)), 3);
        let ours_in_a_scan = Error::DataFusion(DataFusionError::External(Box::new(Error::Data(
            "a bad record".into(),
        ))));
        assert_eq!(exit_code(Outcome::Failed(&ours_in_a_scan)), 4);
        assert_eq!(signalled(StopSignal::Terminate), 143);
        assert_eq!(signalled(StopSignal::Hangup), 129);
    }
}
