//! The `key=value` partitions a query's WHERE ruled out. DataFusion scans only the partitions a
//! filter on their columns keeps, so no scan reads, or counts, the rows of the others. Each table
//! scanned with such a filter is listed once more, whole (DataFusion's listing cache answers it
//! when the table's listing fits in it), and the partitions none of whose files any scan read are
//! reported, with their files and bytes, beside the Parquet pruning in `rows.pruned`.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::datasource::listing::ListingTable;
use datafusion::datasource::listing::helpers::expr_applicable_for_cols;
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::source_as_provider;
use datafusion::execution::context::SessionState;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::ExecutionPlan;
use futures::TryStreamExt;

use crate::error::Result;

/// What the partition filters of a query left unread.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrunedPartitions {
    pub partitions: u64,
    pub files: u64,
    pub bytes: u64,
}

impl PrunedPartitions {
    /// As the report's `rows.pruned` entries (none when nothing was pruned).
    pub fn entries(&self) -> Vec<(&'static str, u64)> {
        if self.partitions == 0 {
            return Vec::new();
        }
        vec![
            ("partitions", self.partitions),
            ("partition_files", self.files),
            ("partition_bytes", self.bytes),
        ]
    }
}

/// The partitions of the tables `logical` (optimized) scans with a filter on their partition
/// columns that no scan of the executed `physical` plan read a file of.
pub async fn measure(
    state: &SessionState,
    logical: &LogicalPlan,
    physical: &Arc<dyn ExecutionPlan>,
) -> Result<PrunedPartitions> {
    let tables = filtered_partitioned_tables(logical)?;
    if tables.is_empty() {
        return Ok(PrunedPartitions::default());
    }
    let mut read = HashSet::new();
    files_read(physical, &mut read);
    let mut pruned = PrunedPartitions::default();
    for table in tables {
        let Some(listing) = table.downcast_ref::<ListingTable>() else {
            continue;
        };
        for url in listing.table_paths() {
            let store = state.runtime_env().object_store(url)?;
            let store_url = url.object_store().to_string();
            let listed: Vec<_> = url
                .list_all_files(state, store.as_ref(), &listing.options().file_extension)
                .await?
                .try_filter(|meta| futures::future::ready(meta.size > 0))
                .try_collect()
                .await?;
            // Partition folder → (any file read, unread files, their bytes).
            let mut partitions: BTreeMap<String, (bool, u64, u64)> = BTreeMap::new();
            for meta in listed {
                let Some(segments) = url.strip_prefix(&meta.location) else {
                    continue;
                };
                let mut segments: Vec<&str> = segments.collect();
                segments.pop();
                let entry = partitions.entry(segments.join("/")).or_default();
                if read.contains(&(store_url.clone(), meta.location.to_string())) {
                    entry.0 = true;
                } else {
                    entry.1 += 1;
                    entry.2 += meta.size;
                }
            }
            for (_, (any_read, files, bytes)) in partitions {
                if !any_read {
                    pruned.partitions += 1;
                    pruned.files += files;
                    pruned.bytes += bytes;
                }
            }
        }
    }
    Ok(pruned)
}

/// The listing tables scanned with a filter on their partition columns (once each).
fn filtered_partitioned_tables(
    logical: &LogicalPlan,
) -> Result<Vec<Arc<dyn datafusion::catalog::TableProvider>>> {
    let mut tables: Vec<(String, Arc<dyn datafusion::catalog::TableProvider>)> = Vec::new();
    logical.apply_with_subqueries(|node| {
        if let LogicalPlan::TableScan(scan) = node
            && let Ok(provider) = source_as_provider(&scan.source)
            && let Some(listing) = provider.downcast_ref::<ListingTable>()
        {
            let columns: Vec<&str> = listing
                .options()
                .table_partition_cols
                .iter()
                .map(|(name, _)| name.as_str())
                .collect();
            let prunes = !columns.is_empty()
                && scan
                    .filters
                    .iter()
                    .any(|f| expr_applicable_for_cols(&columns, f));
            let name = scan.table_name.to_string();
            if prunes && !tables.iter().any(|(n, _)| *n == name) {
                tables.push((name, provider));
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(tables.into_iter().map(|(_, t)| t).collect())
}

/// The (store, path) of every file the file scans of `plan` read.
fn files_read(plan: &Arc<dyn ExecutionPlan>, out: &mut HashSet<(String, String)>) {
    if let Some(scan) = plan.downcast_ref::<DataSourceExec>()
        && let Some(config) = scan.data_source().downcast_ref::<FileScanConfig>()
    {
        let store = config.object_store_url.to_string();
        for group in &config.file_groups {
            for file in group.files() {
                out.insert((store.clone(), file.object_meta.location.to_string()));
            }
        }
    }
    for child in plan.children() {
        files_read(child, out);
    }
}
