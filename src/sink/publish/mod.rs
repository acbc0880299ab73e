//! Replace, never mix: how a run's output becomes the export.
//!
//! Object stores have no rename of folders (S3 none at all), so a run never writes into the data
//! folder directly. It stages everything under `<output>/.pengine/<dataset>/<run-id>/`, then writes
//! one small commit record `<output>/.pengine/<dataset>/COMMIT.json` (a single PUT: the commit
//! point), then promotes: moves the staged parts over the data folder, deletes old parts that are
//! not in the new set, moves the schema and report beside it, and removes the staging area.
//!
//! * Failed or killed before the commit record: the previous export was never touched; the next
//!   run deletes the leftovers.
//! * Killed after it: the commit record says exactly what the export must become, and the next run
//!   (or any command on that output) finishes the promotion before doing anything else. Every step
//!   of the promotion can be repeated safely.

//!
//! The steps live in their own files: [`promote`] the crash protocol after the commit point
//! (commit record, promotion, recovery), [`objects`] the repeatable store operations it is made
//! of; this file the staging area of one run.

mod objects;
pub mod pointer;
mod promote;
#[cfg(test)]
mod tests;

use std::collections::BTreeSet;

use object_store::path::Path;

use super::destination::Destination;
use super::parts::PartInfo;
use crate::error::{Error, Result};
use crate::personalize::DatasetType;
pub use crate::sources::listing::STATE_DIR;
use objects::{data_files, delete_prefix, pengine_parts, put};
pub use promote::recover;
use promote::{CommitRecord, promote};

/// How many foreign file names an error lists before "and N more".
const FOREIGN_NAMES_SHOWN: usize = 10;
const STAGED_DATA: &str = "data";
const STAGED_SCHEMA: &str = "schema.json";
const STAGED_REPORT: &str = "report.json";
const STAGED_IDS: &str = "ids";
/// The staged rejects file's name.
pub const STAGED_REJECTS: &str = "rejects.csv";
/// The staged bad-records file's name.
pub const STAGED_BAD_RECORDS: &str = "bad-records.jsonl";

/// Which files beside the data a run staged.
#[derive(Debug, Clone, Copy, Default)]
pub struct SideFiles {
    pub rejects: bool,
    pub bad_records: bool,
}

/// One run's staging area.
pub struct Staging {
    pub dest: Destination,
    pub dataset: DatasetType,
    pub run_id: String,
    dir: Path,
    /// Names in the data folder this run may delete or replace: what pengine published there
    /// (and the foreign files, when taking the folder over).
    deletable: BTreeSet<String>,
}

impl Staging {
    /// Prepares a staging area for a new run; finishes or clears what earlier runs left first.
    /// Files in the data folder that pengine did not write stop the run here, before anything is
    /// written, unless `take_over` says they may be deleted.
    pub async fn begin(
        dest: &Destination,
        dataset: DatasetType,
        take_over: bool,
    ) -> Result<Staging> {
        recover(dest, dataset).await?;
        let present = data_files(dest, dataset).await?;
        let mut deletable = pengine_parts(dest, dataset).await?;
        let foreign: Vec<&String> = present.iter().filter(|n| !deletable.contains(*n)).collect();
        if !foreign.is_empty() {
            let data_dir = dest.show(&dest.data_dir(dataset));
            let mut sorted: Vec<&str> = foreign.iter().map(|n| n.as_str()).collect();
            sorted.sort_unstable();
            let names = &sorted[..sorted.len().min(FOREIGN_NAMES_SHOWN)];
            let more = foreign.len().saturating_sub(FOREIGN_NAMES_SHOWN);
            let more = if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            };
            if !take_over {
                return Err(Error::Destination(format!(
                    "{data_dir}/ holds files pengine did not write: {}{more}. Publishing would \
                     delete them (Personalize reads every file of the folder). Move them away, \
                     choose another --output, or pass --take-over to let pengine replace the \
                     folder's contents",
                    names.join(", ")
                )));
            }
            tracing::warn!(
                "--take-over: {data_dir}/ holds files pengine did not write ({}{more}); they are \
                 deleted when this run publishes",
                names.join(", ")
            );
            deletable.extend(foreign.into_iter().cloned());
        }
        tracing::debug!(
            "staging {dataset} under {}",
            dest.show(&dest.state_dir(dataset))
        );
        let run_id = format!(
            "{}-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let dir = dest.state_dir(dataset).clone().join(run_id.as_str());
        Ok(Staging {
            dest: dest.clone(),
            dataset,
            run_id,
            dir,
            deletable,
        })
    }

