//! `pengine init` and `pengine sources` through the binary: crawling the bundled example and
//! unfamiliar exports (camelCase names, nested JSON, millisecond timestamps, `key=value`
//! partitions, CSV without a header, Parquet, S3), writing mapping files that validate and run.

use std::path::Path;
use std::sync::Arc;

use crate::common::*;
use serde_json::Value;

fn init(sources: &[String], into: &Path, extra: &[&str]) -> std::process::Output {
    let mut cmd = pengine();
    cmd.arg("init");
    for source in sources {
        cmd.args(["--source", source]);
    }
    cmd.arg("--into").arg(into).args(extra);
    cmd.output().expect("pengine runs")
}

fn read(path: impl AsRef<Path>) -> String {
    std::fs::read_to_string(path).unwrap()
}

#[test]
fn init_on_the_bundled_example_writes_files_that_validate_and_run() {
    let dir = tempfile::tempdir().unwrap();
    let into = dir.path().join("project");
    let testdata = repo_root().join("testdata");
    let sources: Vec<String> = ["events/", "items.csv", "users.parquet"]
        .iter()
        .map(|s| format!("{}/{s}", testdata.display()))
        .collect();
    let output = init(&sources, &into, &["--json"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("feeds interactions") && err.contains("validate: ok"),
        "{err}"
    );

    let interactions = read(into.join("interactions.sql"));
    assert!(interactions.starts_with("-- pengine: dataset = interactions\n"));
    assert!(
        interactions.contains("LOCATION '${events}'"),
        "{interactions}"
    );
    assert!(interactions.contains("context['page']"), "{interactions}");
    assert!(
        interactions.contains("TRY_CAST(ts AS TIMESTAMP) AS timestamp"),
        "{interactions}"
    );
    assert!(interactions.contains("CHECK:"), "{interactions}");
    let items = read(into.join("items.sql"));
    assert!(
        items.contains("-- pengine: textual = DESCRIPTION"),
        "{items}"
    );
    assert!(
        items.contains("replace(category_path, '>', '|')"),
        "{items}"
    );
    assert!(read(into.join("pengine.toml")).contains("[vars]"));
    let report: Value = stdout_json(&output);
    assert_eq!(report["files"].as_array().unwrap().len(), 3);

    // The files run from anywhere (locations come from pengine.toml beside them).
    let out = dir.path().join("out");
    let run = run_ok(
        pengine()
            .current_dir(dir.path())
            .arg("run")
            .arg(&into)
            .arg("-o")
            .arg(&out)
            .arg("--no-progress"),
    );
    assert!(stderr(&run).contains("3 published"), "{}", stderr(&run));
    assert_eq!(read_dataset(&out.join("users")).rows.len(), 75);
    let interactions = read_dataset(&out.join("interactions"));
    assert_eq!(
        interactions.header,
        [
            "USER_ID",
            "ITEM_ID",
            "TIMESTAMP",
            "EVENT_TYPE",
            "EVENT_VALUE",
            "DEVICE",
            "CONTEXT_PAGE",
            "CONTEXT_CAMPAIGN"
        ]
    );

    // A second init refuses to overwrite, and says so; --force replaces.
    std::fs::write(into.join("users.sql"), "-- edited by hand\n").unwrap();
    let again = init(&sources, &into, &[]);
    assert_eq!(again.status.code(), Some(3));
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
    assert_eq!(read(into.join("users.sql")), "-- edited by hand\n");
    let forced = init(&sources, &into, &["--force"]);
    assert_eq!(forced.status.code(), Some(0), "{}", stderr(&forced));
    assert!(read(into.join("users.sql")).contains("customer_id"));
}

/// An unfamiliar export: camelCase, nested objects, millisecond epochs, ids that are sometimes
/// numbers and sometimes strings, hive partitions; a catalog CSV without a header; members as
/// Parquet.
fn write_unfamiliar_export(root: &Path) {
    let actions = ["watch", "watch", "watch", "rate", "skip"];
    for day in 1..=3 {
        let mut text = String::new();
        for i in 0..600 {
            let n = day * 1000 + i;
            let user = n % 90;
            let user = if n % 7 == 0 {
                format!("\"{user}\"")
            } else {
                user.to_string()
            };
            text.push_str(&format!(
                "{{\"userId\":{user},\"movieId\":\"tt{:04}\",\"eventTime\":{},\
                 \"action\":\"{}\",\"ctx\":{{\"deviceType\":\"{}\",\"app\":{{\"version\":\"1.{}\"}}}}}}\n",
                n % 40,
                1_709_251_200_000i64 + n as i64 * 1500,
                actions[n % actions.len()],
                ["ios", "android", "web"][n % 3],
                n % 4
            ));
        }
        write(
            root.join(format!("clicks/dt=2024-03-0{day}/part-0.json")),
            text,
        );
    }
    let mut catalog = String::new();
    for i in 0..40 {
        catalog.push_str(&format!(
            "tt{i:04},\"Film number {i}, the sequel\",{},{}\n",
            ["Drama", "Comedy", "Action|Comedy"][i % 3],
            1990 + i
        ));
    }
    write(root.join("movies.csv"), catalog);

    use arrow::array::{ArrayRef, Int64Array, StringArray};
    let ids: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..90).map(|i| i.to_string()),
    ));
    let tiers: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..90).map(|i| ["gold", "silver", "basic"][i % 3]),
    ));
    let ages: ArrayRef = Arc::new(Int64Array::from_iter_values((0..90).map(|i| 18 + i % 50)));
    let emails: ArrayRef = Arc::new(StringArray::from_iter_values(
        (0..90).map(|i| format!("m{i}@example.com")),
    ));
    let batch = arrow::record_batch::RecordBatch::try_from_iter([
        ("memberId", ids),
        ("tier", tiers),
        ("age", ages),
        ("email", emails),
    ])
    .unwrap();
    let file = std::fs::File::create(root.join("members.parquet")).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, batch.schema(), None).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
}

