//! Writes encoded rows into numbered CSV parts of bounded size, through any object store.
//!
//! Every part starts with the header; a part is cut at a row boundary before it would pass the
//! size limit (a single row larger than the limit gets a part of its own). Uploads are streamed
//! (multipart on object stores) and aborted, not leaked, when the run fails.

use std::sync::Arc;

use object_store::ObjectStore;
use object_store::buffered::BufWriter;
use object_store::path::Path;
use serde::Serialize;
use tokio::io::AsyncWriteExt;

use super::csv_dialect::EncodedRows;
use crate::error::{Error, Result};

/// Upload buffer per part (also the multipart chunk size).
const UPLOAD_BUFFER: usize = 8 * 1024 * 1024;

/// One written part.
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq, Eq)]
pub struct PartInfo {
    pub name: String,
    pub rows: u64,
    pub bytes: u64,
}

struct OpenPart {
    info: PartInfo,
    writer: BufWriter,
}

/// Rolls parts `part-00000.csv`, `part-00001.csv`, ... under one folder (or writes one named
/// file, for the rejects).
pub struct PartRoller {
    store: Arc<dyn ObjectStore>,
    dir: Path,
    header: Vec<u8>,
    max_bytes: u64,
    open: Option<OpenPart>,
    done: Vec<PartInfo>,
    /// Set for a single file of this name, never rolled.
    single: Option<String>,
}

/// The file name of part number `index`.
pub fn part_name(index: usize) -> String {
    format!("part-{index:05}.csv")
}

impl PartRoller {
    pub fn new(store: Arc<dyn ObjectStore>, dir: Path, header: Vec<u8>, max_bytes: u64) -> Self {
        Self {
            store,
            dir,
            header,
            max_bytes,
            open: None,
            done: Vec::new(),
            single: None,
        }
    }

    /// One file `dir/name`, however large.
    pub fn single_file(
        store: Arc<dyn ObjectStore>,
        dir: Path,
        name: &str,
        header: Vec<u8>,
    ) -> Self {
        let mut roller = Self::new(store, dir, header, u64::MAX);
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
            let name = part.info.name.clone();
            part.writer
                .write_all(&rows.bytes[start..end])
                .await
                .map_err(|e| Error::io(format!("writing {name}"), e))?;
            part.info.rows += (end_row - row) as u64;
            part.info.bytes += (end - start) as u64;
            row = end_row;
        }
        Ok(())
    }

    async fn open_part(&mut self) -> Result<()> {
        let name = self
            .single
            .clone()
            .unwrap_or_else(|| part_name(self.done.len()));
        let path = self.dir.clone().join(name.as_str());
        let mut writer = BufWriter::with_capacity(Arc::clone(&self.store), path, UPLOAD_BUFFER);
        writer
            .write_all(&self.header)
            .await
            .map_err(|e| Error::io(format!("writing {name}"), e))?;
        self.open = Some(OpenPart {
            info: PartInfo {
                name,
                rows: 0,
                bytes: self.header.len() as u64,
            },
            writer,
        });
        Ok(())
    }

    async fn close_part(&mut self) -> Result<()> {
        if let Some(mut part) = self.open.take() {
            if let Err(e) = part.writer.shutdown().await {
                let _ = part.writer.abort().await;
                return Err(Error::io(format!("completing {}", part.info.name), e));
            }
            self.done.push(part.info);
        }
        Ok(())
    }

    /// Completes the last part and returns all parts written.
    pub async fn finish(mut self) -> Result<Vec<PartInfo>> {
        self.close_part().await?;
        Ok(self.done)
    }

    /// Aborts the part being uploaded (completed parts are left for the caller to delete).
    pub async fn abort(mut self) {
        if let Some(mut part) = self.open.take() {
            let _ = part.writer.abort().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;
    use object_store::memory::InMemory;

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
        let mut roller = PartRoller::new(Arc::clone(&store), Path::from("d"), b"H\n".to_vec(), 10);
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
