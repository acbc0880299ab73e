use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::prelude::SessionContext;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use super::*;
use crate::batch::InvalidPolicy;
use crate::error::Error;
use crate::personalize::{ColumnHints, DatasetType};
use crate::sink::Destination;
use crate::write::WriteSummary;

fn events(users: &[Option<&str>], first_item: i64) -> RecordBatch {
    let n = users.len() as i64;
    let items: ArrayRef = Arc::new(StringArray::from_iter_values(
        (first_item..first_item + n).map(|i| format!("item-{i}")),
    ));
    let times: ArrayRef = Arc::new(Int64Array::from_iter_values(
        (0..n).map(|i| 1_700_000_000 + i),
    ));
    RecordBatch::try_from_iter([
        (
            "user_id",
            Arc::new(StringArray::from(users.to_vec())) as ArrayRef,
        ),
        ("item_id", items),
        ("timestamp", times),
    ])
    .unwrap()
}

fn memory_destination() -> (Arc<InMemory>, Destination) {
    let store = Arc::new(InMemory::new());
    let dest = Destination {
        store: Arc::clone(&store) as Arc<dyn ObjectStore>,
        root: Path::from(""),
        display: "memory:/".to_string(),
        local_root: None,
    };
    (store, dest)
}

/// Executes a write node over `partitions` the way a run does; returns its summary and tally.
async fn write(
    partitions: Vec<Vec<RecordBatch>>,
    policy: InvalidPolicy,
    target: WriteTarget,
) -> Result<(WriteSummary, Tally)> {
    let schema = events(&[], 0).schema();
    let input = MemorySourceConfig::try_new_exec(&partitions, Arc::clone(&schema), None)?;
    let plan = Arc::new(ColumnPlan::new(
        &schema,
        DatasetType::Interactions,
        &ColumnHints::default(),
    )?);
    let options = BatchOptions {
        policy,
        insights: true,
    };
    let node = Arc::new(WriteExec::new(input, plan, options, target));
    let ctx = SessionContext::new().task_ctx();
    let mut tasks = tokio::task::JoinSet::new();
    for partition in 0..node.properties().output_partitioning().partition_count() {
        let stream = node.execute(partition, Arc::clone(&ctx))?;
        tasks.spawn(stream.collect::<Vec<_>>());
    }
    let mut summary = WriteSummary::default();
    while let Some(batches) = tasks.join_next().await {
        for batch in batches.expect("a write task") {
            summary.add(&batch?)?;
        }
    }
    Ok((summary, node.tally()))
}

fn stage(dest: &Destination, max_file_size: u64) -> WriteTarget {
    WriteTarget::Stage {
        dest: dest.clone(),
        data_dir: Path::from("staging/data"),
        side_dir: Path::from("staging"),
        max_file_size,
        allow_empty: false,
    }
}

async fn read(store: &InMemory, path: &str) -> String {
    let bytes = store.get(&Path::from(path)).await.unwrap().bytes().await;
    String::from_utf8(bytes.unwrap().to_vec()).unwrap()
}

#[tokio::test]
async fn every_partition_s_rows_land_in_numbered_parts_once() {
    let (store, dest) = memory_destination();
    let partitions = vec![
        vec![events(&[Some("a"); 40], 0), events(&[Some("b"); 40], 40)],
        vec![events(&[Some("c"); 40], 80)],
    ];
    // Small parts: rows of both partitions roll through the same numbering.
    let (summary, tally) = write(partitions, InvalidPolicy::Fail, stage(&dest, 1_000))
        .await
        .unwrap();
    assert_eq!(summary.partitions, 2);
    assert_eq!(summary.counts.written, 120);
    assert_eq!(tally.written, 120);
    assert!(summary.parts.len() > 2, "{:?}", summary.parts);
    let mut items = Vec::new();
    for (i, part) in summary.parts.iter().enumerate() {
        assert_eq!(part.name, format!("part-{i:05}.csv"));
        let text = read(&store, &format!("staging/data/{}", part.name)).await;
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("USER_ID,ITEM_ID,TIMESTAMP"));
        let rows: Vec<&str> = lines.collect();
        assert_eq!(rows.len() as u64, part.rows);
        assert_eq!(text.len() as u64, part.bytes);
        items.extend(
            rows.iter()
                .map(|r| r.split(',').nth(1).unwrap().to_string()),
        );
    }
    items.sort();
    let mut expected: Vec<String> = (0..120).map(|i| format!("item-{i}")).collect();
    expected.sort();
    assert_eq!(items, expected);
    assert!(!summary.rejects_file);
}

#[tokio::test]
async fn skipped_rows_go_to_the_rejects_file_and_are_counted() {
    let (store, dest) = memory_destination();
    let partitions = vec![
        vec![events(&[Some("a"), None, Some("b")], 0)],
        vec![events(&[None, Some("c")], 10)],
    ];
    let (summary, tally) = write(partitions, InvalidPolicy::Skip, stage(&dest, 1 << 20))
        .await
        .unwrap();
    assert_eq!(summary.counts.written, 3);
    assert_eq!(summary.counts.rejected, 2);
    assert_eq!(tally.rejected, 2);
    assert!(summary.rejects_file);
    let rejects = read(&store, "staging/rejects.csv").await;
    assert_eq!(rejects.lines().count(), 3, "{rejects}");
}

#[tokio::test]
async fn an_invalid_row_under_fail_is_pengine_s_data_error() {
    let (_store, dest) = memory_destination();
    let partitions = vec![vec![events(&[Some("a"), None], 0)]];
    let error = write(partitions, InvalidPolicy::Fail, stage(&dest, 1 << 20))
        .await
        .unwrap_err();
    // pengine's own error, not DataFusion's wrapping of it: its kind decides the exit code.
    assert!(matches!(error, Error::Data(_)), "{error:?}");
}

