//! Decides, before any data is read, what each column of the final query becomes.
//!
//! Names are upper-cased; each column is matched to a reserved field or becomes metadata; its
//! Arrow type decides the conversion (exact id text, epoch seconds, float, `True`/`False`,
//! `|`-joined lists) and the Avro type. Everything the service would reject is an error here
//! that names the column and says what to change in the mapping file.

use std::collections::HashMap;

use datafusion::arrow::datatypes::{DataType, Schema, TimeUnit};
use serde::Serialize;

use super::dataset::{DatasetType, FieldKind, ReservedField};
use super::limits;
use crate::error::{Error, Result};

/// How the values of one column are turned into what is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Conversion {
    /// Text as is (Utf8, LargeUtf8, Utf8View, dictionaries of text).
    Text,
    /// Integers to their exact decimal text.
    IntegerText,
    /// Floats and decimals to their shortest exact text.
    NumberText,
    /// Booleans to `True` / `False`.
    BoolText,
    /// Lists to their values joined by `|`.
    ListText,
    /// Integers kept as integers (`long`).
    Integer,
    /// Arrow timestamps to epoch seconds.
    TimestampSeconds,
    /// Arrow dates to epoch seconds (midnight UTC).
    DateSeconds,
    /// Text holding epoch seconds or an ISO-8601 timestamp, to epoch seconds.
    ParseTimestamp,
    /// Numbers to 64-bit floats.
    Float,
    /// Text holding a number, to a 64-bit float.
    ParseFloat,
    /// Text holding an integer, to an integer.
    ParseInteger,
    /// A column of nulls only.
    Null,
}

/// The Avro primitive a column is declared as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AvroType {
    String,
    Long,
    Float,
    Double,
}

impl AvroType {
    pub fn name(self) -> &'static str {
        match self {
            AvroType::String => "string",
            AvroType::Long => "long",
            AvroType::Float => "float",
            AvroType::Double => "double",
        }
    }
}

/// What a column is for Personalize.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Reserved(&'static ReservedField),
    Metadata,
}

/// One output column: its name, where it comes from, what it becomes.
#[derive(Debug, Clone, Serialize)]
pub struct OutputColumn {
    pub name: String,
    /// The final query's own name for the column (before upper-casing).
    pub source_name: String,
    /// Index in the final query's schema.
    #[serde(skip)]
    pub index: usize,
    pub source_type: String,
    #[serde(skip)]
    pub role: Role,
    pub avro_type: AvroType,
    pub nullable: bool,
    pub categorical: bool,
    pub textual: bool,
    pub conversion: Conversion,
}

impl OutputColumn {
    pub fn kind(&self) -> Option<FieldKind> {
        match self.role {
            Role::Reserved(field) => Some(field.kind),
            Role::Metadata => None,
        }
    }

    pub fn is_required(&self) -> bool {
        matches!(self.role, Role::Reserved(f) if f.required)
    }

    pub fn is_reserved(&self) -> bool {
        matches!(self.role, Role::Reserved(_))
    }
}

/// The output columns of one dataset, in CSV header order.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnPlan {
    pub dataset: DatasetType,
    pub columns: Vec<OutputColumn>,
    /// What the plan was made with: another process makes the same plan from the same schema.
    #[serde(skip)]
    pub hints: ColumnHints,
}

/// What a mapping file says of its columns that their types cannot (the mapping layer hands
/// these over; the service's rules do not read mapping files).
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ColumnHints {
    /// String columns Personalize reads as free text (Items only).
    pub textual: Vec<String>,
    /// Non-string columns to write as categorical strings.
    pub categorical: Vec<String>,
    /// String columns kept for filtering only.
    pub not_categorical: Vec<String>,
}

impl ColumnPlan {
    /// Plans the output of a final query with `schema` for `dataset`.
    pub fn new(schema: &Schema, dataset: DatasetType, hints: &ColumnHints) -> Result<Self> {
        let mut columns = Vec::with_capacity(schema.fields().len());
        let mut seen: HashMap<String, String> = HashMap::new();
        for (index, field) in schema.fields().iter().enumerate() {
            let name = field.name().to_ascii_uppercase();
            check_name(&name, field.name())?;
            let squashed = name.replace('_', "");
            if let Some(other) = seen.insert(squashed, name.clone()) {
                return Err(Error::column(
                    &name,
                    format!(
                        "collides with {other}: Personalize compares names with underscores \
                         removed. Rename one of them with AS"
                    ),
                ));
            }
            let column = match dataset.reserved(&name) {
                Some(reserved) => reserved_column(name, index, field.data_type(), reserved)?,
                None => metadata_column(name, index, field.data_type(), hints)?,
            };
            let column = OutputColumn {
                source_name: field.name().clone(),
                ..column
            };
            columns.push(column);
        }
        let plan = ColumnPlan {
            dataset,
            columns,
            hints: hints.clone(),
        };
        plan.check_required()?;
        plan.check_hints(hints)?;
        plan.check_counts()?;
        Ok(plan)
    }

