//! The Personalize API calls an import makes, through the AWS SDK: each returns what pengine
//! needs, and each failure becomes [`Error::Service`] with the operation, the service's error code
//! and its message. Credentials and endpoint come from the SDK's default chain, as for S3
//! (`AWS_PROFILE`, keys, SSO, roles; `AWS_ENDPOINT_URL_PERSONALIZE`); the region is the dataset
//! group's.

use aws_sdk_personalize::Client;
use aws_sdk_personalize::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_personalize::types::{DataSource, ImportMode as SdkImportMode};

use super::ImportMode;
use crate::error::{Error, Result};

/// A Personalize client for one region.
pub(crate) struct Personalize {
    client: Client,
}

/// A dataset that the group already has.
pub(crate) struct ExistingDataset {
    pub(crate) arn: String,
    pub(crate) schema_arn: String,
    pub(crate) status: String,
}

/// An import job's state.
pub(crate) struct JobState {
    pub(crate) status: String,
    pub(crate) failure_reason: Option<String>,
    pub(crate) data_location: Option<String>,
}

/// What starting a job found: a new job, or one of that name that already exists.
pub(crate) enum Started {
    Created(String),
    AlreadyExists,
}

/// A failed call as pengine tells it: `<operation>: <code>: <message>`, or the SDK's whole chain
/// when the service did not answer (no credentials, no network).
fn failed<E, R>(operation: &str, e: SdkError<E, R>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match e.as_service_error() {
        Some(service) => Error::Service(format!(
            "{operation}: {}: {}",
            service.code().unwrap_or("error"),
            service.message().unwrap_or("(no message)")
        )),
        None => Error::Service(format!("{operation}: {}", DisplayErrorContext(&e))),
    }
}

/// A member the service must return, missing.
fn missing(operation: &str, member: &str) -> Error {
    Error::Service(format!("{operation}: the answer has no {member}"))
}

