//! The mapping files a command is given: folders expanded to their `*.sql` files, `--var` names
//! checked against what the files use, then loaded. Every command that takes files uses this.

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::mapping::{MappingFile, Vars};

/// The mapping files named, folders expanded to their `*.sql` files (sorted).
pub(crate) fn paths(files: &[PathBuf]) -> Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in files {
        if path.is_dir() {
            out.extend(folder(path)?);
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

/// A folder's `*.sql` files, sorted; none is an error (a wrong folder, not an empty project).
fn folder(path: &Path) -> Result<Vec<PathBuf>> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| Error::io(format!("cannot read folder {}", path.display()), e))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    if found.is_empty() {
        return Err(Error::Config(format!(
            "no *.sql mapping files in {}",
            path.display()
        )));
    }
    found.sort();
    Ok(found)
}

/// Refuses `--var` names the mapping files do not use; warns of unused pengine.toml entries.
pub(crate) fn check_variables(paths: &[PathBuf], vars: &Vars) -> Result<()> {
    for warning in crate::mapping::check_variables(paths, vars)? {
        tracing::warn!("{warning}");
    }
    Ok(())
}

/// The mapping files named (folders expanded), loaded with `vars` once those are checked.
pub(crate) fn load(files: &[PathBuf], vars: &Vars) -> Result<Vec<MappingFile>> {
    let paths = paths(files)?;
    check_variables(&paths, vars)?;
    paths
        .iter()
        .map(|path| MappingFile::load(path, vars))
        .collect()
}
