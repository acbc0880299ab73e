//! Faults injected in front of the test S3 server (s3s-fs): chosen requests get a real S3 error
//! (503 SlowDown, or a 200 whose body is an error), are held without an answer, or stop the whole
//! server. The tests use it to show what pengine does when S3 misbehaves in the middle of a run.
//!
//! Requests are told apart by S3 operation (`GetObject`, `UploadPart`, ...), from the method, the
//! query and the copy header, the way S3 itself routes them. A [`Rule`] picks requests of one
//! operation by their order (the first, the second, ...: retries count as new requests).

use std::collections::BTreeMap;
use std::sync::{Arc, Condvar, Mutex};

use http_body_util::BodyExt;

/// What happens to a request picked by a [`Rule`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// 503 Service Unavailable with S3's `SlowDown` error body (throttling).
    SlowDown,
    /// 200 OK whose body is an S3 `InternalError` (S3 answers CompleteMultipartUpload and
    /// CopyObject this way when they fail after the headers were sent).
    InternalErrorIn200,
    /// Never answered: the request waits until the server stops.
    Hold,
    /// Served, then the server stops before the answer is sent: every connection is closed and
    /// new ones are refused.
    StopServerAfter,
}

/// Requests of `op` number `skip + 1` to `skip + times` (counted from 1) get `fault`.
#[derive(Debug, Clone)]
pub struct Rule {
    op: &'static str,
    skip: usize,
    times: usize,
    fault: Fault,
}

impl Rule {
    /// The first request of `op` gets `fault`.
    pub fn first(op: &'static str, fault: Fault) -> Rule {
        Rule {
            op,
            skip: 0,
            times: 1,
            fault,
        }
    }

    /// Every request of `op` gets `fault`.
    pub fn every(op: &'static str, fault: Fault) -> Rule {
        Rule {
            op,
            skip: 0,
            times: usize::MAX,
            fault,
        }
    }

    /// The `n`-th request of `op` (counted from 1) gets `fault`.
    pub fn nth(op: &'static str, n: usize, fault: Fault) -> Rule {
        Rule {
            op,
            skip: n - 1,
            times: 1,
            fault,
        }
    }

    fn picks(&self, op: &str, index: usize) -> bool {
        self.op == op && index >= self.skip && index - self.skip < self.times
    }
}

#[derive(Default)]
struct State {
    rules: Vec<Rule>,
    /// Requests seen per operation.
    seen: BTreeMap<&'static str, usize>,
    /// Requests answered with an error per operation (SlowDown or an error in a 200).
    injected: BTreeMap<&'static str, u64>,
    /// Successful answers per operation.
    answered: BTreeMap<&'static str, u64>,
    held: usize,
}

/// The faults of one test server, shared with the test.
pub struct Faults {
    state: Mutex<State>,
    changed: Condvar,
    /// True while the server is stopped (or stopping).
    pub(crate) down: tokio::sync::watch::Sender<bool>,
}

impl Faults {
    pub fn new() -> Arc<Faults> {
        Arc::new(Faults {
            state: Mutex::default(),
            changed: Condvar::new(),
            down: tokio::sync::watch::Sender::new(false),
        })
    }

    /// Replaces the rules (the counts of requests seen start again from zero).
    pub fn set(&self, rules: Vec<Rule>) {
        let mut state = self.state.lock().unwrap();
        state.rules = rules;
        state.seen.clear();
        state.injected.clear();
        state.answered.clear();
    }

    /// No more faults.
    pub fn clear(&self) {
        self.set(Vec::new());
    }

    /// Errors answered per operation since the rules were set.
    pub fn injected(&self) -> BTreeMap<String, u64> {
        let state = self.state.lock().unwrap();
        state
            .injected
            .iter()
            .map(|(op, n)| (op.to_string(), *n))
            .collect()
    }

    /// Successful answers to requests of `op` since the rules were set.
    pub fn answered_count(&self, op: &str) -> u64 {
        let state = self.state.lock().unwrap();
        state.answered.get(op).copied().unwrap_or(0)
    }

    /// True once the server has been stopped by a fault (or dropped).
    pub fn server_stopped(&self) -> bool {
        *self.down.borrow()
    }

