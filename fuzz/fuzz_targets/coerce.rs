//! The coercion layer and the row checks: a record batch of arbitrary Arrow columns (text of
//! every kind, integers, floats with NaN and infinities, decimals, booleans, timestamps of every
//! unit, dates, lists, nulls) for a dataset, planned, coerced and checked as a run does.
//!
//! An oracle written here from the documented rules says, for each cell, what must be written or
//! which rule it breaks. Checked: nothing panics and an accepted plan never fails to coerce; a row
//! is rejected exactly when it breaks a rule, with one of the rules it breaks; every kept value
//! is the input under the documented conversion; the CSV written for kept and rejected rows
//! reads back with one record per row.
#![no_main]

use std::sync::Arc;

use arbitrary::{Result, Unstructured};
use arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Decimal128Array, DictionaryArray, FixedSizeListArray,
    Float64Array, Int64Array, LargeListArray, LargeStringArray, ListArray, NullArray, StringArray,
    StringViewArray, UInt64Array,
};
use arrow::buffer::{NullBuffer, OffsetBuffer};
use arrow::compute::cast;
use arrow::datatypes::*;
use arrow::record_batch::RecordBatch;
use libfuzzer_sys::fuzz_target;
use pengine::batch::{self, BatchOptions, InvalidPolicy, Tally};
use pengine::personalize::ColumnHints;
use pengine::personalize::coerce::{Coerced, TextColumn, coerce_batch};
use pengine::personalize::columns::{AvroType, Conversion, OutputColumn};
use pengine::personalize::rules::{RowRejections, Rule};
use pengine::personalize::{ColumnPlan, DatasetType, FieldKind, limits, rows};

// ---------------------------------------------------------------- generating the batch

/// Pieces of text that numbers, timestamps and event types are made of.
const PIECES: &[&str] = &[
    "",
    " ",
    "\t",
    "0",
    "1",
    "-",
    "+",
    ".",
    "e",
    "5",
    "10",
    "11",
    "30",
    "31",
    "1709301600",
    "100000000000",
    "100000000001",
    "9223372036854775807",
    "9223372036854775808",
    "1e400",
    "1e39",
    "3.4028235e38",
    "NaN",
    "inf",
    "-0",
    "0.1",
    "2024-03-01",
    "T",
    " ",
    "13:00:00",
    "Z",
    "z",
    "+05:30",
    "-08:00",
    ".123456789",
    "2024-03-01T13:00:00Z",
    "1677-09-21",
    "2262-04-12T00:00:00Z",
    "9999-12-31T23:59:59Z",
    "Taken",
    "Not Taken",
    "Viewed",
    "taken",
    "é",
    "|",
    ",",
    "\"",
    "\n",
    "\u{a0}",
];

fn text(u: &mut Unstructured) -> Result<String> {
    Ok(match u.int_in_range(0..=3)? {
        0 => u.arbitrary()?,
        1 => {
            // Around the length limits, in one- and two-byte characters.
            let c = if u.arbitrary()? { "x" } else { "é" };
            c.repeat(u.int_in_range(250..=1_002)?)
        }
        _ => {
            let n = u.int_in_range(1..=4)?;
            (0..n)
                .map(|_| u.choose(PIECES).copied())
                .collect::<Result<String>>()?
        }
    })
}

const INTERESTING_INTS: &[i64] = &[
    0,
    1,
    -1,
    10,
    11,
    30,
    31,
    1_709_301_600,
    limits::MAX_PLAUSIBLE_EPOCH_SECONDS,
    limits::MAX_PLAUSIBLE_EPOCH_SECONDS + 1,
    i64::MAX,
    i64::MIN,
    i32::MAX as i64,
    i32::MIN as i64,
];

fn int(u: &mut Unstructured) -> Result<i64> {
    if u.arbitrary()? {
        u.choose(INTERESTING_INTS).copied()
    } else {
        u.arbitrary()
    }
}

const INTERESTING_FLOATS: &[f64] = &[
    0.0,
    -0.0,
    0.1,
    19.99,
    f64::NAN,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f32::MAX as f64,
    3.5e38,
    1e300,
    f64::MIN_POSITIVE,
    9_007_199_254_740_993.0,
];

