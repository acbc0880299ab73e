//! `run --incremental`: which files of a mapping file's incremental tables are new since the
//! dataset's last committed run, and the record of the files converted so far.
//!
//! The record (`sources.json`) is written into the run's snapshot, so it is committed by the same
//! pointer PUT as the data: a run killed before its commit leaves the previous record, and the
//! next run converts the same files again. The files are chosen once, before the run, and every
//! listing of the run sees that choice ([`SourceSelection`]): a file that arrives during the run
//! is left for the next one, never converted twice nor lost.

use std::collections::BTreeMap;
use std::sync::Arc;

use object_store::ObjectMeta;
use serde::{Deserialize, Serialize};

use crate::engine::{self, EngineOptions};
use crate::error::{Error, Result};
use crate::mapping::{ExternalTable, MappingFile};
use crate::report::IncrementReport;
use crate::sink::Staging;
use crate::sink::publish::pointer::RunKind;
use crate::sources::selection::SourceSelection;
use crate::store::StoreRegistry;

/// The record's name in a snapshot.
pub(crate) const STATE_FILE: &str = "sources.json";
const STATE_FORMAT: u32 = 1;
/// How many changed files an error names before "and N more".
const CHANGED_NAMES_SHOWN: usize = 5;
/// An increment's parts stay below what one incremental import job takes, so that each can be
/// imported on its own when the increment is larger.
pub(crate) const INCREMENT_PART_MAX_BYTES: u64 =
    crate::personalize::limits::INCREMENTAL_IMPORT_MAX_BYTES;

/// What to do with a file converted before whose size or entity tag changed since.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnChanged {
    /// Stop, naming it (its rows would be imported twice).
    #[default]
    Fail,
    /// Convert it again in this increment.
    Reconvert,
}

/// How a file looked when it was converted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Stamp {
    size: u64,
    /// Object stores' entity tag (not kept for local files, whose tag is the inode: a copied
    /// export would look changed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    e_tag: Option<String>,
    last_modified: String,
}

impl Stamp {
    fn of(meta: &ObjectMeta, local: bool) -> Stamp {
        Stamp {
            size: meta.size,
            e_tag: if local { None } else { meta.e_tag.clone() },
            last_modified: meta.last_modified.to_rfc3339(),
        }
    }

    /// Whether the file is the one converted: same size, and same tag (or, without tags, the
    /// same modification time).
    fn same_file(&self, now: &Stamp) -> bool {
        self.size == now.size
            && match (&self.e_tag, &now.e_tag) {
                (Some(before), Some(now)) => before == now,
                _ => self.last_modified == now.last_modified,
            }
    }
}

/// `sources.json`: per incremental table, every file converted by the runs of the chain.
#[derive(Debug, Default, Serialize, Deserialize)]
struct SourcesState {
    format: u32,
    tables: BTreeMap<String, BTreeMap<String, Stamp>>,
}

/// An incremental mapping file's run, decided before it starts.
pub(crate) struct IncrementPlan {
    pub(crate) kind: RunKind,
    pub(crate) selection: Arc<SourceSelection>,
    state: SourcesState,
    pub(crate) report: IncrementReport,
}

impl IncrementPlan {
    /// The record to stage with the run.
    pub(crate) fn state_bytes(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(&self.state).map_err(|e| Error::Internal(format!("sources record: {e}")))
    }
}

/// Decides what a run of `mapping` reads of its incremental tables; None when it has none.
/// `incremental` is whether the run was asked to convert only new files; a run that is not (or
/// has no record to go by) converts everything and records it for the next.
pub(crate) async fn prepare(
    mapping: &MappingFile,
    engine: &EngineOptions,
    stores: &Arc<StoreRegistry>,
    staging: &Staging,
    incremental: bool,
    on_changed: OnChanged,
) -> Result<Option<IncrementPlan>> {
    if mapping.directives.incremental.is_empty() {
        if incremental {
            tracing::warn!(
                "{} has no `-- pengine: incremental = TABLE` directive: its dataset is converted \
                 whole",
                mapping.display_name()
            );
        }
        return Ok(None);
    }
    let tables = crate::mapping::external_tables(&mapping.setup);
    let previous = if incremental {
        previous_state(staging).await?
    } else {
        Err("--full".to_string())
    };
    let mut selection = SourceSelection::default();
    let mut state = SourcesState {
        format: STATE_FORMAT,
        tables: BTreeMap::new(),
    };
    let (mut new_files, mut skipped_files, mut changed) = (0, 0, Vec::new());
    for table in tables
        .iter()
        .filter(|t| mapping.directives.incremental.contains(&t.name))
    {
        refuse_overlap(table, &tables, &mapping.directives.incremental)?;
        let listed = engine::list_table_files(engine, Arc::clone(stores), table).await?;
        let local = listed.store.scheme() == "file";
        let seen = previous
            .as_ref()
            .ok()
            .and_then(|(_, p)| p.tables.get(&table.name));
        let mut recorded = seen.cloned().unwrap_or_default();
        let mut allowed = Vec::new();
        for meta in &listed.files {
            let name = crate::sources::file_name(&listed.store, &meta.location);
            let now = Stamp::of(meta, local);
            match seen.and_then(|s| s.get(&name)) {
                None => new_files += 1,
                Some(before) if before.same_file(&now) => {
                    skipped_files += 1;
                    continue;
                }
                Some(_) => changed.push(name.clone()),
            }
            allowed.push(meta.location.clone());
            recorded.insert(name, now);
        }
        selection.restrict(&listed.store, listed.prefix, allowed);
        state.tables.insert(table.name.clone(), recorded);
    }
    let (kind, full_because) = match &previous {
        Ok(_) => (RunKind::Increment, None),
        Err(why) => (RunKind::Full, Some(why.clone())),
    };
    if !changed.is_empty() && on_changed == OnChanged::Fail {
        let run = previous.as_ref().map(|(run, _)| run.as_str()).unwrap_or("");
        return Err(changed_error(mapping, &changed, run));
    }
    if kind == RunKind::Increment && new_files + changed.len() == 0 {
        return Err(Error::NothingNew(format!(
            "{}: no new source files since run {} ({skipped_files} file(s) of {} converted \
             before); nothing to publish, the current snapshot stays",
            mapping.display_name(),
            previous.as_ref().map(|(run, _)| run.as_str()).unwrap_or(""),
            mapping.directives.incremental.join(", ")
        )));
    }
    let data_location = staging.data_location();
    Ok(Some(IncrementPlan {
        kind,
        selection: Arc::new(selection),
        state,
        report: IncrementReport {
            kind,
            full_because,
            data_location,
            new_files,
            skipped_files,
            changed_files: changed.len(),
        },
    }))
}

