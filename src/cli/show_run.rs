//! How a run's results are shown. The run is always a project (one file is a project of one);
//! the shapes differ because scripts rely on them: one mapping file prints its run report (the
//! same JSON as `<dataset>.report.json`) and fails as the command, several print the combined
//! summary `{"datasets": [...], ...}` in which each dataset succeeds or fails on its own.

use serde::Serialize;

use super::exit::{self, Outcome};
use super::output::{outln, say, to_json};
use crate::error::{Error, Result, message};
use crate::insights::Severity;
use crate::personalize::DatasetType;
use crate::project::{DatasetOutcome, ProjectReport};
use crate::report::RunReport;

/// Prints a run's results (stderr for people, stdout with `--json`); returns the exit code. A
/// single dataset's failure is returned as the command's error.
pub(crate) fn show(mut project: ProjectReport, quiet: bool, json: bool) -> Result<i32> {
    if project.datasets.len() == 1 {
        let only = project.datasets.remove(0);
        if let Err(Error::NothingNew(why)) = &only.result {
            return show_unchanged(&only, why, quiet, json);
        }
        return show_one(only.result?, quiet, json);
    }
    if quiet {
        // Errors are never quiet: failed datasets and failed checks.
        for dataset in &project.datasets {
            if let Err(e) = &dataset.result {
                say(format_args!(
                    "error: {}: {}\n",
                    dataset.mapping_file,
                    message(e)
                ));
            }
        }
        for report in reports(&project) {
            say(failed_checks(report));
        }
    } else {
        for report in reports(&project) {
            say(report.human());
        }
        say(summary(&project));
    }
    if json {
        outln(to_json(&ProjectJson::new(&project))?)?;
    }
    Ok(exit::exit_code(exit::of_project(&project)))
}

/// An incremental run with nothing new: said, not failed (exit 0).
fn show_unchanged(dataset: &DatasetOutcome, why: &str, quiet: bool, json: bool) -> Result<i32> {
    if !quiet {
        say(format_args!("{why}\n"));
    }
    if json {
        let unchanged = serde_json::json!({
            "status": "unchanged",
            "dataset": dataset.dataset,
            "mapping_file": dataset.mapping_file,
            "message": why,
        });
        outln(to_json(&unchanged)?)?;
    }
    Ok(exit::exit_code(Outcome::Success))
}

fn show_one(report: RunReport, quiet: bool, json: bool) -> Result<i32> {
    if quiet {
        say(failed_checks(&report));
    } else {
        say(report.human());
    }
    if json {
        outln(to_json(&report)?)?;
    }
    Ok(exit::exit_code(exit::of_report(&report)))
}

fn reports(project: &ProjectReport) -> impl Iterator<Item = &RunReport> {
    project
        .datasets
        .iter()
        .filter_map(|d| d.result.as_ref().ok())
}

