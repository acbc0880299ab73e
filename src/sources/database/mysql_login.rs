//! How pengine reaches a MySQL or MariaDB table: the LOCATION URL (`mysql://user@host:port/db`,
//! never with a password in it) and the password from where the `mysql` client's users keep it
//! (`MYSQL_PWD`, then the `[client]` section of an option file: `MYSQL_OPTION_FILE` if set,
//! else `~/.my.cnf`).

use std::path::PathBuf;

use url::Url;

use super::postgres_login::redact;
use crate::error::{Error, Result};

/// A MySQL server and database to log into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MysqlLogin {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub database: String,
    /// `disabled`, `preferred` or `required`.
    pub ssl_mode: String,
}

impl MysqlLogin {
    /// Reads a LOCATION. `who` names what reads it in errors (`table orders`).
    pub fn parse(location: &str, who: &str) -> Result<MysqlLogin> {
        let bad = |why: &str| {
            Error::Config(format!(
                "{who}: LOCATION '{}' {why}; write it as mysql://USER@HOST:PORT/DATABASE",
                redact(location)
            ))
        };
        let url = Url::parse(location).map_err(|_| bad("is not a connection URL"))?;
        if !matches!(url.scheme(), "mysql" | "mariadb") {
            return Err(bad("does not start with mysql://"));
        }
        if url.password().is_some() {
            return Err(Error::Config(format!(
                "{who}: LOCATION '{}' holds a password. Mapping files must not: remove \
                 it and set MYSQL_PWD, or put it in the [client] section of ~/.my.cnf",
                redact(location)
            )));
        }
        let user = match url.username() {
            "" => return Err(bad("names no user")),
            user => user.to_string(),
        };
        let database = url.path().trim_start_matches('/').to_string();
        if database.is_empty() {
            return Err(bad("names no database"));
        }
        let mut ssl_mode = "preferred".to_string();
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "ssl-mode" | "sslmode" => ssl_mode = value.to_lowercase(),
                other => {
                    return Err(bad(&format!(
                        "has the parameter '{other}', which pengine does not take (only ssl-mode)"
                    )));
                }
            }
        }
        Ok(MysqlLogin {
            host: url.host_str().unwrap_or("localhost").to_string(),
            port: url.port().unwrap_or(3306),
            user,
            database,
            ssl_mode,
        })
    }

    /// How the login reads in messages: no password is ever part of it.
    pub fn show(&self) -> String {
        format!(
            "mysql://{}@{}:{}/{}",
            self.user, self.host, self.port, self.database
        )
    }

    /// The password: `MYSQL_PWD`, else `password=` in the option file's `[client]` section.
    pub fn password(&self) -> Option<String> {
        if let Ok(password) = std::env::var("MYSQL_PWD") {
            return Some(password);
        }
        let file = std::env::var_os("MYSQL_OPTION_FILE")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".my.cnf")))?;
        client_password(&std::fs::read_to_string(file).ok()?)
    }
}

/// `password` of the `[client]` section of an option file (quotes removed).
fn client_password(text: &str) -> Option<String> {
    let mut in_client = false;
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            in_client = line.eq_ignore_ascii_case("[client]");
            continue;
        }
        if !in_client || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some((key, value)) = line.split_once('=')
            && key.trim().eq_ignore_ascii_case("password")
        {
            let value = value.trim();
            let unquoted = value
                .strip_prefix('"')
                .and_then(|v| v.strip_suffix('"'))
                .or_else(|| value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')))
                .unwrap_or(value);
            return Some(unquoted.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_names_the_server_and_never_holds_a_password() {
        let login = MysqlLogin::parse("mysql://app@db:3307/crm?ssl-mode=DISABLED", "t").unwrap();
        assert_eq!(login.show(), "mysql://app@db:3307/crm");
        assert_eq!(login.ssl_mode, "disabled");
        let err = MysqlLogin::parse("mysql://app:hunter2@db/crm", "customers").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("MYSQL_PWD") && !text.contains("hunter2"),
            "{text}"
        );
        assert!(MysqlLogin::parse("mysql://app@db/", "t").is_err());
    }

    #[test]
    fn the_client_sections_password_is_read_from_an_option_file() {
        let text = "[mysqld]\npassword=server\n[client]\nuser=app\npassword = \"p w\"\n";
        assert_eq!(client_password(text), Some("p w".into()));
        assert_eq!(client_password("[mysql]\npassword=x\n"), None);
    }
}