#[test]
fn init_on_an_unfamiliar_export_guesses_roles_from_names_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("export");
    write_unfamiliar_export(&root);
    let into = dir.path().join("project");
    let sources: Vec<String> = ["clicks/", "movies.csv", "members.parquet"]
        .iter()
        .map(|s| format!("{}/{s}", root.display()))
        .collect();
    let output = init(&sources, &into, &[]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(0), "{err}");
    assert!(err.contains("key=value partitions (dt)"), "{err}");

    let interactions = read(into.join("interactions.sql"));
    for expected in [
        "\"userId\" ",
        "\"movieId\" ",
        "to_timestamp_millis(CAST(\"eventTime\" AS BIGINT)) AS timestamp",
        "holds epoch milliseconds",
        "action ",
        "ctx['deviceType']",
        "ctx['app']['version']",
    ] {
        assert!(
            interactions.contains(expected),
            "{expected}:\n{interactions}"
        );
    }
    let items = read(into.join("items.sql"));
    assert!(items.contains("'format.has_header' 'false'"), "{items}");
    assert!(items.contains("CHECK: ITEM_ID is a guess"), "{items}");
    // Of two all-distinct columns, the text one in front (tt0001) over the numbers (years).
    assert!(items.contains("SELECT column_1 "), "{items}");
    let users = read(into.join("users.sql"));
    assert!(users.contains("\"memberId\""), "{users}");
    assert!(
        users.contains("Left out: email: looks like personal data"),
        "{users}"
    );

    let out = dir.path().join("out");
    let run = run_ok(
        pengine()
            .arg("run")
            .arg(&into)
            .arg("-o")
            .arg(&out)
            .args(["--no-progress", "--json"]),
    );
    let project: Value = stdout_json(&run);
    assert_eq!(project["datasets"].as_array().unwrap().len(), 3);
    let interactions = read_dataset(&out.join("interactions"));
    assert_eq!(interactions.rows.len(), 1800);
    // Milliseconds became seconds; numeric and string user ids alike became exact digits.
    let times = interactions.column("TIMESTAMP");
    assert!(times.iter().all(|t| t.len() == 10), "{:?}", &times[..3]);
    assert!(
        interactions
            .column("USER_ID")
            .iter()
            .all(|u| u.parse::<u32>().is_ok())
    );
    assert_eq!(read_dataset(&out.join("items")).rows.len(), 40);
    let users = read_dataset(&out.join("users"));
    assert!(!users.header.contains(&"EMAIL".to_string()));
}

