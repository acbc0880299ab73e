//! Source records pengine could not read: a truncated Firehose object, a line of binary garbage, a
//! CSV row with a field too many, a value that is not the column's type, a corrupt Parquet file.
//!
//! With `--on-bad-records fail` (the default) the first one stops the run with the file, the
//! position and an excerpt. With `skip` the readers note each one here and go on; the run writes
//! them to `<dataset>.bad-records.jsonl` as it goes and counts them per file in the report, so
//! every input record is accounted for. The session carries one log (a config extension), which
//! the table factory hands to each source's reader.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use datafusion::error::DataFusionError;
use datafusion::prelude::SessionConfig;
use serde::{Deserialize, Serialize};

use crate::error::Error;

/// What to do with a source record that cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BadRecordPolicy {
    /// Stop the run (nothing is published), naming the file, position and record.
    #[default]
    Fail,
    /// Write the record to `<dataset>.bad-records.jsonl` with its reason, and go on.
    Skip,
}

/// Characters of a bad record shown in messages and in the bad-records file.
pub const EXCERPT_CHARS: usize = 160;

/// Bad records held before the writer is woken to write them out.
const WAKE_WRITER_AT: usize = 1024;

/// One record that could not be read, and where it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadRecord {
    pub file: String,
    /// Where the record starts in the file, counted after decompression.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub byte_offset: Option<u64>,
    /// The record's first line (CSV).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// The Parquet row group that could not be read (absent: the file itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_group: Option<usize>,
    pub reason: String,
    /// The record's start, as text (bytes that are not UTF-8 shown as U+FFFD).
    pub excerpt: String,
}

impl BadRecord {
    /// A record starting at `byte_offset` whose first bytes are `bytes`.
    pub fn at_byte(
        file: impl Into<String>,
        byte_offset: u64,
        reason: impl Into<String>,
        bytes: &[u8],
    ) -> Self {
        Self {
            file: file.into(),
            byte_offset: Some(byte_offset),
            line: None,
            row_group: None,
            reason: reason.into(),
            excerpt: excerpt(bytes),
        }
    }

    /// What tells one record from another: its file and position (a task run again reads the
    /// same records at the same positions).
    pub fn key(&self) -> (&str, Option<u64>, Option<u64>, Option<usize>) {
        (&self.file, self.byte_offset, self.line, self.row_group)
    }

    /// Where the record is, for a person.
    pub fn position(&self) -> String {
        match (self.line, self.byte_offset, self.row_group) {
            (Some(line), Some(byte), _) => format!("line {line} (byte {byte})"),
            (Some(line), None, _) => format!("line {line}"),
            (None, Some(byte), _) => format!("byte {byte}"),
            (None, None, Some(group)) => format!("row group {group}"),
            (None, None, None) => "the file".to_string(),
        }
    }

    /// Where, what and how to go on, without the file's name.
    pub fn message(&self) -> String {
        let shown = if self.excerpt.is_empty() {
            String::new()
        } else {
            format!(": `{}`", self.excerpt)
        };
        format!(
            "{}: {}{shown}. Fix or remove the record, or run with --on-bad-records skip to set \
             such records aside in <dataset>.bad-records.jsonl and go on",
            self.position(),
            self.reason
        )
    }

    /// The error that stops a run under `--on-bad-records fail`.
    pub fn into_error(self) -> DataFusionError {
        DataFusionError::External(Box::new(Error::Data(format!(
            "{}: {}",
            self.file,
            self.message()
        ))))
    }
}

