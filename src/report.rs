//! The run report: what a run read, wrote, changed and how long it took. Stored as
//! `<dataset>.report.json` beside the data, printed for a person, or printed as JSON.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::batch::InvalidPolicy;
use crate::insights::{Checks, Severity};
use crate::personalize::{DatasetType, OutputColumn};
use crate::retries::StorageRetries;
use crate::row_flow::RowFlow;
use crate::sink::PartInfo;
use crate::sources::bad_records::{BadRecordCounts, BadRecordPolicy};

/// Where every source record went: `read_from_sources + bad_records` records came in, and
/// `read_from_sources + added_by_sql = written + rejected + filtered_by_sql`.
#[derive(Debug, Clone, Serialize)]
pub struct RowCounts {
    /// Rows the scans of all sources produced (joins and filters come after).
    pub read_from_sources: u64,
    /// Source records that could not be read, set aside by `--on-bad-records skip`.
    pub bad_records: u64,
    /// Rows read but not in the final query's output: the sum of `removed_by`, counted operator
    /// by operator (rows of a lookup table joined in count here too).
    pub filtered_by_sql: u64,
    /// Rows each kind of operator removed: `where`, `join`, `distinct_or_group_by`, `limit`,
    /// `unnest`, `other` (see [`crate::row_flow`]).
    pub removed_by: BTreeMap<&'static str, u64>,
    /// Rows the query made beyond those it read: the sum of `added_by` (a join matching a row more
    /// than once, an UNNEST).
    pub added_by_sql: u64,
    pub added_by: BTreeMap<&'static str, u64>,
    /// False when the query makes rows itself (VALUES, an in-memory table) that no scan counts:
    /// `filtered_by_sql` and `added_by_sql` are then what is left over, by operator unknown.
    pub measured: bool,
    /// What the scans skipped without reading (Parquet files, row groups, rows of pages ruled
    /// out by their statistics; `key=value` partitions, their files and bytes, ruled out by a
    /// filter on their columns): not in `read_from_sources`.
    pub pruned: BTreeMap<&'static str, u64>,
    /// Rows of the final query: written + rejected.
    pub query_output: u64,
    pub written: u64,
    /// Rows that broke a rule and were written to the rejects file (`--on-invalid skip`).
    pub rejected: u64,
}

impl RowCounts {
    /// The counts of a run: what the plan measured (`flow`) and what the writer counted.
    pub fn new(flow: &RowFlow, bad_records: u64, written: u64, rejected: u64) -> Self {
        let query_output = written + rejected;
        let measured = flow.is_measured();
        let (filtered_by_sql, added_by_sql) = if measured {
            (flow.removed_by.values().sum(), flow.added_by.values().sum())
        } else {
            // Rows the query made itself are not counted: only the difference can be given.
            (
                flow.read.saturating_sub(query_output),
                query_output.saturating_sub(flow.read),
            )
        };
        let by_kind = |kinds: &BTreeMap<&'static str, u64>| {
            if measured {
                kinds.clone()
            } else {
                BTreeMap::new()
            }
        };
        Self {
            read_from_sources: flow.read,
            bad_records,
            filtered_by_sql,
            removed_by: by_kind(&flow.removed_by),
            added_by_sql,
            added_by: by_kind(&flow.added_by),
            measured,
            pruned: flow.pruned.clone(),
            query_output,
            written,
            rejected,
        }
    }

    /// Whether every row read is accounted for: the rows the plan produced are the rows the writer
    /// counted, so `read_from_sources + added_by_sql = written + rejected + filtered_by_sql`.
    pub fn balance(&self) -> std::result::Result<(), String> {
        let came = self.read_from_sources + self.added_by_sql;
        let went = self.query_output + self.filtered_by_sql;
        if came == went {
            return Ok(());
        }
        Err(format!(
            "{} rows were read from the sources and {} made by the query ({:?}), but {} were \
             written, {} rejected and {} removed by the query ({:?}): {} rows are unaccounted for",
            self.read_from_sources,
            self.added_by_sql,
            self.added_by,
            self.written,
            self.rejected,
            self.filtered_by_sql,
            self.removed_by,
            came as i64 - went as i64
        ))
    }
}

