//! Converts each record batch of the final query into the values Personalize gets, following the
//! [`ColumnPlan`]: ids as exact text, times as epoch seconds, floats, `True`/`False`, joined lists.
//! A value that cannot be converted is an error naming the column and the value.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, Float64Array, GenericListArray, Int64Array,
    LargeStringArray, StringArray, StringBuilder, StringViewArray,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Int32Type, Int64Type};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::util::display::array_value_to_string;

use super::columns::{ColumnPlan, Conversion, OutputColumn, units_per_second};
use super::dataset::FieldKind;
use super::limits;
use super::rules::{Rejection, RowRejections, Rule};
use crate::error::{Error, Result};

/// One converted column, ready for the CSV writer.
#[derive(Debug, Clone)]
pub enum Coerced {
    /// Utf8, LargeUtf8 or Utf8View.
    Text(ArrayRef),
    Long(Int64Array),
    Float(Float64Array),
    /// All nulls, this many rows.
    Null(usize),
}

/// A borrowed view of a text column, whatever its Arrow string type.
pub enum TextColumn<'a> {
    Utf8(&'a StringArray),
    Large(&'a LargeStringArray),
    View(&'a StringViewArray),
}

impl<'a> TextColumn<'a> {
    pub fn new(array: &'a dyn Array) -> Option<Self> {
        match array.data_type() {
            DataType::Utf8 => Some(TextColumn::Utf8(array.as_string::<i32>())),
            DataType::LargeUtf8 => Some(TextColumn::Large(array.as_string::<i64>())),
            DataType::Utf8View => Some(TextColumn::View(array.as_string_view())),
            _ => None,
        }
    }

    #[inline]
    pub fn get(&self, i: usize) -> Option<&'a str> {
        match self {
            TextColumn::Utf8(a) => a.is_valid(i).then(|| a.value(i)),
            TextColumn::Large(a) => a.is_valid(i).then(|| a.value(i)),
            TextColumn::View(a) => a.is_valid(i).then(|| a.value(i)),
        }
    }
}

impl TextColumn<'_> {
    /// Whether row `i` is null or empty text, from the value's length alone.
    #[inline]
    pub fn is_blank(&self, i: usize) -> bool {
        match self {
            TextColumn::Utf8(a) => a.is_null(i) || a.value_length(i) == 0,
            TextColumn::Large(a) => a.is_null(i) || a.value_length(i) == 0,
            // A view's low 32 bits are its length.
            TextColumn::View(a) => a.is_null(i) || a.views()[i] as u32 == 0,
        }
    }
}

