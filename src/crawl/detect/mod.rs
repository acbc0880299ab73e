//! Lists a location and sniffs its files: format, compression, JSON layout, CSV dialect and the
//! folder layout (`key=value` partitions, `YYYY/MM/DD/HH` folders).

mod dialect;
mod sniff;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use futures::TryStreamExt;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::store::{self, StoreRegistry};
pub use dialect::guess_csv;
use sniff::sniff;

/// Bytes read from the start of a file to sniff it.
const HEAD_BYTES: u64 = 64 * 1024;
/// Files sniffed per location (spread over the listing).
const FILES_SNIFFED: usize = 24;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    Json,
    Csv,
    Parquet,
    /// A table of a database (see [`Layout::Table`]).
    Postgres,
    Mysql,
    Sqlite,
}

impl Format {
    /// The `STORED AS` name.
    pub fn sql_name(self) -> &'static str {
        match self {
            Format::Json => "JSON",
            Format::Csv => "CSV",
            Format::Parquet => "PARQUET",
            Format::Postgres => "POSTGRES",
            Format::Mysql => "MYSQL",
            Format::Sqlite => "SQLITE",
        }
    }

    /// Whether it is a database's table rather than files.
    pub fn is_database(self) -> bool {
        matches!(self, Format::Postgres | Format::Mysql | Format::Sqlite)
    }
}

/// How the files sit under the location.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Layout {
    SingleFile,
    Flat,
    /// Hive-style `key=value` folders; the keys become columns.
    Partitions {
        keys: Vec<String>,
    },
    /// Date folders such as Firehose's `YYYY/MM/DD/HH/`.
    DateFolders {
        depth: usize,
    },
    /// Other sub-folders (read recursively).
    Nested,
    /// A table or view of a database.
    Table {
        table: String,
    },
}

impl Layout {
    pub fn describe(&self) -> String {
        match self {
            Layout::SingleFile => "a single file".into(),
            Layout::Flat => "files in one folder".into(),
            Layout::Partitions { keys } => {
                format!(
                    "key=value partitions ({}), read as columns",
                    keys.join(", ")
                )
            }
            Layout::DateFolders { depth } => {
                let names = ["YYYY", "MM", "DD", "HH", "mm"];
                format!(
                    "date folders {}/ (Firehose style), read recursively",
                    names[..(*depth).min(names.len())].join("/")
                )
            }
            Layout::Nested => "nested folders, read recursively".into(),
            Layout::Table { table } => format!("the table {table}"),
        }
    }
}

/// The CSV dialect guessed from the first lines.
#[derive(Debug, Clone, Serialize)]
pub struct CsvGuess {
    pub delimiter: char,
    pub has_header: bool,
    /// Why the header decision was made (stated in the generated file).
    pub header_reason: String,
    /// Quoted values spanning lines were seen.
    pub newlines_in_values: bool,
}

