//! `pengine import` end to end: the binary reads an output on the S3 test server (pointers and
//! snapshots written here as runs commit them) and talks to a fake Personalize on loopback
//! (common/personalize.rs) through the AWS SDK (`AWS_ENDPOINT_URL_PERSONALIZE`). Every request
//! body, and the dry run's JSON, is checked against botocore's model of the API
//! (validate_personalize.py).

use std::process::Command;

use pengine::sink::parts::PartInfo;
use pengine::sink::publish::pointer::{Current, MirrorPlan, POINTER_FORMAT, RunKind, SnapshotRun};
use serde_json::Value;

use crate::common::personalize::{self, FakePersonalize};
use crate::common::*;

const GROUP: &str = "arn:aws:personalize:us-east-1:123456789012:dataset-group/shop";
const ROLE: &str = "arn:aws:iam::123456789012:role/PersonalizeReadsS3";
const OUTPUT: &str = "s3://personalize/q1";

const ITEMS_SCHEMA: &str = r#"{
  "type": "record",
  "name": "Items",
  "namespace": "com.amazonaws.personalize.schema",
  "fields": [
    {"name": "ITEM_ID", "type": "string"},
    {"name": "CATEGORY", "type": ["null", "string"], "categorical": true}
  ],
  "version": "1.0"
}"#;
const INTERACTIONS_SCHEMA: &str = r#"{
  "type": "record",
  "name": "Interactions",
  "namespace": "com.amazonaws.personalize.schema",
  "fields": [
    {"name": "USER_ID", "type": "string"},
    {"name": "ITEM_ID", "type": "string"},
    {"name": "TIMESTAMP", "type": "long"}
  ],
  "version": "1.0"
}"#;

const FULL: &str = "20240301T130000Z-0000aaaa";
const INC1: &str = "20240302T130000Z-1111bbbb";
const INC2: &str = "20240303T130000Z-2222cccc";

/// Commits `dataset` into [`OUTPUT`] as runs do: each run's snapshot (a part and its schema),
/// then the pointer naming the chain.
fn commit(server: &S3Server, dataset: &str, chain: &[(&str, RunKind)], schema: &str) {
    let out = server.path("personalize/q1");
    let mut runs = Vec::new();
    for (run_id, kind) in chain {
        let snapshot = out.join(format!(".pengine/snapshots/{dataset}/{run_id}"));
        write(snapshot.join("data/part-00000.csv"), "ITEM_ID\ni1\n");
        write(snapshot.join("schema.json"), schema);
        runs.push(SnapshotRun {
            run_id: run_id.to_string(),
            kind: *kind,
            committed_at: "2024-03-01T13:00:00Z".into(),
            // Where the run saw its output: the import must not use it.
            data_location: format!("s3://somewhere-else/{dataset}/{run_id}/"),
            rows: 1,
            bytes: 11,
            parts: vec![PartInfo {
                name: "part-00000.csv".into(),
                rows: 1,
                bytes: 11,
            }],
        });
    }
    let current = Current {
        format: POINTER_FORMAT,
        dataset: dataset.into(),
        run_id: chain.last().unwrap().0.into(),
        chain: runs,
        previous: vec![],
        mirror: MirrorPlan::default(),
    };
    write(
        out.join(format!("{dataset}.current.json")),
        serde_json::to_vec_pretty(&current).unwrap(),
    );
}

fn location(dataset: &str, run_id: &str) -> String {
    format!("{OUTPUT}/.pengine/snapshots/{dataset}/{run_id}/data/")
}

/// `pengine import` against the S3 server and the fake service, polling fast.
fn import(server: &S3Server, fake: &FakePersonalize, extra: &[&str]) -> Command {
    let mut cmd = pengine();
    server.configure(&mut cmd);
    cmd.env("AWS_ENDPOINT_URL_PERSONALIZE", &fake.endpoint)
        .env("PENGINE_IMPORT_POLL_SECONDS", "0.02")
        .args([
            "import",
            OUTPUT,
            "--dataset-group-arn",
            GROUP,
            "--role-arn",
            ROLE,
        ])
        .args(extra);
    cmd
}