    /// Waits up to `timeout` until `held` requests are held and `answered` requests of `op` were
    /// answered; returns whether they are.
    pub fn wait_until_held(
        &self,
        held: usize,
        op: &'static str,
        answered: u64,
        timeout: std::time::Duration,
    ) -> bool {
        let state = self.state.lock().unwrap();
        let (_state, waited) = self
            .changed
            .wait_timeout_while(state, timeout, |s| {
                s.held < held || s.answered.get(op).copied().unwrap_or(0) < answered
            })
            .unwrap();
        !waited.timed_out()
    }

    fn pick(&self, op: &'static str) -> Option<Fault> {
        let mut state = self.state.lock().unwrap();
        let seen = state.seen.entry(op).or_default();
        let index = *seen;
        *seen += 1;
        let fault = state
            .rules
            .iter()
            .find(|r| r.picks(op, index))
            .map(|r| r.fault);
        match fault {
            Some(Fault::SlowDown | Fault::InternalErrorIn200) => {
                *state.injected.entry(op).or_default() += 1
            }
            Some(Fault::Hold) => state.held += 1,
            _ => {}
        }
        self.changed.notify_all();
        fault
    }

    fn answered(&self, op: &'static str) {
        *self.state.lock().unwrap().answered.entry(op).or_default() += 1;
        self.changed.notify_all();
    }

    /// Stops the server: it closes every connection and refuses new ones.
    pub fn stop_server(&self) {
        self.down.send_replace(true);
    }
}

/// The S3 operation a request asks for.
pub fn operation<B>(request: &http::Request<B>) -> &'static str {
    let query: Vec<&str> = request
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .map(|pair| pair.split('=').next().unwrap_or(""))
        .collect();
    let has = |key: &str| query.contains(&key);
    // Path-style: /bucket or /bucket/key.
    let is_bucket = request.uri().path().trim_matches('/').split('/').count() <= 1;
    match request.method().as_str() {
        "GET" if has("list-type") || is_bucket => "ListObjects",
        "GET" if has("uploadId") => "ListParts",
        "GET" => "GetObject",
        "HEAD" => "HeadObject",
        "PUT" if request.headers().contains_key("x-amz-copy-source") => "CopyObject",
        "PUT" if has("partNumber") => "UploadPart",
        "PUT" => "PutObject",
        "POST" if has("uploads") => "CreateMultipartUpload",
        "POST" if has("uploadId") => "CompleteMultipartUpload",
        "POST" if has("delete") => "DeleteObjects",
        "DELETE" if has("uploadId") => "AbortMultipartUpload",
        "DELETE" => "DeleteObject",
        _ => "Other",
    }
}

fn s3_error(status: u16, code: &str, message: &str, resource: &str) -> s3s::HttpResponse {
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>{code}</Code>\
         <Message>{message}</Message><Resource>{resource}</Resource>\
         <RequestId>pengine-test-fault</RequestId></Error>"
    );
    http::Response::builder()
        .status(status)
        .header("content-type", "application/xml")
        .body(s3s::Body::from(body))
        .unwrap()
}

/// Serves one request through `service`, applying the faults.
pub async fn serve(
    service: s3s::service::S3Service,
    faults: Arc<Faults>,
    request: http::Request<hyper::body::Incoming>,
) -> Result<s3s::HttpResponse, s3s::HttpError> {
    let op = operation(&request);
    let resource = request.uri().path().to_string();
    let fault = faults.pick(op);
    match fault {
        Some(Fault::SlowDown) | Some(Fault::InternalErrorIn200) => {
            // Read the body first, as S3 does, so the client sees the answer, not a reset.
            let _ = request.into_body().collect().await;
            Ok(if fault == Some(Fault::SlowDown) {
                s3_error(
                    503,
                    "SlowDown",
                    "Please reduce your request rate.",
                    &resource,
                )
            } else {
                s3_error(
                    200,
                    "InternalError",
                    "We encountered an internal error. Please try again.",
                    &resource,
                )
            })
        }
        Some(Fault::Hold) => {
            let mut down = faults.down.subscribe();
            let _ = down.wait_for(|down| *down).await;
            Err(s3s::HttpError::new("the test server stopped".into()))
        }
        None | Some(Fault::StopServerAfter) => {
            let response = service.call(request.map(s3s::Body::from)).await;
            if matches!(&response, Ok(r) if r.status().is_success()) {
                faults.answered(op);
            }
            if fault == Some(Fault::StopServerAfter) {
                faults.stop_server();
                return Err(s3s::HttpError::new("the test server stopped".into()));
            }
            response
        }
    }
}
