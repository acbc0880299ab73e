//! Object stores by URL scheme: local paths, `s3://`, `gs://`, `az://`/`abfs://`, `http(s)://`.
//!
//! S3 is configured from the standard AWS variables (see the README for the list). When no keys
//! are in the environment, credentials come from the AWS SDK's default chain, so `AWS_PROFILE`,
//! shared config files, SSO and instance roles work as with the AWS CLI. Credentials are never
//! logged: stores are not printed, and errors name buckets and keys only.
//!
//! Cloud stores retry transient failures with the policy of [`crate::retries`], and count the
//! retries of the run in the registry's [`RetryCounts`].

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use datafusion::execution::object_store::ObjectStoreRegistry;
use object_store::ObjectStore;
use object_store::aws::{AmazonS3Builder, AwsCredential};
use object_store::local::LocalFileSystem;
use tokio::sync::OnceCell;
use url::Url;

use crate::error::{Error, Result};
use crate::retries::{CountingConnector, RetryCounts, retry_config};

/// Creates stores on first use of a bucket or host and keeps them for the run.
#[derive(Default)]
pub struct StoreRegistry {
    stores: RwLock<HashMap<String, Arc<dyn ObjectStore>>>,
    retries: Arc<RetryCounts>,
}

impl std::fmt::Debug for StoreRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let keys: Vec<String> = self
            .stores
            .read()
            .map(|s| s.keys().cloned().collect())
            .unwrap_or_default();
        f.debug_struct("StoreRegistry")
            .field("stores", &keys)
            .finish()
    }
}

fn key(url: &Url) -> String {
    format!("{}://{}", url.scheme(), url.authority())
}

impl StoreRegistry {
    pub fn new() -> Self {
        Self::default()
    }

    /// The retries of the requests of every store created here.
    pub fn retries(&self) -> Arc<RetryCounts> {
        Arc::clone(&self.retries)
    }

    /// The store serving `url` (created on first use).
    pub fn store_for(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        let key = key(url);
        if let Some(store) = self.stores.read().expect("store lock").get(&key) {
            return Ok(Arc::clone(store));
        }
        let store = build_store(url, &self.retries)?;
        self.stores
            .write()
            .expect("store lock")
            .insert(key, Arc::clone(&store));
        Ok(store)
    }
}

impl ObjectStoreRegistry for StoreRegistry {
    fn register_store(
        &self,
        url: &Url,
        store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        self.stores
            .write()
            .expect("store lock")
            .insert(key(url), store)
    }

    fn deregister_store(&self, url: &Url) -> datafusion::common::Result<Arc<dyn ObjectStore>> {
        self.stores
            .write()
            .expect("store lock")
            .remove(&key(url))
            .ok_or_else(|| {
                datafusion::error::DataFusionError::Execution(format!("no store for {url}"))
            })
    }

    fn get_store(&self, url: &Url) -> datafusion::common::Result<Arc<dyn ObjectStore>> {
        self.store_for(url).map_err(Into::into)
    }
}

/// The file system behind the store of `url` when that is this machine's (the store
/// [`StoreRegistry`] makes for `file://`): readers that know it can open files themselves, on the
/// thread that decodes them, instead of through a blocking task per request.
pub fn local_file_system(url: &Url) -> Option<LocalFileSystem> {
    (url.scheme() == "file").then(LocalFileSystem::new)
}

