//! `pengine run DIR`: the mapping files of a project run at once, in one process, sharing one
//! memory limit; each dataset is published (or not) on its own.

use std::path::Path;

use crate::common::*;
use serde_json::Value;

/// A project of three datasets over JSON sources in `dir/src`, mapped in `dir/sql`.
fn write_project(dir: &Path, events: usize) {
    write(dir.join("src/events.json"), cycling_events(events, 40, 25));
    let users: String = (0..40)
        .map(|i| format!("{{\"id\":\"u{i}\",\"tier\":\"t{}\"}}\n", i % 3))
        .collect();
    write(dir.join("src/users.json"), users);
    let items: String = (0..25)
        .map(|i| format!("{{\"sku\":\"i{i}\",\"genre\":\"g{}\"}}\n", i % 4))
        .collect();
    write(dir.join("src/items.json"), items);
    write(
        dir.join("sql/interactions.sql"),
        "CREATE EXTERNAL TABLE e STORED AS JSON LOCATION '${src}/events.json';\n\
         SELECT u AS user_id, i AS item_id, ts AS timestamp FROM e;",
    );
    write(
        dir.join("sql/users.sql"),
        "CREATE EXTERNAL TABLE u STORED AS JSON LOCATION '${src}/users.json';\n\
         SELECT id AS user_id, tier AS tier FROM u;",
    );
    write(
        dir.join("sql/items.sql"),
        "CREATE EXTERNAL TABLE i STORED AS JSON LOCATION '${src}/items.json';\n\
         SELECT sku AS item_id, genre AS genre FROM i;",
    );
}

fn run_project(dir: &Path, extra: &[&str]) -> std::process::Command {
    let mut cmd = pengine();
    cmd.arg("run")
        .arg(dir.join("sql"))
        .arg("--var")
        .arg(format!("src={}", dir.join("src").display()))
        .arg("-o")
        .arg(dir.join("out"))
        .args(["--json", "--no-progress"])
        .args(extra);
    cmd
}

#[test]
fn one_failing_dataset_leaves_the_others_published_and_its_own_export_intact() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_project(d, 1200);
    let first = run_ok(&mut run_project(d, &[]));
    let project: Value = stdout_json(&first);
    assert_eq!(project["datasets"].as_array().unwrap().len(), 3);
    assert!(
        project["datasets"]
            .as_array()
            .unwrap()
            .iter()
            .all(|d| d["status"] == "published")
    );
    // The run compared this run's datasets with each other, whatever finished first.
    for dataset in &project["datasets"].as_array().unwrap()[..] {
        let cross = dataset["report"]["checks"]["cross_dataset"]
            .as_array()
            .unwrap();
        let expected = if dataset["dataset"] == "interactions" {
            2
        } else {
            1
        };
        assert_eq!(cross.len(), expected, "{dataset}");
        assert!(
            cross
                .iter()
                .all(|c| c["interactions_with_unknown_id"] == 0.0)
        );
    }
    let users_before = std::fs::read(d.join("out/users/part-00000.csv")).unwrap();
    let users_report_before = std::fs::read(d.join("out/users.report.json")).unwrap();

    // Next run: more events and items, and a users export with a truncated record.
    write_project(d, 1500);
    write(
        d.join("src/users.json"),
        "{\"id\":\"u1\",\"tier\":\"t1\"}\n{\"id\":\"u2\",\"ti",
    );
    let output = run_with_code(&mut run_project(d, &[]), 4);
    let err = stderr(&output);
    assert!(err.contains("1 failed") && err.contains("FAILED"), "{err}");
    assert!(err.contains("users.sql"), "{err}");
    let project: Value = stdout_json(&output);
    assert_statuses(
        &project,
        &[
            ("interactions", "published"),
            ("items", "published"),
            ("users", "failed"),
        ],
    );
    assert_eq!(read_dataset(&d.join("out/interactions")).rows.len(), 1500);
    assert_eq!(
        std::fs::read(d.join("out/users/part-00000.csv")).unwrap(),
        users_before
    );
    assert_eq!(
        std::fs::read(d.join("out/users.report.json")).unwrap(),
        users_report_before
    );
    assert_no_staging(&d.join("out"));

    // Repaired, the next run publishes all three.
    write_project(d, 1500);
    run_ok(&mut run_project(d, &[]));
    assert_eq!(read_dataset(&d.join("out/users")).rows.len(), 40);
}

