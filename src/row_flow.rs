//! Where the rows of a query went, measured: rows the source scans produced, and the rows each
//! operator of the executed plan removed (a WHERE, a JOIN, a DISTINCT or GROUP BY, a LIMIT), from
//! DataFusion's own counters. `filtered_by_sql` is their sum, not a remainder, so the documented
//! identity `read_from_sources = written + rejected + filtered_by_sql` holds only when the rows
//! the plan produced are the rows pengine's writer counted; a run where they differ has lost or
//! invented rows and is not published. A leaf whose rows DataFusion does not count (rows given in
//! the query with VALUES or an in-memory table) leaves the flow unmeasured: the counts are then the
//! remainder, as the report says.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::physical_plan::metrics::MetricValue;
use datafusion::physical_plan::{ExecutionPlan, ExecutionPlanProperties};

/// The counter a source's scan node keeps when DataFusion's leaf below it counts nothing (a
/// database's scan): the rows it read from the source. The node is the source for the flow.
pub const SOURCE_ROWS: &str = "rows_read_from_source";

/// The rows a node says it read from a source, when it is a source's scan.
fn source_rows(plan: &Arc<dyn ExecutionPlan>) -> Option<u64> {
    let metrics = plan.metrics()?;
    let counts = metrics.iter().filter_map(|m| match m.value() {
        MetricValue::Count { name, count } if name.as_ref() == SOURCE_ROWS => Some(count.value()),
        _ => None,
    });
    counts.map(|n| n as u64).reduce(|a, b| a + b)
}

/// What an executed plan did to its rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowFlow {
    /// Rows the leaves (source scans) produced.
    pub read: u64,
    /// Rows the plan produced (its root's output).
    pub produced: u64,
    /// Rows removed, by the kind of operator that removed them.
    pub removed_by: BTreeMap<&'static str, u64>,
    /// Rows added, by the kind of operator that made more rows than it was given (a join that
    /// matches a row more than once, an UNNEST).
    pub added_by: BTreeMap<&'static str, u64>,
    /// Leaves whose rows are not counted (their operator names): then `read` misses their rows.
    pub unmeasured: Vec<String>,
    /// What scans skipped without reading, by what was skipped: Parquet files, row groups and
    /// the rows of pages their statistics ruled out (a WHERE on a column with statistics); the
    /// run adds the partitions a filter ruled out (crate::partition_pruning).
    pub pruned: BTreeMap<&'static str, u64>,
}

impl RowFlow {
    /// Whether every leaf's rows were counted.
    pub fn is_measured(&self) -> bool {
        self.unmeasured.is_empty()
    }
}

/// Counts the rows through an executed `plan` from its nodes' `output_rows` metrics. A node
/// without that metric passes its input through unchanged (repartitions, projections, sorts).
pub fn measure(plan: &Arc<dyn ExecutionPlan>) -> RowFlow {
    let mut flow = RowFlow::default();
    flow.produced = visit(plan, &mut flow);
    flow
}

fn visit(plan: &Arc<dyn ExecutionPlan>, flow: &mut RowFlow) -> u64 {
    let output = plan
        .metrics()
        .and_then(|m| m.output_rows())
        .map(|n| n as u64);
    if let Some(rows) = source_rows(plan) {
        flow.read += rows;
        return rows;
    }
    let children = plan.children();
    if children.is_empty() {
        note_pruning(plan, flow);
        let rows = match (output, plan.name()) {
            (Some(rows), _) => rows,
            (None, "EmptyExec") => 0,
            // `SELECT 1`: one row per partition.
            (None, "PlaceholderRowExec") => plan.output_partitioning().partition_count() as u64,
            (None, name) => {
                flow.unmeasured.push(name.to_string());
                0
            }
        };
        flow.read += rows;
        return rows;
    }
    let input: u64 = children.into_iter().map(|c| visit(c, flow)).sum();
    let Some(output) = output else {
        return input;
    };
    if input > output {
        *flow.removed_by.entry(kind(plan.name())).or_default() += input - output;
    } else if output > input {
        *flow.added_by.entry(kind(plan.name())).or_default() += output - input;
    }
    output
}

