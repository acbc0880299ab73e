//! Columns from a sample, checked by the scan: what JSON and CSV sources share so that a run reads
//! the export once instead of twice (once for the types, once for the rows).
//!
//! A run infers a source's columns from its first records ([`SAMPLE_RECORDS`], in the order full
//! inference reads them), probes a few later files, and its scan checks every other record
//! against the sample. When every record fits, the columns are those of a full inference, so the
//! rows are too. The first record that does not fit stops the scan with a [`SchemaMisfit`], and
//! the run starts again with every record's columns. `schema` and `explain` read every record.

use std::sync::atomic::{AtomicBool, Ordering};

use datafusion::common::Result;
use futures::{Stream, TryStreamExt};
use object_store::ObjectMeta;

/// Records a run infers its columns from before the scan: enough to meet a field that one event
/// in a few hundred carries, few enough that the sample costs a small share of a large export's
/// time.
pub const SAMPLE_RECORDS: usize = 20_000;

/// Files after the sample whose first records are checked against it before the scan, spread
/// over the rest of the listing (the last one included): an export whose fields changed over
/// time is then inferred from every record at once, not after a scan up to the change.
pub(super) const PROBE_FILES: usize = 16;
/// Records read from the start of each probed file.
pub(super) const PROBE_RECORDS: usize = 1_000;

/// A session extension: the JSON and CSV sources of this session infer their columns from a
/// sample and check the rest during the scan (a run), instead of reading every record first
/// (`schema`, `explain`, and a run's second attempt after a record did not fit).
/// Once planned, it says whether a source's sample left records unread (only then can a plan
/// made on the sample's columns differ from one made on every record's).
#[derive(Debug, Default)]
pub struct SampledInference {
    partial: AtomicBool,
}

impl SampledInference {
    /// Whether a source's columns came from a sample that did not read every record.
    pub fn partial(&self) -> bool {
        self.partial.load(Ordering::Relaxed)
    }

    /// Notes that a source's sample left records unread.
    pub(super) fn left_records_unread(&self) {
        self.partial.store(true, Ordering::Relaxed);
    }
}

/// `objects` in path order, the order inference reads them in: S3 lists in that order, a local
/// folder in the order of its directory entries, so without it the sample (and the order of the
/// columns) would depend on the store and on how the files were written.
pub(super) fn in_path_order(objects: &[ObjectMeta]) -> Vec<ObjectMeta> {
    let mut sorted = objects.to_vec();
    sorted.sort_by(|a, b| a.location.cmp(&b.location));
    sorted
}

/// What a sample read: its records, the files it read them from (the first ones of the listing),
/// and whether those were every record of the source.
pub(super) struct SampleTaken {
    pub records: usize,
    pub files: usize,
    pub whole: bool,
}

/// Takes the sample from `files`, each file's read of up to [`SAMPLE_RECORDS`] records in
/// listing order (`count` of them): files are taken until the sample's records are read or a file
/// stops at the limit. `add` takes each file's read with its index, and returns its records and
/// whether it stopped at the limit (records left unread).
pub(super) async fn take_sample<T>(
    files: impl Stream<Item = Result<T>>,
    count: usize,
    mut add: impl FnMut(usize, T) -> (usize, bool),
) -> Result<SampleTaken> {
    let mut files = std::pin::pin!(files);
    let mut taken = SampleTaken {
        records: 0,
        files: 0,
        whole: true,
    };
    while let Some(file) = files.try_next().await? {
        let (records, stopped) = add(taken.files, file);
        taken.files += 1;
        taken.records += records;
        if stopped || taken.records >= SAMPLE_RECORDS {
            taken.whole = !stopped && taken.files == count;
            break;
        }
    }
    Ok(taken)
}

/// Up to `n` indexes spread evenly over `0..len`, the last one included.
pub(super) fn spread(len: usize, n: usize) -> impl Iterator<Item = usize> {
    let n = n.min(len);
    (1..=n).map(move |k| k * len / n - 1)
}

