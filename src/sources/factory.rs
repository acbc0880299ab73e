//! Creates the tables behind `CREATE EXTERNAL TABLE` the way exports need.
//!
//! DataFusion's own factory rewrites a folder to `*.json` (Firehose files have no extension),
//! infers JSON from a sample and cannot read top-level arrays. This one keeps DataFusion's
//! listing table (recursive listing, `key=value` partitions, projection, parallel file groups) but
//! chooses the format and the file filter itself: JSON goes to [`ExportJsonFormat`]; CSV and
//! Parquet use DataFusion's formats with the table's options.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::DataType;
use datafusion::catalog::{Session, TableProvider, TableProviderFactory};
use datafusion::common::{DataFusionError, Result, plan_err};
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::listing::{
    ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl,
};
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::CreateExternalTable;

use super::bad_records::BadRecordLog;
use super::csv::{CsvDialect, ExportCsvFormat};
use super::csv_scan;
use super::encoding::{ENCODING_OPTION, TextEncoding};
use super::exclude::{EXCLUDE_OPTION, Exclusions};
use super::json::ExportJsonFormat;
use super::parquet::ExportParquetFormat;
use super::sampled::SampledInference;
use super::split::FilesReadWhole;
use super::unchecked_cuts::UncheckedCuts;

/// The output of the run that registers the tables (a session extension): a source inside it is
/// refused, since the run would read what it writes.
#[derive(Debug)]
pub struct RunOutput(pub url::Url);

/// The `STORED AS` names this factory serves.
pub const FORMATS: &[&str] = &["JSON", "NDJSON", "CSV", "PARQUET"];

#[derive(Debug, Default)]
pub struct SourceTableFactory;

/// The file name ending a table's listing keeps (`STORED AS` upper-cased): a single file is read
/// whatever its name; a folder filters Parquet by extension only (Firehose files have none).
/// Every listing of a table's files goes by it, so that they all see the same files.
pub fn file_extension(file_type: &str, url: &ListingTableUrl) -> &'static str {
    if url.is_collection() && file_type == "PARQUET" {
        ".parquet"
    } else {
        ""
    }
}

#[async_trait]
impl TableProviderFactory for SourceTableFactory {
    async fn create(
        &self,
        state: &dyn Session,
        cmd: &CreateExternalTable,
    ) -> Result<Arc<dyn TableProvider>> {
        let Some(session) = state.as_any().downcast_ref::<SessionState>() else {
            return plan_err!("pengine's table factory needs a SessionState");
        };
        let file_type = cmd.file_type.to_ascii_uppercase();
        let bad_records = BadRecordLog::of(session.config());
        let [location] = cmd.locations.as_slice() else {
            return plan_err!(
                "table {}: give one LOCATION (a file or a folder; folders are read recursively)",
                cmd.name
            );
        };
        let url = ListingTableUrl::parse(location)?;
        if let Some(output) = session.config().get_extension::<RunOutput>()
            && inside(url.get_url(), &output.0)
        {
            return plan_err!(
                "table {}: LOCATION '{location}' is inside the output {}: pengine would read \
                 its own output. Give the run another --output, outside the sources",
                cmd.name,
                output.0
            );
        }
        // Files are named in messages by their store's URL and path.
        let store_url = url.object_store();
        if let Some(value) = cmd.options.get(EXCLUDE_OPTION) {
            // Registered before the table's first listing below, which then leaves them out.
            Exclusions::register(session.config(), &url, value)
                .map_err(|e| DataFusionError::Plan(format!("table {}: {e}", cmd.name)))?;
        }
        let format: Arc<dyn FileFormat> = match file_type.as_str() {
            "JSON" | "NDJSON" => {
                let mut format = json_format(cmd, bad_records)?;
                format.store_url = store_url;
                format.sampled = session.config().get_extension::<SampledInference>();
                // An attempt after a cut inside a record: large files whole.
                format.split_at_cuts = session.config().get_extension::<FilesReadWhole>().is_none();
                format.unchecked_cuts = session.config().get_extension::<UncheckedCuts>();
                Arc::new(format)
            }
            "PARQUET" => {
                let mut options = cmd.options.clone();
                options.remove(EXCLUDE_OPTION);
                let mut format = ExportParquetFormat::new(
                    datafusion_format(session, "parquet", &options)?,
                    Arc::clone(&bad_records),
                );
                format.store_url = store_url;
                Arc::new(format)
            }
            "CSV" => {
                let dialect = CsvDialect::from_options(&cmd.options)?;
                let mut options = dialect.datafusion_options(&cmd.options);
                let max_record = options.remove(MAX_RECORD_OPTION);
                let encoding = options.remove(ENCODING_OPTION);
                options.remove(EXCLUDE_OPTION);
                let inner = datafusion_format(session, "csv", &options)?;
                // Values with line breaks, or an attempt after a cut inside a record: whole.
                let split = !dialect.newlines_in_values
                    && session.config().get_extension::<FilesReadWhole>().is_none();
                let mut format = ExportCsvFormat::new(inner, dialect, bad_records);
                format.store_url = store_url;
                format.split = split;
                format.segments =
                    split && csv_scan::segments_pay_off(session.config().target_partitions());
                format.unchecked_cuts = session.config().get_extension::<UncheckedCuts>();
                format.sampled = session.config().get_extension::<SampledInference>();
                if let Some(label) = encoding {
                    format.encoding = text_encoding(cmd, &label)?;
                }
                if let Some(value) = max_record {
                    format.max_record_bytes = max_record_bytes(cmd, &value)?;
                }
                Arc::new(format)
            }
            other => return plan_err!("pengine cannot read STORED AS {other}"),
        };

        let extension = file_extension(&file_type, &url);
        let mut options = ListingOptions::new(format).with_file_extension(extension);

        let provided = !cmd.schema.fields().is_empty();
        let partition_columns: Vec<String> = if cmd.table_partition_cols.is_empty() {
            if url.is_collection() {
                // The first listing of the folder: a missing bucket or container fails here.
                options
                    .infer_partitions(session, &url)
                    .await
                    .map_err(|e| e.context(format!("table {} at {location}", cmd.name)))?
            } else {
                Vec::new()
            }
        } else {
            cmd.table_partition_cols.clone()
        };
        let partition_fields = partition_columns
            .iter()
            .map(|name| {
                let declared = cmd
                    .schema
                    .inner()
                    .field_with_name(name)
                    .ok()
                    .map(|f| f.data_type().clone());
                let data_type = declared.unwrap_or(DataType::Utf8);
                (name.clone(), data_type)
            })
            .collect::<Vec<_>>();
        options = options.with_table_partition_cols(partition_fields);

        let file_schema = if provided {
            let schema = cmd.schema.inner();
            let keep: Vec<usize> = (0..schema.fields().len())
                .filter(|i| !partition_columns.contains(schema.field(*i).name()))
                .collect();
            Arc::new(schema.project(&keep)?)
        } else {
            options
                .infer_schema(session, &url)
                .await
                .map_err(|e| e.context(format!("table {} at {location}", cmd.name)))?
        };
        if file_schema.fields().is_empty() {
            return plan_err!(
                "table {} at {location}: no data found (no files, or only empty ones); \
                 check the LOCATION",
                cmd.name
            );
        }
        let config = ListingTableConfig::new(url)
            .with_listing_options(options)
            .with_schema(file_schema);
        let table = ListingTable::try_new(config)?.with_definition(cmd.definition.clone());
        tracing::debug!("table {}: {location} as {file_type}", cmd.name);
        Ok(Arc::new(table))
    }
}

