//! What a write node returns: one small batch per partition saying what it wrote, so that
//! whoever executed the plan (this process, or a cluster's client) can commit exactly those files.
//!
//! Rows: `partition` (rows written and rejected by that partition, bytes of its CSV rows), and
//! from the partition that finishes last, one `part` row per data part, `rejects` and
//! `bad_records` when those files were written. A writer of a cluster's task adds one `tally` row
//! (its figures as JSON in `name`), and names its side files in the `rejects` and `bad_records`
//! rows, since the client, not the task, holds the run's figures and files.

use std::sync::{Arc, LazyLock};

use datafusion::arrow::array::{Array, AsArray, RecordBatch, StringArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef, UInt64Type};

use super::files::FilesWritten;
use crate::batch::Tally;
use crate::error::{Error, Result};
use crate::sink::PartInfo;

const PARTITION: &str = "partition";
const PART: &str = "part";
const REJECTS: &str = "rejects";
const BAD_RECORDS: &str = "bad_records";
const TALLY: &str = "tally";

static SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("kind", DataType::Utf8, false),
        Field::new("name", DataType::Utf8, false),
        Field::new("rows", DataType::UInt64, false),
        Field::new("bytes", DataType::UInt64, false),
        Field::new("rejected", DataType::UInt64, false),
    ]))
});

/// The node's output schema.
pub fn schema() -> SchemaRef {
    Arc::clone(&SCHEMA)
}

/// What one partition wrote.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PartitionCounts {
    pub written: u64,
    pub row_bytes: u64,
    pub rejected: u64,
}

/// The summary batch of partition `partition`; `files` when it was the last to finish, `tally`
/// from a cluster's task.
pub(super) fn encode(
    partition: usize,
    counts: PartitionCounts,
    files: Option<&FilesWritten>,
    tally: Option<&Tally>,
) -> Result<RecordBatch> {
    let mut rows: Vec<(&str, String, u64, u64, u64)> = vec![(
        PARTITION,
        partition.to_string(),
        counts.written,
        counts.row_bytes,
        counts.rejected,
    )];
    if let Some(files) = files {
        for part in &files.parts {
            rows.push((PART, part.name.clone(), part.rows, part.bytes, 0));
        }
        if files.rejects {
            rows.push((REJECTS, files.rejects_name.clone(), 0, 0, 0));
        }
        if files.bad_records {
            rows.push((BAD_RECORDS, files.bad_records_name.clone(), 0, 0, 0));
        }
    }
    if let Some(tally) = tally {
        let text = serde_json::to_string(tally)
            .map_err(|e| Error::Internal(format!("a task's figures: {e}")))?;
        rows.push((TALLY, text, 0, 0, 0));
    }
    let column = |f: fn(&(&str, String, u64, u64, u64)) -> u64| {
        Arc::new(rows.iter().map(f).collect::<UInt64Array>()) as Arc<dyn Array>
    };
    Ok(RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(rows.iter().map(|r| Some(r.0)).collect::<StringArray>()),
            Arc::new(
                rows.iter()
                    .map(|r| Some(r.1.as_str()))
                    .collect::<StringArray>(),
            ),
            column(|r| r.2),
            column(|r| r.3),
            column(|r| r.4),
        ],
    )?)
}

/// Everything a write node's partitions returned, added up.
#[derive(Debug, Clone, Default)]
pub struct WriteSummary {
    pub partitions: usize,
    pub counts: PartitionCounts,
    pub parts: Vec<PartInfo>,
    pub rejects_file: bool,
    pub bad_records_file: bool,
    /// Tagged side files (a cluster's tasks), by name under the staging folder.
    pub rejects_files: Vec<String>,
    pub bad_records_files: Vec<String>,
    /// The tasks' figures added up (a cluster's tasks; a local node keeps its own).
    pub tally: Option<Tally>,
}

