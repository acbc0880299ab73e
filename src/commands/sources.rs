//! `pengine sources`: what a mapping file registers, or what an export root holds (each table
//! found in it): columns and types, files, bytes, partition columns.

use std::path::{Path, PathBuf};

use crate::describe::SourceInfo;
use crate::engine::EngineOptions;
use crate::error::{Error, Result};
use crate::mapping::{MappingFile, Vars};

/// The sources described, and the files of an export root that fit no table (with why).
pub(crate) struct Listing {
    pub(crate) skipped: Vec<(String, String)>,
    pub(crate) sources: Vec<SourceInfo>,
}

/// Describes `target`: a mapping file's sources, or each table under a location.
pub(crate) async fn sources(
    target: &str,
    vars: &[(String, String)],
    engine: &EngineOptions,
) -> Result<Listing> {
    let is_mapping = target.ends_with(".sql") && Path::new(target).is_file();
    if is_mapping {
        let vars: Vars = vars.iter().cloned().collect();
        super::mappings::check_variables(&[PathBuf::from(target)], &vars)?;
        let mapping = MappingFile::load(Path::new(target), &vars)?;
        return Ok(Listing {
            skipped: Vec::new(),
            sources: crate::describe::describe_mapping(&mapping, engine).await?,
        });
    }
    if let Some((name, _)) = vars.first() {
        return Err(Error::Usage(format!(
            "--var {name}: variables fill mapping files, and {target} is a location"
        )));
    }
    let stores = crate::store::StoreRegistry::new();
    let found = crate::crawl::tables::tables(target, &stores).await?;
    let mut sources = Vec::new();
    for table in &found.locations {
        sources.push(crate::describe::describe_location(table, engine).await?);
    }
    Ok(Listing {
        skipped: found.skipped,
        sources,
    })
}
