//! A run of mapping files: every mapping file of a project at once, in one process (one file is
//! a project of one).
//!
//! The datasets execute concurrently on one runtime (so they share the cores) and draw from one
//! memory pool of `--memory-limit` ([`SharedMemory`]: equal shares while several run, so none is
//! starved). Each is staged on its own. Once all have finished, the cross-dataset checks compare
//! this run's results with each other, and every dataset that succeeded is published on its own:
//! one dataset's failure leaves the others published and its own previous export untouched.

use std::collections::BTreeMap;
use std::time::Instant;

use crate::error::{Error, Result};
use crate::mapping::MappingFile;
use crate::memory::SharedMemory;
use crate::personalize::DatasetType;
use crate::report::RunReport;
use crate::run::{self, RunOptions, Staged};

/// What happened to one mapping file of the project: its report once published, or why not.
#[derive(Debug)]
pub(crate) struct DatasetOutcome {
    pub(crate) mapping_file: String,
    pub(crate) dataset: DatasetType,
    pub(crate) result: Result<RunReport>,
}

/// The combined result of a project run, datasets in file order.
#[derive(Debug)]
pub(crate) struct ProjectReport {
    pub(crate) datasets: Vec<DatasetOutcome>,
    pub(crate) wall_seconds: f64,
    /// The shared memory limit (absent when unlimited).
    pub(crate) memory_limit_bytes: Option<u64>,
    /// The most memory the datasets' operators held at once.
    pub(crate) memory_peak_bytes: Option<u64>,
}

/// Refuses two mapping files that would publish the same dataset to the same output.
fn check_distinct(mappings: &[MappingFile], options: &RunOptions) -> Result<()> {
    let mut seen: BTreeMap<(String, &str), String> = BTreeMap::new();
    for mapping in mappings {
        let output = run::output_location(mapping, options);
        if let Some(first) = seen.insert(
            (run::same_place_key(&output), mapping.dataset.key()),
            mapping.display_name(),
        ) {
            return Err(Error::Config(format!(
                "{} and {} both write the {} dataset to {output}: give one of them another \
                 output (its `output` directive) or run them separately",
                first,
                mapping.display_name(),
                mapping.dataset
            )));
        }
    }
    Ok(())
}

/// Runs the mapping files concurrently and publishes each dataset that succeeds.
pub(crate) async fn run_all(
    mappings: Vec<MappingFile>,
    options: &RunOptions,
) -> Result<ProjectReport> {
    check_distinct(&mappings, options)?;
    let started = Instant::now();
    let shared = options
        .engine
        .memory_limit
        .map(|limit| SharedMemory::new(limit as usize));
    let mut options = options.clone();
    options.engine.shared_memory = shared.clone();
    // Every dataset counts as running from the start, so the first one cannot take it all.
    let participations: Vec<_> = mappings
        .iter()
        .map(|_| shared.as_ref().map(SharedMemory::participate))
        .collect();
    let tasks: Vec<_> = mappings
        .iter()
        .cloned()
        .zip(participations)
        .map(|(mapping, participation)| {
            let options = options.clone();
            tokio::spawn(async move {
                let staged = run::stage(&mapping, &options).await;
                drop(participation);
                staged
            })
        })
        .collect();
    let mut staged: Vec<Result<Staged>> = Vec::with_capacity(tasks.len());
    for task in tasks {
        staged.push(
            task.await
                .unwrap_or_else(|e| Err(Error::Internal(format!("a dataset's task failed: {e}")))),
        );
    }

    if crate::interrupt::requested() {
        for staged in staged.into_iter().flatten() {
            staged.discard().await;
        }
        return Err(Error::Interrupted);
    }
    let siblings: Vec<_> = staged.iter().flatten().map(Staged::ids).collect();
    let mut datasets = Vec::with_capacity(staged.len());
    for (mapping, staged) in mappings.iter().zip(staged) {
        let result = match staged {
            Ok(staged) => run::publish(staged, &options, &siblings).await,
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            tracing::debug!("{} failed: {e:?}", mapping.display_name());
        }
        datasets.push(DatasetOutcome {
            mapping_file: mapping.display_name(),
            dataset: mapping.dataset,
            result,
        });
    }
    Ok(ProjectReport {
        datasets,
        wall_seconds: started.elapsed().as_secs_f64(),
        memory_limit_bytes: shared.as_ref().map(|s| s.limit() as u64),
        memory_peak_bytes: shared.as_ref().map(|s| s.peak() as u64),
    })
}
