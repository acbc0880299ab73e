//! Replace, never mix: how a run's output becomes the dataset.
//!
//! Object stores have no rename of folders (S3 none at all), so a run never writes into the data
//! folder directly. It writes everything into a folder of its own,
//! `<output>/.pengine/snapshots/<dataset>/<run-id>/` (parts under `data/`, schema, report, side
//! files), then writes the dataset's pointer `<output>/<dataset>.current.json` in one PUT: the
//! commit point. From then on the folder is an immutable snapshot, and the pointer names it.
//! Then the run promotes: copies the parts into the mirror folder `<output>/<dataset>/` (for
//! users who point at it by hand), deletes old parts there, copies the schema and report beside
//! it, and deletes snapshots past the retention.
//!
//! * Failed or killed before the pointer is written: the previous pointer, its snapshots and the
//!   mirror were never touched; the next run deletes the leftovers.
//! * Killed after it: the pointer already names the new run; the next run (or any command on
//!   that output) finishes the mirror's promotion before doing anything else. Every step of the
//!   promotion can be repeated safely.
//!
//! The steps live in their own files: [`pointer`] the commit point, [`promote`] the promotion
//! and recovery after it, [`objects`] the repeatable store operations they are made of,
//! [`legacy`] the commit record of versions before snapshots; this file one run's staging.

mod legacy;
mod objects;
pub mod pointer;
mod promote;
mod task_files;
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
use pointer::{Current, MirrorPlan, POINTER_FORMAT, RunKind, SnapshotRun, read_current};
pub use promote::recover;

/// How many foreign file names an error lists before "and N more".
const FOREIGN_NAMES_SHOWN: usize = 10;
const STAGED_DATA: &str = "data";
/// The staged (and snapshot's) Avro schema file's name.
pub const STAGED_SCHEMA: &str = "schema.json";
const STAGED_REPORT: &str = "report.json";
const STAGED_IDS: &str = "ids";
/// The staged rejects file's name.
pub const STAGED_REJECTS: &str = "rejects.csv";
/// The staged bad-records file's name.
pub const STAGED_BAD_RECORDS: &str = "bad-records.jsonl";
/// In the staging folder while a cluster job writes into it: its tasks complete their parts only
/// while it exists ([`crate::sink::upload::ObjectWriter::fenced`]).
pub const CLUSTER_JOB_MARKER: &str = "cluster-job.open";
/// Beside it (on a local disk): where the job's tasks write their files before moving them into
/// place, so that no upload's temporary file is ever among the staged parts.
pub const TASK_UPLOADS: &str = "task-uploads";

/// Which files beside the data a run staged.
#[derive(Debug, Clone, Copy, Default)]
pub struct SideFiles {
    pub rejects: bool,
    pub bad_records: bool,
}

/// How a run publishes, beside where.
#[derive(Debug, Clone, Copy)]
pub struct PublishOptions {
    /// Delete files in the data folder that pengine did not write (else the run stops).
    pub take_over: bool,
    /// How many earlier versions of the dataset (snapshots, with their increments) stay after a
    /// run commits, for readers that began before it.
    pub keep_previous: usize,
    /// Whether the run adds an increment to the current snapshot rather than replacing it.
    pub kind: RunKind,
}

impl Default for PublishOptions {
    fn default() -> Self {
        Self {
            take_over: false,
            keep_previous: 1,
            kind: RunKind::Full,
        }
    }
}

/// One run's staging area (its snapshot folder, until the pointer names it).
pub struct Staging {
    pub dest: Destination,
    pub dataset: DatasetType,
    pub run_id: String,
    dir: Path,
    options: PublishOptions,
    /// The pointer when the run began: what an increment adds to, and what a full run's commit
    /// keeps as the previous version.
    before: Option<Current>,
    /// Names in the data folder this run may delete or replace: what pengine published there
    /// (and the foreign files, when taking the folder over).
    deletable: BTreeSet<String>,
    /// Other files the snapshot keeps (name, bytes), written with the schema and report.
    extra: Vec<(String, Vec<u8>)>,
}

