//! The fast path against arrow's parser, value by value and as an expression in a plan.

use std::sync::Arc;

use datafusion::arrow::array::{Array, StringArray, StringViewArray, TimestampNanosecondArray};
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::physical_expr::expressions::col;

use super::*;
use crate::test_random::Random;

/// Timestamps in and around the ISO form: valid ones over the whole range, and every kind of
/// near miss (bad fields, leap seconds, offsets, long fractions, other separators).
fn candidate(r: &mut Random) -> String {
    let year = match r.below(7) {
        0 => r.below(10_000),
        1 => 1677 + r.below(2),
        2 => 2262 + r.below(2),
        3 => [1600, 1700, 1900, 2000, 2100, 2400][r.below(6)],
        _ => 1900 + r.below(200),
    };
    let month = if r.below(10) == 0 {
        r.below(14)
    } else {
        1 + r.below(12)
    };
    let day = if r.below(5) == 0 {
        r.below(33)
    } else {
        1 + r.below(28)
    };
    let mut s = format!("{year:04}-{month:02}-{day:02}");
    if r.below(8) == 0 {
        return s;
    }
    s.push(
        *[b'T', b't', b' ', b'x', b'T', b'T']
            .get(r.below(6))
            .unwrap() as char,
    );
    let hour = if r.below(10) == 0 {
        20 + r.below(6)
    } else {
        r.below(24)
    };
    let minute = if r.below(10) == 0 {
        55 + r.below(6)
    } else {
        r.below(60)
    };
    let second = if r.below(10) == 0 {
        58 + r.below(3)
    } else {
        r.below(60)
    };
    match r.below(10) {
        0 => s.push_str(&format!("{hour:02}{minute:02}{second:02}")),
        1 => s.push_str(&format!("{hour:02}:{minute:02}")),
        _ => s.push_str(&format!("{hour:02}:{minute:02}:{second:02}")),
    }
    if r.below(2) == 0 {
        s.push('.');
        for _ in 0..r.below(13) {
            s.push(char::from(b"0123456789"[r.below(10)]));
        }
    }
    let tail = [
        "", "", "Z", "z", "+02:00", "-05:30", " +01", "ZZ", "Z ", "x", "+0100",
    ];
    s.push_str(tail[r.below(tail.len())]);
    if r.below(20) == 0 {
        // A byte changed anywhere.
        let mut bytes = s.into_bytes();
        let at = r.below(bytes.len());
        bytes[at] = b"0123456789-:.TZ /a"[r.below(18)];
        s = String::from_utf8(bytes).unwrap();
    }
    s
}

#[test]
fn fast_values_equal_arrows_and_the_rest_is_left_to_it() {
    let mut r = Random(0x9e37_79b9_7f4a_7c15);
    let mut fast = 0;
    // One LastDate for all, as over a column: a value whose date bytes equal the previous one's
    // takes the remembered day.
    let mut last = LastDate::default();
    for _ in 0..200_000 {
        let text = candidate(&mut r);
        let nanos = parse_iso_nanos(&text, &mut last);
        assert_eq!(
            nanos,
            parse_iso_nanos(&text, &mut LastDate::default()),
            "{text}"
        );
        if let Some(nanos) = nanos {
            assert_eq!(Some(nanos), arrow_nanos(&text), "{text}");
            fast += 1;
        }
    }
    assert!(fast > 20_000, "{fast}");
    for text in [
        "2024-03-23T23:33:39.816Z",
        "2024-02-29 00:00:00",
        "2000-02-29",
        "1970-01-01",
        "1969-12-31T23:59:59.5",
        "1677-09-21T00:12:44",
        "2262-04-11T23:47:16.854775807",
    ] {
        let nanos = parse_iso_nanos(text, &mut LastDate::default());
        assert_eq!(nanos, arrow_nanos(text), "{text}");
        assert!(nanos.is_some(), "{text}");
    }
    for text in [
        "2023-02-29",
        "2024-01-01T24:00:00",
        "2024-06-30T23:59:60Z",
        "2024-01-01T10:00",
    ] {
        assert_eq!(
            parse_iso_nanos(text, &mut LastDate::default()),
            None,
            "{text}"
        );
    }
}

/// Values sharing a date, with a bad one between them, read as each would alone.
#[test]
fn a_remembered_date_gives_the_same_values() {
    let column = [
        "\0\0\0\0\0\0\0\0\0\0",
        "2024-03-01T10:00:00Z",
        "2024-03-01T23:59:59.999Z",
        "2024-03-01",
        "2024-03-01T24:00:00",
        "2024-03-01X",
        "2024-03-02T00:00:00",
        "2024-02-30T00:00:00",
        "2024-02-30T00:00:00",
        "2024-03-01T00:00:01",
        "2024-03-01 00:00:01",
        "2024-03-0",
    ];
    let mut last = LastDate::default();
    for text in column {
        assert_eq!(
            parse_iso_nanos(text, &mut last),
            parse_iso_nanos(text, &mut LastDate::default()),
            "{text}"
        );
    }
    assert_eq!(
        parse_iso_nanos("2024-03-01T00:00:01", &mut last),
        Some(1_709_251_201_000_000_000)
    );
    // Nothing is remembered before the first date: ten NUL bytes are no date.
    assert_eq!(
        parse_iso_nanos("\0\0\0\0\0\0\0\0\0\0", &mut LastDate::default()),
        None
    );
}

fn schema() -> Arc<Schema> {
    Arc::new(Schema::new(vec![
        Field::new("view", DataType::Utf8View, true),
        Field::new("utf8", DataType::Utf8, true),
    ]))
}