#[test]
fn sources_shows_columns_files_and_partitions() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("export");
    write_unfamiliar_export(&root);
    let output = run_ok(
        pengine()
            .arg("sources")
            .arg(root.join("clicks/"))
            .arg("--json"),
    );
    let sources: Value = stdout_json(&output);
    let clicks = &sources[0];
    assert_eq!(clicks["name"], "clicks");
    assert_eq!(clicks["files"], 3);
    assert_eq!(clicks["partition_columns"], serde_json::json!(["dt"]));
    let columns: Vec<&str> = clicks["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["expr"].as_str().unwrap())
        .collect();
    assert!(columns.contains(&"\"userId\"") && columns.contains(&"ctx['app']['version']"));
    assert!(columns.contains(&"dt"), "{columns:?}");

    // A JSON array file is detected as one and read whole.
    write(
        dir.path().join("ratings.json"),
        "[{\"user\":\"u1\",\"stars\":4},\n {\"user\":\"u2\",\"stars\":5}]",
    );
    let output = run_ok(
        pengine()
            .arg("sources")
            .arg(dir.path().join("ratings.json"))
            .arg("--json"),
    );
    let sources: Value = stdout_json(&output);
    assert_eq!(sources[0]["detected"]["json_layouts"]["array"], 1);
    assert_eq!(sources[0]["columns"][1]["expr"], "stars");

    // A mapping file: every source it registers.
    let human = stdout(&run_ok(
        pengine()
            .current_dir(repo_root())
            .args(["sources", "sql/interactions.sql"]),
    ));
    assert!(human.contains("events (table, JSON"), "{human}");
    assert!(human.contains("catalog (table, CSV"), "{human}");
    assert!(human.contains("context['page']"), "{human}");
}

