//! Dataset-level checks and insights, end to end: an export exactly on every limit passes, one just
//! past them fails with exit code 6 naming each rule; figures are checked against counts computed
//! here.

use std::path::Path;

use crate::common::*;
use serde_json::Value;

/// Runs interactions with `rows` rows over `users` users and `event_types` types, DEVICE present in
/// one row of every `device_every` (all when None), plus `duplicates` exact repeats of the first
/// row; asserts the exit code and returns the report.
fn run_interactions(
    dir: &Path,
    rows: usize,
    users: usize,
    event_types: usize,
    device_every: Option<usize>,
    duplicates: usize,
    code: i32,
) -> Value {
    let mut text = String::new();
    let mut lines = Vec::new();
    for i in 0..rows {
        let device = match device_every {
            Some(k) if i % k != 0 => "null".to_string(),
            _ => "\"web\"".to_string(),
        };
        lines.push(format!(
            "{{\"u\":\"user-{}\",\"i\":\"item-{}\",\"e\":\"type-{}\",\"ts\":{},\"d\":{device}}}",
            i % users,
            i % 50,
            i % event_types,
            1_709_251_200 + i as i64
        ));
    }
    for _ in 0..duplicates {
        lines.push(lines[0].clone());
    }
    for line in &lines {
        text.push_str(line);
        text.push('\n');
    }
    write(dir.join("src/e.json"), text);
    let mapping = dir.join("interactions.sql");
    write(
        &mapping,
        "CREATE EXTERNAL TABLE e STORED AS JSON LOCATION '${src}/e.json';\n\
         SELECT u AS user_id, i AS item_id, e AS event_type, ts AS timestamp, d AS device FROM e;",
    );
    let output = run_with_code(
        pengine()
            .arg("run")
            .arg(&mapping)
            .arg("--json")
            .arg("--var")
            .arg(format!("src={}", dir.join("src").display()))
            .arg("-o")
            .arg(dir.join("out")),
        code,
    );
    stdout_json(&output)
}

