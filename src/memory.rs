//! A memory pool that makes spilling operators spill early, so sort-merge joins finish in a small
//! pool.
//!
//! DataFusion's `FairSpillPool` shares memory among the spillable consumers registered *so far*.
//! A sort-merge join sorts its left input completely before the right one starts, so the left sort
//! is alone, takes the whole pool, keeps its data in memory and hands it to an unspillable merge;
//! the right sort then has nothing left. Capping every spillable consumer at a fixed share of the
//! pool makes each sort spill once it holds its share, which leaves room for the other side.

use datafusion::common::{DataFusionError, Result};
use datafusion::execution::memory_pool::{
    MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};

/// Wraps a pool; spillable consumers may hold at most `cap` bytes each.
#[derive(Debug)]
pub struct SpillCapPool<P> {
    inner: P,
    cap: usize,
}

impl<P: MemoryPool> SpillCapPool<P> {
    pub fn new(inner: P, cap: usize) -> Self {
        Self { inner, cap }
    }
}

impl<P: MemoryPool> std::fmt::Display for SpillCapPool<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} with spillable consumers capped at {} bytes",
            self.inner, self.cap
        )
    }
}

impl<P: MemoryPool> MemoryPool for SpillCapPool<P> {
    fn name(&self) -> &str {
        "spill-cap"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.inner.register(consumer)
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.inner.unregister(consumer)
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.inner.grow(reservation, additional)
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.inner.shrink(reservation, shrink)
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        if reservation.consumer().can_spill() && reservation.size() + additional > self.cap {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{} holds its share of the memory limit ({} bytes); spilling",
                reservation.consumer().name(),
                self.cap
            )));
        }
        self.inner.try_grow(reservation, additional)
    }

    fn reserved(&self) -> usize {
        self.inner.reserved()
    }

    fn memory_limit(&self) -> MemoryLimit {
        self.inner.memory_limit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::execution::memory_pool::GreedyMemoryPool;
    use std::sync::Arc;

    #[test]
    fn spillable_consumers_are_capped_others_are_not() {
        let pool: Arc<dyn MemoryPool> =
            Arc::new(SpillCapPool::new(GreedyMemoryPool::new(1000), 100));
        let spillable = MemoryConsumer::new("sort")
            .with_can_spill(true)
            .register(&pool);
        assert!(spillable.try_grow(100).is_ok());
        assert!(spillable.try_grow(1).is_err());
        let fixed = MemoryConsumer::new("hash").register(&pool);
        assert!(fixed.try_grow(500).is_ok());
    }
}