    /// The CSV header / Avro field names, in order.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|c| c.name.as_str())
    }

    pub fn metadata_count(&self) -> usize {
        self.columns.iter().filter(|c| !c.is_reserved()).count()
    }

    fn check_required(&self) -> Result<()> {
        for field in self.dataset.reserved_fields().iter().filter(|f| f.required) {
            if !self.columns.iter().any(|c| c.name == field.name) {
                return Err(Error::column(
                    field.name,
                    format!(
                        "is required in {} datasets but the final query has no such column \
                         (it has: {}). Add `<expression> AS {}` to the SELECT",
                        self.dataset,
                        self.names().collect::<Vec<_>>().join(", "),
                        field.name.to_ascii_lowercase()
                    ),
                ));
            }
        }
        Ok(())
    }

    fn check_hints(&self, hints: &ColumnHints) -> Result<()> {
        let named = hints
            .textual
            .iter()
            .map(|n| ("textual", n))
            .chain(hints.categorical.iter().map(|n| ("categorical", n)))
            .chain(hints.not_categorical.iter().map(|n| ("not_categorical", n)));
        for (key, name) in named {
            if !self.columns.iter().any(|c| &c.name == name) {
                return Err(Error::column(
                    name,
                    format!(
                        "is named by the `{key}` directive but the final query has no such column"
                    ),
                ));
            }
        }
        let textual = self.columns.iter().filter(|c| c.textual).count();
        if textual > 0 && self.dataset != DatasetType::Items {
            return Err(Error::column(
                &hints.textual[0],
                "textual fields exist only in Items datasets: remove the `textual` directive",
            ));
        }
        if textual > limits::MAX_TEXTUAL_FIELDS {
            return Err(Error::column(
                hints.textual.join(", "),
                format!(
                    "at most {} textual field is allowed per Items dataset",
                    limits::MAX_TEXTUAL_FIELDS
                ),
            ));
        }
        Ok(())
    }

    fn check_counts(&self) -> Result<()> {
        let (min, max) = self.dataset.metadata_range();
        let count = self.metadata_count();
        if count < min || count > max {
            let what = if count < min {
                format!(
                    "{} datasets need at least {min} metadata column besides the reserved ones; \
                     the final query has {count}. Select at least one more column",
                    self.dataset
                )
            } else {
                format!(
                    "{} datasets take at most {max} metadata columns; the final query has {count}. \
                     Drop some from the SELECT",
                    self.dataset
                )
            };
            return Err(Error::Data(what));
        }
        Ok(())
    }
}

fn check_name(upper: &str, original: &str) -> Result<()> {
    let valid = upper
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && upper.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(Error::column(
            original,
            "is not a valid Personalize field name (letters, digits and _ only, not starting \
             with a digit): give the expression a name with AS",
        ))
    }
}

fn is_text(t: &DataType) -> bool {
    match t {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => true,
        DataType::Dictionary(_, value) => is_text(value),
        _ => false,
    }
}

fn is_integer(t: &DataType) -> bool {
    t.is_integer()
}

fn is_float(t: &DataType) -> bool {
    t.is_floating()
        || matches!(
            t,
            DataType::Decimal32(..)
                | DataType::Decimal64(..)
                | DataType::Decimal128(..)
                | DataType::Decimal256(..)
        )
}

fn is_scalar_list(t: &DataType) -> bool {
    match t {
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::FixedSizeList(f, _) => {
            let item = f.data_type();
            is_text(item) || is_integer(item) || is_float(item) || matches!(item, DataType::Boolean)
        }
        _ => false,
    }
}

fn unsupported(name: &str, t: &DataType, wanted: &str) -> Error {
    let hint = match t {
        DataType::Struct(_) => {
            " A struct cannot be a Personalize field: select one of its fields \
             (e.g. col['field'] AS name)"
        }
        DataType::Map(..) => " A map cannot be a Personalize field: select one value (col['key'])",
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => {
            " Decode it in SQL first (e.g. arrow_cast or encode(col, 'hex'))"
        }
        _ => "",
    };
    Error::column(
        name,
        format!("has Arrow type {t}, which cannot become {wanted}.{hint}"),
    )
}

