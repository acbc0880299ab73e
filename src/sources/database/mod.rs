//! Read-only tables from databases: `CREATE EXTERNAL TABLE t STORED AS POSTGRES LOCATION
//! 'postgres://user@host:port/db' OPTIONS ('table' 'public.orders')`, and `STORED AS SQLITE
//! LOCATION 'data/crm.db'`.
//!
//! The providers come from datafusion-table-providers, which push projections, filters and
//! limits down to the database. pengine builds them from a connection pool of its own and never
//! through the crate's table factories, which create tables when asked: nothing is ever
//! written to a database. Secrets never come from the mapping file (see [`postgres_login`]).

pub mod catalog;
pub mod mysql_login;
mod pools;
pub mod postgres_login;
mod postgres_types;
mod query;
mod read_exec;
mod sqlite;
pub mod table;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::catalog::{Session, TableProvider, TableProviderFactory};
use datafusion::common::{DataFusionError, Result as DfResult, TableReference};
use datafusion::logical_expr::CreateExternalTable;
use datafusion_table_providers::mysql::MySQLTableFactory;
use datafusion_table_providers::postgres::PostgresTableFactory;
use datafusion_table_providers::sql::db_connection_pool::mysqlpool::MySQLConnectionPool;
use datafusion_table_providers::sql::db_connection_pool::postgrespool::PostgresConnectionPool;
use tokio::sync::Mutex;

use crate::error::Error;
use mysql_login::MysqlLogin;
use pools::{mysql_pool, pooled, postgres_pool, text_rows};
use postgres_login::PgLogin;
pub use table::{DatabaseOrigin, DatabaseTable};

/// The `STORED AS` names this factory serves.
pub const DATABASE_FORMATS: &[&str] = &["POSTGRES", "MYSQL", "SQLITE"];

/// Creates the database tables of a session; one connection pool per database it logs into.
#[derive(Default)]
pub struct DatabaseTableFactory {
    postgres: Mutex<HashMap<String, Arc<PostgresConnectionPool>>>,
    mysql: Mutex<HashMap<String, Arc<MySQLConnectionPool>>>,
}

impl std::fmt::Debug for DatabaseTableFactory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DatabaseTableFactory")
    }
}

/// What a database table reads: a table (or view) of the database.
struct Source<'a> {
    /// The mapping file's name for the table.
    name: String,
    location: &'a str,
    table: TableReference,
    /// `OPTIONS ('query' ...)`: a read-only query read instead of a table (PostgreSQL).
    query: Option<String>,
    /// MySQL `TINYINT(1)` columns are read as numbers (`'tinyint1' 'number'`), not booleans.
    tinyint1_numbers: bool,
}

fn source(cmd: &CreateExternalTable) -> Result<Source<'_>, Error> {
    let name = cmd.name.to_string();
    let [location] = cmd.locations.as_slice() else {
        return Err(Error::Config(format!(
            "table {name}: give one LOCATION (a connection URL or a SQLite file)"
        )));
    };
    if !cmd.schema.fields().is_empty() {
        return Err(Error::Config(format!(
            "table {name}: a database table's columns come from the database; remove the column \
             list (cast in the query instead)"
        )));
    }
    let is_postgres = cmd.file_type.eq_ignore_ascii_case("POSTGRES");
    let is_mysql = cmd.file_type.eq_ignore_ascii_case("MYSQL");
    let query = cmd.options.get("format.query").cloned();
    let table = match (cmd.options.get("format.table"), &query) {
        (Some(table), None) => TableReference::from(table.as_str()),
        (None, Some(_)) if is_postgres || is_mysql => TableReference::bare("query"),
        (None, Some(_)) => {
            return Err(Error::Config(format!(
                "table {name}: OPTIONS ('query' ...) is read from PostgreSQL and MySQL only; name \
                 a table or a view of this database with OPTIONS ('table' ...) and filter in the \
                 mapping's query (filters are pushed down to the database)"
            )));
        }
        (Some(_), Some(_)) => {
            return Err(Error::Config(format!(
                "table {name}: give OPTIONS ('table' ...) or ('query' ...), not both"
            )));
        }
        (None, None) => {
            return Err(Error::Config(format!(
                "table {name}: say which table of the database to read with OPTIONS ('table' \
                 'schema.name'){}",
                if is_postgres || is_mysql {
                    ", or give a read-only query with OPTIONS ('query' 'SELECT ...')"
                } else {
                    ""
                }
            )));
        }
    };
    let known = |k: &str| {
        k == "format.table"
            || ((is_postgres || is_mysql) && k == "format.query")
            || (is_mysql && k == "format.tinyint1")
    };
    if let Some(other) = cmd.options.keys().find(|k| !known(k)) {
        return Err(Error::Config(format!(
            "table {name}: unknown option '{}' for a database table (only 'table'{})",
            other.trim_start_matches("format."),
            match () {
                _ if is_mysql => ", 'query' and 'tinyint1'",
                _ if is_postgres => " and 'query'",
                _ => "",
            }
        )));
    }
    let tinyint1_numbers = match cmd.options.get("format.tinyint1").map(String::as_str) {
        None | Some("boolean") => false,
        Some("number") => true,
        Some(other) => {
            return Err(Error::Config(format!(
                "table {name}: OPTIONS ('tinyint1' '{other}'): write 'boolean' (MySQL's BOOLEAN, \
                 the default) or 'number'"
            )));
        }
    };
    Ok(Source {
        name,
        location,
        table,
        query,
        tinyint1_numbers,
    })
}

