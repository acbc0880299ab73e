//! Where a run's datasets go: a store, the prefix under it, and the names of everything pengine
//! keeps there (data folders, schema, report and side files, and its state under `.pengine/`).

use std::sync::Arc;

use bytes::Bytes;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::error::{Error, Result};
use crate::personalize::DatasetType;
use crate::sources::listing::{PUBLISHED_DIR, STATE_DIR};
use crate::store::StoreRegistry;

/// Under [`STATE_DIR`]: the id samples of published datasets.
const IDS_DIR: &str = "ids";
/// Under `.pengine/<dataset>/`: the commit record of a run being published (before snapshots).
const COMMIT_FILE: &str = "COMMIT.json";
/// Under [`STATE_DIR`]: `<dataset>/<run-id>/`, each run's staging area and, once committed, its
/// immutable snapshot.
const SNAPSHOTS_DIR: &str = "snapshots";
/// Under a snapshot: the folder of CSV parts (the import's data location).
const SNAPSHOT_DATA: &str = "data";

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
    /// The output at `url` (the user wrote `display`), its local folder created.
    pub fn at(url: &url::Url, display: &str, stores: &StoreRegistry) -> Result<Destination> {
        let store = stores.store_for(url)?;
        let local_root = if url.scheme() == "file" {
            let dir = url
                .to_file_path()
                .map_err(|_| Error::Config(format!("'{display}' is not a usable local folder")))?;
            std::fs::create_dir_all(&dir)
                .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
            Some(dir)
        } else {
            None
        };
        let root = Path::from_url_path(url.path())
            .map_err(|e| Error::Config(format!("output '{display}': {e}")))?;
        Ok(Destination {
            store,
            root,
            display: display.trim_end_matches('/').to_string(),
            local_root,
        })
    }

    /// The output's URL (what [`Destination::at`] takes back).
    pub fn url(&self) -> Result<url::Url> {
        crate::store::parse_location(&self.display)
    }

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

    /// `<output>/<dataset>.current.json`: the pointer naming the dataset's snapshots (the commit
    /// point of every run).
    pub fn current_path(&self, dataset: DatasetType) -> Path {
        self.under(&format!("{}.current.json", dataset.key()))
    }

    /// `.pengine/snapshots/<dataset>/`: every run's staging area or snapshot.
    pub fn snapshots_dir(&self, dataset: DatasetType) -> Path {
        self.under(&format!("{STATE_DIR}/{SNAPSHOTS_DIR}/{}", dataset.key()))
    }

    /// `.pengine/snapshots/<dataset>/<run_id>/`: one run's staging area, then its snapshot.
    pub fn snapshot_dir(&self, dataset: DatasetType, run_id: &str) -> Path {
        self.snapshots_dir(dataset).clone().join(run_id)
    }

    /// A snapshot's folder of CSV parts: the data location of an import of that run.
    pub fn snapshot_data_dir(&self, dataset: DatasetType, run_id: &str) -> Path {
        self.snapshot_dir(dataset, run_id)
            .clone()
            .join(SNAPSHOT_DATA)
    }

    /// The id sample of another dataset of this output, if it was published with one.
    pub async fn read_ids(&self, dataset: DatasetType, column: &str) -> Result<Option<Vec<u8>>> {
        let bytes = self.read_optional(&self.ids_path(dataset, column)).await?;
        Ok(bytes.map(|b| b.to_vec()))
    }

    /// The bytes of an object under this destination, or None when there is none.
    pub async fn read_optional(&self, path: &Path) -> Result<Option<Bytes>> {
        match self.store.get(path).await {
            Ok(found) => found
                .bytes()
                .await
                .map(Some)
                .map_err(|e| Error::storage(format!("reading {}", self.show(path)), e)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(Error::storage(format!("reading {}", self.show(path)), e)),
        }
    }

    /// `.pengine/published/<dataset>.json`: the parts pengine published in the data folder, so
    /// that a later run deletes only what pengine wrote.
    pub(super) fn published_path(&self, dataset: DatasetType) -> Path {
        self.under(&format!(
            "{STATE_DIR}/{PUBLISHED_DIR}/{}.json",
            dataset.key()
        ))
    }

    pub(super) fn state_dir(&self, dataset: DatasetType) -> Path {
        self.under(&format!("{STATE_DIR}/{}", dataset.key()))
    }

    pub(super) fn commit_path(&self, dataset: DatasetType) -> Path {
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