/// A JSON export whose files open with a UTF-8 byte-order mark is detected as JSON (plain or
/// compressed), and init writes a mapping that reads every record.
#[test]
fn sources_and_init_take_json_with_a_byte_order_mark_for_json() {
    const BOM: &[u8] = b"\xEF\xBB\xBF";
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.json");
    let lines: String = (0..1200)
        .map(|i| {
            format!(
                "{{\"user_id\":\"u{}\",\"item_id\":\"i{}\",\"event_type\":\"click\",\"ts\":{}}}\n",
                i % 30,
                i % 20,
                1_709_251_200 + i
            )
        })
        .collect();
    write(&events, [BOM, lines.as_bytes()].concat());
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    std::io::Write::write_all(&mut gz, &[BOM, b"[{\"who\":\"u1\",\"stars\":4}]"].concat()).unwrap();
    write(dir.path().join("ratings.json.gz"), gz.finish().unwrap());

    for (file, layout, column) in [
        ("events.json", "newline-delimited", "user_id"),
        ("ratings.json.gz", "array", "who"),
    ] {
        let output = run_ok(
            pengine()
                .arg("sources")
                .arg(dir.path().join(file))
                .arg("--json"),
        );
        let sources: Value = stdout_json(&output);
        assert_eq!(sources[0]["detected"]["format"], "json", "{file}");
        assert_eq!(sources[0]["detected"]["json_layouts"][layout], 1, "{file}");
        assert_eq!(sources[0]["columns"][0]["expr"], column, "{file}");
    }

    let into = dir.path().join("project");
    let output = init(&[events.display().to_string()], &into, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let interactions = read(into.join("interactions.sql"));
    assert!(interactions.contains("STORED AS JSON"), "{interactions}");
    let out = dir.path().join("out");
    run_ok(
        pengine()
            .arg("run")
            .arg(&into)
            .arg("-o")
            .arg(&out)
            .arg("--no-progress"),
    );
    assert_eq!(read_dataset(&out.join("interactions")).rows.len(), 1200);
}

/// A broken line and a Latin-1 line in an export: init and sources stop naming the file and
/// suggesting `--on-bad-records skip`; with it, sources lists the columns and init writes a mapping
/// that runs (with the same flag) on the good records.
#[test]
fn init_and_sources_take_on_bad_records_skip() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events.json");
    let mut lines: Vec<u8> = Vec::new();
    for i in 0..1200 {
        if i == 600 {
            lines.extend_from_slice(b"{\"user_id\":\"u1\",\"item_id\":\n");
            lines.extend_from_slice(b"{\"user_id\":\"caf\xe9\",\"item_id\":\"i1\"}\n");
        }
        lines.extend_from_slice(
            format!(
                "{{\"user_id\":\"u{}\",\"item_id\":\"i{}\",\"event_type\":\"click\",\"ts\":{}}}\n",
                i % 30,
                i % 20,
                1_709_251_200 + i
            )
            .as_bytes(),
        );
    }
    write(&events, lines);
    let path = events.display().to_string();
    let into = dir.path().join("project");

    let output = init(std::slice::from_ref(&path), &into, &[]);
    assert_eq!(output.status.code(), Some(4), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains(&format!("{path}: byte ")) && err.contains("--on-bad-records skip"),
        "{err}"
    );
    assert!(!into.join("interactions.sql").exists());
    let sources = |extra: &[&str]| {
        let mut cmd = pengine();
        cmd.arg("sources").arg(&events).args(extra);
        cmd
    };
    let err = run_fails(&mut sources(&[]), 4);
    assert!(
        err.contains(&format!("{path}: byte ")) && err.contains("--on-bad-records skip"),
        "{err}"
    );

    let output = run_ok(&mut sources(&["--on-bad-records", "skip", "--json"]));
    let listed: Value = stdout_json(&output);
    let columns: Vec<&str> = listed[0]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["expr"].as_str().unwrap())
        .collect();
    assert_eq!(columns, ["user_id", "item_id", "event_type", "ts"]);

    let output = init(
        std::slice::from_ref(&path),
        &into,
        &["--on-bad-records", "skip"],
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("validate: ok"),
        "{}",
        stderr(&output)
    );
    let out = dir.path().join("out");
    let run = run_ok(
        pengine()
            .arg("run")
            .arg(into.join("interactions.sql"))
            .args(["--on-bad-records", "skip", "--json", "--no-progress", "-o"])
            .arg(&out),
    );
    let report: Value = stdout_json(&run);
    // The Latin-1 line is read: init named the file's encoding (its other lines are ASCII).
    assert!(read(into.join("interactions.sql")).contains("'format.encoding' 'windows-1252'"));
    assert_eq!(report["rows"]["bad_records"], 1, "{report}");
    assert_eq!(read_dataset(&out.join("interactions")).rows.len(), 1200);
}

#[test]
fn init_crawls_s3() {
    let server = S3Server::start(&["raw"]);
    copy_tree(&repo_root().join("testdata"), &server.path("raw/exports"));
    let dir = tempfile::tempdir().unwrap();
    let into = dir.path().join("project");
    let mut cmd = pengine();
    server.configure(&mut cmd);
    let output = cmd
        .args([
            "init",
            "--source",
            "s3://raw/exports/events/",
            "--source",
            "s3://raw/exports/items.csv",
            "--into",
        ])
        .arg(&into)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(read(into.join("pengine.toml")).contains("events = \"s3://raw/exports/events/\""));
    let mut cmd = pengine();
    server.configure(&mut cmd);
    let out = dir.path().join("out");
    run_ok(
        cmd.arg("run")
            .arg(&into)
            .arg("-o")
            .arg(&out)
            .arg("--no-progress"),
    );
    assert_eq!(read_dataset(&out.join("items")).rows.len(), 50);
}

