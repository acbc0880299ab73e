//! The end-to-end tests, one binary: each module is one area, run through the real pengine
//! binary. One test executable links the crate once instead of once per area.
//!
//! Run one area with `cargo test --test it <area>::`, e.g. `cargo test --test it s3::`.

mod common;

mod bad_records;
mod checks;
mod cluster;
mod csv_inference;
mod databases;
mod faults;
mod hostile;
mod import;
mod incremental;
mod inference;
mod init;
mod project;
mod run_cli;
mod s3;
mod safety;
mod sources;
mod split_csv;
mod split_files;
mod stores;
mod validate;
