//! What a source listing reads: data files only.
//!
//! Like Spark, Hive and DuckDB, a listing leaves out names starting with `.` or `_` (`_SUCCESS`,
//! `_temporary/`, `.part-0.crc`), and pengine's own output wherever it sits under a source (data
//! folders, schema/report/rejects/bad-records files, `.pengine/`): reading it back would double
//! every row. The store DataFusion lists sources through ([`SourceStores`]) applies the rule, and
//! notes what it left out and why ([`SkippedFiles`]) for `pengine sources` and `-v`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::execution::object_store::ObjectStoreRegistry;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
};
use serde::Serialize;
use url::Url;

use super::exclude::Exclusions;
use super::selection::SourceSelection;
use crate::store::StoreRegistry;

/// The folder where pengine keeps its state beside the datasets of an output.
pub const STATE_DIR: &str = ".pengine";
/// Under [`STATE_DIR`]: `<name>.json`, the parts of each published dataset.
pub const PUBLISHED_DIR: &str = "published";
/// The files pengine writes beside each dataset's data folder `<output>/<name>/`, as
/// `<output>/<name><suffix>` (kept equal to `sink::destination::Destination`'s names by a test in sink::publish).
pub const OUTPUT_SIDE_SUFFIXES: &[&str] = &[
    ".schema.json",
    ".report.json",
    ".rejects.csv",
    ".bad-records.jsonl",
    ".current.json",
];

/// Why a listed file is not read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SkipReason {
    /// A name (of the file or a folder above it) that starts with `.` or `_`.
    Hidden,
    /// Part of a pengine output found under the source (its root named).
    PengineOutput(String),
    /// Under the output of the run that is reading.
    ThisRunsOutput,
    /// Under an incremental table, and not among the new files this run converts.
    NotInThisIncrement,
    /// A name the table's `'format.exclude'` pattern (named) leaves out.
    Excluded(String),
}

impl fmt::Display for SkipReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SkipReason::Hidden => write!(f, "hidden or side file (a name starting with . or _)"),
            SkipReason::PengineOutput(root) => write!(f, "pengine output (under {root}/)"),
            SkipReason::ThisRunsOutput => write!(f, "this run's output"),
            SkipReason::NotInThisIncrement => write!(
                f,
                "not in this increment (converted by an earlier run, or new since this run listed \
                 its sources)"
            ),
            SkipReason::Excluded(pattern) => {
                write!(
                    f,
                    "left out by the table's 'format.exclude' pattern {pattern}"
                )
            }
        }
    }
}

/// The files listings left out, by location, for the whole session.
#[derive(Debug, Default)]
pub struct SkippedFiles(Mutex<BTreeMap<String, SkipReason>>);

impl SkippedFiles {
    /// The log registered with a session, or an empty one.
    pub fn of(config: &datafusion::prelude::SessionConfig) -> Arc<SkippedFiles> {
        config.get_extension::<SkippedFiles>().unwrap_or_default()
    }

    fn note(&self, location: String, reason: SkipReason) {
        self.0
            .lock()
            .expect("skipped-files lock")
            .insert(location, reason);
    }

    /// (location, reason) of every file left out so far, sorted by location.
    pub fn all(&self) -> Vec<(String, SkipReason)> {
        let skipped = self.0.lock().expect("skipped-files lock");
        skipped
            .iter()
            .map(|(l, r)| (l.clone(), r.clone()))
            .collect()
    }
}