/// What a location holds.
#[derive(Debug, Clone, Serialize)]
pub struct Detected {
    /// The location as given.
    pub location: String,
    /// The location for `LOCATION '...'` (folders end with `/`; local paths absolute).
    pub table_location: String,
    /// A table name derived from the location.
    pub name: String,
    pub format: Format,
    pub files: usize,
    pub bytes: u64,
    /// Sniffed files per compression ("none", "gzip", "zstd").
    pub compression: BTreeMap<&'static str, usize>,
    /// JSON: "newline-delimited", "back-to-back objects" or "array", per sniffed file.
    pub json_layouts: BTreeMap<&'static str, usize>,
    pub csv: Option<CsvGuess>,
    pub layout: Layout,
    /// Files whose format differs from the majority (they would fail the scan).
    pub other_formats: Vec<String>,
    /// The text encoding when it is not UTF-8 (an encoding label), and whether it is a guess.
    pub encoding: Option<(&'static str, bool)>,
    /// Files of a folder that are not data by their name (`README.md`), beside data files;
    /// relative to the location.
    pub not_data: Vec<String>,
    /// Name patterns leaving them out of the table's listing (`*.md`): `'format.exclude'`.
    pub exclude: Vec<String>,
}

impl Detected {
    /// The `CREATE EXTERNAL TABLE` statement that reads this location as `name`, with
    /// `location_sql` (the location itself, or a `${variable}`) in its LOCATION.
    pub fn ddl(&self, name: &str, location_sql: &str) -> String {
        let mut ddl = String::new();
        if !self.not_data.is_empty() {
            let shown: Vec<&str> = self.not_data.iter().take(5).map(String::as_str).collect();
            ddl.push_str(&format!(
                "-- Not data, left out by 'format.exclude' (else the scan would read them as {}): \
                 {}{}\n",
                self.format.sql_name(),
                shown
                    .join(", ")
                    .replace(['\n', '\r'], " ")
                    .replace("${", "$ {"),
                if self.not_data.len() > shown.len() {
                    ", ..."
                } else {
                    ""
                }
            ));
        }
        if let Some((label, true)) = self.encoding {
            ddl.push_str(&format!(
                "-- CHECK: the files are not UTF-8 and carry no byte-order mark: read as {label} \
                 (Latin-1's superset); give their real encoding if it is another one.\n"
            ));
        }
        ddl.push_str(&format!(
            "CREATE EXTERNAL TABLE {name} STORED AS {} LOCATION '{location_sql}'",
            self.format.sql_name()
        ));
        let mut options = Vec::new();
        if let Layout::Table { table } = &self.layout {
            options.push(format!("'table' '{}'", table.replace('\'', "''")));
        }
        if let Some(csv) = &self.csv {
            options.push(format!("'format.has_header' '{}'", csv.has_header));
            match csv.delimiter {
                ',' => {}
                // Written as the escape, not as an invisible tab in the mapping file.
                '\t' => options.push("'format.delimiter' '\\t'".into()),
                other => options.push(format!("'format.delimiter' '{other}'")),
            }
            if csv.newlines_in_values {
                options.push("'format.newlines_in_values' 'true'".into());
            }
        }
        if let Some((label, _)) = self.encoding {
            options.push(format!("'format.encoding' '{label}'"));
        }
        if !self.exclude.is_empty() {
            options.push(format!(
                "'{}' '{}'",
                crate::sources::exclude::EXCLUDE_OPTION,
                self.exclude.join(",")
            ));
        }
        if !options.is_empty() {
            ddl.push_str(&format!("\n  OPTIONS ({})", options.join(", ")));
        }
        ddl.push(';');
        ddl
    }
}

/// Lists and sniffs a location (a file or a folder; local, s3://, ...).
pub async fn detect(location: &str, stores: &StoreRegistry) -> Result<Detected> {
    let url = store::parse_location(location)?;
    let store = stores.store_for(&url)?;
    let path = object_store::path::Path::from_url_path(url.path())
        .map_err(|e| Error::Config(format!("'{location}': {e}")))?;
    let storage = |e: object_store::Error| Error::storage(format!("listing {location}"), e);

    // A file, or a folder listed recursively.
    let (files, single) = match store.head(&path).await {
        Ok(meta) if !location.ends_with('/') => (vec![meta], true),
        _ => {
            let listed: Vec<ObjectMeta> = store
                .list(Some(&path))
                .try_collect()
                .await
                .map_err(storage)?;
            let prefix = format!("{}/", path.as_ref());
            let files: Vec<ObjectMeta> = listed
                .into_iter()
                .filter(|m| {
                    let relative = m.location.as_ref().strip_prefix(&prefix).unwrap_or("");
                    m.size > 0 && !crate::sources::listing::is_hidden(relative)
                })
                .collect();
            (files, false)
        }
    };
    // Beside data files, what is not data by its name is left out, as the written table will.
    let (mut not_data, mut exclude) = (Vec::new(), std::collections::BTreeSet::new());
    let pattern = |m: &ObjectMeta| {
        m.location
            .filename()
            .and_then(crate::crawl::tables::not_data_pattern)
    };
    let files = if single || files.iter().all(|m| pattern(m).is_some()) {
        files
    } else {
        let (data, other): (Vec<ObjectMeta>, Vec<ObjectMeta>) =
            files.into_iter().partition(|m| pattern(m).is_none());
        for m in &other {
            exclude.extend(pattern(m));
            let relative = m.location.prefix_match(&path).map(|parts| {
                parts
                    .map(|p| p.as_ref().to_string())
                    .collect::<Vec<_>>()
                    .join("/")
            });
            not_data.push(relative.unwrap_or_else(|| m.location.to_string()));
        }
        data
    };
    if files.is_empty() {
        return Err(Error::Config(format!(
            "{location}: no files found (hidden files and empty files are skipped); check the \
             location"
        )));
    }

    let step = files.len().div_ceil(FILES_SNIFFED).max(1);
    let mut sniffs = Vec::new();
    for meta in files.iter().step_by(step) {
        let name = crate::sources::file_name(&url, &meta.location);
        sniffs.push((name.clone(), sniff(&store, meta, &name).await?));
    }
    let mut counts: BTreeMap<&'static str, usize> = BTreeMap::new();
    for (_, s) in &sniffs {
        *counts.entry(s.format.sql_name()).or_default() += 1;
    }
    let format = [Format::Json, Format::Parquet, Format::Csv]
        .into_iter()
        .max_by_key(|f| counts.get(f.sql_name()).copied().unwrap_or(0))
        .unwrap_or(Format::Csv);
    let mut compression = BTreeMap::new();
    let mut json_layouts = BTreeMap::new();
    let mut other_formats = Vec::new();
    for (name, s) in &sniffs {
        if s.format != format {
            other_formats.push(name.clone());
            continue;
        }
        *compression.entry(s.compression).or_default() += 1;
        if let Some(layout) = s.json_layout {
            *json_layouts.entry(layout).or_default() += 1;
        }
    }
    let csv = match format {
        Format::Csv => sniffs
            .iter()
            .find(|(_, s)| s.format == Format::Csv)
            .map(|(_, s)| guess_csv(&s.head)),
        _ => None,
    };

    let prefix = format!("{}/", path.as_ref());
    let layout = if single {
        Layout::SingleFile
    } else {
        folder_layout(files.iter().map(|m| {
            m.location
                .as_ref()
                .strip_prefix(&prefix)
                .unwrap_or(m.location.as_ref())
        }))
    };
    let table_location = table_location(location, &url, single)?;
    Ok(Detected {
        location: location.to_string(),
        name: table_name(&url, single),
        table_location,
        format,
        files: files.len(),
        bytes: files.iter().map(|m| m.size).sum(),
        compression,
        json_layouts,
        csv,
        layout,
        other_formats,
        // A file in another encoding decides: read as UTF-8 it would fail.
        encoding: sniffs.iter().find_map(|(_, s)| s.encoding),
        not_data,
        exclude: exclude.into_iter().collect(),
    })
}

/// The location as a mapping file should name it: local paths absolute, folders ending in `/`,
/// files not.
fn table_location(location: &str, url: &url::Url, single: bool) -> Result<String> {
    let text = if url.scheme() == "file" {
        url.to_file_path()
            .map_err(|_| Error::Config(format!("'{location}' is not a usable local path")))?
            .display()
            .to_string()
    } else {
        location.to_string()
    };
    let trimmed = text.trim_end_matches('/');
    Ok(if single {
        trimmed.to_string()
    } else {
        format!("{trimmed}/")
    })
}

/// A SQL-friendly table name from the location's last path segment (`events/` → `events`,
/// `items.csv.gz` → `items`).
fn table_name(url: &url::Url, single: bool) -> String {
    let segments: Vec<&str> = url.path().split('/').filter(|s| !s.is_empty()).collect();
    let last = segments.last().copied().unwrap_or("source");
    let stem = if single {
        last.split('.').next().unwrap_or(last)
    } else {
        last
    };
    plain_identifier(stem)
}

/// `text` as a SQL name that needs no quotes: lower case, `_` for anything not a letter or
/// digit, never starting with a digit.
pub fn plain_identifier(text: &str) -> String {
    let mut name: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    name = name.trim_matches('_').to_string();
    if name.is_empty() || name.starts_with(|c: char| c.is_ascii_digit()) {
        name = format!("source_{name}");
    }
    name
}

fn folder_layout<'a>(relatives: impl Iterator<Item = &'a str>) -> Layout {
    let mut any_folder = false;
    let mut keys: Vec<String> = Vec::new();
    let mut all_partitioned = true;
    let mut all_dated = true;
    let mut date_depth = usize::MAX;
    for relative in relatives {
        let folders: Vec<&str> = relative.split('/').collect();
        let folders = &folders[..folders.len().saturating_sub(1)];
        if folders.is_empty() {
            all_partitioned = false;
            all_dated = false;
            continue;
        }
        any_folder = true;
        let file_keys: Vec<String> = folders
            .iter()
            .filter_map(|f| f.split_once('=').map(|(k, _)| k.to_string()))
            .collect();
        if file_keys.len() != folders.len() {
            all_partitioned = false;
        } else if keys.is_empty() {
            keys = file_keys;
        } else if keys != file_keys {
            all_partitioned = false;
        }
        let dated = folders.iter().enumerate().all(|(i, f)| {
            f.bytes().all(|b| b.is_ascii_digit()) && f.len() == if i == 0 { 4 } else { 2 }
        });
        if dated {
            date_depth = date_depth.min(folders.len());
        } else {
            all_dated = false;
        }
    }
    if !any_folder {
        Layout::Flat
    } else if all_partitioned && !keys.is_empty() {
        Layout::Partitions { keys }
    } else if all_dated {
        Layout::DateFolders { depth: date_depth }
    } else {
        Layout::Nested
    }
}
