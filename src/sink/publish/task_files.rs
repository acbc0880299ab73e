//! The staged files of a cluster's tasks: every task attempt writes its own parts and side files
//! into the run's staging area; only those of the attempts the job kept are committed.

use object_store::ObjectStoreExt;
use object_store::path::Path;

use super::objects::{delete_if_present, delete_prefix, names_in, objects_under, put};
use super::{CLUSTER_JOB_MARKER, STAGED_BAD_RECORDS, STAGED_REJECTS, Staging, TASK_UPLOADS};
use crate::error::{Error, Result};
use crate::sink::PartInfo;
use crate::sources::bad_records::{BadRecord, BadRecordCounts, to_json_line};

/// The folder, in the staging area, where a cluster's scans write the bad records they set aside.
const TASK_BAD_RECORDS: &str = "bad-records.tasks";

impl Staging {
    /// Opens the staging area to a cluster job's tasks (their parts complete while it is open).
    pub async fn open_to_cluster_job(&self) -> Result<()> {
        put(
            &self.dest.store,
            &self.dir().join(CLUSTER_JOB_MARKER),
            b"",
            &self.dest,
        )
        .await
    }

    /// Closes it: a task attempt still running (one taken for lost) can complete no part after.
    /// The files its tasks left in their uploads folder go too.
    pub async fn close_to_cluster_job(&self) -> Result<()> {
        delete_if_present(&self.dest, &self.dir().join(CLUSTER_JOB_MARKER)).await?;
        delete_prefix(&self.dest, &self.dir().join(TASK_UPLOADS)).await
    }

    /// Deletes the staged parts that `parts` does not name (those of failed or retried task
    /// attempts) and the tagged rejects files (`rejects.<tag>.csv`) that `rejects` does not name.
    /// Returns the names deleted.
    pub async fn keep_only(&self, parts: &[PartInfo], rejects: &[String]) -> Result<Vec<String>> {
        let mut deleted = Vec::new();
        let data_dir = self.data_dir();
        for name in names_in(&self.dest, &data_dir).await? {
            if !parts.iter().any(|p| p.name == name) {
                delete_if_present(&self.dest, &data_dir.clone().join(name.as_str())).await?;
                deleted.push(name);
            }
        }
        for name in names_in(&self.dest, &self.dir()).await? {
            let tagged_rejects =
                name.starts_with("rejects.") && name.ends_with(".csv") && name != STAGED_REJECTS;
            if tagged_rejects && !rejects.contains(&name) {
                delete_if_present(&self.dest, &self.dir().join(name.as_str())).await?;
                deleted.push(name);
            }
        }
        Ok(deleted)
    }

    /// Where a cluster's scans write the bad records they set aside
    /// ([`crate::sources::bad_records_out`]); emptied by [`Staging::clear_task_bad_records`].
    pub fn task_bad_records_dir(&self) -> Path {
        self.dir().join(TASK_BAD_RECORDS)
    }

    /// Deletes what the scans of an earlier attempt wrote to [`Staging::task_bad_records_dir`].
    pub async fn clear_task_bad_records(&self) -> Result<()> {
        delete_prefix(&self.dest, &self.task_bad_records_dir()).await
    }

    /// Stages the bad records the cluster's scans wrote as the run's bad-records file: each
    /// record once (a task run again after a failure or a lost executor reads the same records
    /// again), by file and position. Deletes the scans' objects; returns the counts.
    ///
    /// The records are held in memory to be deduplicated and ordered (about 300 bytes each).
    pub async fn gather_bad_records(&self) -> Result<BadRecordCounts> {
        let dir = self.task_bad_records_dir();
        let read = |path: &Path, e| Error::storage(format!("reading {}", self.dest.show(path)), e);
        let mut records: Vec<BadRecord> = Vec::new();
        for path in &objects_under(&self.dest, &dir).await? {
            let bytes = self
                .dest
                .store
                .get(path)
                .await
                .map_err(|e| read(path, e))?
                .bytes()
                .await
                .map_err(|e| read(path, e))?;
            for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                let record = serde_json::from_slice(line).map_err(|e| {
                    Error::Internal(format!(
                        "a bad record an executor wrote to {} does not read: {e}",
                        self.dest.show(path)
                    ))
                })?;
                records.push(record);
            }
        }
        records.sort_by(|a, b| a.key().cmp(&b.key()));
        records.dedup_by(|a, b| a.key() == b.key());
        if !records.is_empty() {
            let lines: Vec<u8> = records.iter().flat_map(to_json_line).collect();
            put(
                &self.dest.store,
                &self.dir().join(STAGED_BAD_RECORDS),
                &lines,
                &self.dest,
            )
            .await?;
        }
        self.clear_task_bad_records().await?;
        Ok(BadRecordCounts::of(&records))
    }

    /// Joins the tasks' rejects files (each with `header`) into the one staged rejects file, in
    /// the order given, and deletes them.
    pub async fn gather_rejects(&self, files: &[String], header: &[u8]) -> Result<()> {
        let mut joined = header.to_vec();
        for name in files {
            let path = self.dir().join(name.as_str());
            let bytes = self
                .dest
                .store
                .get(&path)
                .await
                .map_err(|e| Error::storage(format!("reading {}", self.dest.show(&path)), e))?
                .bytes()
                .await
                .map_err(|e| Error::storage(format!("reading {}", self.dest.show(&path)), e))?;
            joined.extend_from_slice(bytes.strip_prefix(header).unwrap_or(&bytes));
        }
        put(
            &self.dest.store,
            &self.dir().join(STAGED_REJECTS),
            &joined,
            &self.dest,
        )
        .await?;
        for name in files {
            delete_if_present(&self.dest, &self.dir().join(name.as_str())).await?;
        }
        Ok(())
    }
}
