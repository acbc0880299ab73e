//! Checks on every row, made in the same pass that writes the CSV: required fields present, ids
//! within the length limit. The first offending row stops the run with the column, the value and
//! the rule, before anything is published.

use super::coerce::{Coerced, TextColumn, excerpt};
use super::columns::ColumnPlan;
use super::dataset::FieldKind;
use super::limits;
use crate::error::{Error, Result};

/// Checks one converted batch.
pub fn check_batch(plan: &ColumnPlan, columns: &[Coerced]) -> Result<()> {
    for (column, values) in plan.columns.iter().zip(columns) {
        let must_have_value = column.is_required() || !column.nullable;
        if must_have_value && let Some(row) = (0..values.len()).find(|&row| values.is_null(row)) {
            return Err(Error::column(
                &column.name,
                format!(
                    "is empty in a row ({}); {} never takes nulls or empty values. Filter such \
                         rows in the mapping file, e.g. `WHERE {} IS NOT NULL`",
                    describe_row(plan, columns, row),
                    column.name,
                    column.name.to_ascii_lowercase()
                ),
            ));
        }
        if let Coerced::Float(array) = values
            && let Some(row) =
                (0..array.len()).find(|&r| array.is_valid(r) && !array.value(r).is_finite())
        {
            return Err(Error::column(
                &column.name,
                format!(
                    "holds {} in a row ({}); Personalize needs finite numbers. Replace it in the \
                     mapping file, e.g. `CASE WHEN isnan(x) THEN NULL ELSE x END`",
                    array.value(row),
                    describe_row(plan, columns, row)
                ),
            ));
        }
        if column.kind() == Some(FieldKind::Id)
            && let Coerced::Text(array) = values
        {
            let text = TextColumn::new(array.as_ref());
            for row in 0..values.len() {
                let Some(value) = text.as_ref().and_then(|t| t.get(row)) else {
                    continue;
                };
                let chars = value.chars().count();
                if chars > limits::MAX_ID_CHARS {
                    return Err(Error::column(
                        &column.name,
                        format!(
                            "value '{}' has {chars} characters; ids are at most {}",
                            excerpt(value),
                            limits::MAX_ID_CHARS
                        ),
                    ));
                }
            }
        }
    }
    Ok(())
}

/// `NAME=value, ...` for one row, for error messages.
fn describe_row(plan: &ColumnPlan, columns: &[Coerced], row: usize) -> String {
    plan.columns
        .iter()
        .zip(columns)
        .map(|(column, values)| {
            let value = match values {
                Coerced::Text(a) => TextColumn::new(a.as_ref())
                    .and_then(|t| t.get(row))
                    .map(excerpt)
                    .unwrap_or_default(),
                Coerced::Long(a) if a.is_valid(row) => a.value(row).to_string(),
                Coerced::Float(a) if a.is_valid(row) => a.value(row).to_string(),
                _ => String::new(),
            };
            format!("{}={value}", column.name)
        })
        .collect::<Vec<_>>()
        .join(", ")
}

use datafusion::arrow::array::Array;
