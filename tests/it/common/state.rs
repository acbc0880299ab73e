//! What an output's `.pengine/` may hold after a run, and a reader that follows a dataset's
//! pointer (`<dataset>.current.json`) to its snapshots, as `pengine import` does.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use super::{Csv, file_names, read_dataset};

/// What `.pengine/` keeps after a run: the parts of each published dataset, the id samples and
/// the snapshots the pointers name, and `pengine import`'s record of the jobs it started.
pub const KEPT_STATE: [&str; 4] = ["published", "ids", "snapshots", "imports"];

/// `<dataset>/<run-id>` of every snapshot the output's pointers keep (their chains and the
/// previous versions).
pub fn kept_snapshots(out: &Path) -> BTreeSet<String> {
    let mut kept = BTreeSet::new();
    for entry in std::fs::read_dir(out).into_iter().flatten() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let Some(dataset) = name.strip_suffix(".current.json") else {
            continue;
        };
        let pointer = read_pointer(&path);
        let chain = pointer["chain"].as_array().unwrap().iter();
        for run in chain.map(|r| &r["run_id"]) {
            kept.insert(format!("{dataset}/{}", run.as_str().unwrap()));
        }
        for version in pointer["previous"].as_array().unwrap() {
            for run in version.as_array().unwrap() {
                kept.insert(format!("{dataset}/{}", run.as_str().unwrap()));
            }
        }
    }
    kept
}

fn read_pointer(path: &Path) -> serde_json::Value {
    let text = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_slice(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Files under `.pengine/` that a finished run must not leave: staging areas of runs no pointer
/// names, commit records. Files only: some servers (s3s-fs, WebDAV) keep emptied folders.
pub fn staged_files(out: &Path) -> Vec<String> {
    let kept = kept_snapshots(out);
    file_names(out)
        .into_iter()
        .filter_map(|f| f.strip_prefix(".pengine/").map(str::to_string))
        .filter(|f| {
            if let Some(snapshot) = f.strip_prefix("snapshots/") {
                let run: Vec<&str> = snapshot.splitn(3, '/').take(2).collect();
                return !kept.contains(&run.join("/"));
            }
            !KEPT_STATE.iter().any(|k| f.starts_with(&format!("{k}/")))
        })
        .collect()
}

/// Asserts a local output holds no staging leftovers: no file [`staged_files`] finds, and no
/// folder either (pengine removes the folders it emptied on local disk).
#[track_caller]
pub fn assert_no_staging(out: &Path) {
    let staged = staged_files(out);
    assert!(
        staged.is_empty(),
        "staging leftovers in {}: {staged:?}",
        out.display()
    );
    let state = out.join(".pengine");
    let entries: Vec<String> = std::fs::read_dir(&state)
        .into_iter()
        .flatten()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| !KEPT_STATE.contains(&name.as_str()))
        .collect();
    assert!(
        entries.is_empty(),
        "leftovers in {}: {entries:?}",
        state.display()
    );
    let kept = kept_snapshots(out);
    for dataset in std::fs::read_dir(state.join("snapshots"))
        .into_iter()
        .flatten()
    {
        let dataset = dataset.unwrap();
        for run in std::fs::read_dir(dataset.path()).unwrap() {
            let key = format!(
                "{}/{}",
                dataset.file_name().to_string_lossy(),
                run.unwrap().file_name().to_string_lossy()
            );
            assert!(
                kept.contains(&key),
                "a snapshot folder no pointer names: {key}"
            );
        }
    }
}

/// True when `.pengine/` holds staging (see [`staged_files`]).
pub fn has_staging(out: &Path) -> bool {
    !staged_files(out).is_empty()
}

/// The snapshot data folders a dataset's pointer names, oldest first.
pub fn pointer_data_dirs(out: &Path, dataset: &str) -> Vec<PathBuf> {
    let pointer = read_pointer(&out.join(format!("{dataset}.current.json")));
    pointer["chain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|run| {
            out.join(".pengine/snapshots")
                .join(dataset)
                .join(run["run_id"].as_str().unwrap())
                .join("data")
        })
        .collect()
}

/// The rows a reader following a dataset's pointer sees: every part of every snapshot it names.
pub fn read_via_pointer(out: &Path, dataset: &str) -> Csv {
    let mut all: Option<Csv> = None;
    for dir in pointer_data_dirs(out, dataset) {
        let csv = read_dataset(&dir);
        match &mut all {
            None => all = Some(csv),
            Some(all) => {
                assert_eq!(all.header, csv.header, "{}", dir.display());
                all.rows.extend(csv.rows);
            }
        }
    }
    all.expect("the pointer names at least one run")
}
