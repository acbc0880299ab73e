//! The staged files of a cluster's tasks: every task attempt writes its own parts and side files
//! into the run's staging area; only those of the attempts the job kept are committed.

use object_store::ObjectStoreExt;

use super::objects::{delete_if_present, names_in, put};
use super::{STAGED_REJECTS, Staging};
use crate::error::{Error, Result};
use crate::sink::PartInfo;

impl Staging {
    /// Deletes the staged parts that `parts` does not name (those of failed or retried task
    /// attempts) and the tagged rejects files (`rejects.<tag>.csv`) that `rejects` does not name.
    /// Returns the names deleted.
    pub async fn keep_only(&self, parts: &[PartInfo], rejects: &[String]) -> Result<Vec<String>> {
        let mut deleted = Vec::new();
        let data_dir = self.data_dir();
        for name in names_in(&self.dest, &data_dir).await? {
            if !parts.iter().any(|p| p.name == name) {
                delete_if_present(&self.dest, &data_dir.clone().join(name.as_str())).await?;
                deleted.push(name);
            }
        }
        for name in names_in(&self.dest, &self.dir()).await? {
            let tagged_rejects =
                name.starts_with("rejects.") && name.ends_with(".csv") && name != STAGED_REJECTS;
            if tagged_rejects && !rejects.contains(&name) {
                delete_if_present(&self.dest, &self.dir().join(name.as_str())).await?;
                deleted.push(name);
            }
        }
        Ok(deleted)
    }

    /// Joins the tasks' rejects files (each with `header`) into the one staged rejects file, in
    /// the order given, and deletes them.
    pub async fn gather_rejects(&self, files: &[String], header: &[u8]) -> Result<()> {
        let mut joined = header.to_vec();
        for name in files {
            let path = self.dir().join(name.as_str());
            let bytes = self
                .dest
                .store
                .get(&path)
                .await
                .map_err(|e| Error::storage(format!("reading {}", self.dest.show(&path)), e))?
                .bytes()
                .await
                .map_err(|e| Error::storage(format!("reading {}", self.dest.show(&path)), e))?;
            joined.extend_from_slice(bytes.strip_prefix(header).unwrap_or(&bytes));
        }
        put(
            &self.dest.store,
            &self.dir().join(STAGED_REJECTS),
            &joined,
            &self.dest,
        )
        .await?;
        for name in files {
            delete_if_present(&self.dest, &self.dir().join(name.as_str())).await?;
        }
        Ok(())
    }
}