fn build_store(url: &Url, retries: &Arc<RetryCounts>) -> Result<Arc<dyn ObjectStore>> {
    let bad = |e: object_store::Error| Error::Config(format!("cannot use {}: {e}", key(url)));
    if let Some(local) = local_file_system(url) {
        return Ok(Arc::new(local.with_automatic_cleanup(true)));
    }
    let retry = retry_config()?;
    let counting = || CountingConnector::new(Arc::clone(retries));
    Ok(match url.scheme() {
        "s3" | "s3a" => Arc::new(
            s3_builder(url)?
                .with_retry(retry)
                .with_http_connector(counting())
                .build()
                .map_err(bad)?,
        ),
        "gs" => Arc::new(
            object_store::gcp::GoogleCloudStorageBuilder::from_env()
                .with_url(url.as_str())
                .with_retry(retry)
                .with_http_connector(counting())
                .build()
                .map_err(bad)?,
        ),
        "az" | "abfs" | "abfss" | "azure" => Arc::new(
            object_store::azure::MicrosoftAzureBuilder::from_env()
                .with_url(url.as_str())
                .with_retry(retry)
                .with_http_connector(counting())
                .build()
                .map_err(bad)?,
        ),
        "http" | "https" => Arc::new(
            object_store::http::HttpBuilder::new()
                .with_url(format!("{}://{}", url.scheme(), url.authority()))
                // The client refuses plain http unless told: an http:// location asked for it.
                .with_client_options(
                    object_store::ClientOptions::new().with_allow_http(url.scheme() == "http"),
                )
                .with_retry(retry)
                .with_http_connector(counting())
                .build()
                .map_err(bad)?,
        ),
        other => {
            return Err(Error::Config(format!(
                "unsupported location scheme '{other}://' (use a local path, s3://, gs://, az:// or https://)"
            )));
        }
    })
}

/// An S3 builder from the environment, with the SDK credential chain when no keys are set.
fn s3_builder(url: &Url) -> Result<AmazonS3Builder> {
    let bucket = url.host_str().filter(|b| !b.is_empty()).ok_or_else(|| {
        Error::Config(format!("'{url}' names no bucket: write s3://bucket/prefix"))
    })?;
    let mut builder = AmazonS3Builder::from_env().with_bucket_name(bucket);
    let endpoint = std::env::var("AWS_ENDPOINT_URL_S3")
        .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
        .or_else(|_| std::env::var("AWS_ENDPOINT"))
        .ok();
    if let Some(endpoint) = &endpoint {
        builder = builder.with_endpoint(endpoint);
        // A local S3-compatible server is usually plain http on loopback.
        if endpoint.starts_with("http://") && std::env::var("AWS_ALLOW_HTTP").is_err() {
            builder = builder.with_allow_http(true);
        }
    }
    let has_keys = std::env::var("AWS_ACCESS_KEY_ID").is_ok();
    if !has_keys {
        builder = builder.with_credentials(SdkCredentials::shared());
    }
    let has_region =
        std::env::var("AWS_REGION").is_ok() || std::env::var("AWS_DEFAULT_REGION").is_ok();
    if !has_region && let Some(region) = sdk_profile_region() {
        builder = builder.with_region(region);
    }
    Ok(builder)
}

/// The region from the shared AWS config (`AWS_PROFILE`), read without network access.
fn sdk_profile_region() -> Option<String> {
    let handle = tokio::runtime::Handle::try_current().ok()?;
    std::thread::scope(|scope| {
        scope
            .spawn(|| {
                handle.block_on(async {
                    use aws_config::meta::region::ProvideRegion;
                    aws_config::profile::ProfileFileRegionProvider::builder()
                        .build()
                        .region()
                        .await
                        .map(|r| r.to_string())
                })
            })
            .join()
            .ok()
            .flatten()
    })
}

/// Credentials are fetched again this long before they expire, so no request signs with
/// credentials that lapse on the way.
const REFRESH_BEFORE_EXPIRY: std::time::Duration = std::time::Duration::from_secs(300);

/// Bridges the AWS SDK's default credential chain (profiles, SSO, credential_process, web
/// identity, container and instance roles) to object_store. The chain's providers do not cache
/// (outside an SDK client, whose identity cache does): without this, every request of every store
/// would run the chain again (an STS or metadata call, a credential_process). One per process,
/// shared by every bucket, source and destination; fetched once, refreshed before expiry.
#[derive(Default)]
struct SdkCredentials {
    provider: OnceCell<aws_credential_types::provider::SharedCredentialsProvider>,
    /// The last credentials and when they expire (None: they do not).
    cached: tokio::sync::Mutex<Option<(Arc<AwsCredential>, Option<std::time::SystemTime>)>>,
}

