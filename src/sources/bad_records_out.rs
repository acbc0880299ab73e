//! Bad records set aside by a scan that runs where no writer gathers them (a cluster's executor,
//! whose scan stage is not the write stage): the scan itself writes them, as it goes, to objects
//! of their own under a folder of the run's staging area, for the client to gather into the
//! run's bad-records file.
//!
//! Object names are random: an attempt that failed or ran twice leaves the same records again,
//! which the client sets aside by their position ([`super::bad_records::BadRecord::key`]).

use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileOpenFuture, FileOpener};
use datafusion::error::{DataFusionError, Result};
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};

use super::bad_records::{BadRecordLog, to_json_line};

/// Where a scan writes the bad records it sets aside, as data (it travels with the plan).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BadRecordsTo {
    /// A URL of the store (the run's output).
    pub url: String,
    /// The folder, on that store (nothing else is written there).
    pub dir: String,
}

/// Where a scan writes its bad records, and the log its reader records them in.
#[derive(Debug)]
pub struct BadRecordsOut {
    pub to: BadRecordsTo,
    pub log: Arc<BadRecordLog>,
    pub store: Arc<dyn ObjectStore>,
}

impl BadRecordsOut {
    /// Writes the records the log holds to a new object.
    pub async fn write_pending(&self) -> Result<()> {
        let pending = self.log.take_pending();
        if pending.is_empty() {
            return Ok(());
        }
        let bytes: Vec<u8> = pending.iter().flat_map(to_json_line).collect();
        let path = Path::from(self.to.dir.as_str())
            .join(format!("{}.jsonl", uuid::Uuid::new_v4().simple()));
        self.store
            .put(&path, PutPayload::from(bytes))
            .await
            .map_err(|e| {
                DataFusionError::Execution(format!(
                    "writing the bad records to {path} (run with --on-bad-records fail, or give \
                     the executors write access to the output): {e}"
                ))
            })?;
        Ok(())
    }

    /// `inner`, whose files' bad records are written out after each file (and whenever many are
    /// waiting).
    pub fn around(self: &Arc<Self>, inner: Arc<dyn FileOpener>) -> Arc<dyn FileOpener> {
        Arc::new(WritingOut {
            inner,
            out: Arc::clone(self),
        })
    }
}

/// A reader's opener whose streams write their bad records out.
struct WritingOut {
    inner: Arc<dyn FileOpener>,
    out: Arc<BadRecordsOut>,
}

impl FileOpener for WritingOut {
    fn open(&self, file: PartitionedFile) -> Result<FileOpenFuture> {
        let opening = self.inner.open(file)?;
        let out = Arc::clone(&self.out);
        Ok(Box::pin(async move {
            let stream = opening.await?;
            Ok(writing_out(stream, out))
        }))
    }
}

fn writing_out(
    stream: BoxStream<'static, Result<RecordBatch>>,
    out: Arc<BadRecordsOut>,
) -> BoxStream<'static, Result<RecordBatch>> {
    futures::stream::unfold(Some(stream), move |reading| {
        let out = Arc::clone(&out);
        async move {
            let mut stream = reading?;
            let written = match stream.next().await {
                Some(Ok(batch)) if out.log.many_are_pending() => {
                    out.write_pending().await.map(|()| batch)
                }
                Some(next) => next,
                // The file is read: what it left is written before the scan moves on.
                None => return out.write_pending().await.err().map(|e| (Err(e), None)),
            };
            let more = written.is_ok().then_some(stream);
            Some((written, more))
        }
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::bad_records::{BadRecord, BadRecordPolicy};
    use datafusion::arrow::array::Int32Array;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use object_store::memory::InMemory;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int32, false)]));
        RecordBatch::try_new(schema, vec![Arc::new(Int32Array::from(vec![1, 2]))]).unwrap()
    }

    /// Bad records skipped and written under `bad/` of `store`.
    fn out_to(store: &Arc<InMemory>) -> Arc<BadRecordsOut> {
        Arc::new(BadRecordsOut {
            to: BadRecordsTo {
                url: "memory:///".into(),
                dir: "bad".into(),
            },
            log: Arc::new(BadRecordLog::new(BadRecordPolicy::Skip)),
            store: store.clone(),
        })
    }

    async fn written(store: &InMemory) -> Vec<BadRecord> {
        let mut records = Vec::new();
        let objects: Vec<_> = store
            .list(Some(&Path::from("bad")))
            .map(|o| o.unwrap().location)
            .collect()
            .await;
        for path in objects {
            let bytes = store.get(&path).await.unwrap().bytes().await.unwrap();
            for line in bytes.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
                records.push(serde_json::from_slice(line).unwrap());
            }
        }
        records
    }

    #[tokio::test]
    async fn a_file_s_bad_records_are_written_when_it_is_read_and_every_batch_comes_through() {
        let store = Arc::new(InMemory::new());
        let out = out_to(&store);
        let log = Arc::clone(&out.log);
        let batches = futures::stream::iter([Ok(batch()), Ok(batch())]).map(move |b| {
            log.record(BadRecord::at_byte("f.json", 7, "not JSON", b"{x"))
                .unwrap();
            b
        });
        let read: Vec<_> = writing_out(batches.boxed(), Arc::clone(&out))
            .collect()
            .await;
        assert_eq!(read.len(), 2);
        assert!(read.iter().all(|b| b.as_ref().unwrap().num_rows() == 2));
        let records = written(&store).await;
        assert_eq!(records.len(), 2);
        assert_eq!(records[0].key(), ("f.json", Some(7), None, None));
        assert_eq!(out.log.counts().total, 2);
    }

    #[tokio::test]
    async fn a_file_of_bad_records_only_still_writes_them() {
        let store = Arc::new(InMemory::new());
        let out = out_to(&store);
        out.log
            .record(BadRecord::at_byte("g.json", 0, "cut short", b"{"))
            .unwrap();
        let read: Vec<_> = writing_out(futures::stream::empty().boxed(), Arc::clone(&out))
            .collect()
            .await;
        assert!(read.is_empty());
        assert_eq!(written(&store).await.len(), 1);
    }
}
