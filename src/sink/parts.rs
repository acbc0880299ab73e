//! Writes encoded rows into numbered CSV parts of bounded size, through any object store.
//!
//! Every part starts with the header; a part is cut at a row boundary before it would pass the
//! size limit (a single row larger than the limit gets a part of its own). Uploads are streamed
//! (multipart on object stores, see [`ObjectWriter`]) and aborted, not leaked, when the run fails
//! or is interrupted.

use object_store::path::Path;
use serde::Serialize;

use super::csv_dialect::EncodedRows;
use super::destination::Destination;
use super::upload::ObjectWriter;
use crate::error::{Error, Result};

/// Upload buffer per part (also the multipart chunk size) on object stores, whose parts but the
/// last must be at least 5 MiB.
const UPLOAD_BUFFER: usize = 8 * 1024 * 1024;
/// The same on a local disk: small, so that the last chunk, written once the rows end, is short
/// (with 8 MiB the run ended with up to 8 MiB of writes on one core).
const LOCAL_UPLOAD_BUFFER: usize = 1024 * 1024;

/// One written part.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct PartInfo {
    pub name: String,
    pub rows: u64,
    pub bytes: u64,
}

struct OpenPart {
    info: PartInfo,
    path: Path,
    writer: ObjectWriter,
}

/// Rolls parts `part-00000.csv`, `part-00001.csv`, ... under one folder (or writes one named
/// file, for the rejects).
pub struct PartRoller {
    dest: Destination,
    dir: Path,
    header: Vec<u8>,
    max_bytes: u64,
    open: Option<OpenPart>,
    done: Vec<PartInfo>,
    /// Set for a single file of this name, never rolled.
    single: Option<String>,
    /// Between `part-` and the number: the writer's own, when several write into one folder.
    tag: Option<String>,
    /// Parts are completed only while this object exists ([`ObjectWriter::fenced`]), and on a
    /// local disk staged in the folder beside it ([`ObjectWriter::staged_at`]).
    fence: Option<(Path, Path)>,
}

/// The file name of part number `index`.
pub fn part_name(index: usize) -> String {
    format!("part-{index:05}.csv")
}

/// The file name of part number `index` of the writer tagged `tag`.
pub fn tagged_part_name(tag: &str, index: usize) -> String {
    format!("part-{tag}-{index:05}.csv")
}

impl PartRoller {
    /// Parts under `dir` of `dest` (whose display names paths in errors).
    pub fn new(dest: &Destination, dir: Path, header: Vec<u8>, max_bytes: u64) -> Self {
        Self {
            dest: dest.clone(),
            dir,
            header,
            max_bytes,
            open: None,
            done: Vec::new(),
            single: None,
            tag: None,
            fence: None,
        }
    }

    /// Parts completed only while `marker` exists (a cluster job's, for its tasks' parts); on a
    /// local disk written in `uploads` first, and moved into place once complete.
    pub fn fenced(mut self, marker: Path, uploads: Path) -> Self {
        self.fence = Some((marker, uploads));
        self
    }

    /// Parts named `part-<tag>-00000.csv`, ...: writers with different tags share `dir`.
    pub fn tagged(mut self, tag: &str) -> Self {
        self.tag = Some(tag.to_string());
        self
    }

    /// One file `dir/name`, however large.
    pub fn single_file(dest: &Destination, dir: Path, name: &str, header: Vec<u8>) -> Self {
        let mut roller = Self::new(dest, dir, header, u64::MAX);
        roller.single = Some(name.to_string());
        roller
    }

    /// Appends `rows`, rolling to a new part whenever the next row would not fit.
    pub async fn write(&mut self, rows: &EncodedRows) -> Result<()> {
        let mut row = 0;
        while row < rows.row_ends.len() {
            let start = if row == 0 { 0 } else { rows.row_ends[row - 1] };
            if self.open.is_none() {
                self.open_part().await?;
            }
            let part = self.open.as_mut().expect("a part is open");
            let room = self.max_bytes.saturating_sub(part.info.bytes) as usize;
            let fit = rows.row_ends[row..].partition_point(|&end| end - start <= room);
            let end_row = match fit {
                0 if part.info.rows > 0 => {
                    self.close_part().await?;
                    continue;
                }
                // An empty part takes at least one row, however large.
                0 => row + 1,
                n => row + n,
            };
            let end = rows.row_ends[end_row - 1];
            if let Err(e) = part.writer.write(&rows.bytes[start..end]).await {
                return Err(Error::storage(
                    format!("writing {}", self.dest.show(&part.path)),
                    e,
                ));
            }
            part.info.rows += (end_row - row) as u64;
            part.info.bytes += (end - start) as u64;
            row = end_row;
        }
        Ok(())
    }

