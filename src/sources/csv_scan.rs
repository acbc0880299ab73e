//! Reads one CSV file into record batches, record by record, so a bad record is set aside (or,
//! under `--on-bad-records fail`, stops the run) with its line, instead of failing the file.
//!
//! Fields are gathered as text and cast to the table's column types a batch at a time; when a
//! cast fails, the rows whose value cannot be read as the column's type are found, recorded as
//! bad and left out. An empty field is null, as in DataFusion's CSV reader. The file is read in
//! a blocking task (through the decompressor its first bytes call for, which inflates a large
//! file on a task of its own) that hands batches over a small channel, so memory is a couple of
//! batches plus one record. A large file may be read in byte ranges, one per partition
//! ([`super::csv_ranges`]); one read whole (a compressed one) in segments of its text, on several
//! cores (`csv_scan::segments`).

mod segments;

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, StringBuilder};
use datafusion::arrow::compute::{CastOptions, cast_with_options, filter_record_batch};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::common::Result;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileOpenFuture, FileOpener};
use datafusion::error::DataFusionError;
use datafusion::execution::object_store::ObjectStoreUrl;
use futures::StreamExt;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use tokio::sync::mpsc;

use std::sync::OnceLock;

use object_store::path::Path;

use super::bad_records::{BadRecord, BadRecordLog, BadRecordPolicy, excerpt};
use super::compression::{self, Compression, SNIFF_LEN};
use super::csv_kinds::CsvSample;
use super::csv_options::CsvDialect;
use super::csv_ranges::{self, CsvText};
use super::csv_records::{CsvRecords, Next};
use super::encoding::TextEncoding;
use super::sampled::SchemaMisfit;
use super::split::SplitMismatch;
use super::split::{ByteRange, Cut, Plan, RangeEnd, skip_to_record_start_blocking};
use super::unchecked_cuts::UncheckedCuts;

use super::BATCH_BYTES;

/// Whether a scan over `partitions` partitions parses large files read whole in segments. Not on
/// 2 cores (3 partitions by default): inflating a file on one core and parsing it on the other
/// keep both busy already, and segments only add their cost (benches/README.md, "CSV gzip in
/// segments").
pub fn segments_pay_off(partitions: usize) -> bool {
    partitions >= 4
}

pub struct CsvExportOpener {
    pub dialect: CsvDialect,
    pub max_record_bytes: u64,
    pub bad_records: Arc<BadRecordLog>,
    pub projected_schema: SchemaRef,
    /// File column index of each projected column.
    pub projection: Vec<usize>,
    pub batch_size: usize,
    pub store: Arc<dyn ObjectStore>,
    /// The store's file system, when it is this machine's.
    pub local: Option<LocalFileSystem>,
    /// The store the files are on, to name them.
    pub store_url: ObjectStoreUrl,
    /// The files' text encoding: transcoded to UTF-8 after decompression.
    pub encoding: super::encoding::TextEncoding,
    /// Files schema inference found cannot be split: read whole.
    pub read_whole: Arc<std::sync::Mutex<std::collections::HashSet<String>>>,
    /// The sample the columns came from, when it left records unread: each record is checked
    /// against it.
    pub sample: Option<Arc<CsvSample>>,
    /// Where a range past a file's start notes its cut ([`UncheckedCuts`]).
    pub unchecked_cuts: Option<Arc<UncheckedCuts>>,
    /// Whether a large file read whole may be parsed in segments (`csv_scan::segments`).
    pub segments: bool,
}