    /// The names publishing `parts` would delete from the data folder: what this run may
    /// delete ([`Staging::begin`]) and the new export does not have. Files that appeared since
    /// the run began are kept.
    pub async fn deletions(&self, parts: &[PartInfo]) -> Result<Vec<String>> {
        let keep: BTreeSet<&str> = parts.iter().map(|p| p.name.as_str()).collect();
        Ok(data_files(&self.dest, self.dataset)
            .await?
            .into_iter()
            .filter(|name| self.deletable.contains(name) && !keep.contains(name.as_str()))
            .collect())
    }

    /// Where the parts are written during the run.
    pub fn data_dir(&self) -> Path {
        self.dir.clone().join(STAGED_DATA)
    }

    /// The folder holding the staged rejects file ([`STAGED_REJECTS`]).
    pub fn dir(&self) -> Path {
        self.dir.clone()
    }

    /// Deletes the parts staged so far (before a retry).
    pub async fn clear_data(&self) -> Result<()> {
        delete_prefix(&self.dest, &self.data_dir()).await
    }

    /// Stages the schema and report, writes the commit record, and promotes the run. Until the
    /// commit record is written, a failure or an interrupt removes the staging area.
    /// `side_files` says which of the rejects and bad-records files were staged; `ids` are
    /// (column, bytes) id samples; `delete` the names to remove from the data folder
    /// ([`Staging::deletions`]).
    pub async fn commit(
        self,
        parts: &[PartInfo],
        delete: Vec<String>,
        side_files: SideFiles,
        ids: &[(&str, Vec<u8>)],
        schema: &str,
        report: &str,
    ) -> Result<()> {
        let store = &self.dest.store;
        let staged = crate::interrupt::cancellable(async {
            for (column, bytes) in ids {
                let path = self.dir.clone().join(STAGED_IDS).join(*column);
                put(store, &path, bytes, &self.dest).await?;
            }
            let schema_path = self.dir.clone().join(STAGED_SCHEMA);
            put(store, &schema_path, schema.as_bytes(), &self.dest).await?;
            let report_path = self.dir.clone().join(STAGED_REPORT);
            put(store, &report_path, report.as_bytes(), &self.dest).await
        })
        .await;
        if let Err(e) = staged {
            self.discard().await;
            return Err(e);
        }
        let record = CommitRecord {
            run_id: self.run_id.clone(),
            parts: parts.to_vec(),
            rejects: side_files.rejects,
            bad_records: side_files.bad_records,
            id_columns: ids.iter().map(|(c, _)| c.to_string()).collect(),
            delete,
        };
        let text = serde_json::to_vec_pretty(&record)
            .map_err(|e| Error::Internal(format!("commit record: {e}")))?;
        // A failed PUT may still have written the record: the staging area stays, for the next
        // run to promote (record present) or delete (record absent).
        put(
            store,
            &self.dest.commit_path(self.dataset),
            &text,
            &self.dest,
        )
        .await?;
        tracing::debug!(
            "commit point: {} written",
            self.dest.show(&self.dest.commit_path(self.dataset))
        );
        crate::failpoint::hit("after-commit-record");
        promote(&self.dest, self.dataset, &record).await
    }

    /// Removes this run's staged files (the previous export was never touched).
    pub async fn discard(self) {
        if let Err(e) = delete_prefix(&self.dest, &self.dir).await {
            tracing::warn!(
                "could not remove the staging area {}: {e}",
                self.dest.show(&self.dir)
            );
        }
    }
}