fn reserved_column(
    name: String,
    index: usize,
    t: &DataType,
    field: &'static ReservedField,
) -> Result<OutputColumn> {
    use Conversion as C;
    let (conversion, avro_type) = match field.kind {
        FieldKind::Id => match t {
            t if is_text(t) => (C::Text, AvroType::String),
            t if is_integer(t) => (C::IntegerText, AvroType::String),
            DataType::Null => (C::Null, AvroType::String),
            t if is_float(t) => {
                return Err(Error::column(
                    &name,
                    format!(
                        "has type {t}: a floating-point id loses digits and gains '.0'. Read the \
                         id as text (declare it VARCHAR in CREATE EXTERNAL TABLE) or, if it is \
                         integral, CAST(... AS BIGINT)"
                    ),
                ));
            }
            t => return Err(unsupported(&name, t, "an id (string)")),
        },
        FieldKind::EpochSeconds => match t {
            t if is_integer(t) => (C::Integer, AvroType::Long),
            DataType::Timestamp(..) => (C::TimestampSeconds, AvroType::Long),
            DataType::Date32 | DataType::Date64 => (C::DateSeconds, AvroType::Long),
            t if is_text(t) => (C::ParseTimestamp, AvroType::Long),
            DataType::Null => (C::Null, AvroType::Long),
            t if is_float(t) => {
                return Err(Error::column(
                    &name,
                    format!(
                        "has type {t}; Personalize wants whole epoch seconds. Use \
                         CAST(... AS BIGINT), or to_timestamp(...) for fractional seconds"
                    ),
                ));
            }
            t => return Err(unsupported(&name, t, "epoch seconds (long)")),
        },
        FieldKind::Float => match t {
            t if is_integer(t) || is_float(t) => (C::Float, AvroType::Float),
            t if is_text(t) => (C::ParseFloat, AvroType::Float),
            DataType::Null => (C::Null, AvroType::Float),
            t => return Err(unsupported(&name, t, "a float")),
        },
        FieldKind::Long => match t {
            t if is_integer(t) => (C::Integer, AvroType::Long),
            t if is_text(t) => (C::ParseInteger, AvroType::Long),
            DataType::Null => (C::Null, AvroType::Long),
            t => return Err(unsupported(&name, t, "a long")),
        },
        FieldKind::EventType | FieldKind::Text => match t {
            t if is_text(t) => (C::Text, AvroType::String),
            t if is_integer(t) => (C::IntegerText, AvroType::String),
            DataType::Boolean => (C::BoolText, AvroType::String),
            DataType::Null => (C::Null, AvroType::String),
            t => return Err(unsupported(&name, t, "a string")),
        },
        FieldKind::Impression => match t {
            t if is_text(t) => (C::Text, AvroType::String),
            t if is_scalar_list(t) => (C::ListText, AvroType::String),
            DataType::Null => (C::Null, AvroType::String),
            t => return Err(unsupported(&name, t, "an impression list (string)")),
        },
    };
    Ok(OutputColumn {
        source_name: name.clone(),
        name,
        index,
        source_type: t.to_string(),
        role: Role::Reserved(field),
        avro_type,
        nullable: field.nullable,
        categorical: false,
        textual: false,
        conversion,
    })
}

fn metadata_column(
    name: String,
    index: usize,
    t: &DataType,
    hints: &ColumnHints,
) -> Result<OutputColumn> {
    use Conversion as C;
    let textual = hints.textual.contains(&name);
    let force_categorical = hints.categorical.contains(&name);
    let not_categorical = hints.not_categorical.contains(&name);
    let (conversion, avro_type, categorical) = match t {
        t if is_text(t) => (C::Text, AvroType::String, !textual && !not_categorical),
        DataType::Boolean => (C::BoolText, AvroType::String, !not_categorical),
        t if is_scalar_list(t) => (C::ListText, AvroType::String, !not_categorical),
        DataType::Null => (C::Null, AvroType::String, !textual && !not_categorical),
        t if is_integer(t) && force_categorical => (C::IntegerText, AvroType::String, true),
        t if is_float(t) && force_categorical => (C::NumberText, AvroType::String, true),
        t if is_integer(t) => (C::Integer, AvroType::Long, false),
        t if is_float(t) => (C::Float, AvroType::Double, false),
        DataType::Timestamp(..) => (C::TimestampSeconds, AvroType::Long, false),
        DataType::Date32 | DataType::Date64 => (C::DateSeconds, AvroType::Long, false),
        t => return Err(unsupported(&name, t, "a Personalize metadata field")),
    };
    if textual && (avro_type != AvroType::String || conversion == C::ListText) {
        return Err(Error::column(
            &name,
            format!("is named textual but has type {t}; a textual field holds free text"),
        ));
    }
    if force_categorical && avro_type != AvroType::String {
        return Err(Error::column(&name, "cannot be made categorical"));
    }
    Ok(OutputColumn {
        source_name: name.clone(),
        name,
        index,
        source_type: t.to_string(),
        role: Role::Metadata,
        avro_type,
        nullable: true,
        categorical,
        textual,
        conversion,
    })
}

