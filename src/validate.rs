//! `pengine validate`: the checks without the run.
//!
//! * On mapping files: the static checks (required and reserved fields and their types, metadata
//!   counts, names, textual fields, the schema itself), planning against the sources' schemas but
//!   reading no data.
//! * With `--dataset TYPE LOCATION`: a CSV dataset made by another tool (a folder of parts in
//!   Personalize's dialect, locally or on S3, optionally with its schema file) goes through every
//!   row and dataset-level check of a run, writing nothing.

use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::Value;

use crate::error::{Error, Result};
use crate::mapping::{Directives, MappingFile, SourceStatement};
use crate::personalize::{DatasetType, OutputColumn, avro};
use crate::report::RunReport;
use crate::run::{self, RunOptions};

/// The outcome of the static checks of one mapping file.
#[derive(Debug, Serialize)]
pub struct StaticResult {
    pub file: String,
    pub dataset: Option<DatasetType>,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schema: Option<Value>,
    /// Why the checks failed, for the exit code (the CLI's to choose).
    #[serde(skip)]
    pub(crate) failure: Option<Error>,
}

impl StaticResult {
    /// A mapping file that failed its checks (or did not load) with `e`.
    pub(crate) fn failed(file: String, dataset: Option<DatasetType>, e: Error) -> Self {
        StaticResult {
            file,
            dataset,
            ok: false,
            error: Some(crate::error::message(&e)),
            schema: None,
            failure: Some(e),
        }
    }
}

/// Static checks of one mapping file.
pub(crate) async fn check_mapping(mapping: &MappingFile, options: &RunOptions) -> StaticResult {
    let stores = std::sync::Arc::new(crate::store::StoreRegistry::new());
    let outcome = crate::dataset_plan::plan(mapping, &options.engine, stores)
        .await
        .map(|planned| planned.columns);
    match outcome {
        Ok(plan) => StaticResult {
            file: mapping.display_name(),
            dataset: Some(mapping.dataset),
            ok: true,
            error: None,
            schema: Some(avro::schema_value(&plan)),
            failure: None,
        },
        Err(e) => StaticResult::failed(mapping.display_name(), Some(mapping.dataset), e),
    }
}

/// What a schema file says about the columns.
struct SchemaFile {
    names: Vec<String>,
    types: Vec<String>,
    directives: Directives,
}

fn read_schema(path: &Path) -> Result<SchemaFile> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::io(format!("cannot read schema {}", path.display()), e))?;
    apache_avro::Schema::parse_str(&text).map_err(|e| {
        Error::Data(format!(
            "{} is not a valid Avro schema: {e}",
            path.display()
        ))
    })?;
    let value: Value =
        serde_json::from_str(&text).map_err(|e| Error::Data(format!("{}: {e}", path.display())))?;
    let fields = value["fields"]
        .as_array()
        .ok_or_else(|| Error::Data(format!("{}: no \"fields\" array", path.display())))?;
    let mut schema = SchemaFile {
        names: Vec::new(),
        types: Vec::new(),
        directives: Directives::default(),
    };
    for field in fields {
        let name = field["name"].as_str().unwrap_or_default().to_string();
        // "string" or ["null", "string"].
        let kind = match &field["type"] {
            Value::String(t) => t.clone(),
            Value::Array(union) => union
                .iter()
                .filter_map(Value::as_str)
                .find(|t| *t != "null")
                .unwrap_or("null")
                .to_string(),
            other => other.to_string(),
        };
        if field["textual"] == true {
            schema.directives.textual.push(name.clone());
        } else if kind == "string" && field["categorical"] != true {
            schema.directives.not_categorical.push(name.clone());
        }
        schema.names.push(name);
        schema.types.push(kind);
    }
    Ok(schema)
}

/// Checks an existing CSV dataset at `location` (a folder of parts, or one file).
pub(crate) async fn check_data(
    dataset: DatasetType,
    location: &str,
    schema_path: Option<&Path>,
    options: &RunOptions,
) -> Result<RunReport> {
    let schema = schema_path.map(read_schema).transpose()?;
    let mut directives = schema
        .as_ref()
        .map(|s| s.directives.clone())
        .unwrap_or_default();
    // A textual flag in a non-Items schema is the schema's error, reported by the static check.
    if dataset != DatasetType::Items {
        directives.textual.clear();
    }
    let resolved =
        if !location.contains("://") && Path::new(location).is_dir() && !location.ends_with('/') {
            format!("{location}/")
        } else {
            location.to_string()
        };
    let name = format!("<data at {location}>");
    let mapping = MappingFile {
        path: PathBuf::from(&name),
        dataset,
        directives,
        setup: vec![
            SourceStatement {
                // Personalize reads only the first level of a data folder.
                sql: "SET datafusion.execution.listing_table_ignore_subdirectory = true".into(),
                line: 1,
            },
            SourceStatement {
                sql: format!(
                    "CREATE EXTERNAL TABLE data STORED AS CSV LOCATION '{}' OPTIONS \
                     ('format.has_header' 'true', 'format.escape' '\\', \
                     'format.double_quote' 'false')",
                    resolved.replace('\'', "''")
                ),
                line: 1,
            },
        ],
        query: SourceStatement {
            sql: "SELECT * FROM data".into(),
            line: 1,
        },
    };
    // One pass: the checks, then the schema file against the columns that pass found.
    let data_bytes = data_size(&resolved).await?;
    let report = run::check_only(&mapping, options, location, data_bytes).await?;
    if let Some(schema) = &schema {
        check_against_schema(&report.columns, schema)?;
    }
    Ok(report)
}

/// Bytes of the data Personalize would import from `location`: the file, or the files directly
/// in the folder.
async fn data_size(location: &str) -> Result<u64> {
    use object_store::ObjectStoreExt;
    let url = crate::store::parse_location(location)?;
    let store = crate::store::StoreRegistry::new().store_for(&url)?;
    let path = object_store::path::Path::from_url_path(url.path())
        .map_err(|e| Error::Config(format!("'{location}': {e}")))?;
    if !location.ends_with('/')
        && let Ok(meta) = store.head(&path).await
    {
        return Ok(meta.size);
    }
    let listed = store
        .list_with_delimiter(Some(&path))
        .await
        .map_err(|e| Error::storage(format!("listing {location}"), e))?;
    Ok(listed.objects.iter().map(|m| m.size).sum())
}

/// The header (names and order) and types of the data against its schema file.
fn check_against_schema(columns: &[OutputColumn], schema: &SchemaFile) -> Result<()> {
    let header: Vec<&str> = columns.iter().map(|c| c.source_name.as_str()).collect();
    if header != schema.names {
        return Err(Error::Data(format!(
            "the CSV header ({}) differs from the schema's fields ({}): Personalize reports \
             'Input CSV is missing the following columns'. Names and order must match",
            header.join(","),
            schema.names.join(",")
        )));
    }
    for (column, declared) in columns.iter().zip(&schema.types) {
        let found = column.avro_type.name();
        let compatible = found == declared
            || (found == "long" && matches!(declared.as_str(), "int" | "float" | "double"))
            || (found == "double" && declared == "float");
        if !compatible {
            return Err(Error::column(
                &column.name,
                format!("the schema declares {declared} but the data holds {found} values"),
            ));
        }
    }
    Ok(())
}
