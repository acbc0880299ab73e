//! The rows a distinct operator has seen, in memory up to its budget and on disk beyond it.
//!
//! Rows are byte strings ([`super::codec`]: equal rows are equal bytes). The hash space is cut
//! into [`FANOUT`] slices, each a set of rows in memory ([`super::slice`]); when memory runs out
//! the largest slice still in memory goes to disk (its rows to a "seen" file, rows not yet emitted
//! to an "incoming" file) and every later row of that slice is appended to its incoming file
//! undecided. A spilled slice is settled afterwards on its own, with the next bits of the hash
//! cutting it again if it still does not fit (hybrid hash partitioning).

use ahash::RandomState;
use datafusion::arrow::array::ArrayRef;
use datafusion::error::Result;
use datafusion::execution::memory_pool::MemoryReservation;

use super::codec::RowCodec;
use super::slice::{Slice, vector_growth};
use super::spill::{RowFile, RowFileWriter, SpillFiles};

/// Slices of the hash space per level.
pub const FANOUT: usize = 16;
/// Levels of re-cutting before a slice is kept in memory whatever its size: 4 bits each, taken
/// from the hash's bits 32..56 (a slice's table places rows by the low 32 bits).
pub const MAX_LEVEL: u32 = 6;

/// The hash of a row's bytes. Fixed seeds: the same rows always take the same path.
pub fn row_hash(hasher: &RandomState, row: &[u8]) -> u64 {
    hasher.hash_one(row)
}

fn slice_of(hash: u64, level: u32) -> usize {
    ((hash >> (32 + 4 * level)) & (FANOUT as u64 - 1)) as usize
}

/// One slice's rows in memory, and those of them not yet emitted.
#[derive(Default)]
struct InMemory {
    rows: Slice,
    /// Rows inserted as candidates and not yet emitted (only while settling spilled slices).
    pending: Vec<u32>,
}

impl InMemory {
    fn memory(&self) -> usize {
        self.rows.memory() + self.pending.capacity() * 4
    }
}

/// A slice that went to disk: what was seen (and emitted) before, and what came after.
pub struct SpilledSlice {
    /// Rows emitted: those in memory when the slice went to disk, then those settled after.
    pub seen: Vec<RowFile>,
    pub incoming: RowFile,
    pub level: u32,
}

enum State {
    InMemory(InMemory),
    Spilled {
        seen: RowFile,
        /// Rows known to be emitted that came after the slice went to disk (while settling).
        seen_later: Option<RowFileWriter>,
        incoming: RowFileWriter,
    },
}

/// What an inserted row is to the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Row {
    /// An input row: the caller emits it at once when it is new.
    Input,
    /// A row emitted before (a spilled slice's seen rows, settled).
    Emitted,
    /// A row not emitted yet (a spilled slice's incoming rows): when new, it is kept pending,
    /// emitted by [`SeenRows::next_pending`].
    Candidate,
}

/// What happened to an inserted row.
#[derive(Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Seen before: a duplicate.
    Duplicate,
    /// First seen, kept in memory.
    New,
    /// Its slice is on disk: decided later.
    Deferred,
}

/// The seen rows of one level of the hash space.
pub struct SeenRows {
    level: u32,
    slices: Vec<State>,
    hasher: RandomState,
    files: SpillFiles,
    /// Where [`Self::next_pending`] goes on: slice, position in its pending rows.
    pending_cursor: (usize, usize),
}

impl SeenRows {
    pub fn new(level: u32, hasher: RandomState, files: SpillFiles) -> Self {
        Self {
            level,
            slices: (0..FANOUT)
                .map(|_| State::InMemory(InMemory::default()))
                .collect(),
            hasher,
            files,
            pending_cursor: (0, 0),
        }
    }

    pub fn hash(&self, row: &[u8]) -> u64 {
        row_hash(&self.hasher, row)
    }

    /// Prefetches the table slot where `hash` is looked up (see [`Slice::prefetch`]).
    pub fn prefetch(&self, hash: u64) {
        if let State::InMemory(slice) = &self.slices[slice_of(hash, self.level)] {
            slice.rows.prefetch(hash);
        }
    }