/// For each of `objects` (all listed under `prefix`), why it is not data, or None to read it.
/// `output` is the reading run's own output on the same store, if any.
pub fn classify(prefix: &Path, objects: &[Path], output: Option<&Path>) -> Vec<Option<SkipReason>> {
    let outputs = pengine_outputs(objects);
    objects
        .iter()
        .map(|object| {
            if output.is_some_and(|root| object.prefix_match(root).is_some()) {
                return Some(SkipReason::ThisRunsOutput);
            }
            let relative: Vec<String> = match object.prefix_match(prefix) {
                Some(parts) => parts.map(|p| p.as_ref().to_string()).collect(),
                None => object.parts().map(|p| p.as_ref().to_string()).collect(),
            };
            if relative
                .iter()
                .any(|part| part.starts_with('.') || part.starts_with('_'))
            {
                return Some(SkipReason::Hidden);
            }
            outputs
                .iter()
                .find(|(root, names)| is_output_file(object, root, names))
                .map(|(root, _)| SkipReason::PengineOutput(root.to_string()))
        })
        .collect()
}

/// Whether a file name is not data by its name alone (hidden, `_SUCCESS`, ...): for listings
/// that are not through [`SourceStores`] (the crawler's), relative to the listed folder.
pub fn is_hidden(relative: &str) -> bool {
    relative
        .split('/')
        .any(|part| part.starts_with('.') || part.starts_with('_'))
}

/// Output roots among the listed objects, each with the dataset names written there. A folder is
/// a pengine output when it holds `.pengine/` (whose `published/` names its datasets), or both a
/// `<name>.schema.json` and a `<name>.report.json` (what every run publishes, older ones too).
fn pengine_outputs(objects: &[Path]) -> Vec<(Path, BTreeSet<String>)> {
    #[derive(Default)]
    struct Seen {
        state: bool,
        published: BTreeSet<String>,
        schemas: BTreeSet<String>,
        reports: BTreeSet<String>,
    }
    let mut found: BTreeMap<Path, Seen> = BTreeMap::new();
    for object in objects {
        let parts: Vec<String> = object.parts().map(|p| p.as_ref().to_string()).collect();
        let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
        if let Some(at) = parts.iter().position(|p| *p == STATE_DIR) {
            let root = Path::from_iter(parts[..at].iter().copied());
            let seen = found.entry(root).or_default();
            seen.state = true;
            if let [dir, file] = &parts[at + 1..]
                && *dir == PUBLISHED_DIR
                && let Some(name) = file.strip_suffix(".json")
            {
                seen.published.insert(name.into());
            }
        }
        let Some((name, parent)) = parts.split_last() else {
            continue;
        };
        let parent = Path::from_iter(parent.iter().copied());
        if let Some(dataset) = name.strip_suffix(".schema.json") {
            found
                .entry(parent)
                .or_default()
                .schemas
                .insert(dataset.into());
        } else if let Some(dataset) = name.strip_suffix(".report.json") {
            found
                .entry(parent)
                .or_default()
                .reports
                .insert(dataset.into());
        }
    }
    found
        .into_iter()
        .filter_map(|(root, seen)| {
            let mut names: BTreeSet<String> =
                seen.schemas.intersection(&seen.reports).cloned().collect();
            names.extend(seen.published);
            (seen.state || !names.is_empty()).then_some((root, names))
        })
        .collect()
}

/// Whether `object` is a data part or side file of a dataset of the output at `root`.
fn is_output_file(object: &Path, root: &Path, names: &BTreeSet<String>) -> bool {
    let Some(rest) = object.prefix_match(root) else {
        return false;
    };
    let rest: Vec<_> = rest.collect();
    match rest.as_slice() {
        [file] => OUTPUT_SIDE_SUFFIXES.iter().any(|suffix| {
            file.as_ref()
                .strip_suffix(suffix)
                .is_some_and(|name| names.contains(name))
        }),
        [folder, _, ..] => names.contains(folder.as_ref()),
        [] => false,
    }
}

/// The object stores DataFusion reads sources through: pengine's stores, with listings that
/// leave out what is not data.
#[derive(Debug)]
pub struct SourceStores {
    stores: Arc<StoreRegistry>,
    skipped: Arc<SkippedFiles>,
    /// The reading run's output, when it has one.
    output: Option<Url>,
    /// The files an incremental run reads of its incremental tables.
    selection: Option<Arc<SourceSelection>>,
    /// File names the session's tables leave out.
    exclusions: Arc<Exclusions>,
}