/// Seconds per unit, for converting Arrow timestamps.
pub fn units_per_second(unit: TimeUnit) -> i64 {
    match unit {
        TimeUnit::Second => 1,
        TimeUnit::Millisecond => 1_000,
        TimeUnit::Microsecond => 1_000_000,
        TimeUnit::Nanosecond => 1_000_000_000,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::Field;
    use std::sync::Arc;

    fn schema(fields: &[(&str, DataType)]) -> Schema {
        Schema::new(
            fields
                .iter()
                .map(|(n, t)| Field::new(*n, t.clone(), true))
                .collect::<Vec<_>>(),
        )
    }

    fn plan(dataset: DatasetType, fields: &[(&str, DataType)]) -> Result<ColumnPlan> {
        ColumnPlan::new(&schema(fields), dataset, &ColumnHints::default())
    }

    #[test]
    fn interactions_columns_get_their_conversions() {
        let p = plan(
            DatasetType::Interactions,
            &[
                ("user_id", DataType::Int64),
                ("item_id", DataType::Utf8View),
                (
                    "timestamp",
                    DataType::Timestamp(TimeUnit::Millisecond, None),
                ),
                ("event_value", DataType::Utf8),
                ("device", DataType::Utf8),
                (
                    "tags",
                    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                ),
            ],
        )
        .unwrap();
        let conv: Vec<_> = p.columns.iter().map(|c| c.conversion).collect();
        assert_eq!(
            conv,
            [
                Conversion::IntegerText,
                Conversion::Text,
                Conversion::TimestampSeconds,
                Conversion::ParseFloat,
                Conversion::Text,
                Conversion::ListText
            ]
        );
        assert_eq!(p.names().collect::<Vec<_>>()[0], "USER_ID");
        assert!(p.columns[4].categorical);
    }

    #[test]
    fn missing_required_column_is_named() {
        let e = plan(
            DatasetType::Interactions,
            &[("user_id", DataType::Utf8), ("item_id", DataType::Utf8)],
        )
        .unwrap_err()
        .to_string();
        assert!(e.starts_with("column TIMESTAMP: is required"), "{e}");
    }

    #[test]
    fn struct_column_is_an_error_with_a_fix() {
        let t = DataType::Struct(vec![Field::new("a", DataType::Utf8, true)].into());
        let e = plan(
            DatasetType::Users,
            &[("user_id", DataType::Utf8), ("context", t)],
        )
        .unwrap_err()
        .to_string();
        assert!(
            e.contains("column CONTEXT") && e.contains("select one of its fields"),
            "{e}"
        );
    }

    #[test]
    fn float_ids_are_refused() {
        let e = plan(
            DatasetType::Users,
            &[("user_id", DataType::Float64), ("a", DataType::Utf8)],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("floating-point id"), "{e}");
    }

    #[test]
    fn names_colliding_without_underscores_are_refused() {
        let e = plan(
            DatasetType::Users,
            &[
                ("user_id", DataType::Utf8),
                ("genre_1", DataType::Utf8),
                ("genre1", DataType::Utf8),
            ],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("collides with GENRE_1"), "{e}");
    }

    #[test]
    fn users_need_metadata() {
        let e = plan(DatasetType::Users, &[("user_id", DataType::Utf8)])
            .unwrap_err()
            .to_string();
        assert!(e.contains("at least 1 metadata"), "{e}");
    }

    #[test]
    fn invalid_names_are_refused() {
        let e = plan(
            DatasetType::Users,
            &[("user_id", DataType::Utf8), ("count(*)", DataType::Int64)],
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("AS"), "{e}");
    }

    #[test]
    fn textual_only_in_items() {
        let d = ColumnHints {
            textual: vec!["NOTE".into()],
            ..ColumnHints::default()
        };
        let s = schema(&[("user_id", DataType::Utf8), ("note", DataType::Utf8)]);
        assert!(ColumnPlan::new(&s, DatasetType::Users, &d).is_err());
        let s = schema(&[("item_id", DataType::Utf8), ("note", DataType::Utf8)]);
        let p = ColumnPlan::new(&s, DatasetType::Items, &d).unwrap();
        assert!(p.columns[1].textual && !p.columns[1].categorical);
    }
}
