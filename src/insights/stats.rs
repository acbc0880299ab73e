//! Figures gathered while the rows stream through (no second read): per-column completeness,
//! categorical cardinality and numeric moments, event types, interactions per user, duplicate rows
//! and ids, the timestamp range. One [`DatasetStats`] per partition, merged at the end.

use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::array::BooleanBufferBuilder;
use datafusion::arrow::buffer::BooleanBuffer;
use datafusion::common::hash_utils::{HLL_RANDOM_STATE, combine_hashes, create_hashes};
use nohash_hasher::BuildNoHashHasher;
use serde::{Deserialize, Serialize};

use super::sampler::SampledCounter;
use crate::error::Result;
use crate::personalize::coerce::{Coerced, TextColumn};
use crate::personalize::{ColumnPlan, DatasetType, FieldKind, limits};

/// Keys kept exactly before sampling starts (per counter and partition): the insights stay
/// within tens of MiB whatever the export's size (benches/README.md, "Defaults, measured").
/// Beyond them the figures are sampled estimates.
const USERS_CAP: usize = 1 << 18;
const IDS_CAP: usize = 1 << 17;
/// Every row is a key, so this table is probed once per row: small enough to stay in cache.
/// Duplicate rows are estimated from a sample past it (marked approximate in the report).
const ROWS_CAP: usize = 1 << 15;
const CATEGORIES_CAP: usize = 1 << 14;
/// Distinct event types counted one by one (far above the service's 10).
const EVENT_TYPES_CAP: usize = 1_000;
/// 1990-01-01T00:00:00Z.
pub const EARLIEST_PLAUSIBLE_SECONDS: i64 = 631_152_000;

/// Count, min, max, mean and variance in one pass (Welford), mergeable (Chan et al.).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Moments {
    pub count: u64,
    pub min: f64,
    pub max: f64,
    pub mean: f64,
    m2: f64,
}

impl Moments {
    fn add(&mut self, x: f64) {
        if self.count == 0 {
            self.min = x;
            self.max = x;
        } else {
            self.min = self.min.min(x);
            self.max = self.max.max(x);
        }
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
    }

    fn merge(&mut self, other: &Moments) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = other.clone();
            return;
        }
        let n = (self.count + other.count) as f64;
        let delta = other.mean - self.mean;
        self.m2 += other.m2 + delta * delta * self.count as f64 * other.count as f64 / n;
        self.mean += delta * other.count as f64 / n;
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    pub fn stddev(&self) -> f64 {
        if self.count < 2 {
            0.0
        } else {
            (self.m2 / (self.count - 1) as f64).sqrt()
        }
    }
}

/// What is gathered for one output column.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ColumnStats {
    pub nulls: u64,
    /// Distinct values, for categorical columns.
    pub distinct: Option<SampledCounter>,
    /// For numeric columns.
    pub moments: Option<Moments>,
    /// Textual values beyond the length the service keeps.
    pub over_textual_limit: u64,
}

/// The timestamps of a dataset (TIMESTAMP, else CREATION_TIMESTAMP).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TimeRange {
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub before_1990: u64,
    pub in_the_future: u64,
}

/// Serialized whole (with `now`) when a cluster's task sends its figures to the client.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DatasetStats {
    pub rows: u64,
    pub columns: Vec<ColumnStats>,
    pub event_types: BTreeMap<String, u64>,
    pub event_types_capped: bool,
    /// Interactions per USER_ID (interactions datasets).
    pub users: Option<SampledCounter>,
    /// ITEM_ID / ACTION_ID in interactions datasets.
    pub items: Option<SampledCounter>,
    /// The dataset's own id in Users, Items, Actions (duplicates: last wins).
    pub ids: Option<SampledCounter>,
    /// Whole rows, for exact duplicates.
    pub row_hashes: SampledCounter,
    pub time: TimeRange,
    /// Epoch seconds of "now", for the future-timestamp check.
    now: i64,
    /// Reused per batch by the id and category counters (see [`SampledCounter::add_batch`]).
    #[serde(skip)]
    scratch: BatchCounts,
}

