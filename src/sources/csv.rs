//! CSV sources: DataFusion's CSV scan, with pengine's own schema inference.
//!
//! DataFusion infers a CSV schema from a sample and, reading further, breaks on quoted values that
//! span lines across its chunk boundaries; it also reads `01002` as the integer 1002. pengine reads
//! every record with the `csv` crate (quoted line breaks are fine) and types a column as an integer
//! only when every value is a plain integer without a leading zero (so codes and ids keep their
//! text), as a float when every value is a number, as a boolean for true/false, else as text.
//! A run types them from a sample of the first records and its scan checks the others
//! ([`super::sampled`]); `schema` and `explain` read every record.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::{Result, Statistics};
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::physical_plan::{FileScanConfig, FileSource};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::physical_plan::ExecutionPlan;
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectMeta, ObjectStore};

use super::compression::read_object_blocking;
use super::csv_columns::{FileColumns, infer_reader};
pub use super::csv_format::ExportCsvFormat;
use super::csv_infer_ranges::{infer_in_ranges, infer_tail};
use super::csv_kinds::{ColumnKind, CsvSample};
pub use super::csv_options::CsvDialect;
use super::csv_scan::CsvExportOpener;
use super::sampled::{
    PROBE_FILES, PROBE_RECORDS, SAMPLE_RECORDS, SampleTaken, in_path_order, spread, take_sample,
};
use super::scan::{ExportSource, RecordFormat, ScanFiles};
use super::scan_spec::{CsvSpec, FormatSpec, encoding_of};
use super::split::InferSplit;
use datafusion::datasource::physical_plan::FileOpener;
use datafusion::datasource::source::DataSourceExec;

/// Files whose columns are inferred at the same time.
const INFER_CONCURRENCY: usize = 4;
/// Bytes read from the end of the first and last probed files when they are large: an export
/// that comes as a few large files changes at their ends.
const PROBE_TAIL_BYTES: u64 = 1024 * 1024;

impl ExportCsvFormat {
    /// The reader `spec` describes, recording bad records in `bad_records`.
    pub fn from_spec(
        spec: CsvSpec,
        bad_records: Arc<super::bad_records::BadRecordLog>,
    ) -> crate::error::Result<Self> {
        let CsvSpec {
            dialect,
            max_record_bytes,
            store_url,
            encoding,
            split,
            segments,
            read_whole,
            sample,
        } = spec;
        let inner = Arc::new(datafusion::datasource::file_format::csv::CsvFormat::default());
        let mut format = ExportCsvFormat::new(inner, dialect, bad_records);
        format.max_record_bytes = max_record_bytes;
        format.store_url = datafusion::execution::object_store::ObjectStoreUrl::parse(&store_url)?;
        format.encoding = encoding_of(encoding.as_deref())?;
        format.split = split;
        format.segments = segments;
        *format
            .files_read_whole()
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = read_whole.into_iter().collect();
        format.sample = Arc::new(std::sync::Mutex::new(sample.map(Arc::new)));
        Ok(format)
    }
}

impl RecordFormat for ExportCsvFormat {
    fn file_type(&self) -> &'static str {
        "csv"
    }

    fn opener(&self, scan: ScanFiles) -> Arc<dyn FileOpener> {
        Arc::new(CsvExportOpener {
            dialect: self.dialect.clone(),
            max_record_bytes: self.max_record_bytes,
            bad_records: Arc::clone(&self.bad_records),
            projected_schema: scan.projected_schema,
            projection: scan.projection,
            batch_size: scan.batch_size,
            store: scan.store,
            local: scan.local,
            store_url: self.store_url.clone(),
            encoding: self.encoding,
            read_whole: Arc::clone(&self.read_whole),
            sample: self.sample(),
            unchecked_cuts: self.unchecked_cuts.clone(),
            segments: self.segments,
        })
    }

    fn spec(&self) -> FormatSpec {
        let mut read_whole: Vec<String> = self
            .files_read_whole()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect();
        read_whole.sort();
        FormatSpec::Csv(CsvSpec {
            dialect: self.dialect().clone(),
            max_record_bytes: self.max_record_bytes,
            store_url: self.store_url.as_str().to_string(),
            encoding: self.encoding.label().map(str::to_string),
            split: self.split,
            segments: self.segments,
            read_whole,
            sample: self.sample().map(|sample| (*sample).clone()),
        })
    }

    fn splits_files(&self) -> bool {
        self.split
    }
}

