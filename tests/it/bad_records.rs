//! Damaged source records, end to end through the binary: `--on-bad-records fail` stops naming the
//! file, position and record and publishes nothing; `skip` writes the good rows, sets each bad
//! record aside in `<dataset>.bad-records.jsonl` and counts them per file in the report, so every
//! input record is accounted for.

use std::io::Write;
use std::path::Path;

use crate::common::*;
use serde_json::Value;

/// A users mapping over the table `ddl` declares, selecting `u` as the user id.
fn mapping(dir: &Path, ddl: &str) -> std::path::PathBuf {
    let path = dir.join("users.sql");
    write(
        &path,
        format!("{ddl};\nSELECT u AS user_id, concat('t', CAST(u AS VARCHAR)) AS tag FROM t;\n"),
    );
    path
}

fn run(dir: &Path, mapping: &Path, policy: &str) -> std::process::Command {
    let mut cmd = pengine();
    cmd.arg("run")
        .arg(mapping)
        .arg("--json")
        .arg("--no-progress")
        .arg("-o")
        .arg(dir.join("out"))
        .arg("--var")
        .arg(format!("d={}", dir.display()))
        .arg("--on-bad-records")
        .arg(policy);
    cmd
}

/// Runs with `skip`; returns the users written (sorted), the report and the bad-records lines.
fn run_skip(dir: &Path, mapping: &Path) -> (Vec<String>, Value, Vec<Value>) {
    let output = run_ok(&mut run(dir, mapping, "skip"));
    let report: Value = stdout_json(&output);
    let mut users = read_dataset(&dir.join("out/users")).column("USER_ID");
    users.sort_by_key(|u| u.parse::<i64>().unwrap_or(i64::MAX));
    let bad_file = dir.join("out/users.bad-records.jsonl");
    let bad = match std::fs::read_to_string(&bad_file) {
        Ok(text) => text
            .lines()
            .map(|l| serde_json::from_str(l).expect("each line is JSON"))
            .collect(),
        Err(_) => Vec::new(),
    };
    (users, report, bad)
}

fn numbers(range: std::ops::RangeInclusive<i64>) -> Vec<String> {
    range.map(|i| i.to_string()).collect()
}

