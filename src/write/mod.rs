//! The write stage as a DataFusion execution-plan node.
//!
//! Everything a run does to the final query's rows (Personalize coercion, the row rules, the
//! insight counters, CSV encoding in Personalize's dialect, rolling parts and uploading them) runs
//! inside [`WriteExec`], one task per partition of the query. Being a plan node is what lets the
//! same stage run in this process today and on a cluster's executors later: whoever executes the
//! plan executes the writing, and its output ([`summary`]) says what was written.

mod exec;
mod files;
pub mod summary;

pub use exec::{WriteExec, WriteTarget};
pub use summary::WriteSummary;