#[async_trait]
impl TableProviderFactory for DatabaseTableFactory {
    async fn create(
        &self,
        _state: &dyn Session,
        cmd: &CreateExternalTable,
    ) -> DfResult<Arc<dyn TableProvider>> {
        let provider = match cmd.file_type.to_ascii_uppercase().as_str() {
            "POSTGRES" => self.postgres(source(cmd).map_err(external)?).await,
            "MYSQL" => self.mysql(source(cmd).map_err(external)?).await,
            "SQLITE" => sqlite::table(source(cmd).map_err(external)?).await,
            other => Err(Error::Internal(format!("no database format {other}"))),
        };
        provider.map_err(external)
    }
}

fn external(e: Error) -> DataFusionError {
    DataFusionError::External(Box::new(e))
}

impl DatabaseTableFactory {
    async fn postgres(&self, source: Source<'_>) -> Result<Arc<dyn TableProvider>, Error> {
        let login = PgLogin::parse(source.location, &format!("table {}", source.name))?;
        let who = format!("table {}", source.name);
        let pool = pooled(&self.postgres, login.show(), postgres_pool(&login, &who)).await?;
        if let Some(query) = &source.query {
            let provider = query::postgres_query_table(pool, query, &who, &login.show()).await?;
            let server = login.show();
            return Ok(wrap(
                provider,
                "POSTGRES",
                server,
                &source,
                Vec::new(),
                Vec::new(),
            ));
        }
        let provider = PostgresTableFactory::new(pool)
            .table_provider(source.table.clone())
            .await
            .map_err(|e| unreadable_table(&source, &login.show(), &e.to_string()))?;
        let refused = provider
            .schema()
            .fields()
            .iter()
            .filter_map(|f| {
                let source_type = f
                    .metadata()
                    .get(datafusion_table_providers::SOURCE_TYPE_METADATA_KEY)?;
                let (cast, why) = postgres_types::cast_needed(f.name(), source_type)?;
                let message = format!(
                    "table {}: column {} of {} is of type {source_type}, which pengine cannot read \
                     as it is ({why}): read the table through a query that casts it, OPTIONS \
                     ('query' 'SELECT <the columns you use>, {cast} AS {} FROM {}') instead of \
                     OPTIONS ('table' ...)",
                    source.name,
                    f.name(),
                    source.table,
                    f.name(),
                    source.table
                );
                Some((f.name().clone(), message))
            })
            .collect();
        Ok(wrap(
            provider,
            "POSTGRES",
            login.show(),
            &source,
            Vec::new(),
            refused,
        ))
    }

    async fn mysql(&self, source: Source<'_>) -> Result<Arc<dyn TableProvider>, Error> {
        let login = MysqlLogin::parse(source.location, &format!("table {}", source.name))?;
        let who = format!("table {}", source.name);
        let pool = pooled(&self.mysql, login.show(), mysql_pool(&login, &who)).await?;
        if let Some(query) = &source.query {
            let provider = query::mysql_query_table(pool, query, &who, &login.show()).await?;
            let server = login.show();
            return Ok(wrap(
                provider,
                "MYSQL",
                server,
                &source,
                Vec::new(),
                Vec::new(),
            ));
        }
        let provider = MySQLTableFactory::new(Arc::clone(&pool))
            .table_provider(source.table.clone())
            .await
            .map_err(|e| unreadable_table(&source, &login.show(), &e.to_string()))?;
        let booleans = if source.tinyint1_numbers {
            Vec::new()
        } else {
            mysql_booleans(&pool, &source.table)
                .await
                .map_err(|e| unreadable_table(&source, &login.show(), &e))?
        };
        Ok(wrap(
            provider,
            "MYSQL",
            login.show(),
            &source,
            booleans,
            Vec::new(),
        ))
    }
}

fn wrap(
    provider: Arc<dyn TableProvider>,
    format: &'static str,
    server: String,
    source: &Source<'_>,
    booleans: Vec<String>,
    refused: Vec<(String, String)>,
) -> Arc<dyn TableProvider> {
    let origin = DatabaseOrigin {
        name: source.name.clone(),
        format,
        server,
        table: match &source.query {
            Some(query) => format!("the query {}", query.trim()),
            None => source.table.to_string(),
        },
    };
    Arc::new(DatabaseTable::new(provider, origin, booleans).refusing(refused))
}

/// The table's `TINYINT(1)` columns: MySQL's BOOLEAN, which its clients (JDBC's included) read
/// as booleans.
async fn mysql_booleans(
    pool: &MySQLConnectionPool,
    table: &TableReference,
) -> Result<Vec<String>, String> {
    let literal = |text: &str| format!("'{}'", text.replace('\\', "\\\\").replace('\'', "''"));
    let schema = table
        .schema()
        .map_or_else(|| "DATABASE()".to_string(), literal);
    let sql = format!(
        "SELECT COLUMN_NAME FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = {schema} AND \
         TABLE_NAME = {} AND LOWER(COLUMN_TYPE) = 'tinyint(1)'",
        literal(table.table())
    );
    let conn = pool.connect_direct().await.map_err(|e| e.to_string())?;
    let rows = text_rows(&conn, &sql).await?;
    Ok(rows
        .into_iter()
        .filter_map(|mut r| r.swap_remove(0))
        .collect())
}

fn unreadable_table(source: &Source<'_>, server: &str, why: &str) -> Error {
    let why = first_line(why);
    // A column of a type the reader has no mapping for makes the whole table unreadable.
    let hint = if why.to_ascii_lowercase().contains("unsupported data type") {
        "The reader has no mapping for that column's type: read a view of the table that casts \
         it to text or a number (CAST(col AS CHAR), col::text)"
    } else {
        "Check the table's name (schema.name) and that the user may read it"
    };
    Error::Database(format!(
        "table {}: cannot read {} of {server}: {why}. {hint}",
        source.name, source.table,
    ))
}

/// The first line of a driver's message (some add a long hint after).
fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or(text).trim_end_matches('.')
}
