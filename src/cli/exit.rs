//! The exit-code policy, in one place: what each outcome of a command exits with. Every code
//! the process returns comes from [`exit_code`] (the codes are in [`crate::error::exit_code`] and
//! the README; the kind of each error in [`Error::exit_code`]).

use crate::error::{Error, exit_code as code};
use crate::init::InitReport;
use crate::project::ProjectReport;
use crate::report::RunReport;
use crate::validate::StaticResult;

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
        // The signal's own code (130, 143, 129), as shells report a process it killed.
        Outcome::Failed(Error::Interrupted) => crate::interrupt::received().exit_code(),
        Outcome::Failed(e) => e.exit_code(),
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
        .find_map(|d| d.result.as_ref().err())
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
    }
}
