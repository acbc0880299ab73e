//! One object written as it is produced: kept in memory up to one chunk and sent with a single
//! PUT, or, once it outgrows the chunk, sent as a multipart upload of chunk-sized parts, several
//! in flight at once.
//!
//! object_store's `BufWriter` does the same, but cannot always be aborted: after a failed
//! completion its `abort` panics, and a failed part leaves the upload behind. Here every state
//! lives in the writer, never inside a future, so whatever happened (a part that failed, a
//! completion that failed, a call cancelled half-way because of Ctrl-C), [`ObjectWriter::abort`]
//! finds the upload and aborts it. After an error or a cancelled call, `abort` is the only call
//! that makes sense.

use std::sync::Arc;

use object_store::path::Path;
use object_store::{MultipartUpload, ObjectStore, ObjectStoreExt, PutPayload};
use tokio::task::{JoinHandle, JoinSet};

/// Parts of one object uploading at the same time.
const PARTS_IN_FLIGHT: usize = 8;

type Created = object_store::Result<Box<dyn MultipartUpload>>;

enum Upload {
    /// Everything written so far is in the buffer.
    NotStarted,
    /// CreateMultipartUpload is under way, in its own task, so that a cancelled call cannot lose
    /// the upload it creates.
    Creating(JoinHandle<Created>),
    Started {
        upload: Box<dyn MultipartUpload>,
        parts: JoinSet<object_store::Result<()>>,
    },
    /// Complete at the staging path ([`ObjectWriter::staged_at`]), not moved to its path yet.
    Staged,
    /// Completed or aborted (or its creation failed): nothing left to clean up.
    Closed,
}

/// Writes one object of a store, in parts when it is large.
pub struct ObjectWriter {
    store: Arc<dyn ObjectStore>,
    path: Path,
    chunk: usize,
    buffer: Vec<u8>,
    upload: Upload,
    /// An object whose absence forbids completing this one (see [`ObjectWriter::fenced`]).
    fence: Option<Path>,
    /// Where the object is written before it is moved to `path` (see [`ObjectWriter::staged_at`]).
    staging: Option<Path>,
}

fn task_failed(e: tokio::task::JoinError) -> object_store::Error {
    object_store::Error::Generic {
        store: "upload",
        source: Box::new(e),
    }
}

impl ObjectWriter {
    /// A writer of `path` sending parts of `chunk` bytes (the last one may be smaller).
    pub fn new(store: Arc<dyn ObjectStore>, path: Path, chunk: usize) -> Self {
        Self {
            store,
            path,
            chunk,
            buffer: Vec::new(),
            upload: Upload::NotStarted,
            fence: None,
            staging: None,
        }
    }

    /// A writer that completes its object only while `marker` exists, checked right before the
    /// completion (always a multipart upload's, the one step that makes the object appear). A
    /// cluster's task attempt taken for lost that comes back after its job ended finds the job's
    /// marker gone and leaves nothing.
    pub fn fenced(mut self, marker: Path) -> Self {
        self.fence = Some(marker);
        self
    }

    /// A writer that writes its object at `staging` and renames it to its path once complete
    /// (after the fence's check): on a local disk, a multipart upload's temporary file sits
    /// beside its object while it runs, and a cluster task taken for lost that comes back after
    /// its job ended would leave it among the committed files until its fence refuses it. Only
    /// where a rename is cheap and atomic (a local disk).
    pub fn staged_at(mut self, staging: Path) -> Self {
        self.staging = Some(staging);
        self
    }

    /// Where the object is written: its path, or the staging path.
    fn target(&self) -> &Path {
        self.staging.as_ref().unwrap_or(&self.path)
    }

