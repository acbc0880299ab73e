//! Every source format and layout, the Personalize coercions and the CSV dialect, end to end
//! through the binary, with the output read back by an independent CSV reader.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use crate::common::*;

/// Runs a users mapping (`SELECT ... FROM t`) over a table declared by `ddl`; returns the CSV
/// and the run report.
fn run_users_with_report(dir: &Path, ddl: &str, select: &str) -> (Csv, serde_json::Value) {
    let mapping = dir.join("users.sql");
    write(&mapping, format!("{ddl};\n{select};\n"));
    let out = dir.join("out");
    let output = run_ok(
        pengine()
            .arg("run")
            .arg(&mapping)
            .arg("--json")
            .arg("-o")
            .arg(&out)
            .arg("--var")
            .arg(format!("d={}", dir.display())),
    );
    let report = stdout_json(&output);
    (read_dataset(&out.join("users")), report)
}

fn run_users(dir: &Path, ddl: &str, select: &str) -> Csv {
    run_users_with_report(dir, ddl, select).0
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

#[test]
fn json_layouts_ndjson_back_to_back_array_gzip_zstd_in_nested_folders() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d.join("ev/2024/03/01/13/a.json"),
        "{\"u\":1,\"t\":\"a\"}\n{\"u\":2,\"t\":\"b\"}\n",
    );
    write(
        d.join("ev/2024/03/01/13/firehose-no-extension"),
        "{\"u\":3,\"t\":\"c\"}{\"u\":4,\"t\":\"d\"}  {\"u\":5,\"t\":\"e\"}",
    );
    write(
        d.join("ev/2024/03/01/14/array.json"),
        "[\n {\"u\":6,\"t\":\"f\"},\n {\"u\":7,\"t\":\"g,]\"}\n]",
    );
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"{\"u\":8,\"t\":\"h\"}{\"u\":9,\"t\":\"i\"}")
        .unwrap();
    write(d.join("ev/2024/03/02/00/part.gz"), gz.finish().unwrap());
    let zst = zstd::encode_all(&b"{\"u\":10,\"t\":\"j\"}\n"[..], 3).unwrap();
    write(d.join("ev/2024/03/02/01/part-zstd"), zst);
    let csv = run_users(
        d,
        "CREATE EXTERNAL TABLE t STORED AS JSON LOCATION '${d}/ev/'",
        "SELECT u AS user_id, t AS tag FROM t",
    );
    assert_eq!(
        sorted(csv.column("USER_ID")),
        sorted((1..=10).map(|i| i.to_string()).collect())
    );
    assert!(csv.column("TAG").contains(&"g,]".to_string()));
}

#[test]
fn mixed_number_and_text_ids_after_the_first_thousand_and_late_fields() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut first = String::new();
    for i in 0..1500 {
        first.push_str(&format!("{{\"user_id\":{i},\"tier\":\"a\"}}\n"));
    }
    write(d.join("src/1.json"), first);
    // A later file: a text id with a leading zero, a huge integer, and a field not seen before.
    write(
        d.join("src/2.json"),
        "{\"user_id\":\"01002\",\"tier\":\"b\",\"extra\":\"x\"}\n{\"user_id\":-2996180203100007228,\"tier\":\"c\"}\n",
    );
    let csv = run_users(
        d,
        "CREATE EXTERNAL TABLE t STORED AS JSON LOCATION '${d}/src/'",
        "SELECT user_id AS user_id, tier AS tier, extra AS extra FROM t",
    );
    assert_eq!(csv.rows.len(), 1502);
    let ids = csv.column("USER_ID");
    assert!(ids.contains(&"01002".to_string()));
    assert!(ids.contains(&"-2996180203100007228".to_string()));
    assert!(ids.contains(&"1499".to_string()));
    assert_eq!(csv.column("EXTRA").iter().filter(|e| *e == "x").count(), 1);
}

