//! What an import reads of an output: its current pointers and the schemas of the runs they name.
//! Only reads: the data locations are derived from the output the user gave and each run's id
//! (never from the location a run stored, so that an output copied elsewhere imports from where
//! it is now).

use object_store::path::Path;

use crate::error::{Error, Result};
use crate::personalize::DatasetType;
use crate::sink::destination::Destination;
use crate::sink::publish::pointer::{self, Current};
use crate::store::{self, StoreRegistry};

/// An output on S3, the only place Personalize imports from.
pub(crate) struct S3Output {
    pub(crate) dest: Destination,
    bucket: String,
}

/// One dataset of the output as its pointer names it, with the schema each of its runs wrote.
pub(crate) struct CommittedDataset {
    pub(crate) dataset: DatasetType,
    pub(crate) current: Current,
    /// Each run's schema text, in the chain's order.
    pub(crate) schemas: Vec<String>,
}

impl S3Output {
    /// Opens `output` for reading; anything but `s3://` is refused (a usage error) before any
    /// read, since Personalize could not read the data locations.
    pub(crate) fn open(output: &str, stores: &StoreRegistry) -> Result<S3Output> {
        let url = store::parse_location(output)?;
        if !matches!(url.scheme(), "s3" | "s3a") {
            return Err(Error::Usage(format!(
                "'{output}' is not on S3: Amazon Personalize imports only from s3:// locations. \
                 Write the datasets to S3 (`pengine run ... --output s3://bucket/prefix`) and \
                 import that output"
            )));
        }
        let bucket = url
            .host_str()
            .filter(|b| !b.is_empty())
            .ok_or_else(|| Error::Usage(format!("'{output}' names no bucket")))?
            .to_string();
        let root = Path::from_url_path(url.path())
            .map_err(|e| Error::Usage(format!("output '{output}': {e}")))?;
        let dest = Destination {
            store: stores.store_for(&url)?,
            root,
            display: output.trim_end_matches('/').to_string(),
            local_root: None,
        };
        Ok(S3Output { dest, bucket })
    }

    /// The data location Personalize reads for a run: its snapshot's folder of parts, as an
    /// `s3://` URL ending in `/` (a folder: every file directly inside it).
    pub(crate) fn data_location(&self, dataset: DatasetType, run_id: &str) -> String {
        format!(
            "s3://{}/{}/",
            self.bucket,
            self.dest.snapshot_data_dir(dataset, run_id)
        )
    }

    /// The committed datasets to import: those named (each must have a pointer), or every
    /// dataset with one. An output without any is an error that says to run first.
    pub(crate) async fn committed(&self, only: &[DatasetType]) -> Result<Vec<CommittedDataset>> {
        let mut wanted: Vec<DatasetType> = Vec::new();
        for dataset in if only.is_empty() {
            &DatasetType::ALL[..]
        } else {
            only
        } {
            // `--dataset items --dataset items` imports items once.
            if !wanted.contains(dataset) {
                wanted.push(*dataset);
            }
        }
        let mut found = Vec::new();
        for dataset in wanted {
            match pointer::read_current(&self.dest, dataset).await? {
                Some(current) => found.push(self.with_schemas(dataset, current).await?),
                None if !only.is_empty() => {
                    return Err(Error::Usage(format!(
                        "{dataset}: {} has no committed run of this dataset (no {}): run \
                         `pengine run` with this output first",
                        self.dest.display,
                        self.dest.show(&self.dest.current_path(dataset))
                    )));
                }
                None => {}
            }
        }
        if found.is_empty() {
            return Err(Error::Usage(format!(
                "{} has no committed dataset (no <dataset>.current.json): run `pengine run` \
                 with --output {} first, then import",
                self.dest.display, self.dest.display
            )));
        }
        Ok(found)
    }

    async fn with_schemas(
        &self,
        dataset: DatasetType,
        current: Current,
    ) -> Result<CommittedDataset> {
        let mut schemas = Vec::with_capacity(current.chain.len());
        for run in &current.chain {
            let path = self
                .dest
                .snapshot_dir(dataset, &run.run_id)
                .clone()
                .join(crate::sink::publish::STAGED_SCHEMA);
            let bytes = self.dest.read_optional(&path).await?.ok_or_else(|| {
                Error::Data(format!(
                    "{dataset}: run {} is named by the current pointer but its schema {} is \
                     missing; re-run the dataset's mapping file",
                    run.run_id,
                    self.dest.show(&path)
                ))
            })?;
            let text = String::from_utf8(bytes.to_vec())
                .map_err(|_| Error::Data(format!("{}: not UTF-8 text", self.dest.show(&path))))?;
            schemas.push(text);
        }
        Ok(CommittedDataset {
            dataset,
            current,
            schemas,
        })
    }
}