impl FileOpener for CsvExportOpener {
    fn open(&self, file: PartitionedFile) -> Result<FileOpenFuture> {
        let mut reading = FileReading {
            file: super::file_name(self.store_url.as_ref(), &file.object_meta.location),
            dialect: self.dialect.clone(),
            max_record_bytes: self.max_record_bytes,
            bad_records: Arc::clone(&self.bad_records),
            schema: Arc::clone(&self.projected_schema),
            projection: self.projection.clone(),
            batch_size: self.batch_size,
            prefix: None,
            sample: self.sample.clone(),
        };
        let store = Arc::clone(&self.store);
        let local = self.local.clone();
        let encoding = self.encoding;
        let unchecked_cuts = self.unchecked_cuts.clone();
        let splittable = !self
            .read_whole
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(file.object_meta.location.as_ref());
        // Quotes are counted to cut between records; an escape character would upset the count.
        let segmentable =
            self.segments && splittable && encoding.is_utf8() && self.dialect.escape.is_none();
        Ok(Box::pin(async move {
            let location = file.object_meta.location.clone();
            let size = file.object_meta.size;
            // A byte range of a split file: the records starting in it ([`super::csv_ranges`]).
            let split = match ByteRange::of(&file) {
                Some(range) if !splittable => {
                    if range.start > 0 {
                        return Ok(futures::stream::empty().boxed());
                    }
                    None
                }
                Some(range) => {
                    let (plan, facts) = csv_ranges::plan(
                        &store,
                        local.as_ref(),
                        &location,
                        size,
                        range,
                        CsvText {
                            encoding,
                            dialect: &reading.dialect,
                            max_record_bytes: reading.max_record_bytes,
                        },
                    )
                    .await?;
                    match (plan, facts) {
                        (Plan::Nothing, _) => return Ok(futures::stream::empty().boxed()),
                        (Plan::Ranges(range, _), Some(facts)) => Some((range, facts)),
                        _ => None,
                    }
                }
                None => None,
            };
            if split.is_none()
                && segmentable
                && compression::is_large(size)
                && let Some(batches) =
                    segments::read(&reading, &store, local.as_ref(), &location, size).await?
            {
                return Ok(batches);
            }
            let from = split.map_or(0, |(range, _)| range.start.saturating_sub(1));
            let mut reader =
                super::object_read::blocking_reader_from(&store, local.as_ref(), &location, from)
                    .await?;
            Ok(read_in_blocking_task(move |batches| {
                let mut emit = |batch| batches.emit(batch);
                match split {
                    None => {
                        let head = reader
                            .fill_buf()
                            .map_err(|e| reading.read_error(e))?
                            .get(..SNIFF_LEN)
                            .map(<[u8]>::to_vec)
                            .unwrap_or_default();
                        let decoded = Compression::sniff(&head, &reading.file)
                            .reader_ahead(reader, size)
                            .map_err(|e| reading.read_error(e))?;
                        let records = reading.records(encoding.reader_without_bom(decoded));
                        reading.read(records, reading.dialect.has_header, &mut emit)
                    }
                    Some((range, facts)) => {
                        let end = RangeEnd::of(range, size);
                        if range.start == 0 {
                            crate::failpoint::hold_first_range_blocking(|| batches.gone());
                            // Plain UTF-8 (see `csv_ranges::head_facts`): only a mark to strip.
                            let input = encoding.reader_without_bom(reader);
                            let records = reading.records(input).in_range(0, facts.bom, end);
                            return reading.read(records, reading.dialect.has_header, &mut emit);
                        }
                        let Some(at) =
                            skip_to_record_start_blocking(&mut reader, range, Cut::LineStart)
                                .map_err(|e| reading.read_error(e))?
                        else {
                            return Ok(());
                        };
                        let start = facts.start_at(at, reading.dialect.has_header);
                        let mut records =
                            reading.records(reader).in_range(start.text, facts.bom, end);
                        records.width = start.width;
                        // Checked too if the run stops with any error ([`UncheckedCuts`]).
                        if let Some(cuts) = &unchecked_cuts {
                            cuts.note(&reading.file, at, || {
                                Arc::new(csv_ranges::CsvCutCheck {
                                    store: Arc::clone(&store),
                                    location: location.clone(),
                                    file: reading.file.clone(),
                                    dialect: reading.dialect.clone(),
                                    max_record_bytes: reading.max_record_bytes,
                                    bom: facts.bom,
                                })
                            });
                        }
                        reading.prefix = Some(Prefix {
                            store,
                            local,
                            location,
                            start: at,
                            bom: facts.bom,
                            size,
                            lines: OnceLock::new(),
                        });
                        reading.read(records, start.header_pending, &mut emit)
                    }
                }
            }))
        }))
    }
}

/// Where a blocking reading task hands its batches: the stream [`read_in_blocking_task`] returns.
struct Batches(mpsc::Sender<Result<RecordBatch>>);

impl Batches {
    /// Hands `batch` on; false once the stream's reader is gone (the reading can stop).
    fn emit(&self, batch: RecordBatch) -> bool {
        self.0.blocking_send(Ok(batch)).is_ok()
    }

    fn gone(&self) -> bool {
        self.0.is_closed()
    }
}

/// The batches `read` hands on, read by a blocking task (the synchronous CSV reader), a couple
/// at a time; its error is the last item. Needs a tokio runtime, which the task enters (a
/// bridged stream, another store than this machine's, needs it to poll).
fn read_in_blocking_task(
    read: impl FnOnce(&Batches) -> Result<()> + Send + 'static,
) -> futures::stream::BoxStream<'static, Result<RecordBatch>> {
    let (sender, receiver) = mpsc::channel::<Result<RecordBatch>>(2);
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let _guard = runtime.enter();
        let batches = Batches(sender);
        if let Err(e) = read(&batches) {
            let _ = batches.0.blocking_send(Err(e));
        }
    });
    futures::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|batch| (batch, receiver))
    })
    .boxed()
}

