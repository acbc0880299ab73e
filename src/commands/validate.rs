//! `pengine validate`: mapping files through the static checks, or (with a dataset type) CSV data
//! made elsewhere through every row and dataset check. The checks are in [`crate::validate`].

use std::path::{Path, PathBuf};

use crate::error::{Error, Result};
use crate::mapping::{MappingFile, Vars};
use crate::personalize::DatasetType;
use crate::report::RunReport;
use crate::run::RunOptions;
use crate::validate::StaticResult;

/// What was validated.
pub(crate) enum Validated {
    /// CSV data made elsewhere, checked as a run would.
    Data(Box<RunReport>),
    /// Each mapping file's static checks, in file order.
    Mappings(Vec<StaticResult>),
}

/// Checks the data at the one location in `targets` as a dataset of type `dataset`.
pub(crate) async fn data(
    dataset: DatasetType,
    targets: &[String],
    schema: Option<&Path>,
    options: &RunOptions,
) -> Result<Validated> {
    let [location] = targets else {
        return Err(Error::Config(
            "with --dataset, give one data location (a folder of CSV parts or a file)".into(),
        ));
    };
    let report = crate::validate::check_data(dataset, location, schema, options).await?;
    Ok(Validated::Data(Box::new(report)))
}

/// Checks each mapping file named (folders expanded), handing each result to `checked` as it
/// comes; a file that does not load is a failed result, not the end of the command.
pub(crate) async fn mappings(
    targets: &[String],
    vars: &Vars,
    options: &RunOptions,
    mut checked: impl FnMut(&StaticResult),
) -> Result<Validated> {
    let files: Vec<PathBuf> = targets.iter().map(PathBuf::from).collect();
    let paths = super::mappings::paths(&files)?;
    super::mappings::check_variables(&paths, vars)?;
    let mut results = Vec::new();
    for path in paths {
        let result = match MappingFile::load(&path, vars) {
            Ok(mapping) => crate::validate::check_mapping(&mapping, options).await,
            Err(e) => StaticResult::failed(path.display().to_string(), None, e),
        };
        checked(&result);
        results.push(result);
    }
    Ok(Validated::Mappings(results))
}