impl WriteSummary {
    /// Adds one summary batch.
    pub fn add(&mut self, batch: &RecordBatch) -> Result<()> {
        if batch.schema().fields() != SCHEMA.fields() {
            return Err(Error::Internal(format!(
                "a write node returned an unexpected summary: {}",
                batch.schema()
            )));
        }
        let kinds = batch.column(0).as_string::<i32>();
        let names = batch.column(1).as_string::<i32>();
        let rows = batch.column(2).as_primitive::<UInt64Type>();
        let bytes = batch.column(3).as_primitive::<UInt64Type>();
        let rejected = batch.column(4).as_primitive::<UInt64Type>();
        for i in 0..batch.num_rows() {
            match kinds.value(i) {
                PARTITION => {
                    self.partitions += 1;
                    self.counts.written += rows.value(i);
                    self.counts.row_bytes += bytes.value(i);
                    self.counts.rejected += rejected.value(i);
                }
                PART => self.parts.push(PartInfo {
                    name: names.value(i).to_string(),
                    rows: rows.value(i),
                    bytes: bytes.value(i),
                }),
                REJECTS => {
                    self.rejects_file = true;
                    if !names.value(i).is_empty() {
                        self.rejects_files.push(names.value(i).to_string());
                    }
                }
                BAD_RECORDS => {
                    self.bad_records_file = true;
                    if !names.value(i).is_empty() {
                        self.bad_records_files.push(names.value(i).to_string());
                    }
                }
                TALLY => {
                    let tally: Tally = serde_json::from_str(names.value(i)).map_err(|e| {
                        Error::Internal(format!("a task sent figures that do not read: {e}"))
                    })?;
                    match &mut self.tally {
                        Some(sum) => sum.add(&tally),
                        None => self.tally = Some(tally),
                    }
                }
                other => {
                    return Err(Error::Internal(format!(
                        "a write node returned an unknown summary row kind {other:?}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The rows in the parts (what the files hold) are the rows the partitions encoded: a row
    /// lost or written twice between encoding and the files stops the run before its commit.
    pub fn check_parts_hold_every_row(&self) -> Result<()> {
        let mut names: Vec<&str> = self.parts.iter().map(|p| p.name.as_str()).collect();
        names.sort_unstable();
        if let Some(twice) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(Error::Internal(format!(
                "two writers wrote the part {}; nothing is published",
                twice[0]
            )));
        }
        let in_parts: u64 = self.parts.iter().map(|p| p.rows).sum();
        if in_parts == self.counts.written {
            return Ok(());
        }
        Err(Error::Internal(format!(
            "the parts hold {in_parts} rows but {} were encoded; nothing is published",
            self.counts.written
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_add_up_what_each_partition_wrote() {
        let files = FilesWritten {
            parts: vec![
                PartInfo {
                    name: "part-00000.csv".into(),
                    rows: 5,
                    bytes: 50,
                },
                PartInfo {
                    name: "part-00001.csv".into(),
                    rows: 2,
                    bytes: 30,
                },
            ],
            rejects: true,
            bad_records: false,
            ..FilesWritten::default()
        };
        let first = PartitionCounts {
            written: 3,
            row_bytes: 30,
            rejected: 1,
        };
        let last = PartitionCounts {
            written: 4,
            row_bytes: 40,
            rejected: 0,
        };
        let mut summary = WriteSummary::default();
        summary.add(&encode(0, first, None, None).unwrap()).unwrap();
        summary
            .add(&encode(1, last, Some(&files), None).unwrap())
            .unwrap();
        assert_eq!(summary.partitions, 2);
        assert_eq!(
            summary.counts,
            PartitionCounts {
                written: 7,
                row_bytes: 70,
                rejected: 1
            }
        );
        assert_eq!(summary.parts, files.parts);
        assert!(summary.rejects_file);
        assert!(!summary.bad_records_file);
        assert!(summary.check_parts_hold_every_row().is_ok());
        summary.parts.pop();
        let err = summary.check_parts_hold_every_row().unwrap_err();
        assert!(err.to_string().contains("hold 5 rows but 7"), "{err}");
    }

    #[test]
    fn a_part_two_writers_wrote_is_never_committed() {
        let part = |name: &str| PartInfo {
            name: name.into(),
            rows: 1,
            bytes: 10,
        };
        let files = FilesWritten {
            parts: vec![part("part-3.0-0.0-0-00000.csv")],
            ..FilesWritten::default()
        };
        let counts = PartitionCounts {
            written: 1,
            row_bytes: 10,
            rejected: 0,
        };
        let mut summary = WriteSummary::default();
        summary
            .add(&encode(0, counts, Some(&files), None).unwrap())
            .unwrap();
        summary
            .add(&encode(0, counts, Some(&files), None).unwrap())
            .unwrap();
        let err = summary.check_parts_hold_every_row().unwrap_err();
        assert!(err.to_string().contains("two writers wrote"), "{err}");
    }

    #[test]
    fn a_task_sends_its_figures_and_side_files() {
        let plan = crate::personalize::ColumnPlan::new(
            &Schema::new(vec![
                Field::new("user_id", DataType::Utf8, false),
                Field::new("item_id", DataType::Utf8, false),
                Field::new("timestamp", DataType::Int64, false),
            ]),
            crate::personalize::DatasetType::Interactions,
            &Default::default(),
        )
        .unwrap();
        let mut tally = Tally::new(&plan);
        tally.written = 4;
        tally.rejected = 1;
        tally.examples.push("row 3: USER_ID is empty".into());
        let files = FilesWritten {
            rejects: true,
            rejects_name: "rejects.3.0-1.0-0.csv".into(),
            ..FilesWritten::default()
        };
        let counts = PartitionCounts {
            written: 4,
            row_bytes: 40,
            rejected: 1,
        };
        let mut summary = WriteSummary::default();
        for _ in 0..2 {
            summary
                .add(&encode(0, counts, Some(&files), Some(&tally)).unwrap())
                .unwrap();
        }
        let sum = summary.tally.unwrap();
        assert_eq!((sum.written, sum.rejected), (8, 2));
        assert_eq!(sum.examples.len(), 2);
        assert_eq!(summary.rejects_files.len(), 2);
    }

    #[test]
    fn a_foreign_batch_is_refused() {
        let batch = RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("x", DataType::UInt64, false)])),
            vec![Arc::new(UInt64Array::from(vec![1u64]))],
        )
        .unwrap();
        assert!(WriteSummary::default().add(&batch).is_err());
    }
}
