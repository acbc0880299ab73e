//! The crawler behind `pengine init` and `pengine sources`: what is at a location (files, format,
//! compression, folder layout, CSV dialect), the `CREATE EXTERNAL TABLE` that reads it, and a
//! profile of its columns from a sample of rows.
//!
//! Detection reads only the first bytes of a few files; the schema comes from pengine's own
//! source formats (the same inference `pengine run` uses), so a generated mapping file reads the
//! data exactly as the crawl saw it.

pub mod database;
pub mod detect;
pub mod profile;
pub mod tables;

pub use detect::{Detected, detect};
pub use profile::{ColumnProfile, profile_table};

use std::sync::Arc;

use datafusion::prelude::SessionContext;

use crate::engine::{self, EngineOptions};
use crate::error::{Error, Result};
use crate::store::StoreRegistry;

/// A crawled location, registered as a table in a session of its own.
pub struct Registered {
    pub ctx: SessionContext,
    pub detected: Detected,
    pub table: String,
}

/// Crawls `location` and registers it, as the `CREATE EXTERNAL TABLE` a generated mapping file
/// would hold, under the name `name` picks from the detected one.
pub async fn register(
    location: &str,
    engine: &EngineOptions,
    name: impl FnOnce(&str) -> String,
) -> Result<Registered> {
    let stores = Arc::new(StoreRegistry::new());
    let detected = detect(location, &stores).await?;
    register_detected(detected, stores, engine, name).await
}

/// Registers what a crawl found (files, or a database's table) in a session of its own.
pub async fn register_detected(
    detected: Detected,
    stores: Arc<StoreRegistry>,
    engine: &EngineOptions,
    name: impl FnOnce(&str) -> String,
) -> Result<Registered> {
    let table = name(&detected.name);
    let ctx = engine::session(engine, stores, "crawl")?;
    let ddl = detected.ddl(&table, &detected.table_location);
    let registered = async { ctx.sql(&ddl).await?.collect().await }.await;
    registered.map_err(|e| match e.find_root() {
        // A database that cannot be reached or read keeps its own message and exit code.
        datafusion::error::DataFusionError::External(inner)
            if inner
                .downcast_ref::<Error>()
                .is_some_and(|e| matches!(e, Error::Database(_))) =>
        {
            Error::Database(format!("{}: {}", detected.location, inner))
        }
        _ => Error::Data(format!(
            "{}: cannot read it as {}: {}",
            detected.location,
            detected.format.sql_name(),
            e.strip_backtrace()
        )),
    })?;
    Ok(Registered {
        ctx,
        detected,
        table,
    })
}