impl Coerced {
    pub fn len(&self) -> usize {
        match self {
            Coerced::Text(a) => a.len(),
            Coerced::Long(a) => a.len(),
            Coerced::Float(a) => a.len(),
            Coerced::Null(n) => *n,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Which rows are null, in one pass (empty text counts as null: it is written as an empty
    /// field).
    pub fn null_rows(&self) -> Vec<bool> {
        match self {
            Coerced::Text(a) => match TextColumn::new(a.as_ref()) {
                Some(text) => (0..a.len()).map(|r| text.is_blank(r)).collect(),
                None => vec![true; a.len()],
            },
            Coerced::Long(a) => (0..a.len()).map(|r| a.is_null(r)).collect(),
            Coerced::Float(a) => (0..a.len()).map(|r| a.is_null(r)).collect(),
            Coerced::Null(n) => vec![true; *n],
        }
    }

    /// The rows where `keep` is true.
    pub fn filter(&self, keep: &BooleanArray) -> Result<Coerced> {
        use datafusion::arrow::compute::filter;
        Ok(match self {
            Coerced::Text(a) => Coerced::Text(filter(a.as_ref(), keep)?),
            Coerced::Long(a) => Coerced::Long(filter(a, keep)?.as_primitive::<Int64Type>().clone()),
            Coerced::Float(a) => {
                Coerced::Float(filter(a, keep)?.as_primitive::<Float64Type>().clone())
            }
            Coerced::Null(_) => Coerced::Null(keep.true_count()),
        })
    }
}

/// Converts `batch` following `plan`; rows whose values cannot be converted are recorded in
/// `rejections` (their converted value is null).
pub fn coerce_batch(
    plan: &ColumnPlan,
    batch: &RecordBatch,
    rejections: &mut RowRejections,
) -> Result<Vec<Coerced>> {
    plan.columns
        .iter()
        .map(|column| coerce_column(column, batch.column(column.index), rejections))
        .collect()
}

fn coerce_column(
    column: &OutputColumn,
    array: &ArrayRef,
    rejections: &mut RowRejections,
) -> Result<Coerced> {
    let name = column.name.as_str();
    let to_error = |e: datafusion::arrow::error::ArrowError| Error::column(name, e.to_string());
    Ok(match column.conversion {
        Conversion::Text => match array.data_type() {
            DataType::Dictionary(..) => {
                Coerced::Text(cast(array, &DataType::Utf8).map_err(to_error)?)
            }
            _ => Coerced::Text(Arc::clone(array)),
        },
        Conversion::IntegerText | Conversion::NumberText => {
            Coerced::Text(cast(array, &DataType::Utf8).map_err(to_error)?)
        }
        Conversion::BoolText => Coerced::Text(Arc::new(bool_text(array.as_boolean()))),
        Conversion::ListText => Coerced::Text(Arc::new(list_text(name, array)?)),
        Conversion::Integer => {
            // A safe cast leaves null where a value does not fit (an unsigned beyond i64).
            let values = cast(array, &DataType::Int64).map_err(to_error)?;
            let values = values.as_primitive::<Int64Type>().clone();
            if values.null_count() != array.null_count() {
                for row in (0..array.len()).filter(|&r| array.is_valid(r) && values.is_null(r)) {
                    let text = array_value_to_string(array, row).unwrap_or_default();
                    rejections.reject(row, Rejection::new(Rule::NotAnInteger, name, Some(&text)));
                }
            }
            if column.kind() == Some(FieldKind::EpochSeconds) {
                for (row, value) in values.iter().enumerate() {
                    if let Some(v) = value.filter(|v| plausible_seconds(*v).is_err()) {
                        let text = v.to_string();
                        rejections.reject(
                            row,
                            Rejection::new(Rule::TimestampMilliseconds, name, Some(&text)),
                        );
                    }
                }
            }
            Coerced::Long(values)
        }
        Conversion::TimestampSeconds => {
            let DataType::Timestamp(unit, _) = array.data_type() else {
                return Err(Error::Internal(format!("{name}: expected a timestamp")));
            };
            let per_second = units_per_second(*unit);
            let raw = cast(array, &DataType::Int64).map_err(to_error)?;
            let raw = raw.as_primitive::<Int64Type>();
            Coerced::Long(raw.unary(|v| v.div_euclid(per_second)))
        }
        Conversion::DateSeconds => match array.data_type() {
            DataType::Date32 => {
                let days = cast(array, &DataType::Int32).map_err(to_error)?;
                Coerced::Long(
                    days.as_primitive::<Int32Type>()
                        .unary(|d| i64::from(d) * 86_400),
                )
            }
            _ => {
                let ms = cast(array, &DataType::Int64).map_err(to_error)?;
                Coerced::Long(
                    ms.as_primitive::<Int64Type>()
                        .unary(|v| v.div_euclid(1_000)),
                )
            }
        },
        Conversion::ParseTimestamp => Coerced::Long(parse_text::<Int64Type, _>(
            name,
            array,
            rejections,
            parse_epoch_seconds,
        )?),
        Conversion::Float => {
            let values = cast(array, &DataType::Float64).map_err(to_error)?;
            Coerced::Float(values.as_primitive().clone())
        }
        Conversion::ParseFloat => Coerced::Float(parse_text::<Float64Type, _>(
            name,
            array,
            rejections,
            |s| {
                s.parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or(Rule::NotANumber)
            },
        )?),
        Conversion::ParseInteger => {
            Coerced::Long(parse_text::<Int64Type, _>(name, array, rejections, |s| {
                s.parse::<i64>().map_err(|_| Rule::NotAnInteger)
            })?)
        }
        Conversion::Null => Coerced::Null(array.len()),
    })
}

fn text_view<'a>(name: &str, array: &'a ArrayRef) -> Result<TextColumn<'a>> {
    TextColumn::new(array.as_ref())
        .ok_or_else(|| Error::Internal(format!("{name}: expected text, got {}", array.data_type())))
}

/// Parses every non-empty text value with `parse`; a failure rejects the row (value left null).
fn parse_text<T, A>(
    name: &str,
    array: &ArrayRef,
    rejections: &mut RowRejections,
    parse: impl Fn(&str) -> Result<T::Native, Rule>,
) -> Result<A>
where
    T: datafusion::arrow::datatypes::ArrowPrimitiveType,
    A: From<Vec<Option<T::Native>>>,
{
    let owned;
    let array = if let DataType::Dictionary(..) = array.data_type() {
        owned = cast(array, &DataType::Utf8)?;
        &owned
    } else {
        array
    };
    let text = text_view(name, array)?;
    let mut out = Vec::with_capacity(array.len());
    for row in 0..array.len() {
        let value = match text.get(row).map(str::trim) {
            None | Some("") => None,
            Some(s) => match parse(s) {
                Ok(v) => Some(v),
                Err(rule) => {
                    rejections.reject(row, Rejection::new(rule, name, Some(s)));
                    None
                }
            },
        };
        out.push(value);
    }
    Ok(A::from(out))
}

/// Epoch seconds from text: an integer, or an ISO-8601 / RFC 3339 timestamp (UTC unless an
/// offset is given).
fn parse_epoch_seconds(s: &str) -> Result<i64, Rule> {
    if let Ok(seconds) = s.parse::<i64>() {
        return plausible_seconds(seconds).map(|_| seconds);
    }
    crate::iso_timestamps::text_epoch_seconds(s).ok_or(Rule::NotATimestamp)
}

fn plausible_seconds(value: i64) -> Result<(), Rule> {
    if value > limits::MAX_PLAUSIBLE_EPOCH_SECONDS {
        Err(Rule::TimestampMilliseconds)
    } else {
        Ok(())
    }
}

fn bool_text(values: &BooleanArray) -> StringArray {
    values
        .iter()
        .map(|v| v.map(|b| if b { "True" } else { "False" }))
        .collect()
}

/// Joins each list's values with `|`; null and empty items are skipped (an empty item would be an
/// empty category), a list left empty becomes null.
fn list_text(name: &str, array: &ArrayRef) -> Result<StringArray> {
    let item = Arc::new(Field::new("item", DataType::Utf8, true));
    let as_text =
        cast(array, &DataType::List(item)).map_err(|e| Error::column(name, e.to_string()))?;
    let lists: &GenericListArray<i32> = as_text.as_list();
    // Booleans in a list are written as single booleans are (found by fuzzing: `true`/`false`).
    let booleans = matches!(
        array.data_type(),
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _)
            if f.data_type() == &DataType::Boolean
    );
    let mut out = StringBuilder::with_capacity(lists.len(), lists.values().len() * 8);
    let mut joined = String::new();
    for i in 0..lists.len() {
        if lists.is_null(i) {
            out.append_null();
            continue;
        }
        let values = lists.value(i);
        let values = values.as_string::<i32>();
        joined.clear();
        for value in values.iter().flatten().filter(|v| !v.is_empty()) {
            if !joined.is_empty() {
                joined.push_str(limits::MULTI_VALUE_SEPARATOR);
            }
            joined.push_str(match (booleans, value) {
                (true, "true") => "True",
                (true, "false") => "False",
                _ => value,
            });
        }
        if joined.is_empty() {
            out.append_null();
        } else {
            out.append_value(&joined);
        }
    }
    Ok(out.finish())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::personalize::ColumnHints;
    use crate::personalize::DatasetType;
    use datafusion::arrow::array::{
        BooleanBuilder, ListBuilder, TimestampMillisecondArray, UInt64Array,
    };

