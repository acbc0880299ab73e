//! After the commit point: bringing the mirror folder `<output>/<dataset>/` and the files beside
//! it in line with the current pointer, then deleting the snapshots the pointer no longer keeps.
//! Every step may run again after a crash; a promotion a killed run left half done is finished
//! by the next command on the output ([`recover`]) before it does anything else.

use std::collections::BTreeSet;

use object_store::ObjectStoreExt;
use object_store::path::Path;

use super::objects::{Published, delete_if_present, delete_prefix, put, read_published};
use super::pointer::{Current, read_current};
use super::{STAGED_BAD_RECORDS, STAGED_IDS, STAGED_REJECTS, STAGED_REPORT, STAGED_SCHEMA, legacy};
use crate::error::{Error, Result};
use crate::personalize::DatasetType;
use crate::sink::destination::Destination;

/// Finishes what earlier runs left: a committed run whose mirror was not fully promoted is
/// promoted, and snapshot folders the pointer does not name (runs killed before their commit
/// point, snapshots past the retention) are deleted. Returns the run id it finished, if any.
pub async fn recover(dest: &Destination, dataset: DatasetType) -> Result<Option<String>> {
    let legacy_run = legacy::recover(dest, dataset).await?;
    let Some(current) = read_current(dest, dataset).await? else {
        delete_unkept_snapshots(dest, dataset, None).await?;
        return Ok(legacy_run);
    };
    match read_published(dest, dataset).await? {
        Some(mirror) if mirror.run_id == current.run_id => {
            delete_unkept_snapshots(dest, dataset, Some(&current)).await?;
            return Ok(legacy_run);
        }
        Some(mirror)
            if !mirror.from_pointer && started(&mirror.run_id) > started(&current.run_id) =>
        {
            tracing::warn!(
                "{}/ was published by run {}, after the run {} its pointer names (by a \
                 pengine without snapshots?); it is left as it is until the next run",
                dest.show(&dest.data_dir(dataset)),
                mirror.run_id,
                current.run_id
            );
            return Ok(legacy_run);
        }
        _ => {}
    }
    tracing::warn!(
        "finishing the publication of run {} of {dataset} in {}/, which was interrupted after \
         its commit point",
        current.run_id,
        dest.show(&dest.data_dir(dataset))
    );
    promote(dest, dataset, &current).await?;
    Ok(Some(current.run_id))
}

/// The start time a run id begins with (`20261206T130102Z-…`), which sorts in time.
fn started(run_id: &str) -> &str {
    run_id.split('-').next().unwrap_or(run_id)
}

/// Copies the newest run's parts and side files from its snapshot to the mirror folder and
/// beside it, deletes what the pointer says the mirror no longer has, records the mirror's
/// parts, and deletes the snapshots the pointer does not keep.
pub(super) async fn promote(
    dest: &Destination,
    dataset: DatasetType,
    current: &Current,
) -> Result<()> {
    let newest = current.newest();
    let snapshot = dest.snapshot_dir(dataset, &newest.run_id);
    let snapshot_data = dest.snapshot_data_dir(dataset, &newest.run_id);
    let data_dir = dest.data_dir(dataset);
    for (index, part) in newest.parts.iter().enumerate() {
        let from = snapshot_data.clone().join(part.name.as_str());
        let to = data_dir
            .clone()
            .join(Current::mirror_name(newest, &part.name).as_str());
        copy_from_snapshot(dest, &from, &to).await?;
        if index == 0 {
            crate::failpoint::hit("after-first-promoted-part");
        }
    }
    let mirror_names = current.mirror_names();
    let keep: BTreeSet<&str> = mirror_names.iter().map(String::as_str).collect();
    let deleted: Vec<&String> = current
        .mirror
        .delete
        .iter()
        .filter(|n| !keep.contains(n.as_str()))
        .collect();
    for name in &deleted {
        delete_if_present(dest, &data_dir.clone().join(name.as_str())).await?;
    }
    copy_from_snapshot(
        dest,
        &snapshot.clone().join(STAGED_SCHEMA),
        &dest.schema_path(dataset),
    )
    .await?;
    for column in &current.mirror.id_columns {
        let staged = snapshot.clone().join(STAGED_IDS).join(column.as_str());
        copy_from_snapshot(dest, &staged, &dest.ids_path(dataset, column)).await?;
    }
    // The rejects and bad-records files describe the newest run only: a run without them
    // removes older ones.
    let side_files = [
        (
            current.mirror.rejects,
            STAGED_REJECTS,
            dest.rejects_path(dataset),
        ),
        (
            current.mirror.bad_records,
            STAGED_BAD_RECORDS,
            dest.bad_records_path(dataset),
        ),
    ];
    for (staged, name, beside) in side_files {
        if staged {
            copy_from_snapshot(dest, &snapshot.clone().join(name), &beside).await?;
        } else {
            delete_if_present(dest, &beside).await?;
        }
    }
    copy_from_snapshot(
        dest,
        &snapshot.clone().join(STAGED_REPORT),
        &dest.report_path(dataset),
    )
    .await?;
    // Last: the mirror is current once its manifest names the pointer's run.
    let published = Published {
        run_id: current.run_id.clone(),
        parts: mirror_names.clone(),
        from_pointer: true,
    };
    let text = serde_json::to_vec_pretty(&published)
        .map_err(|e| Error::Internal(format!("published manifest: {e}")))?;
    put(&dest.store, &dest.published_path(dataset), &text, dest).await?;
    tracing::debug!(
        "published {} part(s) of run {} in {}/, {} earlier file(s) deleted",
        newest.parts.len(),
        current.run_id,
        dest.show(&data_dir),
        deleted.len()
    );
    delete_unkept_snapshots(dest, dataset, Some(current)).await
}

