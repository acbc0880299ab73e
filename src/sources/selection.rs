//! The files an incremental run may read of its incremental tables: chosen before the run (new
//! since the last committed run), so that every listing of the run (schema inference, the scan)
//! sees the same files, and a file that arrives during the run waits for the next one.

use std::collections::HashSet;

use object_store::path::Path;
use url::Url;

/// The allowed files under each incremental table's location; files elsewhere are not its
/// business.
#[derive(Debug, Default)]
pub struct SourceSelection {
    tables: Vec<Selected>,
}

#[derive(Debug)]
struct Selected {
    /// The store's scheme and authority (`s3://bucket`, `file://`).
    store: (String, String),
    prefix: Path,
    allowed: HashSet<Path>,
}

fn store_key(url: &Url) -> (String, String) {
    (url.scheme().to_string(), url.authority().to_string())
}

impl SourceSelection {
    /// Only `allowed` are read under `prefix` of the store at `store`.
    pub fn restrict(&mut self, store: &Url, prefix: Path, allowed: impl IntoIterator<Item = Path>) {
        self.tables.push(Selected {
            store: store_key(store),
            prefix,
            allowed: allowed.into_iter().collect(),
        });
    }

    /// Whether `object` of the store at `store` lies under a restricted location and is not
    /// one of its allowed files.
    pub fn leaves_out(&self, store: &Url, object: &Path) -> bool {
        let key = store_key(store);
        self.tables.iter().any(|table| {
            table.store == key
                && object.prefix_match(&table.prefix).is_some()
                && !table.allowed.contains(object)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_allowed_files_under_a_restricted_location_are_read() {
        let s3 = Url::parse("s3://raw/").unwrap();
        let mut selection = SourceSelection::default();
        selection.restrict(
            &s3,
            Path::from("events"),
            [Path::from("events/2024/02/b.json")],
        );
        assert!(selection.leaves_out(&s3, &Path::from("events/2024/01/a.json")));
        assert!(!selection.leaves_out(&s3, &Path::from("events/2024/02/b.json")));
        // Other locations and stores are not restricted.
        assert!(!selection.leaves_out(&s3, &Path::from("items/items.csv")));
        let other = Url::parse("s3://other/").unwrap();
        assert!(!selection.leaves_out(&other, &Path::from("events/2024/01/a.json")));
    }
}