fn float(u: &mut Unstructured) -> Result<f64> {
    if u.arbitrary()? {
        u.choose(INTERESTING_FLOATS).copied()
    } else {
        u.arbitrary()
    }
}

/// `rows` values, about one in five null.
fn values<T>(
    u: &mut Unstructured,
    rows: usize,
    mut value: impl FnMut(&mut Unstructured) -> Result<T>,
) -> Result<Vec<Option<T>>> {
    (0..rows)
        .map(|_| {
            if u.ratio(1, 5)? {
                Ok(None)
            } else {
                value(u).map(Some)
            }
        })
        .collect()
}

fn scalar_type(u: &mut Unstructured) -> Result<DataType> {
    use DataType::*;
    let unit = *u.choose(&[
        TimeUnit::Second,
        TimeUnit::Millisecond,
        TimeUnit::Microsecond,
        TimeUnit::Nanosecond,
    ])?;
    let tz: Option<Arc<str>> = u
        .choose(&[None, Some("UTC"), Some("+05:30")])?
        .map(Arc::from);
    let scale = u.int_in_range(-4..=12)?;
    Ok(u.choose(&[
        Utf8,
        LargeUtf8,
        Utf8View,
        Dictionary(Box::new(Int32), Box::new(Utf8)),
        Int8,
        Int16,
        Int32,
        Int64,
        UInt8,
        UInt16,
        UInt32,
        UInt64,
        Float16,
        Float32,
        Float64,
        Decimal128(38, scale),
        Decimal256(76, scale),
        Boolean,
        Timestamp(unit, tz.clone()),
        Date32,
        Date64,
        Null,
    ])?
    .clone())
}

fn data_type(u: &mut Unstructured) -> Result<DataType> {
    if !u.ratio(1, 5)? {
        return scalar_type(u);
    }
    let item = u
        .choose(&[
            DataType::Utf8,
            DataType::Int64,
            DataType::Float64,
            DataType::Boolean,
        ])?
        .clone();
    let field = Arc::new(Field::new("item", item, true));
    Ok(match u.int_in_range(0..=2)? {
        0 => DataType::List(field),
        1 => DataType::LargeList(field),
        _ => DataType::FixedSizeList(field, u.int_in_range(1..=3)?),
    })
}

fn nulls(u: &mut Unstructured, rows: usize) -> Result<Option<NullBuffer>> {
    let valid: Vec<bool> = (0..rows).map(|_| u.ratio(4, 5)).collect::<Result<_>>()?;
    Ok(Some(NullBuffer::from(valid)))
}

