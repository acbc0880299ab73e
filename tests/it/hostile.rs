//! Hostile inputs through the binary: folder names and partition values with `..`, encoded
//! slashes, spaces, unicode and very long names are read as data and never steer where pengine
//! writes; a mapping file cannot write anywhere (INSERT hidden behind WITH, runtime settings).

use std::collections::BTreeSet;
use std::path::Path;

use crate::common::*;

/// Every file under `dir`, relative to it.
fn files(dir: &Path) -> BTreeSet<String> {
    file_names(dir).into_iter().collect()
}

#[test]
fn hostile_partition_values_are_data_and_writes_stay_under_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let long = "x".repeat(200);
    let values = [
        "..".to_string(),
        "..%2F..%2Fescape".to_string(),
        "a b".to_string(),
        "ünï😀".to_string(),
        long.clone(),
    ];
    for (i, value) in values.iter().enumerate() {
        write(
            d.join("ev").join(format!("dt={value}")).join("part.json"),
            format!("{{\"u\":{i}}}\n"),
        );
    }
    let mapping = d.join("users.sql");
    write(
        &mapping,
        "CREATE EXTERNAL TABLE t STORED AS JSON LOCATION '${d}/ev/';\n\
         SELECT u AS user_id, dt AS segment FROM t;\n",
    );
    let out = d.join("out dir").join("ünï");
    let before = files(d);
    run_ok(
        pengine()
            .arg("run")
            .arg(&mapping)
            .arg("--no-progress")
            .arg("-o")
            .arg(&out)
            .arg("--var")
            .arg(format!("d={}", d.display())),
    );
    let csv = read_dataset(&out.join("users"));
    let mut got: Vec<(String, String)> = csv
        .column("USER_ID")
        .into_iter()
        .zip(csv.column("SEGMENT"))
        .collect();
    got.sort();
    // Partition values are URL-decoded by the listing (`%2F` is `/`), as data only.
    let expected: Vec<(String, String)> = ["..", "../../escape", "a b", "ünï😀", long.as_str()]
        .iter()
        .enumerate()
        .map(|(i, v)| (i.to_string(), v.to_string()))
        .collect();
    assert_eq!(got, expected);
    let created: Vec<String> = files(d).difference(&before).cloned().collect();
    assert!(!created.is_empty());
    for path in &created {
        assert!(
            path.starts_with("out dir/ünï/"),
            "pengine wrote outside its output: {path}"
        );
    }
}

#[test]
fn a_mapping_file_cannot_write_even_behind_with() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d.join("ev/a.json"), "{\"u\":1}\n");
    write(d.join("evil/keep.csv"), "x\n1\n");
    let mapping = d.join("users.sql");
    write(
        &mapping,
        "CREATE EXTERNAL TABLE t STORED AS JSON LOCATION '${d}/ev/';\n\
         CREATE EXTERNAL TABLE evil (x BIGINT) STORED AS CSV LOCATION '${d}/evil/';\n\
         WITH a AS (SELECT 1 AS x) INSERT INTO evil SELECT x FROM a;\n",
    );
    let before = files(d);
    let err = run_fails(
        pengine()
            .arg("run")
            .arg(&mapping)
            .arg("--no-progress")
            .arg("-o")
            .arg(d.join("out"))
            .arg("--var")
            .arg(format!("d={}", d.display())),
        3,
    );
    assert!(err.contains("users.sql:3"), "{err}");
    assert_eq!(files(d), before, "a refused mapping file wrote something");

    write(
        &mapping,
        "SET datafusion.runtime.temp_directory = '/etc';\n\
         CREATE EXTERNAL TABLE t STORED AS JSON LOCATION '${d}/ev/';\n\
         SELECT u AS user_id, 'a' AS segment FROM t;\n",
    );
    let err = run_fails(
        &mut run_mapping(&mapping, &format!("d={}", d.display()), d.join("out"), &[]),
        3,
    );
    assert!(err.contains("users.sql:1: SET datafusion.runtime"), "{err}");
}