/// Adds what a scan pruned (DataFusion's Parquet metrics) to `flow.pruned`. Rows a pushed-down
/// filter dropped inside the scan were read and removed: they count as read and removed by
/// `where`, as they would have been above the scan.
fn note_pruning(plan: &Arc<dyn ExecutionPlan>, flow: &mut RowFlow) {
    use datafusion::physical_plan::metrics::MetricValue;
    let Some(metrics) = plan.metrics() else {
        return;
    };
    for metric in metrics.iter() {
        match metric.value() {
            MetricValue::PruningMetrics {
                name,
                pruning_metrics,
            } => {
                let kind = match name.as_ref() {
                    "files_ranges_pruned_statistics" => "parquet_files",
                    "row_groups_pruned_statistics"
                    | "row_groups_pruned_bloom_filter"
                    | "limit_pruned_row_groups" => "parquet_row_groups",
                    "page_index_rows_pruned" => "parquet_page_rows",
                    _ => continue,
                };
                let pruned = pruning_metrics.pruned() as u64;
                if pruned > 0 {
                    *flow.pruned.entry(kind).or_default() += pruned;
                }
            }
            MetricValue::Count { name, count } if name == "pushdown_rows_pruned" => {
                let rows = count.value() as u64;
                flow.read += rows;
                if rows > 0 {
                    *flow.removed_by.entry("where").or_default() += rows;
                }
            }
            _ => {}
        }
    }
}

/// One operator of a plan that ran elsewhere (a cluster's stage), as its metrics were reported.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReportedOperator {
    pub name: String,
    /// How the operator describes itself (a stage input names the stage it reads).
    pub desc: String,
    pub output_rows: Option<u64>,
    /// Named counters (such as [`SOURCE_ROWS`] and `pushdown_rows_pruned`).
    pub counts: Vec<(String, u64)>,
    pub children: Vec<ReportedOperator>,
}

/// Operators that hand on the rows another stage of a cluster's job wrote: they read nothing
/// from a source.
const STAGE_INPUTS: [&str; 3] = [
    "ShuffleReaderExec",
    "UnresolvedShuffleExec",
    "RangeShuffleReaderExec",
];

/// Counts the rows through the stages of a cluster's job (stage id, root operator), as
/// [`measure`] does through a plan run here: each stage's source scans are read, its operators'
/// removals and additions add up, and a stage's inputs (rows other stages wrote) are neither.
/// `produced` is the rows into the node named `sink` (the write stage).
///
/// A broadcast input is read whole by every task of its stage (a join's build side): it counts
/// as the rows its stage wrote, once, as the build side of a join run here counts once.
pub fn measure_stages(stages: &[(u32, ReportedOperator)], sink: &str) -> RowFlow {
    let written: BTreeMap<u32, u64> = stages
        .iter()
        .filter_map(|(id, root)| Some((*id, root.output_rows?)))
        .collect();
    let mut flow = RowFlow::default();
    for (_, root) in stages {
        visit_reported(root, sink, &written, &mut flow);
    }
    flow
}

/// Rows out of a reported operator: query rows, or what the write stage returned (summaries),
/// which the operators above it only pass on.
enum Out {
    Rows(u64),
    AboveSink,
}

/// For a broadcast stage input: the stage it reads.
fn broadcast_of(desc: &str) -> Option<u32> {
    if !desc.contains("broadcast: true") {
        return None;
    }
    let after = desc.split("upstream_stage: ").nth(1)?;
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

fn visit_reported(
    node: &ReportedOperator,
    sink: &str,
    written: &BTreeMap<u32, u64>,
    flow: &mut RowFlow,
) -> Out {
    let count = |name: &str| {
        node.counts
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| *v)
            .reduce(|a, b| a + b)
    };
    if let Some(rows) = count(SOURCE_ROWS) {
        flow.read += rows;
        return Out::Rows(rows);
    }
    if node.children.is_empty() {
        if STAGE_INPUTS.contains(&node.name.as_str()) {
            let once = broadcast_of(&node.desc).and_then(|stage| written.get(&stage));
            return Out::Rows(once.copied().or(node.output_rows).unwrap_or(0));
        }
        if let Some(rows) = count("pushdown_rows_pruned").filter(|r| *r > 0) {
            flow.read += rows;
            *flow.removed_by.entry("where").or_default() += rows;
        }
        let rows = match (node.output_rows, node.name.as_str()) {
            (Some(rows), _) => rows,
            (None, "EmptyExec") => 0,
            (None, name) => {
                flow.unmeasured.push(name.to_string());
                0
            }
        };
        flow.read += rows;
        return Out::Rows(rows);
    }
    let mut input = 0;
    let mut above_sink = false;
    for child in &node.children {
        match visit_reported(child, sink, written, flow) {
            Out::Rows(rows) => input += rows,
            Out::AboveSink => above_sink = true,
        }
    }
    if node.name == sink {
        flow.produced += input;
        return Out::AboveSink;
    }
    if above_sink {
        return Out::AboveSink;
    }
    let Some(output) = node.output_rows else {
        return Out::Rows(input);
    };
    if input > output {
        *flow.removed_by.entry(kind(&node.name)).or_default() += input - output;
    } else if output > input {
        *flow.added_by.entry(kind(&node.name)).or_default() += output - input;
    }
    Out::Rows(output)
}