/// An array of type `t` with `rows` values.
fn array(u: &mut Unstructured, t: &DataType, rows: usize) -> Result<ArrayRef> {
    let cast_to = |a: ArrayRef| cast(&a, t).expect("the generator casts to types arrow supports");
    Ok(match t {
        DataType::Utf8 => Arc::new(StringArray::from(values(u, rows, text)?)),
        DataType::LargeUtf8 => Arc::new(LargeStringArray::from(values(u, rows, text)?)),
        DataType::Utf8View => Arc::new(StringViewArray::from(values(u, rows, text)?)),
        DataType::Dictionary(..) => {
            let v = values(u, rows, text)?;
            Arc::new(
                v.iter()
                    .map(Option::as_deref)
                    .collect::<DictionaryArray<Int32Type>>(),
            )
        }
        DataType::UInt64 => Arc::new(UInt64Array::from(values(u, rows, |u| u.arbitrary())?)),
        DataType::Float16 | DataType::Float32 | DataType::Float64 => {
            cast_to(Arc::new(Float64Array::from(values(u, rows, float)?)))
        }
        DataType::Decimal128(p, s) => Arc::new(
            Decimal128Array::from(values(u, rows, |u| int(u).map(i128::from))?)
                .with_precision_and_scale(*p, *s)
                .expect("a valid decimal type"),
        ),
        DataType::Decimal256(_, s) => cast_to(array(u, &DataType::Decimal128(38, *s), rows)?),
        DataType::Boolean => Arc::new(BooleanArray::from(values(u, rows, |u| u.arbitrary())?)),
        DataType::Date32 => cast_to(Arc::new(arrow::array::Int32Array::from(values(
            u,
            rows,
            |u| u.arbitrary(),
        )?))),
        DataType::Null => Arc::new(NullArray::new(rows)),
        DataType::List(field) | DataType::LargeList(field) => {
            let lengths: Vec<usize> = (0..rows)
                .map(|_| u.int_in_range(0..=3))
                .collect::<Result<_>>()?;
            let items = array(u, field.data_type(), lengths.iter().sum())?;
            let nulls = nulls(u, rows)?;
            match t {
                DataType::List(_) => Arc::new(ListArray::new(
                    field.clone(),
                    OffsetBuffer::from_lengths(lengths),
                    items,
                    nulls,
                )),
                _ => Arc::new(LargeListArray::new(
                    field.clone(),
                    OffsetBuffer::from_lengths(lengths),
                    items,
                    nulls,
                )),
            }
        }
        DataType::FixedSizeList(field, size) => {
            let items = array(u, field.data_type(), rows * *size as usize)?;
            Arc::new(FixedSizeListArray::new(
                field.clone(),
                *size,
                items,
                nulls(u, rows)?,
            ))
        }
        // Other integers, timestamps, Date64: from 64-bit integers (a safe cast nulls what does
        // not fit).
        _ => cast_to(Arc::new(Int64Array::from(values(u, rows, int)?))),
    })
}

struct Input {
    dataset: DatasetType,
    directives: ColumnHints,
    batch: RecordBatch,
}

fn input(u: &mut Unstructured) -> Result<Input> {
    let dataset = *u.choose(&DatasetType::ALL)?;
    let rows = u.int_in_range(0..=6)?;
    let mut names: Vec<String> = dataset
        .reserved_fields()
        .iter()
        .filter(|f| f.required || u.ratio(1, 2).unwrap_or(false))
        .map(|f| f.name.to_ascii_lowercase())
        .collect();
    let mut directives = ColumnHints::default();
    for i in 0..u.int_in_range(0..=3)? {
        let name = format!("M{i}");
        match u.int_in_range(0..=5)? {
            0 => directives.categorical.push(name.clone()),
            1 => directives.not_categorical.push(name.clone()),
            2 => directives.textual.push(name.clone()),
            _ => {}
        }
        names.push(name.to_ascii_lowercase());
    }
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for name in names {
        let t = data_type(u)?;
        columns.push(array(u, &t, rows)?);
        fields.push(Field::new(name, t, true));
    }
    let batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)
        .expect("columns of one length");
    Ok(Input {
        dataset,
        directives,
        batch,
    })
}

// ---------------------------------------------------------------- the oracle

/// What the writer must get for one cell.
#[derive(Debug, Clone, PartialEq)]
enum Want {
    Null,
    Text(String),
    /// Text that reads back as this number (a float written as categorical text).
    NumberText(f64),
    /// A list's items, each text or a number, to be joined by `|`.
    List(Vec<Want>),
    Long(i64),
    Float(f64),
    /// Text holding a timestamp: pengine may take it (then as these seconds, when the oracle can
    /// tell) or reject it as not a timestamp.
    Timestamp(Option<i64>),
    /// The row breaks this rule.
    Broken(Rule),
}

fn text_at(array: &dyn Array, row: usize) -> Option<String> {
    if array.is_null(row) {
        return None;
    }
    if let DataType::Dictionary(..) = array.data_type() {
        let dictionary = array.as_dictionary::<Int32Type>();
        let key = dictionary.keys().value(row) as usize;
        return TextColumn::new(dictionary.values().as_ref())?
            .get(key)
            .map(str::to_string);
    }
    TextColumn::new(array)
        .expect("a text array")
        .get(row)
        .map(str::to_string)
}

