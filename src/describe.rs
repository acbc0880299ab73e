//! `pengine sources`: what a mapping file's sources (or one location) look like to SQL: each
//! table's columns and types (nested fields with the expression that selects them), its files,
//! bytes and partition columns. It is what a user needs open while writing a mapping file.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::datasource::listing::ListingTable;
use datafusion::prelude::SessionContext;
use futures::TryStreamExt;
use serde::Serialize;

use crate::crawl::{self, Detected};
use crate::engine::{self, EngineOptions};
use crate::error::{Error, Result};
use crate::mapping::MappingFile;
use crate::sources::database::DatabaseTable;
use crate::sources::listing::SkippedFiles;
use crate::store::StoreRegistry;

/// One column, or one field of a nested column.
#[derive(Debug, Serialize)]
pub struct ColumnInfo {
    /// The SQL expression selecting it: `user_id`, `"userId"`, `context['page']`.
    pub expr: String,
    pub data_type: String,
    pub nullable: bool,
}

/// A listed file that is not read.
#[derive(Debug, Serialize)]
pub struct SkippedFile {
    pub location: String,
    pub reason: String,
}

/// How many skipped files the human output names.
const SKIPPED_SHOWN: usize = 10;

/// One registered source table or view.
#[derive(Debug, Serialize)]
pub struct SourceInfo {
    pub name: String,
    /// "table" or "view".
    pub kind: &'static str,
    pub format: Option<String>,
    pub location: Option<String>,
    pub files: Option<usize>,
    pub bytes: Option<u64>,
    pub partition_columns: Vec<String>,
    pub columns: Vec<ColumnInfo>,
    /// Files under the location that are not read, and why (hidden and side files, pengine's
    /// own output).
    pub skipped: Vec<SkippedFile>,
    /// What the crawler found (when describing a location rather than a mapping file).
    pub detected: Option<Detected>,
    /// A database table: which table, and the SQL the mapping's query sends for it.
    pub database: Option<DatabaseRead>,
}

/// What a database table of a mapping file reads.
#[derive(Debug, Serialize)]
pub struct DatabaseRead {
    /// The table or view in the database.
    pub table: String,
    /// The SQL sent to the database for each scan of the mapping's query: the columns, filters
    /// and limit pushed down. None when the query does not plan (the error is in `pengine
    /// validate`).
    pub sends: Option<Vec<String>>,
}

impl SourceInfo {
    pub fn human(&self) -> String {
        let mut out = format!("{} ({}", self.name, self.kind);
        if let Some(format) = &self.format {
            out.push_str(&format!(", {format}"));
        }
        if let Some(location) = &self.location {
            out.push_str(&format!(" at {location}"));
        }
        out.push_str(")\n");
        if let (Some(files), Some(bytes)) = (self.files, self.bytes) {
            out.push_str(&format!(
                "  files:      {files}, {}\n",
                bytesize::ByteSize(bytes)
            ));
        }
        // A database's table has no files to sniff; `table:` below names it.
        if let Some(detected) = self.detected.as_ref().filter(|d| !d.format.is_database()) {
            out.push_str(&format!("  layout:     {}\n", detected.layout.describe()));
            let compression: Vec<String> = detected
                .compression
                .iter()
                .map(|(c, n)| format!("{c} {n}"))
                .collect();
            out.push_str(&format!(
                "  sniffed:    compression {}",
                compression.join(", ")
            ));
            if !detected.json_layouts.is_empty() {
                let layouts: Vec<String> = detected
                    .json_layouts
                    .iter()
                    .map(|(l, n)| format!("{l} {n}"))
                    .collect();
                out.push_str(&format!("; JSON {}", layouts.join(", ")));
            }
            out.push('\n');
        }
        if !self.skipped.is_empty() {
            out.push_str(&format!("  not read:   {} file(s)\n", self.skipped.len()));
            for file in self.skipped.iter().take(SKIPPED_SHOWN) {
                out.push_str(&format!(
                    "              {}: {}\n",
                    file.location, file.reason
                ));
            }
            if self.skipped.len() > SKIPPED_SHOWN {
                out.push_str(&format!(
                    "              ... and {} more (--json lists them all)\n",
                    self.skipped.len() - SKIPPED_SHOWN
                ));
            }
        }
        if let Some(database) = &self.database {
            out.push_str(&format!("  table:      {}\n", database.table));
            match &database.sends {
                Some(sends) if sends.is_empty() => {
                    out.push_str("  sends:      nothing (the query does not read it)\n")
                }
                Some(sends) => {
                    for sql in sends {
                        out.push_str(&format!("  sends:      {sql}\n"));
                    }
                }
                None => out.push_str("  sends:      unknown: the mapping's query does not plan\n"),
            }
        }
        if !self.partition_columns.is_empty() {
            out.push_str(&format!(
                "  partitions: {}\n",
                self.partition_columns.join(", ")
            ));
        }
        let width = self.columns.iter().map(|c| c.expr.len()).max().unwrap_or(0);
        for column in &self.columns {
            out.push_str(&format!(
                "  {:<width$}  {}{}\n",
                column.expr,
                column.data_type,
                if column.nullable { "" } else { " not null" }
            ));
        }
        out
    }
}