#[test]
fn key_value_partitions_become_columns() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d.join("p/country=fr/day=2024-03-01/x.json"), "{\"u\":1}\n");
    write(d.join("p/country=de/day=2024-03-02/y.json"), "{\"u\":2}\n");
    let csv = run_users(
        d,
        "CREATE EXTERNAL TABLE t STORED AS JSON LOCATION '${d}/p/'",
        "SELECT u AS user_id, country AS country, day AS day FROM t ORDER BY u",
    );
    assert_eq!(
        csv.rows,
        vec![vec!["1", "fr", "2024-03-01"], vec!["2", "de", "2024-03-02"]]
    );
}

#[test]
fn csv_without_header_and_with_another_delimiter() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d.join("c/users.csv"), "u1;Paris\nu2;Zürich\n");
    let csv = run_users(
        d,
        "CREATE EXTERNAL TABLE t (id VARCHAR, city VARCHAR) STORED AS CSV LOCATION '${d}/c/users.csv' \
         OPTIONS ('format.has_header' 'false', 'format.delimiter' ';')",
        "SELECT id AS user_id, city AS city FROM t",
    );
    assert_eq!(csv.column("CITY"), ["Paris", "Zürich"]);
}

/// A dialect character may be written as an escape, as in DuckDB and Spark: `'\t'` reads a
/// tab-separated file (MovieLens `u.data`), `'\x01'` the byte 1 (Hive's default), for the quote
/// too; anything else that is not one character is refused, naming the escapes that work.
#[test]
fn csv_dialect_characters_may_be_escapes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d.join("tab.tsv"),
        "u\tcity\nu1\tParis, France\nu2\tZürich\n",
    );
    let csv = run_users(
        d,
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '${d}/tab.tsv' \
         OPTIONS ('format.has_header' 'true', 'format.delimiter' '\\t')",
        "SELECT u AS user_id, city AS city FROM t",
    );
    assert_eq!(csv.rows, [["u1", "Paris, France"], ["u2", "Zürich"]]);

    write(
        d.join("hive.csv"),
        "u\x01city\nu3\x01'Lyon, FR'\nu4\x01Bern\n",
    );
    let csv = run_users(
        d,
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '${d}/hive.csv' \
         OPTIONS ('format.delimiter' '\\x01', 'format.quote' '\\x27')",
        "SELECT u AS user_id, city AS city FROM t",
    );
    assert_eq!(csv.rows, [["u3", "Lyon, FR"], ["u4", "Bern"]]);

    let mapping = d.join("users.sql");
    write(
        &mapping,
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '${d}/tab.tsv' \
         OPTIONS ('format.delimiter' '\\q');\nSELECT u AS user_id, city AS city FROM t;\n",
    );
    let err = run_fails(
        pengine()
            .arg("run")
            .arg(&mapping)
            .arg("--var")
            .arg(format!("d={}", d.display())),
        3,
    );
    assert!(
        err.contains("'format.delimiter' must be a single character, got '\\q'")
            && err.contains("'\\t' or E'\\t'"),
        "{err}"
    );
}

/// A CSV header naming a column twice is a data error (4) from run and validate alike, naming the
/// file, the column and the declaration to write instead; that declaration reads the file.
#[test]
fn a_csv_header_naming_a_column_twice_is_named_with_its_fix() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d.join("dup.csv"), "id,name,id\n1,a,2\n3,b,4\n");
    let mapping = d.join("users.sql");
    write(
        &mapping,
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '${d}/dup.csv' \
         OPTIONS ('format.has_header' 'true');\nSELECT name AS user_id, id AS tag FROM t;\n",
    );
    for command in ["run", "validate"] {
        let err = run_fails(
            pengine()
                .arg(command)
                .arg(&mapping)
                .arg("--var")
                .arg(format!("d={}", d.display())),
            4,
        );
        assert!(
            err.contains("dup.csv: the CSV header names the column 'id' twice (columns 1 and 3)"),
            "{command}: {err}"
        );
        assert!(
            err.contains("CREATE EXTERNAL TABLE t (column_1 VARCHAR, column_2 VARCHAR, ...)")
                && err.contains("OPTIONS ('format.has_header' 'true')"),
            "{command}: {err}"
        );
    }
    let csv = run_users(
        d,
        "CREATE EXTERNAL TABLE t (column_1 VARCHAR, column_2 VARCHAR, column_3 VARCHAR) \
         STORED AS CSV LOCATION '${d}/dup.csv' OPTIONS ('format.has_header' 'true')",
        "SELECT column_2 AS user_id, column_3 AS tag FROM t",
    );
    assert_eq!(csv.rows, [["a", "2"], ["b", "4"]]);
}

