//! Follows a [`Plan`] against the service: reuses the schema and dataset when they exist (and
//! match), creates them when not, starts each dataset's jobs in order and, with `--wait`, follows
//! them to the end. Datasets' jobs go side by side; one dataset's jobs one after the other, as
//! Personalize runs one import per dataset at a time.

use std::time::{Duration, Instant};

use super::api::{JobState, Personalize, Started};
use super::output::S3Output;
use super::plan::{self, DatasetPlan, JobPlan, Plan};
use super::record::{self, ACTIVE, FAILED, ImportEntry};
use super::report::{DatasetResult, ImportReport, JobResult};
use crate::error::{Error, Result};
use crate::personalize::DatasetType;

/// How many names a run's job tries after jobs of the earlier names failed.
const MAX_ATTEMPTS: u32 = 20;
/// Sets the first interval between status polls, in seconds (fractions allowed; later polls
/// back off to six times it).
pub(crate) const POLL_ENV: &str = "PENGINE_IMPORT_POLL_SECONDS";
const FIRST_POLL: Duration = Duration::from_secs(5);
const BACKOFF_CAP: u32 = 6;

/// How often a status is polled: the first interval, then up to [`BACKOFF_CAP`] times it.
#[derive(Debug, Clone, Copy)]
struct Poll {
    first: Duration,
}

impl Poll {
    fn from_env() -> Result<Poll> {
        let Ok(text) = std::env::var(POLL_ENV) else {
            return Ok(Poll { first: FIRST_POLL });
        };
        match text.trim().parse::<f64>() {
            Ok(seconds) if seconds > 0.0 && seconds.is_finite() => Ok(Poll {
                first: Duration::from_secs_f64(seconds),
            }),
            _ => Err(Error::Config(format!(
                "{POLL_ENV}='{text}' is not a number of seconds above 0"
            ))),
        }
    }

    fn next(self, interval: Duration) -> Duration {
        (interval * 3 / 2).min(self.first * BACKOFF_CAP)
    }
}

/// The error, told as about `dataset`.
fn about(dataset: DatasetType, e: Error) -> Error {
    match e {
        Error::Service(m) => Error::Service(format!("{dataset}: {m}")),
        Error::Data(m) => Error::Data(format!("{dataset}: {m}")),
        other => other,
    }
}

/// Whether two schema texts are the same JSON.
fn same_schema(a: &str, b: &str) -> bool {
    let parse = |s: &str| serde_json::from_str::<serde_json::Value>(s).ok();
    matches!((parse(a), parse(b)), (Some(x), Some(y)) if x == y)
}

/// Runs the plan; `step` is told what happens, per dataset, as it happens.
pub(crate) async fn execute(
    plan: &Plan,
    out: &S3Output,
    wait: bool,
    step: &(dyn Fn(DatasetType, &str) + Sync),
) -> Result<ImportReport> {
    let poll = Poll::from_env()?;
    let api = Personalize::connect(&plan.group.region).await;
    let mut ready = Vec::new();
    for d in &plan.datasets {
        let (schema_arn, schema_created) = ensure_schema(&api, d)
            .await
            .map_err(|e| about(d.dataset, e))?;
        step(
            d.dataset,
            &format!("schema {schema_arn} ({})", created(schema_created)),
        );
        let (dataset_arn, dataset_created) = ensure_dataset(&api, plan, d, &schema_arn, poll)
            .await
            .map_err(|e| about(d.dataset, e))?;
        step(
            d.dataset,
            &format!("dataset {dataset_arn} ({})", created(dataset_created)),
        );
        ready.push(DatasetResult {
            dataset: d.dataset,
            schema_name: d.schema_name.clone(),
            schema_arn,
            schema_created,
            dataset_arn,
            dataset_created,
            jobs: Vec::new(),
        });
    }
    let chains = plan.datasets.iter().zip(ready.iter()).map(|(d, r)| {
        let api = &api;
        async move {
            run_jobs(api, plan, out, d, &r.dataset_arn, wait, poll, step)
                .await
                .map_err(|e| about(d.dataset, e))
        }
    });
    let outcomes = futures::future::join_all(chains).await;
    for (result, outcome) in ready.iter_mut().zip(outcomes) {
        result.jobs = outcome?;
    }
    Ok(ImportReport {
        dataset_group_arn: plan.group.arn.clone(),
        waited: wait,
        datasets: ready,
        up_to_date: plan.up_to_date.clone(),
    })
}

