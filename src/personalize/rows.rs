//! Checks on every row, made in the same pass that writes the CSV: required fields present, ids
//! and strings within their lengths, numbers finite, Actions and Action interactions values in
//! their ranges. Each offending row is recorded with its first broken rule.

use datafusion::arrow::array::Array;

use super::coerce::{Coerced, TextColumn};
use super::columns::{AvroType, ColumnPlan, OutputColumn};
use super::dataset::{DatasetType, FieldKind};
use super::limits;
use super::rules::{Rejection, RowRejections, Rule};

/// The length limit that applies to a text column, if any, with the rule it breaks.
fn length_limit(plan: &ColumnPlan, column: &OutputColumn) -> Option<(usize, Rule)> {
    if column.avro_type != AvroType::String || column.textual {
        return None;
    }
    match column.kind() {
        Some(FieldKind::Id) => Some((limits::MAX_ID_CHARS, Rule::IdTooLong)),
        Some(FieldKind::Impression) => {
            Some((limits::MAX_CATEGORICAL_CHARS, Rule::CategoricalTooLong))
        }
        _ if column.categorical => Some((limits::MAX_CATEGORICAL_CHARS, Rule::CategoricalTooLong)),
        _ if plan.dataset.limits_plain_strings() => {
            Some((limits::MAX_STRING_CHARS, Rule::StringTooLong))
        }
        _ => None,
    }
}

/// Records the rows of one converted batch that break a rule.
pub fn check_batch(plan: &ColumnPlan, columns: &[Coerced], rejections: &mut RowRejections) {
    for (column, values) in plan.columns.iter().zip(columns) {
        let name = column.name.as_str();
        if column.is_required() || !column.nullable {
            let nulls = values.null_rows();
            for row in (0..values.len()).filter(|&row| nulls[row]) {
                rejections.reject(row, Rejection::new(Rule::Required, name, None));
            }
        }
        match values {
            Coerced::Float(array) => {
                // An Avro `float` is 32 bits: a larger value would be infinite once read (found
                // by the coerce fuzz target: 5.6e39 was written to a float EVENT_VALUE).
                let single = column.avro_type == AvroType::Float;
                let out_of_range = |v: f64| !v.is_finite() || (single && (v as f32).is_infinite());
                for row in 0..array.len() {
                    if array.is_valid(row) && out_of_range(array.value(row)) {
                        // `1e300`, not its 301 digits.
                        let text = format!("{:e}", array.value(row));
                        rejections.reject(row, Rejection::new(Rule::NotANumber, name, Some(&text)));
                    }
                }
            }
            Coerced::Long(array) => check_long(plan.dataset, column, array, rejections),
            Coerced::Text(array) => {
                let Some(text) = TextColumn::new(array.as_ref()) else {
                    continue;
                };
                if let Some((limit, rule)) = length_limit(plan, column) {
                    for row in 0..array.len() {
                        // Bytes bound characters from above: count only long values.
                        if let Some(value) = text.get(row).filter(|v| v.len() > limit)
                            && value.chars().count() > limit
                        {
                            rejections.reject(row, Rejection::new(rule, name, Some(value)));
                        }
                    }
                }
                if plan.dataset == DatasetType::ActionInteractions
                    && column.kind() == Some(FieldKind::EventType)
                {
                    for row in 0..array.len() {
                        if let Some(value) = text
                            .get(row)
                            .filter(|v| !limits::ACTION_EVENT_TYPES.contains(v))
                        {
                            rejections.reject(
                                row,
                                Rejection::new(Rule::EventTypeNotAllowed, name, Some(value)),
                            );
                        }
                    }
                }
            }
            Coerced::Null(_) => {}
        }
    }
}