/// The report's name for what an operator does to rows.
fn kind(operator: &str) -> &'static str {
    let operator = operator.to_ascii_lowercase();
    if operator.contains("filter") {
        "where"
    } else if operator.contains("join") {
        "join"
    } else if operator.contains("distinct") || operator.contains("aggregate") {
        "distinct_or_group_by"
    } else if operator.contains("limit") {
        "limit"
    } else if operator.contains("unnest") {
        "unnest"
    } else {
        "other"
    }
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::*;

    use super::*;

    async fn flow_of(sql: &str) -> (RowFlow, u64) {
        let dir = tempfile::tempdir().unwrap();
        let t = dir.path().join("t.csv");
        std::fs::write(&t, "id,name\n1,a\n2,b\n2,b\n3,c\n4,d\n5,e\n").unwrap();
        let l = dir.path().join("l.csv");
        std::fs::write(&l, "id,x\n1,x\n2,y\n").unwrap();
        let d = dir.path().join("d.csv");
        std::fs::write(&d, "id\n2\n2\n2\n").unwrap();
        let ctx = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(2));
        ctx.register_csv("t", t.to_str().unwrap(), CsvReadOptions::new())
            .await
            .unwrap();
        ctx.register_csv("l", l.to_str().unwrap(), CsvReadOptions::new())
            .await
            .unwrap();
        ctx.register_csv("d", d.to_str().unwrap(), CsvReadOptions::new())
            .await
            .unwrap();
        measured(&ctx, sql).await
    }

    /// Runs `sql` and measures its plan: (flow, rows produced).
    async fn measured(ctx: &SessionContext, sql: &str) -> (RowFlow, u64) {
        let plan = ctx
            .sql(sql)
            .await
            .unwrap()
            .create_physical_plan()
            .await
            .unwrap();
        let batches = datafusion::physical_plan::collect(Arc::clone(&plan), ctx.task_ctx())
            .await
            .unwrap();
        let rows = batches.iter().map(|b| b.num_rows() as u64).sum();
        (measure(&plan), rows)
    }

    #[tokio::test]
    async fn every_removed_row_is_counted_where_it_was_removed() {
        let (flow, rows) = flow_of("SELECT * FROM t WHERE id > 1").await;
        assert_eq!((flow.read, flow.produced, rows), (6, 5, 5));
        assert_eq!(flow.removed_by, BTreeMap::from([("where", 1)]));

        let (flow, rows) = flow_of("SELECT DISTINCT * FROM t").await;
        assert_eq!((flow.read, flow.produced, rows), (6, 5, 5));
        assert_eq!(flow.removed_by.values().sum::<u64>(), 1);

        let (flow, rows) = flow_of("SELECT t.name FROM t JOIN l ON t.id = l.id").await;
        assert_eq!((flow.read, flow.produced, rows), (8, 3, 3));
        assert_eq!(flow.removed_by.values().sum::<u64>(), 5);
        assert!(flow.removed_by.contains_key("join"), "{flow:?}");

        // Two rows matched three times each: 5 rows in, 6 out.
        let (flow, rows) =
            flow_of("SELECT t.name FROM t JOIN d ON t.id = d.id WHERE t.id = 2").await;
        assert_eq!(rows, 6);
        assert_eq!(flow.added_by, BTreeMap::from([("join", 1)]), "{flow:?}");

        let (flow, rows) = flow_of("SELECT * FROM t LIMIT 2").await;
        assert_eq!((flow.produced, rows), (2, 2));
        // The limit goes into the scan, which then stops reading: what it did read is counted.
        let removed: u64 = flow.removed_by.values().sum();
        assert_eq!(flow.read - removed, 2, "{flow:?}");
        assert!(flow.is_measured());
    }

    #[tokio::test]
    async fn pruned_parquet_row_groups_are_reported() {
        use datafusion::arrow::array::Int64Array;
        use datafusion::arrow::datatypes::{DataType, Field, Schema};
        use datafusion::arrow::record_batch::RecordBatch;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.parquet");
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let props = parquet::file::properties::WriterProperties::builder()
            .set_max_row_group_row_count(Some(100))
            .build();
        let file = std::fs::File::create(&path).unwrap();
        let mut writer =
            parquet::arrow::ArrowWriter::try_new(file, Arc::clone(&schema), Some(props)).unwrap();
        let ids = Int64Array::from_iter_values(0..200);
        writer
            .write(&RecordBatch::try_new(schema, vec![Arc::new(ids)]).unwrap())
            .unwrap();
        writer.close().unwrap();
        let ctx = SessionContext::new();
        ctx.register_parquet("p", path.to_str().unwrap(), ParquetReadOptions::default())
            .await
            .unwrap();
        let (flow, rows) = measured(&ctx, "SELECT id FROM p WHERE id >= 150").await;
        assert_eq!(rows, 50);
        assert_eq!(flow.pruned.get("parquet_row_groups"), Some(&1), "{flow:?}");
        assert_eq!(
            flow.read - flow.removed_by.values().sum::<u64>(),
            50,
            "{flow:?}"
        );
    }

    #[tokio::test]
    async fn rows_of_the_query_itself_are_counted_or_said_to_be_unmeasured() {
        let (flow, rows) = flow_of("SELECT 1 AS one").await;
        assert_eq!((flow.read, flow.produced, rows), (1, 1, 1));
        assert!(flow.is_measured());
        let (flow, _) = flow_of("SELECT * FROM (VALUES (1), (2)) AS v(x)").await;
        assert!(!flow.is_measured(), "{flow:?}");
    }

    fn op(name: &str, rows: Option<u64>, children: Vec<ReportedOperator>) -> ReportedOperator {
        ReportedOperator {
            name: name.into(),
            desc: String::new(),
            output_rows: rows,
            counts: Vec::new(),
            children,
        }
    }

    #[test]
    fn a_cluster_job_s_stages_add_up_like_one_plan() {
        let scan = op("DataSourceExec", Some(12), vec![]);
        let first = op(
            "ShuffleWriterExec",
            Some(10),
            vec![op("FilterExec", Some(10), vec![scan])],
        );
        let catalog = op(
            "ShuffleWriterExec",
            Some(4),
            vec![op("DataSourceExec", Some(4), vec![])],
        );
        let reader = op("ShuffleReaderExec", Some(10), vec![]);
        // Three tasks each read the whole catalog (4 rows) for their share of the join.
        let build = ReportedOperator {
            desc:
                "ShuffleReaderExec: upstream_stage: 2, broadcast: true, upstream_partition_count: 1"
                    .into(),
            ..op("ShuffleReaderExec", Some(12), vec![])
        };
        let join = op("HashJoinExec", Some(9), vec![build, reader]);
        let distinct = op("DistinctExec", Some(8), vec![join]);
        let last = op(
            "ShuffleWriterExec",
            Some(3),
            vec![op(
                "WriteExec",
                Some(3),
                vec![op("ProjectionExec", None, vec![distinct])],
            )],
        );
        let flow = measure_stages(&[(1, first), (2, catalog), (3, last)], "WriteExec");
        assert_eq!((flow.read, flow.produced), (12 + 4, 8));
        assert_eq!(flow.removed_by.get("where"), Some(&2));
        assert_eq!(flow.removed_by.get("join"), Some(&(10 + 4 - 9)));
        assert_eq!(flow.removed_by.get("distinct_or_group_by"), Some(&1));
        assert!(flow.added_by.is_empty() && flow.is_measured(), "{flow:?}");
        // A leaf that counts nothing leaves the flow unmeasured.
        let flow = measure_stages(&[(1, op("MemoryExec", None, vec![]))], "WriteExec");
        assert!(!flow.is_measured());
    }
}
