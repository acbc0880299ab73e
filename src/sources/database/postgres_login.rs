//! How pengine reaches a PostgreSQL table: the LOCATION URL (`postgres://user@host:port/db`,
//! never with a password in it) and the password from where libpq's users keep it
//! (`PGPASSWORD`, then the password file `PGPASSFILE` or `~/.pgpass`), so that a mapping file
//! never holds a secret and no message ever shows one.

use std::path::PathBuf;

use url::Url;

use crate::error::{Error, Result};

/// A PostgreSQL server and database to log into.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgLogin {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub database: String,
    /// `disable`, `prefer`, `require`, `verify-ca` or `verify-full`.
    pub sslmode: String,
}

impl PgLogin {
    /// Reads a LOCATION. `table` names the table in errors.
    pub fn parse(location: &str, table: &str) -> Result<PgLogin> {
        let bad = |why: &str| {
            Error::Config(format!(
                "table {table}: LOCATION '{}' {why}; write it as postgres://USER@HOST:PORT/DATABASE",
                redact(location)
            ))
        };
        let url = Url::parse(location).map_err(|_| bad("is not a connection URL"))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(bad("does not start with postgres://"));
        }
        if url.password().is_some() {
            return Err(Error::Config(format!(
                "table {table}: LOCATION '{}' holds a password. Mapping files must not: remove \
                 it and set PGPASSWORD, or add the password to ~/.pgpass (or the file PGPASSFILE \
                 names)",
                redact(location)
            )));
        }
        let host = url
            .host_str()
            .map(str::to_string)
            .or_else(|| std::env::var("PGHOST").ok())
            .unwrap_or_else(|| "localhost".to_string());
        let port = match url.port() {
            Some(port) => port,
            None => std::env::var("PGPORT")
                .ok()
                .and_then(|p| p.parse().ok())
                .unwrap_or(5432),
        };
        let user = match url.username() {
            "" => std::env::var("PGUSER").map_err(|_| bad("names no user (nor is PGUSER set)"))?,
            user => percent_decode(user),
        };
        let database = match url.path().trim_start_matches('/') {
            "" => std::env::var("PGDATABASE").unwrap_or_else(|_| user.clone()),
            db => percent_decode(db),
        };
        let mut sslmode = std::env::var("PGSSLMODE").unwrap_or_else(|_| "prefer".to_string());
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "sslmode" => sslmode = value.into_owned(),
                other => {
                    return Err(bad(&format!(
                        "has the parameter '{other}', which pengine does not take (only sslmode)"
                    )));
                }
            }
        }
        Ok(PgLogin {
            host,
            port,
            user,
            database,
            sslmode,
        })
    }

    /// How the login reads in messages: no password is ever part of it.
    pub fn show(&self) -> String {
        format!(
            "postgres://{}@{}:{}/{}",
            self.user, self.host, self.port, self.database
        )
    }

    /// The password: `PGPASSWORD`, else the first matching line of the password file; None
    /// when there is neither (trust or certificate logins).
    pub fn password(&self) -> Option<String> {
        if let Ok(password) = std::env::var("PGPASSWORD") {
            return Some(password);
        }
        let file = std::env::var_os("PGPASSFILE")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pgpass")))?;
        let text = std::fs::read_to_string(file).ok()?;
        text.lines().find_map(|line| self.password_line(line))
    }

    /// The password of a password-file line `host:port:database:user:password` that matches
    /// (`*` matches anything; `\:` and `\\` are a colon and a backslash).
    fn password_line(&self, line: &str) -> Option<String> {
        if line.trim_start().starts_with('#') {
            return None;
        }
        let fields = split_escaped(line);
        let [host, port, database, user, password] = fields.as_slice() else {
            return None;
        };
        let port_text = self.port.to_string();
        let matches = |field: &str, value: &str| field == "*" || field == value;
        (matches(host, &self.host)
            && matches(port, &port_text)
            && matches(database, &self.database)
            && matches(user, &self.user))
        .then(|| password.clone())
    }
}

fn split_escaped(line: &str) -> Vec<String> {
    let mut fields = vec![String::new()];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    fields.last_mut().expect("one field").push(next);
                }
            }
            ':' => fields.push(String::new()),
            c => fields.last_mut().expect("one field").push(c),
        }
    }
    fields
}

fn percent_decode(text: &str) -> String {
    url::form_urlencoded::parse(format!("x={text}").as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| text.to_string())
}

/// A connection URL with any password replaced by `***`, for messages.
pub fn redact(location: &str) -> String {
    match Url::parse(location) {
        Ok(mut url) if url.password().is_some() => {
            let _ = url.set_password(Some("***"));
            url.to_string()
        }
        _ => location.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_location_names_the_server_and_never_holds_a_password() {
        let login =
            PgLogin::parse("postgres://app@db.internal:6543/crm?sslmode=disable", "t").unwrap();
        assert_eq!(
            login,
            PgLogin {
                host: "db.internal".into(),
                port: 6543,
                user: "app".into(),
                database: "crm".into(),
                sslmode: "disable".into(),
            }
        );
        let err = PgLogin::parse("postgres://app:hunter2@db/crm", "orders").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("orders") && text.contains("PGPASSWORD"),
            "{text}"
        );
        assert!(!text.contains("hunter2"), "{text}");
        assert!(PgLogin::parse("mysql://app@db/crm", "t").is_err());
        assert!(PgLogin::parse("postgres://app@db/crm?password=x", "t").is_err());
    }

    #[test]
    fn password_file_lines_match_with_wildcards_and_escapes() {
        let login = PgLogin::parse("postgres://app@db:5432/crm", "t").unwrap();
        assert_eq!(
            login.password_line("db:5432:crm:app:s3cret"),
            Some("s3cret".into())
        );
        assert_eq!(
            login.password_line("*:*:*:app:p\\:w\\\\d"),
            Some("p:w\\d".into())
        );
        assert_eq!(login.password_line("other:5432:crm:app:x"), None);
        assert_eq!(login.password_line("db:5433:crm:app:x"), None);
        assert_eq!(login.password_line("# db:5432:crm:app:x"), None);
    }
}
