//! Profiles a registered table's columns from a sample of rows: nulls, distinct values, ranges,
//! text lengths, and how many string values read as timestamps. Nested objects are profiled
//! field by field (`context['page']`), since their leaves are what a mapping file selects.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, StructArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;
use serde::Serialize;

use crate::error::Result;

/// Rows sampled per source.
pub const SAMPLE_ROWS: usize = 20_000;
/// Distinct values counted exactly up to this many.
const DISTINCT_CAP: usize = 10_000;
/// Nested objects are followed this deep.
const MAX_DEPTH: usize = 3;

/// One column (or nested field) of a source, as the sample showed it.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnProfile {
    /// Where it is: `user_id`, `context.page`.
    pub path: String,
    /// The SQL expression selecting it (quoted where needed): `"userId"`, `context['page']`.
    pub expr: String,
    /// A snake_case name for it as an output column.
    pub name: String,
    #[serde(serialize_with = "serialize_type")]
    pub data_type: DataType,
    pub rows: usize,
    pub nulls: usize,
    /// Distinct non-null values in the sample (at most [`DISTINCT_CAP`] + 1).
    pub distinct: usize,
    /// Smallest and largest value of a numeric column.
    pub min: Option<f64>,
    pub max: Option<f64>,
    /// Share of non-null text values that read as ISO-8601 timestamps or dates.
    pub time_text: f64,
    /// Share of non-null text values that are integers.
    pub integer_text: f64,
    pub avg_len: f64,
    pub max_len: usize,
    /// Share of values containing whitespace (free text has it).
    pub spaced: f64,
    /// A separator of hierarchical values such as `Kitchen>Knives`.
    pub path_separator: Option<char>,
    pub examples: Vec<String>,
}

fn serialize_type<S: serde::Serializer>(
    t: &DataType,
    s: S,
) -> std::result::Result<S::Ok, S::Error> {
    s.collect_str(t)
}

impl ColumnProfile {
    pub fn non_null(&self) -> usize {
        self.rows - self.nulls
    }

    pub fn is_numeric(&self) -> bool {
        self.data_type.is_numeric()
    }

    pub fn is_integer(&self) -> bool {
        self.data_type.is_integer()
    }

    pub fn is_text(&self) -> bool {
        matches!(
            self.data_type,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View
        )
    }

    pub fn is_temporal(&self) -> bool {
        self.data_type.is_temporal()
    }

    /// Few distinct values for the rows seen (a category, not an id or free text).
    pub fn low_cardinality(&self) -> bool {
        let seen = self.non_null();
        seen > 0 && self.distinct <= 1000 && (self.distinct as f64) <= (seen as f64 * 0.2).max(20.0)
    }
}

/// Epoch seconds of a text time, read as a run reads it (one grammar for init and run).
pub fn parse_time_text(text: &str) -> Option<i64> {
    crate::iso_timestamps::text_epoch_seconds(text)
}

/// Profiles a table registered in `ctx` from its first [`SAMPLE_ROWS`] rows.
pub async fn profile_table(ctx: &SessionContext, table: &str) -> Result<Vec<ColumnProfile>> {
    let frame = ctx
        .sql(&format!("SELECT * FROM {table} LIMIT {SAMPLE_ROWS}"))
        .await?;
    let batches = frame.collect().await?;
    let Some(first) = batches.first() else {
        return Ok(Vec::new());
    };
    let schema = first.schema();
    let batch = datafusion::arrow::compute::concat_batches(&schema, &batches)?;
    Ok(profile_batch(&batch))
}

/// Profiles an array, or each leaf of a nested object.
fn leaves(
    array: &ArrayRef,
    path: String,
    expr: String,
    name: String,
    depth: usize,
    out: &mut Vec<ColumnProfile>,
) {
    if let DataType::Struct(fields) = array.data_type() {
        if depth >= MAX_DEPTH {
            return;
        }
        let structs: &StructArray = array.as_struct();
        for (i, field) in fields.iter().enumerate() {
            let child = structs.column(i).clone();
            let child = match structs.nulls() {
                // A null object makes its fields null too.
                Some(nulls) => with_parent_nulls(&child, nulls),
                None => child,
            };
            leaves(
                &child,
                format!("{path}.{}", field.name()),
                field_expr(&expr, field.name()),
                format!("{name}_{}", snake_case(field.name())),
                depth + 1,
                out,
            );
        }
        return;
    }
    out.push(profile_array(array, path, expr, name));
}

