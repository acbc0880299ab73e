//! One batch of the final query → encoded CSV rows (and encoded rejects): convert, check every
//! row, apply the invalid-row policy, encode in Personalize's dialect. Runs in each partition's
//! task, in parallel.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, BooleanArray, StringArray};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::array_value_to_string;

use crate::error::{Error, Result};
use crate::insights::DatasetStats;
use crate::personalize::coerce::{self, Coerced};
use crate::personalize::rules::{RowRejections, Rule, excerpt};
use crate::personalize::{ColumnPlan, rows};
use crate::sink::csv_dialect::{self, DialectChanges, EncodedRows};

/// What to do with a row that breaks a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum InvalidPolicy {
    /// Stop the run (nothing is published) and show the first offending rows.
    #[default]
    Fail,
    /// Write the row to `<dataset>.rejects.csv` with its reason, and go on.
    Skip,
}

/// Rows shown when a run stops on invalid rows.
const FAIL_EXAMPLES: usize = 5;

/// The extra columns of the rejects file.
pub const REJECT_COLUMNS: [&str; 2] = ["PENGINE_REJECT_RULE", "PENGINE_REJECT_REASON"];

/// Counts and figures of one partition (or of the whole run, once added up).
/// Serializable: a cluster's tasks send theirs to the client, which adds them up.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Tally {
    pub written: u64,
    /// CSV bytes of the written rows (headers not included).
    pub row_bytes: u64,
    pub rejected: u64,
    pub rejected_by_rule: BTreeMap<Rule, u64>,
    pub changes: DialectChanges,
    pub stats: DatasetStats,
    /// The first rejections, described (rule, message, row).
    pub examples: Vec<String>,
}

impl Tally {
    pub fn new(plan: &ColumnPlan) -> Self {
        Self {
            written: 0,
            row_bytes: 0,
            rejected: 0,
            rejected_by_rule: BTreeMap::new(),
            changes: DialectChanges::new(plan.columns.len()),
            stats: DatasetStats::new(plan),
            examples: Vec::new(),
        }
    }

    /// The buffer to reserve per row: the average so far, with some room.
    fn expected_row_bytes(&self) -> usize {
        const FIRST_GUESS: usize = 128;
        match self.row_bytes.checked_div(self.written) {
            Some(average) => average as usize + average as usize / 8 + 1,
            None => FIRST_GUESS,
        }
    }

    pub fn add(&mut self, other: &Tally) {
        self.written += other.written;
        self.row_bytes += other.row_bytes;
        self.rejected += other.rejected;
        for (rule, n) in &other.rejected_by_rule {
            *self.rejected_by_rule.entry(*rule).or_default() += n;
        }
        self.changes.add(&other.changes);
        self.stats.merge(&other.stats);
        let room = FAIL_EXAMPLES.saturating_sub(self.examples.len());
        self.examples
            .extend(other.examples.iter().take(room).cloned());
    }
}

/// The encoded output of one batch.
pub struct EncodedBatch {
    pub rows: EncodedRows,
    pub rejects: Option<EncodedRows>,
}

/// How batches are processed.
#[derive(Debug, Clone, Copy)]
pub struct BatchOptions {
    pub policy: InvalidPolicy,
    /// Gather the dataset-level figures (row checks always run).
    pub insights: bool,
}

