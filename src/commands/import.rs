//! `pengine import`: an output's committed datasets into an Amazon Personalize dataset group.
//! Reads the output's pointers and records, plans the requests, and (unless it is a dry run)
//! makes them; what happens on the way is handed to `step`, the result returned.

use std::collections::HashMap;

use crate::error::{Error, Result};
use crate::import::execute;
use crate::import::output::S3Output;
use crate::import::plan::{self, GroupArn, Plan};
use crate::import::report::ImportReport;
use crate::import::{ImportOptions, record};
use crate::personalize::DatasetType;
use crate::store::StoreRegistry;

/// A dry run's plan, or what a real import did.
pub(crate) enum Imported {
    DryRun(Plan),
    Done(ImportReport),
}

pub(crate) async fn import(
    options: &ImportOptions,
    dry_run: bool,
    step: &(dyn Fn(DatasetType, &str) + Sync),
) -> Result<Imported> {
    let group = GroupArn::parse(&options.dataset_group_arn).map_err(Error::Usage)?;
    let stores = StoreRegistry::new();
    let out = S3Output::open(&options.output, &stores)?;
    let committed = out.committed(&options.datasets).await?;
    let mut imported = HashMap::new();
    for c in &committed {
        let runs = record::read(&out.dest, c.dataset)
            .await?
            .imported_runs(&group.arn);
        imported.insert(c.dataset, runs);
    }
    let plan = plan::plan(
        &group,
        &options.role_arn,
        options.mode,
        options.wait,
        &committed,
        |dataset| imported.get(&dataset).cloned().unwrap_or_default(),
        |dataset, run_id| out.data_location(dataset, run_id),
    )?;
    if dry_run {
        return Ok(Imported::DryRun(plan));
    }
    execute::execute(&plan, &out, options.wait, step)
        .await
        .map(Imported::Done)
}
