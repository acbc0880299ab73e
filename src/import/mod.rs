//! `pengine import`: hands an output's datasets to Amazon Personalize. Apart from the run because
//! it talks to another service than storage, and kept in floors: [`output`] reads what the runs
//! committed (pointers, schemas), [`plan`] decides from that alone which requests to make (what
//! `--dry-run` prints), [`api`] makes them with the AWS SDK, [`execute`] follows the plan (reuse,
//! create, start, wait), [`report`] tells what it did and [`record`] remembers which runs were
//! imported.

pub(crate) mod api;
pub(crate) mod execute;
pub(crate) mod output;
pub(crate) mod plan;
pub(crate) mod record;
pub(crate) mod report;

/// Which runs of each dataset's chain to import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// The chain's full run (an import job in FULL mode, which replaces the dataset's bulk data),
    /// then each of its increments (INCREMENTAL jobs), in order.
    Full,
    /// Only the increments not yet imported into this dataset group (INCREMENTAL jobs).
    Incremental,
}

/// An import job's mode as Personalize spells it (`importMode`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub(crate) enum ImportMode {
    Full,
    Incremental,
}

impl ImportMode {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            ImportMode::Full => "FULL",
            ImportMode::Incremental => "INCREMENTAL",
        }
    }
}

/// What `pengine import` was asked to do.
#[derive(Debug, Clone)]
pub(crate) struct ImportOptions {
    pub(crate) output: String,
    /// Only these datasets (empty: every dataset the output has).
    pub(crate) datasets: Vec<crate::personalize::DatasetType>,
    pub(crate) dataset_group_arn: String,
    pub(crate) role_arn: String,
    pub(crate) mode: Mode,
    pub(crate) wait: bool,
}