#[test]
fn three_datasets_sorting_more_than_the_limit_draw_from_one_pool_within_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Three sorts of about 17 MB each against the smallest limit, 16 MiB for all of them: each
    // dataset's share (5.3 MiB while all three run) is a third of its data, so every sort spills.
    // With `--threads 8` each file would be read in 8 byte ranges, 24 sorts in all, each with a
    // share smaller than one 8,192-row batch of these rows ready to sort (~3 MB): a dataset runs
    // on no more partitions than its share can feed, whatever the number of cores.
    let padding = "x".repeat(150);
    for name in ["a", "b", "c"] {
        let rows: String = (0..100_000)
            .map(|i| {
                format!(
                    "{{\"user\":\"u{:06}\",\"note\":\"{padding}{name}{i}\"}}\n",
                    (i * 7919) % 100_000
                )
            })
            .collect();
        write(d.join(format!("src/{name}.json")), rows);
    }
    for (file, dataset, out) in [
        ("a.sql", "users", "out-a"),
        ("b.sql", "users", "out-b"),
        ("c.sql", "users", "out-c"),
    ] {
        let name = &file[..1];
        write(
            d.join("sql").join(file),
            format!(
                "-- pengine: dataset = {dataset}\n-- pengine: output = {}\n\
                 CREATE EXTERNAL TABLE t STORED AS JSON LOCATION '${{src}}/{name}.json';\n\
                 SELECT user AS user_id, note AS note FROM t ORDER BY note DESC;",
                d.join(out).display()
            ),
        );
    }
    let mut cmd = pengine();
    cmd.arg("run")
        .arg(d.join("sql"))
        .arg("--var")
        .arg(format!("src={}", d.join("src").display()))
        .args(["--json", "--no-progress", "--no-insights"])
        .args(["--memory-limit", "16MiB", "--threads", "8"]);
    let output = run_ok(&mut cmd);
    let project: Value = stdout_json(&output);
    let limit = project["memory_limit_bytes"].as_u64().unwrap();
    let peak = project["memory_peak_bytes"].as_u64().unwrap();
    assert_eq!(limit, 16 * 1024 * 1024);
    assert!(peak > 0 && peak <= limit, "peak {peak} over limit {limit}");
    for out in ["out-a", "out-b", "out-c"] {
        let csv = read_dataset(&d.join(out).join("users"));
        assert_eq!(csv.rows.len(), 100_000, "{out}");
        let notes = csv.column("NOTE");
        assert!(
            notes.windows(2).all(|w| w[0] >= w[1]),
            "{out} is not sorted"
        );
    }
}

#[test]
fn two_files_for_one_dataset_and_output_are_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write_project(d, 10);
    // The same output, spelled two ways in the files' `output` directives.
    let out = d.join("out");
    let users = std::fs::read_to_string(d.join("sql/users.sql")).unwrap();
    write(
        d.join("sql/users.sql"),
        format!("-- pengine: output = {}\n{users}", out.display()),
    );
    write(
        d.join("sql/users_v2.sql"),
        format!(
            "-- pengine: dataset = users\n-- pengine: output = {}/./\n{users}",
            out.display()
        ),
    );
    let err = run_fails(
        pengine()
            .arg("run")
            .arg(d.join("sql/users.sql"))
            .arg(d.join("sql/users_v2.sql"))
            .arg("--var")
            .arg(format!("src={}", d.join("src").display())),
        3,
    );
    assert!(err.contains("both write the users dataset"), "{err}");
    assert!(!out.join("users").exists());
}
