//! The distinct operator against DataFusion's own aggregation: same rows, whatever the memory.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, StringArray, StringViewArray,
    TimestampSecondArray,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::arrow::util::pretty::pretty_format_batches;
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::MemTable;
use datafusion::execution::memory_pool::FairSpillPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::session_state::SessionStateBuilder;
use datafusion::physical_plan::collect;
use datafusion::prelude::{SessionConfig, SessionContext};

use super::DistinctRule;

/// Rows with many duplicates (each distinct row about 3 times, scattered), nulls in every column,
/// floats with -0.0 and 0.0 and NaN, text with multi-byte characters.
fn batches(rows: usize) -> Vec<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("user", DataType::Int64, true),
        Field::new("item", DataType::Utf8, true),
        Field::new("kind", DataType::Utf8View, true),
        Field::new("value", DataType::Float64, true),
        Field::new("at", DataType::Timestamp(TimeUnit::Second, None), true),
        Field::new("flag", DataType::Boolean, true),
    ]));
    let key = |i: usize| (i * 7919) % (rows / 3 + 1);
    let mut out = Vec::new();
    for chunk in (0..rows).collect::<Vec<_>>().chunks(1000) {
        let k: Vec<usize> = chunk.iter().map(|&i| key(i)).collect();
        let columns: Vec<ArrayRef> = vec![
            Arc::new(Int64Array::from_iter(
                k.iter()
                    .map(|&k| (k % 11 != 0).then_some((k % 5000) as i64)),
            )),
            Arc::new(StringArray::from_iter(k.iter().map(|&k| {
                (k % 13 != 0).then(|| format!("sku-{}-ünï-{}", k % 997, "x".repeat(k % 40)))
            }))),
            Arc::new(StringViewArray::from_iter(k.iter().map(|&k| {
                (k % 17 != 0).then(|| ["view", "click", "buy"][k % 3])
            }))),
            Arc::new(Float64Array::from_iter(k.iter().map(|&k| match k % 7 {
                0 => None,
                1 => Some(-0.0),
                2 => Some(0.0),
                3 => Some(f64::NAN),
                _ => Some((k % 100) as f64 / 4.0),
            }))),
            Arc::new(TimestampSecondArray::from_iter(
                k.iter()
                    .map(|&k| (k % 19 != 0).then_some(1_700_000_000 + k as i64)),
            )),
            Arc::new(BooleanArray::from_iter(
                k.iter().map(|&k| (k % 23 != 0).then_some(k % 2 == 0)),
            )),
        ];
        out.push(RecordBatch::try_new(schema.clone(), columns).unwrap());
    }
    out
}

fn context(with_rule: bool, memory: Option<usize>, partitions: usize) -> SessionContext {
    let mut runtime = RuntimeEnvBuilder::new();
    if let Some(bytes) = memory {
        runtime = runtime.with_memory_pool(Arc::new(FairSpillPool::new(bytes)));
    }
    let mut state = SessionStateBuilder::new()
        .with_config(
            SessionConfig::new()
                .with_target_partitions(partitions)
                .with_batch_size(777),
        )
        .with_runtime_env(runtime.build_arc().unwrap())
        .with_default_features();
    if with_rule {
        state = state.with_physical_optimizer_rule(Arc::new(DistinctRule));
    }
    SessionContext::new_with_state(state.build())
}

/// What a query gave: its rows, sorted, as text; whether the plan used the distinct operator, and
/// how many rows that operator wrote to spill files.
struct Outcome {
    rows: Vec<String>,
    used: bool,
    spilled_rows: usize,
}

async fn run(ctx: &SessionContext, data: &[RecordBatch], sql: &str) -> Outcome {
    let table = MemTable::try_new(data[0].schema(), vec![data.to_vec()]).unwrap();
    ctx.register_table("t", Arc::new(table)).unwrap();
    let plan = ctx
        .sql(sql)
        .await
        .unwrap()
        .create_physical_plan()
        .await
        .unwrap();
    let results = collect(Arc::clone(&plan), ctx.task_ctx()).await.unwrap();
    let mut distinct = None;
    plan.apply(|node| {
        if node.name() == "DistinctExec" {
            distinct = node.metrics();
        }
        Ok(TreeNodeRecursion::Continue)
    })
    .unwrap();
    let text = pretty_format_batches(&results).unwrap().to_string();
    let mut rows: Vec<String> = text
        .lines()
        .filter(|l| l.starts_with('|'))
        .skip(1)
        .map(str::to_string)
        .collect();
    rows.sort();
    Outcome {
        rows,
        used: distinct.is_some(),
        spilled_rows: distinct.and_then(|m| m.spilled_rows()).unwrap_or(0),
    }
}

