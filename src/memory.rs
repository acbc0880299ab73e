//! Memory pools: one limit shared by every dataset of a run, and a cap that makes spilling
//! operators spill early, so sort-merge joins finish in a small pool.
//!
//! [`SharedMemory`] is the whole `--memory-limit`: datasets running at once draw from it through
//! a [`DatasetSharePool`] each, which lets one dataset hold at most an equal share while others
//! are still running (so none is starved) and the whole limit once it runs alone.
//!
//! DataFusion's `FairSpillPool` shares memory among the spillable consumers registered *so far*.
//! A sort-merge join sorts its left input completely before the right one starts, so the left sort
//! is alone, takes the whole pool, keeps its data in memory and hands it to an unspillable merge;
//! the right sort then has nothing left. Capping every spillable consumer at a fixed share of the
//! pool makes each sort spill once it holds its share, which leaves room for the other side.
//!
//! A share is also split between a dataset's partitions, and a sort cannot spill below one batch
//! ready to sort: [`SharedMemory::partitions`] keeps every partition's part at least
//! [`PARTITION_MEMORY`], whatever the number of cores.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use datafusion::common::{DataFusionError, Result};
use datafusion::execution::memory_pool::{
    FairSpillPool, MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation, TrackConsumersPool,
};

/// The least memory one partition of a query gets: its sort holds a batch ready to sort (which
/// DataFusion reserves at twice the batch), its merge reservation and a batch in the final merge.
/// 8,192 rows of 200 bytes make 1.6 MB batches, so about 5 MB; below that the sort fails whether
/// it spills or not (16 MiB for three datasets on 8 partitions each failed at the first batch).
pub const PARTITION_MEMORY: usize = 8 * 1024 * 1024;

/// The memory limit of a whole run, shared by the datasets running in it.
#[derive(Debug, Clone)]
pub struct SharedMemory {
    /// Spillable consumers share fairly; tracking names the largest consumers in errors.
    pool: Arc<dyn MemoryPool>,
    limit: usize,
    /// Datasets currently running (each holds a [`Participation`]).
    running: Arc<AtomicUsize>,
    /// What all datasets hold now, and the most they ever held together.
    held: Arc<AtomicUsize>,
    peak: Arc<AtomicUsize>,
}

impl SharedMemory {
    pub fn new(limit: usize) -> Self {
        let top = NonZeroUsize::new(5).expect("5 is not zero");
        Self {
            pool: Arc::new(TrackConsumersPool::new(FairSpillPool::new(limit), top)),
            limit,
            running: Arc::new(AtomicUsize::new(0)),
            held: Arc::new(AtomicUsize::new(0)),
            peak: Arc::new(AtomicUsize::new(0)),
        }
    }

    pub fn limit(&self) -> usize {
        self.limit
    }

    /// The most memory the datasets held at once.
    pub fn peak(&self) -> usize {
        self.peak.load(Ordering::Relaxed)
    }

    /// Counts a dataset as running until the returned value is dropped.
    pub fn participate(&self) -> Participation {
        self.running.fetch_add(1, Ordering::SeqCst);
        Participation {
            running: Arc::clone(&self.running),
        }
    }

    /// What one dataset may hold now: an equal share of the limit among the running datasets.
    pub fn share(&self) -> usize {
        self.limit / self.running.load(Ordering::SeqCst).max(1)
    }

    /// Partitions a dataset starting now runs on: `threads`, but no more than its share gives
    /// [`PARTITION_MEMORY`] each (at least one).
    pub fn partitions(&self, threads: usize) -> usize {
        (self.share() / PARTITION_MEMORY).clamp(1, threads.max(1))
    }

    /// A pool for one dataset's session.
    pub fn dataset_pool(&self, dataset: &str) -> DatasetSharePool {
        DatasetSharePool {
            shared: self.clone(),
            dataset: dataset.to_string(),
            held: AtomicUsize::new(0),
        }
    }
}

/// A running dataset's place in a [`SharedMemory`]; dropping it lets the others grow.
#[derive(Debug)]
pub struct Participation {
    running: Arc<AtomicUsize>,
}

