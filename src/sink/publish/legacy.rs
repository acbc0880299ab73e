//! Outputs of pengine before snapshots: a run killed after its commit record
//! `.pengine/<dataset>/COMMIT.json` is finished the way that version promoted (moving the staged
//! parts over the data folder), so upgrading never strands a committed run. Every step may run
//! again after a crash.

use std::collections::BTreeSet;

use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};

use super::objects::{Published, delete_if_present, delete_prefix, move_if_present, put};
use super::{
    STAGED_BAD_RECORDS, STAGED_DATA, STAGED_IDS, STAGED_REJECTS, STAGED_REPORT, STAGED_SCHEMA,
};
use crate::error::{Error, Result};
use crate::personalize::DatasetType;
use crate::sink::destination::Destination;
use crate::sink::parts::PartInfo;

/// What the commit record holds: enough to finish the promotion without the staging run.
#[derive(Debug, Serialize, Deserialize)]
pub(super) struct CommitRecord {
    pub(super) run_id: String,
    pub(super) parts: Vec<PartInfo>,
    /// Whether the run staged a rejects file (else an older one is removed).
    #[serde(default)]
    pub(super) rejects: bool,
    /// Whether the run staged a bad-records file (else an older one is removed).
    #[serde(default)]
    pub(super) bad_records: bool,
    /// The id columns whose samples the run staged.
    #[serde(default)]
    pub(super) id_columns: Vec<String>,
    /// Names in the data folder to delete: earlier pengine parts the new export does not have
    /// (and, with `--take-over`, the foreign files found). Absent in records of older versions,
    /// which then delete nothing.
    #[serde(default)]
    pub(super) delete: Vec<String>,
}

/// Finishes a committed but unpromoted run of an older version, then deletes that version's
/// staging leftovers (`.pengine/<dataset>/`). Returns the run id it finished, if any.
pub(super) async fn recover(dest: &Destination, dataset: DatasetType) -> Result<Option<String>> {
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

pub(super) async fn promote(
    dest: &Destination,
    dataset: DatasetType,
    record: &CommitRecord,
) -> Result<()> {
    let (run_id, parts) = (record.run_id.as_str(), record.parts.as_slice());
    let store = &dest.store;
    let run_dir = dest.state_dir(dataset).clone().join(run_id);
    let data_dir = dest.data_dir(dataset);
    for part in parts {
        let staged = run_dir
            .clone()
            .join(STAGED_DATA)
            .clone()
            .join(part.name.as_str());
        let target = data_dir.clone().join(part.name.as_str());
        move_if_present(dest, &staged, &target).await?;
    }
    // The manifest first: a run killed from here on is finished by the next one, which must
    // know the new parts as pengine's.
    let published = Published {
        run_id: run_id.to_string(),
        parts: parts.iter().map(|p| p.name.clone()).collect(),
        from_pointer: false,
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
