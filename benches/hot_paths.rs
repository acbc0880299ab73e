//! Criterion micro-benchmarks of the per-row work of `pengine run`, on 8,192-row batches shaped
//! like the reference click stream: JSON schema inference and decoding (arrow-json and pengine's
//! direct decoder), ISO timestamp parsing (arrow's cast and pengine's fast path, what
//! `TRY_CAST(ts AS TIMESTAMP)` runs), Personalize coercion, row checks, the CSV dialect
//! encoder, all of a batch's work together, and `SELECT DISTINCT` over a partition's worth of rows.
//!
//! `cargo bench --bench hot_paths` (add `-- <filter>` for one). Throughput is in input rows.

use std::hint::black_box;
use std::sync::Arc;

use arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, TimestampNanosecondArray};
use arrow::datatypes::{DataType, TimeUnit};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use pengine::batch::{self, BatchOptions, InvalidPolicy, Tally};
use pengine::personalize::rules::RowRejections;
use pengine::personalize::{ColumnHints, ColumnPlan, DatasetType, coerce, rows};
use pengine::sink::csv_dialect::{self, DialectChanges, EncodedRows};
use pengine::sources::json::direct::DirectDecoder;
use pengine::sources::json::records::{DEFAULT_MAX_RECORD_BYTES, Splitter, Window};

const ROWS: usize = 8192;
const EVENT_TYPES: [&str; 4] = ["view", "click", "add_to_cart", "purchase"];
const DEVICES: [&str; 3] = ["web", "ios", "android"];

/// A deterministic pseudo-random sequence (no dependency needed for this).
fn mix(i: usize) -> u64 {
    let mut x = (i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    x ^= x >> 31;
    x.wrapping_mul(0xBF58_476D_1CE4_E5B9)
}

fn iso_timestamp(i: usize) -> String {
    let seconds = 1_709_251_200 + (mix(i) % 2_592_000) as i64;
    let millis = mix(i + 7) % 1000;
    let t = chrono::DateTime::from_timestamp(seconds, 0).expect("in range");
    format!("{}.{millis:03}Z", t.format("%Y-%m-%dT%H:%M:%S"))
}

/// NDJSON records like the generator's, half of them back to back.
fn json_records() -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..ROWS {
        let user = if i % 10 == 0 {
            format!("\"{}\"", mix(i) % 100_000)
        } else {
            (mix(i) % 100_000).to_string()
        };
        let price = if i % 8 == 0 {
            format!(",\"price\":{}.{}", mix(i) % 500, mix(i) % 100)
        } else {
            String::new()
        };
        out.extend_from_slice(
            format!(
                "{{\"user_id\":{user},\"item_id\":\"SKU-{:06}\",\"event_type\":\"{}\",\"ts\":\"{}\"{price},\
                 \"session_id\":\"s-{:x}\",\"device\":\"{}\",\"context\":{{\"page\":\"home\",\"campaign\":null}}}}",
                mix(i + 1) % 10_000,
                EVENT_TYPES[i % 4],
                iso_timestamp(i),
                mix(i + 2),
                DEVICES[i % 3]
            )
            .as_bytes(),
        );
        if i % 2 == 0 {
            out.push(b'\n');
        }
    }
    out
}

/// The interactions job's final batch: the columns a mapping file selects.
fn interactions_batch() -> RecordBatch {
    interactions_rows((0..ROWS).collect())
}