/// A batch's keys and their counts before they go to a [`SampledCounter`].
type BatchCounts = HashMap<u64, u32, BuildNoHashHasher<u64>>;

fn is_interactions(dataset: DatasetType) -> bool {
    matches!(
        dataset,
        DatasetType::Interactions | DatasetType::ActionInteractions
    )
}

impl DatasetStats {
    pub fn new(plan: &ColumnPlan) -> Self {
        let interactions = is_interactions(plan.dataset);
        Self {
            rows: 0,
            columns: plan
                .columns
                .iter()
                .map(|c| ColumnStats {
                    nulls: 0,
                    distinct: c.categorical.then(|| SampledCounter::new(CATEGORIES_CAP)),
                    moments: matches!(
                        c.avro_type,
                        crate::personalize::columns::AvroType::Long
                            | crate::personalize::columns::AvroType::Float
                            | crate::personalize::columns::AvroType::Double
                    )
                    .then(Moments::default),
                    over_textual_limit: 0,
                })
                .collect(),
            event_types: BTreeMap::new(),
            event_types_capped: false,
            users: interactions.then(|| SampledCounter::new(USERS_CAP)),
            items: interactions.then(|| SampledCounter::new(IDS_CAP)),
            ids: (!interactions).then(|| SampledCounter::new(IDS_CAP)),
            row_hashes: SampledCounter::new(ROWS_CAP),
            time: TimeRange::default(),
            now: chrono::Utc::now().timestamp(),
            scratch: BatchCounts::default(),
        }
    }

    /// Takes in the rows of one converted batch (valid rows only).
    pub fn observe(&mut self, plan: &ColumnPlan, columns: &[Coerced]) -> Result<()> {
        let rows = columns.first().map_or(0, Coerced::len);
        if rows == 0 {
            return Ok(());
        }
        self.rows += rows as u64;
        let arrays: Vec<Option<ArrayRef>> = columns.iter().map(as_array).collect();
        // Each value is hashed once: for its column's counter, and into its row's hash.
        let mut row_hashes = vec![0u64; rows];
        let mut values_hashed = Vec::with_capacity(rows);
        for ((column, values), (stats, array)) in plan
            .columns
            .iter()
            .zip(columns)
            .zip(self.columns.iter_mut().zip(&arrays))
        {
            let nulls = values.null_rows();
            stats.nulls += nulls.iter().filter(|n| **n).count() as u64;
            if let Some(array) = array {
                let keys = hash_values(array, &mut values_hashed)?;
                for (row, value) in row_hashes.iter_mut().zip(&values_hashed) {
                    *row = combine_hashes(*value, *row);
                }
                let wants_hash = stats.distinct.is_some()
                    || (matches!(column.kind(), Some(FieldKind::Id))
                        && (self.users.is_some() || self.ids.is_some()));
                let target = match (column.kind(), column.name.as_str()) {
                    _ if !wants_hash => None,
                    (Some(FieldKind::Id), "USER_ID") if self.users.is_some() => self.users.as_mut(),
                    (Some(FieldKind::Id), _) if self.items.is_some() => self.items.as_mut(),
                    (Some(FieldKind::Id), _) => self.ids.as_mut(),
                    _ => stats.distinct.as_mut(),
                };
                if let Some(counter) = target {
                    let counted: Vec<u64> = (0..rows)
                        .filter(|&r| !nulls[r] && keys.value(r))
                        .map(|r| values_hashed[r])
                        .collect();
                    counter.add_batch(&counted, &mut self.scratch);
                }
            }
            match values {
                Coerced::Long(a) => {
                    if let Some(m) = stats.moments.as_mut() {
                        a.iter().flatten().for_each(|v| m.add(v as f64));
                    }
                    if column.kind() == Some(FieldKind::EpochSeconds)
                        && matches!(column.name.as_str(), "TIMESTAMP" | "CREATION_TIMESTAMP")
                    {
                        for v in a.iter().flatten() {
                            self.time.min = Some(self.time.min.map_or(v, |m| m.min(v)));
                            self.time.max = Some(self.time.max.map_or(v, |m| m.max(v)));
                            self.time.before_1990 += u64::from(v < EARLIEST_PLAUSIBLE_SECONDS);
                            self.time.in_the_future += u64::from(v > self.now);
                        }
                    }
                }
                Coerced::Float(a) => {
                    if let Some(m) = stats.moments.as_mut() {
                        a.iter().flatten().for_each(|v| m.add(v));
                    }
                }
                Coerced::Text(a) => {
                    let text = TextColumn::new(a.as_ref());
                    if column.textual {
                        stats.over_textual_limit += (0..rows)
                            .filter_map(|r| text.as_ref().and_then(|t| t.get(r)))
                            .filter(|v| v.len() > limits::MAX_TEXTUAL_CHARS)
                            .filter(|v| v.chars().count() > limits::MAX_TEXTUAL_CHARS)
                            .count() as u64;
                    }
                    if column.kind() == Some(FieldKind::EventType)
                        && let Some(text) = &text
                    {
                        count_event_types(
                            &mut self.event_types,
                            &mut self.event_types_capped,
                            (0..rows).filter_map(|r| text.get(r)),
                        );
                    }
                }
                Coerced::Null(_) => {}
            }
        }
        for hash in &row_hashes {
            self.row_hashes.add(*hash);
        }
        Ok(())
    }