/// A mapping error of an increment most often comes from its columns: they are inferred from
/// the new files alone, which may lack a field earlier files had. Says so, and what to do.
pub(crate) fn explain_failure(e: Error, increment: Option<&IncrementReport>) -> Error {
    match (e, increment) {
        (
            Error::Mapping {
                file,
                line,
                message,
            },
            Some(report),
        ) if report.kind == RunKind::Increment => Error::Mapping {
            file,
            line,
            message: format!(
                "{message}\n(this increment's columns come from its {} new file(s) alone, which \
                     may lack a field the earlier files had: declare the columns in the CREATE \
                     EXTERNAL TABLE, or convert everything with --full)",
                report.new_files + report.changed_files
            ),
        },
        (e, _) => e,
    }
}

/// The record of the dataset's newest committed run, with its run id; Err(why not) when there
/// is none to go by (the run is then a full one).
async fn previous_state(
    staging: &Staging,
) -> Result<std::result::Result<(String, SourcesState), String>> {
    let Some(before) = staging.before() else {
        return Ok(Err("the dataset has no committed run yet".into()));
    };
    let dest = &staging.dest;
    let path = dest
        .snapshot_dir(staging.dataset, &before.run_id)
        .join(STATE_FILE);
    let Some(bytes) = dest.read_optional(&path).await? else {
        return Ok(Err(format!(
            "its last run ({}) kept no record of the files it converted",
            before.run_id
        )));
    };
    let state: SourcesState = serde_json::from_slice(&bytes).map_err(|e| {
        Error::Data(format!(
            "{} is damaged ({e}); re-run with --full to convert everything and record it anew",
            dest.show(&path)
        ))
    })?;
    if state.format > STATE_FORMAT {
        return Err(Error::Data(format!(
            "{} was written by a newer pengine: upgrade pengine",
            dest.show(&path)
        )));
    }
    Ok(Ok((before.run_id.clone(), state)))
}

/// An incremental table must not share files with a table read whole: the selection of new
/// files would hide the others from it.
fn refuse_overlap(
    table: &ExternalTable,
    tables: &[ExternalTable],
    incremental: &[String],
) -> Result<()> {
    let norm = |l: &str| l.trim_end_matches('/').to_string();
    let mine = norm(&table.location);
    for other in tables.iter().filter(|t| !incremental.contains(&t.name)) {
        let theirs = norm(&other.location);
        let inside = |a: &str, b: &str| a == b || a.starts_with(&format!("{b}/"));
        if inside(&mine, &theirs) || inside(&theirs, &mine) {
            return Err(Error::Config(format!(
                "table {} is read incrementally and table {} whole, but their locations overlap \
                 ({} and {}): give them separate folders, or name both in `incremental`",
                table.name, other.name, table.location, other.location
            )));
        }
    }
    Ok(())
}

fn changed_error(mapping: &MappingFile, changed: &[String], run: &str) -> Error {
    let shown = &changed[..changed.len().min(CHANGED_NAMES_SHOWN)];
    let more = changed.len() - shown.len();
    let more = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    Error::Data(format!(
        "{}: {} source file(s) changed since run {run} converted them: {}{more}. Converting them \
         again would import their rows a second time. Re-run the whole dataset with `pengine run \
         {} --full`, or pass --on-changed reconvert to convert the changed files again in this \
         increment",
        mapping.display_name(),
        changed.len(),
        shown.join(", "),
        mapping.display_name()
    ))
}
