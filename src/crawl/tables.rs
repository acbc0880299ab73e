//! The tables under an export root, found the way a crawler finds them: the root is listed once,
//! and files are grouped by their folder once date folders (`2024/03/01/13/`) and `key=value`
//! partitions are set aside, and by their kind (JSON, CSV, Parquet). A folder of one kind is one
//! table; a file beside other tables (at the root, or among files of another kind) is a table of
//! its own; what fits no table is listed with the reason.

use std::collections::{BTreeMap, BTreeSet};

use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::sources::listing::{SkipReason, classify};
use crate::store::{self, StoreRegistry};

/// Most single-file tables one folder of mixed files gives; more are skipped with a reason.
const MAX_FILE_TABLES_PER_FOLDER: usize = 20;

/// What a crawl of a location found: table locations, and files left out with why.
#[derive(Debug, Default, Serialize)]
pub struct Tables {
    pub locations: Vec<String>,
    pub skipped: Vec<(String, String)>,
}

/// The kind of a file by its name (compression extensions set aside); files without a telling
/// extension (Firehose's) go with JSON, as the JSON scan reads them. None: not data (`.md`).
pub(crate) fn kind(name: &str) -> Option<&'static str> {
    let name = name.to_ascii_lowercase();
    let name = [".gz", ".gzip", ".zst", ".zstd"]
        .iter()
        .find_map(|ext| name.strip_suffix(ext))
        .unwrap_or(&name);
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("csv" | "tsv" | "tab") => Some("csv"),
        Some("parquet" | "pq") => Some("parquet"),
        Some("json" | "jsonl" | "ndjson") | None => Some("json"),
        Some(ext) if ext.bytes().all(|b| b.is_ascii_digit()) || ext.contains('-') => Some("json"),
        Some(_) => None,
    }
}

/// The file-name pattern leaving out files like `name`, when it is not data: `README.md` →
/// `*.md`, `notes.txt.gz` → `*.txt.gz`.
pub(crate) fn not_data_pattern(name: &str) -> Option<String> {
    if kind(name).is_some() {
        return None;
    }
    let lower = name.to_ascii_lowercase();
    let compression = [".gz", ".gzip", ".zst", ".zstd"]
        .iter()
        .find(|ext| lower.ends_with(*ext))
        .map_or(0, |ext| ext.len());
    let stem = &name[..name.len() - compression];
    let extension = stem.rsplit_once('.').map_or(stem, |(_, ext)| ext);
    Some(format!(
        "*.{extension}{}",
        &name[name.len() - compression..]
    ))
}

/// A folder name that partitions a table rather than naming one: `2024`, `03`, `date=2024-03-01`.
fn partition_like(segment: &str) -> bool {
    segment.contains('=')
        || (!segment.is_empty()
            && segment.len() <= 4
            && segment.bytes().all(|b| b.is_ascii_digit()))
}