    pub fn merge(&mut self, other: &DatasetStats) {
        self.rows += other.rows;
        for (a, b) in self.columns.iter_mut().zip(&other.columns) {
            a.nulls += b.nulls;
            a.over_textual_limit += b.over_textual_limit;
            if let (Some(x), Some(y)) = (a.distinct.as_mut(), b.distinct.as_ref()) {
                x.merge(y);
            }
            if let (Some(x), Some(y)) = (a.moments.as_mut(), b.moments.as_ref()) {
                x.merge(y);
            }
        }
        for (k, v) in &other.event_types {
            *self.event_types.entry(k.clone()).or_default() += v;
        }
        self.event_types_capped |= other.event_types_capped;
        for (a, b) in [
            (&mut self.users, &other.users),
            (&mut self.items, &other.items),
            (&mut self.ids, &other.ids),
        ] {
            if let (Some(x), Some(y)) = (a.as_mut(), b.as_ref()) {
                x.merge(y);
            }
        }
        self.row_hashes.merge(&other.row_hashes);
        let t = &other.time;
        self.time.min = match (self.time.min, t.min) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.time.max = match (self.time.max, t.max) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.time.before_1990 += t.before_1990;
        self.time.in_the_future += t.in_the_future;
    }
}

/// Counts a batch's event types: its few values are tallied in a short list first (most
/// rows are told apart by length alone), then added to the map once each, in the order they
/// first appear, so the cap keeps the same types as counting row by row.
fn count_event_types<'a>(
    counts: &mut BTreeMap<String, u64>,
    capped: &mut bool,
    values: impl Iterator<Item = &'a str>,
) {
    const LISTED: usize = 32;
    let mut tally: Vec<(&str, u64)> = Vec::with_capacity(LISTED);
    let mut rest = Vec::new();
    for value in values {
        if !rest.is_empty() || tally.len() == LISTED {
            rest.push(value);
        } else if let Some((_, n)) = tally.iter_mut().find(|(v, _)| *v == value) {
            *n += 1;
        } else {
            tally.push((value, 1));
        }
    }
    let rows = tally.into_iter().chain(rest.into_iter().map(|v| (v, 1)));
    for (value, count) in rows {
        if let Some(n) = counts.get_mut(value) {
            *n += count;
        } else if counts.len() < EVENT_TYPES_CAP {
            counts.insert(value.to_string(), count);
        } else {
            *capped = true;
        }
    }
}

