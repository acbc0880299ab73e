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

use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use super::parts::PartInfo;
use crate::error::{Error, Result};
use crate::personalize::DatasetType;

/// Where pengine keeps its staging areas and commit records, beside the datasets.
pub const STATE_DIR: &str = ".pengine";
const COMMIT_FILE: &str = "COMMIT.json";
const STAGED_DATA: &str = "data";
const STAGED_SCHEMA: &str = "schema.json";
const STAGED_REPORT: &str = "report.json";
/// Under [`STATE_DIR`]: the id samples of published datasets.
const IDS_DIR: &str = "ids";
const STAGED_IDS: &str = "ids";
/// The staged rejects file's name.
pub const STAGED_REJECTS: &str = "rejects.csv";
/// The staged bad-records file's name.
pub const STAGED_BAD_RECORDS: &str = "bad-records.jsonl";

/// An output location: a store and the prefix the datasets go under.
#[derive(Clone)]
pub struct Destination {
    pub store: Arc<dyn ObjectStore>,
    pub root: Path,
    /// The output as the user wrote it, for messages (`s3://bucket/prefix`, `/abs/dir`).
    pub display: String,
    /// The local folder, when the output is on the local file system.
    pub local_root: Option<std::path::PathBuf>,
}

impl Destination {
    fn under(&self, relative: &str) -> Path {
        relative
            .split('/')
            .filter(|s| !s.is_empty())
            .fold(self.root.clone(), |path, part| path.join(part))
    }

    /// `<output>/<dataset>/`: the folder to give Personalize as the data location.
    pub fn data_dir(&self, dataset: DatasetType) -> Path {
        self.under(dataset.key())
    }

    pub fn schema_path(&self, dataset: DatasetType) -> Path {
        self.under(&format!("{}.schema.json", dataset.key()))
    }

    pub fn report_path(&self, dataset: DatasetType) -> Path {
        self.under(&format!("{}.report.json", dataset.key()))
    }

    /// `<output>/<dataset>.rejects.csv`: rows skipped by `--on-invalid skip`, with the reason.
    pub fn rejects_path(&self, dataset: DatasetType) -> Path {
        self.under(&format!("{}.rejects.csv", dataset.key()))
    }

    /// `<output>/<dataset>.bad-records.jsonl`: source records skipped by `--on-bad-records skip`.
    pub fn bad_records_path(&self, dataset: DatasetType) -> Path {
        self.under(&format!("{}.bad-records.jsonl", dataset.key()))
    }

    /// Where a published dataset keeps a sample of its id hashes, for cross-dataset checks.
    pub fn ids_path(&self, dataset: DatasetType, column: &str) -> Path {
        self.under(&format!(
            "{STATE_DIR}/{IDS_DIR}/{}.{column}.bin",
            dataset.key()
        ))
    }

    /// The id sample of another dataset of this output, if it was published with one.
    pub async fn read_ids(&self, dataset: DatasetType, column: &str) -> Result<Option<Vec<u8>>> {
        let path = self.ids_path(dataset, column);
        match self.store.get(&path).await {
            Ok(found) => found
                .bytes()
                .await
                .map(|b| Some(b.to_vec()))
                .map_err(|e| Error::storage(format!("reading {}", self.show(&path)), e)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::storage(format!("reading {}", self.show(&path)), e)),
        }
    }

    fn state_dir(&self, dataset: DatasetType) -> Path {
        self.under(&format!("{STATE_DIR}/{}", dataset.key()))
    }

    fn commit_path(&self, dataset: DatasetType) -> Path {
        self.state_dir(dataset).clone().join(COMMIT_FILE)
    }

    /// How a path under this destination reads to a user.
    pub fn show(&self, path: &Path) -> String {
        let relative = path
            .as_ref()
            .strip_prefix(self.root.as_ref())
            .unwrap_or(path.as_ref())
            .trim_start_matches('/');
        format!("{}/{relative}", self.display.trim_end_matches('/'))
    }
}

/// What the commit record holds: enough to finish the promotion without the staging run.
#[derive(Debug, Serialize, Deserialize)]
struct CommitRecord {
    run_id: String,
    parts: Vec<PartInfo>,
    /// Whether the run staged a rejects file (else an older one is removed).
    #[serde(default)]
    rejects: bool,
    /// Whether the run staged a bad-records file (else an older one is removed).
    #[serde(default)]
    bad_records: bool,
    /// The id columns whose samples the run staged.
    #[serde(default)]
    id_columns: Vec<String>,
}

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
}

