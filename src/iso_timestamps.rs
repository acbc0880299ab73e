//! Text → timestamp casts, fast for the ISO-8601 form exports use.
//!
//! Mapping files turn event times into timestamps with `TRY_CAST(ts AS TIMESTAMP)` (often twice:
//! in the WHERE and in the SELECT). Arrow's cast parses every value with its general parser
//! (time zones, leap seconds, compact times) and builds a chrono date and time for each: 6 % of
//! the reference interactions job. [`IsoTimestampRule`] puts [`IsoTimestampCast`] in place of
//! the casts from text to `Timestamp(ns)` in projections and filters. It reads
//! `YYYY-MM-DD`, optionally followed by `T`/`t`/space, `HH:MM:SS`, up to nine fraction digits and
//! `Z`/`z`, with integer arithmetic; any other value goes to arrow's parser, one value at a time
//! for TRY_CAST and by running the original cast over the batch for CAST (so its errors are
//! arrow's own). The result is the same array, as the differential test checks.

use std::fmt;
use std::hash::Hash;
use std::sync::Arc;

use chrono::Utc;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, TimestampNanosecondBuilder};
use datafusion::arrow::compute::kernels::cast_utils::string_to_datetime;
use datafusion::arrow::datatypes::ArrowTimestampType;
use datafusion::arrow::datatypes::{DataType, Schema, TimeUnit, TimestampNanosecondType};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::Result;
use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::logical_expr::ColumnarValue;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{CastExpr, TryCastExpr};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::projection::{ProjectionExec, ProjectionExpr};

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// The date of the last value parsed and its day number. A column's values mostly come in time
/// order, so most share the previous value's date and skip the calendar arithmetic.
#[derive(Debug, Default)]
pub struct LastDate {
    /// `YYYY-MM-DD` as read; None before the first date.
    text: Option<[u8; 10]>,
    days: i64,
}

/// Nanoseconds since the epoch of `text` when it is in the plain ISO form (see the module doc)
/// and a valid date and time; None for anything else, left to arrow's parser. `last`: the date
/// of the value parsed before (with the same `last`), reused when this one has it too.
pub fn parse_iso_nanos(text: &str, last: &mut LastDate) -> Option<i64> {
    let b = text.as_bytes();
    let digit = |i: usize| -> Option<i64> {
        let d = b.get(i)?.wrapping_sub(b'0');
        (d < 10).then_some(i64::from(d))
    };
    let two = |i: usize| Some(digit(i)? * 10 + digit(i + 1)?);
    let date: [u8; 10] = b.get(..10)?.try_into().ok()?;
    let days = if last.text == Some(date) {
        last.days
    } else {
        if b[4] != b'-' || b[7] != b'-' {
            return None;
        }
        let year = two(0)? * 100 + two(2)?;
        let (month, day) = (two(5)?, two(8)?);
        let days = days_from_civil(year, month, day)?;
        *last = LastDate {
            text: Some(date),
            days,
        };
        days
    };
    let mut seconds = days * 86_400;
    let mut nanos = 0;
    let mut at = 10;
    if b.len() > 10 {
        if !matches!(b[10], b'T' | b't' | b' ') || b.len() < 19 || b[13] != b':' || b[16] != b':' {
            return None;
        }
        let (hour, minute, second) = (two(11)?, two(14)?, two(17)?);
        // A leap second (60) is arrow's to read.
        if hour > 23 || minute > 59 || second > 59 {
            return None;
        }
        seconds += hour * 3600 + minute * 60 + second;
        at = 19;
        if b.get(at) == Some(&b'.') {
            at += 1;
            let start = at;
            while at - start < 10 && digit(at).is_some() {
                at += 1;
            }
            let count = at - start;
            // No digit, or more than nine: arrow's to read.
            if count == 0 || count > 9 {
                return None;
            }
            let fraction = text[start..at].parse::<i64>().ok()?;
            nanos = fraction * 10_i64.pow(9 - count as u32);
        }
        if matches!(b.get(at), Some(b'Z' | b'z')) {
            at += 1;
        }
    }
    if at != b.len() {
        return None;
    }
    seconds.checked_mul(NANOS_PER_SECOND)?.checked_add(nanos)
}

