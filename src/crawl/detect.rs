//! Lists a location and sniffs its files: format, compression, JSON layout, CSV dialect and the
//! folder layout (`key=value` partitions, `YYYY/MM/DD/HH` folders).

use std::collections::BTreeMap;
use std::io::Read;

use futures::TryStreamExt;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use serde::Serialize;

use crate::error::{Error, Result};
use crate::sources::compression::Compression;
use crate::store::{self, StoreRegistry};

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
}

impl Format {
    /// The `STORED AS` name.
    pub fn sql_name(self) -> &'static str {
        match self {
            Format::Json => "JSON",
            Format::Csv => "CSV",
            Format::Parquet => "PARQUET",
        }
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
}

impl Detected {
    /// The `CREATE EXTERNAL TABLE` statement that reads this location as `name`, with
    /// `location_sql` (the location itself, or a `${variable}`) in its LOCATION.
    pub fn ddl(&self, name: &str, location_sql: &str) -> String {
        let mut ddl = String::new();
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
        if let Some(csv) = &self.csv {
            let mut options = vec![format!("'format.has_header' '{}'", csv.has_header)];
            match csv.delimiter {
                ',' => {}
                // Written as the escape, not as an invisible tab in the mapping file.
                '\t' => options.push("'format.delimiter' '\\t'".into()),
                other => options.push(format!("'format.delimiter' '{other}'")),
            }
            if csv.newlines_in_values {
                options.push("'format.newlines_in_values' 'true'".into());
            }
            if let Some((label, _)) = self.encoding {
                options.push(format!("'format.encoding' '{label}'"));
            }
            ddl.push_str(&format!("\n  OPTIONS ({})", options.join(", ")));
        } else if let Some((label, _)) = self.encoding {
            ddl.push_str(&format!("\n  OPTIONS ('format.encoding' '{label}')"));
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
            let files = listed
                .into_iter()
                .filter(|m| {
                    let relative = m.location.as_ref().strip_prefix(&prefix).unwrap_or("");
                    m.size > 0 && !crate::sources::listing::is_hidden(relative)
                })
                .collect();
            (files, false)
        }
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
    let mut name: String = stem
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

/// What the first bytes of one file say.
struct Sniff {
    format: Format,
    compression: &'static str,
    json_layout: Option<&'static str>,
    /// The decompressed head, as UTF-8.
    head: Vec<u8>,
    /// Not UTF-8: the encoding label, and whether it is a guess (no byte-order mark).
    encoding: Option<(&'static str, bool)>,
}

/// The encoding of a file's first bytes when they are not UTF-8: UTF-16 by its byte-order mark,
/// else windows-1252, a guess, for bytes UTF-8 cannot hold. Text that also holds UTF-8 characters
/// is UTF-8 with damaged records (read as windows-1252 its characters would change silently); a
/// character cut at the end of the head counts for nothing.
fn sniff_encoding(head: &[u8]) -> Option<(&'static str, bool)> {
    if head.starts_with(&[0xFF, 0xFE]) {
        return Some(("utf-16le", false));
    }
    if head.starts_with(&[0xFE, 0xFF]) {
        return Some(("utf-16be", false));
    }
    let (mut invalid, mut utf8_characters) = (false, false);
    let mut chunks = head.utf8_chunks().peekable();
    while let Some(chunk) = chunks.next() {
        utf8_characters |= !chunk.valid().is_ascii();
        let cut_at_the_end = chunks.peek().is_none() && chunk.invalid().len() < 4;
        invalid |= !chunk.invalid().is_empty() && !cut_at_the_end;
    }
    (invalid && !utf8_characters).then_some(("windows-1252", true))
}

async fn sniff(
    store: &std::sync::Arc<dyn ObjectStore>,
    meta: &ObjectMeta,
    name: &str,
) -> Result<Sniff> {
    let end = meta.size.min(HEAD_BYTES);
    let raw = store
        .get_range(&meta.location, 0..end)
        .await
        .map_err(|e| Error::storage(format!("reading {name}"), e))?;
    if raw.starts_with(b"PAR1") {
        return Ok(Sniff {
            format: Format::Parquet,
            compression: "none",
            json_layout: None,
            head: Vec::new(),
            encoding: None,
        });
    }
    let compression = Compression::sniff(&raw, name);
    let head = decompress_prefix(compression, &raw);
    let encoding = sniff_encoding(&head);
    let head = match encoding {
        Some((label, _)) => {
            let encoding = encoding_rs::Encoding::for_label(label.as_bytes())
                .expect("a label encoding_rs knows");
            encoding.decode(&head).0.into_owned().into_bytes()
        }
        None => head,
    };
    let label = match compression {
        Compression::None => "none",
        Compression::Gzip => "gzip",
        Compression::Zstd => "zstd",
    };
    // A byte-order mark before the JSON is skipped, as the JSON scan skips it.
    let text = &head[crate::sources::json::framing::bom_len(&head)..];
    let first = text.iter().copied().find(|b| !b.is_ascii_whitespace());
    let (format, json_layout) = match first {
        Some(b'[') => (Format::Json, Some("array")),
        Some(b'{') => (Format::Json, Some(json_layout(text))),
        _ => (Format::Csv, None),
    };
    Ok(Sniff {
        format,
        compression: label,
        json_layout,
        head,
        encoding,
    })
}

/// Decompresses as much of a file's first bytes as they hold (a cut stream ends the read).
fn decompress_prefix(compression: Compression, raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let Ok(mut reader) = compression.reader(raw) else {
        return out;
    };
    let mut buffer = [0u8; 8192];
    while out.len() < HEAD_BYTES as usize * 4 {
        match reader.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buffer[..n]),
        }
    }
    out
}

/// Newline-delimited when the second object starts on a new line, else back to back.
fn json_layout(head: &[u8]) -> &'static str {
    let mut stream =
        serde_json::Deserializer::from_slice(head).into_iter::<serde::de::IgnoredAny>();
    if stream.next().is_none() {
        return "newline-delimited";
    }
    let end = stream.byte_offset();
    let between: Vec<u8> = head[end..]
        .iter()
        .copied()
        .take_while(|b| b.is_ascii_whitespace())
        .collect();
    if end < head.len() && !between.contains(&b'\n') && head.get(end + between.len()) == Some(&b'{')
    {
        "back-to-back objects"
    } else {
        "newline-delimited"
    }
}