/// The start of a record as one line of text: at most [`EXCERPT_CHARS`] characters, invalid UTF-8
/// as U+FFFD, line breaks and other control characters escaped.
pub fn excerpt(bytes: &[u8]) -> String {
    // Enough bytes for the characters shown, even if every one is 4 bytes long.
    let head = &bytes[..bytes.len().min(EXCERPT_CHARS * 4)];
    let text = String::from_utf8_lossy(head);
    let mut out = String::new();
    for (shown, c) in text.chars().enumerate() {
        if shown == EXCERPT_CHARS {
            out.push('…');
            return out;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    if head.len() < bytes.len() {
        out.push('…');
    }
    out
}

/// Bad records per source file, and in all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct BadRecordCounts {
    pub total: u64,
    pub by_file: BTreeMap<String, u64>,
}

/// The bad records of one dataset's run.
#[derive(Debug, Default)]
pub struct BadRecordLog {
    policy: BadRecordPolicy,
    state: Mutex<LogState>,
    wake_writer: tokio::sync::Notify,
}

#[derive(Debug, Default)]
struct LogState {
    pending: Vec<BadRecord>,
    counts: BadRecordCounts,
}

impl BadRecordLog {
    pub fn new(policy: BadRecordPolicy) -> Self {
        Self {
            policy,
            ..Self::default()
        }
    }

    pub fn policy(&self) -> BadRecordPolicy {
        self.policy
    }

    /// The log a session carries (a `fail` log when it carries none).
    pub fn of(config: &SessionConfig) -> Arc<BadRecordLog> {
        config
            .get_extension::<BadRecordLog>()
            .unwrap_or_else(|| Arc::new(BadRecordLog::default()))
    }

    /// A reader found a bad record: under `fail` this is the read's error; under `skip` it is
    /// counted and kept for the bad-records file.
    pub fn record(&self, bad: BadRecord) -> Result<(), DataFusionError> {
        if self.policy == BadRecordPolicy::Fail {
            return Err(bad.into_error());
        }
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.counts.add(&bad);
        state.pending.push(bad);
        if state.pending.len() >= WAKE_WRITER_AT {
            self.wake_writer.notify_one();
        }
        Ok(())
    }

    /// Schema inference found a bad record: under `fail`, the error message (without the file's
    /// name, which the caller puts in front); under `skip` nothing (the scan meets the same record
    /// and records it, so it is counted once).
    pub fn seen_while_inferring(&self, bad: &BadRecord) -> Result<(), String> {
        match self.policy {
            BadRecordPolicy::Fail => Err(bad.message()),
            BadRecordPolicy::Skip => Ok(()),
        }
    }

    /// The bad records not yet written out, oldest first.
    pub fn take_pending(&self) -> Vec<BadRecord> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        std::mem::take(&mut state.pending)
    }

    /// Whether enough bad records are pending to be worth writing out.
    pub fn many_are_pending(&self) -> bool {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.pending.len() >= WAKE_WRITER_AT
    }

    /// Resolves when enough bad records are pending to be worth writing.
    pub async fn many_pending(&self) {
        self.wake_writer.notified().await
    }

    pub fn counts(&self) -> BadRecordCounts {
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.counts.clone()
    }
}

impl BadRecordCounts {
    /// The counts of `records`.
    pub fn of<'a>(records: impl IntoIterator<Item = &'a BadRecord>) -> Self {
        let mut counts = BadRecordCounts::default();
        records.into_iter().for_each(|bad| counts.add(bad));
        counts
    }

    fn add(&mut self, bad: &BadRecord) {
        self.total += 1;
        *self.by_file.entry(bad.file.clone()).or_default() += 1;
    }
}

/// One bad record as a line of the bad-records file (JSON Lines).
pub fn to_json_line(bad: &BadRecord) -> Vec<u8> {
    let mut line = serde_json::to_vec(bad).unwrap_or_else(|_| b"{}".to_vec());
    line.push(b'\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpts_are_one_bounded_line() {
        assert_eq!(excerpt(b"{\"a\":\n1}"), "{\"a\":\\n1}");
        assert_eq!(excerpt(b"ab\xff\xfecd"), "ab\u{fffd}\u{fffd}cd");
        let long = "x".repeat(10_000);
        let shown = excerpt(long.as_bytes());
        assert_eq!(shown.chars().count(), EXCERPT_CHARS + 1);
        assert!(shown.ends_with('…'));
    }

    #[test]
    fn fail_policy_names_file_position_and_excerpt() {
        let log = BadRecordLog::new(BadRecordPolicy::Fail);
        let err = log
            .record(BadRecord::at_byte(
                "events/a.json",
                42,
                "invalid JSON",
                b"{oops",
            ))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("events/a.json: byte 42: invalid JSON: `{oops`"),
            "{err}"
        );
        assert!(err.contains("--on-bad-records skip"), "{err}");
        assert_eq!(log.counts().total, 0);
    }

    #[test]
    fn skip_policy_counts_per_file_and_hands_records_to_the_writer() {
        let log = BadRecordLog::new(BadRecordPolicy::Skip);
        for (file, at) in [("a", 1), ("b", 2), ("a", 3)] {
            log.record(BadRecord::at_byte(file, at, "bad", b"x"))
                .unwrap();
        }
        let counts = log.counts();
        assert_eq!(counts.total, 3);
        assert_eq!(counts.by_file["a"], 2);
        assert_eq!(log.take_pending().len(), 3);
        assert!(log.take_pending().is_empty());
        assert_eq!(log.counts().total, 3);
    }
}