    fn coerce(dataset: DatasetType, columns: Vec<(&str, ArrayRef)>) -> Result<Vec<Coerced>> {
        let (schema, batch) = crate::personalize::batch_of(columns);
        let plan = ColumnPlan::new(&schema, dataset, &ColumnHints::default())?;
        let mut rejections = RowRejections::new(batch.num_rows());
        let out = coerce_batch(&plan, &batch, &mut rejections)?;
        match rejections.iter().next() {
            Some((_, rejection)) => Err(Error::Data(rejection.message())),
            None => Ok(out),
        }
    }

    fn texts(c: &Coerced) -> Vec<Option<String>> {
        let Coerced::Text(a) = c else { panic!("{c:?}") };
        let t = TextColumn::new(a.as_ref()).unwrap();
        (0..a.len()).map(|i| t.get(i).map(str::to_string)).collect()
    }

    /// Null and empty rows by their length, in every string type, views inline and not.
    #[test]
    fn blank_rows_are_null_or_empty_in_every_string_type() {
        let values = [
            Some(""),
            None,
            Some("a"),
            Some("a value longer than twelve"),
            Some(""),
        ];
        let want = [true, true, false, false, true];
        let arrays: [ArrayRef; 3] = [
            Arc::new(StringArray::from(values.to_vec())),
            Arc::new(LargeStringArray::from(values.to_vec())),
            Arc::new(StringViewArray::from(values.to_vec())),
        ];
        for array in arrays {
            assert_eq!(Coerced::Text(Arc::clone(&array)).null_rows(), want);
            // Sliced: the views and offsets of a window of the array.
            let sliced = Coerced::Text(array.slice(1, 3)).null_rows();
            assert_eq!(sliced, want[1..4], "{:?}", array.data_type());
        }
    }