#[async_trait]
impl FileFormat for ExportCsvFormat {
    fn get_ext(&self) -> String {
        self.inner.get_ext()
    }

    fn get_ext_with_compression(&self, c: &FileCompressionType) -> Result<String> {
        self.inner.get_ext_with_compression(c)
    }

    fn compression_type(&self) -> Option<FileCompressionType> {
        self.inner.compression_type()
    }

    async fn infer_schema(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        objects: &[ObjectMeta],
    ) -> Result<SchemaRef> {
        let split = InferSplit::of(state.config_options());
        let objects = &in_path_order(objects);
        let columns = if self.sampled.is_some() && self.infer_limit.is_none() {
            self.infer_from_sample(store, objects, split).await?
        } else {
            self.infer_every_record(store, objects, split).await?
        };
        Ok(columns.schema())
    }

    async fn infer_stats(
        &self,
        _state: &dyn Session,
        _store: &Arc<dyn ObjectStore>,
        table_schema: SchemaRef,
        object: &ObjectMeta,
    ) -> Result<Statistics> {
        Ok(crate::sources::file_size_statistics(&table_schema, object))
    }

    async fn create_physical_plan(
        &self,
        _state: &dyn Session,
        conf: FileScanConfig,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(DataSourceExec::from_data_source(conf))
    }

    fn file_source(&self, table_schema: TableSchema) -> Arc<dyn FileSource> {
        Arc::new(ExportSource::new(table_schema, Arc::new(self.clone())))
    }
}

/// A table's columns: the longest header's names, each column's kind merged over its files.
#[derive(Debug, Default, Clone)]
struct TableColumns {
    names: Vec<String>,
    kinds: Vec<ColumnKind>,
}

impl TableColumns {
    /// Adds a file's columns (files in listing order).
    fn add(&mut self, file: &FileColumns) {
        if self.names.len() < file.names.len() {
            self.names = file.names.clone();
            self.kinds.resize(self.names.len(), ColumnKind::default());
        }
        for (kind, seen) in self.kinds.iter_mut().zip(&file.kinds) {
            kind.merge(*seen);
        }
    }

    /// Whether adding `file` would leave the columns' names and types as they are.
    fn admit(&self, file: &FileColumns) -> bool {
        let mut after = self.clone();
        after.add(file);
        let types = |columns: &TableColumns| -> Vec<DataType> {
            columns.kinds.iter().map(ColumnKind::data_type).collect()
        };
        after.names == self.names && types(&after) == types(self)
    }

    fn schema(&self) -> SchemaRef {
        let fields: Vec<Field> = self
            .names
            .iter()
            .zip(&self.kinds)
            .map(|(name, kind)| Field::new(name, kind.data_type(), true))
            .collect();
        Arc::new(Schema::new(fields))
    }
}

impl ExportCsvFormat {
    /// Every record's columns (files a few at a time, merged in listing order).
    async fn infer_every_record(
        &self,
        store: &Arc<dyn ObjectStore>,
        objects: &[ObjectMeta],
        split: InferSplit,
    ) -> Result<TableColumns> {
        let mut files = self.infer_files(store, objects.to_vec(), None, split);
        let mut table = TableColumns::default();
        while let Some(file) = files.try_next().await? {
            table.add(&file);
        }
        Ok(table)
    }

