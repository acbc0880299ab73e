//! The connection pools pengine reads databases through, built from its own logins (never the
//! provider crate's table factories), and the catalog queries run on them.

use std::collections::HashMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion_table_providers::sql::db_connection_pool::dbconnection::AsyncDbConnection;
use datafusion_table_providers::sql::db_connection_pool::mysqlpool::MySQLConnectionPool;
use datafusion_table_providers::sql::db_connection_pool::postgrespool::PostgresConnectionPool;
use futures::TryStreamExt;
use secrecy::SecretString;
use tokio::sync::Mutex;

use super::first_line;
use super::mysql_login::MysqlLogin;
use super::postgres_login::PgLogin;
use crate::error::Error;

/// A pool of connections to a PostgreSQL database; `who` (the table, or the database) names
/// what could not connect.
pub(super) async fn postgres_pool(
    login: &PgLogin,
    who: &str,
) -> Result<PostgresConnectionPool, Error> {
    let mut params = params(
        [
            ("host", login.host.clone()),
            ("port", login.port.to_string()),
            ("user", login.user.clone()),
            ("db", login.database.clone()),
            ("sslmode", login.sslmode.clone()),
            ("application_name", "pengine".to_string()),
            // Every transaction of pengine's sessions is read-only, whatever SQL they run.
            ("options", "-c default_transaction_read_only=on".to_string()),
        ],
        login.password(),
    );
    if let Some(file) = &login.sslrootcert {
        params.insert("sslrootcert".into(), SecretString::from(file.clone()));
    }
    PostgresConnectionPool::new(params)
        .await
        .map(|p| {
            p.with_unsupported_type_action(
                datafusion_table_providers::UnsupportedTypeAction::String,
            )
        })
        .map_err(|e| unreachable_server(who, &login.show(), &e.to_string(), POSTGRES_PASSWORD))
}

/// A pool of connections to a MySQL database.
pub(super) async fn mysql_pool(
    login: &MysqlLogin,
    who: &str,
) -> Result<MySQLConnectionPool, Error> {
    let params = params(
        [
            ("host", login.host.clone()),
            ("tcp_port", login.port.to_string()),
            ("user", login.user.clone()),
            ("db", login.database.clone()),
            ("sslmode", login.ssl_mode.clone()),
        ],
        login.password(),
    );
    MySQLConnectionPool::new(params)
        .await
        .map_err(|e| unreachable_server(who, &login.show(), &e.to_string(), MYSQL_PASSWORD))
}

/// The rows of a catalog query, each value as text (None for null).
pub(super) async fn text_rows<T: 'static, P: 'static>(
    conn: &dyn AsyncDbConnection<T, P>,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>, String> {
    let batches: Vec<_> = conn
        .query_arrow(sql, &[], None)
        .await
        .map_err(|e| e.to_string())?
        .try_collect()
        .await
        .map_err(|e| e.to_string())?;
    let mut rows = Vec::new();
    for batch in &batches {
        let mut columns = Vec::new();
        for column in batch.columns() {
            let text = cast(column, &DataType::Utf8).map_err(|e| e.to_string())?;
            let text = text
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or("a catalog value is not text")?
                .clone();
            columns.push(text);
        }
        for i in 0..batch.num_rows() {
            rows.push(
                columns
                    .iter()
                    .map(|c| c.is_valid(i).then(|| c.value(i).to_string()))
                    .collect(),
            );
        }
    }
    Ok(rows)
}

/// Where each server's users keep the password, for the message of a failed login.
const POSTGRES_PASSWORD: &str = "PGPASSWORD, or ~/.pgpass or the file PGPASSFILE names";
const MYSQL_PASSWORD: &str = "MYSQL_PWD, or the [client] section of ~/.my.cnf";

/// A provider crate's connection parameters (the password only ever held as a secret).
fn params<const N: usize>(
    plain: [(&str, String); N],
    password: Option<String>,
) -> HashMap<String, SecretString> {
    let mut params: HashMap<String, SecretString> = plain
        .into_iter()
        .map(|(k, v)| (k.to_string(), SecretString::from(v)))
        .collect();
    if let Some(password) = password {
        params.insert("pass".into(), SecretString::from(password));
    }
    params
}

/// The pool of one server and database, made by `connect` the first time a table needs it.
pub(super) async fn pooled<P>(
    pools: &Mutex<HashMap<String, Arc<P>>>,
    key: String,
    connect: impl std::future::Future<Output = Result<P, Error>>,
) -> Result<Arc<P>, Error> {
    let mut pools = pools.lock().await;
    if let Some(pool) = pools.get(&key) {
        return Ok(Arc::clone(pool));
    }
    let pool = Arc::new(connect.await?);
    pools.insert(key, Arc::clone(&pool));
    Ok(pool)
}

fn unreachable_server(who: &str, server: &str, why: &str, passwords: &str) -> Error {
    Error::Database(format!(
        "{who}: cannot connect to {server}: {}. Check the host and port, and the password \
         ({passwords})",
        first_line(why)
    ))
}
