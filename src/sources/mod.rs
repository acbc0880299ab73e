//! Sources named by a mapping file's `CREATE EXTERNAL TABLE`: JSON (every layout), CSV and
//! Parquet, local or on an object store, single files or folders read recursively.

pub mod bad_records;
pub mod compression;
pub mod csv;
pub mod csv_records;
pub mod csv_scan;
pub mod factory;
pub mod json;
pub mod listing;
pub mod object_read;
pub mod parquet;
pub mod scan;

pub use factory::SourceTableFactory;

/// What is known of a file before reading it: its size. Enough for DataFusion's join selection to
/// build hash tables on the smaller side (a catalog, not the click stream).
pub fn file_size_statistics(
    schema: &datafusion::arrow::datatypes::SchemaRef,
    object: &object_store::ObjectMeta,
) -> datafusion::common::Statistics {
    use datafusion::common::stats::Precision;
    let mut statistics = datafusion::common::Statistics::new_unknown(schema);
    statistics.total_byte_size = Precision::Inexact(object.size as usize);
    statistics
}