#[test]
fn gzip_csv_folder() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"id,city\nu1,Oslo\n").unwrap();
    write(d.join("c/sub/users.csv.gz"), gz.finish().unwrap());
    let csv = run_users(
        d,
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '${d}/c/' \
         OPTIONS ('format.has_header' 'true', 'format.compression' 'gzip')",
        "SELECT id AS user_id, city AS city FROM t",
    );
    assert_eq!(csv.column("CITY"), ["Oslo"]);
}

/// A gzip file may hold several members one after another (`cat a.gz b.gz > c.gz`): every
/// member's records are read, in JSON (a field only the second member has is a column) and in
/// CSV (the header only in the first).
#[test]
fn gzip_files_of_several_members_are_read_to_their_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let json = [
        gzipped(
            b"{\"u\":\"u1\",\"c\":\"Oslo\"}\n",
            flate2::Compression::default(),
        ),
        gzipped(
            b"{\"u\":\"u2\",\"c\":\"Rome\",\"tier\":\"gold\"}\n",
            flate2::Compression::default(),
        ),
    ]
    .concat();
    write(d.join("j/events.json.gz"), json);
    let csv = run_users(
        d,
        "CREATE EXTERNAL TABLE t STORED AS JSON LOCATION '${d}/j/'",
        "SELECT u AS user_id, c AS city, tier AS tier FROM t",
    );
    assert_eq!(csv.column("USER_ID"), ["u1", "u2"]);
    assert_eq!(csv.column("TIER"), ["", "gold"]);

    let users = [
        gzipped(b"id,city\nu1,Oslo\n", flate2::Compression::default()),
        gzipped(b"u2,Rome\nu3,Lima\n", flate2::Compression::default()),
    ]
    .concat();
    write(d.join("c/users.csv.gz"), users);
    let csv = run_users(
        d,
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '${d}/c/' \
         OPTIONS ('format.has_header' 'true')",
        "SELECT id AS user_id, city AS city FROM t",
    );
    assert_eq!(csv.column("CITY"), ["Oslo", "Rome", "Lima"]);
}

/// A gzip file cut short (an upload that stopped half way), small or large, beside good files:
/// the run fails as a data error naming the file and saying it looks truncated, under
/// `--on-bad-records skip` too (the rest of the file is unknown, not a bad record), and publishes
/// nothing.
#[test]
fn a_truncated_gzip_file_fails_the_run_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d.join("ev/good.json"), "{\"u\":\"u1\"}\n");
    let mapping = d.join("users.sql");
    write(
        &mapping,
        "CREATE EXTERNAL TABLE t STORED AS JSON LOCATION '${d}/ev/';\nSELECT u AS user_id FROM t;\n",
    );
    // Small: inflated as a stream; over 4 MB: by a reader on a thread of its own.
    for (events, level) in [
        (20_000, flate2::Compression::default()),
        (400_000, flate2::Compression::none()),
    ] {
        let text = cycling_events(events, 100, 10);
        let whole = gzipped(text.as_bytes(), level);
        write(d.join("ev/cut.json.gz"), &whole[..whole.len() / 2]);
        let out = d.join(format!("out-{events}"));
        let err = run_fails(
            pengine()
                .arg("run")
                .arg(&mapping)
                .args(["--no-progress", "--on-bad-records", "skip", "-o"])
                .arg(&out)
                .arg("--var")
                .arg(format!("d={}", d.display())),
            4,
        );
        assert!(
            err.contains("cut.json.gz") && err.contains("truncated"),
            "{err}"
        );
        assert!(!out.join("users").exists(), "{err}");
    }
}

