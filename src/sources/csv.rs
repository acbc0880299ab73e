//! CSV sources: DataFusion's CSV scan, with pengine's own schema inference.
//!
//! DataFusion infers a CSV schema from a sample and, reading further, breaks on quoted values that
//! span lines across its chunk boundaries; it also reads `01002` as the integer 1002. pengine reads
//! every record with the `csv` crate (quoted line breaks are fine) and types a column as an integer
//! only when every value is a plain integer without a leading zero (so codes and ids keep their
//! text), as a float when every value is a number, as a boolean for true/false, else as text.

use std::collections::HashSet;
use std::io::Read;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::{Result, Statistics};
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::physical_plan::{FileScanConfig, FileSource};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::physical_plan::ExecutionPlan;
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectMeta, ObjectStore};

use super::bad_records::{BadRecordLog, BadRecordPolicy};
use super::compression::read_object_blocking;
use super::csv_infer_ranges::infer_in_ranges;
pub use super::csv_options::CsvDialect;
use super::csv_ranges::CsvText;
use super::csv_records::{CsvRecords, DEFAULT_MAX_RECORD_BYTES, Next};
use super::csv_scan::CsvExportOpener;
use super::encoding::TextEncoding;
use super::scan::{ExportSource, RecordFormat, ScanFiles};
use super::split::InferSplit;
use datafusion::datasource::physical_plan::FileOpener;
use datafusion::datasource::source::DataSourceExec;

/// What the values of one column say about its type.
#[derive(Debug, Clone, Copy, Default)]
struct ColumnKind {
    seen: bool,
    not_integer: bool,
    not_float: bool,
    not_bool: bool,
}

impl ColumnKind {
    fn observe(&mut self, value: &str) {
        if value.is_empty() {
            return;
        }
        self.seen = true;
        if !self.not_integer && !is_plain_integer(value) {
            self.not_integer = true;
        }
        if !self.not_float && !is_plain_number(value) {
            self.not_float = true;
        }
        if !self.not_bool
            && !value.eq_ignore_ascii_case("true")
            && !value.eq_ignore_ascii_case("false")
        {
            self.not_bool = true;
        }
    }

    fn merge(&mut self, other: ColumnKind) {
        self.seen |= other.seen;
        self.not_integer |= other.not_integer;
        self.not_float |= other.not_float;
        self.not_bool |= other.not_bool;
    }

    fn data_type(&self) -> DataType {
        match self {
            k if !k.seen => DataType::Utf8,
            k if !k.not_integer => DataType::Int64,
            k if !k.not_bool => DataType::Boolean,
            k if !k.not_float => DataType::Float64,
            _ => DataType::Utf8,
        }
    }
}

/// `-12`, `0`, `345`, fitting 64 bits; not `007` (a code) or `+3`.
fn is_plain_integer(value: &str) -> bool {
    let digits = value.strip_prefix('-').unwrap_or(value);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && value.parse::<i64>().is_ok()
}

/// A decimal number without a leading zero (`0.5`, `-12.25`, `1e3`); not `007.5`, `inf`, `NaN`.
fn is_plain_number(value: &str) -> bool {
    let unsigned = value.strip_prefix('-').unwrap_or(value);
    let leading_zero =
        unsigned.len() > 1 && unsigned.starts_with('0') && unsigned.as_bytes()[1].is_ascii_digit();
    unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && !leading_zero
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        && value.parse::<f64>().is_ok()
}

/// Column names and kinds of one file.
pub(super) struct FileColumns {
    names: Vec<String>,
    kinds: Vec<ColumnKind>,
}

#[cfg(test)]
impl FileColumns {
    /// Each column as `name: type`.
    pub(super) fn describe(&self) -> Vec<String> {
        let types = self.kinds.iter().map(ColumnKind::data_type);
        self.names
            .iter()
            .zip(types)
            .map(|(name, data_type)| format!("{name}: {data_type}"))
            .collect()
    }
}

/// What records of a file (all, or a byte range's) say about its columns: the header's names,
/// when they held it, and each column's kind.
#[derive(Default)]
pub(super) struct Columns {
    names: Option<Vec<String>>,
    kinds: Vec<ColumnKind>,
}

impl Columns {
    /// These records' columns, then `later`'s (the next byte range of the file).
    pub(super) fn then(mut self, later: Columns) -> Columns {
        self.names = self.names.or(later.names);
        if later.kinds.len() > self.kinds.len() {
            self.kinds.resize(later.kinds.len(), ColumnKind::default());
        }
        for (kind, seen) in self.kinds.iter_mut().zip(later.kinds) {
            kind.merge(seen);
        }
        self
    }

    /// The file's columns; a headerless file's named like DataFusion names them.
    pub(super) fn finish(self) -> FileColumns {
        let mut names = self.names.unwrap_or_default();
        let mut kinds = self.kinds;
        kinds.resize(kinds.len().max(names.len()), ColumnKind::default());
        while names.len() < kinds.len() {
            names.push(format!("column_{}", names.len() + 1));
        }
        FileColumns { names, kinds }
    }
}