/// Rows of the interactions job's final batch, row `i` made from the number `i`.
fn interactions_rows(numbers: Vec<usize>) -> RecordBatch {
    let users: ArrayRef = Arc::new(StringArray::from_iter_values(
        numbers.iter().map(|&i| (mix(i) % 100_000).to_string()),
    ));
    let items: ArrayRef = Arc::new(StringArray::from_iter_values(
        numbers
            .iter()
            .map(|&i| format!("SKU-{:06}", mix(i + 1) % 10_000)),
    ));
    let events: ArrayRef = Arc::new(StringArray::from_iter_values(
        numbers.iter().map(|&i| EVENT_TYPES[i % 4]),
    ));
    let values: ArrayRef =
        Arc::new(Float64Array::from_iter(numbers.iter().map(|&i| {
            (i % 8 == 0).then(|| (mix(i) % 50_000) as f64 / 100.0)
        })));
    let times: ArrayRef = Arc::new(TimestampNanosecondArray::from_iter_values(
        numbers
            .iter()
            .map(|&i| (1_709_251_200 + (mix(i) % 2_592_000) as i64) * 1_000_000_000),
    ));
    let devices: ArrayRef = Arc::new(StringArray::from_iter_values(
        numbers.iter().map(|&i| DEVICES[i % 3]),
    ));
    RecordBatch::try_from_iter([
        ("user_id", users),
        ("item_id", items),
        ("event_type", events),
        ("event_value", values),
        ("timestamp", times),
        ("device", devices),
    ])
    .expect("a valid batch")
}

fn plan_for(batch: &RecordBatch) -> ColumnPlan {
    ColumnPlan::new(
        &batch.schema(),
        DatasetType::Interactions,
        &ColumnHints::default(),
    )
    .expect("a valid plan")
}

/// `records` decoded by arrow-json into one batch of `schema`, as the JSON scan configures it.
fn arrow_json_decode(schema: &arrow::datatypes::SchemaRef, records: &[u8]) -> RecordBatch {
    let mut decoder = arrow::json::ReaderBuilder::new(Arc::clone(schema))
        .with_batch_size(ROWS)
        .with_coerce_primitive(true)
        .build_decoder()
        .expect("a decoder");
    decoder.decode(records).expect("decodes");
    decoder.flush().expect("flushes").expect("a batch")
}

fn json(c: &mut Criterion) {
    let records = json_records();
    let mut group = c.benchmark_group("json");
    group.throughput(Throughput::Elements(ROWS as u64));
    let log = pengine::sources::bad_records::BadRecordLog::default();
    let reading = pengine::sources::json::infer::Reading {
        file: "bench.json",
        limit: None,
        max_record_bytes: pengine::sources::json::records::DEFAULT_MAX_RECORD_BYTES,
        bad_records: &log,
    };
    group.bench_function("infer_schema", |b| {
        b.iter(|| pengine::sources::json::infer::infer_records(black_box(&records[..]), &reading))
    });
    let merged = pengine::sources::json::infer::infer_records(&records[..], &reading)
        .expect("valid JSON")
        .merged;
    let schema = Arc::new(pengine::sources::json::infer::to_schema(&merged).expect("a schema"));
    group.bench_function("decode", |b| {
        b.iter(|| arrow_json_decode(&schema, black_box(&records)))
    });
    // The columns the reference job declares (the rest of each record is skipped): arrow-json
    // against pengine's direct decoder, on the same records cut by the splitter.
    let declared = Arc::new(arrow::datatypes::Schema::new(
        ["user_id", "item_id", "event_type", "price", "ts", "device"]
            .map(|name| {
                let data_type = match name {
                    "price" => DataType::Float64,
                    _ => DataType::Utf8View,
                };
                arrow::datatypes::Field::new(name, data_type, true)
            })
            .to_vec(),
    ));
    let window = Window {
        base: 0,
        bytes: records.clone(),
    };
    let mut pieces = Vec::new();
    Splitter::new(DEFAULT_MAX_RECORD_BYTES).split(&window, true, &mut pieces);
    assert_eq!(pieces.len(), ROWS);
    group.bench_function("decode_declared_arrow", |b| {
        b.iter(|| arrow_json_decode(&declared, black_box(&records)))
    });
    let direct = DirectDecoder::for_schema(&declared).expect("flat columns");
    assert!(direct.decode(&window, &pieces).is_ok());
    group.bench_function("decode_declared_direct", |b| {
        b.iter(|| direct.decode(black_box(&window), &pieces))
    });
    group.finish();
}