/// Converts, checks and encodes one batch.
pub fn process(
    plan: &ColumnPlan,
    batch: &RecordBatch,
    options: BatchOptions,
    tally: &mut Tally,
) -> Result<EncodedBatch> {
    let policy = options.policy;
    let mut rejections = RowRejections::new(batch.num_rows());
    let mut converted = coerce::coerce_batch(plan, batch, &mut rejections)?;
    rows::check_batch(plan, &converted, &mut rejections);
    let mut rejects = None;
    if rejections.count() > 0 {
        if policy == InvalidPolicy::Fail {
            return Err(fail_error(plan, batch, &rejections));
        }
        let keep: BooleanArray = (0..batch.num_rows())
            .map(|row| Some(!rejections.is_rejected(row)))
            .collect();
        converted = converted
            .iter()
            .map(|c| c.filter(&keep))
            .collect::<Result<_>>()?;
        rejects = Some(encode_rejects(plan, batch, &rejections));
        tally.rejected += rejections.count() as u64;
        for (row, rejection) in rejections.iter() {
            *tally.rejected_by_rule.entry(rejection.rule).or_default() += 1;
            if tally.examples.len() < FAIL_EXAMPLES {
                tally
                    .examples
                    .push(describe_rejection(plan, batch, row, rejection));
            }
        }
    }
    if options.insights {
        tally.stats.observe(plan, &converted)?;
    }
    let kept = converted.first().map_or(0, Coerced::len);
    let mut rows = EncodedRows {
        bytes: Vec::with_capacity(kept * tally.expected_row_bytes()),
        row_ends: Vec::with_capacity(kept),
    };
    csv_dialect::encode(&converted, &mut rows, &mut tally.changes);
    tally.written += kept as u64;
    tally.row_bytes += rows.bytes.len() as u64;
    Ok(EncodedBatch { rows, rejects })
}

/// `NAME=value, ...` of a row as it came out of the query, for messages.
fn describe_row(plan: &ColumnPlan, batch: &RecordBatch, row: usize) -> String {
    plan.columns
        .iter()
        .map(|c| {
            let array = batch.column(c.index);
            let value = if array.is_valid(row) {
                excerpt(&array_value_to_string(array, row).unwrap_or_default())
            } else {
                String::new()
            };
            format!("{}={value}", c.name)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// `[rule] message` and the row, for messages and the report.
fn describe_rejection(
    plan: &ColumnPlan,
    batch: &RecordBatch,
    row: usize,
    rejection: &crate::personalize::rules::Rejection,
) -> String {
    format!(
        "[{}] {}\n    row: {}",
        rejection.rule.key(),
        rejection.message(),
        describe_row(plan, batch, row)
    )
}

fn fail_error(plan: &ColumnPlan, batch: &RecordBatch, rejections: &RowRejections) -> Error {
    let mut text = format!(
        "{} row(s) of this batch break Personalize rules (nothing was published); the first:\n",
        rejections.count()
    );
    for (row, rejection) in rejections.iter().take(FAIL_EXAMPLES) {
        text.push_str(&format!(
            "  - {}\n",
            describe_rejection(plan, batch, row, rejection)
        ));
    }
    text.push_str(
        "Fix the mapping file, or run with --on-invalid skip to write such rows to \
         <dataset>.rejects.csv and publish the rest",
    );
    Error::Data(text)
}

/// The rejected rows as the query produced them (as text), with the rule and the reason.
fn encode_rejects(
    plan: &ColumnPlan,
    batch: &RecordBatch,
    rejections: &RowRejections,
) -> EncodedRows {
    let rows: Vec<usize> = rejections.iter().map(|(row, _)| row).collect();
    let mut columns: Vec<Coerced> = plan
        .columns
        .iter()
        .map(|c| {
            let array = batch.column(c.index);
            let values: StringArray = rows
                .iter()
                .map(|&row| {
                    array
                        .is_valid(row)
                        .then(|| array_value_to_string(array, row).unwrap_or_default())
                })
                .collect();
            Coerced::Text(Arc::new(values))
        })
        .collect();
    let rules: StringArray = rejections.iter().map(|(_, r)| Some(r.rule.key())).collect();
    let reasons: StringArray = rejections.iter().map(|(_, r)| Some(r.message())).collect();
    columns.push(Coerced::Text(Arc::new(rules)));
    columns.push(Coerced::Text(Arc::new(reasons)));
    let mut out = EncodedRows::default();
    csv_dialect::encode(&columns, &mut out, &mut DialectChanges::new(columns.len()));
    out
}

/// The rejects file's header: the dataset's columns, then the rule and the reason.
pub fn rejects_header(plan: &ColumnPlan) -> Vec<u8> {
    csv_dialect::header(plan.names().chain(REJECT_COLUMNS))
}