fn checks_named(report: &Value, severity: &str) -> Vec<String> {
    report["checks"]["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["severity"] == severity)
        .map(|f| f["check"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn an_export_exactly_on_every_limit_passes() {
    let dir = tempfile::tempdir().unwrap();
    // 1,000 interactions, 25 users with 40 each, 10 event types, DEVICE 70 % complete.
    let report = run_interactions(dir.path(), 1000, 25, 10, None, 0, 0);
    assert!(checks_named(&report, "error").is_empty(), "{report:#}");
    let checks = &report["checks"];
    assert_eq!(checks["distinct_users"], 25);
    assert_eq!(checks["users_with_two_or_more"], 25);
    assert_eq!(checks["distinct_items"], 50);
    assert_eq!(checks["event_types"].as_object().unwrap().len(), 10);
    assert_eq!(checks["event_types"]["type-3"], 100);
    assert_eq!(checks["duplicate_rows"], 0);
    assert_eq!(checks["first_timestamp"], "2024-03-01T00:00:00Z");
    assert_eq!(checks["last_timestamp"], "2024-03-01T00:16:39Z");
    assert!(checks["approximate"].as_array().unwrap().is_empty());

    // DEVICE in exactly 70 % of rows: on the limit, no completeness warning.
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::new();
    for i in 0..1000 {
        let device = if i % 10 < 7 { "\"web\"" } else { "null" };
        text.push_str(&format!(
            "{{\"u\":\"u{}\",\"i\":\"x\",\"ts\":{},\"d\":{device}}}\n",
            i % 25,
            1_709_251_200 + i
        ));
    }
    write(dir.path().join("src/e.json"), text);
    let mapping = dir.path().join("interactions.sql");
    write(
        &mapping,
        "CREATE EXTERNAL TABLE e STORED AS JSON LOCATION '${src}/e.json';\n\
         SELECT u AS user_id, i AS item_id, ts AS timestamp, d AS device FROM e;",
    );
    let output = run_ok(
        pengine()
            .arg("run")
            .arg(&mapping)
            .arg("--json")
            .arg("--var")
            .arg(format!("src={}", dir.path().join("src").display()))
            .arg("-o")
            .arg(dir.path().join("out")),
    );
    let report: Value = stdout_json(&output);
    assert!(
        !checks_named(&report, "warning").contains(&"completeness".to_string()),
        "{report:#}"
    );
    assert_eq!(report["checks"]["columns"][3]["completeness"], 0.7);
}

#[test]
fn an_export_past_the_limits_fails_with_code_6_and_names_each_rule() {
    let dir = tempfile::tempdir().unwrap();
    // 995 rows + 4 exact duplicates of the first (999 in all, one short of the minimum);
    // 995 users each seen once (only user-0, repeated by the duplicates, has 2+);
    // 11 event types; DEVICE in 1 of 2 rows (50 % complete).
    let report = run_interactions(dir.path(), 995, 995, 11, Some(2), 4, 6);
    let errors = checks_named(&report, "error");
    assert!(errors.contains(&"event_types".to_string()), "{errors:?}");
    assert!(
        errors.contains(&"users_with_two_interactions".to_string()),
        "{errors:?}"
    );
    let warnings = checks_named(&report, "warning");
    assert!(
        warnings.contains(&"duplicate_rows".to_string()),
        "{warnings:?}"
    );
    assert!(
        warnings.contains(&"completeness".to_string()),
        "{warnings:?}"
    );
    let checks = &report["checks"];
    assert_eq!(checks["duplicate_rows"], 4);
    // user-0 appears in its own row and the 4 duplicates: the only user with 2+.
    assert_eq!(checks["users_with_two_or_more"], 1);
    assert_eq!(report["rows"]["written"], 999);
    assert!(
        errors.contains(&"min_interactions".to_string()),
        "999 rows: {errors:?}"
    );

    let dir = tempfile::tempdir().unwrap();
    let report = run_interactions(dir.path(), 999, 25, 2, None, 0, 6);
    assert_eq!(checks_named(&report, "error"), ["min_interactions"]);
}

#[test]
fn mismatched_ids_across_datasets_are_flagged_whatever_the_run_order() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let out = d.join("out");
    // Interactions use "u7"; the users export was built with "U7" (upper-cased somewhere).
    write(d.join("src/e.json"), cycling_events(1000, 50, 20));
    let mut users = String::new();
    for i in 0..50 {
        let id = if i < 40 {
            format!("U{i}")
        } else {
            format!("u{i}")
        };
        users.push_str(&format!("{{\"id\":\"{id}\",\"tier\":\"t\"}}\n"));
    }
    write(d.join("src/u.json"), users);
    write(
        d.join("users.sql"),
        "CREATE EXTERNAL TABLE u STORED AS JSON LOCATION '${src}/u.json';\nSELECT id AS user_id, tier AS tier FROM u;",
    );
    write(
        d.join("interactions.sql"),
        "CREATE EXTERNAL TABLE e STORED AS JSON LOCATION '${src}/e.json';\n\
         SELECT u AS user_id, i AS item_id, ts AS timestamp FROM e;",
    );
    let src = format!("src={}", d.join("src").display());
    let run = |file: &str| {
        let output = run_ok(
            pengine()
                .arg("run")
                .arg(d.join(file))
                .args(["--var", &src, "--json", "-o"])
                .arg(&out),
        );
        serde_json::from_str::<Value>(&stdout(&output)).unwrap()
    };
    // Users first, interactions second: the interactions run compares with the users export.
    run("users.sql");
    let report = run("interactions.sql");
    let cross = &report["checks"]["cross_dataset"][0];
    assert_eq!(cross["entities"], "users");
    // 40 of 50 users never match: 80 % of interactions (i % 50 < 40) have an unknown USER_ID.
    assert_eq!(cross["interactions_with_unknown_id"], 0.8);
    assert_eq!(cross["entities_without_interactions"], 0.8);
    assert!(checks_named(&report, "warning").contains(&"cross_dataset_ids".to_string()));
    // The other order gives the same comparison.
    let report = run("users.sql");
    assert_eq!(
        report["checks"]["cross_dataset"][0]["interactions_with_unknown_id"],
        0.8
    );
}