/// Whether `location` is `folder` or under it.
fn inside(location: &url::Url, folder: &url::Url) -> bool {
    let (a, b) = (location.path(), folder.path().trim_end_matches('/'));
    location.scheme() == folder.scheme()
        && location.authority() == folder.authority()
        && (a.trim_end_matches('/') == b || a.starts_with(&format!("{b}/")))
}

/// The encoding a table's `'format.encoding'` names.
fn text_encoding(cmd: &CreateExternalTable, label: &str) -> Result<TextEncoding> {
    TextEncoding::from_label(label)
        .map_err(|e| DataFusionError::Plan(format!("table {}: {e}", cmd.name)))
}

fn json_format(
    cmd: &CreateExternalTable,
    bad_records: Arc<BadRecordLog>,
) -> Result<ExportJsonFormat> {
    let mut format = ExportJsonFormat {
        bad_records,
        ..ExportJsonFormat::default()
    };
    for (key, value) in &cmd.options {
        match key.as_str() {
            MAX_RECORD_OPTION => format.max_record_bytes = max_record_bytes(cmd, value)?,
            ENCODING_OPTION => format.encoding = text_encoding(cmd, value)?,
            "format.schema_infer_max_rec" => {
                format.infer_limit = Some(value.parse().map_err(|_| {
                    DataFusionError::Plan(format!(
                        "table {}: 'format.schema_infer_max_rec' must be a number, got '{value}'",
                        cmd.name
                    ))
                })?);
            }
            // The factory applies it to the listing.
            EXCLUDE_OPTION => {}
            // Compression and layout are detected per file; accepted for compatibility.
            "format.compression" | "format.newline_delimited" => {}
            other => {
                return plan_err!(
                    "table {}: JSON option '{other}' is not supported (JSON layout and \
                     compression are detected per file)",
                    cmd.name
                );
            }
        }
    }
    Ok(format)
}

/// The table option that raises (or lowers) the longest record a JSON or CSV source may hold.
pub const MAX_RECORD_OPTION: &str = "format.max_record_bytes";

fn max_record_bytes(cmd: &CreateExternalTable, value: &str) -> Result<u64> {
    value
        .trim()
        .parse::<bytesize::ByteSize>()
        .map(|size| size.as_u64().max(1))
        .map_err(|_| {
            DataFusionError::Plan(format!(
                "table {}: '{MAX_RECORD_OPTION}' must be a size like 64MiB, got '{value}'",
                cmd.name
            ))
        })
}

fn datafusion_format(
    session: &SessionState,
    name: &str,
    options: &HashMap<String, String>,
) -> Result<Arc<dyn FileFormat>> {
    let factory = session
        .get_file_format_factory(name)
        .ok_or_else(|| DataFusionError::Plan(format!("no {name} format registered")))?;
    factory.create(session, options)
}
