//! Which requests an import makes, decided from the output's pointers (and the imports record)
//! alone, without any call to Personalize: the names of the schema, dataset and jobs, each job's
//! data location and mode, the order. `--dry-run` prints this plan; [`super::execute`] follows
//! it, reusing what already exists.
//!
//! Names are deterministic, so that a second import finds what the first created:
//! - schema `<group>-<dataset>-<hash>`, the hash of the schema's JSON (a changed schema gets a new
//!   name; an identical one is shared by every import of it);
//! - dataset `<group>-<dataset>`;
//! - import job `<group>-<dataset>-<run id>` (unique per account, as Personalize requires; when a
//!   job of that name failed, the next attempt is `...-r2`, `-r3`, ...).
//!
//! `<group>` is the dataset group's name, shortened so that a name stays within Personalize's 63
//! characters.

use std::collections::HashSet;

use serde::Serialize;
use serde_json::{Value, json};

use super::output::CommittedDataset;
use super::{ImportMode, Mode};
use crate::error::{Error, Result};
use crate::personalize::DatasetType;
use crate::sink::publish::pointer::{RunKind, SnapshotRun};

/// Personalize's longest resource name.
const MAX_NAME: usize = 63;
/// Personalize's longest data location (`S3Location`).
const MAX_DATA_LOCATION: usize = 256;

/// A dataset group's ARN, `arn:<partition>:personalize:<region>:<account>:dataset-group/<name>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GroupArn {
    pub(crate) arn: String,
    partition: String,
    pub(crate) region: String,
    account: String,
    pub(crate) name: String,
}

impl GroupArn {
    pub(crate) fn parse(arn: &str) -> std::result::Result<GroupArn, String> {
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let bad = || {
            format!(
                "'{arn}' is not a dataset group ARN \
                 (arn:aws:personalize:REGION:ACCOUNT:dataset-group/NAME)"
            )
        };
        let [scheme, partition, service, region, account, resource] = parts[..] else {
            return Err(bad());
        };
        let name = resource.strip_prefix("dataset-group/").ok_or_else(bad)?;
        if scheme != "arn" || service != "personalize" || region.is_empty() || name.is_empty() {
            return Err(bad());
        }
        Ok(GroupArn {
            arn: arn.to_string(),
            partition: partition.to_string(),
            region: region.to_string(),
            account: account.to_string(),
            name: name.to_string(),
        })
    }

    /// The ARN Personalize gives a resource of this group's account and region.
    fn resource_arn(&self, resource: &str) -> String {
        format!(
            "arn:{}:personalize:{}:{}:{resource}",
            self.partition, self.region, self.account
        )
    }
}

/// Refuses a role ARN that cannot be one (`arn:aws:iam::ACCOUNT:role/NAME`).
pub(crate) fn check_role_arn(arn: &str) -> std::result::Result<String, String> {
    let ok = arn.starts_with("arn:") && arn.contains(":iam::") && arn.contains(":role/");
    if ok {
        Ok(arn.to_string())
    } else {
        Err(format!(
            "'{arn}' is not an IAM role ARN (arn:aws:iam::ACCOUNT:role/NAME): the role \
             Personalize assumes to read the output's bucket"
        ))
    }
}

/// The dataset type as the API's `datasetType` takes it.
pub(crate) fn api_dataset_type(dataset: DatasetType) -> &'static str {
    match dataset {
        DatasetType::Interactions => "Interactions",
        DatasetType::Items => "Items",
        DatasetType::Users => "Users",
        DatasetType::Actions => "Actions",
        DatasetType::ActionInteractions => "Action_Interactions",
    }
}

/// Whether a `datasetType` the service returned (it answers `INTERACTIONS`) is this type.
pub(crate) fn is_dataset_type(api: &str, dataset: DatasetType) -> bool {
    api.eq_ignore_ascii_case(api_dataset_type(dataset))
}

/// Items, users and actions before the interactions that refer to them.
fn import_order(dataset: DatasetType) -> u8 {
    match dataset {
        DatasetType::Items => 0,
        DatasetType::Users => 1,
        DatasetType::Actions => 2,
        DatasetType::Interactions => 3,
        DatasetType::ActionInteractions => 4,
    }
}

/// One import job to start.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct JobPlan {
    pub(crate) run_id: String,
    pub(crate) job_name: String,
    pub(crate) mode: ImportMode,
    pub(crate) data_location: String,
}

/// One dataset's requests: its schema, its dataset in the group, its jobs in order.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct DatasetPlan {
    pub(crate) dataset: DatasetType,
    pub(crate) schema_name: String,
    /// The schema's JSON, compact: what CreateSchema sends.
    pub(crate) schema: String,
    /// The ARN the schema gets when created (a reused one may have another).
    pub(crate) schema_arn: String,
    pub(crate) dataset_name: String,
    /// The ARN the dataset gets when created (Personalize names it by group and type).
    pub(crate) dataset_arn: String,
    pub(crate) jobs: Vec<JobPlan>,
}