impl Personalize {
    pub(crate) async fn connect(region: &str) -> Personalize {
        let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_config::Region::new(region.to_string()))
            .load()
            .await;
        Personalize {
            client: Client::new(&config),
        }
    }

    /// The ARN of the schema named `name`, if there is one.
    pub(crate) async fn find_schema(&self, name: &str) -> Result<Option<String>> {
        let mut pages = self.client.list_schemas().into_paginator().items().send();
        while let Some(schema) = pages
            .try_next()
            .await
            .map_err(|e| failed("ListSchemas", e))?
        {
            if schema.name() == Some(name) {
                let arn = schema
                    .schema_arn()
                    .ok_or_else(|| missing("ListSchemas", "schemaArn"))?;
                return Ok(Some(arn.to_string()));
            }
        }
        Ok(None)
    }

    /// A schema's definition (its Avro JSON).
    pub(crate) async fn schema_definition(&self, arn: &str) -> Result<String> {
        let answer = self
            .client
            .describe_schema()
            .schema_arn(arn)
            .send()
            .await
            .map_err(|e| failed("DescribeSchema", e))?;
        answer
            .schema()
            .and_then(|s| s.schema())
            .map(str::to_string)
            .ok_or_else(|| missing("DescribeSchema", "schema"))
    }

    pub(crate) async fn create_schema(&self, name: &str, schema: &str) -> Result<String> {
        let answer = self
            .client
            .create_schema()
            .name(name)
            .schema(schema)
            .send()
            .await
            .map_err(|e| failed("CreateSchema", e))?;
        answer
            .schema_arn()
            .map(str::to_string)
            .ok_or_else(|| missing("CreateSchema", "schemaArn"))
    }

    /// The group's dataset of a type (`datasetType` compared by `is_type`), if it has one.
    pub(crate) async fn find_dataset(
        &self,
        group_arn: &str,
        is_type: impl Fn(&str) -> bool,
    ) -> Result<Option<ExistingDataset>> {
        let mut pages = self
            .client
            .list_datasets()
            .dataset_group_arn(group_arn)
            .into_paginator()
            .items()
            .send();
        while let Some(summary) = pages
            .try_next()
            .await
            .map_err(|e| failed("ListDatasets", e))?
        {
            if summary.dataset_type().is_some_and(&is_type) {
                let arn = summary
                    .dataset_arn()
                    .ok_or_else(|| missing("ListDatasets", "datasetArn"))?;
                return self.describe_dataset(arn).await.map(Some);
            }
        }
        Ok(None)
    }

    pub(crate) async fn describe_dataset(&self, arn: &str) -> Result<ExistingDataset> {
        let answer = self
            .client
            .describe_dataset()
            .dataset_arn(arn)
            .send()
            .await
            .map_err(|e| failed("DescribeDataset", e))?;
        let dataset = answer
            .dataset()
            .ok_or_else(|| missing("DescribeDataset", "dataset"))?;
        Ok(ExistingDataset {
            arn: arn.to_string(),
            schema_arn: dataset.schema_arn().unwrap_or_default().to_string(),
            status: dataset.status().unwrap_or_default().to_string(),
        })
    }

    pub(crate) async fn create_dataset(
        &self,
        name: &str,
        schema_arn: &str,
        group_arn: &str,
        dataset_type: &str,
    ) -> Result<String> {
        let answer = self
            .client
            .create_dataset()
            .name(name)
            .schema_arn(schema_arn)
            .dataset_group_arn(group_arn)
            .dataset_type(dataset_type)
            .send()
            .await
            .map_err(|e| failed("CreateDataset", e))?;
        answer
            .dataset_arn()
            .map(str::to_string)
            .ok_or_else(|| missing("CreateDataset", "datasetArn"))
    }

    pub(crate) async fn create_import_job(
        &self,
        job_name: &str,
        dataset_arn: &str,
        data_location: &str,
        role_arn: &str,
        mode: ImportMode,
    ) -> Result<Started> {
        let mode = match mode {
            ImportMode::Full => SdkImportMode::Full,
            ImportMode::Incremental => SdkImportMode::Incremental,
        };
        let sent = self
            .client
            .create_dataset_import_job()
            .job_name(job_name)
            .dataset_arn(dataset_arn)
            .data_source(DataSource::builder().data_location(data_location).build())
            .role_arn(role_arn)
            .import_mode(mode)
            .send()
            .await;
        match sent {
            Ok(answer) => answer
                .dataset_import_job_arn()
                .map(|arn| Started::Created(arn.to_string()))
                .ok_or_else(|| missing("CreateDatasetImportJob", "datasetImportJobArn")),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_already_exists_exception()) =>
            {
                Ok(Started::AlreadyExists)
            }
            Err(e) => Err(failed("CreateDatasetImportJob", e)),
        }
    }

    /// The ARN of the dataset's import job named `job_name`, if it has one.
    pub(crate) async fn find_import_job(
        &self,
        dataset_arn: &str,
        job_name: &str,
    ) -> Result<Option<String>> {
        let mut pages = self
            .client
            .list_dataset_import_jobs()
            .dataset_arn(dataset_arn)
            .into_paginator()
            .items()
            .send();
        while let Some(job) = pages
            .try_next()
            .await
            .map_err(|e| failed("ListDatasetImportJobs", e))?
        {
            if job.job_name() == Some(job_name) {
                // A listed job without its ARN is a malformed answer, not "on another dataset".
                let arn = job
                    .dataset_import_job_arn()
                    .ok_or_else(|| missing("ListDatasetImportJobs", "datasetImportJobArn"))?;
                return Ok(Some(arn.to_string()));
            }
        }
        Ok(None)
    }

    pub(crate) async fn import_job(&self, arn: &str) -> Result<JobState> {
        let answer = self
            .client
            .describe_dataset_import_job()
            .dataset_import_job_arn(arn)
            .send()
            .await
            .map_err(|e| failed("DescribeDatasetImportJob", e))?;
        let job = answer
            .dataset_import_job()
            .ok_or_else(|| missing("DescribeDatasetImportJob", "datasetImportJob"))?;
        Ok(JobState {
            status: job.status().unwrap_or_default().to_string(),
            failure_reason: job.failure_reason().map(str::to_string),
            data_location: job
                .data_source()
                .and_then(|s| s.data_location())
                .map(str::to_string),
        })
    }
}