#[test]
fn parquet_types_are_coerced() {
    use datafusion::arrow::array::{
        ArrayRef, BooleanArray, Date32Array, Int64Array, ListBuilder, StringBuilder,
        TimestampMillisecondArray,
    };
    use datafusion::arrow::record_batch::RecordBatch;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut tags = ListBuilder::new(StringBuilder::new());
    tags.values().append_value("Action");
    tags.values().append_value("Comedy");
    tags.append(true);
    tags.append(false);
    let batch = RecordBatch::try_from_iter(vec![
        (
            "id",
            Arc::new(Int64Array::from(vec![9_007_199_254_740_993, 7])) as ArrayRef,
        ),
        (
            "vip",
            Arc::new(BooleanArray::from(vec![true, false])) as ArrayRef,
        ),
        ("tags", Arc::new(tags.finish()) as ArrayRef),
        (
            "signup",
            Arc::new(Date32Array::from(vec![19_783, 0])) as ArrayRef,
        ),
        (
            "seen",
            Arc::new(TimestampMillisecondArray::from(vec![1_709_301_600_999, 0])) as ArrayRef,
        ),
    ])
    .unwrap();
    std::fs::create_dir_all(d.join("pq")).unwrap();
    let file = std::fs::File::create(d.join("pq/users.parquet")).unwrap();
    let mut writer =
        datafusion::parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let csv = run_users(
        d,
        "CREATE EXTERNAL TABLE t STORED AS PARQUET LOCATION '${d}/pq/'",
        "SELECT id AS user_id, vip AS vip, tags AS genres, signup AS signup, seen AS last_seen FROM t ORDER BY vip DESC",
    );
    assert_eq!(
        csv.rows,
        vec![
            vec![
                "9007199254740993",
                "True",
                "Action|Comedy",
                "1709251200",
                "1709301600"
            ],
            vec!["7", "False", "", "0", "0"],
        ]
    );
}

#[test]
fn dialect_round_trips_through_an_independent_reader() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let values = [
        "plain",
        "comma, inside",
        "quote \" inside",
        "back\\slash",
        "ends with backslash\\",
        "\"fully quoted\"",
        "naïve café – 日本語",
        " leading and trailing ",
        "line\nbreak\r\nand\rcarriage",
    ];
    let mut json = String::new();
    for (i, v) in values.iter().enumerate() {
        json.push_str(&serde_json::json!({"id": format!("u{i}"), "note": v}).to_string());
        json.push('\n');
    }
    write(d.join("j/x.json"), json);
    let (csv, report) = run_users_with_report(
        d,
        "CREATE EXTERNAL TABLE t STORED AS JSON LOCATION '${d}/j/'",
        "SELECT id AS user_id, note AS note FROM t ORDER BY id",
    );
    let expected: Vec<String> = values
        .iter()
        .map(|v| v.replace("\r\n", " ").replace(['\n', '\r'], " "))
        .collect();
    assert_eq!(csv.column("NOTE"), expected);
    assert_eq!(report["line_breaks_replaced"]["NOTE"], 1);
}

#[test]
fn csv_schema_is_inferred_from_every_row() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut text = String::from("id,code\n");
    for i in 0..2000 {
        text.push_str(&format!("u{i},{i}\n"));
    }
    text.push_str("u-last,A-17\n");
    write(d.join("c/users.csv"), text);
    let csv = run_users(
        d,
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '${d}/c/users.csv' OPTIONS ('format.has_header' 'true')",
        "SELECT id AS user_id, code AS code FROM t",
    );
    assert_eq!(csv.rows.len(), 2001);
    assert!(csv.column("CODE").contains(&"A-17".to_string()));
}