    /// Inserts a row. What the slice allocates for it (a larger table beside the old one, a
    /// chunk) is reserved first, spilling slices to make room for it (the row's own among
    /// them), so that the memory held stays within the reservation between two [`Self::fit`]s.
    pub fn insert(
        &mut self,
        hash: u64,
        row: &[u8],
        kind: Row,
        reservation: &MemoryReservation,
    ) -> Result<Outcome> {
        let index = slice_of(hash, self.level);
        if let State::InMemory(slice) = &self.slices[index] {
            let pending = match kind {
                Row::Candidate => vector_growth(&slice.pending),
                _ => 0,
            };
            let growth = slice.rows.growth_bytes(row.len()) + pending;
            if growth > 0 {
                self.make_room(growth, reservation)?;
            }
        }
        match &mut self.slices[index] {
            State::InMemory(slice) => Ok(match slice.rows.insert(hash, row) {
                None => Outcome::Duplicate,
                Some(index) => {
                    if kind == Row::Candidate {
                        slice.pending.push(index);
                    }
                    Outcome::New
                }
            }),
            // Emitted already: it must not come back as a candidate when the slice is settled.
            State::Spilled { seen_later, .. } if kind == Row::Emitted => {
                let writer = match seen_later {
                    Some(writer) => writer,
                    None => seen_later.insert(self.files.writer("distinct rows seen")?),
                };
                writer.write_row(row)?;
                Ok(Outcome::Deferred)
            }
            State::Spilled { incoming, .. } => {
                incoming.write_row(row)?;
                Ok(Outcome::Deferred)
            }
        }
    }

    /// Bytes held in memory.
    pub fn memory(&self) -> usize {
        self.slices
            .iter()
            .map(|s| match s {
                State::InMemory(slice) => slice.memory(),
                State::Spilled {
                    seen_later,
                    incoming,
                    ..
                } => incoming.memory() + seen_later.as_ref().map_or(0, RowFileWriter::memory),
            })
            .sum()
    }

    /// Keeps the memory within the reservation, spilling the largest slices in memory until it
    /// fits. At the last level nothing is spilled: the reservation grows past its budget.
    pub fn fit(&mut self, reservation: &MemoryReservation) -> Result<()> {
        self.make_room(0, reservation)
    }

    /// [`Self::fit`] with `extra` bytes more than the memory held (about to be allocated).
    fn make_room(&mut self, extra: usize, reservation: &MemoryReservation) -> Result<()> {
        loop {
            let memory = self.memory() + extra;
            if reservation.try_resize(memory).is_ok() {
                return Ok(());
            }
            if self.level >= MAX_LEVEL || !self.spill_largest()? {
                reservation.resize(memory);
                return Ok(());
            }
        }
    }

    /// Moves the largest in-memory slice to disk; false when none holds a row.
    fn spill_largest(&mut self) -> Result<bool> {
        let largest = self
            .slices
            .iter()
            .enumerate()
            .filter_map(|(i, s)| match s {
                State::InMemory(slice) if slice.rows.len() > 0 => Some((slice.memory(), i)),
                _ => None,
            })
            .max();
        let Some((_, index)) = largest else {
            return Ok(false);
        };
        let State::InMemory(slice) = std::mem::replace(
            &mut self.slices[index],
            State::InMemory(InMemory::default()),
        ) else {
            unreachable!("chosen among the slices in memory")
        };
        let mut pending = vec![false; slice.rows.len()];
        for &i in &slice.pending {
            pending[i as usize] = true;
        }
        let mut seen = self.files.writer("distinct rows seen")?;
        let mut incoming = self.files.writer("distinct rows undecided")?;
        for (i, &is_pending) in pending.iter().enumerate() {
            let row = slice.rows.row(i as u32);
            if is_pending {
                incoming.write_row(row)?;
            } else {
                seen.write_row(row)?;
            }
        }
        self.slices[index] = State::Spilled {
            seen: seen.finish()?,
            seen_later: None,
            incoming,
        };
        Ok(true)
    }

    /// Up to `max` of the rows inserted as candidates and found new (slice by slice, each once),
    /// as Arrow columns; None when all have been taken.
    pub fn next_pending(&mut self, max: usize, codec: &RowCodec) -> Result<Option<Vec<ArrayRef>>> {
        let (mut slice_index, mut position) = self.pending_cursor;
        let mut rows = Vec::with_capacity(max);
        while rows.len() < max && slice_index < FANOUT {
            if let State::InMemory(slice) = &self.slices[slice_index]
                && let Some(&index) = slice.pending.get(position)
            {
                rows.push(slice.rows.row(index));
                position += 1;
                continue;
            }
            slice_index += 1;
            position = 0;
        }
        if rows.is_empty() {
            return Ok(None);
        }
        let columns = codec.decode(&rows)?;
        self.pending_cursor = (slice_index, position);
        Ok(Some(columns))
    }

