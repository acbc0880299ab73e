//! One slice of a distinct operator's seen rows in memory: a set of byte strings.
//!
//! This is the operator's inner loop (one lookup per input row, most of them for rows never seen
//! before), so it is laid out for that rather than taken from a general-purpose map:
//! - The table is one array of 8-byte slots, each holding a row's number and 32 bits of its
//!   hash, probed linearly. A lookup that misses reads one cache line in the common case, and
//!   never the row itself unless those 32 bits match (hashbrown keeps control bytes and entries
//!   apart, two lines per lookup, and its row numbers need the hash from elsewhere).
//! - Growing the table re-places slots from the bits they hold, without touching rows or hashes.
//! - Rows are appended to chunks that are never moved: growth allocates a new chunk instead of
//!   copying everything kept so far, as one growing vector does.

/// Largest chunk of row bytes; chunks start small and double up to this, so a slice holds at
/// most one partly filled chunk beyond its rows (its capacity counts against the memory budget).
const MAX_CHUNK: usize = 1 << 20;
const FIRST_CHUNK: usize = 4 << 10;
/// Slots in a table's first allocation.
const FIRST_SLOTS: usize = 64;

/// The bytes a vector allocates when one more item is pushed onto it: it doubles, to at least 4.
pub fn vector_growth<T>(vector: &Vec<T>) -> usize {
    match vector.len() == vector.capacity() {
        true => (vector.capacity() * 2).max(4) * std::mem::size_of::<T>(),
        false => 0,
    }
}

/// A set of rows (byte strings), each numbered in insertion order.
#[derive(Default)]
pub struct Slice {
    /// 0 when empty, else `hash's low 32 bits << 32 | (row number + 1)`. A power of two long.
    slots: Vec<u64>,
    /// Where each row starts: chunk, offset. It ends where the next row of its chunk starts, or
    /// at the end of the chunk.
    starts: Vec<(u32, u32)>,
    chunks: Vec<Vec<u8>>,
}

impl Slice {
    /// Row `index`'s bytes.
    pub fn row(&self, index: u32) -> &[u8] {
        let i = index as usize;
        let (chunk, start) = self.starts[i];
        let bytes = &self.chunks[chunk as usize];
        let end = match self.starts.get(i + 1) {
            Some(&(next_chunk, next_start)) if next_chunk == chunk => next_start as usize,
            _ => bytes.len(),
        };
        &bytes[start as usize..end]
    }

    pub fn len(&self) -> usize {
        self.starts.len()
    }

    /// Bytes allocated.
    pub fn memory(&self) -> usize {
        self.slots.capacity() * 8
            + self.starts.capacity() * 8
            + self.chunks.iter().map(Vec::capacity).sum::<usize>()
            + self.chunks.capacity() * std::mem::size_of::<Vec<u8>>()
    }