/// Days from 1970-01-01 to a valid proleptic Gregorian date (None when the date does not exist).
fn days_from_civil(year: i64, month: i64, day: i64) -> Option<i64> {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > days_in_month {
        return None;
    }
    // Days since 0000-03-01 by 400-year eras, then shifted to the Unix epoch.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Some(era * 146_097 + day_of_era - 719_468)
}

/// Epoch seconds (rounded down) of a text timestamp, by the one grammar pengine reads text times
/// with: what `TRY_CAST(text AS TIMESTAMP)` accepts, which is also what the TIMESTAMP conversion
/// and `pengine init`'s guesses use (so init never calls a column a time that a run would reject).
pub fn text_epoch_seconds(text: &str) -> Option<i64> {
    let nanos = parse_iso_nanos(text, &mut LastDate::default()).or_else(|| arrow_nanos(text))?;
    Some(nanos.div_euclid(NANOS_PER_SECOND))
}

/// What arrow's cast gives for one value (UTC, no time zone in the result), None when it fails.
fn arrow_nanos(text: &str) -> Option<i64> {
    let naive = string_to_datetime(&Utc, text).ok()?.naive_utc();
    TimestampNanosecondType::from_naive_datetime(naive, None)
}

/// A cast of text to `Timestamp(ns)` with the ISO fast path. Stands for `original` (the
/// `TRY_CAST` or `CAST` it replaces) and shows as it does.
#[derive(Debug, Eq)]
pub struct IsoTimestampCast {
    original: Arc<dyn PhysicalExpr>,
    input: Arc<dyn PhysicalExpr>,
    /// TRY_CAST: a value arrow cannot read is null. CAST: it is arrow's error.
    safe: bool,
}

impl PartialEq for IsoTimestampCast {
    fn eq(&self, other: &Self) -> bool {
        self.original.eq(&other.original) && self.safe == other.safe
    }
}

impl Hash for IsoTimestampCast {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.original.hash(state);
        self.safe.hash(state);
    }
}

impl fmt::Display for IsoTimestampCast {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.original.fmt(f)
    }
}

impl IsoTimestampCast {
    /// The fast cast standing for `expr`, if `expr` casts text to `Timestamp(ns)`.
    fn replacing(expr: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Result<Option<Self>> {
        let (input, to, safe) = if let Some(cast) = expr.downcast_ref::<TryCastExpr>() {
            (cast.expr(), cast.cast_type(), true)
        } else if let Some(cast) = expr.downcast_ref::<CastExpr>() {
            (cast.expr(), cast.cast_type(), false)
        } else {
            return Ok(None);
        };
        let text = matches!(
            input.data_type(schema)?,
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
        );
        if !text || *to != DataType::Timestamp(TimeUnit::Nanosecond, None) {
            return Ok(None);
        }
        Ok(Some(Self {
            original: Arc::clone(expr),
            input: Arc::clone(input),
            safe,
        }))
    }

    /// Whether this is a TRY_CAST (a value arrow cannot read is null).
    pub fn is_try(&self) -> bool {
        self.safe
    }

    /// The fast cast of `input` to `Timestamp(ns)`: TRY_CAST when `safe`, else CAST (how a
    /// cluster's codec rebuilds it).
    pub fn of_input(input: Arc<dyn PhysicalExpr>, safe: bool) -> Arc<dyn PhysicalExpr> {
        let to = DataType::Timestamp(TimeUnit::Nanosecond, None);
        let original: Arc<dyn PhysicalExpr> = if safe {
            Arc::new(TryCastExpr::new(Arc::clone(&input), to))
        } else {
            Arc::new(CastExpr::new(Arc::clone(&input), to, None))
        };
        Arc::new(Self {
            original,
            input,
            safe,
        })
    }

    /// The timestamps of `texts`, or None (CAST only) when a value needs the original cast.
    fn cast<'a>(
        &self,
        texts: impl Iterator<Item = Option<&'a str>>,
        len: usize,
    ) -> Option<ArrayRef> {
        let mut out = TimestampNanosecondBuilder::with_capacity(len);
        let mut last = LastDate::default();
        for text in texts {
            match text {
                None => out.append_null(),
                Some(text) => match parse_iso_nanos(text, &mut last) {
                    Some(nanos) => out.append_value(nanos),
                    None if self.safe => out.append_option(arrow_nanos(text)),
                    None => return None,
                },
            }
        }
        Some(Arc::new(out.finish()))
    }
}

