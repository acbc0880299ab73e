//! The CSV format's settings: the dialect, the record limit, the encoding, whether large files
//! are read in byte ranges, and the files that must be read whole. Apart from the format's
//! behaviour (csv.rs) so that its inference in ranges can take them without importing it.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use datafusion::datasource::file_format::FileFormat;
use datafusion::execution::object_store::ObjectStoreUrl;

use super::bad_records::BadRecordLog;
use super::csv_kinds::CsvSample;
use super::csv_options::CsvDialect;
use super::csv_ranges::CsvText;
use super::csv_records::DEFAULT_MAX_RECORD_BYTES;
use super::encoding::TextEncoding;
use super::sampled::SampledInference;
use super::unchecked_cuts::UncheckedCuts;

/// CSV read by pengine: its own inference and its own record reader (bad records set aside);
/// DataFusion's CSV format only names the extension.
#[derive(Debug, Clone)]
pub struct ExportCsvFormat {
    pub(super) inner: Arc<dyn FileFormat>,
    pub(super) dialect: CsvDialect,
    /// Longest record read; a longer one is a bad record.
    pub max_record_bytes: u64,
    pub bad_records: Arc<BadRecordLog>,
    /// The store the files are on, to name them ([`super::file_name`]).
    pub store_url: ObjectStoreUrl,
    /// The files' text encoding (`'format.encoding'`).
    pub encoding: TextEncoding,
    /// Whether large files may be read in byte ranges ([`super::csv_ranges`]).
    pub split: bool,
    /// Whether a large file read whole (a compressed one) may be parsed in segments of its text
    /// ([`super::csv_scan`]): as `split`, and with cores to spare for it.
    pub segments: bool,
    /// Files whose inference in byte ranges found a cut inside a record: the scan reads them
    /// whole.
    pub(super) read_whole: Arc<Mutex<HashSet<String>>>,
    /// Records of a file to infer its columns from; `None` reads them all.
    pub(super) infer_limit: Option<usize>,
    /// Infer from a sample of the first records only (see [`SampledInference`]).
    pub sampled: Option<Arc<SampledInference>>,
    /// Set by a sampled inference that did not read every record: what the scan checks them
    /// against.
    pub(super) sample: Arc<Mutex<Option<Arc<CsvSample>>>>,
    /// Where the ranges past a file's start note their cuts, for a failed run to check.
    pub unchecked_cuts: Option<Arc<UncheckedCuts>>,
}

impl ExportCsvFormat {
    pub fn new(
        inner: Arc<dyn FileFormat>,
        dialect: CsvDialect,
        bad_records: Arc<BadRecordLog>,
    ) -> Self {
        Self {
            inner,
            dialect,
            max_record_bytes: DEFAULT_MAX_RECORD_BYTES,
            bad_records,
            store_url: ObjectStoreUrl::local_filesystem(),
            encoding: TextEncoding::default(),
            split: true,
            segments: false,
            read_whole: Arc::default(),
            infer_limit: None,
            sampled: None,
            sample: Arc::default(),
            unchecked_cuts: None,
        }
    }
}

impl ExportCsvFormat {
    pub fn dialect(&self) -> &CsvDialect {
        &self.dialect
    }

    /// Files the scan reads whole (their inference in ranges found a cut inside a record).
    pub fn files_read_whole(&self) -> &Arc<Mutex<HashSet<String>>> {
        &self.read_whole
    }

    /// The sample the scan checks records against, when the columns came from one that left
    /// records unread.
    pub fn sample(&self) -> Option<Arc<CsvSample>> {
        self.sample
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// How the table's files are written, to decide whether one can be split.
    pub(super) fn text(&self) -> CsvText<'_> {
        CsvText {
            encoding: self.encoding,
            dialect: &self.dialect,
            max_record_bytes: self.max_record_bytes,
        }
    }
}