fn int_at(array: &dyn Array, row: usize) -> i128 {
    macro_rules! value {
        ($t:ty) => {
            i128::from(array.as_primitive::<$t>().value(row))
        };
    }
    match array.data_type() {
        DataType::Int8 => value!(Int8Type),
        DataType::Int16 => value!(Int16Type),
        DataType::Int32 => value!(Int32Type),
        DataType::Int64 => value!(Int64Type),
        DataType::UInt8 => value!(UInt8Type),
        DataType::UInt16 => value!(UInt16Type),
        DataType::UInt32 => value!(UInt32Type),
        DataType::UInt64 => value!(UInt64Type),
        DataType::Timestamp(TimeUnit::Second, _) => value!(TimestampSecondType),
        DataType::Timestamp(TimeUnit::Millisecond, _) => value!(TimestampMillisecondType),
        DataType::Timestamp(TimeUnit::Microsecond, _) => value!(TimestampMicrosecondType),
        DataType::Timestamp(TimeUnit::Nanosecond, _) => value!(TimestampNanosecondType),
        DataType::Date32 => value!(Date32Type),
        DataType::Date64 => value!(Date64Type),
        t => panic!("not an integer: {t}"),
    }
}

/// Floats exactly; decimals as the nearest f64 of their value.
fn float_at(array: &dyn Array, row: usize) -> f64 {
    match array.data_type() {
        DataType::Float16 => array.as_primitive::<Float16Type>().value(row).to_f64(),
        DataType::Float32 => f64::from(array.as_primitive::<Float32Type>().value(row)),
        DataType::Float64 => array.as_primitive::<Float64Type>().value(row),
        DataType::Decimal128(_, s) => decimal(
            &array
                .as_primitive::<Decimal128Type>()
                .value(row)
                .to_string(),
            *s,
        ),
        DataType::Decimal256(_, s) => decimal(
            &array
                .as_primitive::<Decimal256Type>()
                .value(row)
                .to_string(),
            *s,
        ),
        t if t.is_integer() => int_at(array, row) as f64,
        t => panic!("not a number: {t}"),
    }
}

fn decimal(unscaled: &str, scale: i8) -> f64 {
    format!("{unscaled}e{}", -i32::from(scale)).parse().unwrap()
}

fn seconds(value: i128, per_second: i128) -> Want {
    Want::Long(value.div_euclid(per_second) as i64)
}

/// What column `c` must make of the cell at `row`.
fn want(dataset: DatasetType, c: &OutputColumn, array: &dyn Array, row: usize) -> Want {
    if array.is_null(row) && c.conversion != Conversion::Null {
        // A null is still checked: a required column cannot hold one.
        return broken(dataset, c, &Want::Null).map_or(Want::Null, Want::Broken);
    }
    let epoch = c.kind() == Some(FieldKind::EpochSeconds);
    let t = array.data_type();
    let w = match c.conversion {
        Conversion::Text => Want::Text(text_at(array, row).unwrap()),
        Conversion::IntegerText => Want::Text(int_at(array, row).to_string()),
        Conversion::NumberText => Want::NumberText(float_at(array, row)),
        Conversion::BoolText => Want::Text(
            if array.as_boolean().value(row) {
                "True"
            } else {
                "False"
            }
            .into(),
        ),
        Conversion::ListText => list(array, row),
        Conversion::Integer => match i64::try_from(int_at(array, row)) {
            Err(_) => Want::Broken(Rule::NotAnInteger),
            Ok(v) if epoch && v > limits::MAX_PLAUSIBLE_EPOCH_SECONDS => {
                Want::Broken(Rule::TimestampMilliseconds)
            }
            Ok(v) => Want::Long(v),
        },
        Conversion::TimestampSeconds => {
            let DataType::Timestamp(unit, _) = t else {
                panic!("{t}")
            };
            let per_second = match unit {
                TimeUnit::Second => 1,
                TimeUnit::Millisecond => 1_000,
                TimeUnit::Microsecond => 1_000_000,
                TimeUnit::Nanosecond => 1_000_000_000,
            };
            seconds(int_at(array, row), per_second)
        }
        Conversion::DateSeconds => match t {
            DataType::Date32 => Want::Long(int_at(array, row) as i64 * 86_400),
            _ => seconds(int_at(array, row), 1_000),
        },
        Conversion::ParseTimestamp => {
            let text = text_at(array, row).unwrap();
            let s = text.trim();
            if s.is_empty() {
                Want::Null
            } else if let Ok(v) = s.parse::<i64>() {
                if v > limits::MAX_PLAUSIBLE_EPOCH_SECONDS {
                    Want::Broken(Rule::TimestampMilliseconds)
                } else {
                    Want::Long(v)
                }
            } else {
                Want::Timestamp(
                    chrono::DateTime::parse_from_rfc3339(s)
                        .ok()
                        .filter(|d| d.timestamp_nanos_opt().is_some())
                        .map(|d| d.timestamp()),
                )
            }
        }
        Conversion::Float => Want::Float(float_at(array, row)),
        Conversion::ParseFloat => {
            let text = text_at(array, row).unwrap();
            match text.trim() {
                "" => Want::Null,
                s => match s.parse::<f64>() {
                    Ok(v) if v.is_finite() => Want::Float(v),
                    _ => Want::Broken(Rule::NotANumber),
                },
            }
        }
        Conversion::ParseInteger => {
            let text = text_at(array, row).unwrap();
            match text.trim() {
                "" => Want::Null,
                s => s
                    .parse::<i64>()
                    .map_or(Want::Broken(Rule::NotAnInteger), Want::Long),
            }
        }
        Conversion::Null => Want::Null,
    };
    // The row checks, on what would be written.
    if let Some(rule) = broken(dataset, c, &w) {
        return Want::Broken(rule);
    }
    w
}

