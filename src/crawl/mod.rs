//! The crawler behind `pengine init` and `pengine sources`: what is at a location (files, format,
//! compression, folder layout, CSV dialect), the `CREATE EXTERNAL TABLE` that reads it, and a
//! profile of its columns from a sample of rows.
//!
//! Detection reads only the first bytes of a few files; the schema comes from pengine's own
//! source formats (the same inference `pengine run` uses), so a generated mapping file reads the
//! data exactly as the crawl saw it.

pub mod detect;
pub mod profile;

pub use detect::{Detected, Format, Layout, detect};
pub use profile::{ColumnProfile, profile_table};
