//! `pengine run` / `schema` / `explain` end to end through the binary: the bundled example,
//! schema and header agreement, replacement of a previous export, a killed run, and errors.

use std::path::Path;

use crate::common::*;
use serde_json::Value;

fn run_example(out: &Path) -> std::process::Output {
    run_ok(
        pengine()
            .current_dir(repo_root())
            .args(["run", "sql/", "--output"])
            .arg(out),
    )
}

#[test]
fn bundled_example_runs_and_schema_matches_header() {
    let out = tempfile::tempdir().unwrap();
    let output = run_example(out.path());
    let err = stderr(&output);
    assert!(
        err.contains("interactions:") && err.contains("rows written"),
        "{err}"
    );

    for dataset in ["interactions", "items", "users"] {
        // Only parts at the first level of the data folder.
        let csv = read_dataset(&out.path().join(dataset));
        let schema: Value = serde_json::from_slice(
            &std::fs::read(out.path().join(format!("{dataset}.schema.json"))).unwrap(),
        )
        .unwrap();
        let names: Vec<&str> = schema["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        assert_eq!(
            csv.header, names,
            "{dataset}: header differs from the schema"
        );
        assert_eq!(schema["namespace"], "com.amazonaws.personalize.schema");
        let report: Value = serde_json::from_slice(
            &std::fs::read(out.path().join(format!("{dataset}.report.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(
            report["rows"]["written"].as_u64().unwrap() as usize,
            csv.rows.len()
        );
        assert_eq!(report["files"][0]["name"], "part-00000.csv");
        let on_disk: u64 = std::fs::read_dir(out.path().join(dataset))
            .unwrap()
            .map(|e| e.unwrap().metadata().unwrap().len())
            .sum();
        assert_eq!(report["bytes_written"].as_u64().unwrap(), on_disk);
    }
    // Nothing else beside the datasets: no staging leftovers.
    let mut top: Vec<String> = std::fs::read_dir(out.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    top.sort();
    assert_no_staging(out.path());
    assert_eq!(
        top,
        [
            ".pengine",
            "interactions",
            "interactions.current.json",
            "interactions.report.json",
            "interactions.schema.json",
            "items",
            "items.current.json",
            "items.report.json",
            "items.schema.json",
            "users",
            "users.current.json",
            "users.report.json",
            "users.schema.json"
        ]
    );

    let interactions = read_dataset(&out.path().join("interactions"));
    // Ids beyond 2^53 survive exactly; bad rows and duplicates are gone.
    assert!(
        interactions
            .column("USER_ID")
            .iter()
            .any(|u| u == "9007199254741006")
    );
    let rows = interactions.rows.len();
    let unique: std::collections::HashSet<_> = interactions.rows.iter().collect();
    assert_eq!(unique.len(), rows, "exact duplicates were not removed");
    assert!(
        interactions
            .column("TIMESTAMP")
            .iter()
            .all(|t| t.parse::<i64>().unwrap() > 1_700_000_000)
    );
    let items = read_dataset(&out.path().join("items"));
    assert!(items.column("CATEGORIES").iter().all(|c| !c.contains('>')));
    assert!(
        items
            .column("DESCRIPTION")
            .iter()
            .any(|d| d.contains("C:\\"))
    );
}

#[test]
fn schema_command_prints_the_avro_schema_without_writing() {
    let cwd = tempfile::tempdir().unwrap();
    let source = format!("source={}", repo_root().join("testdata").display());
    let output = run_ok(
        pengine()
            .current_dir(cwd.path())
            .arg("schema")
            .arg(repo_root().join("sql/items.sql"))
            .args(["--var", &source]),
    );
    let schema: Value = stdout_json(&output);
    assert_eq!(schema["name"], "Items");
    let description = schema["fields"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "DESCRIPTION")
        .unwrap();
    assert_eq!(description["textual"], true);
    // Nothing written anywhere (the default output would be ./out).
    assert_eq!(std::fs::read_dir(cwd.path()).unwrap().count(), 0);
}

#[test]
fn a_reader_that_goes_away_is_not_a_panic() {
    // `pengine schema x.sql | head -1`: the pipe is closed before pengine writes.
    let source = format!("source={}", repo_root().join("testdata").display());
    let mut child = pengine()
        .arg("schema")
        .arg(repo_root().join("sql/items.sql"))
        .args(["--var", &source])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let output = child.wait_with_output().unwrap();
    let err = stderr(&output);
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(output.status.code(), Some(0), "{err}");
}

#[test]
fn explain_shows_columns_and_plan() {
    let output = run_ok(
        pengine()
            .current_dir(repo_root())
            .args(["explain", "sql/interactions.sql"]),
    );
    let text = stdout(&output);
    assert!(
        text.contains("USER_ID") && text.contains("TimestampSeconds"),
        "{text}"
    );
    assert!(text.contains("physical_plan"), "{text}");
    // The example's SELECT DISTINCT runs on pengine's streaming operator, not an aggregation.
    assert!(text.contains("DistinctExec (pengine)"), "{text}");
    assert!(!text.contains("AggregateExec"), "{text}");
}

fn mapping_with(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    write(&path, body);
    path
}

fn small_users(dir: &Path, rows: usize) {
    let mut text = String::new();
    for i in 0..rows {
        text.push_str(&format!("{{\"id\":{i},\"tier\":\"t{}\"}}\n", i % 3));
    }
    write(dir.join("src/users.json"), text);
}

/// A users mapping over `src/users.json` (see [`small_users`]) and its `--var src=...` value.
fn users_mapping(dir: &Path) -> (std::path::PathBuf, String) {
    let mapping = mapping_with(
        dir,
        "users.sql",
        "CREATE EXTERNAL TABLE u STORED AS JSON LOCATION '${src}/users.json';\n\
         SELECT id AS user_id, tier AS tier FROM u;",
    );
    (mapping, format!("src={}", dir.join("src").display()))
}

#[test]
fn rerun_replaces_the_previous_export_and_parts_roll() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    small_users(dir.path(), 400);
    let (mapping, src) = users_mapping(dir.path());
    run_ok(&mut run_mapping(
        &mapping,
        &src,
        &out,
        &["--max-file-size", "1KiB"],
    ));
    let first = std::fs::read_dir(out.join("users")).unwrap().count();
    assert!(first >= 3, "expected several 1KiB parts, got {first}");
    let csv = read_dataset(&out.join("users"));
    assert_eq!(csv.rows.len(), 400);
    for part in std::fs::read_dir(out.join("users")).unwrap() {
        assert!(part.unwrap().metadata().unwrap().len() <= 1024);
    }

    // A smaller export replaces it entirely: no old part is left.
    small_users(dir.path(), 10);
    run_ok(&mut run_mapping(&mapping, &src, &out, &[]));
    let csv = read_dataset(&out.join("users"));
    assert_eq!(csv.rows.len(), 10);
    assert_eq!(std::fs::read_dir(out.join("users")).unwrap().count(), 1);
}

/// Runs pengine until it reaches `failpoint`, then SIGKILLs it.
fn kill_at(failpoint: &str, cmd: &mut std::process::Command, dir: &Path) {
    let mut child = spawn_at_failpoint(cmd, failpoint, dir);
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files = Vec::new();
    for name in ["users", "users.schema.json", "users.report.json"] {
        let path = dir.join(name);
        if path.is_dir() {
            let mut parts: Vec<_> = std::fs::read_dir(&path)
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            parts.sort();
            for p in parts {
                files.push((p.display().to_string(), std::fs::read(&p).unwrap()));
            }
        } else {
            files.push((name.to_string(), std::fs::read(&path).unwrap()));
        }
    }
    files
}

#[test]
fn killed_run_leaves_the_previous_export_and_the_next_run_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    small_users(dir.path(), 50);
    let (mapping, src) = users_mapping(dir.path());
    let base = || {
        let mut cmd = pengine();
        cmd.arg("run")
            .arg(&mapping)
            .args(["--var", &src, "-o"])
            .arg(&out);
        cmd
    };
    run_ok(&mut base());
    let before = snapshot(&out);

    // Killed after writing all its parts but before the commit point.
    small_users(dir.path(), 7);
    kill_at("after-parts-written", &mut base(), dir.path());
    assert_eq!(
        snapshot(&out),
        before,
        "a killed run changed the previous export"
    );
    assert!(has_staging(&out), "the killed run staged nothing?");

    // The next run cleans up and publishes.
    run_ok(&mut base());
    assert_eq!(read_dataset(&out.join("users")).rows.len(), 7);
    assert_no_staging(&out);
}

#[test]
fn killed_during_promotion_is_finished_by_the_next_command() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    small_users(dir.path(), 300);
    let (mapping, src) = users_mapping(dir.path());
    let base = || {
        let mut cmd = pengine();
        cmd.arg("run")
            .arg(&mapping)
            .args(["--var", &src, "--max-file-size", "1KiB", "-o"])
            .arg(&out);
        cmd
    };
    run_ok(&mut base());
    small_users(dir.path(), 120);
    kill_at("after-first-promoted-part", &mut base(), dir.path());
    // Killed mid-promotion: the data folder mixes the new first part with old ones, but a
    // reader following the pointer sees the new run whole.
    let mixed = read_dataset(&out.join("users")).rows.len();
    assert!(
        mixed != 120 && mixed != 300,
        "the kill did not land mid-promotion ({mixed} rows)"
    );
    assert_eq!(read_via_pointer(&out, "users").rows.len(), 120);

    // The next run first finishes the interrupted publication. Stop it right after that (at its
    // own failpoint, before it publishes anything) to see the export it recovered.
    small_users(dir.path(), 5);
    kill_at("after-parts-written", &mut base(), dir.path());
    let recovered = read_dataset(&out.join("users"));
    let mut ids: Vec<u32> = recovered
        .column("USER_ID")
        .iter()
        .map(|u| u.parse().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(
        ids,
        (0..120).collect::<Vec<_>>(),
        "not the interrupted run's export"
    );
    let report: Value =
        serde_json::from_slice(&std::fs::read(out.join("users.report.json")).unwrap()).unwrap();
    assert_eq!(report["rows"]["written"], 120);

    // And a run that completes replaces it and leaves nothing staged.
    run_ok(&mut base());
    assert_eq!(read_dataset(&out.join("users")).rows.len(), 5);
    assert_no_staging(&out);
}

#[test]
fn mapping_errors_name_file_line_and_fix() {
    let dir = tempfile::tempdir().unwrap();
    // (file, contents, what the error must say)
    let cases: &[(&str, &str, &[&str])] = &[
        (
            "items.sql",
            "-- c\nSELECT 1 AS item_id\nFROM '${nowhere}';",
            &["items.sql:3", "${nowhere} is not set", "--var nowhere="],
        ),
        (
            "users.sql",
            "SELECT 1 AS user_id, 'a' AS x;\nSELECT 2 AS user_id, 'b' AS x;",
            &["users.sql:2: a second final query"],
        ),
        ("actions.sql", "SELEC 1", &["actions.sql:1: invalid SQL"]),
        (
            "x.sql",
            "-- pengine: dataset = users\n-- pengine: textul = A\nSELECT 1",
            &["x.sql:2: unknown directive 'textul'"],
        ),
        (
            "users2.sql",
            "-- pengine: dataset = users\nCOPY (SELECT 1) TO '/tmp/evil.csv';\nSELECT 1",
            &["users2.sql:2", "COPY statements are not allowed"],
        ),
        (
            "users3.sql",
            "-- pengine: dataset = users\n\nSELECT a AS user_id FROM nothing_here",
            &["users3.sql:3:", "nothing_here"],
        ),
    ];
    for (file, contents, expected) in cases {
        let mapping = mapping_with(dir.path(), file, contents);
        let err = run_fails(pengine().arg("run").arg(&mapping), 3);
        for part in *expected {
            assert!(err.contains(part), "{file}: expected '{part}' in:\n{err}");
        }
    }
}

#[test]
fn data_errors_stop_before_publishing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let ms = mapping_with(
        dir.path(),
        "interactions.sql",
        "SELECT 'u' AS user_id, 'i' AS item_id, 1709301600123 AS timestamp",
    );
    let err = run_fails(pengine().arg("run").arg(&ms).arg("-o").arg(&out), 4);
    assert!(
        err.contains("[timestamp_milliseconds] TIMESTAMP value 1709301600123")
            && err.contains("milliseconds")
            && err.contains("/ 1000"),
        "{err}"
    );
    assert!(
        !out.join("interactions").exists(),
        "a failed run published data"
    );
    assert_no_staging(&out);

    let nested = mapping_with(
        dir.path(),
        "users.sql",
        "SELECT 'u' AS user_id, named_struct('a', 1) AS context",
    );
    let err = run_fails(pengine().arg("run").arg(&nested).arg("-o").arg(&out), 4);
    assert!(
        err.contains("column CONTEXT") && err.contains("struct"),
        "{err}"
    );

    let missing = mapping_with(dir.path(), "items.sql", "SELECT 'x' AS title");
    let err = run_fails(pengine().arg("run").arg(&missing).arg("-o").arg(&out), 4);
    assert!(err.contains("column ITEM_ID: is required"), "{err}");

    let null_id = mapping_with(
        dir.path(),
        "users4.sql",
        "-- pengine: dataset = users\nSELECT CAST(NULL AS VARCHAR) AS user_id, 'a' AS tier",
    );
    let err = run_fails(pengine().arg("run").arg(&null_id).arg("-o").arg(&out), 4);
    assert!(
        err.contains("[required] USER_ID is empty") && err.contains("IS NOT NULL"),
        "{err}"
    );
}

#[test]
fn bad_flags_are_usage_errors() {
    let err = run_fails(
        pengine().args(["run", "x.sql", "--max-file-size", "lots"]),
        2,
    );
    assert!(err.contains("not a size"), "{err}");
    let err = run_fails(pengine().args(["run", "x.sql", "--var", "novalue"]), 2);
    assert!(err.contains("NAME=VALUE"), "{err}");
}

#[test]
fn json_report_on_stdout() {
    let out = tempfile::tempdir().unwrap();
    let output = run_ok(
        pengine()
            .current_dir(repo_root())
            .args(["run", "sql/users.sql", "--json", "-o"])
            .arg(out.path()),
    );
    let report: Value = stdout_json(&output);
    assert_eq!(report["dataset"], "users");
    assert_eq!(report["rows"]["rejected"], 0);
    assert!(report["rows_per_second"].as_f64().unwrap() > 0.0);
}

#[test]
fn join_larger_than_the_memory_limit_finishes_with_sort_merge() {
    let dir = tempfile::tempdir().unwrap();
    let mut rows = String::with_capacity(40 << 20);
    let pad = "x".repeat(60);
    for i in 0..300_000 {
        rows.push_str(&format!("{{\"id\":{i},\"name\":\"name-{i}-{pad}\"}}\n"));
    }
    write(dir.path().join("src/a.json"), rows);
    let mapping = mapping_with(
        dir.path(),
        "users.sql",
        "CREATE EXTERNAL TABLE a STORED AS JSON LOCATION '${src}/a.json';\n\
         CREATE EXTERNAL TABLE b STORED AS JSON LOCATION '${src}/a.json';\n\
         SELECT a.id AS user_id, a.name AS name_a, b.name AS name_b FROM a JOIN b ON a.id = b.id;",
    );
    let src = format!("src={}", dir.path().join("src").display());
    let output = run_ok(&mut run_mapping(
        &mapping,
        &src,
        dir.path().join("out"),
        &["--memory-limit", "24MiB", "--json"],
    ));
    let report: Value = stdout_json(&output);
    assert_eq!(report["join_strategy"], "sort-merge", "{}", stderr(&output));
    assert_eq!(report["rows"]["written"], 300_000);
}

#[test]
fn variables_from_pengine_toml_and_cli_override() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path().join("a/u.json"),
        "{\"id\":\"from-a\",\"t\":\"x\"}\n",
    );
    write(
        dir.path().join("b/u.json"),
        "{\"id\":\"from-b\",\"t\":\"x\"}\n",
    );
    write(
        dir.path().join("maps/pengine.toml"),
        format!("[vars]\nsrc = \"{}\"\n", dir.path().join("a").display()),
    );
    let mapping = mapping_with(
        dir.path(),
        "maps/users.sql",
        "CREATE EXTERNAL TABLE u STORED AS JSON LOCATION '${src}/u.json';\nSELECT id AS user_id, t AS t FROM u;",
    );
    let out = dir.path().join("out");
    run_ok(pengine().arg("run").arg(&mapping).arg("-o").arg(&out));
    assert_eq!(
        read_dataset(&out.join("users")).column("USER_ID"),
        ["from-a"]
    );
    let b = format!("src={}", dir.path().join("b").display());
    run_ok(&mut run_mapping(&mapping, &b, &out, &[]));
    assert_eq!(
        read_dataset(&out.join("users")).column("USER_ID"),
        ["from-b"]
    );
}