/// A list cell: its items in order, nulls and empty text left out; no items is null.
fn list(array: &dyn Array, row: usize) -> Want {
    let items = match array.data_type() {
        DataType::List(_) => array.as_list::<i32>().value(row),
        DataType::LargeList(_) => array.as_list::<i64>().value(row),
        _ => array.as_fixed_size_list().value(row),
    };
    let wanted: Vec<Want> = (0..items.len())
        .filter(|&i| items.is_valid(i))
        .map(|i| match items.data_type() {
            DataType::Utf8 => Want::Text(text_at(items.as_ref(), i).unwrap()),
            DataType::Boolean => Want::Text(
                if items.as_boolean().value(i) {
                    "True"
                } else {
                    "False"
                }
                .into(),
            ),
            DataType::Float64 => Want::NumberText(float_at(items.as_ref(), i)),
            _ => Want::Text(int_at(items.as_ref(), i).to_string()),
        })
        .filter(|w| *w != Want::Text(String::new()))
        .collect();
    if wanted.is_empty() {
        Want::Null
    } else {
        Want::List(wanted)
    }
}

/// The characters written for a text-like want, for the length limits. Numbers as text never
/// come near a limit (at most ~80 characters, and a list of numbers has at most 3), so they
/// count as none.
fn written_chars(w: &Want) -> Option<usize> {
    match w {
        Want::Text(s) => Some(s.chars().count()),
        Want::NumberText(_) => Some(0),
        Want::List(items) => Some(
            items
                .iter()
                .map(|i| written_chars(i).unwrap())
                .sum::<usize>()
                + items.len()
                - 1,
        ),
        _ => None,
    }
}

