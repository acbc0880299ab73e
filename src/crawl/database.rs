//! A database as `pengine init --source` crawls it: each table or view its user may read is a
//! source, described as files are (a [`Detected`] whose LOCATION is the connection URL).

use std::collections::BTreeMap;

use super::detect::{Detected, Format, Layout, plain_identifier};
use crate::error::Result;
use crate::sources::database::catalog::{self, DatabaseKind};

/// The tables of the database `location` names, or None when it names no database.
pub async fn tables(location: &str) -> Result<Option<Vec<Detected>>> {
    let Some(kind) = DatabaseKind::of(location) else {
        return Ok(None);
    };
    let (tables, server) = catalog::list_tables(kind, location).await?;
    let format = match kind {
        DatabaseKind::Postgres => Format::Postgres,
        DatabaseKind::Mysql => Format::Mysql,
        DatabaseKind::Sqlite => Format::Sqlite,
    };
    // SQLite's LOCATION is the file, absolute as other local locations are.
    let table_location = match kind {
        DatabaseKind::Sqlite => server.clone(),
        _ => location.to_string(),
    };
    Ok(Some(
        tables
            .into_iter()
            .map(|table| Detected {
                location: format!("{server} {table}"),
                table_location: table_location.clone(),
                name: plain_identifier(table.rsplit('.').next().unwrap_or(&table)),
                format,
                files: 0,
                bytes: 0,
                compression: BTreeMap::new(),
                json_layouts: BTreeMap::new(),
                csv: None,
                layout: Layout::Table { table },
                other_formats: Vec::new(),
                encoding: None,
                exclude: Vec::new(),
                not_data: Vec::new(),
            })
            .collect(),
    ))
}
