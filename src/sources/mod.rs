//! Sources named by a mapping file's `CREATE EXTERNAL TABLE`: JSON (every layout), CSV and
//! Parquet, local or on an object store, single files or folders read recursively.

pub mod compression;
pub mod csv;
pub mod factory;
pub mod json;

pub use factory::SourceTableFactory;