#[tokio::test]
async fn discarding_counts_without_writing() {
    let (store, _dest) = memory_destination();
    let partitions = vec![vec![events(&[Some("a"), Some("b")], 0)]];
    let (summary, tally) = write(partitions, InvalidPolicy::Fail, WriteTarget::Discard)
        .await
        .unwrap();
    assert_eq!((summary.counts.written, tally.written), (2, 2));
    assert!(summary.parts.is_empty());
    let listed = store.list(None).collect::<Vec<_>>().await;
    assert!(listed.is_empty());
}

#[tokio::test]
async fn a_query_without_partitions_still_completes_an_empty_dataset_on_purpose() {
    let (store, dest) = memory_destination();
    let target = WriteTarget::Stage {
        dest: dest.clone(),
        data_dir: Path::from("staging/data"),
        side_dir: Path::from("staging"),
        max_file_size: 1 << 20,
        allow_empty: true,
    };
    let (summary, tally) = write(Vec::new(), InvalidPolicy::Fail, target)
        .await
        .unwrap();
    assert_eq!((summary.partitions, tally.written), (1, 0));
    assert_eq!(summary.parts.len(), 1, "{:?}", summary.parts);
    let text = read(&store, "staging/data/part-00000.csv").await;
    assert_eq!(text, "USER_ID,ITEM_ID,TIMESTAMP\n");
}

/// A task context as Ballista's executors make them: the task's identity as its id.
fn cluster_task(task_id: &str) -> Arc<datafusion::execution::TaskContext> {
    let base = SessionContext::new().task_ctx();
    Arc::new(datafusion::execution::TaskContext::new(
        Some(task_id.to_string()),
        base.session_id(),
        base.session_config().clone(),
        Default::default(),
        Default::default(),
        Default::default(),
        Default::default(),
        base.runtime_env(),
    ))
}

#[tokio::test]
async fn each_partition_of_each_cluster_task_writes_files_of_its_own() {
    let (store, dest) = memory_destination();
    let partitions = vec![
        vec![events(&[Some("a"); 3], 0)],
        vec![events(&[Some("b"), None], 3)],
    ];
    let schema = events(&[], 0).schema();
    let input = MemorySourceConfig::try_new_exec(&partitions, Arc::clone(&schema), None).unwrap();
    let plan = Arc::new(
        ColumnPlan::new(&schema, DatasetType::Interactions, &ColumnHints::default()).unwrap(),
    );
    let options = BatchOptions {
        policy: InvalidPolicy::Skip,
        insights: true,
    };
    let node = WriteExec::per_task(input, plan, options, stage(&dest, 1 << 20));
    let marker = Path::from("staging").join(crate::sink::publish::CLUSTER_JOB_MARKER);
    store.put(&marker, Default::default()).await.unwrap();
    let mut summary = WriteSummary::default();
    // One task running both partitions (Ballista numbers a task's partitions from 0), then a
    // retry of the same task: three writers, three sets of files.
    for (task, partition) in [
        ("TID j/2.0/5.0", 0),
        ("TID j/2.0/5.0", 1),
        ("TID j/2.0/5.1", 1),
    ] {
        let stream = node.execute(partition, cluster_task(task)).unwrap();
        for batch in stream.collect::<Vec<_>>().await {
            summary.add(&batch.unwrap()).unwrap();
        }
    }
    let names: Vec<&str> = summary.parts.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "part-2.0-5.0-0-00000.csv",
            "part-2.0-5.0-1-00000.csv",
            "part-2.0-5.1-1-00000.csv"
        ]
    );
    summary.check_parts_hold_every_row().unwrap();
    assert_eq!(
        summary.rejects_files,
        ["rejects.2.0-5.0-1.csv", "rejects.2.0-5.1-1.csv"]
    );
    let tally = summary.tally.unwrap();
    assert_eq!((tally.written, tally.rejected), (3 + 1 + 1, 2));
    let rejects = read(&store, "staging/rejects.2.0-5.1-1.csv").await;
    assert_eq!(rejects.lines().count(), 2, "{rejects}");
    // A task attempt that runs after its job closed (one taken for lost) completes no file: no
    // part, no rejects file (partition 1 rejects a row).
    store.delete(&marker).await.unwrap();
    let late = node.execute(1, cluster_task("TID j/2.0/5.2")).unwrap();
    let err = late.collect::<Vec<_>>().await.remove(0).unwrap_err();
    assert!(err.to_string().contains("has ended"), "{err}");
    let listed: Vec<_> = store
        .list(None)
        .map(|o| o.unwrap().location.to_string())
        .collect()
        .await;
    assert!(
        !listed.iter().any(|name| name.contains("5.2")),
        "{listed:?}"
    );
    // Outside a cluster task there is no identity to name the files by.
    let err = node
        .execute(0, SessionContext::new().task_ctx())
        .err()
        .expect("refused");
    assert!(err.to_string().contains("outside a cluster task"), "{err}");
}

#[test]
fn task_tags_come_from_ballista_s_task_identity() {
    assert_eq!(
        super::task_tag("TID 3AbC/4.1/17.2", 3).as_deref(),
        Some("4.1-17.2-3")
    );
    assert_eq!(super::task_tag("TID 3AbC/4.1/../x", 0), None);
    assert_eq!(super::task_tag("task 7", 0), None);
    assert_eq!(super::task_tag("TID a/1.0/2.0/3", 0), None);
}