    #[test]
    fn big_ids_stay_exact_and_times_become_seconds() {
        let out = coerce(
            DatasetType::Interactions,
            vec![
                (
                    "user_id",
                    Arc::new(Int64Array::from(vec![
                        -2996180203100007228,
                        9007199254740993,
                    ])) as ArrayRef,
                ),
                ("item_id", Arc::new(StringArray::from(vec!["01002", "x"]))),
                (
                    "timestamp",
                    Arc::new(TimestampMillisecondArray::from(vec![1_709_301_600_999, -1])),
                ),
                (
                    "event_value",
                    Arc::new(StringArray::from(vec![Some(" 19.99"), None])),
                ),
            ],
        )
        .unwrap();
        assert_eq!(
            texts(&out[0]),
            [
                Some("-2996180203100007228".into()),
                Some("9007199254740993".into())
            ]
        );
        assert_eq!(texts(&out[1])[0].as_deref(), Some("01002"));
        let Coerced::Long(ts) = &out[2] else { panic!() };
        assert_eq!(ts.values().to_vec(), vec![1_709_301_600, -1]);
        let Coerced::Float(v) = &out[3] else { panic!() };
        assert_eq!(v.value(0), 19.99);
        assert!(v.is_null(1));
    }

    #[test]
    fn millisecond_integers_in_timestamp_are_an_error() {
        let e = coerce(
            DatasetType::Interactions,
            vec![
                (
                    "user_id",
                    Arc::new(StringArray::from(vec!["u"])) as ArrayRef,
                ),
                ("item_id", Arc::new(StringArray::from(vec!["i"]))),
                (
                    "timestamp",
                    Arc::new(Int64Array::from(vec![1_709_301_600_123])),
                ),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("TIMESTAMP value 1709301600123") && e.contains("milliseconds"),
            "{e}"
        );
    }

    #[test]
    fn iso_text_timestamps_parse_and_garbage_is_quoted() {
        let ok = coerce(
            DatasetType::Interactions,
            vec![
                (
                    "user_id",
                    Arc::new(StringArray::from(vec!["u", "v"])) as ArrayRef,
                ),
                ("item_id", Arc::new(StringArray::from(vec!["i", "j"]))),
                (
                    "timestamp",
                    Arc::new(StringArray::from(vec![
                        "2024-03-01T13:00:00.123Z",
                        "1709301600",
                    ])),
                ),
            ],
        )
        .unwrap();
        let Coerced::Long(ts) = &ok[2] else { panic!() };
        assert_eq!(ts.values().to_vec(), vec![1_709_298_000, 1_709_301_600]);
        let e = coerce(
            DatasetType::Interactions,
            vec![
                (
                    "user_id",
                    Arc::new(StringArray::from(vec!["u"])) as ArrayRef,
                ),
                ("item_id", Arc::new(StringArray::from(vec!["i"]))),
                ("timestamp", Arc::new(StringArray::from(vec!["yesterday"]))),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("'yesterday'"), "{e}");
    }

    #[test]
    fn booleans_in_lists_are_written_like_single_booleans() {
        let mut list = ListBuilder::new(BooleanBuilder::new());
        list.values().append_value(true);
        list.values().append_value(false);
        list.append(true);
        let array: ArrayRef = Arc::new(list.finish());
        let text = list_text("FLAGS", &array).unwrap();
        assert_eq!(text.value(0), "True|False");
    }

    #[test]
    fn empty_items_are_not_empty_categories() {
        let mut list = ListBuilder::new(StringBuilder::new());
        list.values().append_value(",Z");
        list.values().append_value("");
        list.append(true);
        list.values().append_value("");
        list.append(true);
        let array: ArrayRef = Arc::new(list.finish());
        let text = list_text("GENRES", &array).unwrap();
        assert_eq!(text.value(0), ",Z");
        assert!(text.is_null(1));
    }

    #[test]
    fn booleans_lists_and_unsigned() {
        let mut list = ListBuilder::new(StringBuilder::new());
        list.values().append_value("Action");
        list.values().append_value("Comedy");
        list.append(true);
        list.append(true);
        let out = coerce(
            DatasetType::Items,
            vec![
                (
                    "item_id",
                    Arc::new(UInt64Array::from(vec![u64::MAX, 7])) as ArrayRef,
                ),
                ("in_stock", Arc::new(BooleanArray::from(vec![true, false]))),
                ("genres", Arc::new(list.finish())),
            ],
        )
        .unwrap();
        assert_eq!(texts(&out[0])[0].as_deref(), Some("18446744073709551615"));
        assert_eq!(texts(&out[1]), [Some("True".into()), Some("False".into())]);
        assert_eq!(texts(&out[2]), [Some("Action|Comedy".into()), None]);
    }
}
