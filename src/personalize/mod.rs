//! Everything Amazon Personalize requires of a dataset: types, reserved fields, limits, the
//! coercion of Arrow columns to what the service accepts, and the Avro schema.

pub mod avro;
pub mod coerce;
pub mod columns;
pub mod dataset;
pub mod limits;
pub mod rows;
pub mod rules;

pub use columns::{ColumnPlan, OutputColumn};
pub use dataset::{DatasetType, FieldKind, ReservedField};
