//! Counting keys in bounded memory: exact while the keys fit, sampled beyond.
//!
//! Keys are 64-bit hashes. While fewer than `cap` keys are kept, every key is counted exactly.
//! When the table fills, the sampling level rises: only keys whose hash has at least `level` low
//! zero bits are kept (half as many at each level), and every figure is scaled back by 2^level.
//! This keeps per-key counts for a uniform sample of keys (so "users with at least 2 interactions"
//! and "duplicated rows" stay estimable, which a plain distinct-count sketch cannot do) and marks
//! the figures approximate from the first level on.

use std::collections::HashMap;

use nohash_hasher::BuildNoHashHasher;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct SampledCounter {
    cap: usize,
    level: u32,
    counts: HashMap<u64, u32, BuildNoHashHasher<u64>>,
}

impl SampledCounter {
    pub fn new(cap: usize) -> Self {
        Self {
            cap: cap.max(16),
            level: 0,
            counts: HashMap::default(),
        }
    }

    #[inline]
    fn sampled(&self, hash: u64) -> bool {
        self.level == 0 || hash.trailing_zeros() >= self.level
    }

    /// Counts one occurrence of the key `hash`.
    #[inline]
    pub fn add(&mut self, hash: u64) {
        if !self.sampled(hash) {
            return;
        }
        *self.counts.entry(hash).or_insert(0) += 1;
        if self.counts.len() > self.cap {
            self.raise_level(self.level + 1);
        }
    }

    /// Counts the keys of one batch. Ids are skewed (a few users and items make most events), so
    /// the batch's keys are first counted in a small table that stays in cache, and the large one
    /// is probed once per distinct key instead of once per row. Same result as `add` on each.
    pub fn add_batch(
        &mut self,
        hashes: &[u64],
        scratch: &mut HashMap<u64, u32, BuildNoHashHasher<u64>>,
    ) {
        scratch.clear();
        for hash in hashes.iter().filter(|h| self.sampled(**h)) {
            *scratch.entry(*hash).or_insert(0) += 1;
        }
        for (hash, count) in scratch.drain() {
            // The level may have risen since the key was taken.
            if !self.sampled(hash) {
                continue;
            }
            *self.counts.entry(hash).or_insert(0) += count;
            if self.counts.len() > self.cap {
                self.raise_level(self.level + 1);
            }
        }
    }

    fn raise_level(&mut self, level: u32) {
        self.level = level.min(63);
        let level = self.level;
        self.counts.retain(|hash, _| hash.trailing_zeros() >= level);
    }

    /// Adds another counter's keys (same cap), keeping the coarser sampling.
    pub fn merge(&mut self, other: &SampledCounter) {
        if other.level > self.level {
            self.raise_level(other.level);
        }
        for (hash, count) in &other.counts {
            if self.sampled(*hash) {
                *self.counts.entry(*hash).or_insert(0) += count;
            }
        }
        while self.counts.len() > self.cap {
            self.raise_level(self.level + 1);
        }
    }

    fn scale(&self, n: u64) -> u64 {
        n << self.level
    }

    /// True once sampling started: the figures are estimates.
    pub fn is_approximate(&self) -> bool {
        self.level > 0
    }

    /// Distinct keys.
    pub fn distinct(&self) -> u64 {
        self.scale(self.counts.len() as u64)
    }

    /// Keys seen at least `n` times.
    pub fn keys_with_at_least(&self, n: u32) -> u64 {
        self.scale(self.counts.values().filter(|c| **c >= n).count() as u64)
    }