    /// Ends this level: the slices that went to disk, to be settled at the next level.
    pub fn finish(self) -> Result<Vec<SpilledSlice>> {
        let mut spilled = Vec::new();
        for state in self.slices {
            if let State::Spilled {
                seen,
                seen_later,
                incoming,
            } = state
            {
                let mut seen = vec![seen];
                if let Some(later) = seen_later {
                    seen.push(later.finish()?);
                }
                spilled.push(SpilledSlice {
                    seen,
                    incoming: incoming.finish()?,
                    level: self.level + 1,
                });
            }
        }
        Ok(spilled)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::execution::disk_manager::DiskManagerBuilder;
    use datafusion::execution::memory_pool::{GreedyMemoryPool, MemoryConsumer, MemoryPool};
    use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;

    use super::*;

    /// Seen rows at `level` reserving from a pool of `limit` bytes, spilling to temporary files.
    fn seen_rows(level: u32, limit: usize) -> (SeenRows, MemoryReservation) {
        let pool: Arc<dyn MemoryPool> = Arc::new(GreedyMemoryPool::new(limit));
        let reservation = MemoryConsumer::new("t")
            .with_can_spill(true)
            .register(&pool);
        let disk = Arc::new(DiskManagerBuilder::default().build().unwrap());
        let files = SpillFiles::new(disk, &ExecutionPlanMetricsSet::new(), 0);
        let seen = SeenRows::new(level, RandomState::with_seeds(1, 2, 3, 4), files);
        (seen, reservation)
    }

    /// Rows emitted before (a spilled slice's seen rows, settled) stay seen rows when their slice
    /// goes to disk halfway through them: were they written with the undecided rows, settling
    /// the slice would emit them again.
    #[test]
    fn emitted_rows_of_a_slice_spilled_while_settling_stay_seen() {
        let (mut seen, reservation) = seen_rows(1, 2 << 20);
        let rows = 200_000u32;
        for i in 0..rows {
            let row = i.to_le_bytes();
            let hash = seen.hash(&row);
            seen.insert(hash, &row, Row::Emitted, &reservation).unwrap();
            seen.fit(&reservation).unwrap();
        }
        let spilled = seen.finish().unwrap();
        assert!(!spilled.is_empty());
        let (mut on_disk, mut undecided) = (0, 0);
        for slice in &spilled {
            for file in &slice.seen {
                let mut reader = file.reader().unwrap();
                reader
                    .for_each_row(|_| {
                        on_disk += 1;
                        Ok(())
                    })
                    .unwrap();
            }
            undecided += slice.incoming.rows();
        }
        assert_eq!(undecided, 0);
        assert!(on_disk > u64::from(rows) / 2, "{on_disk}");
    }

    /// Rows inserted one by one into a small pool never hold more memory than the pool, not even
    /// between two checks: what an insert allocates (a larger table beside the old, a chunk, a
    /// longer list) is reserved before it is allocated, and a slice that cannot grow goes to disk
    /// instead.
    #[test]
    fn memory_held_stays_within_the_pool_while_tables_grow() {
        // Room for the spill files' write buffers (64 KiB a slice) and many tables' growths.
        let limit = 4 << 20;
        let (mut seen, reservation) = seen_rows(0, limit);
        let (mut new, mut deferred) = (0, 0);
        for i in 0..300_000u32 {
            let row = i.to_le_bytes();
            let hash = seen.hash(&row);
            match seen.insert(hash, &row, Row::Input, &reservation).unwrap() {
                Outcome::New => new += 1,
                Outcome::Deferred => deferred += 1,
                Outcome::Duplicate => panic!("row {i} is new"),
            }
            // Tables, row starts, chunks and write buffers: what the slices have allocated.
            let held = seen.memory();
            assert!(held <= reservation.size(), "row {i}: {held} bytes");
            assert!(reservation.size() <= limit, "row {i}: {held} bytes");
            seen.fit(&reservation).unwrap();
        }
        assert!(new > 100_000 && deferred > 10_000, "{new} {deferred}");
    }
}