#[test]
fn non_finite_floats_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mapping = mapping_with(
        dir.path(),
        "interactions.sql",
        "SELECT 'u' AS user_id, 'i' AS item_id, 1709301600 AS timestamp, CAST('NaN' AS DOUBLE) AS event_value",
    );
    let err = run_fails(
        pengine()
            .arg("run")
            .arg(&mapping)
            .arg("-o")
            .arg(dir.path().join("out")),
        4,
    );
    assert!(
        err.contains("[not_a_number] EVENT_VALUE value") && err.contains("NaN"),
        "{err}"
    );
    // EVENT_VALUE is an Avro float (32 bits): 5.6e39 would be infinite once read.
    let mapping = mapping_with(
        dir.path(),
        "interactions.sql",
        "SELECT 'u' AS user_id, 'i' AS item_id, 1709301600 AS timestamp, \
         '5592233720368547758079223372036854775807' AS event_value",
    );
    let err = run_fails(
        pengine()
            .arg("run")
            .arg(&mapping)
            .arg("-o")
            .arg(dir.path().join("out")),
        4,
    );
    assert!(err.contains("[not_a_number] EVENT_VALUE value"), "{err}");
}

/// The advice for an integer TIMESTAMP names its unit by magnitude (milli-, micro-, nanoseconds)
/// with the divisor and function that convert it, and the function it shows works; an
/// EVENT_VALUE beyond a 32-bit float is told so, not called "not a finite number".
#[test]
fn advice_names_the_epoch_unit_and_the_float_range() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let run = |select: &str| {
        let mapping = mapping_with(dir.path(), "interactions.sql", select);
        let mut cmd = pengine();
        cmd.arg("run")
            .arg(mapping)
            .arg("-o")
            .arg(&out)
            .args(["--no-progress", "--no-insights"]);
        cmd
    };
    for (ts, unit, divisor, function) in [
        (
            "1709251200000",
            "milliseconds",
            "1000",
            "to_timestamp_millis",
        ),
        (
            "1709251200000000",
            "microseconds",
            "1000000",
            "to_timestamp_micros",
        ),
        (
            "1709251200000000000",
            "nanoseconds",
            "1000000000",
            "to_timestamp_nanos",
        ),
    ] {
        let source = format!("FROM (SELECT 'u' AS u, 'i' AS i, {ts} AS ts)");
        let err = run_fails(
            &mut run(&format!(
                "SELECT u AS user_id, i AS item_id, ts AS timestamp {source}"
            )),
            4,
        );
        assert!(err.contains(&format!("looks like epoch {unit}")), "{err}");
        assert!(err.contains(&format!("divide by {divisor} ")), "{err}");
        assert!(
            err.contains(&format!("`ts / {divisor} AS timestamp`")),
            "{err}"
        );
        assert!(
            err.contains(&format!("`{function}(ts) AS timestamp`")),
            "{err}"
        );
        // What the message says to write is accepted and gives the seconds.
        run_ok(&mut run(&format!(
            "SELECT u AS user_id, i AS item_id, {function}(ts) AS timestamp {source}"
        )));
        assert_eq!(
            read_dataset(&out.join("interactions")).column("TIMESTAMP"),
            ["1709251200"]
        );
    }

    for value in ["CAST(1e300 AS DOUBLE)", "'1e300'"] {
        let err = run_fails(
            &mut run(&format!(
                "SELECT 'u' AS user_id, 'i' AS item_id, 1709251200 AS timestamp, \
                 {value} AS event_value"
            )),
            4,
        );
        assert!(
            err.contains("EVENT_VALUE value 1e300 is out of the range of a 32-bit float (±3.4e38)"),
            "{err}"
        );
        assert!(!err.contains("not a finite number"), "{err}");
    }
    run_ok(&mut run(
        "SELECT 'u' AS user_id, 'i' AS item_id, 1709251200 AS timestamp, \
         CASE WHEN abs(v) < 3.4e38 THEN v END AS event_value FROM (SELECT 1e300 AS v)",
    ));
    assert_eq!(
        read_dataset(&out.join("interactions")).column("EVENT_VALUE"),
        [""]
    );
}

