//! `pengine schema`: the Avro schema each mapping file produces, planned against the sources'
//! schemas; nothing is read beyond them and nothing is written.

use std::path::PathBuf;
use std::sync::Arc;

use crate::engine::EngineOptions;
use crate::error::Result;
use crate::mapping::Vars;
use crate::personalize::avro;
use crate::store::StoreRegistry;

/// Hands each mapping file's schema text to `emit` as soon as it is planned (an error in a later
/// file leaves the earlier schemas shown).
pub(crate) async fn schemas(
    files: &[PathBuf],
    vars: &Vars,
    engine: &EngineOptions,
    mut emit: impl FnMut(String) -> Result<()>,
) -> Result<()> {
    for mapping in super::mappings::load(files, vars)? {
        let planned =
            crate::dataset_plan::plan(&mapping, engine, Arc::new(StoreRegistry::new())).await?;
        emit(avro::schema_text(&planned.columns)?)?;
    }
    Ok(())
}
