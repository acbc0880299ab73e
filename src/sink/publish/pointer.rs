//! The current pointer `<output>/<dataset>.current.json`: one small object, written in one PUT
//! (a run's commit point), naming the immutable snapshot folders that together are the dataset.
//!
//! A reader that follows it (`pengine import`, a person in the console) sees exactly the runs it
//! names, never a mix: snapshots are written before the pointer names them and never change
//! after; the pointer of the run before stays readable until the next commit replaces it.

use object_store::path::Path;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::personalize::DatasetType;
use crate::sink::destination::Destination;
use crate::sink::parts::PartInfo;

/// The pointer's layout version; a reader refuses a newer one rather than misread it.
pub const POINTER_FORMAT: u32 = 1;

/// Whether a run converted everything or only what the runs before it had not seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunKind {
    Full,
    Increment,
}

/// One committed run's snapshot: its parts, under `<output>/.pengine/snapshots/<dataset>/<run_id>/data/`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SnapshotRun {
    pub run_id: String,
    pub kind: RunKind,
    pub committed_at: String,
    /// The snapshot's data folder as the run saw its output (`s3://bucket/out/.pengine/...`),
    /// for a person to copy; programs derive it from the output and `run_id` instead, so that an
    /// output copied elsewhere still reads right.
    pub data_location: String,
    pub rows: u64,
    pub bytes: u64,
    pub parts: Vec<PartInfo>,
}

/// What the run that wrote the pointer asks of the data folder `<output>/<dataset>/` (the mirror,
/// kept for users who point at it by hand) and of the files beside it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MirrorPlan {
    /// Files in the data folder to delete: earlier pengine parts the dataset no longer has (and,
    /// with `--take-over`, the foreign files found).
    pub delete: Vec<String>,
    /// Whether the newest run staged a rejects file (else an older one beside the folder goes).
    pub rejects: bool,
    /// Whether the newest run staged a bad-records file (else an older one goes).
    pub bad_records: bool,
    /// The id columns whose samples the newest run staged.
    pub id_columns: Vec<String>,
}

/// `<output>/<dataset>.current.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Current {
    pub format: u32,
    pub dataset: String,
    /// The newest committed run (the one that wrote this pointer).
    pub run_id: String,
    /// The runs whose parts together are the dataset, oldest first: a full run, then the
    /// increments committed since.
    pub chain: Vec<SnapshotRun>,
    /// The run ids of earlier chains still kept (newest first), for readers that began before
    /// this commit; older snapshots are deleted.
    #[serde(default)]
    pub previous: Vec<Vec<String>>,
    pub mirror: MirrorPlan,
}

impl Current {
    /// The run that wrote this pointer.
    pub fn newest(&self) -> &SnapshotRun {
        self.chain
            .last()
            .expect("a pointer names at least one run (checked when read)")
    }

    /// Every snapshot this pointer keeps: its chain and the earlier chains kept.
    pub fn kept_runs(&self) -> impl Iterator<Item = &str> {
        self.chain
            .iter()
            .map(|r| r.run_id.as_str())
            .chain(self.previous.iter().flatten().map(String::as_str))
    }

    /// The name a part of `run` has in the mirror folder: a full run's parts keep theirs, an
    /// increment's are prefixed with its run id so that increments never collide.
    pub fn mirror_name(run: &SnapshotRun, part: &str) -> String {
        match run.kind {
            RunKind::Full => part.to_string(),
            RunKind::Increment => format!("{}-{part}", run.run_id),
        }
    }

    /// Every name the mirror folder holds for this pointer.
    pub fn mirror_names(&self) -> Vec<String> {
        self.chain
            .iter()
            .flat_map(|run| run.parts.iter().map(|p| Self::mirror_name(run, &p.name)))
            .collect()
    }
}

/// Reads a dataset's current pointer; None when the dataset was never committed (or only by a
/// version of pengine before snapshots).
pub async fn read_current(dest: &Destination, dataset: DatasetType) -> Result<Option<Current>> {
    let path = dest.current_path(dataset);
    let Some(bytes) = dest.read_optional(&path).await? else {
        return Ok(None);
    };
    parse(dest, &path, &bytes).map(Some)
}

fn parse(dest: &Destination, path: &Path, bytes: &[u8]) -> Result<Current> {
    let damaged = |why: String| {
        Error::Data(format!(
            "{} is damaged ({why}); re-run the dataset's mapping file to write it anew",
            dest.show(path)
        ))
    };
    let current: Current = serde_json::from_slice(bytes).map_err(|e| damaged(e.to_string()))?;
    if current.format > POINTER_FORMAT {
        return Err(Error::Data(format!(
            "{} was written by a newer pengine (pointer format {}, this one reads {}): upgrade \
             pengine",
            dest.show(path),
            current.format,
            POINTER_FORMAT
        )));
    }
    if current.chain.is_empty() {
        return Err(damaged("it names no run".into()));
    }
    if current.chain[0].kind != RunKind::Full {
        return Err(damaged("its first run is not a full run".into()));
    }
    if current.newest().run_id != current.run_id {
        return Err(damaged("its run_id is not its chain's last run".into()));
    }
    Ok(current)
}

/// The pointer's bytes, as written in the commit's single PUT.
pub(super) fn to_bytes(current: &Current) -> Result<Vec<u8>> {
    serde_json::to_vec_pretty(current).map_err(|e| Error::Internal(format!("current pointer: {e}")))
}
