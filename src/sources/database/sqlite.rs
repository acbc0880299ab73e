//! SQLite files as tables, opened read-only (SQLite's `mode=ro`): a missing file is an error, not
//! a new empty database, and nothing (not even the journal mode) is changed in the file.

use std::sync::Arc;
use std::time::Duration;

use datafusion::catalog::TableProvider;
use datafusion_table_providers::sql::db_connection_pool::JoinPushDown;
use datafusion_table_providers::sql::db_connection_pool::Mode;
use datafusion_table_providers::sql::db_connection_pool::sqlitepool::SqliteConnectionPool;
use datafusion_table_providers::sqlite::SqliteTableFactory;

use super::{Source, first_line};
use crate::error::Error;

/// How long a read waits for a writer's lock on the file.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

pub(super) async fn table(source: Source<'_>) -> Result<Arc<dyn TableProvider>, Error> {
    let (pool, shown) = open(source.location, &format!("table {}", source.name)).await?;
    let provider = SqliteTableFactory::new(Arc::new(pool))
        .table_provider(source.table.clone())
        .await
        .map_err(|e| {
            Error::Database(format!(
                "table {}: cannot read {} of the SQLite file {shown}: {}",
                source.name,
                source.table,
                first_line(&e.to_string())
            ))
        })?;
    Ok(super::wrap(
        provider,
        "SQLITE",
        shown,
        &source,
        Vec::new(),
        Vec::new(),
    ))
}

/// Opens the SQLite file at `location` read-only; `who` names what needs it in errors. Also
/// returns the file's absolute path, as messages show it.
pub(crate) async fn open(
    location: &str,
    who: &str,
) -> Result<(SqliteConnectionPool, String), Error> {
    let path = std::path::absolute(std::path::Path::new(location))
        .map_err(|e| Error::io(location.to_string(), e))?;
    if !path.is_file() {
        return Err(Error::Database(format!(
            "{who}: the SQLite file {} does not exist (LOCATION is a file path)",
            path.display()
        )));
    }
    let shown = path.display().to_string();
    let uri = format!(
        "file:{}?mode=ro",
        shown.replace('?', "%3f").replace('#', "%23")
    );
    let pool = SqliteConnectionPool::new(
        &uri,
        Mode::File,
        JoinPushDown::AllowedFor(shown.clone()),
        Vec::new(),
        BUSY_TIMEOUT,
    )
    .await
    .map_err(|e| {
        Error::Database(format!(
            "{who}: cannot open the SQLite file {shown}: {}",
            first_line(&e.to_string())
        ))
    })?;
    Ok((pool, shown))
}