impl std::fmt::Debug for SdkCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SdkCredentials")
    }
}

impl SdkCredentials {
    /// The process's one instance.
    fn shared() -> Arc<SdkCredentials> {
        static SHARED: std::sync::OnceLock<Arc<SdkCredentials>> = std::sync::OnceLock::new();
        Arc::clone(SHARED.get_or_init(Arc::default))
    }

    async fn fetch(
        &self,
    ) -> object_store::Result<(Arc<AwsCredential>, Option<std::time::SystemTime>)> {
        use aws_credential_types::provider::ProvideCredentials;
        let provider = self
            .provider
            .get_or_init(|| async {
                let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                config.credentials_provider().unwrap_or_else(|| {
                    aws_credential_types::provider::SharedCredentialsProvider::new(
                        aws_credential_types::Credentials::new("", "", None, None, "none"),
                    )
                })
            })
            .await;
        let credentials =
            provider
                .provide_credentials()
                .await
                .map_err(|e| object_store::Error::Generic {
                    store: "S3",
                    source: format!(
                        "no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, or \
                     AWS_PROFILE for a configured profile ({e})"
                    )
                    .into(),
                })?;
        tracing::debug!("AWS credentials fetched from the SDK's default chain");
        let credential = Arc::new(AwsCredential {
            key_id: credentials.access_key_id().to_string(),
            secret_key: credentials.secret_access_key().to_string(),
            token: credentials.session_token().map(str::to_string),
        });
        Ok((credential, credentials.expiry()))
    }
}

/// Whether credentials expiring at `expiry` are still good to sign with at `now`.
fn still_fresh(expiry: Option<std::time::SystemTime>, now: std::time::SystemTime) -> bool {
    expiry.is_none_or(|at| {
        at.duration_since(now)
            .is_ok_and(|left| left > REFRESH_BEFORE_EXPIRY)
    })
}

#[async_trait::async_trait]
impl object_store::CredentialProvider for SdkCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        // Held while fetching: requests that arrive meanwhile wait for the one fetch.
        let mut cached = self.cached.lock().await;
        if let Some((credential, expiry)) = cached.as_ref()
            && still_fresh(*expiry, std::time::SystemTime::now())
        {
            return Ok(Arc::clone(credential));
        }
        let (credential, expiry) = self.fetch().await?;
        *cached = Some((Arc::clone(&credential), expiry));
        Ok(credential)
    }
}

/// Parses a location: a URL with a scheme, or a local path (made absolute).
pub fn parse_location(location: &str) -> Result<Url> {
    if location.contains("://") {
        return Url::parse(location)
            .map_err(|e| Error::Config(format!("'{location}' is not a valid URL: {e}")));
    }
    let path = std::path::Path::new(location);
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir()
            .map_err(|e| Error::io("cannot read the current directory", e))?
            .join(path)
    };
    let normalized = normalize(&absolute);
    Url::from_directory_path(&normalized)
        .map_err(|_| Error::Config(format!("'{location}' is not a usable local path")))
}

/// Removes `.` and `..` segments without touching the file system.
fn normalize(path: &std::path::Path) -> std::path::PathBuf {
    let mut out = std::path::PathBuf::new();
    for part in path.components() {
        match part {
            std::path::Component::ParentDir => {
                out.pop();
            }
            std::path::Component::CurDir => {}
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_refreshed_before_they_expire() {
        let now = std::time::SystemTime::now();
        let minutes = |m: u64| std::time::Duration::from_secs(60 * m);
        assert!(still_fresh(None, now));
        assert!(still_fresh(Some(now + minutes(60)), now));
        assert!(!still_fresh(Some(now + minutes(4)), now));
        assert!(!still_fresh(Some(now - minutes(1)), now));
    }

    #[test]
    fn local_paths_become_directory_urls() {
        let url = parse_location("/tmp/a/../out").unwrap();
        assert_eq!(url.as_str(), "file:///tmp/out/");
        let url = parse_location("s3://bucket/prefix").unwrap();
        assert_eq!(url.host_str(), Some("bucket"));
    }
}