/// The bad records of `file` (by the end of its path), as (offset, reason, excerpt).
fn bad_in(bad: &[Value], file: &str) -> Vec<(u64, String, String)> {
    bad.iter()
        .filter(|b| b["file"].as_str().unwrap().ends_with(file))
        .map(|b| {
            (
                b["byte_offset"].as_u64().unwrap(),
                b["reason"].as_str().unwrap().to_string(),
                b["excerpt"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// One damaged export per case, all in one folder: every JSON kind of damage.
fn write_damaged_json(d: &Path) {
    // Good records 1..=3 around an invalid line, a line of binary garbage and Latin-1 text.
    let mut ndjson = b"{\"u\":1}\n{\"u\":2,}\n\x00\x01\xfe\xff binary\n{\"u\":3}\n".to_vec();
    ndjson.extend_from_slice(b"{\"u\":4,\"name\":\"caf\xe9\"}\n");
    write(d.join("ev/a.json"), ndjson);
    // A Firehose object cut in the middle of a line: the records after it are still read.
    write(
        d.join("ev/b.json"),
        "{\"u\":5}{\"u\":6,\"name\":\"cut\n{\"u\":7}\n{\"u\":8}",
    );
    // Truncated at the end of the file, in a gzip file.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"{\"u\":9}\n{\"u\":10}\n{\"u\":11,\"na")
        .unwrap();
    write(d.join("ev/c.json.gz"), gz.finish().unwrap());
    // A 20 MB line between two good records.
    let mut big = b"{\"u\":12}\n{\"u\":0,\"blob\":\"".to_vec();
    big.extend(std::iter::repeat_n(b'x', 20 << 20));
    big.extend_from_slice(b"\"}\n{\"u\":13}\n");
    write(d.join("ev/d.json"), big);
}

#[test]
fn damaged_json_fails_naming_file_offset_and_record_and_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d.join("ev/a.json"), "{\"u\":1}\n{\"u\":2}\n");
    let mapping = mapping(
        d,
        "CREATE EXTERNAL TABLE t STORED AS JSON LOCATION '${d}/ev/'",
    );
    run_ok(&mut run(d, &mapping, "fail"));
    let before = std::fs::read(d.join("out/users/part-00000.csv")).unwrap();

    write(d.join("ev/b.json"), "{\"u\":3}\n{\"u\":4,}\n{\"u\":5}\n");
    let err = run_fails(&mut run(d, &mapping, "fail"), 4);
    assert!(err.contains("b.json: byte 8: invalid JSON"), "{err}");
    assert!(err.contains("`{\"u\":4,}`"), "{err}");
    assert!(err.contains("--on-bad-records skip"), "{err}");
    assert_eq!(
        std::fs::read(d.join("out/users/part-00000.csv")).unwrap(),
        before,
        "a failed run changed the previous export"
    );
    assert!(!d.join("out/users.bad-records.jsonl").exists());
}

#[test]
fn damaged_json_is_skipped_record_by_record_and_accounted_for() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_damaged_json(d);
    let mapping = mapping(
        d,
        "CREATE EXTERNAL TABLE t STORED AS JSON LOCATION '${d}/ev/'",
    );
    let (users, report, bad) = run_skip(d, &mapping);
    let mut expected = numbers(1..=13);
    expected.retain(|u| !["2", "4", "6", "11"].contains(&u.as_str()));
    assert_eq!(users, expected);

    let a = bad_in(&bad, "ev/a.json");
    assert_eq!(a.len(), 3, "{a:?}");
    assert_eq!((a[0].0, a[0].2.as_str()), (8, "{\"u\":2,}"));
    assert!(a[0].1.starts_with("invalid JSON") || a[0].1.contains("expected"));
    assert_eq!(a[1].0, 17);
    assert_eq!(a[1].1, "not a JSON object");
    assert!(a[1].2.starts_with("\\u{0}\\u{1}\u{fffd}\u{fffd} binary"));
    assert!(a[2].1.contains("UTF-8"), "{:?}", a[2]);
    assert_eq!(a[2].2, "{\"u\":4,\"name\":\"caf\u{fffd}\"}");

    let b = bad_in(&bad, "ev/b.json");
    assert_eq!(b.len(), 1, "{b:?}");
    assert_eq!((b[0].0, b[0].2.as_str()), (7, "{\"u\":6,\"name\":\"cut"));
    assert!(b[0].1.contains("cut short"), "{b:?}");

    let c = bad_in(&bad, "ev/c.json.gz");
    assert_eq!(c.len(), 1, "{c:?}");
    assert_eq!(c[0].0, 17);
    assert!(c[0].1.contains("truncated"), "{c:?}");

    let big = bad_in(&bad, "ev/d.json");
    assert_eq!(big.len(), 1);
    assert!(big[0].1.contains("longer than the limit"), "{big:?}");
    assert!(big[0].2.starts_with("{\"u\":0,\"blob\":\"xxxx") && big[0].2.len() < 1000);

    let rows = &report["rows"];
    assert_eq!(rows["bad_records"], 6);
    assert_eq!(rows["read_from_sources"], 9);
    assert_eq!(rows["written"], 9);
    assert_eq!(rows["filtered_by_sql"], 0);
    let by_file = report["bad_records"]["by_file"].as_object().unwrap();
    let counts: Vec<u64> = by_file.values().map(|v| v.as_u64().unwrap()).collect();
    assert_eq!(counts, [3, 1, 1, 1], "{by_file:?}");
    assert!(
        report["bad_records_file"]
            .as_str()
            .unwrap()
            .ends_with("users.bad-records.jsonl")
    );

    // A clean run removes the bad-records file of the export it replaces.
    for f in ["a.json", "b.json", "c.json.gz", "d.json"] {
        std::fs::remove_file(d.join("ev").join(f)).unwrap();
    }
    write(d.join("ev/e.json"), "{\"u\":1}\n");
    let (users, report, bad) = run_skip(d, &mapping);
    assert_eq!(users, ["1"]);
    assert!(bad.is_empty());
    assert_eq!(report["rows"]["bad_records"], 0);
}

/// With the columns declared there is no inference pass over the records, and the scan alone
/// judges them: the same records are bad, for the same reasons, as with inferred columns (a
/// trailing comma or a raw control character included, which arrow-json's decoder lets through).
#[test]
fn declared_columns_judge_records_as_inference_does() {
    let judged = |ddl: &str| {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        write_damaged_json(d);
        write(
            d.join("ev/e.json"),
            "{\"u\":14,\"name\":\"tab\there\"}\n{\"u\":15}\n",
        );
        let (users, report, bad) = run_skip(d, &mapping(d, ddl));
        let mut bad: Vec<(String, u64, String)> = bad
            .iter()
            .map(|b| {
                (
                    b["file"]
                        .as_str()
                        .unwrap()
                        .rsplit('/')
                        .next()
                        .unwrap()
                        .to_string(),
                    b["byte_offset"].as_u64().unwrap(),
                    b["reason"].as_str().unwrap().to_string(),
                )
            })
            .collect();
        bad.sort();
        (users, report["rows"].clone(), bad)
    };
    let inferred = judged("CREATE EXTERNAL TABLE t STORED AS JSON LOCATION '${d}/ev/'");
    let declared = judged(
        "CREATE EXTERNAL TABLE t (u BIGINT, name VARCHAR, blob VARCHAR) \
         STORED AS JSON LOCATION '${d}/ev/'",
    );
    assert_eq!(declared, inferred);
    assert_eq!(inferred.2.len(), 7, "{:?}", inferred.2);
    assert!(
        inferred
            .2
            .iter()
            .any(|(file, offset, reason)| file == "a.json"
                && *offset == 8
                && reason.starts_with("invalid JSON")),
        "{:?}",
        inferred.2
    );
    assert!(
        inferred
            .2
            .iter()
            .any(|(file, _, reason)| file == "e.json" && reason.contains("control")),
        "{:?}",
        inferred.2
    );
}

#[test]
fn a_value_that_is_not_its_declared_type_is_a_bad_record() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d.join("ev/a.json"),
        "{\"u\":1}\n{\"u\":\"abc\"}\n{\"u\":3}\n",
    );
    let mapping = mapping(
        d,
        "CREATE EXTERNAL TABLE t (u BIGINT) STORED AS JSON LOCATION '${d}/ev/'",
    );
    let err = run_fails(&mut run(d, &mapping, "fail"), 4);
    assert!(err.contains("a.json: byte 8:"), "{err}");
    assert!(err.contains("abc"), "{err}");
    let (users, _, bad) = run_skip(d, &mapping);
    assert_eq!(users, ["1", "3"]);
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0]["excerpt"], "{\"u\":\"abc\"}");
}

