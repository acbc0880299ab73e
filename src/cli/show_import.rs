//! How `pengine import` is shown: a dry run's requests (JSON for `--cli-input-json`, or a plan to
//! read), an import's result (JSON, or lines), and its exit code (a failed job is exit 5).

use serde_json::json;

use super::exit::{self, Outcome};
use super::output::{outln, say, to_json};
use crate::commands::import::Imported;
use crate::error::{Error, Result};
use crate::import::plan::Plan;
use crate::import::report::ImportReport;

/// Prints what the import planned or did; returns the exit code.
pub(crate) fn show(imported: Imported, quiet: bool, json: bool) -> Result<i32> {
    match imported {
        Imported::DryRun(plan) => {
            if json {
                outln(to_json(&json!({ "requests": plan.requests() }))?)?;
            } else {
                outln(human_plan(&plan))?;
            }
            Ok(exit::exit_code(Outcome::Success))
        }
        Imported::Done(report) => {
            if json {
                outln(to_json(&report)?)?;
            } else if !quiet {
                say(human_report(&report));
            }
            let failures = report.failures();
            if failures.is_empty() {
                return Ok(exit::exit_code(Outcome::Success));
            }
            let failed = Error::Service(failures.join("\n"));
            say(format_args!("error: {failed}\n"));
            Ok(exit::exit_code(Outcome::Failed(&failed)))
        }
    }
}

fn human_plan(plan: &Plan) -> String {
    let mut text = format!(
        "Dry run: no request was sent. Assuming nothing exists yet in {}, pengine import would \
         make these requests (--json prints their inputs for `aws personalize <command> \
         --cli-input-json`):\n",
        plan.group.arn
    );
    for d in &plan.datasets {
        text.push_str(&format!(
            "\n{}:\n  CreateSchema            {} ({} characters)\n  CreateDataset           {} \
             (type {}, schema {})\n",
            d.dataset,
            d.schema_name,
            d.schema.chars().count(),
            d.dataset_name,
            crate::import::plan::api_dataset_type(d.dataset),
            d.schema_arn
        ));
        for job in &d.jobs {
            text.push_str(&format!(
                "  CreateDatasetImportJob  {} {} of run {} from {}\n",
                job.job_name,
                job.mode.as_str(),
                job.run_id,
                job.data_location
            ));
        }
    }
    for dataset in &plan.up_to_date {
        text.push_str(&format!("\n{dataset}: every run is imported already\n"));
    }
    text
}

fn human_report(report: &ImportReport) -> String {
    let mut text = String::new();
    for d in &report.datasets {
        for job in &d.jobs {
            let how = if job.created {
                "started"
            } else {
                "already started"
            };
            text.push_str(&format!(
                "{}: {} import of run {} {how}, status {}: {}\n",
                d.dataset,
                job.mode.as_str(),
                job.run_id,
                job.status,
                job.job_arn
            ));
        }
    }
    for dataset in &report.up_to_date {
        text.push_str(&format!(
            "{dataset}: nothing new to import (every run is imported)\n"
        ));
    }
    if !report.waited && report.datasets.iter().any(|d| !d.jobs.is_empty()) {
        text.push_str(
            "The jobs run in Personalize; follow them with --wait next time, or `aws personalize \
             describe-dataset-import-job --dataset-import-job-arn ARN`.\n",
        );
    }
    text
}
