//! File names a folder table leaves out of its listing: `OPTIONS ('format.exclude' '*.md')`. A
//! README or a notes file beside the data would otherwise be read as data (JSON folders take files
//! of any name, since Firehose's have no extension). The patterns are globs matched against a
//! file's name, in any letter case, wherever it sits under the LOCATION.
//!
//! The table factory registers a table's patterns with the session ([`Exclusions`]) before its
//! first listing; the store sources are listed through applies them, so inference, the scan and
//! `pengine sources` all see the same files. Patterns apply to every table of the session listed
//! under that LOCATION.

use std::sync::Mutex;

use object_store::path::Path;
use url::Url;

/// The table option naming the file-name patterns a folder table leaves out, comma-separated.
pub const EXCLUDE_OPTION: &str = "format.exclude";

/// The excluded file names of the session's tables.
#[derive(Debug, Default)]
pub struct Exclusions(Mutex<Vec<Excluded>>);

#[derive(Debug)]
struct Excluded {
    /// The store's scheme and authority (`s3://bucket`, `file://`).
    store: (String, String),
    prefix: Path,
    patterns: Vec<glob::Pattern>,
}

/// Parses the option's value: patterns separated by commas, blanks around them ignored.
pub fn parse(value: &str) -> Result<Vec<glob::Pattern>, String> {
    value
        .split(',')
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| {
            if p.contains('/') {
                return Err(format!(
                    "'{EXCLUDE_OPTION}' pattern '{p}' holds a '/': patterns match file names"
                ));
            }
            glob::Pattern::new(p)
                .map_err(|e| format!("'{EXCLUDE_OPTION}' pattern '{p}' is not a glob: {e}"))
        })
        .collect()
}

impl Exclusions {
    /// The log registered with a session, or an empty one.
    pub fn of(config: &datafusion::prelude::SessionConfig) -> std::sync::Arc<Exclusions> {
        config.get_extension::<Exclusions>().unwrap_or_default()
    }

    /// Registers a table's `'format.exclude'` value for the folder `url` names, with the
    /// session's `config`, before the table's first listing (a single file has nothing to
    /// leave out). A malformed pattern is an error whatever the location.
    pub fn register(
        config: &datafusion::prelude::SessionConfig,
        url: &datafusion::datasource::listing::ListingTableUrl,
        value: &str,
    ) -> Result<(), String> {
        let patterns = parse(value)?;
        if url.is_collection() {
            Exclusions::of(config).add(url.object_store().as_ref(), url.prefix().clone(), patterns);
        }
        Ok(())
    }

    /// Files under `prefix` of the store at `store` whose name matches one of `patterns` are not
    /// read.
    pub fn add(&self, store: &Url, prefix: Path, patterns: Vec<glob::Pattern>) {
        if patterns.is_empty() {
            return;
        }
        self.0.lock().expect("exclusions lock").push(Excluded {
            store: (store.scheme().to_string(), store.authority().to_string()),
            prefix,
            patterns,
        });
    }

    /// The pattern that leaves `object` of the store at `store` out, if one does.
    pub fn matching(&self, store: &Url, object: &Path) -> Option<String> {
        let name = object.filename()?;
        let options = glob::MatchOptions {
            case_sensitive: false,
            ..glob::MatchOptions::new()
        };
        let excluded = self.0.lock().expect("exclusions lock");
        excluded
            .iter()
            .filter(|e| {
                e.store.0 == store.scheme()
                    && e.store.1 == store.authority()
                    && object.prefix_match(&e.prefix).is_some()
            })
            .flat_map(|e| &e.patterns)
            .find(|p| p.matches_with(name, options))
            .map(|p| p.as_str().to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_matching_a_pattern_under_the_prefix_are_left_out() {
        let s3 = Url::parse("s3://raw/").unwrap();
        let exclusions = Exclusions::default();
        exclusions.add(&s3, Path::from("events"), parse("*.md, notes*").unwrap());
        let left_out = |p: &str| exclusions.matching(&s3, &Path::from(p));
        assert_eq!(left_out("events/README.md").as_deref(), Some("*.md"));
        assert_eq!(left_out("events/2024/03/Guide.MD").as_deref(), Some("*.md"));
        assert_eq!(left_out("events/notes.txt").as_deref(), Some("notes*"));
        assert_eq!(left_out("events/2024/03/part-0001"), None);
        assert_eq!(left_out("other/README.md"), None);
        let local = Url::parse("file:///").unwrap();
        assert_eq!(
            exclusions.matching(&local, &Path::from("events/a.md")),
            None
        );
    }

    #[test]
    fn patterns_are_file_names() {
        assert!(parse("docs/*.md").unwrap_err().contains("file names"));
        assert!(parse("[").is_err());
        assert!(parse(" , ").unwrap().is_empty());
    }
}