    /// Occurrences beyond the first of every key (duplicates).
    pub fn repeats(&self) -> u64 {
        self.scale(self.counts.values().map(|c| u64::from(c - 1)).sum())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mix(x: u64) -> u64 {
        // SplitMix64 finaliser: a well-spread stand-in for real hashes.
        let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    #[test]
    fn exact_under_the_cap() {
        let mut c = SampledCounter::new(1000);
        for i in 0..500 {
            c.add(mix(i));
            c.add(mix(i % 100));
        }
        assert!(!c.is_approximate());
        assert_eq!(c.distinct(), 500);
        assert_eq!(c.keys_with_at_least(2), 100);
        assert_eq!(c.repeats(), 500);
    }

    /// Batches counted through the small table give what counting key by key gives, across
    /// level rises (skewed keys, a small cap).
    #[test]
    fn batches_count_as_single_keys_do() {
        let mut one_by_one = SampledCounter::new(64);
        let mut batched = SampledCounter::new(64);
        let mut scratch = HashMap::default();
        for batch in 0..50u64 {
            // Skewed: key k*k % 5000 makes small keys frequent.
            let keys: Vec<u64> = (0..300u64)
                .map(|i| mix((batch * 300 + i).pow(2) % 5_000))
                .collect();
            keys.iter().for_each(|k| one_by_one.add(*k));
            batched.add_batch(&keys, &mut scratch);
            assert_eq!(batched.level, one_by_one.level, "batch {batch}");
            assert_eq!(batched.counts, one_by_one.counts, "batch {batch}");
        }
        assert!(batched.is_approximate());
    }

    #[test]
    fn sampled_estimates_are_close_and_merge() {
        let mut a = SampledCounter::new(4096);
        let mut b = SampledCounter::new(4096);
        for i in 0..100_000u64 {
            a.add(mix(i));
            if i % 4 == 0 {
                b.add(mix(i)); // a quarter of the keys seen twice
            }
        }
        a.merge(&b);
        assert!(a.is_approximate());
        let within = |got: u64, want: f64| (got as f64 - want).abs() / want < 0.1;
        assert!(within(a.distinct(), 100_000.0), "{}", a.distinct());
        assert!(
            within(a.keys_with_at_least(2), 25_000.0),
            "{}",
            a.keys_with_at_least(2)
        );
        assert!(within(a.repeats(), 25_000.0), "{}", a.repeats());
    }
}

/// Binary form, for keeping a dataset's ids beside its export: level, then (hash, count) pairs,
/// little-endian.
impl SampledCounter {
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(12 + self.counts.len() * 12);
        out.extend_from_slice(&self.level.to_le_bytes());
        out.extend_from_slice(&(self.counts.len() as u64).to_le_bytes());
        for (hash, count) in &self.counts {
            out.extend_from_slice(&hash.to_le_bytes());
            out.extend_from_slice(&count.to_le_bytes());
        }
        out
    }

    pub fn from_bytes(bytes: &[u8]) -> Option<Self> {
        let level = u32::from_le_bytes(bytes.get(0..4)?.try_into().ok()?);
        let n = u64::from_le_bytes(bytes.get(4..12)?.try_into().ok()?) as usize;
        let mut counts = HashMap::with_capacity_and_hasher(n, BuildNoHashHasher::default());
        for i in 0..n {
            let at = 12 + i * 12;
            let hash = u64::from_le_bytes(bytes.get(at..at + 8)?.try_into().ok()?);
            let count = u32::from_le_bytes(bytes.get(at + 8..at + 12)?.try_into().ok()?);
            counts.insert(hash, count);
        }
        Some(Self {
            cap: n.max(16),
            level,
            counts,
        })
    }

    /// Compares the keys of `self` (e.g. ids in interactions, with counts) with the keys of
    /// `other` (ids of a Users or Items dataset), on the coarser of the two samples.
    pub fn overlap(&self, other: &SampledCounter) -> Overlap {
        let level = self.level.max(other.level);
        let kept = |hash: &u64| level == 0 || hash.trailing_zeros() >= level;
        let mut occurrences = 0u64;
        let mut occurrences_missing = 0u64;
        let mut keys_missing = 0u64;
        for (hash, count) in self.counts.iter().filter(|(h, _)| kept(h)) {
            occurrences += u64::from(*count);
            if !other.counts.contains_key(hash) {
                occurrences_missing += u64::from(*count);
                keys_missing += 1;
            }
        }
        let other_keys: Vec<&u64> = other.counts.keys().filter(|h| kept(h)).collect();
        let other_unmatched = other_keys
            .iter()
            .filter(|h| !self.counts.contains_key(**h))
            .count() as u64;
        Overlap {
            approximate: level > 0,
            occurrences: occurrences << level,
            occurrences_missing: occurrences_missing << level,
            keys_missing: keys_missing << level,
            other_keys: (other_keys.len() as u64) << level,
            other_unmatched: other_unmatched << level,
        }
    }
}

/// How two key sets overlap (see [`SampledCounter::overlap`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overlap {
    pub approximate: bool,
    /// Occurrences in the first set (e.g. interactions).
    pub occurrences: u64,
    /// Occurrences whose key is not in the second set.
    pub occurrences_missing: u64,
    /// Distinct keys of the first set missing from the second.
    pub keys_missing: u64,
    /// Keys of the second set (e.g. users).
    pub other_keys: u64,
    /// Keys of the second set never seen in the first (e.g. users without interactions).
    pub other_unmatched: u64,
}

#[cfg(test)]
mod overlap_tests {
    use super::*;

    #[test]
    fn overlap_and_bytes_round_trip() {
        let mut interactions = SampledCounter::new(1000);
        for h in [1u64, 1, 2, 3, 3, 3] {
            interactions.add(h);
        }
        let mut users = SampledCounter::new(1000);
        for h in [1u64, 2, 4, 5] {
            users.add(h);
        }
        let users = SampledCounter::from_bytes(&users.to_bytes()).unwrap();
        let o = interactions.overlap(&users);
        assert_eq!(
            o,
            Overlap {
                approximate: false,
                occurrences: 6,
                occurrences_missing: 3,
                keys_missing: 1,
                other_keys: 4,
                other_unmatched: 2,
            }
        );
    }
}