/// One file (or byte range of one) being read.
#[derive(Clone)]
struct FileReading {
    file: String,
    dialect: CsvDialect,
    max_record_bytes: u64,
    bad_records: Arc<BadRecordLog>,
    schema: SchemaRef,
    projection: Vec<usize>,
    batch_size: usize,
    /// A byte range past the file's start: the file before it, read only for a bad record.
    prefix: Option<Prefix>,
    /// What every record is checked against when the columns came from a sample.
    sample: Option<Arc<CsvSample>>,
}

/// The part of a split file before a range: its line breaks give the range's line numbers, and
/// under `--on-bad-records fail` it is read to stop with what a whole read would stop with.
#[derive(Clone)]
struct Prefix {
    store: Arc<dyn ObjectStore>,
    local: Option<LocalFileSystem>,
    location: Path,
    /// File offset of the range's first line.
    start: u64,
    bom: u64,
    size: u64,
    /// Line breaks before `start`, once counted.
    lines: OnceLock<u64>,
}

impl Prefix {
    /// The file from its start, as a blocking reader (this runs in the reading's blocking task).
    fn reader(&self) -> Result<Box<dyn std::io::BufRead + Send>> {
        tokio::runtime::Handle::current().block_on(super::object_read::blocking_reader(
            &self.store,
            self.local.as_ref(),
            &self.location,
        ))
    }

    /// Line breaks before the range: its line numbers are the reader's plus these.
    fn lines(&self, reading: &FileReading) -> Result<u64> {
        if let Some(&lines) = self.lines.get() {
            return Ok(lines);
        }
        let lines = csv_ranges::lines_before(&mut self.reader()?, self.start)
            .map_err(|e| reading.read_error(e))?;
        Ok(*self.lines.get_or_init(|| lines))
    }
}

/// Where a row of the batch being built came from.
struct RowPlace {
    line: u64,
    byte_offset: u64,
}

impl FileReading {
    fn read_error(&self, e: std::io::Error) -> DataFusionError {
        DataFusionError::Execution(format!("reading CSV {}: {e}", self.file))
    }

    fn records<R: std::io::Read>(&self, input: R) -> CsvRecords<R> {
        CsvRecords::new(input, &self.file, &self.dialect, self.max_record_bytes)
    }

    /// Reads the records, handing each batch to `emit`; stops early when it returns false.
    fn read<R: std::io::Read>(
        &self,
        mut records: CsvRecords<R>,
        mut header_pending: bool,
        emit: &mut dyn FnMut(RecordBatch) -> bool,
    ) -> Result<()> {
        let mut columns = self.new_builders();
        let mut places = Vec::with_capacity(self.batch_size);
        loop {
            let next = records.next_record().map_err(|e| self.read_error(e))?;
            let record = match next {
                Next::End => break,
                Next::CutInRecord {
                    boundary,
                    next_start,
                } => {
                    let mismatch = SplitMismatch {
                        file: self.file.clone(),
                        boundary,
                        detail: format!(
                            "a quoted value holds a line break; the next record starts at byte \
                             {next_start}"
                        ),
                    };
                    return Err(mismatch.into_error());
                }
                Next::SegmentEndInRecord { cut, record_start } => {
                    let mismatch = SplitMismatch {
                        file: self.file.clone(),
                        boundary: cut,
                        detail: format!(
                            "the record at byte {record_start} spans a line break where the \
                             file's text was cut (a quoted value holds a line break)"
                        ),
                    };
                    return Err(mismatch.into_error());
                }
                Next::Bad(bad) => {
                    self.report(bad)?;
                    continue;
                }
                Next::Record(record) => record,
            };
            if std::mem::take(&mut header_pending) {
                if let Some(column) = self.sample.as_ref().and_then(|s| s.header_misfit(&record)) {
                    return Err(self.misfit(record.byte_offset, column));
                }
                continue;
            }
            if let Some(sample) = &self.sample
                && let Some(column) = sample.misfit(&record, &self.projection)
            {
                return Err(self.misfit(record.byte_offset, column));
            }
            for (builder, &index) in columns.iter_mut().zip(&self.projection) {
                match index < record.len() {
                    true if !record.get(index).is_empty() => {
                        builder.append_value(record.get(index))
                    }
                    _ => builder.append_null(),
                }
            }
            places.push(RowPlace {
                line: record.line,
                byte_offset: record.byte_offset,
            });
            let held: usize = columns.iter().map(|c| c.values_slice().len()).sum();
            if places.len() == self.batch_size || held >= BATCH_BYTES {
                let batch = self.finish_batch(&mut columns, &mut places)?;
                if !emit(batch) {
                    return Ok(());
                }
            }
        }
        if !places.is_empty() {
            let batch = self.finish_batch(&mut columns, &mut places)?;
            emit(batch);
        }
        Ok(())
    }