/// The rule a value breaks, as the rules documentation states them.
fn broken(dataset: DatasetType, c: &OutputColumn, w: &Want) -> Option<Rule> {
    let must_have = c.is_required() || !c.nullable;
    let empty = matches!(w, Want::Null) || *w == Want::Text(String::new());
    if must_have && empty {
        return Some(Rule::Required);
    }
    if let Some(chars) = written_chars(w).filter(|_| c.avro_type == AvroType::String && !c.textual)
    {
        let limit = match c.kind() {
            Some(FieldKind::Id) => Some((limits::MAX_ID_CHARS, Rule::IdTooLong)),
            Some(FieldKind::Impression) => {
                Some((limits::MAX_CATEGORICAL_CHARS, Rule::CategoricalTooLong))
            }
            _ if c.categorical => Some((limits::MAX_CATEGORICAL_CHARS, Rule::CategoricalTooLong)),
            _ if dataset.limits_plain_strings() => {
                Some((limits::MAX_STRING_CHARS, Rule::StringTooLong))
            }
            _ => None,
        };
        if let Some((limit, rule)) = limit
            && chars > limit
        {
            return Some(rule);
        }
    }
    match w {
        Want::Float(v) if !v.is_finite() => Some(Rule::NotANumber),
        // A column declared Avro `float` holds 32-bit floats.
        Want::Float(v) if c.avro_type == AvroType::Float && (*v as f32).is_infinite() => {
            Some(Rule::NotANumber)
        }
        Want::Long(v) if dataset == DatasetType::Actions => {
            let (low, high) = match c.name.as_str() {
                "VALUE" => limits::ACTION_VALUE_RANGE,
                "REPEAT_FREQUENCY" => (i64::MIN, limits::MAX_REPEAT_FREQUENCY_DAYS),
                _ => return None,
            };
            (*v < low || *v > high).then_some(Rule::OutOfRange)
        }
        Want::Text(s)
            if dataset == DatasetType::ActionInteractions
                && c.kind() == Some(FieldKind::EventType)
                && !limits::ACTION_EVENT_TYPES.contains(&s.as_str()) =>
        {
            Some(Rule::EventTypeNotAllowed)
        }
        _ => None,
    }
}

// ---------------------------------------------------------------- comparing

fn float_text_is(got: &str, want: f64) -> bool {
    match got.parse::<f64>() {
        Ok(v) if v.is_nan() => want.is_nan(),
        // Shortest text of a narrower float reads back as that float.
        Ok(v) => v == want || v as f32 == want as f32,
        Err(_) => false,
    }
}

fn text_matches(got: &str, want: &Want) -> bool {
    match want {
        Want::Text(s) => got == s,
        Want::NumberText(v) => float_text_is(got, *v),
        Want::List(items) => {
            if items
                .iter()
                .any(|i| matches!(i, Want::Text(s) if s.contains('|')))
            {
                return true; // cannot tell the items apart; the join is checked elsewhere
            }
            let parts: Vec<&str> = got.split('|').collect();
            parts.len() == items.len() && parts.iter().zip(items).all(|(g, w)| text_matches(g, w))
        }
        _ => false,
    }
}

fn check_cell(column: &OutputColumn, coerced: &Coerced, row: usize, want: &Want) {
    let name = &column.name;
    match coerced {
        Coerced::Text(a) => {
            let got = TextColumn::new(a.as_ref()).expect("text").get(row);
            match got {
                None => assert_eq!(*want, Want::Null, "{name} row {row}: null"),
                Some(g) => assert!(
                    text_matches(g, want),
                    "{name} row {row}: {g:?}, want {want:?}"
                ),
            }
        }
        Coerced::Long(a) => {
            let got = a.is_valid(row).then(|| a.value(row));
            match want {
                Want::Timestamp(Some(v)) => assert_eq!(got, Some(*v), "{name} row {row}"),
                Want::Timestamp(None) => assert!(got.is_some(), "{name} row {row}: null"),
                Want::Long(v) => assert_eq!(got, Some(*v), "{name} row {row}"),
                Want::Null => assert_eq!(got, None, "{name} row {row}"),
                w => panic!("{name} row {row}: {got:?}, want {w:?}"),
            }
        }
        Coerced::Float(a) => {
            let got = a.is_valid(row).then(|| a.value(row));
            match (want, got) {
                (Want::Float(w), Some(g)) => assert!(
                    g.to_bits() == w.to_bits() || (g - w).abs() <= w.abs() * 1e-15,
                    "{name} row {row}: {g}, want {w}"
                ),
                (Want::Null, None) => {}
                (w, g) => panic!("{name} row {row}: {g:?}, want {w:?}"),
            }
        }
        Coerced::Null(_) => assert_eq!(*want, Want::Null, "{name} row {row}"),
    }
}