/// Reads every record of one file (bad ones: an error under `fail`, left out under `skip`).
fn infer_reader(
    reader: impl Read,
    file: &str,
    format: &ExportCsvFormat,
) -> std::result::Result<FileColumns, String> {
    let records = CsvRecords::new(reader, file, &format.dialect, format.max_record_bytes);
    let columns = infer_records(records, format.dialect.has_header, format, &|| Ok(0))?;
    Ok(columns.unwrap_or_default().finish())
}

/// The columns of `records` (a file, or a byte range of one: None when its end was inside a
/// record). `lines_before`: the lines before the records, added to a bad record's line.
pub(super) fn infer_records<R: Read>(
    mut records: CsvRecords<R>,
    mut header_pending: bool,
    format: &ExportCsvFormat,
    lines_before: &dyn Fn() -> std::result::Result<u64, String>,
) -> std::result::Result<Option<Columns>, String> {
    let mut columns = Columns::default();
    loop {
        let record = match records.next_record().map_err(|e| e.to_string())? {
            Next::End => break,
            Next::CutInRecord { .. } => return Ok(None),
            Next::Bad(mut bad) => {
                if format.bad_records.policy() == BadRecordPolicy::Fail
                    && let Some(line) = bad.line
                {
                    bad.line = Some(line + lines_before()?);
                }
                format.bad_records.seen_while_inferring(&bad)?;
                continue;
            }
            Next::Record(record) => record,
        };
        if std::mem::take(&mut header_pending) {
            let names: Vec<String> = (0..record.len())
                .map(|i| record.get(i).to_string())
                .collect();
            duplicate_header(&names)?;
            columns.names = Some(names);
            continue;
        }
        let kinds = &mut columns.kinds;
        if record.len() > kinds.len() {
            kinds.resize(record.len(), ColumnKind::default());
        }
        for (i, kind) in kinds.iter_mut().enumerate() {
            kind.observe(record.get(i));
        }
    }
    Ok(Some(columns))
}

/// A header naming one column twice cannot name a table's columns (DataFusion would only say
/// "duplicate qualified field name"): the error names it and how to name the columns instead.
fn duplicate_header(names: &[String]) -> std::result::Result<(), String> {
    for (second, name) in names.iter().enumerate() {
        if let Some(first) = names[..second].iter().position(|n| n == name) {
            return Err(format!(
                "the CSV header names the column '{name}' twice (columns {} and {}), so its \
                 columns cannot be told apart; name the {} columns yourself in the mapping file, \
                 the header line left out of the data: CREATE EXTERNAL TABLE t (column_1 \
                 VARCHAR, column_2 VARCHAR, ...) STORED AS CSV LOCATION '...' OPTIONS \
                 ('format.has_header' 'true')",
                first + 1,
                second + 1,
                names.len()
            ));
        }
    }
    Ok(())
}

/// CSV read by pengine: its own inference and its own record reader (bad records set aside);
/// DataFusion's CSV format only names the extension.
#[derive(Debug, Clone)]
pub struct ExportCsvFormat {
    inner: Arc<dyn FileFormat>,
    dialect: CsvDialect,
    /// Longest record read; a longer one is a bad record.
    pub max_record_bytes: u64,
    pub bad_records: Arc<BadRecordLog>,
    /// The store the files are on, to name them ([`super::file_name`]).
    pub store_url: ObjectStoreUrl,
    /// The files' text encoding (`'format.encoding'`).
    pub encoding: TextEncoding,
    /// Whether large files may be read in byte ranges ([`super::csv_ranges`]).
    pub split: bool,
    /// Files whose inference in byte ranges found a cut inside a record: the scan reads them
    /// whole.
    pub(super) read_whole: Arc<Mutex<HashSet<String>>>,
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
            read_whole: Arc::default(),
        }
    }
}

impl ExportCsvFormat {
    pub fn dialect(&self) -> &CsvDialect {
        &self.dialect
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
        let files: Vec<FileColumns> = futures::stream::iter(objects.iter().cloned())
            .map(|object| {
                let store = Arc::clone(store);
                let format = self.clone();
                async move { infer_file(store, object, format, split).await }
            })
            .buffered(4)
            .try_collect()
            .await?;
        let mut names: Vec<String> = Vec::new();
        let mut kinds: Vec<ColumnKind> = Vec::new();
        for file in files {
            if names.len() < file.names.len() {
                names = file.names.clone();
                kinds.resize(names.len(), ColumnKind::default());
            }
            for (kind, seen) in kinds.iter_mut().zip(file.kinds) {
                kind.merge(seen);
            }
        }
        let fields: Vec<Field> = names
            .iter()
            .zip(&kinds)
            .map(|(name, kind)| Field::new(name, kind.data_type(), true))
            .collect();
        Ok(Arc::new(Schema::new(fields)))
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

/// One file's columns, read through in a blocking task (a large one in byte ranges, each in its
/// own).
async fn infer_file(
    store: Arc<dyn ObjectStore>,
    object: ObjectMeta,
    format: ExportCsvFormat,
    split: InferSplit,
) -> Result<FileColumns> {
    if let Some(columns) = infer_in_ranges(&store, &object, &format, split).await? {
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
