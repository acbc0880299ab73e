//! `pengine validate`: static checks of mapping files, and CSV data made by another tool
//! (testdata/made-elsewhere, written by hand) checked row by row without writing anything.

use crate::common::*;
use serde_json::Value;

#[test]
fn mapping_files_pass_or_fail_statically() {
    run_ok(
        pengine()
            .current_dir(repo_root())
            .args(["validate", "sql/"]),
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("users.sql");
    write(&bad, "SELECT 'u' AS user_id");
    let err = run_fails(pengine().arg("validate").arg(&bad), 4);
    assert!(err.contains("at least 1 metadata column"), "{err}");
}

#[test]
fn data_made_elsewhere_is_checked_row_by_row() {
    // The data in a folder of its own, which validate is run in: nothing may appear there.
    let work = tempfile::tempdir().unwrap();
    copy_tree(
        &repo_root().join("testdata/made-elsewhere"),
        &work.path().join("testdata/made-elsewhere"),
    );
    let before = files_in(work.path());
    let output = run_with_code(
        pengine().current_dir(work.path()).args([
            "validate",
            "--dataset",
            "interactions",
            "testdata/made-elsewhere/interactions",
            "--schema",
            "testdata/made-elsewhere/interactions.schema.json",
            "--json",
        ]),
        4,
    );
    let report: Value = stdout_json(&output);
    // 8 rows by hand: one without a user, one in milliseconds.
    assert_eq!(report["rows"]["query_output"], 8);
    assert_eq!(report["rows"]["rejected"], 2);
    assert_eq!(report["rejected_by_rule"]["required"], 1);
    assert_eq!(report["rejected_by_rule"]["timestamp_milliseconds"], 1);
    let checks = &report["checks"];
    // 1001, 01002 (leading zero kept), 1003, 1005.
    assert_eq!(checks["distinct_users"], 4);
    assert_eq!(checks["duplicate_rows"], 1);
    assert_eq!(checks["event_types"]["view \"quick\""], 1);
    // The size is that of the files checked (hand-made, so not pengine's own encoding).
    let on_disk: u64 = std::fs::read_dir(repo_root().join("testdata/made-elsewhere/interactions"))
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum();
    assert_eq!(report["bytes_written"], on_disk);
    assert_eq!(files_in(work.path()), before, "validate wrote something");
}

/// Every file and folder under `dir`, relative, sorted.
fn files_in(dir: &std::path::Path) -> Vec<String> {
    fn walk(base: &std::path::Path, dir: &std::path::Path, out: &mut Vec<String>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            out.push(path.strip_prefix(base).unwrap().display().to_string());
            if path.is_dir() {
                walk(base, &path, out);
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn a_pengine_export_validates_and_a_wrong_schema_is_named() {
    let out = tempfile::tempdir().unwrap();
    run_ok(
        pengine()
            .current_dir(repo_root())
            .args(["run", "sql/users.sql", "-o"])
            .arg(out.path()),
    );
    run_ok(
        pengine()
            .arg("validate")
            .args(["--dataset", "users"])
            .arg(out.path().join("users"))
            .arg("--schema")
            .arg(out.path().join("users.schema.json")),
    );
    let wrong = out.path().join("wrong.schema.json");
    write(
        &wrong,
        r#"{"type":"record","name":"Users","namespace":"com.amazonaws.personalize.schema","version":"1.0",
            "fields":[{"name":"USER_ID","type":"string"},{"name":"GENDER","type":"string"}]}"#,
    );
    let err = run_fails(
        pengine()
            .arg("validate")
            .args(["--dataset", "users"])
            .arg(out.path().join("users"))
            .arg("--schema")
            .arg(&wrong),
        4,
    );
    assert!(err.contains("differs from the schema's fields"), "{err}");
}

/// A final query without a required column is refused before any data is read, with the same exit
/// code from `run` and `validate` (4: a column Personalize cannot take, as the README's table
/// says), for one mapping file and for a folder of them.
#[test]
fn a_missing_required_column_exits_alike_from_run_and_validate() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d.join("ev/a.json"), cycling_events(10, 3, 2));
    let mapping = d.join("project/interactions.sql");
    write(
        &mapping,
        format!(
            "CREATE EXTERNAL TABLE ev STORED AS JSON LOCATION '{}/ev/';\n\
             SELECT i AS item_id, ts AS timestamp FROM ev;\n",
            d.display()
        ),
    );
    for target in [mapping.clone(), d.join("project")] {
        for command in ["run", "validate"] {
            let mut cmd = pengine();
            cmd.arg(command).arg(&target);
            if command == "run" {
                cmd.arg("-o").arg(d.join("out")).arg("--no-progress");
            }
            let err = run_fails(&mut cmd, 4);
            assert!(
                err.contains("column USER_ID: is required in interactions datasets")
                    && err.contains("`<expression> AS user_id`"),
                "{command} {}: {err}",
                target.display()
            );
        }
    }
}
