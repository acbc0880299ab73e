//! What an import did, per dataset and job: what `--json` prints and what the exit code is
//! judged from (a failed job is a failure even though every request succeeded).

use serde::Serialize;

use super::ImportMode;
use super::record::FAILED;
use crate::personalize::DatasetType;

/// What was imported, per dataset.
#[derive(Debug, Serialize)]
pub(crate) struct ImportReport {
    pub(crate) dataset_group_arn: String,
    pub(crate) waited: bool,
    pub(crate) datasets: Vec<DatasetResult>,
    /// Datasets whose runs were all imported already (`--mode incremental`).
    pub(crate) up_to_date: Vec<DatasetType>,
}

#[derive(Debug, Serialize)]
pub(crate) struct DatasetResult {
    pub(crate) dataset: DatasetType,
    pub(crate) schema_name: String,
    pub(crate) schema_arn: String,
    pub(crate) schema_created: bool,
    pub(crate) dataset_arn: String,
    pub(crate) dataset_created: bool,
    pub(crate) jobs: Vec<JobResult>,
}

#[derive(Debug, Serialize)]
pub(crate) struct JobResult {
    pub(crate) run_id: String,
    pub(crate) job_name: String,
    pub(crate) job_arn: String,
    pub(crate) mode: ImportMode,
    pub(crate) data_location: String,
    /// False when a job of this name for this data location had been started before.
    pub(crate) created: bool,
    /// The last status seen (the final one with `--wait`).
    pub(crate) status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) failure_reason: Option<String>,
}

impl ImportReport {
    /// One line per job that failed: the dataset, the job and the service's reason.
    pub(crate) fn failures(&self) -> Vec<String> {
        self.datasets
            .iter()
            .flat_map(|d| d.jobs.iter().map(move |j| (d.dataset, j)))
            .filter(|(_, j)| j.status == FAILED)
            .map(|(dataset, j)| {
                format!(
                    "{dataset}: import job {} (run {}) failed: {}",
                    j.job_arn,
                    j.run_id,
                    j.failure_reason.as_deref().unwrap_or("no reason given")
                )
            })
            .collect()
    }
}
