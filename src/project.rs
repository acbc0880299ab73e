//! `pengine run DIR`: every mapping file of a project at once, in one process.
//!
//! The datasets execute concurrently on one runtime (so they share the cores) and draw from one
//! memory pool of `--memory-limit` ([`SharedMemory`]: equal shares while several run, so none is
//! starved). Each is staged on its own. Once all have finished, the cross-dataset checks compare
//! this run's results with each other, and every dataset that succeeded is published on its own:
//! one dataset's failure leaves the others published and its own previous export untouched.

use std::collections::BTreeMap;
use std::time::Instant;

use serde::Serialize;

use crate::error::{Error, Result};
use crate::mapping::MappingFile;
use crate::memory::SharedMemory;
use crate::personalize::DatasetType;
use crate::report::RunReport;
use crate::run::{self, RunOptions, Staged};

/// Whether a dataset of the project was published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetStatus {
    Published,
    Failed,
}

/// What happened to one mapping file of the project.
#[derive(Debug, Serialize)]
pub struct DatasetOutcome {
    pub mapping_file: String,
    pub dataset: DatasetType,
    pub status: DatasetStatus,
    /// The process exit code this dataset alone would have given.
    pub exit_code: i32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub report: Option<RunReport>,
}

/// The combined result of a project run.
#[derive(Debug, Serialize)]
pub struct ProjectReport {
    pub datasets: Vec<DatasetOutcome>,
    pub wall_seconds: f64,
    /// The shared memory limit (absent when unlimited).
    pub memory_limit_bytes: Option<u64>,
    /// The most memory the datasets' operators held at once.
    pub memory_peak_bytes: Option<u64>,
}

impl ProjectReport {
    pub fn failed(&self) -> impl Iterator<Item = &DatasetOutcome> {
        self.datasets.iter().filter(|d| d.error.is_some())
    }

    /// The exit code of the whole run: the first failure's, else the checks' verdict.
    pub fn exit_code(&self) -> i32 {
        use crate::error::exit_code;
        if let Some(failed) = self.failed().next() {
            return failed.exit_code;
        }
        let check_errors = self
            .datasets
            .iter()
            .filter_map(|d| d.report.as_ref()?.checks.as_ref())
            .any(|c| c.errors() > 0);
        if check_errors {
            exit_code::CHECKS
        } else {
            exit_code::OK
        }
    }

    /// The combined summary for a person (stderr), after each dataset's own summary.
    pub fn human(&self) -> String {
        let failed = self.failed().count();
        let mut out = format!(
            "{} dataset(s) in {:.2}s: {} published, {} failed",
            self.datasets.len(),
            self.wall_seconds,
            self.datasets.len() - failed,
            failed
        );
        if let (Some(limit), Some(peak)) = (self.memory_limit_bytes, self.memory_peak_bytes) {
            out.push_str(&format!(
                "; operator memory peaked at {} of the {} limit",
                bytesize::ByteSize(peak),
                bytesize::ByteSize(limit)
            ));
        }
        out.push('\n');
        for dataset in &self.datasets {
            match (&dataset.report, &dataset.error) {
                (Some(report), _) => {
                    let errors = report.checks.as_ref().map_or(0, |c| c.errors());
                    let checks = match errors {
                        0 => String::new(),
                        n => format!(", {n} check error(s)"),
                    };
                    out.push_str(&format!(
                        "  {:<20} published  {} rows{checks}  ({})\n",
                        dataset.dataset.to_string(),
                        report.rows.written,
                        dataset.mapping_file
                    ))
                }
                (None, error) => out.push_str(&format!(
                    "  {:<20} FAILED     {}: {} (its previous export is untouched)\n",
                    dataset.dataset.to_string(),
                    dataset.mapping_file,
                    error.as_deref().unwrap_or("unknown error")
                )),
            }
        }
        out
    }
}

/// Refuses two mapping files that would publish the same dataset to the same output.
fn check_distinct(mappings: &[MappingFile], options: &RunOptions) -> Result<()> {
    let mut seen: BTreeMap<(String, &str), String> = BTreeMap::new();
    for mapping in mappings {
        let output = run::output_location(mapping, options);
        if let Some(first) = seen.insert(
            (run::same_place_key(&output), mapping.dataset.key()),
            mapping.display_name(),
        ) {
            return Err(Error::Config(format!(
                "{} and {} both write the {} dataset to {output}: give one of them another \
                 output (its `output` directive) or run them separately",
                first,
                mapping.display_name(),
                mapping.dataset
            )));
        }
    }
    Ok(())
}

/// Runs the mapping files concurrently and publishes each dataset that succeeds.
pub async fn run_all(mappings: Vec<MappingFile>, options: &RunOptions) -> Result<ProjectReport> {
    check_distinct(&mappings, options)?;
    let started = Instant::now();
    let shared = options
        .engine
        .memory_limit
        .map(|limit| SharedMemory::new(limit as usize));
    let mut options = options.clone();
    options.engine.shared_memory = shared.clone();
    if options.progress {
        options.progress_group = Some(indicatif::MultiProgress::new());
    }
    // Every dataset counts as running from the start, so the first one cannot take it all.
    let participations: Vec<_> = mappings
        .iter()
        .map(|_| shared.as_ref().map(SharedMemory::participate))
        .collect();
    let tasks: Vec<_> = mappings
        .iter()
        .cloned()
        .zip(participations)
        .map(|(mapping, participation)| {
            let options = options.clone();
            tokio::spawn(async move {
                let staged = run::stage(&mapping, &options).await;
                drop(participation);
                staged
            })
        })
        .collect();
    let mut staged: Vec<Result<Staged>> = Vec::with_capacity(tasks.len());
    for task in tasks {
        staged.push(
            task.await
                .unwrap_or_else(|e| Err(Error::Internal(format!("a dataset's task failed: {e}")))),
        );
    }

    if crate::interrupt::requested() {
        for staged in staged.into_iter().flatten() {
            staged.discard().await;
        }
        return Err(Error::Interrupted);
    }
    let siblings: Vec<_> = staged.iter().flatten().map(Staged::ids).collect();
    let mut datasets = Vec::with_capacity(staged.len());
    for (mapping, staged) in mappings.iter().zip(staged) {
        let result = match staged {
            Ok(staged) => run::publish(staged, &options, &siblings).await,
            Err(e) => Err(e),
        };
        datasets.push(match result {
            Ok(report) => DatasetOutcome {
                mapping_file: mapping.display_name(),
                dataset: mapping.dataset,
                status: DatasetStatus::Published,
                exit_code: 0,
                error: None,
                report: Some(report),
            },
            Err(e) => {
                tracing::debug!("{} failed: {e:?}", mapping.display_name());
                DatasetOutcome {
                    mapping_file: mapping.display_name(),
                    dataset: mapping.dataset,
                    status: DatasetStatus::Failed,
                    exit_code: e.exit_code(),
                    error: Some(crate::error::message(&e)),
                    report: None,
                }
            }
        });
    }
    Ok(ProjectReport {
        datasets,
        wall_seconds: started.elapsed().as_secs_f64(),
        memory_limit_bytes: shared.as_ref().map(|s| s.limit() as u64),
        memory_peak_bytes: shared.as_ref().map(|s| s.peak() as u64),
    })
}
