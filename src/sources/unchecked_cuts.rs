//! The cuts a run's byte ranges started at, checked before a failed run reports its error.
//!
//! A range past a file's start may begin inside a record: a `}{` in a JSON string, a JSON record
//! spread over lines, a quoted line break in CSV. The range before the cut finds out when it reads
//! past its end, and the run then reads such files whole ([`SplitMismatch`]). But the range after
//! the cut runs at the same time, and a row it made up of the record's inside can stop the run
//! first: a row that breaks a Personalize rule under `--on-invalid fail` is an error that names a
//! row no whole read has. So each range notes its cut here, and a run that fails checks them:
//! a cut inside a record turns the failure into the mismatch it really is. Checking a cut reads
//! its file up to it, so a failed run reads at most [`CHECK_BUDGET_BYTES`] for it (a failure on
//! terabytes of large files in an object store must not download them first).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::common::Result;

use super::split::SplitMismatch;

/// Bytes a failed run reads at most to check its cuts (each file from its start to its last cut).
pub const CHECK_BUDGET_BYTES: u64 = 4 << 30;

/// How the cuts of one file are checked (reading it as a whole read would).
#[async_trait]
pub trait CutCheck: Send + Sync {
    /// The first of `cuts` (file offsets, ascending) that falls inside a record of the whole
    /// file, if any.
    async fn first_inside_a_record(&self, cuts: &[u64]) -> Result<Option<u64>>;
}

struct FileCuts {
    check: Arc<dyn CutCheck>,
    cuts: BTreeSet<u64>,
}

/// A session extension: every cut a range of this run started at, by file (as named in messages).
#[derive(Default)]
pub struct UncheckedCuts {
    files: Mutex<BTreeMap<String, FileCuts>>,
}

impl std::fmt::Debug for UncheckedCuts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        write!(f, "UncheckedCuts({} file(s))", files.len())
    }
}

impl UncheckedCuts {
    /// Notes that a range of `file` started at `cut`; `check` makes the file's checker the first
    /// time.
    pub fn note(&self, file: &str, cut: u64, check: impl FnOnce() -> Arc<dyn CutCheck>) {
        let mut files = self.files.lock().unwrap_or_else(|p| p.into_inner());
        files
            .entry(file.to_string())
            .or_insert_with(|| FileCuts {
                check: check(),
                cuts: BTreeSet::new(),
            })
            .cuts
            .insert(cut);
    }

    /// The first cut (files in name order) that is no record start, as the mismatch a range
    /// would have stopped with; files past [`CHECK_BUDGET_BYTES`] are not checked.
    pub async fn mismatch(&self) -> Result<Option<SplitMismatch>> {
        self.mismatch_within(CHECK_BUDGET_BYTES).await
    }

    /// [`Self::mismatch`] reading at most `budget` bytes.
    async fn mismatch_within(&self, budget: u64) -> Result<Option<SplitMismatch>> {
        let files: Vec<(String, Arc<dyn CutCheck>, Vec<u64>)> = {
            let files = self.files.lock().unwrap_or_else(|p| p.into_inner());
            files
                .iter()
                .map(|(file, cuts)| {
                    let at: Vec<u64> = cuts.cuts.iter().copied().collect();
                    (file.clone(), Arc::clone(&cuts.check), at)
                })
                .collect()
        };
        let mut read = 0u64;
        for (index, (file, check, cuts)) in files.iter().enumerate() {
            read += cuts.last().copied().unwrap_or(0);
            if read > budget {
                tracing::warn!(
                    "the cuts of {} file(s) read in byte ranges were not checked (more than {} \
                     GiB to read); if the error names a row the source does not hold, run with \
                     SET datafusion.optimizer.repartition_file_scans = false; in the mapping \
                     file",
                    files.len() - index,
                    budget >> 30
                );
                break;
            }
            if let Some(boundary) = check.first_inside_a_record(cuts).await? {
                return Ok(Some(SplitMismatch {
                    file: file.clone(),
                    boundary,
                    detail: "a record crosses it: found when the run failed, so its error may \
                             have come from the record's inside"
                        .into(),
                }));
            }
        }
        Ok(None)
    }

    /// Files with a noted cut.
    pub fn files(&self) -> usize {
        self.files.lock().unwrap_or_else(|p| p.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records start at the multiples of 10.
    struct Tens;

    #[async_trait]
    impl CutCheck for Tens {
        async fn first_inside_a_record(&self, cuts: &[u64]) -> Result<Option<u64>> {
            Ok(cuts.iter().copied().find(|c| c % 10 != 0))
        }
    }

    #[tokio::test]
    async fn a_cut_inside_a_record_is_the_first_one_found_per_file() {
        let cuts = UncheckedCuts::default();
        assert!(cuts.mismatch().await.unwrap().is_none());
        cuts.note("b.json", 30, || Arc::new(Tens));
        cuts.note("a.json", 20, || Arc::new(Tens));
        assert!(cuts.mismatch().await.unwrap().is_none());
        cuts.note("b.json", 45, || unreachable!("one checker per file"));
        cuts.note("b.json", 41, || unreachable!("one checker per file"));
        let found = cuts
            .mismatch()
            .await
            .unwrap()
            .expect("41 is inside a record");
        assert_eq!((found.file.as_str(), found.boundary), ("b.json", 41));
        assert!(SplitMismatch::is_in_message(&found.to_string()));
        assert_eq!(cuts.files(), 2);
        // Past the budget a file is not checked: a.json's cuts (to 20) fit 40 bytes, b.json's
        // (to 45) do not.
        assert!(cuts.mismatch_within(40).await.unwrap().is_none());
        assert!(cuts.mismatch_within(65).await.unwrap().is_some());
    }
}