    async fn open_part(&mut self) -> Result<()> {
        let name = self.single.clone().unwrap_or_else(|| match &self.tag {
            Some(tag) => tagged_part_name(tag, self.done.len()),
            None => part_name(self.done.len()),
        });
        let path = self.dir.clone().join(name.as_str());
        let local = self.dest.local_root.is_some();
        let chunk = if local {
            LOCAL_UPLOAD_BUFFER
        } else {
            UPLOAD_BUFFER
        };
        let writer = ObjectWriter::new(self.dest.store.clone(), path.clone(), chunk);
        let writer = match &self.fence {
            Some((marker, uploads)) if local => writer
                .fenced(marker.clone())
                .staged_at(uploads.clone().join(name.as_str())),
            Some((marker, _)) => writer.fenced(marker.clone()),
            None => writer,
        };
        // Open before the first write, so that `abort` finds it whatever happens next.
        let part = self.open.insert(OpenPart {
            info: PartInfo {
                name,
                rows: 0,
                bytes: self.header.len() as u64,
            },
            path,
            writer,
        });
        part.writer
            .write(&self.header)
            .await
            .map_err(|e| Error::storage(format!("writing {}", self.dest.show(&part.path)), e))
    }

    async fn close_part(&mut self) -> Result<()> {
        if let Some(part) = self.open.as_mut() {
            part.writer.finish().await.map_err(|e| {
                Error::storage(format!("writing {}", self.dest.show(&part.path)), e)
            })?;
            let part = self.open.take().expect("a part is open");
            tracing::debug!(
                "wrote {} ({} rows, {} bytes)",
                self.dest.show(&part.path),
                part.info.rows,
                part.info.bytes
            );
            self.done.push(part.info);
        }
        Ok(())
    }

    /// Like [`PartRoller::finish`], but writes a part holding only the header when no row came:
    /// an empty dataset published on purpose still names its columns.
    pub async fn finish_at_least_one(&mut self) -> Result<Vec<PartInfo>> {
        if self.done.is_empty() && self.open.is_none() {
            self.open_part().await?;
        }
        self.finish().await
    }

    /// Completes the last part and returns all parts written.
    pub async fn finish(&mut self) -> Result<Vec<PartInfo>> {
        self.close_part().await?;
        Ok(std::mem::take(&mut self.done))
    }

    /// Aborts the part being uploaded, after a failure or an interrupt, whatever state its upload
    /// is in (completed parts are left for the caller to delete).
    pub async fn abort(&mut self) {
        if let Some(mut part) = self.open.take()
            && let Err(e) = part.writer.abort().await
        {
            tracing::warn!(
                "could not abort the upload of {}: {e}. An incomplete multipart upload may be \
                 left; S3 removes them with a lifecycle rule (AbortIncompleteMultipartUpload)",
                self.dest.show(&part.path)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    use object_store::memory::InMemory;
    use object_store::{ObjectStore, ObjectStoreExt};

    fn rows(lines: &[&str]) -> EncodedRows {
        let mut out = EncodedRows::default();
        for line in lines {
            out.bytes.extend_from_slice(line.as_bytes());
            out.bytes.push(b'\n');
            out.row_ends.push(out.bytes.len());
        }
        out
    }

    #[tokio::test]
    async fn parts_roll_at_row_boundaries_under_the_limit() {
        let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
        let dest = Destination {
            store: Arc::clone(&store),
            root: Path::from(""),
            display: "memory:/".to_string(),
            local_root: None,
        };
        let mut roller = PartRoller::new(&dest, Path::from("d"), b"H\n".to_vec(), 10);
        roller.write(&rows(&["aaa", "bbb", "ccc"])).await.unwrap();
        roller
            .write(&rows(&["a-very-long-row", "d"]))
            .await
            .unwrap();
        let parts = roller.finish().await.unwrap();
        let names: Vec<_> = parts
            .iter()
            .map(|p| (p.name.as_str(), p.rows, p.bytes))
            .collect();
        assert_eq!(
            names,
            [
                ("part-00000.csv", 2, 10),
                ("part-00001.csv", 1, 6),
                ("part-00002.csv", 1, 18),
                ("part-00003.csv", 1, 4)
            ]
        );
        let first = store
            .get(&Path::from("d/part-00000.csv"))
            .await
            .unwrap()
            .bytes()
            .await
            .unwrap();
        assert_eq!(&first[..], b"H\naaa\nbbb\n");
    }
}