/// Runs `sql` with and without the distinct operator and checks both give the same rows;
/// returns the rows the operator spilled.
async fn same_as_datafusion(
    sql: &str,
    rows: usize,
    memory: Option<usize>,
    partitions: usize,
) -> usize {
    let data = batches(rows);
    let expected = run(&context(false, None, partitions), &data, sql)
        .await
        .rows;
    let Outcome {
        rows: actual,
        used,
        spilled_rows,
    } = run(&context(true, memory, partitions), &data, sql).await;
    assert!(used, "{sql}: the plan does not use DistinctExec");
    let missing: Vec<&String> = expected
        .iter()
        .filter(|r| !actual.contains(r))
        .take(5)
        .collect();
    let extra: Vec<&String> = actual
        .iter()
        .filter(|r| !expected.contains(r))
        .take(5)
        .collect();
    assert!(
        actual == expected,
        "{sql} with memory {memory:?}, {partitions} partitions: {} rows, DataFusion {}; \
         missing {missing:#?}, extra {extra:#?}",
        actual.len(),
        expected.len()
    );
    spilled_rows
}

#[tokio::test]
async fn distinct_rows_equal_datafusions_in_memory() {
    for partitions in [1, 3] {
        let spilled =
            same_as_datafusion("SELECT DISTINCT * FROM t", 30_000, None, partitions).await;
        assert_eq!(spilled, 0);
    }
}

#[tokio::test]
async fn distinct_rows_equal_datafusions_when_spilling_at_every_level() {
    // 64 KiB: every slice goes to disk and is cut again down to the last level; 2 MiB: some
    // slices stay in memory, the spilled ones settle at the next level.
    for memory in [64 * 1024, 2 * 1024 * 1024] {
        for partitions in [1, 2] {
            let spilled =
                same_as_datafusion("SELECT DISTINCT * FROM t", 60_000, Some(memory), partitions)
                    .await;
            // 20,001 distinct rows: at 64 KiB nearly all of them go to disk.
            assert!(
                spilled > 0,
                "{memory} bytes, {partitions} partitions: nothing spilled"
            );
        }
    }
}

#[tokio::test]
async fn group_by_every_column_and_union_are_distinct_too() {
    same_as_datafusion(
        "SELECT item, kind FROM t GROUP BY item, kind",
        20_000,
        Some(256 * 1024),
        2,
    )
    .await;
    same_as_datafusion(
        "SELECT user, kind FROM t WHERE user < 100 UNION SELECT user, kind FROM t WHERE user > 4000",
        20_000,
        Some(256 * 1024),
        2,
    )
    .await;
    same_as_datafusion(
        "SELECT DISTINCT upper(kind) AS k, at FROM t",
        20_000,
        None,
        2,
    )
    .await;
}

#[tokio::test]
async fn aggregations_that_compute_something_keep_datafusions_plan() {
    let data = batches(3_000);
    for sql in [
        "SELECT kind, count(*) FROM t GROUP BY kind",
        "SELECT DISTINCT kind FROM t LIMIT 2",
    ] {
        let expected = run(&context(false, None, 2), &data, sql).await;
        let actual = run(&context(true, None, 2), &data, sql).await;
        assert!(!actual.used, "{sql} should keep DataFusion's aggregation");
        if !sql.contains("LIMIT") {
            assert_eq!(actual.rows, expected.rows, "{sql}");
        }
    }
}

#[tokio::test]
async fn other_column_types_compact_or_in_arrows_row_format() {
    // Dates, 32-bit ints and floats, large and binary text: the compact encoding.
    same_as_datafusion(
        "SELECT DISTINCT CAST(at AS DATE) AS day, CAST(user AS INT) AS i, \
         arrow_cast(item, 'LargeUtf8') AS li, arrow_cast(item, 'BinaryView') AS bv, \
         arrow_cast(item, 'Binary') AS b, arrow_cast(value, 'Float32') AS f, flag FROM t",
        20_000,
        Some(256 * 1024),
        2,
    )
    .await;
    // A decimal: Arrow's row format for the whole row.
    same_as_datafusion(
        "SELECT DISTINCT CAST(user AS DECIMAL(12, 2)) AS d, kind FROM t",
        20_000,
        Some(256 * 1024),
        2,
    )
    .await;
}