/// What the report says of an incremental run.
#[derive(Debug, Clone, Serialize)]
pub struct IncrementReport {
    /// `increment` when only new files were converted, `full` when every file was.
    pub kind: crate::sink::publish::pointer::RunKind,
    /// Why a run asked to be incremental converted everything.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub full_because: Option<String>,
    /// The increment's own folder (its snapshot): an INCREMENTAL import's data location.
    pub data_location: String,
    pub new_files: usize,
    /// Files converted by earlier runs, not read again.
    pub skipped_files: usize,
    /// Files converted before that changed since (converted again with `--on-changed
    /// reconvert`).
    pub changed_files: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct RunReport {
    pub pengine_version: &'static str,
    pub dataset: DatasetType,
    pub mapping_file: String,
    pub run_id: String,
    pub started_at: String,
    /// The folder to give Personalize as the import job's data location: this run's immutable
    /// snapshot (when validating, the data checked).
    pub data_location: String,
    /// The dataset's pointer, naming its current snapshot(s); absent when validating.
    pub current_file: Option<String>,
    /// What an incremental mapping file's run converted (absent for other mapping files).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub increment: Option<IncrementReport>,
    /// `<output>/<dataset>/`, the folder pengine keeps equal to the current snapshot(s) for
    /// users who point at it by hand (not atomic: see README); absent when validating.
    pub mirror_location: Option<String>,
    /// Absent when validating (nothing is written).
    pub schema_file: Option<String>,
    pub report_file: Option<String>,
    pub wall_seconds: f64,
    pub rows: RowCounts,
    /// Rejected rows per rule.
    pub rejected_by_rule: BTreeMap<String, u64>,
    /// The first rejected rows, described.
    pub reject_examples: Vec<String>,
    /// Where the rejected rows are, when there are any.
    pub rejects_file: Option<String>,
    pub on_invalid: InvalidPolicy,
    /// Source records that could not be read, per file.
    pub bad_records: BadRecordCounts,
    /// Where the bad records are, when there are any.
    pub bad_records_file: Option<String>,
    pub on_bad_records: BadRecordPolicy,
    pub rows_per_second: f64,
    pub bytes_written: u64,
    pub files: Vec<PartInfo>,
    /// Values whose line breaks the CSV dialect replaced by spaces, per column.
    pub line_breaks_replaced: BTreeMap<String, u64>,
    pub columns: Vec<OutputColumn>,
    pub schema: serde_json::Value,
    /// `hash`, or `sort-merge` when the hash join ran out of memory and the run was retried.
    pub join_strategy: JoinStrategy,
    /// Storage requests retried after transient errors. The report file counts those until the
    /// report was staged; the printed report also those of the publication.
    pub storage_retries: StorageRetries,
    /// Files this run deleted from the data folder when it published: earlier parts the new
    /// export does not have (and, with `--take-over`, the files pengine had not written).
    pub deleted_files: Vec<String>,
    /// Dataset-level checks and insights (absent with `--no-insights`).
    pub checks: Option<Checks>,
    /// The cluster that ran the job (`--cluster`; absent for a local run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<ClusterReport>,
}

/// What a cluster run reports of the cluster.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct ClusterReport {
    /// The scheduler, as `--cluster` named it.
    pub scheduler: String,
    /// The scheduler's job id.
    pub job: String,
    /// The executors that ran the write stage's tasks (and so wrote the parts).
    pub executors: Vec<String>,
    /// The write stage's partitions (one summary each).
    pub write_partitions: usize,
    /// Task attempts that completed, in every stage, as the scheduler counted them (None: its
    /// figures could not be read).
    pub tasks: Option<usize>,
    /// Task attempts, in every stage, that failed or were lost with their executor and ran again.
    pub task_retries: Option<usize>,
}

/// How the query's joins ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum JoinStrategy {
    /// Hash joins: fast, but their build side cannot spill.
    Hash,
    /// Sort-merge joins, after a hash join ran out of memory: they spill.
    SortMerge,
}

/// How many deleted files the summary names.
const DELETED_SHOWN: usize = 5;