fn timestamps(c: &mut Criterion) {
    let text: ArrayRef = Arc::new(StringArray::from_iter_values((0..ROWS).map(iso_timestamp)));
    let mut group = c.benchmark_group("timestamps");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("parse_iso", |b| {
        b.iter(|| {
            arrow::compute::cast(
                black_box(&text),
                &DataType::Timestamp(TimeUnit::Nanosecond, None),
            )
        })
    });
    let strings: Vec<String> = (0..ROWS).map(iso_timestamp).collect();
    group.bench_function("parse_iso_fast", |b| {
        b.iter(|| {
            let mut last = pengine::iso_timestamps::LastDate::default();
            black_box(&strings)
                .iter()
                .map(|s| pengine::iso_timestamps::parse_iso_nanos(s, &mut last))
                .collect::<TimestampNanosecondArray>()
        })
    });
    group.finish();
}

fn batch_work(c: &mut Criterion) {
    let batch = interactions_batch();
    let plan = plan_for(&batch);
    let mut group = c.benchmark_group("batch");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("coerce", |b| {
        b.iter(|| {
            let mut rejections = RowRejections::new(ROWS);
            coerce::coerce_batch(&plan, black_box(&batch), &mut rejections)
        })
    });
    let mut rejections = RowRejections::new(ROWS);
    let coerced = coerce::coerce_batch(&plan, &batch, &mut rejections).expect("coerces");
    group.bench_function("row_checks", |b| {
        b.iter(|| {
            let mut rejections = RowRejections::new(ROWS);
            rows::check_batch(&plan, black_box(&coerced), &mut rejections);
            rejections.count()
        })
    });
    group.bench_function("csv_encode", |b| {
        b.iter(|| {
            let mut out = EncodedRows::default();
            let mut changes = DialectChanges::new(coerced.len());
            csv_dialect::encode(black_box(&coerced), &mut out, &mut changes);
            out.bytes.len()
        })
    });
    for insights in [false, true] {
        let name = if insights {
            "process_with_insights"
        } else {
            "process"
        };
        group.bench_function(name, |b| {
            let mut tally = Tally::new(&plan);
            let options = BatchOptions {
                policy: InvalidPolicy::Fail,
                insights,
            };
            b.iter(|| batch::process(&plan, black_box(&batch), options, &mut tally))
        });
    }
    group.finish();
}

/// Batches of one partition of the 1M-event job's DISTINCT (~330k rows), one row in 200 a copy
/// of an earlier one.
fn distinct_input() -> Vec<RecordBatch> {
    const BATCHES: usize = 40;
    (0..BATCHES)
        .map(|b| {
            let numbers = (b * ROWS..(b + 1) * ROWS)
                .map(|i| {
                    if mix(i + 3).is_multiple_of(200) {
                        mix(i) as usize % (i + 1)
                    } else {
                        i
                    }
                })
                .collect();
            interactions_rows(numbers)
        })
        .collect()
}

fn distinct(c: &mut Criterion) {
    use datafusion::datasource::memory::MemorySourceConfig;
    use datafusion::physical_plan::{ExecutionPlan, collect};
    use datafusion::prelude::SessionContext;
    use pengine::distinct::DistinctExec;

    let batches = distinct_input();
    let schema = batches[0].schema();
    let rows: usize = batches.iter().map(RecordBatch::num_rows).sum();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("a runtime");
    let task = SessionContext::new().task_ctx();
    let mut group = c.benchmark_group("distinct");
    group.throughput(Throughput::Elements(rows as u64));
    group.sample_size(20);
    group.bench_function("first_seen", |b| {
        b.iter(|| {
            let input = MemorySourceConfig::try_new_exec(
                std::slice::from_ref(&batches),
                Arc::clone(&schema),
                None,
            )
            .expect("a memory source");
            let plan: Arc<dyn ExecutionPlan> =
                Arc::new(DistinctExec::new(input, Arc::clone(&schema)));
            let out = runtime
                .block_on(collect(plan, Arc::clone(&task)))
                .expect("runs");
            out.iter().map(RecordBatch::num_rows).sum::<usize>()
        })
    });
    group.finish();
}

criterion_group!(benches, json, timestamps, batch_work, distinct);
criterion_main!(benches);
