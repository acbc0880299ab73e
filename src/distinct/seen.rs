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
use super::slice::Slice;
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
    pub seen: RowFile,
    pub incoming: RowFile,
    pub level: u32,
}

enum State {
    InMemory(InMemory),
    Spilled {
        seen: RowFile,
        incoming: RowFileWriter,
    },
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

    /// Inserts a row; a `candidate` row found new is remembered as pending (emitted by
    /// [`Self::take_pending`]) instead of being emitted by the caller at once.
    pub fn insert(&mut self, hash: u64, row: &[u8], candidate: bool) -> Result<Outcome> {
        match &mut self.slices[slice_of(hash, self.level)] {
            State::InMemory(slice) => Ok(match slice.rows.insert(hash, row) {
                None => Outcome::Duplicate,
                Some(index) => {
                    if candidate {
                        slice.pending.push(index);
                    }
                    Outcome::New
                }
            }),
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
                State::Spilled { incoming, .. } => incoming.memory(),
            })
            .sum()
    }

    /// Keeps the memory within the reservation, spilling the largest slices in memory until it
    /// fits. At the last level nothing is spilled: the reservation grows past its budget.
    pub fn fit(&mut self, reservation: &MemoryReservation) -> Result<()> {
        loop {
            let memory = self.memory();
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
            if let State::Spilled { seen, incoming } = state {
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
