//! Storage retries: the policy cloud stores follow, and how many retries a run needed.
//!
//! Retrying is object_store's: its one retry loop resends a request that got a 5xx, 429 or 408
//! status, a refused or dropped connection (a timeout too, when the request is safe to repeat),
//! or (for CompleteMultipartUpload and CopyObject) a 200 whose body is an S3 error, waiting with
//! exponential backoff and jitter in between. pengine sets that policy ([`retry_config`]) and never retries on top of it, so no
//! request is retried twice over.
//!
//! object_store does not say how often it retried, and its retry error type is private, so its
//! errors cannot be sorted from outside. The count is therefore taken below the retry loop, on
//! the HTTP client: [`CountingConnector`] wraps object_store's own reqwest client and sees every
//! request and answer. A request that failed in one of the ways above is remembered; when the same
//! request (method, URL, byte range) is sent again, that is one retry of its S3 operation. A
//! request given up on is not a retry, and its error ends the run.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse, HttpService,
    ReqwestConnector,
};
use object_store::{BackoffConfig, ClientOptions, RetryConfig};
use serde::Serialize;

use crate::error::{Error, Result};

/// Retries of one request before its error is final, unless `PENGINE_MAX_RETRIES` says otherwise.
pub const DEFAULT_MAX_RETRIES: usize = 10;
/// The first wait; each next one is drawn between this and twice the previous (capped below).
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(15);
/// No retry starts this long after the request was first sent.
const RETRY_TIMEOUT: Duration = Duration::from_secs(180);

/// The retry policy of every cloud store: up to [`DEFAULT_MAX_RETRIES`] retries (or
/// `PENGINE_MAX_RETRIES`); the first wait is 100 ms, each next one drawn at random between 100 ms
/// and twice the previous (decorrelated jitter), at most 15 s; no retry starts after 3 minutes.
pub fn retry_config() -> Result<RetryConfig> {
    let max_retries = match std::env::var("PENGINE_MAX_RETRIES") {
        Ok(value) => value.trim().parse().map_err(|_| {
            Error::Config(format!(
                "PENGINE_MAX_RETRIES={value}: expected a number of retries (0 for none)"
            ))
        })?,
        Err(_) => DEFAULT_MAX_RETRIES,
    };
    Ok(RetryConfig {
        backoff: BackoffConfig {
            init_backoff: FIRST_BACKOFF,
            max_backoff: MAX_BACKOFF,
            base: 2.0,
        },
        max_retries,
        retry_timeout: RETRY_TIMEOUT,
    })
}

/// Retries counted for the run report.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StorageRetries {
    /// Requests sent again after a transient failure (throttling, 5xx, connection lost).
    pub total: u64,
    /// The same, per S3 operation (`GetObject`, `UploadPart`, ...; the HTTP method for requests
    /// that are not S3's).
    pub by_operation: BTreeMap<String, u64>,
}

/// What makes two requests the same request.
type RequestKey = (String, String, Option<String>);

/// The retries of every store of one run.
#[derive(Debug, Default)]
pub struct RetryCounts {
    by_operation: Mutex<BTreeMap<&'static str, u64>>,
    /// Requests that failed transiently, not sent again yet.
    failed: Mutex<HashMap<RequestKey, u32>>,
}

impl RetryCounts {
    pub fn snapshot(&self) -> StorageRetries {
        let by_operation = self.by_operation.lock().expect("retry counts");
        StorageRetries {
            total: by_operation.values().sum(),
            by_operation: by_operation
                .iter()
                .map(|(op, n)| (op.to_string(), *n))
                .collect(),
        }
    }

    /// Counts `request` as a retry when it repeats one that failed.
    fn sending(&self, key: &RequestKey, operation: &'static str) {
        let mut failed = self.failed.lock().expect("retry counts");
        if let Some(pending) = failed.get_mut(key) {
            *pending -= 1;
            if *pending == 0 {
                failed.remove(key);
            }
            drop(failed);
            *self
                .by_operation
                .lock()
                .expect("retry counts")
                .entry(operation)
                .or_default() += 1;
        }
    }

    fn failed(&self, key: RequestKey) {
        *self
            .failed
            .lock()
            .expect("retry counts")
            .entry(key)
            .or_default() += 1;
    }
}

/// Builds object_store's usual HTTP client, wrapped to count retries into `counts`.
#[derive(Debug)]
pub struct CountingConnector {
    counts: Arc<RetryCounts>,
}

impl CountingConnector {
    pub fn new(counts: Arc<RetryCounts>) -> Self {
        Self { counts }
    }
}

impl HttpConnector for CountingConnector {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(Counting {
            inner: ReqwestConnector::default().connect(options)?,
            counts: Arc::clone(&self.counts),
        }))
    }
}

#[derive(Debug)]
struct Counting {
    inner: HttpClient,
    counts: Arc<RetryCounts>,
}