/// Guesses the delimiter (the one giving the most consistent field count) and whether the first
/// row is a header.
pub fn guess_csv(head: &[u8]) -> CsvGuess {
    let text = String::from_utf8_lossy(head);
    // Drop a last line cut by the sniff.
    let text = match text.rfind('\n') {
        Some(end) if head.len() as u64 >= HEAD_BYTES => &text[..end],
        _ => &text[..],
    };
    let mut best: Option<(usize, char, Vec<Vec<String>>)> = None;
    for delimiter in [',', '\t', ';', '|'] {
        let records = read_records(text, delimiter);
        let Some(first) = records.first() else {
            continue;
        };
        let width = first.len();
        if width < 2 {
            continue;
        }
        let consistent = records.iter().filter(|r| r.len() == width).count();
        let score = consistent * width;
        if best.as_ref().is_none_or(|(s, _, _)| score > *s) {
            best = Some((score, delimiter, records));
        }
    }
    let Some((_, delimiter, records)) = best else {
        return CsvGuess {
            delimiter: ',',
            has_header: true,
            header_reason: "one column only; assumed a header row".into(),
            newlines_in_values: false,
        };
    };
    let newlines_in_values = records.iter().flatten().any(|v| v.contains('\n'));
    let (has_header, header_reason) = header_guess(&records);
    CsvGuess {
        delimiter,
        has_header,
        header_reason,
        newlines_in_values,
    }
}

fn read_records(text: &str, delimiter: char) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter as u8)
        .from_reader(text.as_bytes());
    reader
        .records()
        .take(200)
        .filter_map(|r| r.ok())
        .map(|r| r.iter().map(str::to_string).collect())
        .collect()
}

#[derive(PartialEq, Clone, Copy)]
enum CellKind {
    Empty,
    Number,
    Date,
    Text,
}

fn cell_kind(value: &str) -> CellKind {
    let v = value.trim();
    if v.is_empty() {
        CellKind::Empty
    } else if v.parse::<f64>().is_ok() {
        CellKind::Number
    } else if crate::crawl::profile::parse_time_text(v).is_some() {
        CellKind::Date
    } else {
        CellKind::Text
    }
}