impl RunReport {
    /// A short summary for a person (stderr).
    pub fn human(&self) -> String {
        let mut out = String::new();
        let mb = self.bytes_written as f64 / 1_000_000.0;
        if self.schema_file.is_none() {
            // Validation: nothing was written.
            out.push_str(&format!(
                "{}: {} valid row(s), {} invalid, {:.1} MB of CSV, checked in {:.2}s\n",
                self.dataset, self.rows.written, self.rows.rejected, mb, self.wall_seconds
            ));
        } else {
            out.push_str(&format!(
                "{}: {} rows written in {} part(s), {:.1} MB, {:.2}s ({:.0} rows/s); {} rows read \
                 from sources\n",
                self.dataset,
                self.rows.written,
                self.files.len(),
                mb,
                self.wall_seconds,
                self.rows_per_second,
                self.rows.read_from_sources,
            ));
        }
        out.push_str(&format!("  data location: {}\n", self.data_location));
        if let Some(increment) = &self.increment {
            let what = match (&increment.kind, &increment.full_because) {
                (crate::sink::publish::pointer::RunKind::Increment, _) => format!(
                    "increment: {} new file(s), {} converted before and skipped, {} changed",
                    increment.new_files, increment.skipped_files, increment.changed_files
                ),
                (_, Some(why)) => format!("converted whole ({why})"),
                (_, None) => "converted whole".to_string(),
            };
            out.push_str(&format!("  sources:       {what}\n"));
        }
        if let Some(mirror) = &self.mirror_location {
            out.push_str(&format!("  also in:       {mirror} (a copy; see README)\n"));
        }
        if let Some(schema) = &self.schema_file {
            out.push_str(&format!("  schema:        {schema}\n"));
        }
        if let Some(report) = &self.report_file {
            out.push_str(&format!("  report:        {report}\n"));
        }
        if let Some(rejects) = &self.rejects_file {
            let by_rule: Vec<String> = self
                .rejected_by_rule
                .iter()
                .map(|(rule, n)| format!("{rule}: {n}"))
                .collect();
            out.push_str(&format!(
                "  rejected:      {} row(s) ({}) → {rejects}\n",
                self.rows.rejected,
                by_rule.join(", ")
            ));
        }
        if let Some(file) = &self.bad_records_file {
            out.push_str(&format!(
                "  bad records:   {} source record(s) could not be read, in {} file(s) → {file}\n",
                self.bad_records.total,
                self.bad_records.by_file.len()
            ));
        }
        let columns: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                let mut s = format!("{} {}", c.name, c.avro_type.name());
                if c.categorical {
                    s.push_str(" categorical");
                }
                if c.textual {
                    s.push_str(" textual");
                }
                s
            })
            .collect();
        out.push_str(&format!("  columns:       {}\n", columns.join(", ")));
        for (column, count) in self.line_breaks_replaced.iter().filter(|(_, n)| **n > 0) {
            out.push_str(&format!(
                "  note: {count} value(s) of {column} had line breaks, written as spaces\n"
            ));
        }
        if self.join_strategy != JoinStrategy::Hash {
            out.push_str(
                "  note: the hash join ran out of memory; the run used sort-merge joins\n",
            );
        }
        if self.storage_retries.total > 0 {
            let by_operation: Vec<String> = self
                .storage_retries
                .by_operation
                .iter()
                .map(|(op, n)| format!("{op} {n}"))
                .collect();
            out.push_str(&format!(
                "  note: {} storage request(s) retried after transient errors ({})\n",
                self.storage_retries.total,
                by_operation.join(", ")
            ));
        }
        if !self.deleted_files.is_empty() {
            let shown: Vec<&str> = self
                .deleted_files
                .iter()
                .take(DELETED_SHOWN)
                .map(String::as_str)
                .collect();
            let more = match self.deleted_files.len().saturating_sub(DELETED_SHOWN) {
                0 => String::new(),
                n => format!(" and {n} more (the report lists them all)"),
            };
            out.push_str(&format!(
                "  deleted:       {} earlier file(s): {}{more}\n",
                self.deleted_files.len(),
                shown.join(", ")
            ));
        }
        if let Some(checks) = &self.checks {
            out.push_str(&checks_table(checks));
        }
        out
    }
}

/// The findings and the main figures, for a person.
pub fn checks_table(checks: &Checks) -> String {
    let mut out = String::new();
    for finding in &checks.findings {
        let label = match finding.severity {
            Severity::Error => "ERROR  ",
            Severity::Warning => "warning",
        };
        out.push_str(&format!(
            "  {label} [{}] {}\n",
            finding.check, finding.message
        ));
    }
    let mut figures = Vec::new();
    if let Some(n) = checks.distinct_users {
        figures.push(format!("{n} users"));
    }
    if let Some(n) = checks.users_with_two_or_more {
        figures.push(format!("{n} with 2+ interactions"));
    }
    if let Some(n) = checks.distinct_items {
        figures.push(format!("{n} items"));
    }
    if !checks.event_types.is_empty() {
        let types: Vec<String> = checks
            .event_types
            .iter()
            .map(|(t, n)| format!("{t}: {n}"))
            .collect();
        figures.push(format!("event types {{{}}}", types.join(", ")));
    }
    if let (Some(first), Some(last)) = (&checks.first_timestamp, &checks.last_timestamp) {
        figures.push(format!("{first} → {last}"));
    }
    if !figures.is_empty() {
        out.push_str(&format!("  figures:       {}\n", figures.join("; ")));
    }
    let incomplete: Vec<String> = checks
        .columns
        .iter()
        .filter(|c| c.completeness < 1.0)
        .map(|c| format!("{} {:.0} %", c.name, c.completeness * 100.0))
        .collect();
    if !incomplete.is_empty() {
        out.push_str(&format!("  completeness:  {}\n", incomplete.join(", ")));
    }
    if !checks.approximate.is_empty() {
        out.push_str(&format!(
            "  approximate:   {} (estimated on a sample of keys)\n",
            checks.approximate.join(", ")
        ));
    }
    out
}