#[async_trait::async_trait]
impl HttpService for Counting {
    async fn call(&self, request: HttpRequest) -> Result<HttpResponse, HttpError> {
        let operation = operation(&request);
        let key: RequestKey = (
            request.method().to_string(),
            request.uri().to_string(),
            request
                .headers()
                .get("range")
                .and_then(|r| r.to_str().ok())
                .map(str::to_string),
        );
        self.counts.sending(&key, operation);
        let (outcome, error_in_200) = match self.inner.execute(request).await {
            Ok(response) if response.status().is_success() && answers_errors_in_200(operation) => {
                // object_store reads these bodies whole anyway.
                let (parts, body) = response.into_parts();
                match body.bytes().await {
                    Ok(body) => {
                        let failed = body_is_error(&body);
                        (Ok(HttpResponse::from_parts(parts, body.into())), failed)
                    }
                    Err(e) => (Err(e), false),
                }
            }
            other => (other, false),
        };
        let transient = error_in_200
            || match &outcome {
                Ok(response) => {
                    let status = response.status().as_u16();
                    status >= 500 || status == 429 || status == 408
                }
                Err(e) => matches!(
                    e.kind(),
                    HttpErrorKind::Connect
                        | HttpErrorKind::Request
                        | HttpErrorKind::Timeout
                        | HttpErrorKind::Interrupted
                ),
            };
        if transient {
            self.counts.failed(key);
        }
        outcome
    }
}

/// S3 operations that can fail after a 200 status, with the error in the body.
fn answers_errors_in_200(operation: &str) -> bool {
    matches!(operation, "CompleteMultipartUpload" | "CopyObject")
}

/// The errors object_store retries when a 200's body holds them.
fn body_is_error(body: &[u8]) -> bool {
    let text = String::from_utf8_lossy(body);
    text.contains("InternalError") || text.contains("SlowDown")
}

/// The S3 operation of a request, from its method, query and copy header (S3's own routing).
fn operation(request: &HttpRequest) -> &'static str {
    let query = request.uri().query().unwrap_or("");
    let has = |key: &str| {
        query
            .split('&')
            .any(|pair| pair.split('=').next() == Some(key))
    };
    let method = request.method().as_str();
    match method {
        "GET" if has("list-type") || has("delimiter") || has("prefix") => "ListObjects",
        "GET" if has("uploadId") => "ListParts",
        "GET" => "GetObject",
        "HEAD" => "HeadObject",
        "PUT" if request.headers().contains_key("x-amz-copy-source") => "CopyObject",
        "PUT" if has("partNumber") => "UploadPart",
        "PUT" => "PutObject",
        "POST" if has("uploads") => "CreateMultipartUpload",
        "POST" if has("uploadId") => "CompleteMultipartUpload",
        "POST" if has("delete") => "DeleteObjects",
        "POST" => "POST",
        "DELETE" if has("uploadId") => "AbortMultipartUpload",
        "DELETE" => "DeleteObject",
        _ => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(method: &str, uri: &str) -> HttpRequest {
        http_request(method, uri, None)
    }

    fn http_request(method: &str, uri: &str, copy_from: Option<&str>) -> HttpRequest {
        let mut builder = HttpRequest::new(object_store::client::HttpRequestBody::empty());
        *builder.method_mut() = method.parse().unwrap();
        *builder.uri_mut() = uri.parse().unwrap();
        if let Some(source) = copy_from {
            builder
                .headers_mut()
                .insert("x-amz-copy-source", source.parse().unwrap());
        }
        builder
    }

    #[test]
    fn requests_are_named_by_s3_operation() {
        let cases = [
            ("GET", "http://h/b?list-type=2&prefix=p%2F", "ListObjects"),
            ("GET", "http://h/b/k.csv", "GetObject"),
            ("HEAD", "http://h/b/k.csv", "HeadObject"),
            ("PUT", "http://h/b/k.csv", "PutObject"),
            ("PUT", "http://h/b/k?partNumber=2&uploadId=x", "UploadPart"),
            ("POST", "http://h/b/k?uploads", "CreateMultipartUpload"),
            ("POST", "http://h/b/k?uploadId=x", "CompleteMultipartUpload"),
            ("DELETE", "http://h/b/k?uploadId=x", "AbortMultipartUpload"),
            ("POST", "http://h/b?delete", "DeleteObjects"),
            ("DELETE", "http://h/b/k", "DeleteObject"),
        ];
        for (method, uri, expected) in cases {
            assert_eq!(operation(&request(method, uri)), expected, "{method} {uri}");
        }
        let copy = http_request("PUT", "http://h/b/to", Some("b/from"));
        assert_eq!(operation(&copy), "CopyObject");
    }

    #[test]
    fn a_retry_is_a_failed_request_sent_again() {
        let counts = RetryCounts::default();
        let key = |uri: &str| ("PUT".to_string(), uri.to_string(), None);
        counts.sending(&key("a"), "PutObject");
        counts.failed(key("a"));
        counts.sending(&key("b"), "PutObject"); // another request: not a retry
        counts.sending(&key("a"), "PutObject"); // the retry
        counts.sending(&key("a"), "PutObject"); // sent again later, after a success
        let snapshot = counts.snapshot();
        assert_eq!(snapshot.total, 1);
        assert_eq!(snapshot.by_operation["PutObject"], 1);
    }

    #[test]
    fn errors_in_a_200_are_told_from_results() {
        assert!(body_is_error(b"<Error><Code>InternalError</Code></Error>"));
        assert!(!body_is_error(
            b"<CompleteMultipartUploadResult><ETag>x</ETag></CompleteMultipartUploadResult>"
        ));
    }
}