impl Staging {
    /// Prepares a staging area for a new run; finishes or clears what earlier runs left first.
    pub async fn begin(dest: &Destination, dataset: DatasetType) -> Result<Staging> {
        recover(dest, dataset).await?;
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
        })
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
    /// (column, bytes) id samples.
    pub async fn commit(
        self,
        parts: &[PartInfo],
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

/// Finishes a committed but unpromoted run, then deletes any other leftovers of earlier runs.
/// Returns the run id it finished, if any.
pub async fn recover(dest: &Destination, dataset: DatasetType) -> Result<Option<String>> {
    let commit_path = dest.commit_path(dataset);
    let finished = match dest.store.get(&commit_path).await {
        Ok(found) => {
            let bytes = found
                .bytes()
                .await
                .map_err(|e| Error::storage(format!("reading {}", dest.show(&commit_path)), e))?;
            let record: CommitRecord = serde_json::from_slice(&bytes).map_err(|e| {
                Error::Data(format!(
                    "{} is damaged ({e}); delete it and re-run",
                    dest.show(&commit_path)
                ))
            })?;
            tracing::warn!(
                "finishing the publication of run {} of {dataset}, which was interrupted after \
                 its commit point",
                record.run_id
            );
            promote(dest, dataset, &record).await?;
            Some(record.run_id)
        }
        Err(object_store::Error::NotFound { .. }) => None,
        Err(e) => {
            return Err(Error::storage(
                format!("reading {}", dest.show(&commit_path)),
                e,
            ));
        }
    };
    delete_prefix(dest, &dest.state_dir(dataset)).await?;
    Ok(finished)
}

async fn promote(dest: &Destination, dataset: DatasetType, record: &CommitRecord) -> Result<()> {
    let (run_id, parts) = (record.run_id.as_str(), record.parts.as_slice());
    let store = &dest.store;
    let run_dir = dest.state_dir(dataset).clone().join(run_id);
    let data_dir = dest.data_dir(dataset);
    for (index, part) in parts.iter().enumerate() {
        let staged = run_dir
            .clone()
            .join(STAGED_DATA)
            .clone()
            .join(part.name.as_str());
        let target = data_dir.clone().join(part.name.as_str());
        move_if_present(dest, &staged, &target).await?;
        if index == 0 {
            crate::failpoint::hit("after-first-promoted-part");
        }
    }
    // Old parts that the new export does not have.
    let keep: std::collections::HashSet<&str> = parts.iter().map(|p| p.name.as_str()).collect();
    let listing = store
        .list_with_delimiter(Some(&data_dir))
        .await
        .map_err(|e| Error::storage(format!("listing {}", dest.show(&data_dir)), e))?;
    for object in listing.objects {
        let name = object.location.filename().unwrap_or_default();
        if !keep.contains(name) {
            store.delete(&object.location).await.map_err(|e| {
                Error::storage(format!("deleting {}", dest.show(&object.location)), e)
            })?;
        }
    }
    move_if_present(
        dest,
        &run_dir.clone().join(STAGED_SCHEMA),
        &dest.schema_path(dataset),
    )
    .await?;
    move_if_present(
        dest,
        &run_dir.clone().join(STAGED_REPORT),
        &dest.report_path(dataset),
    )
    .await?;
    for column in &record.id_columns {
        let staged = run_dir.clone().join(STAGED_IDS).join(column.as_str());
        move_if_present(dest, &staged, &dest.ids_path(dataset, column)).await?;
    }
    // The rejects and bad-records files describe this export only: a run without them removes
    // older ones.
    let side_files = [
        (record.rejects, STAGED_REJECTS, dest.rejects_path(dataset)),
        (
            record.bad_records,
            STAGED_BAD_RECORDS,
            dest.bad_records_path(dataset),
        ),
    ];
    for (staged, name, published) in side_files {
        if staged {
            move_if_present(dest, &run_dir.clone().join(name), &published).await?;
            continue;
        }
        match store.delete(&published).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => {
                return Err(Error::storage(
                    format!("deleting {}", dest.show(&published)),
                    e,
                ));
            }
        }
    }
    let commit_path = dest.commit_path(dataset);
    store
        .delete(&commit_path)
        .await
        .map_err(|e| Error::storage(format!("deleting {}", dest.show(&commit_path)), e))?;
    delete_prefix(dest, &run_dir).await
}

/// Moves `from` to `to`, replacing it; a missing `from` means an earlier attempt already moved it.
async fn move_if_present(dest: &Destination, from: &Path, to: &Path) -> Result<()> {
    match dest.store.rename(from, to).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(Error::storage(
            format!("moving {} to {}", dest.show(from), dest.show(to)),
            e,
        )),
    }
}

async fn put(
    store: &Arc<dyn ObjectStore>,
    path: &Path,
    bytes: &[u8],
    dest: &Destination,
) -> Result<()> {
    store
        .put(path, PutPayload::from(Bytes::copy_from_slice(bytes)))
        .await
        .map(|_| ())
        .map_err(|e| Error::storage(format!("writing {}", dest.show(path)), e))
}

/// Deletes every object under `prefix` (and, on local disk, the folder with any temporary files).
async fn delete_prefix(dest: &Destination, prefix: &Path) -> Result<()> {
    let objects: Vec<Path> = dest
        .store
        .list(Some(prefix))
        .map_ok(|meta| meta.location)
        .try_collect()
        .await
        .map_err(|e| Error::storage(format!("listing {}", dest.show(prefix)), e))?;
    for object in objects {
        match dest.store.delete(&object).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => {
                return Err(Error::storage(
                    format!("deleting {}", dest.show(&object)),
                    e,
                ));
            }
        }
    }
    if let Some(local_root) = &dest.local_root {
        let relative = prefix
            .as_ref()
            .strip_prefix(dest.root.as_ref())
            .unwrap_or(prefix.as_ref())
            .trim_start_matches('/');
        let dir = local_root.join(relative);
        match std::fs::remove_dir_all(&dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(format!("removing {}", dir.display()), e)),
        }
        // Leave no empty folders behind (`.pengine/<dataset>`, `.pengine`).
        let mut parent = dir.parent();
        while let Some(folder) = parent.filter(|f| f.starts_with(local_root) && *f != local_root) {
            if std::fs::remove_dir(folder).is_err() {
                break;
            }
            parent = folder.parent();
        }
    }
    Ok(())
}