/// The failed dataset-level checks of a run, for `-q` (errors are never quiet).
fn failed_checks(report: &RunReport) -> String {
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

/// The combined summary for a person (stderr), after each dataset's own summary.
fn summary(project: &ProjectReport) -> String {
    let count = |unchanged: bool| {
        project
            .datasets
            .iter()
            .filter(|d| match &d.result {
                Err(Error::NothingNew(_)) => unchanged,
                Err(_) => !unchanged,
                Ok(_) => false,
            })
            .count()
    };
    let (failed, unchanged) = (count(false), count(true));
    let mut out = format!(
        "{} dataset(s) in {:.2}s: {} published, {} failed",
        project.datasets.len(),
        project.wall_seconds,
        project.datasets.len() - failed - unchanged,
        failed
    );
    if unchanged > 0 {
        out.push_str(&format!(", {unchanged} unchanged (nothing new)"));
    }
    if let (Some(limit), Some(peak)) = (project.memory_limit_bytes, project.memory_peak_bytes) {
        out.push_str(&format!(
            "; operator memory peaked at {} of the {} limit",
            bytesize::ByteSize(peak),
            bytesize::ByteSize(limit)
        ));
    }
    out.push('\n');
    for dataset in &project.datasets {
        out.push_str(&summary_line(dataset));
    }
    out
}

fn summary_line(dataset: &DatasetOutcome) -> String {
    match &dataset.result {
        Ok(report) => {
            let checks = match report.checks.as_ref().map_or(0, |c| c.errors()) {
                0 => String::new(),
                n => format!(", {n} check error(s)"),
            };
            format!(
                "  {:<20} published  {} rows{checks}  ({})\n",
                dataset.dataset.to_string(),
                report.rows.written,
                dataset.mapping_file
            )
        }
        Err(Error::NothingNew(why)) => format!(
            "  {:<20} unchanged  {}: {why}\n",
            dataset.dataset.to_string(),
            dataset.mapping_file,
        ),
        Err(e) => format!(
            "  {:<20} FAILED     {}: {} (its previous export is untouched)\n",
            dataset.dataset.to_string(),
            dataset.mapping_file,
            message(e)
        ),
    }
}

/// The `--json` shape of several datasets (README, "Command line").
#[derive(Serialize)]
struct ProjectJson<'a> {
    datasets: Vec<DatasetJson<'a>>,
    wall_seconds: f64,
    memory_limit_bytes: Option<u64>,
    memory_peak_bytes: Option<u64>,
}

#[derive(Serialize)]
struct DatasetJson<'a> {
    mapping_file: &'a str,
    dataset: DatasetType,
    status: &'static str,
    /// The exit code of this dataset's failure (0 once published, whatever its checks say).
    exit_code: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    report: Option<&'a RunReport>,
}

impl<'a> ProjectJson<'a> {
    fn new(project: &'a ProjectReport) -> Self {
        let datasets = project
            .datasets
            .iter()
            .map(|d| {
                let (status, outcome) = match &d.result {
                    Ok(_) => ("published", Outcome::Success),
                    Err(Error::NothingNew(_)) => ("unchanged", Outcome::Success),
                    Err(e) => ("failed", Outcome::Failed(e)),
                };
                DatasetJson {
                    mapping_file: &d.mapping_file,
                    dataset: d.dataset,
                    status,
                    exit_code: exit::exit_code(outcome),
                    error: d.result.as_ref().err().map(message),
                    report: d.result.as_ref().ok(),
                }
            })
            .collect();
        ProjectJson {
            datasets,
            wall_seconds: project.wall_seconds,
            memory_limit_bytes: project.memory_limit_bytes,
            memory_peak_bytes: project.memory_peak_bytes,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn failed(file: &str, e: Error) -> DatasetOutcome {
        DatasetOutcome {
            mapping_file: file.into(),
            dataset: DatasetType::Items,
            result: Err(e),
        }
    }

    #[test]
    fn several_datasets_keep_the_documented_json_and_the_first_failure_code() {
        let project = ProjectReport {
            datasets: vec![
                failed("a.sql", Error::mapping("a.sql", 2, "no FROM")),
                failed("b.sql", Error::Data("a bad row".into())),
            ],
            wall_seconds: 1.5,
            memory_limit_bytes: Some(1024),
            memory_peak_bytes: None,
        };
        let json = serde_json::to_value(ProjectJson::new(&project)).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        assert_eq!(
            keys,
            [
                "datasets",
                "wall_seconds",
                "memory_limit_bytes",
                "memory_peak_bytes"
            ]
        );
        let first = &json["datasets"][0];
        assert_eq!(first["mapping_file"], "a.sql");
        assert_eq!(first["status"], "failed");
        assert_eq!(first["exit_code"], 3);
        assert_eq!(first["error"], "a.sql:2: no FROM");
        assert!(first.get("report").is_none());
        assert_eq!(json["datasets"][1]["exit_code"], 4);
        assert_eq!(exit::exit_code(exit::of_project(&project)), 3);
    }
}