fn with_parent_nulls(child: &ArrayRef, parent: &datafusion::arrow::buffer::NullBuffer) -> ArrayRef {
    let merged = datafusion::arrow::buffer::NullBuffer::union(Some(parent), child.nulls());
    let data = child.to_data().into_builder().nulls(merged).build();
    match data {
        Ok(data) => datafusion::arrow::array::make_array(data),
        Err(_) => Arc::clone(child),
    }
}

fn profile_array(array: &ArrayRef, path: String, expr: String, name: String) -> ColumnProfile {
    let rows = array.len();
    let nulls = array.null_count();
    let mut profile = ColumnProfile {
        path,
        expr,
        name,
        data_type: array.data_type().clone(),
        rows,
        nulls,
        distinct: 0,
        min: None,
        max: None,
        time_text: 0.0,
        integer_text: 0.0,
        avg_len: 0.0,
        max_len: 0,
        spaced: 0.0,
        path_separator: None,
        examples: Vec::new(),
    };
    if array.data_type().is_numeric()
        && let Ok(numbers) = cast(array, &DataType::Float64)
    {
        let numbers = numbers.as_primitive::<Float64Type>();
        let values: Vec<f64> = numbers.iter().flatten().filter(|v| v.is_finite()).collect();
        profile.min = values.iter().copied().reduce(f64::min);
        profile.max = values.iter().copied().reduce(f64::max);
    }
    let Ok(text) = cast(array, &DataType::Utf8) else {
        return profile;
    };
    let text = text.as_string::<i32>();
    let mut distinct: HashSet<&str> = HashSet::new();
    let (mut times, mut integers, mut spaced, mut total_len, mut count) = (0, 0, 0, 0, 0);
    let mut separators = [(b'>', 0usize), (b'/', 0), (b'|', 0)];
    for value in text.iter().flatten() {
        count += 1;
        total_len += value.len();
        profile.max_len = profile.max_len.max(value.len());
        if distinct.len() <= DISTINCT_CAP && distinct.insert(value) && profile.examples.len() < 3 {
            profile.examples.push(value.chars().take(60).collect());
        }
        if profile.is_text() {
            if parse_time_text(value).is_some() {
                times += 1;
            }
            if !value.is_empty() && value.trim().parse::<i64>().is_ok() {
                integers += 1;
            }
            if value.contains(char::is_whitespace) {
                spaced += 1;
            }
            for (separator, n) in &mut separators {
                if value.len() > 2 && value.as_bytes()[1..value.len() - 1].contains(separator) {
                    *n += 1;
                }
            }
        }
    }
    profile.distinct = distinct.len();
    if count > 0 {
        let share = |n: usize| n as f64 / count as f64;
        profile.avg_len = share(total_len);
        profile.time_text = share(times);
        profile.integer_text = share(integers);
        profile.spaced = share(spaced);
        profile.path_separator = separators
            .iter()
            .find(|(_, n)| share(*n) > 0.5)
            .map(|(s, _)| *s as char);
    }
    profile
}

/// The expression selecting `field` of the object `parent` selects: `ctx['page']`.
pub fn field_expr(parent: &str, field: &str) -> String {
    format!("{parent}['{}']", field.replace('\'', "''"))
}