fn run(u: &mut Unstructured) -> Result<()> {
    let Input {
        dataset,
        directives,
        batch,
    } = input(u)?;
    let Ok(plan) = ColumnPlan::new(batch.schema().as_ref(), dataset, &directives) else {
        return Ok(()); // refused with a message: planning is not under test here
    };
    let rows = batch.num_rows();
    let mut rejections = RowRejections::new(rows);
    let coerced = coerce_batch(&plan, &batch, &mut rejections)
        .unwrap_or_else(|e| panic!("an accepted plan fails to coerce: {e}"));
    rows::check_batch(&plan, &coerced, &mut rejections);
    assert_eq!(coerced.len(), plan.columns.len());

    for row in 0..rows {
        let wants: Vec<Want> = plan
            .columns
            .iter()
            .map(|c| want(dataset, c, batch.column(c.index).as_ref(), row))
            .collect();
        let rejection = rejections.iter().find(|(r, _)| *r == row).map(|(_, r)| r);
        let may_reject = |column: &OutputColumn, rule: Rule| {
            plan.columns.iter().zip(&wants).any(|(c, w)| {
                c.name == column.name
                    && (*w == Want::Broken(rule)
                        || (rule == Rule::NotATimestamp && matches!(w, Want::Timestamp(_))))
            })
        };
        let must_reject = wants.iter().any(|w| matches!(w, Want::Broken(_)));
        match rejection {
            Some(r) => {
                let column = plan.columns.iter().find(|c| c.name == r.column).unwrap();
                assert!(
                    may_reject(column, r.rule),
                    "row {row} rejected as {:?} in {}, but {wants:?}",
                    r.rule,
                    r.column
                );
            }
            None => {
                assert!(
                    !must_reject,
                    "row {row} kept, but {wants:?}; cells: {:?}",
                    plan.columns
                        .iter()
                        .map(|c| format!(
                            "{} {}",
                            batch.column(c.index).data_type(),
                            datafusion::arrow::util::display::array_value_to_string(
                                batch.column(c.index),
                                row
                            )
                            .unwrap_or_default()
                        ))
                        .collect::<Vec<_>>()
                );
                for ((column, values), want) in plan.columns.iter().zip(&coerced).zip(&wants) {
                    assert_eq!(values.len(), rows);
                    check_cell(column, values, row, want);
                }
            }
        }
    }

    check_written(&plan, &batch, rejections.count());
    Ok(())
}

/// The batch as a run writes it (rows kept, rows rejected) reads back as CSV.
fn check_written(plan: &ColumnPlan, batch: &RecordBatch, rejected: usize) {
    let options = |policy| BatchOptions {
        policy,
        insights: true,
    };
    let mut tally = Tally::new(plan);
    let failed = batch::process(plan, batch, options(InvalidPolicy::Fail), &mut tally);
    assert_eq!(failed.is_err(), rejected > 0);

    let mut tally = Tally::new(plan);
    let encoded = batch::process(plan, batch, options(InvalidPolicy::Skip), &mut tally)
        .expect("skipping never fails");
    assert_eq!(tally.rejected as usize, rejected);
    assert_eq!(tally.written as usize, batch.num_rows() - rejected);
    let width = plan.columns.len();
    read_back(&encoded.rows.bytes, batch.num_rows() - rejected, width);
    match encoded.rejects {
        Some(rejects) => read_back(&rejects.bytes, rejected, width + 2),
        None => assert_eq!(rejected, 0),
    }
}

fn read_back(bytes: &[u8], rows: usize, width: usize) {
    let text = std::str::from_utf8(bytes).expect("UTF-8");
    assert_eq!(text.matches('\n').count(), rows, "{text:?}");
    let records: Vec<csv::StringRecord> = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .escape(Some(b'\\'))
        .double_quote(false)
        .from_reader(bytes)
        .records()
        .collect::<Result<_, _>>()
        .expect("readable CSV");
    assert_eq!(records.len(), rows, "{text:?}");
    for record in records {
        assert_eq!(record.len(), width, "{record:?}");
    }
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
