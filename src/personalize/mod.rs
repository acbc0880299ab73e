//! Everything Amazon Personalize requires of a dataset: types, reserved fields, limits, the
//! coercion of Arrow columns to what the service accepts, and the Avro schema.

pub mod avro;
pub mod coerce;
pub mod columns;
pub mod dataset;
pub mod limits;
pub mod rows;
pub mod rules;

pub use columns::{ColumnHints, ColumnPlan, OutputColumn};
pub use dataset::{DatasetType, FieldKind, ReservedField};

/// Test helper: a record batch (and its schema) from named arrays.
#[cfg(test)]
pub(crate) fn batch_of(
    columns: Vec<(&str, datafusion::arrow::array::ArrayRef)>,
) -> (
    datafusion::arrow::datatypes::Schema,
    datafusion::arrow::record_batch::RecordBatch,
) {
    use datafusion::arrow::datatypes::{Field, Schema};
    let schema = Schema::new(
        columns
            .iter()
            .map(|(n, a)| Field::new(*n, a.data_type().clone(), true))
            .collect::<Vec<_>>(),
    );
    let batch = datafusion::arrow::record_batch::RecordBatch::try_new(
        std::sync::Arc::new(schema.clone()),
        columns.into_iter().map(|(_, a)| a).collect(),
    )
    .expect("columns of one length");
    (schema, batch)
}
