//! How pengine reaches a PostgreSQL table: the LOCATION URL (`postgres://user@host:port/db`,
//! never with a password in it) and the password from where libpq's users keep it (a service
//! file's entry named by `?service=` or `PGSERVICE`, then `PGPASSWORD`, then the password file
//! `PGPASSFILE` or `~/.pgpass`), so that a mapping file never holds a secret and no message
//! ever shows one. The precedence is libpq's: the URL, then the service, then the environment.

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
    /// The connection service (`pg_service.conf` section) the login was completed from.
    pub service: Option<String>,
    /// The CA certificates file for `verify-ca` and `verify-full`.
    pub sslrootcert: Option<String>,
}

impl PgLogin {
    /// Reads a LOCATION. `who` names what reads it in errors (`table orders`).
    pub fn parse(location: &str, who: &str) -> Result<PgLogin> {
        let bad = |why: &str| {
            Error::Config(format!(
                "{who}: LOCATION '{}' {why}; write it as postgres://USER@HOST:PORT/DATABASE",
                redact(location)
            ))
        };
        let url = Url::parse(location).map_err(|_| bad("is not a connection URL"))?;
        if !matches!(url.scheme(), "postgres" | "postgresql") {
            return Err(bad("does not start with postgres://"));
        }
        if url.password().is_some() {
            return Err(Error::Config(format!(
                "{who}: LOCATION '{}' holds a password. Mapping files must not: remove \
                 it and set PGPASSWORD, or add the password to ~/.pgpass (or the file PGPASSFILE \
                 names)",
                redact(location)
            )));
        }
        let mut params: Vec<(String, String)> = Vec::new();
        let mut service = std::env::var("PGSERVICE").ok();
        for (key, value) in url.query_pairs() {
            match key.as_ref() {
                "sslmode" | "sslrootcert" => params.push((key.into_owned(), value.into_owned())),
                "service" => service = Some(value.into_owned()),
                other => {
                    return Err(bad(&format!(
                        "has the parameter '{other}', which pengine does not take (only sslmode, \
                         sslrootcert and service)"
                    )));
                }
            }
        }
        let from_service = match &service {
            Some(name) => service_entry(name).ok_or_else(|| {
                Error::Config(format!(
                    "{who}: the connection service '{name}' is not in {} (nor in \
                     PGSYSCONFDIR's pg_service.conf)",
                    service_file().map_or("~/.pg_service.conf".into(), |p| p.display().to_string())
                ))
            })?,
            None => Vec::new(),
        };
        // libpq's order: the URL, then the service's entry, then the environment.
        let setting = |url_value: Option<String>, key: &str, env: &str| {
            url_value
                .or_else(|| {
                    params
                        .iter()
                        .find(|(k, _)| k == key)
                        .map(|(_, v)| v.clone())
                })
                .or_else(|| {
                    from_service
                        .iter()
                        .find(|(k, _)| k == key)
                        .map(|(_, v)| v.clone())
                })
                .or_else(|| std::env::var(env).ok())
        };
        let host = setting(
            url.host_str().filter(|h| !h.is_empty()).map(str::to_string),
            "host",
            "PGHOST",
        )
        .unwrap_or_else(|| "localhost".to_string());
        let port = match setting(url.port().map(|p| p.to_string()), "port", "PGPORT") {
            None => 5432,
            Some(port) => port
                .parse()
                .map_err(|_| bad(&format!("gives the port '{port}', which is not a number")))?,
        };
        let user = setting(
            Some(percent_decode(url.username())).filter(|u| !u.is_empty()),
            "user",
            "PGUSER",
        )
        .ok_or_else(|| bad("names no user (nor does PGUSER or a service)"))?;
        let database = setting(
            Some(percent_decode(url.path().trim_start_matches('/'))).filter(|d| !d.is_empty()),
            "dbname",
            "PGDATABASE",
        )
        .unwrap_or_else(|| user.clone());
        let sslmode = setting(None, "sslmode", "PGSSLMODE").unwrap_or_else(|| "prefer".into());
        let sslrootcert = setting(None, "sslrootcert", "PGSSLROOTCERT");
        Ok(PgLogin {
            host,
            port,
            user,
            database,
            sslmode,
            service,
            sslrootcert,
        })
    }

    /// How the login reads in messages: no password is ever part of it.
    pub fn show(&self) -> String {
        format!(
            "postgres://{}@{}:{}/{}",
            self.user, self.host, self.port, self.database
        )
    }

    /// The password: the service's, else `PGPASSWORD`, else the first matching line of the
    /// password file; None when there is none (trust or certificate logins).
    pub fn password(&self) -> Option<String> {
        let from_service = self.service.as_deref().and_then(service_entry);
        if let Some((_, password)) = from_service
            .into_iter()
            .flatten()
            .find(|(k, _)| k == "password")
        {
            return Some(password);
        }
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

/// The connection service file: `PGSERVICEFILE`, else `~/.pg_service.conf`.
fn service_file() -> Option<PathBuf> {
    std::env::var_os("PGSERVICEFILE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".pg_service.conf")))
}

/// The `key=value` lines of the service `[name]`, from the user's service file, else the
/// system-wide one in `PGSYSCONFDIR`.
fn service_entry(name: &str) -> Option<Vec<(String, String)>> {
    let system = std::env::var_os("PGSYSCONFDIR").map(|d| PathBuf::from(d).join("pg_service.conf"));
    [service_file(), system]
        .into_iter()
        .flatten()
        .filter_map(|file| std::fs::read_to_string(file).ok())
        .find_map(|text| service_section(&text, name))
}

/// The entries of section `[name]` of a service file's text.
fn service_section(text: &str, name: &str) -> Option<Vec<(String, String)>> {
    let mut entries = None;
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            if entries.is_some() {
                break;
            }
            if section.trim() == name {
                entries = Some(Vec::new());
            }
            continue;
        }
        if let (Some(entries), Some((key, value))) = (entries.as_mut(), line.split_once('=')) {
            entries.push((key.trim().to_string(), value.trim().to_string()));
        }
    }
    entries
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
                service: None,
                sslrootcert: None,
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
    fn a_service_section_gives_its_entries_and_stops_at_the_next_section() {
        let text = "# comment\n[other]\nhost=x\n[crm]\nhost = db.internal\nport=6543\n\
                    password=s3cret\n[after]\nhost=y\n";
        assert_eq!(
            service_section(text, "crm"),
            Some(vec![
                ("host".into(), "db.internal".into()),
                ("port".into(), "6543".into()),
                ("password".into(), "s3cret".into()),
            ])
        );
        assert_eq!(service_section(text, "missing"), None);
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
