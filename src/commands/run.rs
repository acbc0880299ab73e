//! `pengine run FILE|DIR...`: one mapping file or several, through the same path. A single file
//! is a project of one (how the CLI shows one dataset differs, not how it runs).

use std::path::PathBuf;

use crate::error::Result;
use crate::mapping::Vars;
use crate::project::{self, ProjectReport};
use crate::run::RunOptions;

/// Loads the mapping files named (folders expanded) and runs them as one project.
pub(crate) async fn run(
    files: &[PathBuf],
    vars: &Vars,
    options: &RunOptions,
) -> Result<ProjectReport> {
    let mappings = super::mappings::load(files, vars)?;
    project::run_all(mappings, options).await
}