    /// Asks the CPU to fetch the table slot where a lookup of `hash` starts, so that it is in
    /// cache when the row comes (a hint: nothing is read or written).
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        if self.slots.is_empty() {
            return;
        }
        let slot = self
            .slots
            .as_ptr()
            .wrapping_add(hash as usize & (self.slots.len() - 1));
        // SAFETY: SSE is part of every x86_64 target, and a prefetch never faults nor
        // dereferences its address (which is inside `slots` anyway).
        #[cfg(target_arch = "x86_64")]
        unsafe {
            use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
            _mm_prefetch::<_MM_HINT_T0>(slot.cast());
        }
        // Other targets: no prefetch (the lookups are as before).
        #[cfg(not(target_arch = "x86_64"))]
        let _ = slot;
    }

    /// Bytes that inserting a new row of `len` bytes allocates beside what the slice holds: a
    /// larger table (the old one is freed once its slots have moved), a new chunk, a larger list
    /// of row starts.
    pub fn growth_bytes(&self, len: usize) -> usize {
        let table = match self.must_grow() {
            true => (self.slots.len() * 2).max(FIRST_SLOTS) * 8,
            false => 0,
        };
        let chunk = match self.fits(len) {
            true => 0,
            false => self.next_chunk(len) + vector_growth(&self.chunks),
        };
        table + chunk + vector_growth(&self.starts)
    }

    /// Whether a row of `len` bytes fits the last chunk.
    fn fits(&self, len: usize) -> bool {
        self.chunks
            .last()
            .is_some_and(|chunk| chunk.capacity() - chunk.len() >= len)
    }

    /// The size of the chunk a row of `len` bytes that does not fit the last one starts.
    fn next_chunk(&self, len: usize) -> usize {
        let previous = self.chunks.last().map_or(0, Vec::capacity);
        (previous * 2).clamp(FIRST_CHUNK, MAX_CHUNK).max(len)
    }

    /// At most 3/4 full, so that linear probing stays short.
    fn must_grow(&self) -> bool {
        (self.starts.len() + 1) * 4 > self.slots.len() * 3
    }

    /// The new row's number when `row` was not in the slice (it is now), else None.
    pub fn insert(&mut self, hash: u64, row: &[u8]) -> Option<u32> {
        if self.must_grow() {
            self.grow();
        }
        let tag = hash & 0xFFFF_FFFF;
        let mask = self.slots.len() - 1;
        let mut position = hash as usize & mask;
        loop {
            let slot = self.slots[position];
            if slot == 0 {
                break;
            }
            if slot >> 32 == tag && self.row((slot as u32) - 1) == row {
                return None;
            }
            position = (position + 1) & mask;
        }
        let index = u32::try_from(self.starts.len()).expect("a slice holds under 2^32 rows");
        let number = index.checked_add(1).expect("a slice holds under 2^32 rows");
        self.append(row);
        self.slots[position] = tag << 32 | u64::from(number);
        Some(index)
    }

    fn append(&mut self, row: &[u8]) {
        if !self.fits(row.len()) {
            self.chunks
                .push(Vec::with_capacity(self.next_chunk(row.len())));
        }
        let chunk_index = self.chunks.len() - 1;
        let chunk = &mut self.chunks[chunk_index];
        let start = u32::try_from(chunk.len()).expect("a chunk holds under 4 GiB");
        let chunk_index = u32::try_from(chunk_index).expect("under 2^32 chunks");
        chunk.extend_from_slice(row);
        self.starts.push((chunk_index, start));
    }

    /// Doubles the table, each slot going where its hash bits say in the larger one.
    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(FIRST_SLOTS);
        let mut slots = crate::allocator::zeroed_table(size);
        let mask = size - 1;
        for &slot in self.slots.iter().filter(|&&s| s != 0) {
            let mut position = (slot >> 32) as usize & mask;
            while slots[position] != 0 {
                position = (position + 1) & mask;
            }
            slots[position] = slot;
        }
        self.slots = slots;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::test_random::Random;

    fn hash(row: &[u8]) -> u64 {
        ahash::RandomState::with_seeds(1, 2, 3, 4).hash_one(row)
    }

    #[test]
    fn a_row_is_new_once_and_keeps_its_bytes_and_number() {
        let mut slice = Slice::default();
        assert_eq!(slice.insert(hash(b"a"), b"a"), Some(0));
        assert_eq!(slice.insert(hash(b""), b""), Some(1));
        assert_eq!(slice.insert(hash(b"a"), b"a"), None);
        assert_eq!(slice.insert(hash(b""), b""), None);
        assert_eq!(slice.insert(hash(b"bc"), b"bc"), Some(2));
        assert_eq!(slice.len(), 3);
        assert_eq!(
            [slice.row(0), slice.row(1), slice.row(2)],
            [&b"a"[..], b"", b"bc"]
        );
    }

    #[test]
    fn rows_with_equal_hashes_are_told_apart_by_their_bytes() {
        let mut slice = Slice::default();
        for (i, row) in [&b"x"[..], b"y", b"z"].iter().enumerate() {
            assert_eq!(slice.insert(42, row), Some(i as u32));
        }
        assert_eq!(slice.insert(42, b"y"), None);
        assert_eq!(slice.insert(42, b"w"), Some(3));
        assert_eq!(slice.row(3), b"w");
    }

    /// Random rows (some long, past a chunk; some empty; many repeated) against a std map, over
    /// many growths of the table and chunks.
    #[test]
    fn agrees_with_a_hash_map_over_growth() {
        let mut random = Random(7);
        let mut slice = Slice::default();
        let mut expected: HashMap<Vec<u8>, u32> = HashMap::new();
        for i in 0..60_000 {
            let row: Vec<u8> = match random.below(1000) {
                // Now and then longer than a chunk: a run of one byte and a short random tail.
                _ if i % 7_000 == 0 => {
                    let mut row = vec![b'x'; MAX_CHUNK + random.below(5000)];
                    row.extend((0..2).map(|_| b'a' + random.below(3) as u8));
                    row
                }
                0..=40 => Vec::new(),
                // Few distinct values among short rows, so that many rows repeat.
                _ => (0..random.below(40))
                    .map(|_| b'a' + random.below(3) as u8)
                    .collect(),
            };
            let new = slice.insert(hash(&row), &row);
            match expected.get(&row) {
                Some(_) => assert_eq!(new, None, "a row of {} bytes was seen", row.len()),
                None => {
                    assert_eq!(
                        new,
                        Some(expected.len() as u32),
                        "a row of {} bytes is new",
                        row.len()
                    );
                    expected.insert(row, new.unwrap());
                }
            }
            if i % 10_000 == 0 {
                // Everything kept reads back whole.
                for (row, &index) in &expected {
                    assert_eq!(slice.row(index), &row[..]);
                }
            }
        }
        assert_eq!(slice.len(), expected.len());
        for (row, &index) in &expected {
            assert_eq!(slice.row(index), &row[..]);
        }
        assert!(slice.memory() >= expected.keys().map(Vec::len).sum::<usize>());
    }
}
