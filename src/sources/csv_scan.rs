//! Reads one CSV file into record batches, record by record, so a bad record is set aside (or,
//! under `--on-bad-records fail`, stops the run) with its line, instead of failing the file.
//!
//! Fields are gathered as text and cast to the table's column types a batch at a time; when a
//! cast fails, the rows whose value cannot be read as the column's type are found, recorded as
//! bad and left out. An empty field is null, as in DataFusion's CSV reader. The file is read in
//! a blocking task (through the decompressor its first bytes call for) that hands batches over a
//! small channel, so memory is a couple of batches plus one record.

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

use super::bad_records::{BadRecord, BadRecordLog, excerpt};
use super::compression::{Compression, SNIFF_LEN};
use super::csv_options::CsvDialect;
use super::csv_records::{CsvRecords, Next};

use super::BATCH_BYTES;

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
}

impl FileOpener for CsvExportOpener {
    fn open(&self, file: PartitionedFile) -> Result<FileOpenFuture> {
        let reading = FileReading {
            file: super::file_name(self.store_url.as_ref(), &file.object_meta.location),
            dialect: self.dialect.clone(),
            max_record_bytes: self.max_record_bytes,
            bad_records: Arc::clone(&self.bad_records),
            schema: Arc::clone(&self.projected_schema),
            projection: self.projection.clone(),
            batch_size: self.batch_size,
        };
        let store = Arc::clone(&self.store);
        let local = self.local.clone();
        let encoding = self.encoding;
        Ok(Box::pin(async move {
            let location = file.object_meta.location;
            let mut reader =
                super::object_read::blocking_reader(&store, local.as_ref(), &location).await?;
            let (sender, receiver) = mpsc::channel::<Result<RecordBatch>>(2);
            let runtime = tokio::runtime::Handle::current();
            tokio::task::spawn_blocking(move || {
                // A bridged stream (S3) needs the runtime to poll it.
                let _guard = runtime.enter();
                let result = (|| {
                    let head = reader
                        .fill_buf()
                        .map_err(|e| reading.read_error(e))?
                        .get(..SNIFF_LEN)
                        .map(<[u8]>::to_vec)
                        .unwrap_or_default();
                    let decoded = Compression::sniff(&head, &reading.file)
                        .reader(reader)
                        .map_err(|e| reading.read_error(e))?;
                    let decoded = encoding.reader_without_bom(decoded);
                    reading.read(decoded, &sender)
                })();
                if let Err(e) = result {
                    let _ = sender.blocking_send(Err(e));
                }
            });
            Ok(
                futures::stream::unfold(receiver, |mut receiver| async move {
                    receiver.recv().await.map(|batch| (batch, receiver))
                })
                .boxed(),
            )
        }))
    }
}

/// One file being read.
struct FileReading {
    file: String,
    dialect: CsvDialect,
    max_record_bytes: u64,
    bad_records: Arc<BadRecordLog>,
    schema: SchemaRef,
    projection: Vec<usize>,
    batch_size: usize,
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

    /// Reads the file, sending each batch; stops early when the receiver is gone.
    fn read(
        &self,
        input: Box<dyn std::io::Read + Send + '_>,
        sender: &mpsc::Sender<Result<RecordBatch>>,
    ) -> Result<()> {
        let mut records = CsvRecords::new(input, &self.file, &self.dialect, self.max_record_bytes);
        let mut header_pending = self.dialect.has_header;
        let mut columns = self.new_builders();
        let mut places = Vec::with_capacity(self.batch_size);
        loop {
            let next = records.next_record().map_err(|e| self.read_error(e))?;
            let record = match next {
                Next::End => break,
                Next::Bad(bad) => {
                    self.bad_records.record(bad)?;
                    continue;
                }
                Next::Record(record) => record,
            };
            if std::mem::take(&mut header_pending) {
                continue;
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
                if sender.blocking_send(Ok(batch)).is_err() {
                    return Ok(());
                }
            }
        }
        if !places.is_empty() {
            let batch = self.finish_batch(&mut columns, &mut places)?;
            let _ = sender.blocking_send(Ok(batch));
        }
        Ok(())
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
                    self.bad_records.record(bad)?;
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