#[test]
fn init_names_a_source_encoding_that_is_not_utf8() {
    let dir = tempfile::tempdir().unwrap();
    // Windows-1252 users with a header: é is 0xE9, è 0xE8.
    let mut users = b"user_id,plan,segment\n".to_vec();
    for i in 0..40 {
        let plan: &[u8] = if i % 2 == 0 { b"caf\xe9" } else { b"cr\xe8me" };
        users.extend_from_slice(format!("u{i},").as_bytes());
        users.extend_from_slice(plan);
        users.extend_from_slice(format!(",s{}\n", i % 4).as_bytes());
    }
    let source = dir.path().join("users.csv");
    std::fs::write(&source, users).unwrap();
    let into = dir.path().join("project");
    let output = init(&[source.display().to_string()], &into, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("encoding windows-1252"),
        "{}",
        stderr(&output)
    );
    let mapping = read(into.join("users.sql"));
    assert!(
        mapping.contains("'format.encoding' 'windows-1252'") && mapping.contains("CHECK:"),
        "{mapping}"
    );
    let out = dir.path().join("out");
    run_ok(
        pengine()
            .arg("run")
            .arg(into.join("users.sql"))
            .arg("-o")
            .arg(&out),
    );
    let csv = read_dataset(&out.join("users"));
    let mut plans = csv.column("PLAN");
    plans.sort();
    plans.dedup();
    assert_eq!(plans, ["café", "crème"], "{mapping}");
}