/// Copies a file of a committed snapshot. Snapshots never change, so a repeated copy is the
/// same copy; a missing file means the snapshot was changed by hand.
async fn copy_from_snapshot(dest: &Destination, from: &Path, to: &Path) -> Result<()> {
    // Only on local disk: on object stores a repeated copy is just a copy, and the check would
    // add two requests per part to every publication.
    if dest.local_root.is_some() && already_copied(dest, from, to).await? {
        return Ok(());
    }
    match dest.store.copy(from, to).await {
        Ok(()) => Ok(()),
        Err(object_store::Error::NotFound { .. }) => Err(Error::Destination(format!(
            "{} is missing from a committed snapshot (deleted by hand?), so {} cannot be \
             published. Re-run the mapping file to publish a complete snapshot",
            dest.show(from),
            dest.show(to)
        ))),
        Err(e) => Err(Error::storage(
            format!("copying {} to {}", dest.show(from), dest.show(to)),
            e,
        )),
    }
}

/// Whether `to` already is a copy of `from` (the same entity tag and size). On local disk a copy
/// is a hard link, and copying over a link to the same file would leave the copy's temporary
/// name behind (rename between two links of one file does nothing); there the tag is the inode's.
async fn already_copied(dest: &Destination, from: &Path, to: &Path) -> Result<bool> {
    let head = |path: &Path| {
        let path = path.clone();
        async move {
            match dest.store.head(&path).await {
                Ok(meta) => Ok(Some(meta)),
                Err(object_store::Error::NotFound { .. }) => Ok(None),
                Err(e) => Err(Error::storage(format!("reading {}", dest.show(&path)), e)),
            }
        }
    };
    let Some(target) = head(to).await? else {
        return Ok(false);
    };
    let Some(source) = head(from).await? else {
        return Ok(false);
    };
    Ok(target.size == source.size && target.e_tag.is_some() && target.e_tag == source.e_tag)
}

/// Deletes every folder under `.pengine/snapshots/<dataset>/` that `current` does not keep: the
/// staging areas of runs that never committed and snapshots past the retention.
async fn delete_unkept_snapshots(
    dest: &Destination,
    dataset: DatasetType,
    current: Option<&Current>,
) -> Result<()> {
    let root = dest.snapshots_dir(dataset);
    let listing = dest
        .store
        .list_with_delimiter(Some(&root))
        .await
        .map_err(|e| Error::storage(format!("listing {}", dest.show(&root)), e))?;
    let kept: BTreeSet<&str> = current.map(|c| c.kept_runs().collect()).unwrap_or_default();
    for folder in listing.common_prefixes {
        let Some(run_id) = folder.filename() else {
            continue;
        };
        if !kept.contains(run_id) {
            tracing::debug!("deleting {}", dest.show(&folder));
            delete_prefix(dest, &folder).await?;
        }
    }
    Ok(())
}
