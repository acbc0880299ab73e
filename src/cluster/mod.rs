//! Scale-out on Apache DataFusion Ballista: the same mapping files, planned here, executed by a
//! cluster's executors with pengine's write stage on every one of them.
//!
//! [`serve`] starts a pengine-built scheduler or executor (a stock cluster cannot decode pengine's
//! nodes: [`codec`]); [`submit`] sends a run's physical plan as one job and reads back what each
//! task wrote, which the run then commits as it commits a local run's parts.

/// Largest message between a client and an executor: a write task's summary carries its insight
/// counters (a few MB at most; Ballista's default allows 16 MiB).
const MAX_MESSAGE_BYTES: usize = 64 << 20;

pub mod codec;
pub mod progress;
pub mod serve;
pub mod submit;

#[cfg(test)]
mod tests;