impl Staging {
    /// Prepares a staging area for a new run; finishes or clears what earlier runs left first.
    /// Files in the data folder that pengine did not write stop the run here, before anything is
    /// written, unless `take_over` says they may be deleted.
    pub async fn begin(
        dest: &Destination,
        dataset: DatasetType,
        options: PublishOptions,
    ) -> Result<Staging> {
        recover(dest, dataset).await?;
        let before = read_current(dest, dataset).await?;
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
            if !options.take_over {
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
        let run_id = format!(
            "{}-{}",
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ"),
            &uuid::Uuid::new_v4().simple().to_string()[..8]
        );
        let dir = dest.snapshot_dir(dataset, &run_id);
        tracing::debug!("staging {dataset} in {}", dest.show(&dir));
        let mut staging = Staging {
            dest: dest.clone(),
            dataset,
            run_id,
            dir,
            options: PublishOptions {
                kind: RunKind::Full,
                ..options
            },
            before,
            deletable,
            extra: Vec::new(),
        };
        if options.kind == RunKind::Increment {
            staging.make_increment()?;
        }
        Ok(staging)
    }

    /// Makes this run an increment of the dataset's current snapshot (it needs one).
    pub fn make_increment(&mut self) -> Result<()> {
        if self.before.is_none() {
            return Err(Error::Internal(format!(
                "an increment of {} needs a committed snapshot to add to",
                self.dataset
            )));
        }
        self.options.kind = RunKind::Increment;
        Ok(())
    }

    /// Whether this run adds an increment rather than replacing the dataset.
    pub fn kind(&self) -> RunKind {
        self.options.kind
    }

    /// Keeps a file in the snapshot beside the schema and report (written at commit).
    pub fn keep_file(&mut self, name: &str, bytes: Vec<u8>) {
        self.extra.push((name.to_string(), bytes));
    }

    /// The snapshot's data folder as a user reads it: the data location of an import of this
    /// run alone.
    pub fn data_location(&self) -> String {
        format!("{}/", self.dest.show(&self.data_dir()))
    }

    /// The pointer when this run began, if the dataset had been committed.
    pub fn before(&self) -> Option<&Current> {
        self.before.as_ref()
    }

    /// The names publishing `parts` would delete from the data folder: what this run may
    /// delete ([`Staging::begin`]) and the new export does not have. Files that appeared since
    /// the run began are kept.
    pub async fn deletions(&self, parts: &[PartInfo]) -> Result<Vec<String>> {
        let newest = self.snapshot_run(parts);
        let mut keep: BTreeSet<String> = parts
            .iter()
            .map(|p| Current::mirror_name(&newest, &p.name))
            .collect();
        if let (RunKind::Increment, Some(before)) = (self.options.kind, &self.before) {
            keep.extend(before.mirror_names());
        }
        Ok(data_files(&self.dest, self.dataset)
            .await?
            .into_iter()
            .filter(|name| self.deletable.contains(name) && !keep.contains(name))
            .collect())
    }

    /// This run as the pointer will name it.
    fn snapshot_run(&self, parts: &[PartInfo]) -> SnapshotRun {
        SnapshotRun {
            run_id: self.run_id.clone(),
            kind: self.options.kind,
            committed_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            data_location: self.data_location(),
            rows: parts.iter().map(|p| p.rows).sum(),
            bytes: parts.iter().map(|p| p.bytes).sum(),
            parts: parts.to_vec(),
        }
    }

    /// The pointer that commits this run: a full run starts a new chain and keeps the one before
    /// as the previous version; an increment extends the chain.
    fn pointer(&self, parts: &[PartInfo], mirror: MirrorPlan) -> Current {
        let newest = self.snapshot_run(parts);
        let (chain, mut previous) = match (self.options.kind, &self.before) {
            (RunKind::Increment, Some(before)) => {
                let mut chain = before.chain.clone();
                chain.push(newest);
                (chain, before.previous.clone())
            }
            (_, Some(before)) => {
                let mut previous = vec![before.chain.iter().map(|r| r.run_id.clone()).collect()];
                previous.extend(before.previous.iter().cloned());
                (vec![newest], previous)
            }
            (_, None) => (vec![newest], Vec::new()),
        };
        previous.truncate(self.options.keep_previous);
        Current {
            format: POINTER_FORMAT,
            dataset: self.dataset.key().to_string(),
            run_id: self.run_id.clone(),
            chain,
            previous,
            mirror,
        }
    }

    /// Where the parts are written during the run.
    pub fn data_dir(&self) -> Path {
        self.dest.snapshot_data_dir(self.dataset, &self.run_id)
    }

    /// The folder holding the staged rejects file ([`STAGED_REJECTS`]).
    pub fn dir(&self) -> Path {
        self.dir.clone()
    }

    /// Deletes the parts staged so far (before a retry).
    pub async fn clear_data(&self) -> Result<()> {
        delete_prefix(&self.dest, &self.data_dir()).await
    }

    /// Stages the schema and report, writes the pointer (the commit point), and promotes the
    /// run. Until the pointer is written, a failure or an interrupt removes the staging area.
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
            for (name, bytes) in &self.extra {
                put(
                    store,
                    &self.dir.clone().join(name.as_str()),
                    bytes,
                    &self.dest,
                )
                .await?;
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
        let current = self.pointer(
            parts,
            MirrorPlan {
                delete,
                rejects: side_files.rejects,
                bad_records: side_files.bad_records,
                id_columns: ids.iter().map(|(c, _)| c.to_string()).collect(),
            },
        );
        let text = pointer::to_bytes(&current)?;
        let pointer_path = self.dest.current_path(self.dataset);
        // A failed PUT may still have written the pointer: the staging area stays, for the next
        // run to promote (named by the pointer) or delete (not named).
        put(store, &pointer_path, &text, &self.dest).await?;
        tracing::debug!("commit point: {} written", self.dest.show(&pointer_path));
        crate::failpoint::hit("after-commit-record");
        promote::promote(&self.dest, self.dataset, &current).await
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
