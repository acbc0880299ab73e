//! The Avro schema Personalize needs, generated from the column plan.
//!
//! One flat record named after the dataset type, in the Personalize namespace, fields in CSV header
//! order; nullable fields as `["null", T]` unions; `categorical` / `textual` on string metadata.
//! Every schema is parsed back with the `apache-avro` crate and checked against the size limit
//! before it is used.

use serde_json::{Value, json};

use super::columns::ColumnPlan;
use super::limits;
use crate::error::{Error, Result};

/// The schema as a JSON value.
pub fn schema_value(plan: &ColumnPlan) -> Value {
    let fields: Vec<Value> = plan
        .columns
        .iter()
        .map(|column| {
            let kind = column.avro_type.name();
            let mut field = serde_json::Map::new();
            field.insert("name".into(), json!(column.name));
            field.insert(
                "type".into(),
                if column.nullable {
                    json!(["null", kind])
                } else {
                    json!(kind)
                },
            );
            if column.categorical {
                field.insert("categorical".into(), json!(true));
            }
            if column.textual {
                field.insert("textual".into(), json!(true));
            }
            Value::Object(field)
        })
        .collect();
    json!({
        "type": "record",
        "name": plan.dataset.record_name(),
        "namespace": limits::SCHEMA_NAMESPACE,
        "fields": fields,
        "version": "1.0",
    })
}

/// The schema as the text written to `<dataset>.schema.json`, checked.
pub fn schema_text(plan: &ColumnPlan) -> Result<String> {
    let value = schema_value(plan);
    let text = serde_json::to_string_pretty(&value)
        .map_err(|e| Error::Internal(format!("schema serialisation: {e}")))?;
    check(&text)?;
    Ok(text)
}

/// Checks a schema text parses as Avro and fits Personalize's size limit.
pub fn check(text: &str) -> Result<()> {
    apache_avro::Schema::parse_str(text)
        .map_err(|e| Error::Internal(format!("generated schema is not valid Avro: {e}")))?;
    let compact: Value = serde_json::from_str(text)
        .map_err(|e| Error::Internal(format!("generated schema is not JSON: {e}")))?;
    let chars = compact.to_string().chars().count();
    if chars > limits::MAX_SCHEMA_CHARS {
        return Err(Error::Data(format!(
            "the schema has {chars} characters; Personalize accepts at most {}. Drop or shorten \
             metadata columns",
            limits::MAX_SCHEMA_CHARS
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::personalize::ColumnHints;
    use crate::personalize::DatasetType;
    use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};

    #[test]
    fn interactions_schema_has_reserved_types_and_categorical_metadata() {
        let schema = Schema::new(vec![
            Field::new("user_id", DataType::Int64, true),
            Field::new("item_id", DataType::Utf8, true),
            Field::new("event_type", DataType::Utf8, true),
            Field::new("event_value", DataType::Float64, true),
            Field::new(
                "timestamp",
                DataType::Timestamp(TimeUnit::Second, None),
                true,
            ),
            Field::new("device", DataType::Utf8, true),
        ]);
        let plan =
            ColumnPlan::new(&schema, DatasetType::Interactions, &ColumnHints::default()).unwrap();
        let text = schema_text(&plan).unwrap();
        let v: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["name"], "Interactions");
        assert_eq!(v["namespace"], "com.amazonaws.personalize.schema");
        let f = &v["fields"];
        assert_eq!(f[0], json!({"name": "USER_ID", "type": "string"}));
        assert_eq!(f[2], json!({"name": "EVENT_TYPE", "type": "string"}));
        assert_eq!(
            f[3],
            json!({"name": "EVENT_VALUE", "type": ["null", "float"]})
        );
        assert_eq!(f[4], json!({"name": "TIMESTAMP", "type": "long"}));
        assert_eq!(
            f[5],
            json!({"name": "DEVICE", "type": ["null", "string"], "categorical": true})
        );
    }
}
