//! Dataset-level checks and data insights, computed in the same pass that writes the data: the
//! figures the service's own analysis reports, locally and before upload, in bounded memory.

pub mod cross;
pub mod finding;
pub mod findings;
pub mod sampler;
pub mod stats;

pub use finding::Severity;
pub use findings::Checks;
pub use stats::DatasetStats;
