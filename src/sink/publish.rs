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

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use super::destination::Destination;
use super::parts::PartInfo;
use crate::error::{Error, Result};
use crate::personalize::DatasetType;
pub use crate::sources::listing::STATE_DIR;

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
    /// Names in the data folder to delete: earlier pengine parts the new export does not have
    /// (and, with `--take-over`, the foreign files found). Absent in records of older versions,
    /// which then delete nothing.
    #[serde(default)]
    delete: Vec<String>,
}

/// What `.pengine/published/<dataset>.json` holds.
#[derive(Debug, Serialize, Deserialize)]
struct Published {
    run_id: String,
    parts: Vec<String>,
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
    // The manifest first: a run killed from here on is finished by the next one, which must
    // know the new parts as pengine's.
    let published = Published {
        run_id: run_id.to_string(),
        parts: parts.iter().map(|p| p.name.clone()).collect(),
    };
    let text = serde_json::to_vec_pretty(&published)
        .map_err(|e| Error::Internal(format!("published manifest: {e}")))?;
    put(store, &dest.published_path(dataset), &text, dest).await?;
    // Only what pengine wrote (or was told to take over), and the new export does not have.
    let keep: BTreeSet<&str> = parts.iter().map(|p| p.name.as_str()).collect();
    for name in record.delete.iter().filter(|n| !keep.contains(n.as_str())) {
        let object = data_dir.clone().join(name.as_str());
        delete_if_present(dest, &object).await?;
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
        delete_if_present(dest, &published).await?;
    }
    tracing::debug!(
        "published {} part(s) in {}/ (run {run_id}), {} earlier file(s) deleted",
        parts.len(),
        dest.show(&data_dir),
        record
            .delete
            .iter()
            .filter(|n| !keep.contains(n.as_str()))
            .count()
    );
    let commit_path = dest.commit_path(dataset);
    store
        .delete(&commit_path)
        .await
        .map_err(|e| Error::storage(format!("deleting {}", dest.show(&commit_path)), e))?;
    delete_prefix(dest, &run_dir).await
}

/// The names of the files directly in a dataset's data folder (what Personalize would read).
async fn data_files(dest: &Destination, dataset: DatasetType) -> Result<Vec<String>> {
    let data_dir = dest.data_dir(dataset);
    let listing = dest
        .store
        .list_with_delimiter(Some(&data_dir))
        .await
        .map_err(|e| Error::storage(format!("listing {}", dest.show(&data_dir)), e))?;
    Ok(listing
        .objects
        .iter()
        .filter_map(|o| o.location.filename().map(str::to_string))
        .collect())
}

/// The parts pengine published in a dataset's data folder: from its manifest, else (an output
/// of an older version) from the published report's list of files; none when neither exists.
async fn pengine_parts(dest: &Destination, dataset: DatasetType) -> Result<BTreeSet<String>> {
    if let Some(bytes) = dest.read_optional(&dest.published_path(dataset)).await? {
        let published: Published = serde_json::from_slice(&bytes).map_err(|e| {
            Error::Data(format!(
                "{} is damaged ({e}); delete it and re-run",
                dest.show(&dest.published_path(dataset))
            ))
        })?;
        return Ok(published.parts.into_iter().collect());
    }
    let Some(bytes) = dest.read_optional(&dest.report_path(dataset)).await? else {
        return Ok(BTreeSet::new());
    };
    let files = serde_json::from_slice::<serde_json::Value>(&bytes)
        .ok()
        .and_then(|report| report.get("files").cloned())
        .and_then(|files| serde_json::from_value::<Vec<PartInfo>>(files).ok())
        .unwrap_or_default();
    Ok(files.into_iter().map(|f| f.name).collect())
}

/// Deletes `path`; one already gone (an earlier attempt deleted it) is fine.
async fn delete_if_present(dest: &Destination, path: &Path) -> Result<()> {
    match dest.store.delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(Error::storage(format!("deleting {}", dest.show(path)), e)),
    }
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
        delete_if_present(dest, &object).await?;
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

#[cfg(test)]
mod tests {
    use object_store::memory::InMemory;

    use super::*;

    fn memory_destination() -> Destination {
        Destination {
            store: Arc::new(InMemory::new()),
            root: Path::from("out"),
            display: "mem://out".into(),
            local_root: None,
        }
    }

    async fn put_text(dest: &Destination, path: &str, text: &str) {
        put(&dest.store, &Path::from(path), text.as_bytes(), dest)
            .await
            .unwrap();
    }

    async fn names(dest: &Destination) -> Vec<String> {
        let mut names = data_files(dest, DatasetType::Users).await.unwrap();
        names.sort();
        names
    }

    fn part(name: &str) -> PartInfo {
        PartInfo {
            name: name.into(),
            rows: 1,
            bytes: 1,
        }
    }

