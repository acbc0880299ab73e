//! pengine: turns large historical data exports into Amazon Personalize datasets.
//!
//! Flow: a mapping file ([`mapping`]) registers sources ([`sources`], [`store`]) in a DataFusion
//! session ([`engine`]); the final query's batches are coerced and checked ([`personalize`]) and
//! streamed into CSV parts that are published atomically ([`sink`]); [`run`] ties it together.

pub mod allocator;
pub mod batch;
pub mod cli;
mod commands;
pub mod crawl;
pub mod dataset_plan;
pub mod describe;
pub mod distinct;
pub mod engine;
pub mod error;
pub mod explain;
pub mod failpoint;
pub mod init;
pub mod insights;
pub mod interrupt;
pub mod iso_timestamps;
pub mod mapping;
pub mod memory;
pub mod personalize;
pub(crate) mod project;
pub mod report;
pub mod retries;
pub mod row_flow;
pub(crate) mod run;
pub mod sink;
pub mod sources;
pub mod store;
#[cfg(test)]
mod test_random;
pub mod validate;
pub mod write;

pub use error::{Error, Result};