    /// The error that stops the scan at a record whose `column` the sample's columns do not
    /// cover: the run then infers them from every record and starts again.
    fn misfit(&self, offset: u64, column: String) -> DataFusionError {
        DataFusionError::External(Box::new(SchemaMisfit {
            file: self.file.clone(),
            offset,
            field: column,
            sampled: self.sample.as_ref().map_or(0, |s| s.sampled),
        }))
    }

    /// A bad record met: recorded (under `fail`, the error). In a range past the file's start its
    /// line is counted from the file's start, and under `fail` the error is the whole read's.
    fn report(&self, mut bad: BadRecord) -> Result<()> {
        let Some(prefix) = &self.prefix else {
            return self.bad_records.record(bad);
        };
        if self.bad_records.policy() == BadRecordPolicy::Fail {
            self.check_prefix(prefix)?;
        }
        let lines = prefix.lines(self)?;
        bad.line = bad.line.map(|line| line + lines);
        self.bad_records.record(bad)
    }

    /// Under `fail`, before a range past the start stops the run with a bad record: the file
    /// before the range is read as a whole read would, so that a range that did not start at a
    /// record start stops with a [`SplitMismatch`] (its bad record may be none), and an earlier
    /// bad record is the one reported (ranges run in parallel; the first in the file is the
    /// whole read's).
    fn check_prefix(&self, prefix: &Prefix) -> Result<()> {
        let earlier = FileReading {
            file: self.file.clone(),
            dialect: self.dialect.clone(),
            max_record_bytes: self.max_record_bytes,
            bad_records: Arc::new(BadRecordLog::new(BadRecordPolicy::Skip)),
            schema: Arc::clone(&self.schema),
            projection: self.projection.clone(),
            batch_size: self.batch_size,
            prefix: None,
            sample: None,
        };
        let range = ByteRange {
            start: 0,
            end: prefix.start,
        };
        let input = TextEncoding::default().reader_without_bom(prefix.reader()?);
        let records =
            earlier
                .records(input)
                .in_range(0, prefix.bom, RangeEnd::of(range, prefix.size));
        earlier.read(records, self.dialect.has_header, &mut |_| true)?;
        let first = earlier
            .bad_records
            .take_pending()
            .into_iter()
            .min_by_key(|bad| bad.byte_offset);
        match first {
            Some(bad) => Err(bad.into_error()),
            None => Ok(()),
        }
    }

    fn new_builders(&self) -> Vec<StringBuilder> {
        (0..self.projection.len())
            .map(|_| StringBuilder::with_capacity(self.batch_size, self.batch_size * 16))
            .collect()
    }

    /// Casts the gathered text to the column types; rows with a value that cannot be read as
    /// its column's type are recorded as bad and left out.
    fn finish_batch(
        &self,
        columns: &mut [StringBuilder],
        places: &mut Vec<RowPlace>,
    ) -> Result<RecordBatch> {
        let rows = places.len();
        let mut keep = vec![true; rows];
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(columns.len());
        for (builder, field) in columns.iter_mut().zip(self.schema.fields()) {
            let text: ArrayRef = Arc::new(builder.finish());
            if field.data_type() == &DataType::Utf8 {
                arrays.push(text);
                continue;
            }
            let strict = CastOptions {
                safe: false,
                ..CastOptions::default()
            };
            if let Ok(cast) = cast_with_options(&text, field.data_type(), &strict) {
                arrays.push(cast);
                continue;
            }
            // Which values failed: those that were there but came out null.
            let lenient = cast_with_options(&text, field.data_type(), &CastOptions::default())?;
            let values = datafusion::arrow::array::as_string_array(&text);
            for row in 0..rows {
                if !text.is_null(row) && lenient.is_null(row) && keep[row] {
                    keep[row] = false;
                    let value = values.value(row);
                    let place = &places[row];
                    let mut bad = BadRecord::at_byte(
                        &self.file,
                        place.byte_offset,
                        format!(
                            "'{}' in column {} is not of type {}",
                            excerpt(value.as_bytes()),
                            field.name(),
                            field.data_type()
                        ),
                        value.as_bytes(),
                    );
                    bad.line = Some(place.line);
                    self.report(bad)?;
                }
            }
            arrays.push(lenient);
        }
        places.clear();
        let batch = RecordBatch::try_new_with_options(
            Arc::clone(&self.schema),
            arrays,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )?;
        if keep.iter().all(|k| *k) {
            return Ok(batch);
        }
        Ok(filter_record_batch(&batch, &BooleanArray::from(keep))?)
    }
}

#[cfg(test)]
pub(in crate::sources) mod tests;
