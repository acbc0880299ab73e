//! Scale-out on Apache DataFusion Ballista: the same mapping files, planned here, executed by a
//! cluster's executors with pengine's write stage on every one of them.
//!
//! [`serve`] starts a pengine-built scheduler or executor (a stock cluster cannot decode pengine's
//! nodes: [`codec`]); [`submit`] sends a run's physical plan as one job and reads back what each
//! task wrote, which the run then commits as it commits a local run's parts.

pub mod codec;
pub mod serve;
pub mod submit;