fn created(yes: bool) -> &'static str {
    if yes { "created" } else { "reused" }
}

/// The schema named as planned: reused when its definition is identical, else created.
async fn ensure_schema(api: &Personalize, d: &DatasetPlan) -> Result<(String, bool)> {
    let Some(arn) = api.find_schema(&d.schema_name).await? else {
        return Ok((api.create_schema(&d.schema_name, &d.schema).await?, true));
    };
    let existing = api.schema_definition(&arn).await?;
    if same_schema(&existing, &d.schema) {
        return Ok((arn, false));
    }
    Err(Error::Service(format!(
        "a schema named {} already exists ({arn}) with another definition than this output's. \
         pengine names schemas after a hash of their definition, so it was made elsewhere: \
         delete it if nothing uses it (aws personalize delete-schema --schema-arn {arn}), or \
         import into a dataset group with another name",
        d.schema_name
    )))
}

/// The group's dataset of this type: reused when its schema is this output's, else created; in
/// both cases ready (ACTIVE) before jobs start on it.
async fn ensure_dataset(
    api: &Personalize,
    plan: &Plan,
    d: &DatasetPlan,
    schema_arn: &str,
    poll: Poll,
) -> Result<(String, bool)> {
    let group = &plan.group.arn;
    let found = api
        .find_dataset(group, |t| plan::is_dataset_type(t, d.dataset))
        .await?;
    let (arn, was_created, status) = match found {
        Some(existing) => {
            if existing.schema_arn != schema_arn {
                let theirs = api.schema_definition(&existing.schema_arn).await?;
                if !same_schema(&theirs, &d.schema) {
                    return Err(Error::Service(format!(
                        "the dataset group already has a {} dataset ({}) whose schema ({}) \
                         differs from this output's ({schema_arn}), and a dataset's data must \
                         match its schema. Replace its schema with `aws personalize \
                         update-dataset --dataset-arn {} --schema-arn {schema_arn}` (Personalize \
                         accepts a compatible one), delete the dataset, or import into another \
                         dataset group",
                        plan::api_dataset_type(d.dataset),
                        existing.arn,
                        existing.schema_arn,
                        existing.arn
                    )));
                }
            }
            (existing.arn, false, existing.status)
        }
        None => {
            let arn = api
                .create_dataset(
                    &d.dataset_name,
                    schema_arn,
                    group,
                    plan::api_dataset_type(d.dataset),
                )
                .await?;
            (arn, true, String::new())
        }
    };
    if status != ACTIVE {
        wait_for_dataset(api, &arn, poll).await?;
    }
    Ok((arn, was_created))
}

async fn wait_for_dataset(api: &Personalize, arn: &str, poll: Poll) -> Result<()> {
    let mut interval = poll.first;
    loop {
        let status = api.describe_dataset(arn).await?.status;
        match status.as_str() {
            ACTIVE => return Ok(()),
            FAILED => {
                return Err(Error::Service(format!(
                    "dataset {arn} could not be created (status {FAILED})"
                )));
            }
            _ => {}
        }
        tokio::time::sleep(interval).await;
        interval = poll.next(interval);
    }
}