/// Every dataset's requests, in import order, and the datasets with nothing new to import.
#[derive(Debug, Clone)]
pub(crate) struct Plan {
    pub(crate) group: GroupArn,
    pub(crate) role_arn: String,
    pub(crate) datasets: Vec<DatasetPlan>,
    pub(crate) up_to_date: Vec<DatasetType>,
}

/// Plans the import of `committed` into `group`. `imported` gives, per dataset, the run ids already
/// imported into this group (the record); `data_location` where each run's parts are.
pub(crate) fn plan(
    group: &GroupArn,
    role_arn: &str,
    mode: Mode,
    wait: bool,
    committed: &[CommittedDataset],
    imported: impl Fn(DatasetType) -> HashSet<String>,
    data_location: impl Fn(DatasetType, &str) -> String,
) -> Result<Plan> {
    let mut datasets = Vec::new();
    let mut up_to_date = Vec::new();
    let mut ordered: Vec<&CommittedDataset> = committed.iter().collect();
    ordered.sort_by_key(|c| import_order(c.dataset));
    for c in ordered {
        let dataset = c.dataset;
        let runs = runs_to_import(c, mode, &imported(dataset))?;
        if runs.is_empty() {
            up_to_date.push(dataset);
            continue;
        }
        let schema = one_schema(c, &runs)?;
        let schema_name = name(
            &group.name,
            &format!("{}-{}", dataset.key(), short_hash(&schema)),
        );
        let done = imported(dataset);
        let mut jobs = Vec::new();
        for &i in &runs {
            let run = &c.current.chain[i];
            let folder = data_location(dataset, &run.run_id);
            for (key, part) in import_units(run) {
                if mode == Mode::Incremental && done.contains(&key) {
                    continue;
                }
                let location = match part {
                    Some(part) => format!("{folder}{part}"),
                    None => folder.clone(),
                };
                if location.len() > MAX_DATA_LOCATION {
                    return Err(Error::Usage(format!(
                        "{dataset}: the data location {location} is longer than the \
                         {MAX_DATA_LOCATION} characters Personalize takes: use an output with a \
                         shorter prefix"
                    )));
                }
                jobs.push(JobPlan {
                    job_name: job_name(&group.name, dataset, &key, 1),
                    run_id: key,
                    mode: match run.kind {
                        RunKind::Full => ImportMode::Full,
                        RunKind::Increment => ImportMode::Incremental,
                    },
                    data_location: location,
                });
            }
        }
        if jobs.len() > 1 && !wait {
            return Err(Error::Usage(format!(
                "{dataset}: {} import jobs to run ({}), and Personalize runs one import job per \
                 dataset at a time: add --wait, and pengine starts each after the one before \
                 is ACTIVE",
                jobs.len(),
                jobs.iter()
                    .map(|j| j.run_id.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        datasets.push(DatasetPlan {
            dataset,
            schema_arn: group.resource_arn(&format!("schema/{schema_name}")),
            schema_name,
            schema,
            dataset_name: name(&group.name, dataset.key()),
            dataset_arn: group.resource_arn(&format!(
                "dataset/{}/{}",
                group.name,
                api_dataset_type(dataset).to_ascii_uppercase()
            )),
            jobs,
        });
    }
    Ok(Plan {
        group: group.clone(),
        role_arn: role_arn.to_string(),
        datasets,
        up_to_date,
    })
}

/// The positions in the chain of the runs to import, oldest first.
fn runs_to_import(
    c: &CommittedDataset,
    mode: Mode,
    imported: &HashSet<String>,
) -> Result<Vec<usize>> {
    let chain = &c.current.chain;
    match mode {
        Mode::Full => Ok((0..chain.len()).collect()),
        Mode::Incremental => {
            if !imported.contains(&chain[0].run_id) {
                return Err(Error::Usage(format!(
                    "{}: the full run {} that the current data starts from was never imported \
                     into this dataset group (a full run replaced the data since, or nothing was \
                     imported yet): import it with --mode full",
                    c.dataset, chain[0].run_id
                )));
            }
            Ok((1..chain.len())
                .filter(|&i| {
                    !import_units(&chain[i])
                        .iter()
                        .all(|(key, _)| imported.contains(key))
                })
                .collect())
        }
    }
}

/// What one import job takes of a run, with the key its job and record entry go by: the run's
/// folder; or, for an increment larger than one incremental job takes, each of its parts (each
/// below the limit: runs cut them so) as `<run_id>-p<N>`.
fn import_units(run: &SnapshotRun) -> Vec<(String, Option<String>)> {
    let limit = crate::personalize::limits::INCREMENTAL_IMPORT_MAX_BYTES;
    if run.kind == RunKind::Full || run.bytes <= limit {
        return vec![(run.run_id.clone(), None)];
    }
    run.parts
        .iter()
        .enumerate()
        .map(|(n, part)| (format!("{}-p{n}", run.run_id), Some(part.name.clone())))
        .collect()
}

/// The schema of the runs to import, compact; runs whose schemas differ cannot go into one
/// dataset.
fn one_schema(c: &CommittedDataset, runs: &[usize]) -> Result<String> {
    let parse = |i: usize| -> Result<Value> {
        serde_json::from_str(&c.schemas[i]).map_err(|e| {
            Error::Data(format!(
                "{}: the schema of run {} is not JSON: {e}",
                c.dataset, c.current.chain[i].run_id
            ))
        })
    };
    let first = parse(runs[0])?;
    for &i in &runs[1..] {
        if parse(i)? != first {
            return Err(Error::Data(format!(
                "{}: runs {} and {} have different schemas, and one dataset has one schema: run \
                 the mapping file fully (a full run) and import with --mode full",
                c.dataset, c.current.chain[runs[0]].run_id, c.current.chain[i].run_id
            )));
        }
    }
    Ok(first.to_string())
}

/// The name of the job importing `run_id`; a later `attempt` (after a job of that name failed)
/// gets `-r<attempt>`, since a failed job keeps its name.
pub(crate) fn job_name(group: &str, dataset: DatasetType, run_id: &str, attempt: u32) -> String {
    let tail = format!("{}-{run_id}", dataset.key());
    match attempt {
        0 | 1 => name(group, &tail),
        n => name(group, &format!("{tail}-r{n}")),
    }
}

/// A resource name `<group>-<tail>` within [`MAX_NAME`]: the group name is shortened first; a
/// tail too long on its own is cut and given a hash of the whole.
fn name(group: &str, tail: &str) -> String {
    let clean = |s: &str| -> String {
        s.chars()
            .map(|ch| {
                if ch.is_ascii_alphanumeric() || ch == '-' || ch == '_' {
                    ch
                } else {
                    '-'
                }
            })
            .collect()
    };
    let (group, tail) = (clean(group), clean(tail));
    let whole = format!("{group}-{tail}");
    if whole.len() <= MAX_NAME {
        return whole;
    }
    let room = MAX_NAME.saturating_sub(tail.len() + 1);
    if room >= 1 {
        return format!("{}-{tail}", &group[..room]);
    }
    let hash = short_hash(&whole);
    format!("{}-{hash}", &whole[..MAX_NAME - hash.len() - 1])
}

/// Eight hex digits of a stable hash (FNV-1a): the same text gives the same name in every
/// version of pengine.
pub(crate) fn short_hash(text: &str) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    format!("{:08x}", (hash >> 32) ^ (hash & 0xffff_ffff))
}

/// One request as `aws personalize <command> --cli-input-json` reads it.
#[derive(Debug, Serialize)]
pub(crate) struct Request {
    pub(crate) operation: &'static str,
    pub(crate) input: Value,
}

impl Plan {
    /// The requests an import makes when nothing exists yet, in order; ARNs not known before a
    /// resource is created are the ones Personalize gives it.
    pub(crate) fn requests(&self) -> Vec<Request> {
        let mut requests = Vec::new();
        for d in &self.datasets {
            requests.push(Request {
                operation: "CreateSchema",
                input: json!({ "name": d.schema_name, "schema": d.schema }),
            });
            requests.push(Request {
                operation: "CreateDataset",
                input: json!({
                    "name": d.dataset_name,
                    "schemaArn": d.schema_arn,
                    "datasetGroupArn": self.group.arn,
                    "datasetType": api_dataset_type(d.dataset),
                }),
            });
            for job in &d.jobs {
                requests.push(Request {
                    operation: "CreateDatasetImportJob",
                    input: job_input(job, &d.dataset_arn, &self.role_arn),
                });
            }
        }
        requests
    }
}

/// CreateDatasetImportJob's input for a job.
pub(crate) fn job_input(job: &JobPlan, dataset_arn: &str, role_arn: &str) -> Value {
    json!({
        "jobName": job.job_name,
        "datasetArn": dataset_arn,
        "dataSource": { "dataLocation": job.data_location },
        "roleArn": role_arn,
        "importMode": job.mode.as_str(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_arns_are_parsed_and_bad_ones_refused() {
        let g = GroupArn::parse("arn:aws:personalize:eu-west-1:123456789012:dataset-group/shop")
            .unwrap();
        assert_eq!((g.region.as_str(), g.name.as_str()), ("eu-west-1", "shop"));
        assert_eq!(
            g.resource_arn("schema/x"),
            "arn:aws:personalize:eu-west-1:123456789012:schema/x"
        );
        for bad in [
            "shop",
            "arn:aws:s3:::bucket",
            "arn:aws:personalize:eu-west-1:123456789012:dataset/shop/ITEMS",
            "arn:aws:personalize:eu-west-1:123456789012:dataset-group/",
        ] {
            assert!(GroupArn::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn names_stay_within_the_service_limit_and_keep_their_tail() {
        assert_eq!(name("shop", "items-1a2b3c4d"), "shop-items-1a2b3c4d");
        let long_group = "g".repeat(60);
        let n = name(&long_group, "interactions-20240301T130000Z-1a2b3c4d");
        assert_eq!(n.len(), MAX_NAME);
        assert!(
            n.ends_with("-interactions-20240301T130000Z-1a2b3c4d"),
            "{n}"
        );
        let n = name("shop", &"t".repeat(80));
        assert_eq!(n.len(), MAX_NAME);
        assert_ne!(n, name("shop", &"t".repeat(81)));
        assert_eq!(name("a.b c", "x"), "a-b-c-x");
    }

    #[test]
    fn the_hash_is_stable_and_tells_texts_apart() {
        assert_eq!(short_hash("abc"), short_hash("abc"));
        assert_ne!(short_hash("abc"), short_hash("abd"));
        // FNV-1a's offset basis, folded: a change of the function would rename every schema.
        assert_eq!(short_hash(""), "4fd0bfc1");
    }

    fn run(run_id: &str, kind: RunKind, part_bytes: &[u64]) -> SnapshotRun {
        let parts: Vec<crate::sink::PartInfo> = part_bytes
            .iter()
            .enumerate()
            .map(|(n, &bytes)| crate::sink::PartInfo {
                name: format!("part-{n:05}.csv"),
                rows: 1,
                bytes,
            })
            .collect();
        SnapshotRun {
            run_id: run_id.into(),
            kind,
            committed_at: String::new(),
            data_location: String::new(),
            rows: parts.len() as u64,
            bytes: part_bytes.iter().sum(),
            parts,
        }
    }

    #[test]
    fn an_increment_above_the_incremental_limit_is_imported_part_by_part() {
        use crate::sink::publish::pointer::{Current, MirrorPlan};
        let group =
            GroupArn::parse("arn:aws:personalize:us-east-1:123456789012:dataset-group/shop")
                .unwrap();
        let chain = vec![
            run(
                "20240301T000000Z-full",
                RunKind::Full,
                &[900_000_000, 900_000_000],
            ),
            run(
                "20240302T000000Z-big",
                RunKind::Increment,
                &[700_000_000, 700_000_000],
            ),
            run("20240303T000000Z-small", RunKind::Increment, &[10]),
        ];
        let committed = [CommittedDataset {
            dataset: DatasetType::Interactions,
            current: Current {
                format: 1,
                dataset: "interactions".into(),
                run_id: chain[2].run_id.clone(),
                chain,
                previous: Vec::new(),
                mirror: MirrorPlan::default(),
            },
            schemas: vec!["{}".into(); 3],
        }];
        let location = |_: DatasetType, run: &str| format!("s3://b/o/{run}/data/");
        let jobs = |mode: Mode, imported: &[&str]| -> Vec<(String, ImportMode)> {
            let imported: HashSet<String> = imported.iter().map(|s| s.to_string()).collect();
            let planned = plan(
                &group,
                "r",
                mode,
                true,
                &committed,
                |_| imported.clone(),
                location,
            )
            .unwrap();
            planned.datasets[0]
                .jobs
                .iter()
                .map(|j| (j.data_location.clone(), j.mode))
                .collect()
        };
        // A full run of 1.8 GB is one FULL job (the limit is for incremental ones); the 1.4 GB
        // increment one job per part; the small one its folder.
        assert_eq!(
            jobs(Mode::Full, &[]),
            [
                (
                    "s3://b/o/20240301T000000Z-full/data/".to_string(),
                    ImportMode::Full
                ),
                (
                    "s3://b/o/20240302T000000Z-big/data/part-00000.csv".to_string(),
                    ImportMode::Incremental
                ),
                (
                    "s3://b/o/20240302T000000Z-big/data/part-00001.csv".to_string(),
                    ImportMode::Incremental
                ),
                (
                    "s3://b/o/20240303T000000Z-small/data/".to_string(),
                    ImportMode::Incremental
                ),
            ]
        );
        // One part of the big increment was imported: the other part and the small one are left.
        let left = jobs(
            Mode::Incremental,
            &["20240301T000000Z-full", "20240302T000000Z-big-p0"],
        );
        assert_eq!(left.len(), 2, "{left:?}");
        assert!(left[0].0.ends_with("big/data/part-00001.csv"));
    }
}
