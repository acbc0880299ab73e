//! `pengine sources`: what a mapping file registers, or what an export root or a database holds
//! (each table found in it): columns and types, files, bytes, partition columns.

use std::path::{Path, PathBuf};

use crate::describe::SourceInfo;
use crate::engine::EngineOptions;
use crate::error::{Error, Result};
use crate::mapping::{MappingFile, Vars};

/// Describes `target`: a mapping file's sources, or each table under a location (handing the
/// files of the location that fit no table to `skipped`, with why, before describing the tables).
pub(crate) async fn sources(
    target: &str,
    vars: &[(String, String)],
    engine: &EngineOptions,
    mut skipped: impl FnMut(&str, &str) -> Result<()>,
) -> Result<Vec<SourceInfo>> {
    let is_mapping = target.ends_with(".sql") && Path::new(target).is_file();
    if is_mapping {
        let vars: Vars = vars.iter().cloned().collect();
        super::mappings::check_variables(&[PathBuf::from(target)], &vars)?;
        let mapping = MappingFile::load(Path::new(target), &vars)?;
        return crate::describe::describe_mapping(&mapping, engine).await;
    }
    if let Some((name, _)) = vars.first() {
        return Err(Error::Usage(format!(
            "--var {name}: variables fill mapping files, and {target} is a location"
        )));
    }
    if let Some(tables) = crate::crawl::database::tables(target).await? {
        let mut sources = Vec::new();
        for detected in tables {
            let location = detected.location.clone();
            // One table the reader cannot take does not hide the others.
            match crate::describe::describe_detected(detected, engine).await {
                Ok(source) => sources.push(source),
                Err(Error::Database(why)) => skipped(&location, &why)?,
                Err(e) => return Err(e),
            }
        }
        return Ok(sources);
    }
    let stores = crate::store::StoreRegistry::new();
    let found = crate::crawl::tables::tables(target, &stores).await?;
    for (file, why) in &found.skipped {
        skipped(file, why)?;
    }
    let mut sources = Vec::new();
    for table in &found.locations {
        sources.push(crate::describe::describe_location(table, engine).await?);
    }
    Ok(sources)
}