    /// Publishes `parts` (staged with one line each) through the whole protocol.
    async fn publish(dest: &Destination, parts: &[&str], take_over: bool) -> Result<Vec<String>> {
        let staging = Staging::begin(dest, DatasetType::Users, take_over).await?;
        let infos: Vec<PartInfo> = parts.iter().map(|p| part(p)).collect();
        for info in &infos {
            let path = staging.data_dir().join(info.name.as_str());
            put(&dest.store, &path, b"USER_ID\nx\n", dest).await?;
        }
        let delete = staging.deletions(&infos).await?;
        staging
            .commit(
                &infos,
                delete.clone(),
                SideFiles::default(),
                &[],
                "{}",
                "{}",
            )
            .await?;
        Ok(delete)
    }

    #[test]
    fn every_side_file_name_is_known_to_source_listings() {
        let dest = memory_destination();
        let dataset = DatasetType::Users;
        for path in [
            dest.schema_path(dataset),
            dest.report_path(dataset),
            dest.rejects_path(dataset),
            dest.bad_records_path(dataset),
        ] {
            let name = path.filename().unwrap();
            assert!(
                crate::sources::listing::OUTPUT_SIDE_SUFFIXES
                    .iter()
                    .any(|suffix| name == format!("{}{suffix}", dataset.key())),
                "{name} is not in OUTPUT_SIDE_SUFFIXES"
            );
        }
    }

    #[tokio::test]
    async fn a_run_deletes_only_the_parts_pengine_published() {
        let dest = memory_destination();
        publish(&dest, &["part-00000.csv", "part-00001.csv"], false)
            .await
            .unwrap();
        assert_eq!(names(&dest).await, ["part-00000.csv", "part-00001.csv"]);
        let deleted = publish(&dest, &["part-00000.csv"], false).await.unwrap();
        assert_eq!(deleted, ["part-00001.csv"]);
        assert_eq!(names(&dest).await, ["part-00000.csv"]);
    }

    #[tokio::test]
    async fn foreign_files_stop_a_run_before_anything_is_staged() {
        let dest = memory_destination();
        put_text(&dest, "out/users/README.md", "mine").await;
        let err = publish(&dest, &["part-00000.csv"], false)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("README.md"), "{err}");
        assert!(matches!(err, Error::Destination(_)));
        let all: Vec<_> = dest.store.list(None).try_collect().await.unwrap();
        assert_eq!(all.len(), 1, "{all:?}");
        // Taken over on purpose: replaced, and the deletion is told.
        let deleted = publish(&dest, &["part-00000.csv"], true).await.unwrap();
        assert_eq!(deleted, ["README.md"]);
        assert_eq!(names(&dest).await, ["part-00000.csv"]);
    }

    #[tokio::test]
    async fn a_file_added_after_the_run_began_is_kept() {
        let dest = memory_destination();
        publish(&dest, &["part-00000.csv", "part-00001.csv"], false)
            .await
            .unwrap();
        let staging = Staging::begin(&dest, DatasetType::Users, false)
            .await
            .unwrap();
        put_text(&dest, "out/users/late.csv", "x").await;
        let delete = staging.deletions(&[part("part-00000.csv")]).await.unwrap();
        assert_eq!(delete, ["part-00001.csv"]);
        staging.discard().await;
    }

    #[tokio::test]
    async fn an_older_output_is_known_by_its_report() {
        let dest = memory_destination();
        put_text(&dest, "out/users/part-00000.csv", "USER_ID\nx\n").await;
        put_text(
            &dest,
            "out/users.report.json",
            r#"{"files": [{"name": "part-00000.csv", "rows": 1, "bytes": 10}]}"#,
        )
        .await;
        let deleted = publish(&dest, &["part-00001.csv"], false).await.unwrap();
        assert_eq!(deleted, ["part-00000.csv"]);
    }

    #[tokio::test]
    async fn a_commit_record_finishes_the_promotion_in_the_next_run() {
        let dest = memory_destination();
        publish(&dest, &["part-00000.csv", "part-00001.csv"], false)
            .await
            .unwrap();
        // A run killed right after its commit point: the record names what to move and delete.
        let staging = Staging::begin(&dest, DatasetType::Users, false)
            .await
            .unwrap();
        let staged = staging.data_dir().join("part-00000.csv");
        put(&dest.store, &staged, b"USER_ID\nnew\n", &dest)
            .await
            .unwrap();
        let record = CommitRecord {
            run_id: staging.run_id.clone(),
            parts: vec![part("part-00000.csv")],
            rejects: false,
            bad_records: false,
            id_columns: Vec::new(),
            delete: vec!["part-00001.csv".into()],
        };
        let text = serde_json::to_vec(&record).unwrap();
        put(
            &dest.store,
            &dest.commit_path(DatasetType::Users),
            &text,
            &dest,
        )
        .await
        .unwrap();
        let finished = recover(&dest, DatasetType::Users).await.unwrap();
        assert_eq!(finished.as_deref(), Some(staging.run_id.as_str()));
        assert_eq!(names(&dest).await, ["part-00000.csv"]);
        let bytes = dest
            .store
            .get(&dest.data_dir(DatasetType::Users).join("part-00000.csv"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(&bytes[..], b"USER_ID\nnew\n");
        let state: Vec<_> = dest
            .store
            .list(Some(&dest.state_dir(DatasetType::Users)))
            .try_collect()
            .await
            .unwrap();
        assert!(state.is_empty(), "{state:?}");
    }
}