impl PhysicalExpr for IsoTimestampCast {
    fn data_type(&self, input_schema: &Schema) -> Result<DataType> {
        self.original.data_type(input_schema)
    }

    fn nullable(&self, input_schema: &Schema) -> Result<bool> {
        self.original.nullable(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let ColumnarValue::Array(array) = self.input.evaluate(batch)? else {
            return self.original.evaluate(batch);
        };
        let cast = match array.data_type() {
            DataType::Utf8 => self.cast(array.as_string::<i32>().iter(), array.len()),
            DataType::LargeUtf8 => self.cast(array.as_string::<i64>().iter(), array.len()),
            DataType::Utf8View => self.cast(array.as_string_view().iter(), array.len()),
            _ => None,
        };
        match cast {
            Some(array) => Ok(ColumnarValue::Array(array)),
            None => self.original.evaluate(batch),
        }
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.input]
    }

    fn with_new_children(
        self: Arc<Self>,
        children: Vec<Arc<dyn PhysicalExpr>>,
    ) -> Result<Arc<dyn PhysicalExpr>> {
        let original = Arc::clone(&self.original).with_new_children(children.clone())?;
        let [input] = <[_; 1]>::try_from(children).map_err(|_| {
            datafusion::error::DataFusionError::Internal("a cast has one input".into())
        })?;
        Ok(Arc::new(Self {
            original,
            input,
            safe: self.safe,
        }))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.original.fmt_sql(f)
    }
}

/// Puts [`IsoTimestampCast`] in place of text → `Timestamp(ns)` casts in projections and
/// filters (registered last, so no later rule has to know it).
#[derive(Debug, Default)]
pub struct IsoTimestampRule;

impl PhysicalOptimizerRule for IsoTimestampRule {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            Ok(match with_fast_casts(&node)? {
                Some(rebuilt) => Transformed::yes(rebuilt),
                None => Transformed::no(node),
            })
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "pengine_iso_timestamps"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `node` rebuilt with fast casts, if it is a filter or projection that has a cast to replace.
fn with_fast_casts(node: &Arc<dyn ExecutionPlan>) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    if let Some(filter) = node.downcast_ref::<FilterExec>() {
        let predicate = fast_casts(filter.predicate(), &filter.input().schema())?;
        if !predicate.transformed {
            return Ok(None);
        }
        let rebuilt = FilterExecBuilder::from(filter)
            .with_predicate(predicate.data)
            .build()?;
        return Ok(Some(Arc::new(rebuilt)));
    }
    let Some(projection) = node.downcast_ref::<ProjectionExec>() else {
        return Ok(None);
    };
    let schema = projection.input().schema();
    let mut changed = false;
    let mut exprs = Vec::with_capacity(projection.expr().len());
    for item in projection.expr() {
        let expr = fast_casts(&item.expr, &schema)?;
        changed |= expr.transformed;
        exprs.push(ProjectionExpr {
            expr: expr.data,
            alias: item.alias.clone(),
        });
    }
    if !changed {
        return Ok(None);
    }
    let rebuilt = ProjectionExec::try_new(exprs, Arc::clone(projection.input()))?;
    Ok(Some(Arc::new(rebuilt)))
}

/// `expr` with its text → timestamp casts replaced.
fn fast_casts(
    expr: &Arc<dyn PhysicalExpr>,
    schema: &Schema,
) -> Result<Transformed<Arc<dyn PhysicalExpr>>> {
    Arc::clone(expr).transform_up(|e| {
        Ok(match IsoTimestampCast::replacing(&e, schema)? {
            Some(fast) => Transformed::yes(Arc::new(fast) as Arc<dyn PhysicalExpr>),
            None => Transformed::no(e),
        })
    })
}

#[cfg(test)]
mod tests;