#[test]
fn ctrl_c_stops_with_code_130_and_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    small_users(dir.path(), 20);
    let (mapping, src) = users_mapping(dir.path());
    run_ok(&mut run_mapping(&mapping, &src, &out, &[]));
    let before = snapshot(&out);
    small_users(dir.path(), 3);
    let output = signalled_at(
        &mut run_mapping(&mapping, &src, &out, &[]),
        "after-parts-written",
        "INT",
        dir.path(),
    );
    assert_eq!(output.status.code(), Some(130), "{}", stderr(&output));
    assert!(stderr(&output).contains("interrupted"));
    assert_eq!(snapshot(&out), before);
    run_ok(&mut run_mapping(&mapping, &src, &out, &[]));
    assert_eq!(read_dataset(&out.join("users")).rows.len(), 3);
    assert_no_staging(&out);
}

#[test]
fn invalid_rows_are_skipped_into_the_rejects_file_and_counted() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let events = [
        r#"{"u":"u1","i":"a","ts":"2024-03-01T10:00:00Z"}"#,
        r#"{"u":null,"i":"b","ts":"2024-03-01T10:00:00Z"}"#,
        r#"{"u":"u3","i":"c","ts":"1709301600123"}"#,
        r#"{"u":"u4","i":"d","ts":"yesterday"}"#,
        r#"{"u":"u5","i":"e","ts":"1709301600"}"#,
        r#"{"u":"","i":"f","ts":"1709301600"}"#,
    ];
    write(dir.path().join("src/e.json"), events.join("\n"));
    let mapping = mapping_with(
        dir.path(),
        "interactions.sql",
        "CREATE EXTERNAL TABLE e STORED AS JSON LOCATION '${src}/e.json';\n\
         SELECT u AS user_id, i AS item_id, ts AS timestamp FROM e;",
    );
    let src = format!("src={}", dir.path().join("src").display());

    // Default policy: stop, show the first offending rows, publish nothing.
    let err = run_fails(&mut run_mapping(&mapping, &src, &out, &[]), 4);
    assert!(
        err.contains("4 row(s)") && err.contains("[required] USER_ID is empty"),
        "{err}"
    );
    assert!(
        err.contains("row: USER_ID=u4, ITEM_ID=d, TIMESTAMP=yesterday"),
        "{err}"
    );
    assert!(!out.join("interactions").exists());

    // Published, but exit 6: two interactions are far below what Personalize trains on.
    let output = run_with_code(
        &mut run_mapping(&mapping, &src, &out, &["--on-invalid", "skip", "--json"]),
        6,
    );
    let report: Value = stdout_json(&output);
    assert_eq!(report["checks"]["findings"][0]["check"], "min_interactions");
    assert_eq!(report["rows"]["query_output"], 6);
    assert_eq!(report["rows"]["written"], 2);
    assert_eq!(report["rows"]["rejected"], 4);
    assert_eq!(report["rejected_by_rule"]["required"], 2);
    assert_eq!(report["rejected_by_rule"]["timestamp_milliseconds"], 1);
    assert_eq!(report["rejected_by_rule"]["not_a_timestamp"], 1);
    assert_eq!(
        read_dataset(&out.join("interactions")).column("USER_ID"),
        ["u1", "u5"]
    );
    // Beside the data folder, never inside it.
    let rejects = read_csv_bytes(&std::fs::read(out.join("interactions.rejects.csv")).unwrap());
    assert_eq!(
        rejects.header,
        [
            "USER_ID",
            "ITEM_ID",
            "TIMESTAMP",
            "PENGINE_REJECT_RULE",
            "PENGINE_REJECT_REASON"
        ]
    );
    let mut reasons = rejects.column("PENGINE_REJECT_RULE");
    reasons.sort();
    assert_eq!(
        reasons,
        [
            "not_a_timestamp",
            "required",
            "required",
            "timestamp_milliseconds"
        ]
    );
    assert!(
        rejects
            .column("TIMESTAMP")
            .contains(&"yesterday".to_string())
    );

    // A clean re-run leaves no stale rejects file.
    write(dir.path().join("src/e.json"), events[0]);
    run_with_code(
        &mut run_mapping(&mapping, &src, &out, &["--on-invalid", "skip"]),
        6,
    );
    assert!(!out.join("interactions.rejects.csv").exists());
}