    /// The columns of the first [`SAMPLE_RECORDS`] records in the order full inference reads
    /// them (whole files in listing order, the last one up to the budget). When that was not
    /// every record and the probes of later files fit, the sample is kept for the scan to check
    /// the rest against.
    async fn infer_from_sample(
        &self,
        store: &Arc<dyn ObjectStore>,
        objects: &[ObjectMeta],
        split: InferSplit,
    ) -> Result<TableColumns> {
        let files = self.infer_files(store, objects.to_vec(), Some(SAMPLE_RECORDS), split);
        let mut table = TableColumns::default();
        let SampleTaken {
            records,
            files: read,
            whole,
        } = take_sample(files, objects.len(), |index, file: FileColumns| {
            table.add(&file);
            let object = &objects[index];
            if file.line_breaks && self.split && split.ranges(object.size, None).is_some() {
                // Its byte ranges would be checked at every cut, and a cut inside a quoted
                // value would start the whole run again: read whole, as inference in ranges
                // decides when it meets one.
                tracing::info!(
                    "{}: a quoted value holds a line break in the first records; reading the \
                     file whole",
                    super::file_name(self.store_url.as_ref(), &object.location)
                );
                self.read_whole
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(object.location.to_string());
            }
            (file.records, file.stopped_at_limit)
        })
        .await?;
        if whole {
            return Ok(table);
        }
        if !self
            .probes_fit(store, &objects[read - 1..], &table, split)
            .await
        {
            tracing::debug!(
                "records of later CSV files do not fit the columns of the first {records}: \
                 inferring them from every record"
            );
            return self.infer_every_record(store, objects, split).await;
        }
        tracing::debug!(
            "CSV columns inferred from the first {records} records ({read} of {} files); the \
             scan checks every other record fits them",
            objects.len()
        );
        let sample = CsvSample {
            names: table.names.clone(),
            kinds: table.kinds.clone(),
            sampled: records,
        };
        *self.sample.lock().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(sample));
        if let Some(sampled) = &self.sampled {
            sampled.left_records_unread();
        }
        Ok(table)
    }

    /// Whether records of `rest` (from the file the sample stopped in to the last) leave
    /// `sample`'s columns as they are: the first records of files spread over the files after
    /// the sample's, and the tails of the first and last file of `rest` when they are large. Only
    /// a hint (the scan checks every record anyway): a probe that cannot be read, or holds a bad
    /// record under `fail`, says no, and full inference reports what it finds in file order.
    async fn probes_fit(
        &self,
        store: &Arc<dyn ObjectStore>,
        rest: &[ObjectMeta],
        sample: &TableColumns,
        split: InferSplit,
    ) -> bool {
        let after_sample = rest.get(1..).unwrap_or_default();
        let picked: Vec<ObjectMeta> = spread(after_sample.len(), PROBE_FILES)
            .map(|i| after_sample[i].clone())
            .collect();
        let mut files = self.infer_files(store, picked, Some(PROBE_RECORDS), split);
        while let Some(file) = files.next().await {
            match file {
                Ok(file) => {
                    if !sample.admit(&file) {
                        return false;
                    }
                }
                Err(e) => {
                    tracing::debug!("probing a CSV file after the sample: {e}");
                    return false;
                }
            }
        }
        drop(files);
        // The first and the last file of `rest`, once each.
        let ends = rest.first().into_iter().chain(after_sample.last());
        for object in ends {
            match infer_tail(store, object, self, PROBE_TAIL_BYTES).await {
                Ok(Some(tail)) => {
                    if !sample.admit(&tail.finish()) {
                        return false;
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::debug!("probing the end of {}: {e}", object.location);
                    return false;
                }
            }
        }
        true
    }

    /// Each of `objects`' columns (up to `limit` records each), a few files at a time, in order.
    fn infer_files<'a>(
        &'a self,
        store: &'a Arc<dyn ObjectStore>,
        objects: Vec<ObjectMeta>,
        limit: Option<usize>,
        split: InferSplit,
    ) -> impl futures::Stream<Item = Result<FileColumns>> + 'a {
        futures::stream::iter(objects)
            .map(move |object| {
                let mut format = self.clone();
                format.infer_limit = limit.or(self.infer_limit);
                infer_file(Arc::clone(store), object, format, split)
            })
            .buffered(INFER_CONCURRENCY)
    }
}