impl SourceStores {
    pub fn new(
        stores: Arc<StoreRegistry>,
        skipped: Arc<SkippedFiles>,
        output: Option<Url>,
        selection: Option<Arc<SourceSelection>>,
        exclusions: Arc<Exclusions>,
    ) -> Self {
        Self {
            stores,
            skipped,
            output,
            selection,
            exclusions,
        }
    }
}

impl ObjectStoreRegistry for SourceStores {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.stores.register_store(url, store)
    }

    fn deregister_store(&self, url: &Url) -> datafusion::common::Result<Arc<dyn ObjectStore>> {
        self.stores.deregister_store(url)
    }

    fn get_store(&self, url: &Url) -> datafusion::common::Result<Arc<dyn ObjectStore>> {
        let inner = self.stores.get_store(url)?;
        let output = self
            .output
            .as_ref()
            .filter(|out| out.scheme() == url.scheme() && out.authority() == url.authority())
            .and_then(|out| Path::from_url_path(out.path()).ok());
        Ok(Arc::new(DataOnly {
            inner,
            store: url.clone(),
            skipped: Arc::clone(&self.skipped),
            output,
            selection: self.selection.clone(),
            exclusions: Arc::clone(&self.exclusions),
        }))
    }
}

/// A store whose listings hold data files only ([`classify`]); everything else is the inner
/// store's.
#[derive(Debug, Clone)]
struct DataOnly {
    inner: Arc<dyn ObjectStore>,
    /// The store's URL (`file:///`, `s3://bucket`): for the locations noted as skipped.
    store: Url,
    skipped: Arc<SkippedFiles>,
    output: Option<Path>,
    selection: Option<Arc<SourceSelection>>,
    exclusions: Arc<Exclusions>,
}

impl DataOnly {
    fn show(&self, path: &Path) -> String {
        super::file_name(&self.store, path)
    }

    fn keep(&self, prefix: &Path, objects: Vec<ObjectMeta>) -> Vec<ObjectMeta> {
        let paths: Vec<Path> = objects.iter().map(|m| m.location.clone()).collect();
        let mut verdicts = classify(prefix, &paths, self.output.as_ref());
        if let Some(selection) = &self.selection {
            for (path, verdict) in paths.iter().zip(verdicts.iter_mut()) {
                if verdict.is_none() && selection.leaves_out(&self.store, path) {
                    *verdict = Some(SkipReason::NotInThisIncrement);
                }
            }
        }
        for (path, verdict) in paths.iter().zip(verdicts.iter_mut()) {
            if verdict.is_none() {
                *verdict = self
                    .exclusions
                    .matching(&self.store, path)
                    .map(SkipReason::Excluded);
            }
        }
        let listed = objects.len();
        let mut kept = Vec::with_capacity(listed);
        for (meta, verdict) in objects.into_iter().zip(verdicts) {
            match verdict {
                None => kept.push(meta),
                Some(reason) => {
                    tracing::debug!("not read: {} ({reason})", self.show(&meta.location));
                    self.skipped.note(self.show(&meta.location), reason);
                }
            }
        }
        tracing::debug!(
            "listed {}: {} file(s) to read, {} left out",
            self.show(prefix),
            kept.len(),
            listed - kept.len()
        );
        kept
    }
}

impl fmt::Display for DataOnly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DataOnly({})", self.inner)
    }
}

