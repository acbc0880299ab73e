//! JSON columns inferred without a second pass over the export: a run infers them from the first
//! records and its scan checks every other record fits (src/sources/json/fit.rs). These tests
//! hold the promises of a full inference on exports larger than that sample: a field first seen
//! in the last file is a column, numbers mixed with text keep their digits, nested objects keep
//! their fields, and an export rewritten between runs is inferred again.

use std::fmt::Write as _;
use std::path::Path;

use crate::common::*;

/// More records than a run's sample (`SAMPLE_RECORDS`, 20,000), so the sample leaves some unread.
const EVENTS: usize = 25_000;

/// `EVENTS` newline-delimited users `{"user_id":<n>,"tier":"gold","context":{"page":"home"}}`.
fn users(from: usize) -> String {
    let mut text = String::new();
    for i in from..from + EVENTS {
        writeln!(
            text,
            r#"{{"user_id":{i},"tier":"t{}","context":{{"page":"p{}"}}}}"#,
            i % 3,
            i % 5
        )
        .unwrap();
    }
    text
}

/// Runs the users mapping `SELECT ...` over the JSON table `t` at `dir/ev/` with pengine's debug
/// log on; returns the CSV, the report and what was logged.
fn run(dir: &Path, select: &str) -> (Csv, serde_json::Value, String) {
    let mapping = dir.join("users.sql");
    write(
        &mapping,
        format!("CREATE EXTERNAL TABLE t STORED AS JSON LOCATION '${{d}}/ev/';\n{select};\n"),
    );
    let out = dir.join("out");
    let output = run_ok(
        pengine()
            .env("PENGINE_LOG", "debug")
            .args(["run", "--json", "--on-bad-records", "skip", "-o"])
            .arg(&out)
            .arg(&mapping)
            .arg("--var")
            .arg(format!("d={}", dir.display())),
    );
    let report = stdout_json(&output);
    (read_dataset(&out.join("users")), report, stderr(&output))
}

const SAMPLED: &str = "JSON columns inferred from the first 20000 records";
const STARTED_AGAIN: &str = "inferring the columns from every record and running again";
const PROBED: &str = "records of later files do not fit the columns of the first 20000";

#[test]
fn one_pass_when_every_record_fits_the_sample() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Mixed types and a nested field inside the sample: the schema is right from the start.
    let mut first =
        String::from("{\"user_id\":\"0042\",\"tier\":7,\"context\":{\"page\":\"x\",\"ab\":1}}\n");
    first.push_str(&users(0));
    write(d.join("ev/a.json"), first);
    write(d.join("ev/b.json"), users(EVENTS));
    let (csv, report, log) = run(
        d,
        "SELECT user_id, tier, context['page'] AS page, context['ab'] AS ab FROM t",
    );
    assert!(log.contains(SAMPLED), "{log}");
    assert!(!log.contains(STARTED_AGAIN), "{log}");
    assert_eq!(csv.rows.len(), 2 * EVENTS + 1);
    assert_eq!(report["rows"]["written"], 2 * EVENTS + 1);
    assert_eq!(csv.user_value("0042", "TIER"), "7");
    assert_eq!(csv.user_value("0042", "AB"), "1");
    assert_eq!(csv.user_value("49999", "PAGE"), "p4");
}

#[test]
fn a_field_first_seen_in_the_last_file_is_a_column() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d.join("ev/a.json"), users(0));
    write(d.join("ev/b.json"), users(EVENTS));
    write(
        d.join("ev/z.json"),
        "{\"user_id\":99999999,\"tier\":\"t9\",\"age\":33,\"context\":{\"page\":\"p\"}}\n",
    );
    // The last file is among those whose first records are checked before the scan.
    let (csv, _, log) = run(d, "SELECT * EXCEPT (context) FROM t");
    assert!(log.contains(PROBED), "{log}");
    assert!(!log.contains(STARTED_AGAIN), "{log}");
    assert_eq!(csv.header, ["USER_ID", "TIER", "AGE"]);
    assert_eq!(csv.rows.len(), 2 * EVENTS + 1);
    assert_eq!(csv.user_value("99999999", "AGE"), "33");
    assert_eq!(csv.user_value("7", "AGE"), "");
}