/// Records that spell a key in two cases (`userId` in some, `userid` in others): init reads the id
/// from both, and says so; no row is lost to the other spelling.
#[test]
fn keys_that_differ_only_in_case_are_one_column() {
    let dir = tempfile::tempdir().unwrap();
    let mut lines = String::new();
    for i in 0..1200 {
        let key = if i % 2 == 0 { "userId" } else { "userid" };
        lines.push_str(&format!(
            "{{\"{key}\":\"u{}\",\"item_id\":\"i{}\",\"ts\":{}}}\n",
            i % 40,
            i % 25,
            1_709_251_200 + i
        ));
    }
    let events = dir.path().join("events.json");
    std::fs::write(&events, lines).unwrap();
    let into = dir.path().join("project");
    let output = init(&[events.display().to_string()], &into, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let mapping = read(into.join("interactions.sql"));
    assert!(mapping.contains("COALESCE("), "{mapping}");
    assert!(mapping.contains("differ only in letter case"), "{mapping}");
    assert!(!mapping.contains("user_id_value"), "{mapping}");
    let out = dir.path().join("out");
    let output = run_ok(
        pengine()
            .arg("run")
            .arg(into.join("interactions.sql"))
            .args(["--json", "-o"])
            .arg(&out),
    );
    let report: Value = stdout_json(&output);
    assert_eq!(report["rows"]["written"], 1200, "{mapping}");
}

/// A tab-separated source: the mapping names the delimiter as `'\t'`, readable and runnable.
#[test]
fn init_writes_a_tab_delimiter_as_its_escape() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("user_id\titem_id\trating\ttimestamp\n");
    for i in 0..1200 {
        text.push_str(&format!(
            "u{}\ti{}\t{}\t{}\n",
            i % 40,
            i % 25,
            i % 5 + 1,
            1_709_251_200 + i
        ));
    }
    let source = dir.path().join("ratings.tsv");
    std::fs::write(&source, text).unwrap();
    let into = dir.path().join("project");
    let output = init(&[source.display().to_string()], &into, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let mapping = read(into.join("interactions.sql"));
    assert!(mapping.contains(r"'format.delimiter' '\t'"), "{mapping}");
    assert!(!mapping.contains('\t'), "a literal tab in:\n{mapping}");
    let out = dir.path().join("out");
    run_ok(
        pengine()
            .arg("run")
            .arg(into.join("interactions.sql"))
            .arg("-o")
            .arg(&out),
    );
    assert_eq!(read_dataset(&out.join("interactions")).rows.len(), 1200);
}

/// An export root as users have it: hourly JSON events in a folder, a catalog CSV and a users
/// Parquet file beside it, a README and a `_SUCCESS` marker. init finds the three tables and
/// writes the three mappings, which run; `sources ROOT` shows the grouping.
#[test]
fn init_on_an_export_root_finds_its_tables() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("export");
    let testdata = repo_root().join("testdata");
    copy_tree(&testdata.join("events"), &root.join("interactions"));
    std::fs::copy(testdata.join("items.csv"), root.join("items.csv")).unwrap();
    std::fs::copy(testdata.join("users.parquet"), root.join("users.parquet")).unwrap();
    std::fs::write(root.join("README.md"), "# the export\n").unwrap();
    std::fs::write(root.join("_SUCCESS"), "").unwrap();
    let location = format!("{}/", root.display());

    let listed = run_ok(pengine().args(["sources", &location]));
    let text = stdout(&listed);
    assert!(
        text.contains("skipped") && text.contains("README.md") && text.contains("not a data file"),
        "{text}"
    );
    for table in ["interactions", "items", "users"] {
        assert!(
            text.contains(&format!("{table} (table")),
            "{table}:\n{text}"
        );
    }

    let into = dir.path().join("project");
    let output = init(std::slice::from_ref(&location), &into, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    for dataset in ["interactions", "items", "users"] {
        assert!(into.join(format!("{dataset}.sql")).exists(), "{dataset}");
    }
    let out = dir.path().join("out");
    run_ok(pengine().arg("run").arg(&into).arg("-o").arg(&out));
    assert!(!read_dataset(&out.join("interactions")).rows.is_empty());
}

/// Orders that hold their items in a nested `lines` array: init reads one row per line item
/// (unnest) and drafts Interactions from the items' fields; the run writes one row per line
/// item and its report accounts for the rows the unnest made and the orders without lines.
#[test]
fn nested_arrays_of_items_are_unnested_into_interactions() {
    let dir = tempfile::tempdir().unwrap();
    let mut orders = String::new();
    let mut line_items = 0;
    for i in 0..800 {
        // 0, 1, 2 or 3 lines: an order without lines gives no row.
        let lines: Vec<String> = (0..i % 4)
            .map(|l| {
                format!(
                    "{{\"sku\":\"s{}\",\"qty\":{},\"price\":{}.5}}",
                    (i + l) % 30,
                    l + 1,
                    l + 2
                )
            })
            .collect();
        line_items += lines.len();
        orders.push_str(&format!(
            "{{\"order_id\":\"o{i}\",\"user_id\":\"u{}\",\"created_at\":\"2024-03-01T{:02}:00:00Z\",\
             \"lines\":[{}]}}\n",
            i % 60,
            i % 24,
            lines.join(",")
        ));
    }
    assert_eq!(line_items, 1200);
    let source = dir.path().join("orders.jsonl");
    std::fs::write(&source, orders).unwrap();
    let into = dir.path().join("project");
    let output = init(&[source.display().to_string()], &into, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("lines holds items: one row per element"),
        "{}",
        stderr(&output)
    );
    let mapping = read(into.join("interactions.sql"));
    assert!(!into.join("users.sql").exists(), "{mapping}");
    assert!(
        mapping.contains("unnest(lines) AS line FROM orders;"),
        "{mapping}"
    );
    assert!(
        mapping.contains("-- One row per element of lines:"),
        "{mapping}"
    );
    assert!(mapping.contains("line['sku']"), "{mapping}");
    assert!(mapping.contains("FROM orders_lines"), "{mapping}");

    let out = dir.path().join("out");
    let output = run_ok(
        pengine()
            .arg("run")
            .arg(into.join("interactions.sql"))
            .args(["--json", "-o"])
            .arg(&out),
    );
    let rows = stdout_json(&output)["rows"].clone();
    assert_eq!(rows["written"], 1200, "{rows}\n{mapping}");
    assert_eq!(rows["read_from_sources"], 800, "{rows}");
    assert_eq!(rows["measured"], true, "{rows}");
    // The unnest makes 1,200 rows of 800 orders (200 of them without lines): 400 more.
    assert_eq!(rows["added_by"]["unnest"], 400, "{rows}");
    assert_eq!(rows["filtered_by_sql"], 0, "{rows}");
    let data = read_dataset(&out.join("interactions"));
    let skus = data.column("ITEM_ID");
    assert_eq!(skus.len(), 1200);
    assert!(skus.iter().all(|s| s.starts_with('s')), "{skus:?}");
}

/// An export root whose one table folder also holds a README: init lists it as skipped and the
/// mapping it writes leaves it out of the scan (`'format.exclude'`), so the run reads only the
/// data files; `pengine sources` on the mapping says why the README is not read. A CSV table
/// takes the same option.
#[test]
fn a_readme_inside_a_table_folder_is_not_read_as_data() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("export");
    copy_tree(&repo_root().join("testdata/events"), &root.join("events"));
    std::fs::write(
        root.join("events/README.md"),
        "# Click events\nOne file per hour.\n",
    )
    .unwrap();
    std::fs::write(root.join("events/2024/notes.txt"), "not { json\n").unwrap();
    let location = format!("{}/", root.display());
    let into = dir.path().join("project");
    let output = init(std::slice::from_ref(&location), &into, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(stderr(&output).contains("README.md"), "{}", stderr(&output));
    let mapping = read(into.join("interactions.sql"));
    assert!(
        mapping.contains("'format.exclude' '*.md,*.txt'"),
        "{mapping}"
    );
    assert!(mapping.contains("-- Not data, left out"), "{mapping}");

    let out = dir.path().join("out");
    let output = run_ok(
        pengine()
            .arg("run")
            .arg(into.join("interactions.sql"))
            .args(["--json", "-o"])
            .arg(&out),
    );
    let with_notes = stdout_json(&output)["rows"].clone();
    // The same mapping on the bundled events alone reads and writes the same rows.
    let pristine = run_ok(
        pengine()
            .arg("run")
            .arg(into.join("interactions.sql"))
            .arg("--var")
            .arg(format!(
                "export={}/",
                repo_root().join("testdata/events").display()
            ))
            .args(["--json", "-o"])
            .arg(dir.path().join("pristine")),
    );
    let pristine = stdout_json(&pristine)["rows"].clone();
    assert!(
        with_notes["written"].as_u64().unwrap() > 1000,
        "{with_notes}"
    );
    for count in ["read_from_sources", "bad_records", "written"] {
        assert_eq!(with_notes[count], pristine[count], "{count}: {with_notes}");
    }
    let listed = stdout(&run_ok(
        pengine().arg("sources").arg(into.join("interactions.sql")),
    ));
    assert!(
        listed.contains("README.md") && listed.contains("'format.exclude' pattern *.md"),
        "{listed}"
    );

    // A CSV folder: the option is taken, and only the CSV file is read.
    write(root.join("catalog/items.csv"), "sku,name\ni1,a\ni2,b\n");
    write(root.join("catalog/README.md"), "# not, a, csv\nat all\n");
    let csv = dir.path().join("items.sql");
    write(
        &csv,
        format!(
            "CREATE EXTERNAL TABLE c STORED AS CSV LOCATION '{}/catalog/' \
             OPTIONS ('format.has_header' 'true', 'format.exclude' '*.md');\n\
             SELECT sku AS item_id, name AS name FROM c;\n",
            root.display()
        ),
    );
    let items_out = dir.path().join("items-out");
    // Only the CSV file's two rows are read (the README would fail the header's column count).
    let output = pengine()
        .arg("run")
        .arg(&csv)
        .arg("-o")
        .arg(&items_out)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report: Value = serde_json::from_str(&read(items_out.join("items.report.json"))).unwrap();
    assert_eq!(report["rows"]["read_from_sources"], 2, "{report}");
}
