//! The store operations publication is made of, each safe to repeat after a crash: a move or a
//! delete of something already gone succeeds, and the data folder is listed as Personalize
//! would read it.

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::personalize::DatasetType;
use crate::sink::destination::Destination;
use crate::sink::parts::PartInfo;

/// What `.pengine/published/<dataset>.json` holds.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct Published {
    pub(super) run_id: String,
    pub(super) parts: Vec<String>,
    /// Written by the promotion of a pointer's run (absent in manifests of versions before
    /// snapshots, whose runs no pointer names).
    #[serde(default)]
    pub(super) from_pointer: bool,
}

/// The names of the files directly in a dataset's data folder (what Personalize would read).
pub(super) async fn data_files(dest: &Destination, dataset: DatasetType) -> Result<Vec<String>> {
    names_in(dest, &dest.data_dir(dataset)).await
}

/// The names of the files directly under `dir`.
pub(super) async fn names_in(dest: &Destination, dir: &Path) -> Result<Vec<String>> {
    let listing = dest
        .store
        .list_with_delimiter(Some(dir))
        .await
        .map_err(|e| Error::storage(format!("listing {}", dest.show(dir)), e))?;
    Ok(listing
        .objects
        .iter()
        .filter_map(|o| o.location.filename().map(str::to_string))
        .collect())
}

/// The parts pengine published in a dataset's data folder: from its manifest, else (an output
/// of an older version) from the published report's list of files; none when neither exists.
pub(super) async fn pengine_parts(
    dest: &Destination,
    dataset: DatasetType,
) -> Result<BTreeSet<String>> {
    if let Some(published) = read_published(dest, dataset).await? {
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

/// The manifest of the parts pengine published in a dataset's data folder, if there is one.
pub(super) async fn read_published(
    dest: &Destination,
    dataset: DatasetType,
) -> Result<Option<Published>> {
    let path = dest.published_path(dataset);
    let Some(bytes) = dest.read_optional(&path).await? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        Error::Data(format!(
            "{} is damaged ({e}); delete it and re-run",
            dest.show(&path)
        ))
    })
}

/// Deletes `path`; one already gone (an earlier attempt deleted it) is fine.
pub(super) async fn delete_if_present(dest: &Destination, path: &Path) -> Result<()> {
    match dest.store.delete(path).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(Error::storage(format!("deleting {}", dest.show(path)), e)),
    }
}

/// Moves `from` to `to`, replacing it; a missing `from` means an earlier attempt already moved it.
pub(super) async fn move_if_present(dest: &Destination, from: &Path, to: &Path) -> Result<()> {
    match dest.store.rename(from, to).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(Error::storage(
            format!("moving {} to {}", dest.show(from), dest.show(to)),
            e,
        )),
    }
}

pub(super) async fn put(
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

/// Every object under `prefix`, at any depth.
pub(super) async fn objects_under(dest: &Destination, prefix: &Path) -> Result<Vec<Path>> {
    dest.store
        .list(Some(prefix))
        .map_ok(|meta| meta.location)
        .try_collect()
        .await
        .map_err(|e| Error::storage(format!("listing {}", dest.show(prefix)), e))
}

/// Deletes every object under `prefix` (and, on local disk, the folder with any temporary files).
pub(super) async fn delete_prefix(dest: &Destination, prefix: &Path) -> Result<()> {
    for object in objects_under(dest, prefix).await? {
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