/// A record the columns inferred from the sample do not cover: the run reads every record for
/// the schema and starts again.
#[derive(Debug, Clone)]
pub struct SchemaMisfit {
    /// The file, as named in messages.
    pub file: String,
    /// Where the record starts in the file (after decompression).
    pub offset: u64,
    /// The field (JSON) or column (CSV) whose type, or presence, is new.
    pub field: String,
    pub sampled: usize,
}

impl std::fmt::Display for SchemaMisfit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the record at byte {} of {} has field '{}' of a type (or presence) the first {} \
             {MISFIT_WORDS}",
            self.offset, self.file, self.field, self.sampled
        )
    }
}

impl std::error::Error for SchemaMisfit {}

/// Whether an error's text (a cluster's job, whose error came back as text) is a misfit's.
pub fn is_misfit_message(text: &str) -> bool {
    text.contains(MISFIT_WORDS)
}

/// The words of every misfit's message that no other message has.
const MISFIT_WORDS: &str = "records did not show";

/// The misfit among `e`'s causes, however the scan's error was wrapped on its way up.
pub fn find_misfit<'e>(e: &'e (dyn std::error::Error + 'static)) -> Option<&'e SchemaMisfit> {
    super::find_cause(e)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::error::DataFusionError;

    use super::*;

    #[test]
    fn probes_are_spread_over_the_rest_and_include_the_last_file() {
        assert_eq!(spread(5, 16).collect::<Vec<_>>(), [0, 1, 2, 3, 4]);
        let picked: Vec<usize> = spread(1000, 16).collect();
        assert_eq!(picked.len(), 16);
        assert_eq!(picked[0], 61);
        assert_eq!(picked[15], 999);
        assert!(picked.windows(2).all(|w| w[0] < w[1]));
        assert_eq!(spread(0, 16).count(), 0);
    }

    /// (records, stopped at the limit) of each file's read, taken as a sample of `count` files.
    fn taken(reads: &[(usize, bool)], count: usize) -> (usize, usize, bool) {
        let files = futures::stream::iter(reads.iter().map(|read| Ok(*read)));
        let mut seen = Vec::new();
        let taken = futures::executor::block_on(take_sample(files, count, |index, read| {
            seen.push(index);
            read
        }))
        .unwrap();
        assert_eq!(seen, (0..taken.files).collect::<Vec<_>>());
        (taken.records, taken.files, taken.whole)
    }

    #[test]
    fn a_sample_takes_files_until_its_records_are_read_or_one_stops_at_the_limit() {
        assert_eq!(taken(&[(100, false), (100, false)], 2), (200, 2, true));
        assert_eq!(taken(&[(20_000, true), (5, false)], 2), (20_000, 1, false));
        let (first, second) = ((15_000, false), (6_000, false));
        assert_eq!(taken(&[first, second, (5, false)], 3), (21_000, 2, false));
        // Past the budget on the last file, read to its end: every record.
        assert_eq!(taken(&[first, second], 2), (21_000, 2, true));
        assert_eq!(taken(&[], 0), (0, 0, true));
    }

    #[test]
    fn a_misfit_is_found_however_the_error_was_wrapped() {
        let misfit = SchemaMisfit {
            file: "/x/f.json".into(),
            offset: 7,
            field: "price".into(),
            sampled: 20_000,
        };
        let external = DataFusionError::External(Box::new(misfit));
        let shared = DataFusionError::Shared(Arc::new(external.context("reading")));
        let arrow = datafusion::arrow::error::ArrowError::ExternalError(Box::new(shared));
        let wrapped = crate::error::Error::from(DataFusionError::ArrowError(Box::new(arrow), None));
        let found = find_misfit(&wrapped).expect("found");
        assert_eq!(found.field, "price");
        assert!(is_misfit_message(&wrapped.to_string()));
        assert!(find_misfit(&DataFusionError::Execution("other".into())).is_none());
    }
}