#[async_trait]
impl ObjectStore for DataOnly {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> object_store::Result<PutResult> {
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> object_store::Result<Box<dyn MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: GetOptions,
    ) -> object_store::Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(
        &self,
        location: &Path,
        ranges: &[std::ops::Range<u64>],
    ) -> object_store::Result<Vec<bytes::Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, object_store::Result<Path>>,
    ) -> BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, object_store::Result<ObjectMeta>> {
        // The whole listing first: an output root is known only once its `.pengine/` is seen.
        let listing = self.inner.list(prefix);
        let prefix = prefix.cloned().unwrap_or_default();
        let this = self.clone();
        futures::stream::once(async move {
            let objects: Vec<ObjectMeta> = listing.try_collect().await?;
            Ok::<_, object_store::Error>(futures::stream::iter(
                this.keep(&prefix, objects).into_iter().map(Ok),
            ))
        })
        .try_flatten()
        .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> object_store::Result<ListResult> {
        let mut listed = self.inner.list_with_delimiter(prefix).await?;
        let base = prefix.cloned().unwrap_or_default();
        listed.objects = self.keep(&base, listed.objects);
        listed.common_prefixes.retain(|folder| {
            let hidden = folder
                .filename()
                .is_some_and(|name| name.starts_with('.') || name.starts_with('_'));
            let own = self
                .output
                .as_ref()
                .is_some_and(|root| folder.prefix_match(root).is_some());
            !hidden && !own
        });
        Ok(listed)
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(
        &self,
        from: &Path,
        to: &Path,
        options: RenameOptions,
    ) -> object_store::Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdicts(prefix: &str, objects: &[&str], output: Option<&str>) -> Vec<Option<SkipReason>> {
        let paths: Vec<Path> = objects.iter().map(|o| Path::from(*o)).collect();
        classify(&Path::from(prefix), &paths, output.map(Path::from).as_ref())
    }

    #[test]
    fn hidden_and_side_files_below_the_prefix_are_skipped() {
        let got = verdicts(
            "_exports/src",
            &[
                "_exports/src/2024/01/a.json",
                "_exports/src/2024/01/.a.json.crc",
                "_exports/src/_SUCCESS",
                "_exports/src/_temporary/0/x.json",
                "_exports/src/.hidden/y.json",
            ],
            None,
        );
        assert_eq!(
            got,
            vec![
                None,
                Some(SkipReason::Hidden),
                Some(SkipReason::Hidden),
                Some(SkipReason::Hidden),
                Some(SkipReason::Hidden)
            ]
        );
    }

    #[test]
    fn a_pengine_output_under_the_source_is_skipped_and_nothing_else() {
        let got = verdicts(
            "src",
            &[
                "src/events/a.json",
                "src/out/users/part-00000.csv",
                "src/out/users.schema.json",
                "src/out/users.report.json",
                "src/out/users.rejects.csv",
                "src/out/notes.json",
                "src/out/.pengine/ids/users.USER_ID.bin",
                // Only a schema: not a pengine output.
                "src/other/users.schema.json",
                "src/other/users/x.json",
            ],
            None,
        );
        let root = || Some(SkipReason::PengineOutput("src/out".into()));
        assert_eq!(
            got,
            vec![
                None,
                root(),
                root(),
                root(),
                root(),
                None,
                Some(SkipReason::Hidden),
                None,
                None
            ]
        );
    }

    #[test]
    fn an_output_is_known_by_its_published_manifests() {
        let got = verdicts(
            "src",
            &[
                "src/out/.pengine/published/users.json",
                "src/out/users/part-00000.csv",
                "src/out/items/part-00000.csv",
            ],
            None,
        );
        let root = Some(SkipReason::PengineOutput("src/out".into()));
        assert_eq!(got, vec![Some(SkipReason::Hidden), root, None]);
    }

    #[test]
    fn hidden_names_by_their_relative_path() {
        assert!(is_hidden("_SUCCESS") && is_hidden("a/.pengine/x") && !is_hidden("a/b.json"));
    }

    #[test]
    fn the_runs_own_output_is_skipped_whatever_it_holds() {
        let got = verdicts("src", &["src/a.json", "src/out/x.json"], Some("src/out"));
        assert_eq!(got, vec![None, Some(SkipReason::ThisRunsOutput)]);
    }
}