/// The hash of each value of `array` (a null's is 0), and which rows have a value to count.
/// Text is hashed as a `Utf8` array's values are by `create_hashes` (the same key whatever the
/// string type, so an id counts the same in every dataset and in the ids kept beside an export),
/// without first copying a view or large-string column into one.
fn hash_values(array: &ArrayRef, hashes: &mut Vec<u64>) -> Result<BooleanBuffer> {
    hashes.clear();
    if let Some(text) = TextColumn::new(array.as_ref()) {
        let mut valued = BooleanBufferBuilder::new(array.len());
        hashes.extend((0..array.len()).map(|r| match text.get(r) {
            Some(value) => {
                valued.append(true);
                HLL_RANDOM_STATE.hash_one(value)
            }
            None => {
                valued.append(false);
                0
            }
        }));
        return Ok(valued.finish());
    }
    hashes.resize(array.len(), 0);
    create_hashes([array], &HLL_RANDOM_STATE, hashes)?;
    Ok(BooleanBuffer::new_set(array.len()))
}

fn as_array(column: &Coerced) -> Option<ArrayRef> {
    match column {
        Coerced::Text(a) => Some(Arc::clone(a)),
        Coerced::Long(a) => Some(Arc::new(a.clone())),
        Coerced::Float(a) => Some(Arc::new(a.clone())),
        Coerced::Null(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{LargeStringArray, StringArray, StringViewArray};

    /// Event types counted a batch at a time are those counted row by row, the cap included.
    #[test]
    fn event_types_are_counted_as_row_by_row() {
        let mut random = crate::test_random::Random(7);
        let (mut counts, mut capped) = (BTreeMap::new(), false);
        let (mut want, mut want_capped) = (BTreeMap::<String, u64>::new(), false);
        for batch in 0..40 {
            // Few types in most batches, up to 1,500 in some (past the list and the cap).
            let pool = if batch % 4 == 0 { 1_500 } else { 6 };
            let values: Vec<String> = (0..500)
                .map(|_| format!("type-{}", random.below(pool)))
                .collect();
            count_event_types(&mut counts, &mut capped, values.iter().map(String::as_str));
            for value in &values {
                if let Some(n) = want.get_mut(value) {
                    *n += 1;
                } else if want.len() < EVENT_TYPES_CAP {
                    want.insert(value.clone(), 1);
                } else {
                    want_capped = true;
                }
            }
        }
        assert!(want_capped && want.len() == EVENT_TYPES_CAP);
        assert_eq!((counts, capped), (want, want_capped));
    }

    /// An id counts as the same key whatever its string type, and as `create_hashes` hashes it
    /// in a `Utf8` column (what earlier versions counted, and ids kept beside exports hold); a
    /// null has no key.
    #[test]
    fn text_keys_are_the_same_in_every_string_type() {
        let values = [
            Some("u-1"),
            Some("a considerably longer id value"),
            None,
            Some(""),
            Some("é"),
        ];
        let utf8: ArrayRef = Arc::new(StringArray::from(values.to_vec()));
        let mut expected = vec![0u64; values.len()];
        create_hashes([&utf8], &HLL_RANDOM_STATE, &mut expected).unwrap();
        for array in [
            Arc::clone(&utf8),
            Arc::new(LargeStringArray::from(values.to_vec())) as ArrayRef,
            Arc::new(StringViewArray::from(values.to_vec())) as ArrayRef,
        ] {
            let mut hashes = Vec::new();
            let keys = hash_values(&array, &mut hashes).unwrap();
            for (r, value) in values.iter().enumerate() {
                assert_eq!(keys.value(r), value.is_some(), "{}", array.data_type());
                if value.is_some() {
                    assert_eq!(hashes[r], expected[r], "{} row {r}", array.data_type());
                }
            }
        }
    }
}