fn batch(values: &[Option<&str>]) -> RecordBatch {
    RecordBatch::try_new(
        schema(),
        vec![
            Arc::new(StringViewArray::from(values.to_vec())),
            Arc::new(StringArray::from(values.to_vec())),
        ],
    )
    .unwrap()
}

fn evaluate(expr: &Arc<dyn PhysicalExpr>, batch: &RecordBatch) -> Result<ArrayRef> {
    expr.evaluate(batch)?.into_array(batch.num_rows())
}

#[test]
fn the_fast_cast_gives_the_original_casts_results_and_errors() {
    let schema = schema();
    let to = DataType::Timestamp(TimeUnit::Nanosecond, None);
    let mut r = Random(7);
    let texts: Vec<String> = (0..2000).map(|_| candidate(&mut r)).collect();
    let mut values: Vec<Option<&str>> = texts.iter().map(|t| Some(t.as_str())).collect();
    values[3] = None;
    let mixed = batch(&values);
    let clean = batch(&[
        Some("2024-03-23T23:33:39.816Z"),
        None,
        Some("2024-03-23 01:02:03"),
    ]);
    for column in ["view", "utf8"] {
        let input = col(column, &schema).unwrap();
        let originals: [Arc<dyn PhysicalExpr>; 2] = [
            Arc::new(TryCastExpr::new(Arc::clone(&input), to.clone())),
            Arc::new(CastExpr::new(Arc::clone(&input), to.clone(), None)),
        ];
        for original in originals {
            let fast: Arc<dyn PhysicalExpr> = Arc::new(
                IsoTimestampCast::replacing(&original, &schema)
                    .unwrap()
                    .expect("a text to timestamp cast"),
            );
            assert_eq!(fast.to_string(), original.to_string());
            for batch in [&mixed, &clean] {
                match (evaluate(&original, batch), evaluate(&fast, batch)) {
                    (Ok(a), Ok(b)) => {
                        assert_eq!(a.as_ref(), b.as_ref(), "{original}");
                        let b = b
                            .as_any()
                            .downcast_ref::<TimestampNanosecondArray>()
                            .unwrap();
                        assert!(b.null_count() < b.len());
                    }
                    (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                    (a, b) => panic!("{original}: {a:?} against {b:?}"),
                }
            }
        }
    }
}

#[test]
fn only_text_to_nanosecond_casts_are_replaced() {
    let schema = Arc::new(Schema::new(vec![
        Field::new("n", DataType::Int64, true),
        Field::new("s", DataType::Utf8, true),
    ]));
    let n = col("n", &schema).unwrap();
    let s = col("s", &schema).unwrap();
    let ns = DataType::Timestamp(TimeUnit::Nanosecond, None);
    for (expr, replaced) in [
        (
            Arc::new(TryCastExpr::new(Arc::clone(&n), ns.clone())) as Arc<dyn PhysicalExpr>,
            false,
        ),
        (
            Arc::new(TryCastExpr::new(
                Arc::clone(&s),
                DataType::Timestamp(TimeUnit::Millisecond, None),
            )),
            false,
        ),
        (
            Arc::new(TryCastExpr::new(
                Arc::clone(&s),
                DataType::Timestamp(TimeUnit::Nanosecond, Some("+02:00".into())),
            )),
            false,
        ),
        (Arc::new(TryCastExpr::new(Arc::clone(&s), ns.clone())), true),
    ] {
        let got = IsoTimestampCast::replacing(&expr, &schema).unwrap();
        assert_eq!(got.is_some(), replaced, "{expr}");
    }
}

#[tokio::test]
async fn the_rule_puts_the_fast_cast_in_filters_and_projections() {
    let stores = Arc::new(crate::store::StoreRegistry::new());
    let ctx =
        crate::engine::session(&crate::engine::EngineOptions::default(), stores, "test").unwrap();
    ctx.sql("CREATE TABLE t (ts VARCHAR) AS VALUES ('2024-01-02T03:04:05.678Z'), ('bad'), (NULL)")
        .await
        .unwrap();
    let df = ctx
        .sql(
            "SELECT date_trunc('second', TRY_CAST(ts AS TIMESTAMP)) AS t FROM t \
             WHERE TRY_CAST(ts AS TIMESTAMP) IS NOT NULL",
        )
        .await
        .unwrap();
    let plan = df.clone().create_physical_plan().await.unwrap();
    let mut found = 0;
    plan.apply(|node| {
        let exprs: Vec<Arc<dyn PhysicalExpr>> =
            if let Some(filter) = node.downcast_ref::<FilterExec>() {
                vec![Arc::clone(filter.predicate())]
            } else if let Some(projection) = node.downcast_ref::<ProjectionExec>() {
                projection
                    .expr()
                    .iter()
                    .map(|p| Arc::clone(&p.expr))
                    .collect()
            } else {
                vec![]
            };
        for expr in exprs {
            expr.apply(|e| {
                found += usize::from(e.downcast_ref::<IsoTimestampCast>().is_some());
                Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
            })?;
        }
        Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
    })
    .unwrap();
    assert_eq!(found, 2);
    let rows = df.collect().await.unwrap();
    let shown = datafusion::arrow::util::pretty::pretty_format_batches(&rows)
        .unwrap()
        .to_string();
    assert!(shown.contains("2024-01-02T03:04:05"), "{shown}");
    assert_eq!(rows.iter().map(|b| b.num_rows()).sum::<usize>(), 1);
}