#[test]
fn a_field_first_seen_after_the_sample_in_its_own_file_starts_the_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Past the sample's 20,000 records of the same file: only the scan meets it.
    let mut first = users(0);
    first.push_str("{\"user_id\":99999999,\"tier\":\"t9\",\"age\":33}\n");
    write(d.join("ev/a.json"), first);
    write(d.join("ev/b.json"), users(EVENTS));
    let (csv, _, log) = run(d, "SELECT * EXCEPT (context) FROM t");
    assert!(log.contains(SAMPLED), "{log}");
    assert!(!log.contains(PROBED), "{log}");
    assert!(log.contains(STARTED_AGAIN), "{log}");
    assert!(log.contains("field 'age'"), "{log}");
    assert_eq!(csv.header, ["USER_ID", "TIER", "AGE"]);
    assert_eq!(csv.rows.len(), 2 * EVENTS + 1);
    assert_eq!(csv.user_value("99999999", "AGE"), "33");

    // Named in the query, a field the sample did not show plans on every record's columns.
    let (csv, _, log) = run(d, "SELECT user_id, age FROM t WHERE age IS NOT NULL");
    assert!(
        log.contains("planning on columns inferred from the first records failed"),
        "{log}"
    );
    assert_eq!(csv.rows, [["99999999", "33"]]);
}

#[test]
fn a_field_first_seen_at_the_end_of_one_large_file_is_found_before_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // One file of a few MB, as exports that come whole are: its tail is probed.
    let mut only = users(0) + &users(EVENTS) + &users(2 * EVENTS);
    only.push_str("{\"user_id\":99999999,\"tier\":\"t9\",\"age\":33}\n");
    assert!(only.len() > 3 << 20, "{}", only.len());
    write(d.join("ev/all.json"), only);
    let (csv, _, log) = run(d, "SELECT * EXCEPT (context) FROM t");
    assert!(log.contains(PROBED), "{log}");
    assert!(!log.contains(STARTED_AGAIN), "{log}");
    assert_eq!(csv.header, ["USER_ID", "TIER", "AGE"]);
    assert_eq!(csv.rows.len(), 3 * EVENTS + 1);
    assert_eq!(csv.user_value("99999999", "AGE"), "33");
}

/// SIGTERM while the second attempt (after a record the sample missed) has written its parts:
/// the run stops as on the first attempt, with nothing published and no staging left.
#[test]
fn sigterm_during_the_second_attempt_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d.join("ev/a.json"), users(0));
    let (_, _, log) = run(d, "SELECT user_id, tier FROM t");
    assert!(!log.contains(STARTED_AGAIN), "{log}");
    let out = d.join("out");
    let before = tree(&out);

    let mut late = users(0);
    late.push_str("{\"user_id\":99999999,\"tier\":\"t9\",\"age\":33}\n");
    write(d.join("ev/a.json"), late);
    let mut cmd = pengine();
    cmd.env("PENGINE_LOG", "info")
        .args(["run", "--no-progress", "-o"])
        .arg(&out)
        .arg(d.join("users.sql"))
        .arg("--var")
        .arg(format!("d={}", d.display()));
    // Parts are written only by an attempt that read everything: here, the second.
    let output = signalled_at(&mut cmd, "after-parts-written", "TERM", d);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(143), "{err}");
    assert!(err.contains(STARTED_AGAIN), "{err}");
    assert!(err.contains("interrupted by SIGTERM"), "{err}");
    assert_eq!(tree(&out), before, "no staging left, nothing published");
}

#[test]
fn numbers_and_text_mixed_after_the_sample_keep_their_digits() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d.join("ev/a.json"),
        users(0)
            + concat!(
                "{\"user_id\":\"u-17\",\"tier\":\"t1\"}\n",
                "{\"user_id\":12345678901234567890,\"tier\":\"t1\"}\n",
                "{\"user_id\":-9223372036854775808,\"tier\":\"t1\"}\n",
            ),
    );
    let (csv, _, log) = run(d, "SELECT user_id, tier FROM t");
    assert!(log.contains(STARTED_AGAIN), "{log}");
    let ids = csv.column("USER_ID");
    for id in [
        "u-17",
        "12345678901234567890",
        "-9223372036854775808",
        "24999",
    ] {
        assert!(ids.contains(&id.to_string()), "{id} in the output");
    }
    assert_eq!(ids.len(), EVENTS + 3);
}