/// Runs the botocore validator on `{"requests": [...]}`: (valid, its report).
fn validate(requests: &Value) -> (bool, String) {
    let file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(file.path(), serde_json::to_vec(requests).unwrap()).unwrap();
    let output = Command::new(installed("venv/bin/python"))
        .arg(repo_root().join("tests/it/validate_personalize.py"))
        .arg(file.path())
        .output()
        .unwrap();
    let report = format!("{}{}", stdout(&output), stderr(&output));
    assert!(
        report.contains("requests checked"),
        "the validator did not run: {report}"
    );
    (output.status.success(), report)
}

#[track_caller]
fn assert_valid(requests: &Value) {
    let (valid, report) = validate(requests);
    assert!(
        valid,
        "requests the API model refuses:\n{report}\n{requests:#}"
    );
}

fn operations(requests: &Value) -> Vec<String> {
    requests["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["operation"].as_str().unwrap().to_string())
        .collect()
}

fn compact(schema: &str) -> String {
    serde_json::from_str::<Value>(schema).unwrap().to_string()
}

#[test]
fn dry_run_prints_the_requests_in_order_and_they_fit_the_api_model() {
    let server = S3Server::start(&["personalize"]);
    commit(
        &server,
        "interactions",
        &[(FULL, RunKind::Full), (INC1, RunKind::Increment)],
        INTERACTIONS_SCHEMA,
    );
    commit(&server, "items", &[(FULL, RunKind::Full)], ITEMS_SCHEMA);
    let fake = FakePersonalize::start();

    let output = run_ok(&mut import(
        &server,
        &fake,
        &["--dry-run", "--json", "--wait"],
    ));
    let plan = stdout_json(&output);
    assert_eq!(
        operations(&plan),
        [
            "CreateSchema",
            "CreateDataset",
            "CreateDatasetImportJob",
            "CreateSchema",
            "CreateDataset",
            "CreateDatasetImportJob",
            "CreateDatasetImportJob"
        ]
    );
    let r = &plan["requests"];
    // Items first, its schema compact, the dataset on the schema the plan creates.
    let items_schema = &r[0]["input"];
    assert_eq!(items_schema["schema"], compact(ITEMS_SCHEMA));
    let name = items_schema["name"].as_str().unwrap();
    assert!(
        name.starts_with("shop-items-") && name.len() == "shop-items-".len() + 8,
        "{name}"
    );
    assert_eq!(
        r[1]["input"],
        serde_json::json!({
            "name": "shop-items",
            "schemaArn": personalize::arn(&format!("schema/{name}")),
            "datasetGroupArn": GROUP,
            "datasetType": "Items",
        })
    );
    assert_eq!(
        r[2]["input"],
        serde_json::json!({
            "jobName": format!("shop-items-{FULL}"),
            "datasetArn": personalize::arn("dataset/shop/ITEMS"),
            "dataSource": { "dataLocation": location("items", FULL) },
            "roleArn": ROLE,
            "importMode": "FULL",
        })
    );
    assert_eq!(r[4]["input"]["datasetType"], "Interactions");
    assert_eq!(r[5]["input"]["importMode"], "FULL");
    assert_eq!(
        r[5]["input"]["dataSource"]["dataLocation"],
        location("interactions", FULL)
    );
    assert_eq!(r[6]["input"]["importMode"], "INCREMENTAL");
    assert_eq!(
        r[6]["input"]["dataSource"]["dataLocation"],
        location("interactions", INC1)
    );
    assert!(fake.requests().is_empty(), "a dry run called the service");
    assert_valid(&plan);

    // The validator does run: a member in the wrong case is refused, and named.
    let mut broken = plan.clone();
    let input = broken["requests"][1]["input"].as_object_mut().unwrap();
    let group = input.remove("datasetGroupArn").unwrap();
    input.insert("DatasetGroupArn".into(), group);
    let (valid, report) = validate(&broken);
    assert!(!valid && report.contains("DatasetGroupArn"), "{report}");

    // For a person: a readable plan. Without --wait, a chain of two runs is refused.
    let output = run_ok(&mut import(&server, &fake, &["--dry-run", "--wait"]));
    let text = stdout(&output);
    assert!(
        text.contains("Dry run") && text.contains(&format!("shop-interactions-{INC1}")),
        "{text}"
    );
    let err = run_fails(&mut import(&server, &fake, &["--dry-run"]), 2);
    assert!(
        err.contains("interactions") && err.contains("--wait"),
        "{err}"
    );
}

#[test]
fn full_import_with_wait_creates_everything_and_follows_each_job_to_active() {
    let server = S3Server::start(&["personalize"]);
    commit(
        &server,
        "interactions",
        &[(FULL, RunKind::Full), (INC1, RunKind::Increment)],
        INTERACTIONS_SCHEMA,
    );
    commit(&server, "items", &[(FULL, RunKind::Full)], ITEMS_SCHEMA);
    let fake = FakePersonalize::start();
    let planned = stdout_json(&run_ok(&mut import(
        &server,
        &fake,
        &["--dry-run", "--json", "--wait"],
    )));

    let output = run_ok(&mut import(&server, &fake, &["--wait", "--json"]));
    let result = stdout_json(&output);
    assert_eq!(result["waited"], true);
    let datasets = result["datasets"].as_array().unwrap();
    assert_eq!(datasets.len(), 2);
    for d in datasets {
        assert_eq!(
            (
                d["schema_created"].as_bool(),
                d["dataset_created"].as_bool()
            ),
            (Some(true), Some(true))
        );
        for job in d["jobs"].as_array().unwrap() {
            assert_eq!(job["status"], "ACTIVE", "{job}");
            assert_eq!(job["created"], true);
        }
    }
    let jobs = &datasets[1]["jobs"];
    assert_eq!(
        (jobs[0]["mode"].as_str(), jobs[1]["mode"].as_str()),
        (Some("FULL"), Some("INCREMENTAL"))
    );
    assert_eq!(jobs[1]["data_location"], location("interactions", INC1));

    // What the service received: the dry run's requests, exactly (the increment was accepted
    // only because the full import was ACTIVE by then), signed for the group's region.
    let requests = fake.requests();
    let created: Vec<Value> = fake.as_requests_json()["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["operation"].as_str().unwrap().starts_with("Create"))
        .cloned()
        .collect();
    let mut expected = planned["requests"].as_array().unwrap().clone();
    let mut got = created.clone();
    let key = |r: &Value| r.to_string();
    expected.sort_by_key(key);
    got.sort_by_key(key);
    assert_eq!(got, expected);
    assert!(
        requests
            .iter()
            .all(|r| r.scope.ends_with("/us-east-1/personalize/aws4_request"))
    );
    assert!(
        requests
            .iter()
            .any(|r| r.operation == "DescribeDatasetImportJob")
    );
    assert_valid(&fake.as_requests_json());

    // The record says which runs went where.
    let record: Value = serde_json::from_slice(
        &std::fs::read(server.path("personalize/q1/.pengine/imports/interactions.json")).unwrap(),
    )
    .unwrap();
    let imports = record["imports"].as_array().unwrap();
    assert_eq!(imports.len(), 2);
    assert!(
        imports
            .iter()
            .all(|e| e["status"] == "ACTIVE" && e["dataset_group_arn"] == GROUP)
    );
    assert_eq!(imports[1]["run_id"], INC1);
}

/// An output with one full Items run, a fake service, and the schema name a dry run plans.
fn items_committed() -> (S3Server, FakePersonalize, String) {
    let server = S3Server::start(&["personalize"]);
    commit(&server, "items", &[(FULL, RunKind::Full)], ITEMS_SCHEMA);
    let fake = FakePersonalize::start();
    let planned = stdout_json(&run_ok(&mut import(
        &server,
        &fake,
        &["--dry-run", "--json"],
    )));
    let name = planned["requests"][0]["input"]["name"]
        .as_str()
        .unwrap()
        .to_string();
    (server, fake, name)
}

#[test]
fn an_identical_schema_and_the_groups_dataset_are_reused() {
    let (server, fake, name) = items_committed();
    // Others first, so that the schema is on the second page of ListSchemas; same JSON, other
    // spacing.
    fake.add_schema("other-a", "{}");
    fake.add_schema("other-b", "{}");
    let schema_arn = fake.add_schema(&name, &compact(ITEMS_SCHEMA).replace(',', ", "));
    let dataset_arn = fake.add_dataset(GROUP, "Items", &schema_arn);

    let result = stdout_json(&run_ok(&mut import(&server, &fake, &["--wait", "--json"])));
    let d = &result["datasets"][0];
    assert_eq!(
        (d["schema_arn"].as_str(), d["schema_created"].as_bool()),
        (Some(schema_arn.as_str()), Some(false))
    );
    assert_eq!(
        (d["dataset_arn"].as_str(), d["dataset_created"].as_bool()),
        (Some(dataset_arn.as_str()), Some(false))
    );
    assert_eq!(fake.writes(), ["CreateDatasetImportJob"]);
    assert_valid(&fake.as_requests_json());
}

#[test]
fn a_schema_or_dataset_that_differs_is_an_error_that_says_what_to_do() {
    let (server, fake, name) = items_committed();
    fake.add_schema(&name, &compact(INTERACTIONS_SCHEMA));
    let err = run_fails(&mut import(&server, &fake, &["--wait"]), 5);
    assert!(
        err.contains("items") && err.contains(&name) && err.contains("another definition"),
        "{err}"
    );
    assert!(fake.writes().is_empty(), "{:?}", fake.writes());

    // The group's Items dataset on another schema: named, with the way out.
    let fake = FakePersonalize::start();
    let theirs = fake.add_schema("hand-made", &compact(INTERACTIONS_SCHEMA));
    let dataset = fake.add_dataset(GROUP, "Items", &theirs);
    let err = run_fails(&mut import(&server, &fake, &["--wait"]), 5);
    assert!(
        err.contains("items") && err.contains(&dataset) && err.contains("update-dataset"),
        "{err}"
    );
    assert_eq!(fake.writes(), ["CreateSchema"]);
}

#[test]
fn incremental_mode_imports_only_the_increments_not_yet_imported() {
    let server = S3Server::start(&["personalize"]);
    commit(
        &server,
        "interactions",
        &[(FULL, RunKind::Full), (INC1, RunKind::Increment)],
        INTERACTIONS_SCHEMA,
    );
    let fake = FakePersonalize::start();
    // Nothing imported yet: incremental has no full import to add to.
    let err = run_fails(
        &mut import(&server, &fake, &["--mode", "incremental", "--wait"]),
        2,
    );
    assert!(err.contains("--mode full"), "{err}");
    run_ok(&mut import(&server, &fake, &["--wait", "--json"]));

    commit(
        &server,
        "interactions",
        &[
            (FULL, RunKind::Full),
            (INC1, RunKind::Increment),
            (INC2, RunKind::Increment),
        ],
        INTERACTIONS_SCHEMA,
    );
    let before = fake.requests().len();
    let result = stdout_json(&run_ok(&mut import(
        &server,
        &fake,
        &["--mode", "incremental", "--wait", "--json"],
    )));
    let jobs = result["datasets"][0]["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{result:#}");
    assert_eq!(jobs[0]["run_id"], INC2);
    let new_jobs: Vec<_> = fake.requests()[before..]
        .iter()
        .filter(|r| r.operation == "CreateDatasetImportJob")
        .map(|r| r.body.clone())
        .collect();
    assert_eq!(new_jobs.len(), 1);
    assert_eq!(new_jobs[0]["importMode"], "INCREMENTAL");
    assert_eq!(
        new_jobs[0]["dataSource"]["dataLocation"],
        location("interactions", INC2)
    );
    assert_valid(&fake.as_requests_json());

    // Nothing new: nothing started.
    let before = fake.writes().len();
    let output = run_ok(&mut import(&server, &fake, &["--mode", "incremental"]));
    assert!(
        stderr(&output).contains("nothing new to import"),
        "{}",
        stderr(&output)
    );
    assert_eq!(fake.writes().len(), before);

    // A new full run: the increments no longer add to what was imported.
    commit(
        &server,
        "interactions",
        &[("20240401T000000Z-3333dddd", RunKind::Full)],
        INTERACTIONS_SCHEMA,
    );
    let err = run_fails(&mut import(&server, &fake, &["--mode", "incremental"]), 2);
    assert!(
        err.contains("20240401T000000Z-3333dddd") && err.contains("--mode full"),
        "{err}"
    );
}

#[test]
fn a_started_job_is_found_again_rather_than_started_twice() {
    let server = S3Server::start(&["personalize"]);
    commit(&server, "items", &[(FULL, RunKind::Full)], ITEMS_SCHEMA);
    let fake = FakePersonalize::start();
    let first = stdout_json(&run_ok(&mut import(&server, &fake, &["--json"])));
    let job = &first["datasets"][0]["jobs"][0];
    assert_eq!(
        (job["created"].as_bool(), job["status"].as_str()),
        (Some(true), Some("CREATE PENDING"))
    );
    let again = stdout_json(&run_ok(&mut import(&server, &fake, &["--json", "--wait"])));
    let same = &again["datasets"][0]["jobs"][0];
    assert_eq!(same["job_arn"], job["job_arn"]);
    assert_eq!(
        (same["created"].as_bool(), same["status"].as_str()),
        (Some(false), Some("ACTIVE"))
    );
    let arns: Vec<_> = fake
        .requests()
        .iter()
        .filter(|r| r.operation == "ListDatasetImportJobs")
        .map(|r| r.body.clone())
        .collect();
    assert_eq!(arns.len(), 1, "the second import looked the job up");
}

#[test]
fn a_failed_job_exits_nonzero_with_the_services_reason_and_a_retry_gets_a_new_name() {
    let server = S3Server::start(&["personalize"]);
    commit(&server, "items", &[(FULL, RunKind::Full)], ITEMS_SCHEMA);
    let fake = FakePersonalize::start();
    let reason = "Input CSV is missing the following columns: [CATEGORY]";
    fake.fail_jobs(reason);
    let err = run_fails(&mut import(&server, &fake, &["--wait"]), 5);
    let job_arn = personalize::arn(&format!("dataset-import-job/shop-items-{FULL}"));
    assert!(
        err.contains("items") && err.contains(&job_arn) && err.contains(reason),
        "{err}"
    );
    assert!(
        err.contains("CREATE IN_PROGRESS"),
        "no progress shown:\n{err}"
    );
    let record =
        std::fs::read_to_string(server.path("personalize/q1/.pengine/imports/items.json")).unwrap();
    assert!(
        record.contains("CREATE FAILED") && record.contains(reason),
        "{record}"
    );

    fake.succeed_jobs();
    let result = stdout_json(&run_ok(&mut import(&server, &fake, &["--wait", "--json"])));
    let job = &result["datasets"][0]["jobs"][0];
    assert_eq!(job["job_name"], format!("shop-items-{FULL}-r2"));
    assert_eq!(job["status"], "ACTIVE");
}

#[test]
fn a_local_output_is_refused_before_anything_is_read() {
    let fake = FakePersonalize::start();
    let local = tempfile::tempdir().unwrap();
    let err = run_fails(
        pengine()
            .env("AWS_ENDPOINT_URL_PERSONALIZE", &fake.endpoint)
            .args(["import", "--dataset-group-arn", GROUP, "--role-arn", ROLE])
            .arg(local.path()),
        2,
    );
    assert!(err.contains("not on S3") && err.contains("s3://"), "{err}");
    assert!(fake.requests().is_empty());
}

#[test]
fn an_output_without_a_committed_run_says_to_run_first() {
    let server = S3Server::start(&["personalize"]);
    let fake = FakePersonalize::start();
    let err = run_fails(&mut import(&server, &fake, &["--wait"]), 2);
    assert!(err.contains("pengine run") && err.contains(OUTPUT), "{err}");
    commit(&server, "items", &[(FULL, RunKind::Full)], ITEMS_SCHEMA);
    let err = run_fails(&mut import(&server, &fake, &["--dataset", "users"]), 2);
    assert!(
        err.contains("users") && err.contains("pengine run"),
        "{err}"
    );
    assert!(fake.requests().is_empty());
    // Bad ARNs are usage errors too.
    let err = run_fails(
        pengine().args([
            "import",
            OUTPUT,
            "--dataset-group-arn",
            "shop",
            "--role-arn",
            ROLE,
        ]),
        2,
    );
    assert!(err.contains("dataset group ARN"), "{err}");
}

#[test]
fn runs_then_import_the_snapshots_they_committed_full_and_incremental() {
    let server = S3Server::start(&["personalize", "raw"]);
    let fake = FakePersonalize::start();
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("interactions.sql");
    write(
        &mapping,
        "-- pengine: incremental = e\n\
         CREATE EXTERNAL TABLE e STORED AS JSON LOCATION 's3://raw/events/';\n\
         SELECT user AS user_id, item AS item_id, ts AS timestamp FROM e;\n",
    );
    let hour = |h: u32| {
        let lines: String = (0..3)
            .map(|u| {
                format!(
                    "{{\"user\":\"u{h}{u}\",\"item\":\"i\",\"ts\":{}}}\n",
                    1_704_067_200 + h
                )
            })
            .collect();
        write(server.path(&format!("raw/events/{h:02}/e.json")), lines);
    };
    let run = |flags: &[&str]| {
        let mut cmd = pengine();
        server.configure(&mut cmd);
        cmd.arg("run")
            .arg(&mapping)
            .args(["-o", OUTPUT, "--no-insights", "--json"])
            .args(flags);
        stdout_json(&run_ok(&mut cmd))
    };
    hour(0);
    let full = run(&[]);
    hour(1);
    let increment = run(&["--incremental"]);
    assert_eq!(increment["increment"]["kind"], "increment", "{increment}");

    let plan = stdout_json(&run_ok(&mut import(
        &server,
        &fake,
        &["--dry-run", "--json", "--wait"],
    )));
    let jobs: Vec<&Value> = plan["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["operation"] == "CreateDatasetImportJob")
        .collect();
    assert_eq!(jobs.len(), 2, "{plan:#}");
    assert_eq!(jobs[0]["input"]["importMode"], "FULL");
    assert_eq!(
        jobs[0]["input"]["dataSource"]["dataLocation"],
        full["data_location"]
    );
    assert_eq!(jobs[1]["input"]["importMode"], "INCREMENTAL");
    assert_eq!(
        jobs[1]["input"]["dataSource"]["dataLocation"],
        increment["data_location"]
    );
    assert_valid(&plan);
    // The schema created is the one the runs published.
    let published =
        std::fs::read_to_string(server.path("personalize/q1/interactions.schema.json")).unwrap();
    assert_eq!(plan["requests"][0]["input"]["schema"], compact(&published));

    // Imported for real, then a third hour: --mode incremental imports that increment alone.
    run_ok(&mut import(&server, &fake, &["--wait"]));
    hour(2);
    let third = run(&["--incremental"]);
    let plan = stdout_json(&run_ok(&mut import(
        &server,
        &fake,
        &["--dry-run", "--json", "--mode", "incremental"],
    )));
    let jobs: Vec<&Value> = plan["requests"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["operation"] == "CreateDatasetImportJob")
        .collect();
    assert_eq!(jobs.len(), 1, "{plan:#}");
    assert_eq!(
        jobs[0]["input"]["dataSource"]["dataLocation"],
        third["data_location"]
    );
}

#[test]
fn an_increment_whose_job_was_left_pending_and_failed_is_imported_again() {
    let server = S3Server::start(&["personalize"]);
    commit(
        &server,
        "interactions",
        &[(FULL, RunKind::Full)],
        INTERACTIONS_SCHEMA,
    );
    let fake = FakePersonalize::start();
    run_ok(&mut import(&server, &fake, &["--wait"]));
    commit(
        &server,
        "interactions",
        &[(FULL, RunKind::Full), (INC1, RunKind::Increment)],
        INTERACTIONS_SCHEMA,
    );
    // Started without --wait: the record knows the job only as pending; it then fails.
    fake.fail_jobs("Input CSV is missing the following columns: [EVENT_TYPE]");
    run_ok(&mut import(&server, &fake, &["--mode", "incremental"]));
    // The increment is not taken as imported: its job is looked up again and followed to its
    // failure (exit 5, with the service's reason), where it was skipped as done before.
    let err = run_fails(
        &mut import(&server, &fake, &["--mode", "incremental", "--wait"]),
        5,
    );
    assert!(err.contains(INC1) && err.contains("[EVENT_TYPE]"), "{err}");
    fake.succeed_jobs();
    let result = stdout_json(&run_ok(&mut import(
        &server,
        &fake,
        &["--mode", "incremental", "--wait", "--json"],
    )));
    let jobs = result["datasets"][0]["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{result:#}");
    assert_eq!(jobs[0]["run_id"], INC1, "{result:#}");
    assert_eq!(jobs[0]["status"], "ACTIVE", "{result:#}");
    assert_eq!(jobs[0]["job_name"], format!("shop-interactions-{INC1}-r2"));
}