/// One file's columns, read through in a blocking task (a large one in byte ranges, each in its
/// own, unless only its first records are read).
async fn infer_file(
    store: Arc<dyn ObjectStore>,
    object: ObjectMeta,
    format: ExportCsvFormat,
    split: InferSplit,
) -> Result<FileColumns> {
    if format.infer_limit.is_none()
        && let Some(columns) = infer_in_ranges(&store, &object, &format, split).await?
    {
        return Ok(columns.finish());
    }
    let file = super::file_name(format.store_url.as_ref(), &object.location);
    read_object_blocking(store, object, file.clone(), move |reader| {
        infer_reader(format.encoding.reader_without_bom(reader), &file, &format)
    })
    .await
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::sources::csv_kinds::{is_plain_integer, is_plain_number};

    fn types(text: &str, dialect: &CsvDialect) -> Vec<(String, DataType)> {
        let format = ExportCsvFormat::new(
            Arc::new(datafusion::datasource::file_format::csv::CsvFormat::default()),
            dialect.clone(),
            Arc::default(),
        );
        let file = infer_reader(text.as_bytes(), "f.csv", &format).unwrap();
        file.names
            .into_iter()
            .zip(file.kinds.iter().map(ColumnKind::data_type))
            .collect()
    }

    fn default_dialect() -> CsvDialect {
        CsvDialect::from_options(&HashMap::new()).unwrap()
    }

    #[test]
    fn leading_zero_codes_stay_text_and_numbers_are_typed() {
        let got = types(
            "id,code,price,flag,note\n1,01002,1.5,true,\"a\nb\"\n2,7,2,false,x\n",
            &default_dialect(),
        );
        assert_eq!(
            got,
            [
                ("id".into(), DataType::Int64),
                ("code".into(), DataType::Utf8),
                ("price".into(), DataType::Float64),
                ("flag".into(), DataType::Boolean),
                ("note".into(), DataType::Utf8),
            ]
        );
    }

    #[test]
    fn a_header_naming_a_column_twice_is_an_error() {
        let format = ExportCsvFormat::new(
            Arc::new(datafusion::datasource::file_format::csv::CsvFormat::default()),
            default_dialect(),
            Arc::default(),
        );
        let Err(err) = infer_reader(&b"id,name,id\n1,a,2\n"[..], "f.csv", &format) else {
            panic!("a duplicated header name was taken");
        };
        assert!(err.contains("'id' twice (columns 1 and 3)"), "{err}");
    }

    #[test]
    fn headerless_files_get_numbered_columns() {
        let dialect = CsvDialect {
            has_header: false,
            delimiter: b';',
            ..default_dialect()
        };
        let got = types("a;1\nb;2\n", &dialect);
        assert_eq!(got[0], ("column_1".into(), DataType::Utf8));
        assert_eq!(got[1], ("column_2".into(), DataType::Int64));
    }

    #[test]
    fn dialect_characters_may_be_escapes_that_datafusion_reads_alike() {
        use datafusion::common::config::{ConfigField, CsvOptions};
        let options = |pairs: &[(&str, &str)]| -> HashMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let given = options(&[
            ("format.delimiter", "\\t"),
            ("format.quote", "\\x27"),
            ("format.escape", "\\\\"),
        ]);
        let dialect = CsvDialect::from_options(&given).unwrap();
        assert_eq!(
            (dialect.delimiter, dialect.quote, dialect.escape),
            (b'\t', b'\'', Some(b'\\'))
        );
        let passed = dialect.datafusion_options(&given);
        assert!(!passed.contains_key("format.comment"));
        let mut datafusion = CsvOptions::default();
        for key in ["delimiter", "quote", "escape"] {
            datafusion
                .set(key, &passed[&format!("format.{key}")])
                .unwrap();
        }
        assert_eq!(datafusion.delimiter, b'\t');
        assert_eq!(datafusion.quote, b'\'');
        assert_eq!(datafusion.escape, Some(b'\\'));
        for bad in ["", "ab", "\\n", "\\x1", "\\x+1", "\\xzz", "\\x012"] {
            let err = CsvDialect::from_options(&options(&[("format.delimiter", bad)]))
                .unwrap_err()
                .to_string();
            assert!(err.contains("'\\t' or E'\\t'"), "{bad}: {err}");
        }
    }

    #[test]
    fn plain_integers() {
        assert!(is_plain_integer("0") && is_plain_integer("-12") && is_plain_integer("345"));
        assert!(!is_plain_integer("007") && !is_plain_integer("+3") && !is_plain_integer("1e3"));
        assert!(!is_plain_integer("99999999999999999999"));
    }

    #[test]
    fn plain_numbers() {
        assert!(is_plain_number("0.5") && is_plain_number("-12.25") && is_plain_number("1e3"));
        assert!(!is_plain_number("007.5") && !is_plain_number("01002"));
        assert!(!is_plain_number("inf") && !is_plain_number("NaN") && !is_plain_number("-"));
    }
}