/// Groups files (paths relative to the root, each a list of segments) into table locations
/// (relative; a folder ends with `/`) and skipped files with reasons.
pub fn group(files: &[Vec<String>]) -> (Vec<String>, Vec<(String, String)>) {
    // Files all of one kind are one table, as a folder given to init always was: without reading
    // schemas, folders of one kind cannot be told apart as tables.
    let mut skipped = Vec::new();
    let mut data = Vec::new();
    for segments in files {
        match segments.last().map(|name| kind(name)) {
            Some(Some(_)) => data.push(segments),
            Some(None) => skipped.push((
                segments.join("/"),
                "not a data file (its extension is neither JSON, CSV nor Parquet)".to_string(),
            )),
            None => {}
        }
    }
    let all_kinds: BTreeSet<&str> = data
        .iter()
        .filter_map(|s| s.last().and_then(|name| kind(name)))
        .collect();
    if all_kinds.len() <= 1 {
        return (vec![String::new()], skipped);
    }
    // Table folder → (file, kind) for the files under it.
    let mut groups: BTreeMap<Vec<String>, Vec<(String, &'static str)>> = BTreeMap::new();
    for segments in data {
        let Some((name, dirs)) = segments.split_last() else {
            continue;
        };
        let Some(file_kind) = kind(name) else {
            continue;
        };
        let keep = dirs.len() - dirs.iter().rev().take_while(|d| partition_like(d)).count();
        groups
            .entry(dirs[..keep].to_vec())
            .or_default()
            .push((segments.join("/"), file_kind));
    }
    // A folder of one kind takes in the folders below it of the same kind (a listing is
    // recursive, as the scan's is).
    let folders: Vec<Vec<String>> = groups.keys().cloned().collect();
    for folder in &folders {
        let Some(files) = groups.get(folder) else {
            continue;
        };
        let kinds: BTreeSet<&str> = files.iter().map(|(_, k)| *k).collect();
        if kinds.len() != 1 || (folder.is_empty() && groups.len() > 1) {
            continue;
        }
        let below: Vec<Vec<String>> = groups
            .keys()
            .filter(|f| f.len() > folder.len() && f.starts_with(folder))
            .cloned()
            .collect();
        let same_kind = below
            .iter()
            .all(|f| groups[f].iter().all(|(_, k)| kinds.contains(k)));
        if same_kind {
            for f in below {
                let moved = groups.remove(&f).unwrap_or_default();
                groups.entry(folder.clone()).or_default().extend(moved);
            }
        }
    }
    let mut locations = Vec::new();
    let several = groups.len() > 1;
    for (folder, files) in &groups {
        let kinds: BTreeSet<&str> = files.iter().map(|(_, k)| *k).collect();
        let has_tables_below = groups
            .keys()
            .any(|f| f.len() > folder.len() && f.starts_with(folder));
        let whole_folder = kinds.len() == 1 && !has_tables_below && !(folder.is_empty() && several);
        if whole_folder {
            let mut location = folder.join("/");
            if !location.is_empty() {
                location.push('/');
            }
            locations.push(location);
            continue;
        }
        // Files beside other tables or among another kind: each a table, up to a limit.
        let own: Vec<&(String, &str)> = files
            .iter()
            .filter(|(file, _)| file.matches('/').count() == folder.len())
            .collect();
        for (index, (file, file_kind)) in own.iter().enumerate() {
            if index < MAX_FILE_TABLES_PER_FOLDER {
                locations.push(file.clone());
            } else {
                skipped.push((
                    file.clone(),
                    format!(
                        "one of more than {MAX_FILE_TABLES_PER_FOLDER} {file_kind} files mixed \
                         with other files in one folder: give each kind a folder of its own"
                    ),
                ));
            }
        }
        for (file, _) in files.iter().filter(|f| !own.contains(f)) {
            skipped.push((
                file.clone(),
                "in a partition folder of a folder that holds other tables or kinds of files: \
                 give each table a folder of its own"
                    .into(),
            ));
        }
    }
    (locations, skipped)
}

/// The tables under `location`: itself when it is a file, else the groups of its files.
pub async fn tables(location: &str, stores: &StoreRegistry) -> Result<Tables> {
    let url = store::parse_location(location)?;
    let store = stores.store_for(&url)?;
    let path = object_store::path::Path::from_url_path(url.path())
        .map_err(|e| Error::Config(format!("'{location}': {e}")))?;
    if !location.ends_with('/') && store.head(&path).await.is_ok() {
        return Ok(Tables {
            locations: vec![location.to_string()],
            skipped: Vec::new(),
        });
    }
    let listed: Vec<object_store::ObjectMeta> = store
        .list(Some(&path))
        .try_collect()
        .await
        .map_err(|e| Error::storage(format!("listing {location}"), e))?;
    let mut files = Vec::new();
    let mut skipped = Vec::new();
    // Hidden and side files, and pengine's own outputs, as source listings leave them out.
    let paths: Vec<object_store::path::Path> = listed.iter().map(|m| m.location.clone()).collect();
    let verdicts = classify(&path, &paths, None);
    for (meta, verdict) in listed.into_iter().zip(verdicts) {
        let relative: Vec<String> = match meta.location.prefix_match(&path) {
            Some(parts) => parts.map(|p| p.as_ref().to_string()).collect(),
            None => continue,
        };
        let joined = relative.join("/");
        match verdict {
            Some(SkipReason::Hidden) => continue,
            Some(reason) => {
                skipped.push((joined, reason.to_string()));
                continue;
            }
            None => {}
        }
        if meta.size == 0 {
            skipped.push((joined, "empty".into()));
            continue;
        }
        files.push(relative);
    }
    let (relative_tables, grouped_out) = group(&files);
    skipped.extend(grouped_out);
    let base = location.trim_end_matches('/');
    Ok(Tables {
        locations: relative_tables
            .into_iter()
            .map(|r| {
                if r.is_empty() {
                    format!("{base}/")
                } else {
                    format!("{base}/{r}")
                }
            })
            .collect(),
        skipped: skipped
            .into_iter()
            .map(|(file, why)| (format!("{base}/{file}"), why))
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(paths: &[&str]) -> Vec<Vec<String>> {
        paths
            .iter()
            .map(|p| p.split('/').map(str::to_string).collect())
            .collect()
    }

    #[test]
    fn an_export_root_is_grouped_into_its_tables() {
        let (tables, skipped) = group(&files(&[
            "interactions/2024/03/01/13/part-1",
            "interactions/2024/03/01/14/part-2.json.gz",
            "catalog/items.csv",
            "users.parquet",
            "orders/date=2024-03-01/a.parquet",
            "orders/date=2024-03-02/b.parquet",
            "notes.csv",
            "README.md",
        ]));
        assert_eq!(
            tables,
            [
                "users.parquet",
                "notes.csv",
                "catalog/",
                "interactions/",
                "orders/"
            ]
        );
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        assert!(skipped[0].0 == "README.md" && skipped[0].1.contains("not a data file"));
    }

    #[test]
    fn files_that_are_not_data_get_a_pattern_by_their_extension() {
        assert_eq!(not_data_pattern("README.md").as_deref(), Some("*.md"));
        assert_eq!(
            not_data_pattern("notes.TXT.gz").as_deref(),
            Some("*.TXT.gz")
        );
        assert_eq!(not_data_pattern("part-0001"), None);
        assert_eq!(not_data_pattern("a.json.gz"), None);
    }

    #[test]
    fn one_table_folder_stays_one_table_and_mixed_folders_split() {
        let (tables, _) = group(&files(&["2024/03/01/a.json", "2024/03/02/b.json"]));
        assert_eq!(tables, [""]);
        let (tables, _) = group(&files(&["a.json", "b.json", "sub/c.json"]));
        assert_eq!(tables, [""]);
        let (tables, _) = group(&files(&["events/a.json", "events/b.json", "events/c.csv"]));
        assert_eq!(tables, ["events/a.json", "events/b.json", "events/c.csv"]);
        // A folder of one kind takes in its sub-folders of that kind.
        let (tables, _) = group(&files(&["e/a.json", "e/old/b.json", "items.csv"]));
        assert_eq!(tables, ["items.csv", "e/"]);
    }
}