/// `user_id` stays bare; `userId` or `user id` is quoted (DataFusion lower-cases bare names).
pub fn quote_identifier(name: &str) -> String {
    let bare = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if bare && !is_reserved(name) {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// Words that cannot stand bare as a column name in DataFusion's SQL.
fn is_reserved(name: &str) -> bool {
    matches!(
        name,
        "select"
            | "from"
            | "where"
            | "group"
            | "order"
            | "by"
            | "limit"
            | "join"
            | "on"
            | "as"
            | "and"
            | "or"
            | "not"
            | "null"
            | "table"
            | "user"
            | "timestamp"
            | "date"
            | "time"
            | "interval"
            | "case"
            | "when"
            | "end"
            | "values"
            | "type"
    )
}

/// `userId` → `user_id`, `Event Type` → `event_type`, `2nd` → `c_2nd`.
pub fn snake_case(name: &str) -> String {
    let mut out = String::new();
    let mut previous_lower = false;
    for c in name.chars() {
        if c.is_ascii_uppercase() {
            if previous_lower {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
            previous_lower = false;
        } else if c.is_ascii_alphanumeric() {
            out.push(c);
            previous_lower = c.is_ascii_lowercase() || c.is_ascii_digit();
        } else {
            if !out.ends_with('_') {
                out.push('_');
            }
            previous_lower = false;
        }
    }
    let out = out.trim_matches('_').to_string();
    if out.is_empty() || out.starts_with(|c: char| c.is_ascii_digit()) {
        format!("c_{out}")
    } else {
        out
    }
}

/// Profiles every column of a batch.
fn profile_batch(batch: &RecordBatch) -> Vec<ColumnProfile> {
    let mut out = Vec::new();
    for (i, field) in batch.schema().fields().iter().enumerate() {
        let name = field.name();
        leaves(
            batch.column(i),
            name.clone(),
            quote_identifier(name),
            snake_case(name),
            0,
            &mut out,
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{Field, Fields};

    #[test]
    fn names_are_quoted_and_snake_cased() {
        assert_eq!(quote_identifier("user_id"), "user_id");
        assert_eq!(quote_identifier("userId"), "\"userId\"");
        assert_eq!(quote_identifier("timestamp"), "\"timestamp\"");
        assert_eq!(snake_case("userId"), "user_id");
        assert_eq!(snake_case("Event Type"), "event_type");
        assert_eq!(snake_case("movieID"), "movie_id");
        assert_eq!(snake_case("2nd"), "c_2nd");
    }

    #[test]
    fn time_text_is_read() {
        assert_eq!(parse_time_text("2024-03-01T00:00:00Z"), Some(1_709_251_200));
        assert_eq!(
            parse_time_text("2024-03-01 00:00:00.250"),
            Some(1_709_251_200)
        );
        assert_eq!(parse_time_text("2024-03-01"), Some(1_709_251_200));
        assert_eq!(parse_time_text("1709251200"), None);
        assert_eq!(parse_time_text("soon"), None);
        // Exactly what a run's TRY_CAST reads: a value it would reject is not a time to init.
        for text in [
            " 2024-03-01T00:00:00Z",
            "2024-03-01T00:00:00 ",
            "2024-13-01",
        ] {
            let run_reads = datafusion::arrow::compute::kernels::cast_utils::string_to_datetime(
                &chrono::Utc,
                text,
            )
            .is_ok();
            assert_eq!(parse_time_text(text).is_some(), run_reads, "{text:?}");
        }
    }

    #[test]
    fn nested_fields_are_profiled_as_leaves() {
        let page: ArrayRef = Arc::new(StringArray::from(vec!["home", "cart", "home"]));
        let ts: ArrayRef = Arc::new(Int64Array::from(vec![1, 2, 3]));
        let context = StructArray::new(
            Fields::from(vec![
                Field::new("pageName", DataType::Utf8, true),
                Field::new("ts", DataType::Int64, true),
            ]),
            vec![page, ts],
            None,
        );
        let schema = Arc::new(datafusion::arrow::datatypes::Schema::new(vec![Field::new(
            "context",
            context.data_type().clone(),
            true,
        )]));
        let batch = RecordBatch::try_new(schema, vec![Arc::new(context)]).unwrap();
        let profiles = profile_batch(&batch);
        assert_eq!(profiles[0].expr, "context['pageName']");
        assert_eq!(profiles[0].name, "context_page_name");
        assert_eq!(profiles[0].distinct, 2);
        assert_eq!((profiles[1].min, profiles[1].max), (Some(1.0), Some(3.0)));
    }
}
