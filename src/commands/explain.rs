//! `pengine explain`: how each mapping file is planned (output columns, conversions, DataFusion's
//! plan), reading only the sources' schemas.

use std::path::PathBuf;

use crate::engine::EngineOptions;
use crate::error::Result;
use crate::mapping::Vars;

/// Hands each mapping file's explanation to `emit` as soon as it is planned.
pub(crate) async fn explain(
    files: &[PathBuf],
    vars: &Vars,
    engine: &EngineOptions,
    mut emit: impl FnMut(String) -> Result<()>,
) -> Result<()> {
    for mapping in super::mappings::load(files, vars)? {
        emit(crate::explain::explain(&mapping, engine).await?)?;
    }
    Ok(())
}
