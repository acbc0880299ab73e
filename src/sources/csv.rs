//! CSV sources: DataFusion's CSV scan, with pengine's own schema inference.
//!
//! DataFusion infers a CSV schema from a sample and, reading further, breaks on quoted values that
//! span lines across its chunk boundaries; it also reads `01002` as the integer 1002. pengine reads
//! every record with the `csv` crate (quoted line breaks are fine) and types a column as an integer
//! only when every value is a plain integer without a leading zero (so codes and ids keep their
//! text), as a float when every value is a number, as a boolean for true/false, else as text.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
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
use super::csv_columns::{ColumnKind, FileColumns, infer_reader};
pub use super::csv_format::ExportCsvFormat;
use super::csv_infer_ranges::infer_in_ranges;
pub use super::csv_options::CsvDialect;
use super::csv_scan::CsvExportOpener;
use super::scan::{ExportSource, RecordFormat, ScanFiles};
use super::scan_spec::{CsvSpec, FormatSpec, encoding_of};
use super::split::InferSplit;
use datafusion::datasource::physical_plan::FileOpener;
use datafusion::datasource::source::DataSourceExec;

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
            read_whole,
        } = spec;
        let inner = Arc::new(datafusion::datasource::file_format::csv::CsvFormat::default());
        let mut format = ExportCsvFormat::new(inner, dialect, bad_records);
        format.max_record_bytes = max_record_bytes;
        format.store_url = datafusion::execution::object_store::ObjectStoreUrl::parse(&store_url)?;
        format.encoding = encoding_of(encoding.as_deref())?;
        format.split = split;
        *format
            .files_read_whole()
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = read_whole.into_iter().collect();
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
            read_whole,
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
    use crate::sources::csv_columns::{is_plain_integer, is_plain_number};
    use datafusion::arrow::datatypes::DataType;

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
