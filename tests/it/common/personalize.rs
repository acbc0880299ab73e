//! A stand-in for Amazon Personalize on a loopback port (the service has no local emulator): it
//! speaks the service's JSON 1.1 protocol (`POST /`, `X-Amz-Target: AmazonPersonalize.<Op>`),
//! keeps schemas, datasets and import jobs as the service does (names unique, one dataset per
//! type and group, one import per dataset at a time), answers errors in the service's shape
//! (`{"__type": ..., "message": ...}` with status 400), moves each import job through the statuses
//! a test scripts, and records every request for the test to check (and to validate against
//! botocore's model of the API).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

pub const ACCOUNT: &str = "123456789012";
pub const REGION: &str = "us-east-1";

/// One request as the service received it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub operation: String,
    pub body: Value,
    /// The SigV4 credential scope (`<key>/<date>/<region>/<service>/aws4_request`).
    pub scope: String,
}

#[derive(Default)]
struct State {
    requests: Vec<Recorded>,
    /// name, arn, definition
    schemas: Vec<(String, String, String)>,
    datasets: Vec<Dataset>,
    jobs: Vec<Job>,
    /// The statuses successive DescribeDatasetImportJob calls show a new job.
    job_statuses: Vec<String>,
    /// The failure reason a job ending in CREATE FAILED gives.
    failure_reason: String,
}

struct Dataset {
    arn: String,
    name: String,
    group: String,
    kind: String,
    schema_arn: String,
    described: usize,
}

struct Job {
    arn: String,
    name: String,
    dataset_arn: String,
    location: String,
    mode: String,
    polls: usize,
    statuses: Vec<String>,
}

impl Job {
    fn status(&self) -> &str {
        &self.statuses[self.polls.min(self.statuses.len() - 1)]
    }
}

/// The fake service; stops when dropped.
pub struct FakePersonalize {
    pub endpoint: String,
    state: Arc<Mutex<State>>,
    port: u16,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

pub fn arn(resource: &str) -> String {
    format!("arn:aws:personalize:{REGION}:{ACCOUNT}:{resource}")
}

impl FakePersonalize {
    /// A service whose import jobs go CREATE PENDING → CREATE IN_PROGRESS → ACTIVE.
    pub fn start() -> FakePersonalize {
        let state = State {
            job_statuses: ["CREATE PENDING", "CREATE IN_PROGRESS", "ACTIVE"]
                .map(String::from)
                .to_vec(),
            ..State::default()
        };
        let state = Arc::new(Mutex::new(state));
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (shared, stopping) = (Arc::clone(&state), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let state = Arc::clone(&shared);
                std::thread::spawn(move || serve_connection(stream, &state));
            }
        });
        FakePersonalize {
            endpoint: format!("http://127.0.0.1:{port}"),
            state,
            port,
            stop,
            thread: Some(thread),
        }
    }

    /// New jobs end in CREATE FAILED with this reason (after pending and in progress).
    pub fn fail_jobs(&self, reason: &str) {
        let mut state = self.state.lock().unwrap();
        state.job_statuses = ["CREATE PENDING", "CREATE IN_PROGRESS", "CREATE FAILED"]
            .map(String::from)
            .to_vec();
        state.failure_reason = reason.to_string();
    }

    /// New jobs end ACTIVE again (after [`FakePersonalize::fail_jobs`]).
    pub fn succeed_jobs(&self) {
        let mut state = self.state.lock().unwrap();
        state.job_statuses = ["CREATE PENDING", "CREATE IN_PROGRESS", "ACTIVE"]
            .map(String::from)
            .to_vec();
    }

    /// A schema that exists before the import.
    pub fn add_schema(&self, name: &str, definition: &str) -> String {
        let arn = arn(&format!("schema/{name}"));
        let mut state = self.state.lock().unwrap();
        state
            .schemas
            .push((name.into(), arn.clone(), definition.into()));
        arn
    }

    /// A dataset (ACTIVE) that the group has before the import.
    pub fn add_dataset(&self, group_arn: &str, kind: &str, schema_arn: &str) -> String {
        let group = group_arn.rsplit('/').next().unwrap();
        let arn = arn(&format!("dataset/{group}/{}", kind.to_uppercase()));
        self.state.lock().unwrap().datasets.push(Dataset {
            arn: arn.clone(),
            name: format!("{group}-made-by-hand"),
            group: group_arn.into(),
            kind: kind.to_uppercase(),
            schema_arn: schema_arn.into(),
            described: 1,
        });
        arn
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.state.lock().unwrap().requests.clone()
    }

    /// The operations received, in order, without the reads.
    pub fn writes(&self) -> Vec<String> {
        self.requests()
            .into_iter()
            .map(|r| r.operation)
            .filter(|op| op.starts_with("Create"))
            .collect()
    }

    /// The recorded requests as `{"requests": [{"operation", "input"}]}`, the dry run's shape.
    pub fn as_requests_json(&self) -> Value {
        let requests: Vec<Value> = self
            .requests()
            .into_iter()
            .map(|r| json!({ "operation": r.operation, "input": r.body }))
            .collect();
        json!({ "requests": requests })
    }
}