/// A UTF-8 byte-order mark opening a JSON file (any layout, plain or compressed) is no record:
/// every record is read, with inferred and with declared columns, and a bad record's offset still
/// counts the mark's 3 bytes (offsets are those of the decompressed file).
#[test]
fn a_byte_order_mark_before_json_is_skipped_in_every_layout() {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let with_bom = |text: &str| [BOM, text.as_bytes()].concat();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d.join("ev/lines.json"),
        with_bom("{\"u\":1}\n{\"u\":2,}\n{\"u\":3}\n"),
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&with_bom("{\"u\":4}{\"u\":5}")).unwrap();
    write(d.join("ev/firehose.gz"), gz.finish().unwrap());
    let zst = zstd::encode_all(&with_bom("[{\"u\":6},\n{\"u\":7}]")[..], 3).unwrap();
    write(d.join("ev/array.json.zst"), zst);
    write(d.join("ev/array.json"), with_bom(" [{\"u\":8}]"));
    for ddl in [
        "CREATE EXTERNAL TABLE t STORED AS JSON LOCATION '${d}/ev/'",
        "CREATE EXTERNAL TABLE t (u BIGINT) STORED AS JSON LOCATION '${d}/ev/'",
    ] {
        let mapping = mapping(d, ddl);
        let err = run_fails(&mut run(d, &mapping, "fail"), 4);
        assert!(
            err.contains("lines.json: byte 11: invalid JSON"),
            "{ddl}: {err}"
        );
        let (users, report, bad) = run_skip(d, &mapping);
        assert_eq!(users, ["1", "3", "4", "5", "6", "7", "8"], "{ddl}");
        assert_eq!(bad.len(), 1, "{ddl}: {bad:?}");
        assert_eq!(bad_in(&bad, "ev/lines.json")[0].0, 11, "{ddl}");
        assert_eq!(report["rows"]["bad_records"], 1, "{ddl}");
    }
}

