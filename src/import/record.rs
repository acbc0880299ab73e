//! The imports record `<output>/.pengine/imports/<dataset>.json`: which runs of a dataset were
//! handed to which dataset group, by which job. `--mode incremental` imports what it does not list.
//! An entry is written once its job exists (created, or found already started), and updated with
//! the job's final status when the import waits for it.

use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use super::ImportMode;
use crate::error::{Error, Result};
use crate::personalize::DatasetType;
use crate::sink::destination::Destination;
use crate::sources::listing::STATE_DIR;

/// Under [`STATE_DIR`]: `<dataset>.json`, one record per dataset.
const IMPORTS_DIR: &str = "imports";
/// The record's layout version; a newer one is refused rather than misread.
const RECORD_FORMAT: u32 = 1;
/// The status Personalize gives a job that failed; its run is not imported.
pub(crate) const FAILED: &str = "CREATE FAILED";
/// The status of a finished import (and of a dataset ready for one).
pub(crate) const ACTIVE: &str = "ACTIVE";

/// One run imported (or being imported) into a dataset group.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ImportEntry {
    pub(crate) dataset_group_arn: String,
    pub(crate) dataset_arn: String,
    pub(crate) run_id: String,
    pub(crate) mode: ImportMode,
    pub(crate) job_name: String,
    pub(crate) job_arn: String,
    pub(crate) data_location: String,
    pub(crate) started_at: String,
    /// The job's last known status (`ACTIVE`, `CREATE FAILED`, or a pending one).
    pub(crate) status: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) failure_reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct ImportRecord {
    pub(crate) format: u32,
    pub(crate) dataset: String,
    pub(crate) imports: Vec<ImportEntry>,
}

impl ImportRecord {
    fn empty(dataset: DatasetType) -> ImportRecord {
        ImportRecord {
            format: RECORD_FORMAT,
            dataset: dataset.key().to_string(),
            imports: Vec::new(),
        }
    }

    /// The runs whose import into `group` is known to have finished (ACTIVE). A run whose job
    /// was left pending (no `--wait`, or an interrupted one) is planned again: starting it finds
    /// its job by name and follows it, or starts another if it failed.
    pub(crate) fn imported_runs(&self, group: &str) -> std::collections::HashSet<String> {
        self.imports
            .iter()
            .filter(|e| e.dataset_group_arn == group && e.status.as_deref() == Some(ACTIVE))
            .map(|e| e.run_id.clone())
            .collect()
    }

    /// Adds an entry, or replaces the one of the same job.
    pub(crate) fn upsert(&mut self, entry: ImportEntry) {
        match self.imports.iter_mut().find(|e| e.job_arn == entry.job_arn) {
            Some(existing) => *existing = entry,
            None => self.imports.push(entry),
        }
    }
}

fn path(dest: &Destination, dataset: DatasetType) -> Path {
    dest.root
        .clone()
        .join(STATE_DIR)
        .join(IMPORTS_DIR)
        .join(format!("{}.json", dataset.key()))
}

/// A dataset's record (empty when nothing was imported yet).
pub(crate) async fn read(dest: &Destination, dataset: DatasetType) -> Result<ImportRecord> {
    let path = path(dest, dataset);
    let Some(bytes) = dest.read_optional(&path).await? else {
        return Ok(ImportRecord::empty(dataset));
    };
    let record: ImportRecord = serde_json::from_slice(&bytes).map_err(|e| {
        Error::Data(format!(
            "{} is damaged ({e}); delete it to import every run again",
            dest.show(&path)
        ))
    })?;
    if record.format > RECORD_FORMAT {
        return Err(Error::Data(format!(
            "{} was written by a newer pengine (format {}): upgrade pengine",
            dest.show(&path),
            record.format
        )));
    }
    Ok(record)
}

/// Writes a dataset's record in one PUT.
pub(crate) async fn write(dest: &Destination, record: &ImportRecord) -> Result<()> {
    let dataset: DatasetType = record.dataset.parse().map_err(Error::Internal)?;
    let path = path(dest, dataset);
    let bytes = serde_json::to_vec_pretty(record)
        .map_err(|e| Error::Internal(format!("imports record: {e}")))?;
    dest.store
        .put(&path, PutPayload::from(bytes))
        .await
        .map_err(|e| Error::storage(format!("writing {}", dest.show(&path)), e))?;
    Ok(())
}