/// Describes every source and view a mapping file registers, and what its query pushes down to
/// each database table.
pub async fn describe_mapping(
    mapping: &MappingFile,
    engine: &EngineOptions,
) -> Result<Vec<SourceInfo>> {
    let ctx = engine::session(
        engine,
        Arc::new(StoreRegistry::new()),
        mapping.dataset.key(),
    )?;
    engine::register_sources(&ctx, mapping).await?;
    let schema = ctx
        .catalog("datafusion")
        .and_then(|c| c.schema("public"))
        .ok_or_else(|| Error::Internal("the session has no default schema".into()))?;
    let mut names = schema.table_names();
    names.sort();
    let mut tables = Vec::new();
    for name in &names {
        tables.push(ctx.table_provider(name.as_str()).await?);
    }
    // Planning the query makes each database scan's SQL (files are not planned: a query that
    // does not plan on sampled columns would read every record to say so).
    let planned = if tables
        .iter()
        .any(|t| t.downcast_ref::<DatabaseTable>().is_some())
    {
        plans(&ctx, &mapping.query.sql).await
    } else {
        true
    };
    let mut out = Vec::new();
    for name in names {
        let mut info = describe_table(&ctx, &name, None).await?;
        if let Some(database) = &mut info.database
            && !planned
        {
            database.sends = None;
        }
        out.push(info);
    }
    Ok(out)
}

/// Whether the read-only query `sql` plans in `ctx`, down to its scans.
async fn plans(ctx: &SessionContext, sql: &str) -> bool {
    match ctx.sql_with_options(sql, engine::query_only()).await {
        Ok(frame) => frame.create_physical_plan().await.is_ok(),
        Err(_) => false,
    }
}

/// Crawls a location and describes it as the table `pengine init` would register.
pub async fn describe_location(location: &str, engine: &EngineOptions) -> Result<SourceInfo> {
    let crawl::Registered {
        ctx,
        detected,
        table,
    } = crawl::register(location, engine, str::to_string).await?;
    describe_table(&ctx, &table, Some(detected)).await
}

/// Describes a table a crawl found in a database, as `pengine init` would register it.
pub async fn describe_detected(detected: Detected, engine: &EngineOptions) -> Result<SourceInfo> {
    let stores = Arc::new(StoreRegistry::new());
    let crawl::Registered {
        ctx,
        detected,
        table,
    } = crawl::register_detected(detected, stores, engine, str::to_string).await?;
    describe_table(&ctx, &table, Some(detected)).await
}

async fn describe_table(
    ctx: &SessionContext,
    name: &str,
    detected: Option<Detected>,
) -> Result<SourceInfo> {
    let provider = ctx.table_provider(name).await?;
    let mut columns = Vec::new();
    for field in provider.schema().fields() {
        column_infos(
            field,
            crawl::profile::quote_identifier(field.name()),
            &mut columns,
        );
    }
    let mut info = SourceInfo {
        name: name.to_string(),
        kind: match provider.table_type() {
            datafusion::datasource::TableType::View => "view",
            _ => "table",
        },
        format: None,
        location: None,
        files: None,
        bytes: None,
        partition_columns: Vec::new(),
        columns,
        skipped: Vec::new(),
        detected,
        database: None,
    };
    if let Some(table) = provider.downcast_ref::<DatabaseTable>() {
        let origin = table.origin();
        info.format = Some(origin.format.to_string());
        info.location = Some(origin.server.clone());
        info.database = Some(DatabaseRead {
            table: origin.table.clone(),
            sends: Some(table.sent_sql()),
        });
        return Ok(info);
    }
    let Some(listing) = provider.downcast_ref::<ListingTable>() else {
        return Ok(info);
    };
    let options = listing.options();
    info.format = Some(options.format.get_ext().to_ascii_uppercase());
    info.partition_columns = options
        .table_partition_cols
        .iter()
        .map(|(c, _)| c.clone())
        .collect();
    let state = ctx.state();
    let (mut files, mut bytes) = (0, 0);
    let mut locations = Vec::new();
    for url in listing.table_paths() {
        locations.push(url.as_str().to_string());
        let store = ctx.runtime_env().object_store(url)?;
        let listed: Vec<_> = url
            .list_all_files(&state, store.as_ref(), &options.file_extension)
            .await?
            .try_collect()
            .await?;
        files += listed.len();
        bytes += listed.iter().map(|m| m.size).sum::<u64>();
        // Skipped files are noted as `/path` (local) or `s3://bucket/path`.
        let under = match url.get_url().scheme() {
            "file" => url.get_url().path().to_string(),
            _ => url.as_str().to_string(),
        };
        let skipped = SkippedFiles::of(state.config());
        info.skipped.extend(
            skipped
                .all()
                .into_iter()
                .filter(|(location, _)| location.starts_with(&under))
                .map(|(location, reason)| SkippedFile {
                    location,
                    reason: reason.to_string(),
                }),
        );
    }
    info.location = Some(locations.join(", "));
    info.files = Some(files);
    info.bytes = Some(bytes);
    Ok(info)
}

/// A column, or the leaves of a nested one with the expressions that select them.
fn column_infos(field: &Field, expr: String, out: &mut Vec<ColumnInfo>) {
    if let DataType::Struct(children) = field.data_type() {
        for child in children {
            column_infos(child, crawl::profile::field_expr(&expr, child.name()), out);
        }
        return;
    }
    out.push(ColumnInfo {
        expr,
        data_type: field.data_type().to_string(),
        nullable: field.is_nullable(),
    });
}
