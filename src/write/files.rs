//! The files one write node produces: the data parts, the rejects file and the bad-records file,
//! shared by the node's partitions (one upload at a time per file, parts numbered in order).

use object_store::path::Path;

use crate::batch;
use crate::error::Result;
use crate::personalize::ColumnPlan;
use crate::sink::csv_dialect::{self, EncodedRows};
use crate::sink::publish::{CLUSTER_JOB_MARKER, STAGED_BAD_RECORDS, STAGED_REJECTS, TASK_UPLOADS};
use crate::sink::{Destination, PartInfo, PartRoller};
use crate::sources::bad_records::{self, BadRecord};

/// Where a write node puts its files.
#[derive(Clone)]
pub enum WriteTarget {
    /// Parts under `data_dir`; the rejects and bad-records files under `side_dir`.
    Stage {
        dest: Destination,
        data_dir: Path,
        side_dir: Path,
        max_file_size: u64,
        /// Write a part holding only the header when no row comes.
        allow_empty: bool,
    },
    /// Nowhere: rows are converted, checked and counted (validation).
    Discard,
}

/// What the node wrote, once every partition finished.
#[derive(Debug, Clone, Default)]
pub struct FilesWritten {
    pub parts: Vec<PartInfo>,
    pub rejects: bool,
    pub bad_records: bool,
    /// The side files' names when the writer is tagged (one per cluster task), else empty.
    pub rejects_name: String,
    pub bad_records_name: String,
}

struct Rollers {
    rows: PartRoller,
    rejects: PartRoller,
    bad_records: PartRoller,
    allow_empty: bool,
}

/// The open files of one node (none when discarding).
pub(super) struct OutputFiles {
    rollers: Option<Rollers>,
    rejects_written: bool,
    bad_records_written: bool,
    rejects_name: String,
    bad_records_name: String,
}

/// The rejects file of the writer tagged `tag` (under the side folder).
pub fn tagged_rejects_name(tag: &str) -> String {
    format!("rejects.{tag}.csv")
}

/// The bad-records file of the writer tagged `tag` (under the side folder).
pub fn tagged_bad_records_name(tag: &str) -> String {
    format!("bad-records.{tag}.jsonl")
}

impl OutputFiles {
    /// `tag`: names the files of one of several writers sharing the folders (a cluster's tasks).
    pub(super) fn new(target: &WriteTarget, plan: &ColumnPlan, tag: Option<&str>) -> Self {
        let rejects_name = tag.map_or_else(|| STAGED_REJECTS.to_string(), tagged_rejects_name);
        let bad_records_name =
            tag.map_or_else(|| STAGED_BAD_RECORDS.to_string(), tagged_bad_records_name);
        let rollers = match target {
            WriteTarget::Stage {
                dest,
                data_dir,
                side_dir,
                max_file_size,
                allow_empty,
            } => {
                // A cluster's task: its files appear only while its job is open.
                let fence = |roller: PartRoller| match tag {
                    Some(_) => roller.fenced(
                        side_dir.clone().join(CLUSTER_JOB_MARKER),
                        side_dir.clone().join(TASK_UPLOADS),
                    ),
                    None => roller,
                };
                let rows = PartRoller::new(
                    dest,
                    data_dir.clone(),
                    csv_dialect::header(plan.names()),
                    *max_file_size,
                );
                Some(Rollers {
                    rows: fence(match tag {
                        Some(tag) => rows.tagged(tag),
                        None => rows,
                    }),
                    rejects: fence(PartRoller::single_file(
                        dest,
                        side_dir.clone(),
                        &rejects_name,
                        batch::rejects_header(plan),
                    )),
                    bad_records: fence(PartRoller::single_file(
                        dest,
                        side_dir.clone(),
                        &bad_records_name,
                        Vec::new(),
                    )),
                    allow_empty: *allow_empty,
                })
            }
            WriteTarget::Discard => None,
        };
        let tagged = tag.is_some();
        Self {
            rollers,
            rejects_written: false,
            bad_records_written: false,
            rejects_name: if tagged { rejects_name } else { String::new() },
            bad_records_name: if tagged {
                bad_records_name
            } else {
                String::new()
            },
        }
    }

    pub(super) async fn write_rows(&mut self, rows: &EncodedRows) -> Result<()> {
        match self.rollers.as_mut() {
            Some(rollers) => rollers.rows.write(rows).await,
            None => Ok(()),
        }
    }

    pub(super) async fn write_rejects(&mut self, rows: &EncodedRows) -> Result<()> {
        self.rejects_written = true;
        match self.rollers.as_mut() {
            Some(rollers) => rollers.rejects.write(rows).await,
            None => Ok(()),
        }
    }

    pub(super) async fn write_bad_records(&mut self, pending: &[BadRecord]) -> Result<()> {
        let Some(rollers) = self.rollers.as_mut() else {
            return Ok(());
        };
        if pending.is_empty() {
            return Ok(());
        }
        let mut lines = EncodedRows::default();
        for bad in pending {
            lines.bytes.extend(bad_records::to_json_line(bad));
            lines.row_ends.push(lines.bytes.len());
        }
        self.bad_records_written = true;
        rollers.bad_records.write(&lines).await
    }

    /// Completes every file.
    pub(super) async fn finish(&mut self) -> Result<FilesWritten> {
        let Some(rollers) = self.rollers.as_mut() else {
            return Ok(FilesWritten {
                rejects: self.rejects_written,
                ..FilesWritten::default()
            });
        };
        let parts = if rollers.allow_empty {
            rollers.rows.finish_at_least_one().await?
        } else {
            rollers.rows.finish().await?
        };
        rollers.rejects.finish().await?;
        rollers.bad_records.finish().await?;
        Ok(FilesWritten {
            parts,
            rejects: self.rejects_written,
            bad_records: self.bad_records_written,
            rejects_name: self.rejects_name.clone(),
            bad_records_name: self.bad_records_name.clone(),
        })
    }

    /// Aborts the uploads in progress (completed files are left for the staging's cleanup).
    pub(super) async fn abort(&mut self) {
        if let Some(rollers) = self.rollers.as_mut() {
            rollers.rows.abort().await;
            rollers.rejects.abort().await;
            rollers.bad_records.abort().await;
        }
    }
}