/// A header row has a text cell above a column of numbers or dates, and no empty cells.
fn header_guess(records: &[Vec<String>]) -> (bool, String) {
    let Some((first, rest)) = records.split_first() else {
        return (true, "no rows to compare; assumed a header row".into());
    };
    if rest.is_empty() {
        return (true, "only one row; assumed a header row".into());
    }
    if first.iter().any(|c| c.trim().is_empty()) {
        return (false, "the first row has empty cells, so it is data".into());
    }
    for (i, cell) in first.iter().enumerate() {
        let kinds: Vec<CellKind> = rest
            .iter()
            .filter_map(|r| r.get(i))
            .map(|v| cell_kind(v))
            .filter(|k| *k != CellKind::Empty)
            .collect();
        let Some(&kind) = kinds.first() else { continue };
        if kind != CellKind::Text && kinds.iter().all(|k| *k == kind) {
            let head = cell_kind(cell);
            return if head == CellKind::Text {
                (
                    true,
                    format!("column {} holds values below a text cell '{cell}'", i + 1),
                )
            } else {
                (
                    false,
                    format!("the cell '{cell}' in the first row looks like the values below it"),
                )
            };
        }
    }
    let names_like = first.iter().all(|c| {
        c.chars()
            .next()
            .is_some_and(|ch| ch.is_alphabetic() || ch == '_')
            && c.len() <= 64
            && !c.contains(char::is_whitespace)
    });
    let distinct = first
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        == first.len();
    if names_like && distinct {
        (
            true,
            "every column is text; the first row looks like names, so it was taken as the \
             header"
                .into(),
        )
    } else {
        (
            false,
            "every column is text and the first row does not look like names".into(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_header_and_delimiter_are_guessed() {
        let with = guess_csv(b"sku;price;added\nA1;9.5;2024-01-02\nA2;3;2024-02-03\n");
        assert_eq!(with.delimiter, ';');
        assert!(with.has_header, "{}", with.header_reason);
        let without = guess_csv(b"u1,i1,1709251200\nu2,i2,1709251300\nu3,i1,1709251400\n");
        assert_eq!(without.delimiter, ',');
        assert!(!without.has_header, "{}", without.header_reason);
        let names = guess_csv(b"user,item\nu1,i1\nu2,i2\n");
        assert!(names.has_header);
        let quoted = guess_csv(b"id,text\n1,\"two\nlines\"\n2,x\n");
        assert!(quoted.newlines_in_values);
    }

    #[test]
    fn layouts_are_told_apart() {
        let dated = folder_layout(["2024/03/01/13/a.json", "2024/03/01/14/b"].into_iter());
        assert_eq!(dated, Layout::DateFolders { depth: 4 });
        let hive =
            folder_layout(["dt=2024-01-01/a.parquet", "dt=2024-01-02/b.parquet"].into_iter());
        assert_eq!(
            hive,
            Layout::Partitions {
                keys: vec!["dt".into()]
            }
        );
        assert_eq!(
            folder_layout(["a.json", "b.json"].into_iter()),
            Layout::Flat
        );
        assert_eq!(
            folder_layout(["x/a.json", "b.json"].into_iter()),
            Layout::Nested
        );
    }

    #[test]
    fn json_layouts_are_told_apart() {
        assert_eq!(json_layout(b"{\"a\":1}{\"a\":2}"), "back-to-back objects");
        assert_eq!(json_layout(b"{\"a\":1}\n{\"a\":2}\n"), "newline-delimited");
    }

    #[test]
    fn encodings_are_sniffed_without_changing_utf8_text() {
        assert_eq!(
            sniff_encoding(b"id,city\nu1,Montr\xe9al\n"),
            Some(("windows-1252", true))
        );
        assert_eq!(
            sniff_encoding(b"\xff\xfei\x00d\x00"),
            Some(("utf-16le", false))
        );
        assert_eq!(sniff_encoding("id,city\nu1,Montréal\n".as_bytes()), None);
        // UTF-8 with one damaged byte stays UTF-8 (its record is bad, the others unchanged).
        assert_eq!(sniff_encoding(b"u1,Montr\xc3\xa9al\nu2,Qu\xe9bec\n"), None);
        // A character cut by the end of the head.
        assert_eq!(sniff_encoding(b"u1,Montr\xc3"), None);
    }

    #[test]
    fn table_names_come_from_the_location() {
        let url = url::Url::parse("s3://b/exports/items.csv.gz").unwrap();
        assert_eq!(table_name(&url, true), "items");
        let url = url::Url::parse("s3://b/exports/Click-Events/").unwrap();
        assert_eq!(table_name(&url, false), "click_events");
    }
}
