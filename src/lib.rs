//! pengine: turns large historical data exports into Amazon Personalize datasets.
//!
//! Flow: a mapping file ([`mapping`]) registers sources ([`sources`], [`store`]) in a DataFusion
//! session ([`engine`]); the final query's batches are coerced and checked ([`personalize`]) and
//! streamed into CSV parts that are published atomically ([`sink`]); [`run`] ties it together.

pub mod allocator;
pub mod batch;
pub mod cli;
#[cfg(feature = "cluster")]
pub(crate) mod cluster;
mod commands;
pub(crate) mod crawl;
pub(crate) mod dataset_plan;
pub(crate) mod describe;
pub mod distinct;
pub(crate) mod engine;
pub mod error;
pub(crate) mod explain;
pub(crate) mod failpoint;
pub(crate) mod import;
pub mod init;
pub(crate) mod insights;
pub(crate) mod interrupt;
pub mod iso_timestamps;
pub mod mapping;
pub(crate) mod memory;
pub(crate) mod partition_pruning;
pub mod personalize;
pub(crate) mod project;
pub(crate) mod report;
pub(crate) mod retries;
pub(crate) mod row_flow;
pub(crate) mod run;
pub mod sink;
pub mod sources;
pub(crate) mod store;
#[cfg(test)]
mod test_random;
pub(crate) mod validate;
pub(crate) mod write;

pub use error::{Error, Result};