#[test]
fn large_csv_with_multiline_values_and_leading_zero_codes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut text = String::from("sku,zip,description\n");
    for i in 0..20_000 {
        text.push_str(&format!(
            "{i},0{},\"line one {i},\nline \"\"two\"\"\"\n",
            1000 + i % 7
        ));
    }
    write(d.join("c/items.csv"), text);
    let csv = run_users(
        d,
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '${d}/c/items.csv' \
         OPTIONS ('format.has_header' 'true', 'format.newlines_in_values' 'true')",
        "SELECT sku AS user_id, zip AS zip, description AS description FROM t",
    );
    assert_eq!(csv.rows.len(), 20_000);
    assert!(
        csv.column("ZIP").iter().all(|z| z.starts_with("01")),
        "leading zeros lost"
    );
    // Rows come in no particular order (no ORDER BY): the row of sku 0, wherever it is.
    let first = csv.column("USER_ID").iter().position(|id| id == "0");
    assert_eq!(
        csv.column("DESCRIPTION")[first.expect("sku 0")],
        "line one 0, line \"two\""
    );
}

#[test]
fn sources_in_other_encodings_are_transcoded_when_named() {
    let dir = tempfile::tempdir().unwrap();
    // Windows-1252 CSV: é is 0xE9, the euro sign 0x80.
    write(
        dir.path().join("latin/u.csv"),
        b"id,city\nu1,Montr\xe9al\nu2,\x80 zone\n".as_slice(),
    );
    // UTF-16LE JSON with a byte-order mark, gzip-compressed.
    let mut utf16 = vec![0xFF, 0xFE];
    for unit in "{\"id\":\"u3\",\"city\":\"K\u{f8}benhavn\"}\n{\"id\":\"u4\",\"city\":\"\u{6771}\u{4eac}\"}\n"
        .encode_utf16()
    {
        utf16.extend(unit.to_le_bytes());
    }
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&utf16).unwrap();
    write(dir.path().join("wide/u.json.gz"), gz.finish().unwrap());

    let csv = run_users(
        dir.path(),
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '${d}/latin/' \
         OPTIONS ('format.has_header' 'true', 'format.encoding' 'windows-1252')",
        "SELECT id AS user_id, city AS city FROM t",
    );
    assert_eq!(sorted(csv.column("CITY")), ["Montréal", "€ zone"]);
    let csv = run_users(
        dir.path(),
        "CREATE EXTERNAL TABLE t STORED AS JSON LOCATION '${d}/wide/' \
         OPTIONS ('format.encoding' 'utf-16le')",
        "SELECT id AS user_id, city AS city FROM t",
    );
    assert_eq!(sorted(csv.column("CITY")), ["København", "東京"]);
    // A UTF-8 byte-order mark before a CSV header is not part of its first name.
    write(
        dir.path().join("bom/u.csv"),
        b"\xef\xbb\xbfid,city\nu5,Oslo\n".as_slice(),
    );
    let csv = run_users(
        dir.path(),
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '${d}/bom/' \
         OPTIONS ('format.has_header' 'true')",
        "SELECT id AS user_id, city AS city FROM t",
    );
    assert_eq!(csv.column("USER_ID"), ["u5"]);

    // Without the option: the error names it; an unknown label is named too.
    let mapping = dir.path().join("users.sql");
    for (options, expected, code) in [
        (
            "'format.has_header' 'true'",
            "'format.encoding' 'windows-1252'",
            4,
        ),
        (
            "'format.has_header' 'true', 'format.encoding' 'klingon'",
            "'klingon' is not an encoding label",
            3,
        ),
    ] {
        write(
            &mapping,
            format!(
                "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '${{d}}/latin/' OPTIONS ({options});\n\
                 SELECT id AS user_id, city AS city FROM t;\n"
            ),
        );
        let err = run_fails(
            pengine()
                .arg("run")
                .arg(&mapping)
                .arg("--var")
                .arg(format!("d={}", dir.path().display()))
                .arg("-o")
                .arg(dir.path().join("out")),
            code,
        );
        assert!(err.contains(expected), "{err}");
    }
}