impl Drop for FakePersonalize {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Serves the requests of one connection (the SDK keeps connections open between calls).
fn serve_connection(stream: TcpStream, state: &Mutex<State>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        assert!(line.starts_with("POST / "), "not a JSON 1.1 call: {line}");
        let mut headers = Vec::new();
        loop {
            let mut header = String::new();
            reader.read_line(&mut header).unwrap();
            let header = header.trim_end().to_string();
            if header.is_empty() {
                break;
            }
            let (name, value) = header.split_once(':').unwrap();
            headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
        }
        let header = |name: &str| {
            headers
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let length: usize = header("content-length").parse().expect("a Content-Length");
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        assert_eq!(header("content-type"), "application/x-amz-json-1.1");
        let operation = header("x-amz-target")
            .strip_prefix("AmazonPersonalize.")
            .expect("X-Amz-Target names AmazonPersonalize")
            .to_string();
        let scope = header("authorization")
            .split("Credential=")
            .nth(1)
            .and_then(|rest| rest.split(',').next())
            .unwrap_or_default()
            .to_string();
        let body: Value = serde_json::from_slice(&body).expect("a JSON body");
        let (status, answer) = {
            let mut state = state.lock().unwrap();
            state.requests.push(Recorded {
                operation: operation.clone(),
                body: body.clone(),
                scope,
            });
            answer(&mut state, &operation, &body)
        };
        let text = answer.to_string();
        let mut response = format!(
            "HTTP/1.1 {status} {}\r\nContent-Type: application/x-amz-json-1.1\r\n\
             Content-Length: {}\r\nx-amzn-RequestId: fake-{}\r\n",
            if status == 200 { "OK" } else { "Bad Request" },
            text.len(),
            state.lock().unwrap().requests.len()
        );
        if status != 200 {
            let kind = answer["__type"].as_str().unwrap_or_default();
            response.push_str(&format!("x-amzn-ErrorType: {kind}\r\n"));
        }
        response.push_str("\r\n");
        response.push_str(&text);
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

fn error(kind: &str, message: String) -> (u16, Value) {
    (400, json!({ "__type": kind, "message": message }))
}

const NOW: f64 = 1_717_000_000.0;

/// The service's answer to one call.
fn answer(state: &mut State, operation: &str, body: &Value) -> (u16, Value) {
    let text = |key: &str| body[key].as_str().unwrap_or_default().to_string();
    match operation {
        "CreateSchema" => {
            let name = text("name");
            if state.schemas.iter().any(|s| s.0 == name) {
                return error(
                    "ResourceAlreadyExistsException",
                    format!("Schema with name {name} already exists."),
                );
            }
            let arn = arn(&format!("schema/{name}"));
            state.schemas.push((name, arn.clone(), text("schema")));
            (200, json!({ "schemaArn": arn }))
        }
        "ListSchemas" => {
            // Two a page, so that callers must follow nextToken.
            let start: usize = text("nextToken").parse().unwrap_or(0);
            let page: Vec<Value> = state
                .schemas
                .iter()
                .skip(start)
                .take(2)
                .map(|s| {
                    json!({ "name": s.0, "schemaArn": s.1, "creationDateTime": NOW,
                        "lastUpdatedDateTime": NOW })
                })
                .collect();
            let mut answer = json!({ "schemas": page });
            if start + 2 < state.schemas.len() {
                answer["nextToken"] = json!((start + 2).to_string());
            }
            (200, answer)
        }
        "DescribeSchema" => match state.schemas.iter().find(|s| s.1 == text("schemaArn")) {
            Some(s) => (
                200,
                json!({ "schema": { "name": s.0, "schemaArn": s.1, "schema": s.2,
                "creationDateTime": NOW, "lastUpdatedDateTime": NOW } }),
            ),
            None => error(
                "ResourceNotFoundException",
                format!("Could not find schema {}", text("schemaArn")),
            ),
        },
        "CreateDataset" => {
            let (group, kind) = (text("datasetGroupArn"), text("datasetType").to_uppercase());
            if !state.schemas.iter().any(|s| s.1 == text("schemaArn")) {
                return error(
                    "ResourceNotFoundException",
                    format!("Could not find schema {}", text("schemaArn")),
                );
            }
            if state
                .datasets
                .iter()
                .any(|d| d.group == group && d.kind == kind)
            {
                return error(
                    "ResourceAlreadyExistsException",
                    format!("Dataset of type {kind} already exists in {group}"),
                );
            }
            let group_name = group.rsplit('/').next().unwrap_or_default().to_string();
            let arn = arn(&format!("dataset/{group_name}/{kind}"));
            state.datasets.push(Dataset {
                arn: arn.clone(),
                name: text("name"),
                group,
                kind,
                schema_arn: text("schemaArn"),
                described: 0,
            });
            (200, json!({ "datasetArn": arn }))
        }
        "ListDatasets" => {
            let group = text("datasetGroupArn");
            let list: Vec<Value> = state
                .datasets
                .iter()
                .filter(|d| d.group == group)
                .map(|d| {
                    json!({ "name": d.name, "datasetArn": d.arn, "datasetType": d.kind,
                        "status": "ACTIVE", "creationDateTime": NOW, "lastUpdatedDateTime": NOW })
                })
                .collect();
            (200, json!({ "datasets": list }))
        }
        "DescribeDataset" => match state
            .datasets
            .iter_mut()
            .find(|d| d.arn == text("datasetArn"))
        {
            Some(d) => {
                // A new dataset is pending once, then active.
                let status = if d.described == 0 {
                    "CREATE PENDING"
                } else {
                    "ACTIVE"
                };
                d.described += 1;
                (
                    200,
                    json!({ "dataset": { "name": d.name, "datasetArn": d.arn,
                    "datasetGroupArn": d.group, "datasetType": d.kind, "schemaArn": d.schema_arn,
                    "status": status, "creationDateTime": NOW, "lastUpdatedDateTime": NOW } }),
                )
            }
            None => error(
                "ResourceNotFoundException",
                format!("Could not find dataset {}", text("datasetArn")),
            ),
        },
        "CreateDatasetImportJob" => {
            let name = text("jobName");
            if state.jobs.iter().any(|j| j.name == name) {
                return error(
                    "ResourceAlreadyExistsException",
                    format!("Dataset import job with name {name} already exists."),
                );
            }
            let dataset_arn = text("datasetArn");
            let Some(dataset) = state.datasets.iter().find(|d| d.arn == dataset_arn) else {
                return error(
                    "ResourceNotFoundException",
                    format!("Could not find dataset {dataset_arn}"),
                );
            };
            if dataset.described == 0 {
                return error(
                    "ResourceInUseException",
                    format!("Dataset {dataset_arn} is not ACTIVE"),
                );
            }
            let busy = state.jobs.iter().any(|j| {
                j.dataset_arn == dataset_arn && !matches!(j.status(), "ACTIVE" | "CREATE FAILED")
            });
            if busy {
                return error(
                    "ResourceInUseException",
                    format!("Dataset {dataset_arn} has an import in progress"),
                );
            }
            let arn = arn(&format!("dataset-import-job/{name}"));
            state.jobs.push(Job {
                arn: arn.clone(),
                name,
                dataset_arn,
                location: body["dataSource"]["dataLocation"]
                    .as_str()
                    .unwrap_or_default()
                    .into(),
                mode: body["importMode"].as_str().unwrap_or("FULL").into(),
                polls: 0,
                statuses: state.job_statuses.clone(),
            });
            (200, json!({ "datasetImportJobArn": arn }))
        }
        "DescribeDatasetImportJob" => {
            let reason = state.failure_reason.clone();
            match state
                .jobs
                .iter_mut()
                .find(|j| j.arn == text("datasetImportJobArn"))
            {
                Some(job) => {
                    let status = job.status().to_string();
                    job.polls += 1;
                    let mut described = json!({ "jobName": job.name, "datasetImportJobArn": job.arn,
                        "datasetArn": job.dataset_arn, "dataSource": { "dataLocation": job.location },
                        "status": status, "importMode": job.mode, "creationDateTime": NOW,
                        "lastUpdatedDateTime": NOW });
                    if status == "CREATE FAILED" {
                        described["failureReason"] = json!(reason);
                    }
                    (200, json!({ "datasetImportJob": described }))
                }
                None => error(
                    "ResourceNotFoundException",
                    format!("Could not find job {}", text("datasetImportJobArn")),
                ),
            }
        }
        "ListDatasetImportJobs" => {
            let list: Vec<Value> = state
                .jobs
                .iter()
                .filter(|j| j.dataset_arn == text("datasetArn"))
                .map(|j| {
                    json!({ "jobName": j.name, "datasetImportJobArn": j.arn, "status": j.status(),
                        "importMode": j.mode, "creationDateTime": NOW, "lastUpdatedDateTime": NOW })
                })
                .collect();
            (200, json!({ "datasetImportJobs": list }))
        }
        other => error(
            "UnknownOperationException",
            format!("unknown operation {other}"),
        ),
    }
}