/// Starts one dataset's jobs in order, recording each; with `wait`, each is followed to its end
/// before the next starts, and a failed one ends the chain (an increment must not land on a
/// failed import).
#[allow(clippy::too_many_arguments)]
async fn run_jobs(
    api: &Personalize,
    plan: &Plan,
    out: &S3Output,
    d: &DatasetPlan,
    dataset_arn: &str,
    wait: bool,
    poll: Poll,
    step: &(dyn Fn(DatasetType, &str) + Sync),
) -> Result<Vec<JobResult>> {
    let mut record = record::read(&out.dest, d.dataset).await?;
    let mut results = Vec::new();
    for job in &d.jobs {
        let (name, arn, created, state) = start(api, plan, d, job, dataset_arn).await?;
        step(
            d.dataset,
            &format!(
                "import job {name} ({} of run {}) {}: {arn}",
                job.mode.as_str(),
                job.run_id,
                if created {
                    "started"
                } else {
                    "already started"
                }
            ),
        );
        let mut entry = ImportEntry {
            dataset_group_arn: plan.group.arn.clone(),
            dataset_arn: dataset_arn.to_string(),
            run_id: job.run_id.clone(),
            mode: job.mode,
            job_name: name.clone(),
            job_arn: arn.clone(),
            data_location: job.data_location.clone(),
            started_at: chrono::Utc::now().to_rfc3339(),
            status: Some(state.status.clone()),
            failure_reason: state.failure_reason.clone(),
        };
        record.upsert(entry.clone());
        record::write(&out.dest, &record).await?;
        let state = if wait {
            let end = follow(api, &arn, &name, poll, |line| step(d.dataset, line)).await?;
            entry.status = Some(end.status.clone());
            entry.failure_reason = end.failure_reason.clone();
            record.upsert(entry);
            record::write(&out.dest, &record).await?;
            end
        } else {
            state
        };
        let failed = state.status == FAILED;
        results.push(JobResult {
            run_id: job.run_id.clone(),
            job_name: name,
            job_arn: arn,
            mode: job.mode,
            data_location: job.data_location.clone(),
            created,
            status: state.status,
            failure_reason: state.failure_reason,
        });
        if failed {
            break;
        }
    }
    Ok(results)
}

/// Creates the job, or finds the one of its name already started on the same data location. A
/// job of that name that failed takes the next attempt's name.
async fn start(
    api: &Personalize,
    plan: &Plan,
    d: &DatasetPlan,
    job: &JobPlan,
    dataset_arn: &str,
) -> Result<(String, String, bool, JobState)> {
    for attempt in 1..=MAX_ATTEMPTS {
        let name = plan::job_name(&plan.group.name, d.dataset, &job.run_id, attempt);
        let started = api
            .create_import_job(
                &name,
                dataset_arn,
                &job.data_location,
                &plan.role_arn,
                job.mode,
            )
            .await?;
        if let Started::Created(arn) = started {
            let state = JobState {
                status: "CREATE PENDING".to_string(),
                failure_reason: None,
                data_location: Some(job.data_location.clone()),
            };
            return Ok((name, arn, true, state));
        }
        let arn = api
            .find_import_job(dataset_arn, &name)
            .await?
            .ok_or_else(|| {
                Error::Service(format!(
                    "an import job named {name} exists in this account, but not on dataset \
                 {dataset_arn} (job names are unique per account): delete that job's dataset \
                 or import into another dataset group"
                ))
            })?;
        let state = api.import_job(&arn).await?;
        if state.data_location.as_deref() != Some(job.data_location.as_str()) {
            return Err(Error::Service(format!(
                "import job {name} ({arn}) exists but reads {}, not {}: it was not started by \
                 this output",
                state.data_location.as_deref().unwrap_or("(no location)"),
                job.data_location
            )));
        }
        if state.status != FAILED {
            return Ok((name, arn, false, state));
        }
    }
    Err(Error::Service(format!(
        "run {}: {MAX_ATTEMPTS} import jobs of it failed; see their failure reasons \
         (aws personalize list-dataset-import-jobs --dataset-arn {dataset_arn})",
        job.run_id
    )))
}

/// Polls a job until ACTIVE or CREATE FAILED, telling each new status.
async fn follow(
    api: &Personalize,
    arn: &str,
    name: &str,
    poll: Poll,
    tell: impl Fn(&str),
) -> Result<JobState> {
    let since = Instant::now();
    let mut interval = poll.first;
    let mut last = String::new();
    loop {
        let state = api.import_job(arn).await?;
        if state.status != last {
            tell(&format!(
                "import job {name}: {} after {}s",
                state.status,
                since.elapsed().as_secs()
            ));
            last.clone_from(&state.status);
        }
        if state.status == ACTIVE || state.status == FAILED {
            return Ok(state);
        }
        tokio::time::sleep(interval).await;
        interval = poll.next(interval);
    }
}