impl Drop for Participation {
    fn drop(&mut self) {
        self.running.fetch_sub(1, Ordering::SeqCst);
    }
}

/// One dataset's view of the shared pool: growth beyond its share fails (a spillable consumer
/// then spills; a hash join fails over to sort-merge joins).
#[derive(Debug)]
pub struct DatasetSharePool {
    shared: SharedMemory,
    dataset: String,
    held: AtomicUsize,
}

impl std::fmt::Display for DatasetSharePool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}'s share of a {} byte pool",
            self.dataset, self.shared.limit
        )
    }
}

impl DatasetSharePool {
    /// Counts memory the inner pool granted, for this dataset and for the run's peak.
    fn added(&self, bytes: usize) {
        self.held.fetch_add(bytes, Ordering::SeqCst);
        let total = self.shared.held.fetch_add(bytes, Ordering::SeqCst) + bytes;
        self.shared.peak.fetch_max(total, Ordering::Relaxed);
    }

    fn removed(&self, bytes: usize) {
        self.held.fetch_sub(bytes, Ordering::SeqCst);
        self.shared.held.fetch_sub(bytes, Ordering::SeqCst);
    }
}

impl MemoryPool for DatasetSharePool {
    fn name(&self) -> &str {
        "dataset-share"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.shared.pool.register(consumer)
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.shared.pool.unregister(consumer)
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.shared.pool.grow(reservation, additional);
        self.added(additional);
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.shared.pool.shrink(reservation, shrink);
        self.removed(shrink);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> Result<()> {
        let share = self.shared.share();
        let held = self.held.load(Ordering::SeqCst);
        if held + additional > share {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{} of {} cannot grow by {additional} bytes: the dataset holds {held} of its \
                 {share} byte share of the memory limit",
                reservation.consumer().name(),
                self.dataset,
            )));
        }
        self.shared.pool.try_grow(reservation, additional)?;
        self.added(additional);
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.held.load(Ordering::SeqCst)
    }

    fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit::Finite(self.shared.share())
    }
}

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

    #[test]
    fn running_datasets_share_the_limit_and_the_last_one_gets_it_all() {
        let shared = SharedMemory::new(900);
        let first = shared.participate();
        let second = shared.participate();
        let third = shared.participate();
        let a: Arc<dyn MemoryPool> = Arc::new(shared.dataset_pool("a"));
        let b: Arc<dyn MemoryPool> = Arc::new(shared.dataset_pool("b"));
        let hash_a = MemoryConsumer::new("HashJoinInput").register(&a);
        assert!(hash_a.try_grow(300).is_ok());
        let error = hash_a.try_grow(1).unwrap_err().to_string();
        assert!(
            error.contains("HashJoinInput") && error.contains("share"),
            "{error}"
        );
        // b is not starved by a.
        let sort_b = MemoryConsumer::new("sort")
            .with_can_spill(true)
            .register(&b);
        assert!(sort_b.try_grow(300).is_ok());
        drop((first, second));
        // Alone, a may use what b does not hold.
        assert!(hash_a.try_grow(300).is_ok());
        assert!(hash_a.try_grow(301).is_err());
        assert_eq!(shared.peak(), 900);
        drop(sort_b);
        assert_eq!(b.reserved(), 0);
        drop(third);
    }

    #[test]
    fn a_small_share_runs_on_fewer_partitions() {
        let shared = SharedMemory::new(16 * 1024 * 1024);
        assert_eq!(shared.partitions(8), 2);
        let running: Vec<Participation> = (0..3).map(|_| shared.participate()).collect();
        // A third of 16 MiB feeds one partition, whatever the threads.
        assert_eq!(shared.partitions(8), 1);
        assert_eq!(shared.partitions(1), 1);
        drop(running);
        let large = SharedMemory::new(512 * 1024 * 1024);
        assert_eq!(large.partitions(3), 3);
        assert_eq!(large.partitions(100), 64);
        assert_eq!(large.partitions(0), 1);
    }

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