    pub async fn write(&mut self, bytes: &[u8]) -> object_store::Result<()> {
        if let Some(e) = crate::failpoint::disk_full(bytes.len()) {
            return Err(object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(e),
            });
        }
        // Each byte is copied once, into the chunk it belongs to.
        let mut rest = bytes;
        while !rest.is_empty() {
            let take = (self.chunk - self.buffer.len()).min(rest.len());
            self.buffer.extend_from_slice(&rest[..take]);
            rest = &rest[take..];
            if self.buffer.len() == self.chunk {
                let part = std::mem::replace(&mut self.buffer, Vec::with_capacity(self.chunk));
                self.send_part(part).await?;
            }
        }
        Ok(())
    }

    /// Sends what is left and completes the object.
    pub async fn finish(&mut self) -> object_store::Result<()> {
        if let (Upload::NotStarted, None, None) = (&self.upload, &self.fence, &self.staging) {
            let bytes = std::mem::take(&mut self.buffer);
            self.store.put(&self.path, PutPayload::from(bytes)).await?;
            self.upload = Upload::Closed;
            return Ok(());
        }
        if !self.buffer.is_empty() || matches!(self.upload, Upload::NotStarted) {
            let part = std::mem::take(&mut self.buffer);
            self.send_part(part).await?;
        }
        let fence = (
            Arc::clone(&self.store),
            self.path.clone(),
            self.fence.clone(),
        );
        let staging = self.staging.clone();
        let (upload, parts) = self.started().await?;
        while let Some(sent) = parts.join_next().await {
            sent.map_err(task_failed)??;
        }
        // The fence is checked right before the object appears: at its completion, or for a
        // staged one when it is moved.
        let Some(staging) = staging else {
            check_fence(fence).await?;
            upload.complete().await?;
            self.upload = Upload::Closed;
            return Ok(());
        };
        upload.complete().await?;
        self.upload = Upload::Staged;
        check_fence(fence).await?;
        self.store.rename(&staging, &self.path).await?;
        self.upload = Upload::Closed;
        Ok(())
    }

    /// Cancels the parts in flight and aborts the multipart upload, if one was started.
    pub async fn abort(&mut self) -> object_store::Result<()> {
        self.buffer = Vec::new();
        let mut upload = match std::mem::replace(&mut self.upload, Upload::Closed) {
            Upload::NotStarted | Upload::Closed => return Ok(()),
            Upload::Staged => {
                return match self.store.delete(self.target()).await {
                    Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
                    Err(e) => Err(e),
                };
            }
            Upload::Creating(creating) => match creating.await {
                Ok(Ok(upload)) => upload,
                // Nothing was created.
                _ => return Ok(()),
            },
            Upload::Started { upload, mut parts } => {
                parts.shutdown().await;
                upload
            }
        };
        match upload.abort().await {
            // Already gone (completed or aborted by an earlier attempt).
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn send_part(&mut self, part: Vec<u8>) -> object_store::Result<()> {
        if let Upload::NotStarted = self.upload {
            let (store, path) = (Arc::clone(&self.store), self.target().clone());
            self.upload =
                Upload::Creating(tokio::spawn(
                    async move { store.put_multipart(&path).await },
                ));
        }
        let (upload, parts) = self.started().await?;
        while parts.len() >= PARTS_IN_FLIGHT {
            if let Some(sent) = parts.join_next().await {
                sent.map_err(task_failed)??;
            }
        }
        parts.spawn(upload.put_part(PutPayload::from(part)));
        Ok(())
    }

    /// The multipart upload, once its creation has finished.
    async fn started(
        &mut self,
    ) -> object_store::Result<(
        &mut Box<dyn MultipartUpload>,
        &mut JoinSet<object_store::Result<()>>,
    )> {
        if let Upload::Creating(creating) = &mut self.upload {
            let created = creating.await;
            // Recorded as soon as the creation ends (no await in between).
            let (next, created) = match created {
                Ok(Ok(upload)) => (
                    Upload::Started {
                        upload,
                        parts: JoinSet::new(),
                    },
                    Ok(()),
                ),
                Ok(Err(e)) => (Upload::Closed, Err(e)),
                Err(e) => (Upload::Closed, Err(task_failed(e))),
            };
            self.upload = next;
            created?;
        }
        match &mut self.upload {
            Upload::Started { upload, parts } => Ok((upload, parts)),
            _ => Err(object_store::Error::Generic {
                store: "upload",
                source: format!("the upload of {} is already closed", self.path).into(),
            }),
        }
    }
}

/// Fails unless `marker` exists (the fence of a writer of `path`; none: passes).
async fn check_fence(
    (store, path, marker): (Arc<dyn ObjectStore>, Path, Option<Path>),
) -> object_store::Result<()> {
    let Some(marker) = marker else {
        return Ok(());
    };
    match store.head(&marker).await {
        Ok(_) => Ok(()),
        Err(object_store::Error::NotFound { .. }) => Err(object_store::Error::Precondition {
            path: path.to_string(),
            source: format!(
                "{marker} is gone: the cluster job that started this task has ended, so its \
                 file is not completed"
            )
            .into(),
        }),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::memory::InMemory;

    async fn read(store: &Arc<dyn ObjectStore>, path: &str) -> Option<Vec<u8>> {
        match store.get(&Path::from(path)).await {
            Ok(found) => Some(found.bytes().await.unwrap().to_vec()),
            Err(_) => None,
        }
    }

    #[tokio::test]
    async fn small_objects_are_one_put_and_large_ones_are_sent_in_parts() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let mut small = ObjectWriter::new(Arc::clone(&store), Path::from("small"), 8);
        small.write(b"abc").await.unwrap();
        small.finish().await.unwrap();
        assert_eq!(read(&store, "small").await.unwrap(), b"abc");

        let mut large = ObjectWriter::new(Arc::clone(&store), Path::from("large"), 4);
        for piece in [&b"0123"[..], b"45", b"6789a", b"b"] {
            large.write(piece).await.unwrap();
        }
        assert!(matches!(large.upload, Upload::Started { .. }));
        assert_eq!(
            read(&store, "large").await,
            None,
            "visible before completion"
        );
        large.finish().await.unwrap();
        assert_eq!(read(&store, "large").await.unwrap(), b"0123456789ab");

        // One write of several chunks.
        let mut at_once = ObjectWriter::new(Arc::clone(&store), Path::from("at-once"), 4);
        at_once.write(b"0123456789a").await.unwrap();
        at_once.finish().await.unwrap();
        assert_eq!(read(&store, "at-once").await.unwrap(), b"0123456789a");
    }

    #[tokio::test]
    async fn a_fenced_object_is_completed_only_while_its_marker_exists() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let marker = Path::from("job.open");
        store.put(&marker, PutPayload::default()).await.unwrap();
        for (name, chunk) in [("small", 64), ("large", 4)] {
            let mut writer = ObjectWriter::new(Arc::clone(&store), Path::from(name), chunk)
                .fenced(marker.clone());
            writer.write(b"0123456789").await.unwrap();
            writer.finish().await.unwrap();
            assert_eq!(read(&store, name).await.unwrap(), b"0123456789");
        }
        // Even an object of nothing.
        let mut empty =
            ObjectWriter::new(Arc::clone(&store), Path::from("empty"), 4).fenced(marker.clone());
        empty.finish().await.unwrap();
        assert_eq!(read(&store, "empty").await.unwrap(), b"");

        store.delete(&marker).await.unwrap();
        for (name, chunk) in [("late-small", 64), ("late-large", 4)] {
            let mut writer = ObjectWriter::new(Arc::clone(&store), Path::from(name), chunk)
                .fenced(marker.clone());
            writer.write(b"0123456789").await.unwrap();
            let refused = writer.finish().await.unwrap_err().to_string();
            assert!(refused.contains("job.open is gone"), "{refused}");
            writer.abort().await.unwrap();
            assert_eq!(read(&store, name).await, None, "{name}");
        }
    }

    /// Files under `dir`, relative, sorted (a multipart upload's temporary ones included).
    fn files_in(dir: &std::path::Path) -> Vec<String> {
        fn walk(root: &std::path::Path, dir: &std::path::Path, found: &mut Vec<String>) {
            for entry in std::fs::read_dir(dir).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    walk(root, &path, found);
                } else {
                    let relative = path.strip_prefix(root).unwrap();
                    found.push(relative.to_string_lossy().into_owned());
                }
            }
        }
        let mut found = Vec::new();
        walk(dir, dir, &mut found);
        found.sort();
        found
    }

    /// On a local disk, a staged object's temporary files stay out of its folder until it is
    /// complete and its fence allows it; refused, it leaves nothing in either folder.
    #[tokio::test]
    async fn a_staged_object_appears_in_its_folder_only_when_complete() {
        let dir = tempfile::tempdir().unwrap();
        let local = object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(local);
        let marker = Path::from("job.open");
        store.put(&marker, PutPayload::default()).await.unwrap();
        let staged = |name: &str, chunk| {
            ObjectWriter::new(
                Arc::clone(&store),
                Path::from(format!("data/{name}")),
                chunk,
            )
            .fenced(marker.clone())
            .staged_at(Path::from(format!("uploads/{name}")))
        };
        for (name, chunk) in [("small", 64), ("large", 4)] {
            let mut writer = staged(name, chunk);
            writer.write(b"0123456789").await.unwrap();
            let files = files_in(dir.path());
            let in_data = files
                .iter()
                .filter(|f| f.starts_with(&format!("data/{name}")));
            assert_eq!(in_data.count(), 0, "{name}: {files:?}");
            let uploading = files
                .iter()
                .filter(|f| f.starts_with(&format!("uploads/{name}")));
            assert_eq!(uploading.count(), usize::from(name == "large"), "{files:?}");
            writer.finish().await.unwrap();
            let data = format!("data/{name}");
            assert_eq!(read(&store, &data).await.unwrap(), b"0123456789");
        }
        assert_eq!(
            files_in(dir.path()),
            ["data/large", "data/small", "job.open"]
        );

        store.delete(&marker).await.unwrap();
        for (name, chunk) in [("late-small", 64), ("late-large", 4)] {
            let mut writer = staged(name, chunk);
            writer.write(b"0123456789").await.unwrap();
            let refused = writer.finish().await.unwrap_err().to_string();
            assert!(refused.contains("job.open is gone"), "{refused}");
            writer.abort().await.unwrap();
        }
        assert_eq!(files_in(dir.path()), ["data/large", "data/small"]);
    }

    #[tokio::test]
    async fn an_aborted_upload_leaves_nothing() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let mut writer = ObjectWriter::new(Arc::clone(&store), Path::from("x"), 4);
        writer.write(b"0123456789").await.unwrap();
        writer.abort().await.unwrap();
        writer.abort().await.unwrap();
        assert_eq!(read(&store, "x").await, None);
    }
}