/// A CSV file larger than DataFusion's byte-range split size (10 MiB), every row of the
/// `good_rows` with a quoted line break, and damage in the middle: a field too many, a field too
/// few, a quote left open, Latin-1 bytes and a line over the record limit.
fn damaged_big_csv(good_rows: usize) -> Vec<u8> {
    let mut big = String::from("u,note\n");
    for i in 0..good_rows {
        big.push_str(&format!(
            "{i},\"line one\nline two of row {i}, with padding text to make the file large\"\n"
        ));
        if i == 60_000 {
            big.push_str("x1,a,extra\nx2\nx3,\"open\n");
        }
    }
    let mut bytes = big.into_bytes();
    bytes.extend_from_slice(b"x4,caf\xe9\n");
    bytes.extend_from_slice(format!("x5,{}\n", "y".repeat(5000)).as_bytes());
    bytes.extend_from_slice(b"last,done\n");
    bytes
}

#[test]
fn damaged_csv_is_skipped_row_by_row_even_in_large_and_compressed_files() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let good_rows = 150_000;
    let bytes = damaged_big_csv(good_rows);
    assert!(bytes.len() > 11 << 20);
    write(d.join("csv/big.csv"), &bytes);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"u,note\ng1,ok\ng2,too,many\ng3,ok\n")
        .unwrap();
    write(d.join("csv/small.csv.gz"), gz.finish().unwrap());
    let mapping = mapping(
        d,
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '${d}/csv/' \
         OPTIONS ('format.max_record_bytes' '4KiB')",
    );

    let err = run_fails(&mut run(d, &mapping, "fail"), 4);
    // Files are read in parallel: the first bad record met is in either.
    assert!(
        err.contains("big.csv: line 120004 (byte")
            || err.contains("small.csv.gz: line 3 (byte 13): 3 field(s) where the header has 2"),
        "{err}"
    );
    assert!(err.contains("3 field(s) where the header has 2"), "{err}");

    let (users, report, bad) = run_skip(d, &mapping);
    assert_eq!(users.len(), good_rows + 3, "every good row, none twice");
    assert!(users.contains(&"last".to_string()) && users.contains(&"g3".to_string()));
    let in_file = |name: &str| -> Vec<(u64, String)> {
        bad.iter()
            .filter(|b| b["file"].as_str().unwrap().ends_with(name))
            .map(|b| {
                (
                    b["line"].as_u64().unwrap(),
                    b["reason"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let reasons = in_file("big.csv");
    let first = 2 * 60_001 + 2;
    assert_eq!(reasons.len(), 5, "{reasons:?}");
    assert_eq!(
        reasons[0],
        (first, "3 field(s) where the header has 2".into())
    );
    assert_eq!(
        reasons[1],
        (first + 1, "1 field(s) where the header has 2".into())
    );
    assert_eq!(reasons[2].0, first + 2);
    assert!(
        reasons[2].1.starts_with("a quote is left open"),
        "{reasons:?}"
    );
    assert!(
        reasons[3].1.starts_with("not UTF-8: byte 0xE9"),
        "{reasons:?}"
    );
    assert!(
        reasons[4]
            .1
            .starts_with("record longer than the limit of 4096")
    );
    assert_eq!(
        in_file("small.csv.gz"),
        [(3, "3 field(s) where the header has 2".to_string())]
    );
    assert_eq!(report["rows"]["bad_records"], 6);
    assert_eq!(report["rows"]["read_from_sources"], good_rows as u64 + 3);
}

/// The same damaged file gzip-compressed (stored blocks, over the size from which a compressed
/// file is inflated on a task of its own): the rows and bad records of the plain file.
#[test]
fn a_large_damaged_gzip_csv_gives_what_the_plain_file_gives() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, gzip) = (dir.path().join("plain"), dir.path().join("gzip"));
    let bytes = damaged_big_csv(150_000);
    write(plain.join("csv/big.csv"), &bytes);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
    gz.write_all(&bytes).unwrap();
    write(gzip.join("csv/big.csv.gz"), gz.finish().unwrap());
    let ddl = "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '${d}/csv/' \
               OPTIONS ('format.max_record_bytes' '4KiB')";
    let (plain_users, plain_report, plain_bad) = run_skip(&plain, &mapping(&plain, ddl));
    let (gzip_users, gzip_report, gzip_bad) = run_skip(&gzip, &mapping(&gzip, ddl));
    assert_eq!(plain_users.len(), 150_000 + 1, "every good row and `last`");
    assert_eq!(gzip_users, plain_users);
    assert_eq!(gzip_report["rows"], plain_report["rows"]);
    let lines = |bad: &[Value]| -> Vec<(u64, String)> {
        bad.iter()
            .map(|b| {
                (
                    b["line"].as_u64().unwrap(),
                    b["reason"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    assert_eq!(plain_bad.len(), 5, "{plain_bad:?}");
    assert_eq!(lines(&gzip_bad), lines(&plain_bad));
}

#[test]
fn a_csv_value_that_is_not_its_declared_type_is_a_bad_record() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d.join("csv/a.csv"), "u,n\n1,a\nten,b\n3,c\n");
    let mapping = mapping(
        d,
        "CREATE EXTERNAL TABLE t (u BIGINT, n VARCHAR) STORED AS CSV LOCATION '${d}/csv/'",
    );
    let err = run_fails(&mut run(d, &mapping, "fail"), 4);
    assert!(
        err.contains("a.csv: line 3 (byte 8): 'ten' in column u is not of type Int64"),
        "{err}"
    );
    let (users, _, bad) = run_skip(d, &mapping);
    assert_eq!(users, ["1", "3"]);
    assert_eq!(bad.len(), 1);
}

/// A Parquet file of users `first..=last` (column `u`).
fn parquet_users(first: i64, last: i64) -> Vec<u8> {
    use arrow::array::Int64Array;
    let batch = arrow::record_batch::RecordBatch::try_from_iter([(
        "u",
        std::sync::Arc::new(Int64Array::from_iter_values(first..=last)) as arrow::array::ArrayRef,
    )])
    .unwrap();
    let mut bytes = Vec::new();
    let mut writer =
        parquet::arrow::ArrowWriter::try_new(&mut bytes, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    bytes
}

#[test]
fn unreadable_parquet_files_fail_or_are_left_out_whole() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d.join("pq/good.parquet"), parquet_users(1, 3));
    let whole = parquet_users(4, 6);
    write(d.join("pq/truncated.parquet"), &whole[..whole.len() / 2]);
    write(d.join("pq/garbage.parquet"), b"\x00\x01 not parquet at all");
    for ddl in [
        "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '${d}/pq/'",
        "CREATE EXTERNAL TABLE t (u BIGINT) STORED AS PARQUET LOCATION '${d}/pq/'",
    ] {
        let mapping = mapping(d, ddl);
        let err = run_fails(&mut run(d, &mapping, "fail"), 4);
        assert!(
            err.contains("garbage.parquet: the file: not a readable Parquet file")
                || err.contains("truncated.parquet: the file: not a readable Parquet file"),
            "{ddl}: {err}"
        );
        let (users, report, bad) = run_skip(d, &mapping);
        assert_eq!(users, numbers(1..=3), "{ddl}");
        let mut files: Vec<&str> = bad.iter().map(|b| b["file"].as_str().unwrap()).collect();
        files.sort();
        assert!(
            files.len() == 2
                && files[0].ends_with("garbage.parquet")
                && files[1].ends_with("truncated.parquet"),
            "{ddl}: {bad:?}"
        );
        assert_eq!(report["rows"]["bad_records"], 2);
    }
}

/// A bad record in a local file is named by the file's absolute path, in the error, in the
/// bad-records file and in the report, whatever the format and whether columns are inferred.
#[test]
fn bad_records_name_local_files_by_their_absolute_path() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d.join("json/a.json"),
        "{\"u\":1}\n{\"u\":0,}\n{\"u\":2}\n{\"u\":3}\n",
    );
    write(d.join("csv/a.csv"), "u\n1\n0,extra\n2\n3\n");
    write(d.join("pq/good.parquet"), parquet_users(1, 3));
    write(d.join("pq/bad.parquet"), b"not parquet");
    let cases = [
        ("JSON LOCATION '${d}/json/'", "json/a.json"),
        ("CSV LOCATION '${d}/csv/'", "csv/a.csv"),
        ("PARQUET LOCATION '${d}/pq/'", "pq/bad.parquet"),
    ];
    for (table, file) in cases {
        let path = d.join(file).display().to_string();
        assert!(path.starts_with('/'), "{path}");
        for columns in ["", "(u BIGINT) "] {
            let ddl = format!("CREATE EXTERNAL TABLE t {columns}STORED AS {table}");
            let mapping = mapping(d, &ddl);
            let err = run_fails(&mut run(d, &mapping, "fail"), 4);
            assert!(err.contains(&format!(" {path}: ")), "{ddl}: {err}");
            let (users, report, bad) = run_skip(d, &mapping);
            assert_eq!(users, numbers(1..=3), "{ddl}");
            let files: Vec<&str> = bad.iter().map(|b| b["file"].as_str().unwrap()).collect();
            assert_eq!(files, [path.as_str()], "{ddl}");
            let by_file = report["bad_records"]["by_file"].as_object().unwrap();
            assert_eq!(by_file.keys().collect::<Vec<_>>(), [&path], "{ddl}");
        }
    }
}

/// `validate` infers the sources' schemas, so a bad record stops it as it stops a run, and it
/// takes `--on-bad-records skip` as its error suggests.
#[test]
fn validate_takes_on_bad_records_skip() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d.join("ev/a.json"), "{\"u\":1}\n{\"u\":2,}\n{\"u\":3}\n");
    let mapping = mapping(
        d,
        "CREATE EXTERNAL TABLE t STORED AS JSON LOCATION '${d}/ev/'",
    );
    let validate = |extra: &[&str]| {
        let mut cmd = pengine();
        cmd.arg("validate")
            .arg(&mapping)
            .arg("--var")
            .arg(format!("d={}", d.display()))
            .args(extra);
        cmd
    };
    let err = run_fails(&mut validate(&[]), 4);
    assert!(err.contains("--on-bad-records skip"), "{err}");
    let output = run_ok(&mut validate(&["--on-bad-records", "skip"]));
    assert!(
        stderr(&output).contains("users.sql: ok"),
        "{}",
        stderr(&output)
    );
}