fn check_long(
    dataset: DatasetType,
    column: &OutputColumn,
    array: &datafusion::arrow::array::Int64Array,
    rejections: &mut RowRejections,
) {
    if dataset != DatasetType::Actions {
        return;
    }
    let allowed = match column.name.as_str() {
        "VALUE" => limits::ACTION_VALUE_RANGE,
        "REPEAT_FREQUENCY" => (i64::MIN, limits::MAX_REPEAT_FREQUENCY_DAYS),
        _ => return,
    };
    for (row, value) in array.iter().enumerate() {
        if let Some(v) = value.filter(|v| *v < allowed.0 || *v > allowed.1) {
            let text = v.to_string();
            rejections.reject(
                row,
                Rejection::new(Rule::OutOfRange, &column.name, Some(&text)),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::personalize::ColumnHints;
    use crate::personalize::coerce::coerce_batch;
    use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray};
    use std::sync::Arc;

    /// The rules broken by each row of a batch (None: the row is fine).
    fn verdicts(
        dataset: DatasetType,
        directives: &ColumnHints,
        columns: Vec<(&str, ArrayRef)>,
    ) -> Vec<Option<Rule>> {
        let (schema, batch) = crate::personalize::batch_of(columns);
        let plan = ColumnPlan::new(&schema, dataset, directives).unwrap();
        let mut rejections = RowRejections::new(batch.num_rows());
        let converted = coerce_batch(&plan, &batch, &mut rejections).unwrap();
        check_batch(&plan, &converted, &mut rejections);
        let mut out = vec![None; batch.num_rows()];
        for (row, r) in rejections.iter() {
            out[row] = Some(r.rule);
        }
        out
    }

    fn text(values: Vec<Option<String>>) -> ArrayRef {
        Arc::new(StringArray::from(values))
    }

    #[test]
    fn id_length_on_and_over_the_limit() {
        let on = "a".repeat(limits::MAX_ID_CHARS);
        let over = "é".repeat(limits::MAX_ID_CHARS + 1);
        let got = verdicts(
            DatasetType::Users,
            &ColumnHints::default(),
            vec![
                (
                    "user_id",
                    text(vec![Some(on), Some(over), None, Some(String::new())]),
                ),
                ("tier", text(vec![Some("a".into()); 4])),
            ],
        );
        assert_eq!(
            got,
            [
                None,
                Some(Rule::IdTooLong),
                Some(Rule::Required),
                Some(Rule::Required)
            ]
        );
    }

    #[test]
    fn categorical_and_plain_string_lengths() {
        let on = "x".repeat(limits::MAX_CATEGORICAL_CHARS);
        let over = "x".repeat(limits::MAX_CATEGORICAL_CHARS + 1);
        let directives = ColumnHints {
            not_categorical: vec!["NOTE".into()],
            ..ColumnHints::default()
        };
        let got = verdicts(
            DatasetType::Items,
            &directives,
            vec![
                (
                    "item_id",
                    text(vec![Some("a".into()), Some("b".into()), Some("c".into())]),
                ),
                (
                    "genres",
                    text(vec![
                        Some(on.clone()),
                        Some(over.clone()),
                        Some("ok".into()),
                    ]),
                ),
                ("note", text(vec![Some(on), Some("ok".into()), Some(over)])),
            ],
        );
        assert_eq!(
            got,
            [
                None,
                Some(Rule::CategoricalTooLong),
                Some(Rule::StringTooLong)
            ]
        );
    }

    #[test]
    fn action_value_and_repeat_frequency_ranges() {
        let got = verdicts(
            DatasetType::Actions,
            &ColumnHints::default(),
            vec![
                ("action_id", text(vec![Some("a".into()); 5])),
                ("value", Arc::new(Int64Array::from(vec![1, 10, 0, 11, 5]))),
                (
                    "repeat_frequency",
                    Arc::new(Int64Array::from(vec![30, 1, 1, 1, 31])),
                ),
                ("kind", text(vec![Some("k".into()); 5])),
            ],
        );
        assert_eq!(
            got,
            [
                None,
                None,
                Some(Rule::OutOfRange),
                Some(Rule::OutOfRange),
                Some(Rule::OutOfRange)
            ]
        );
    }

    #[test]
    fn action_interaction_event_types() {
        let got = verdicts(
            DatasetType::ActionInteractions,
            &ColumnHints::default(),
            vec![
                ("user_id", text(vec![Some("u".into()); 3])),
                ("action_id", text(vec![Some("a".into()); 3])),
                (
                    "event_type",
                    text(vec![
                        Some("Taken".into()),
                        Some("Not Taken".into()),
                        Some("taken".into()),
                    ]),
                ),
                (
                    "timestamp",
                    Arc::new(Int64Array::from(vec![1_709_301_600; 3])),
                ),
            ],
        );
        assert_eq!(got, [None, None, Some(Rule::EventTypeNotAllowed)]);
    }

    #[test]
    fn timestamps_on_the_millisecond_boundary() {
        let got = verdicts(
            DatasetType::Interactions,
            &ColumnHints::default(),
            vec![
                ("user_id", text(vec![Some("u".into()); 3])),
                ("item_id", text(vec![Some("i".into()); 3])),
                (
                    "timestamp",
                    Arc::new(Int64Array::from(vec![
                        limits::MAX_PLAUSIBLE_EPOCH_SECONDS,
                        limits::MAX_PLAUSIBLE_EPOCH_SECONDS + 1,
                        1_709_301_600,
                    ])),
                ),
                (
                    "event_value",
                    text(vec![
                        Some("1.5".into()),
                        Some("2".into()),
                        Some("abc".into()),
                    ]),
                ),
            ],
        );
        assert_eq!(
            got,
            [
                None,
                Some(Rule::TimestampMilliseconds),
                Some(Rule::NotANumber)
            ]
        );
    }
}