#[test]
fn a_nested_field_first_seen_late_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d.join("ev/a.json"),
        users(0)
            + "{\"user_id\":1,\"tier\":\"t1\",\"context\":{\"page\":\"p\",\"campaign\":\"spring\"}}\n",
    );
    // The query reads `page` only: the new nested field is found by the scan's check.
    let (csv, _, log) = run(d, "SELECT user_id, context['page'] AS page FROM t");
    assert!(log.contains("field 'context.campaign'"), "{log}");
    assert_eq!(csv.rows.len(), EVENTS + 1);
    let (csv, _, _) = run(
        d,
        "SELECT user_id, context['campaign'] AS campaign FROM t WHERE context['campaign'] IS NOT NULL",
    );
    assert_eq!(csv.rows, [["1", "spring"]]);
}

#[test]
fn bad_records_after_the_sample_are_found_by_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d.join("ev/a.json"), users(0));
    write(
        d.join("ev/b.json"),
        concat!(
            "{\"user_id\":1,\"tier\":\"t1\",}\n",
            "{\"user_id\":2,\"tier\":\"cut\n",
            "{\"user_id\":3,\"new\":1,}\n",
            "{\"user_id\":4,\"tier\":\"t1\"}\n",
        ),
    );
    let (csv, report, log) = run(d, "SELECT user_id, tier FROM t");
    // A broken record with an unknown field is a bad record, not a reason to start again.
    assert!(!log.contains(STARTED_AGAIN), "{log}");
    assert_eq!(report["rows"]["bad_records"], 3, "{report}");
    assert_eq!(csv.rows.len(), EVENTS + 1);
}

#[test]
fn an_export_rewritten_between_runs_is_inferred_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d.join("ev/a.json"), users(0));
    write(d.join("ev/b.json"), users(EVENTS));
    let (csv, _, _) = run(d, "SELECT * EXCEPT (context) FROM t");
    assert_eq!(csv.header, ["USER_ID", "TIER"]);
    // The sampled file, rewritten with a new field in front of the others.
    write(
        d.join("ev/a.json"),
        users(0).replace("{\"user_id\"", "{\"segment\":\"s\",\"user_id\""),
    );
    let (csv, _, _) = run(d, "SELECT * EXCEPT (context) FROM t");
    assert_eq!(csv.header, ["SEGMENT", "USER_ID", "TIER"]);
    assert_eq!(csv.rows.len(), 2 * EVENTS);
    // And a file past the sample, rewritten with another.
    write(
        d.join("ev/b.json"),
        users(EVENTS).replace("\"tier\"", "\"score\":1.5,\"tier\""),
    );
    let (csv, _, _) = run(d, "SELECT * EXCEPT (context) FROM t");
    assert_eq!(csv.header, ["SEGMENT", "USER_ID", "TIER", "SCORE"]);
    assert_eq!(csv.user_value("30000", "SCORE"), "1.5");
}

#[test]
fn a_bad_record_after_the_sample_stops_the_run_by_default_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d.join("ev/a.json"),
        users(0) + "{\"user_id\":1,\"tier\":\"t1\",}\n",
    );
    let mapping = d.join("users.sql");
    write(
        &mapping,
        "CREATE EXTERNAL TABLE t STORED AS JSON LOCATION '${d}/ev/';\nSELECT user_id, tier FROM t;\n",
    );
    let err = run_fails(
        &mut run_mapping(&mapping, &format!("d={}", d.display()), d.join("out"), &[]),
        4,
    );
    let file = d.join("ev/a.json");
    assert!(
        err.starts_with(&format!(
            "error: {}: byte {}: invalid JSON: trailing comma",
            file.display(),
            users(0).len()
        )),
        "{err}"
    );
    assert_no_staging(&d.join("out"));
}

#[test]
fn a_typo_in_a_column_name_is_reported_after_every_record_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d.join("ev/a.json"), users(0));
    let mapping = d.join("users.sql");
    write(
        &mapping,
        "CREATE EXTERNAL TABLE t STORED AS JSON LOCATION '${d}/ev/';\nSELECT user_id, teir FROM t;\n",
    );
    let out = d.join("out");
    let err = run_fails(
        pengine()
            .arg("run")
            .arg(&mapping)
            .arg("-o")
            .arg(&out)
            .arg("--var")
            .arg(format!("d={}", d.display())),
        3,
    );
    // The wait is announced, and the error names the column and the ones that exist.
    assert!(
        err.contains("inferring them from every record to tell a field that appears later"),
        "{err}"
    );
    assert!(err.contains("teir") && err.contains("tier"), "{err}");
    assert!(!out.join("users").exists());
}
