//! What a database holds, for `pengine init --source postgres://...`: the tables and views its
//! user may read, listed from the database's own catalog through a read-only connection.

use datafusion_table_providers::sql::db_connection_pool::DbConnectionPool;

use super::mysql_login::MysqlLogin;
use super::pools::{mysql_pool, postgres_pool, text_rows};
use super::postgres_login::PgLogin;
use super::{first_line, sqlite};
use crate::error::Error;

/// The kinds of database a location can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseKind {
    Postgres,
    Mysql,
    Sqlite,
}

impl DatabaseKind {
    /// The kind of database `location` names: a `postgres://` or `mysql://` URL, or a file that
    /// starts with SQLite's header. None for anything else (files and folders of data).
    pub fn of(location: &str) -> Option<DatabaseKind> {
        let scheme = location
            .split_once("://")
            .map(|(s, _)| s.to_ascii_lowercase());
        match scheme.as_deref() {
            Some("postgres" | "postgresql") => return Some(DatabaseKind::Postgres),
            Some("mysql" | "mariadb") => return Some(DatabaseKind::Mysql),
            Some(_) => return None,
            None => {}
        }
        let mut header = [0u8; 16];
        let mut file = std::fs::File::open(location).ok()?;
        std::io::Read::read_exact(&mut file, &mut header).ok()?;
        (&header == b"SQLite format 3\0").then_some(DatabaseKind::Sqlite)
    }

    /// The `STORED AS` name.
    pub fn sql_name(self) -> &'static str {
        match self {
            DatabaseKind::Postgres => "POSTGRES",
            DatabaseKind::Mysql => "MYSQL",
            DatabaseKind::Sqlite => "SQLITE",
        }
    }
}

/// A database's readable tables and views (`schema.name` in PostgreSQL, `name` otherwise), and
/// how the server shows in messages (without a secret).
pub async fn list_tables(
    kind: DatabaseKind,
    location: &str,
) -> Result<(Vec<String>, String), Error> {
    let who = "the database to crawl";
    let (rows, server) = match kind {
        DatabaseKind::Postgres => {
            let login = PgLogin::parse(location, who)?;
            let pool = postgres_pool(&login, who).await?;
            let conn = pool
                .connect_direct()
                .await
                .map_err(|e| listing(&login.show(), &e))?;
            // Tables and views the user may read, outside PostgreSQL's own schemas.
            let sql = "SELECT table_schema || '.' || table_name FROM information_schema.tables \
                       WHERE table_schema NOT IN ('pg_catalog', 'information_schema') \
                       AND has_table_privilege(quote_ident(table_schema) || '.' || \
                       quote_ident(table_name), 'SELECT') ORDER BY 1";
            let rows = text_rows(&conn, sql).await;
            (rows.map_err(|e| listing(&login.show(), &e))?, login.show())
        }
        DatabaseKind::Mysql => {
            let login = MysqlLogin::parse(location, who)?;
            let pool = mysql_pool(&login, who).await?;
            let conn = pool
                .connect_direct()
                .await
                .map_err(|e| listing(&login.show(), &e))?;
            let sql = "SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = \
                       DATABASE() ORDER BY 1";
            let rows = text_rows(&conn, sql).await;
            (rows.map_err(|e| listing(&login.show(), &e))?, login.show())
        }
        DatabaseKind::Sqlite => {
            let (pool, shown) = sqlite::open(location, who).await?;
            let conn = pool.connect().await.map_err(|e| listing(&shown, &e))?;
            let conn = conn
                .as_async()
                .ok_or_else(|| listing(&shown, &"no asynchronous connection"))?;
            let sql = "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name \
                       NOT LIKE 'sqlite_%' ORDER BY 1";
            let rows = text_rows(conn, sql).await;
            (rows.map_err(|e| listing(&shown, &e))?, shown)
        }
    };
    let tables = rows
        .into_iter()
        .filter_map(|mut row| row.swap_remove(0))
        .collect();
    Ok((tables, server))
}

fn listing(server: &str, why: &impl std::fmt::Display) -> Error {
    Error::Database(format!(
        "cannot list the tables of {server}: {}",
        first_line(&why.to_string())
    ))
}
