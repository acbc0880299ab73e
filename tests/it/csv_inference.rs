//! CSV columns inferred without a second pass over the export: a run types them from the first
//! records and its scan checks every other record (src/sources/sampled.rs). These tests hold the
//! promises of a full inference on exports larger than that sample: a value past the sample that
//! a column's type cannot hold (text in a number column, a code with a leading zero) makes the
//! column text with the exact characters, a longer header in a later file adds its column, a
//! column empty in the sample is typed by the values after it, and an export rewritten between
//! runs is inferred again.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::common::*;

/// More records than a run's sample (`SAMPLE_RECORDS`, 20,000), so the sample leaves some unread.
const ROWS: usize = 25_000;

const HEADER: &str = "user_id,tier,age,member,score,note\n";

/// `ROWS` users from `from` on: an integer age, a boolean, a float score and an empty note.
fn users(from: usize) -> String {
    let mut text = String::from(HEADER);
    for i in from..from + ROWS {
        writeln!(
            text,
            "{i},t{},{},{},{}.5,",
            i % 3,
            20 + i % 50,
            i % 2 == 0,
            i % 7
        )
        .unwrap();
    }
    text
}

/// A users mapping `dir/users.sql`: `settings`, then `SELECT <select> FROM t` over the CSV files
/// at `dir/ev/`.
fn mapping(dir: &Path, settings: &str, select: &str) -> PathBuf {
    let mapping = dir.join("users.sql");
    write(
        &mapping,
        format!(
            "{settings}\nCREATE EXTERNAL TABLE t STORED AS CSV LOCATION '${{d}}/ev/' \
             OPTIONS ('format.has_header' 'true');\nSELECT {select} FROM t;\n"
        ),
    );
    mapping
}

/// A run of `SELECT <select> FROM t` under `--on-bad-records skip`.
struct Run {
    csv: Csv,
    /// The Avro types by column.
    types: Vec<(String, String)>,
    report: serde_json::Value,
    /// pengine's debug log.
    log: String,
}

/// Runs `SELECT <select> FROM t` over the CSV files at `dir/ev/` (after `settings`) with
/// pengine's debug log on.
fn run_with(dir: &Path, settings: &str, select: &str) -> Run {
    let mapping = mapping(dir, settings, select);
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
    let schema: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("users.schema.json")).unwrap()).unwrap();
    let types = schema["fields"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| {
            (
                f["name"].as_str().unwrap().to_string(),
                f["type"].to_string(),
            )
        })
        .collect();
    Run {
        csv: read_dataset(&out.join("users")),
        types,
        report: stdout_json(&output),
        log: stderr(&output),
    }
}

/// [`run_with`] without settings: the CSV, the Avro types and the log.
fn run(dir: &Path, select: &str) -> (Csv, Vec<(String, String)>, String) {
    let Run {
        csv, types, log, ..
    } = run_with(dir, "", select);
    (csv, types, log)
}

const SAMPLED: &str = "CSV columns inferred from the first 20000 records";
const STARTED_AGAIN: &str = "inferring the columns from every record and running again";
const PROBED: &str = "records of later CSV files do not fit the columns of the first 20000";

fn type_of(types: &[(String, String)], column: &str) -> String {
    let (_, t) = types.iter().find(|(name, _)| name == column).unwrap();
    t.clone()
}

#[test]
fn one_pass_when_every_record_fits_the_sample() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d.join("ev/a.csv"), users(0));
    write(d.join("ev/b.csv"), users(ROWS));
    let (csv, types, log) = run(d, "user_id, tier, age, member, score");
    assert!(log.contains(SAMPLED), "{log}");
    assert!(!log.contains(STARTED_AGAIN), "{log}");
    assert!(!log.contains(PROBED), "{log}");
    assert_eq!(csv.rows.len(), 2 * ROWS);
    assert_eq!(type_of(&types, "AGE"), r#"["null","long"]"#);
    assert_eq!(type_of(&types, "SCORE"), r#"["null","double"]"#);
    assert_eq!(csv.user_value("49999", "SCORE"), "5.5");
    assert_eq!(csv.user_value("49998", "MEMBER"), "True");
}

#[test]
fn values_past_the_sample_that_a_type_cannot_hold_make_the_column_text() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Past the sample's 20,000 records of the same file: only the scan meets them. A code
    // with a leading zero would read as the number 7 in an integer column; `yes` as true.
    for (column, row, value) in [
        ("age", "99999999,t9,unknown,true,1.5,", "unknown"),
        ("age", "99999999,t9,007,true,1.5,", "007"),
        ("member", "99999999,t9,30,yes,1.5,", "yes"),
        ("score", "99999999,t9,30,true,1.5e,", "1.5e"),
    ] {
        write(d.join("ev/a.csv"), users(0) + row + "\n");
        write(d.join("ev/b.csv"), users(ROWS));
        let (csv, types, log) = run(d, "user_id, age, member, score");
        assert!(log.contains(SAMPLED), "{log}");
        assert!(!log.contains(PROBED), "{log}");
        assert!(log.contains(STARTED_AGAIN), "{log}");
        assert!(log.contains(&format!("field '{column}'")), "{log}");
        assert_eq!(csv.rows.len(), 2 * ROWS + 1);
        let upper = column.to_uppercase();
        assert_eq!(csv.user_value("99999999", &upper), value);
        assert_eq!(type_of(&types, &upper), r#"["null","string"]"#, "{column}");
        // The other rows keep their text as written.
        assert_eq!(csv.user_value("3", "AGE"), "23");
    }
}

#[test]
fn a_longer_header_in_a_later_file_adds_its_column() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d.join("ev/a.csv"), users(0));
    write(d.join("ev/b.csv"), users(ROWS));
    write(
        d.join("ev/z.csv"),
        "user_id,tier,age,member,score,note,segment\n99999999,t9,33,false,0.5,,vip\n",
    );
    // The last file is among those whose first records are checked before the scan.
    let (csv, _, log) = run(d, "*");
    assert!(log.contains(PROBED), "{log}");
    assert!(!log.contains(STARTED_AGAIN), "{log}");
    assert_eq!(csv.rows.len(), 2 * ROWS + 1);
    assert_eq!(csv.user_value("99999999", "SEGMENT"), "vip");
    // In a file the probes skip (the first of 40 after the sample's), the scan meets it and the
    // run starts again.
    std::fs::remove_file(d.join("ev/z.csv")).unwrap();
    std::fs::remove_file(d.join("ev/b.csv")).unwrap();
    for i in 0..40 {
        let (header, segment) = match i {
            0 => ("user_id,tier,age,member,score,note,segment\n", ",vip"),
            _ => (HEADER, ""),
        };
        write(
            d.join(format!("ev/b{i:02}.csv")),
            format!("{header}{},t1,20,true,1.5,{segment}\n", 100_000 + i),
        );
    }
    let (csv, _, log) = run(d, "*");
    assert!(!log.contains(PROBED), "{log}");
    assert!(log.contains(STARTED_AGAIN), "{log}");
    assert!(log.contains("field 'segment'"), "{log}");
    assert_eq!(csv.header.len(), 7);
    assert_eq!(csv.rows.len(), ROWS + 40);
    assert_eq!(csv.user_value("100000", "SEGMENT"), "vip");
}

#[test]
fn a_value_at_the_end_of_one_large_file_is_found_before_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // One file of a few MB, as exports that come whole are: its tail is probed.
    let mut only = users(0);
    for k in 1..5 {
        only.push_str(users(k * ROWS).strip_prefix(HEADER).unwrap());
    }
    only.push_str("99999999,t9,unknown,true,1.5,\n");
    assert!(only.len() > 2 << 20, "{}", only.len());
    write(d.join("ev/all.csv"), only);
    let (csv, types, log) = run(d, "user_id, age");
    assert!(log.contains(PROBED), "{log}");
    assert!(!log.contains(STARTED_AGAIN), "{log}");
    assert_eq!(csv.rows.len(), 5 * ROWS + 1);
    assert_eq!(csv.user_value("99999999", "AGE"), "unknown");
    assert_eq!(type_of(&types, "AGE"), r#"["null","string"]"#);
}

#[test]
fn a_column_empty_in_the_sample_is_typed_by_the_values_after_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d.join("ev/a.csv"),
        users(0) + "99999999,t9,30,true,1.5,42\n",
    );
    let (csv, types, log) = run(d, "user_id, note");
    assert!(log.contains(STARTED_AGAIN), "{log}");
    assert!(log.contains("field 'note'"), "{log}");
    assert_eq!(type_of(&types, "NOTE"), r#"["null","long"]"#);
    assert_eq!(csv.user_value("99999999", "NOTE"), "42");
    // Text there makes any column text: the sample's type stands, in one pass.
    write(
        d.join("ev/a.csv"),
        users(0) + "99999999,t9,30,true,1.5,hello\n",
    );
    let (csv, types, log) = run(d, "user_id, note");
    assert!(log.contains(SAMPLED), "{log}");
    assert!(!log.contains(STARTED_AGAIN), "{log}");
    assert_eq!(type_of(&types, "NOTE"), r#"["null","string"]"#);
    assert_eq!(csv.user_value("99999999", "NOTE"), "hello");
}

#[test]
fn bad_records_after_the_sample_are_set_aside_by_the_scan() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d.join("ev/a.csv"),
        users(0) + "1,t1,20,true,1.5,,extra\n2,\"open,20,true,1.5,\n",
    );
    let Run {
        csv, report, log, ..
    } = run_with(d, "", "user_id, age");
    assert!(log.contains(SAMPLED), "{log}");
    assert!(!log.contains(STARTED_AGAIN), "{log}");
    assert_eq!(csv.rows.len(), ROWS);
    assert_eq!(report["rows"]["bad_records"], 2, "{report}");
}

#[test]
fn a_bad_record_after_the_sample_stops_the_run_by_default_and_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d.join("ev/a.csv"), users(0) + "1,t1,20,true,1.5,,extra\n");
    let mapping = mapping(d, "", "user_id, age");
    let out = d.join("out");
    let err = run_fails(
        &mut run_mapping(&mapping, &format!("d={}", d.display()), &out, &[]),
        4,
    );
    // The header, then ROWS records: the bad one is on the next line.
    let file = d.join("ev/a.csv");
    assert!(err.contains(&file.display().to_string()), "{err}");
    assert!(err.contains(&format!("line {}", ROWS + 2)), "{err}");
    assert_no_staging(&out);
}

#[test]
fn a_large_file_read_in_ranges_meets_a_value_past_the_sample_in_a_middle_range() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // About 2.8 MB in four ranges; the value is past the sample and before the probed last MiB.
    let mut only = users(0);
    for k in 1..5 {
        if k == 2 {
            only.push_str("99999999,t9,unknown,true,1.5,\n");
        }
        only.push_str(users(k * ROWS).strip_prefix(HEADER).unwrap());
    }
    write(d.join("ev/all.csv"), &only);
    let ranges = "SET datafusion.optimizer.repartition_file_min_size = 100000;\n\
                  SET datafusion.execution.target_partitions = 4;";
    let plan = stdout(&run_ok(
        pengine()
            .args(["explain", "--on-bad-records", "skip"])
            .arg(mapping(d, ranges, "user_id, age"))
            .arg("--var")
            .arg(format!("d={}", d.display())),
    ));
    assert!(plan.contains("all.csv:0.."), "{plan}");
    let Run {
        csv, types, log, ..
    } = run_with(d, ranges, "user_id, age");
    assert!(log.contains(SAMPLED), "{log}");
    assert!(!log.contains(PROBED), "{log}");
    assert!(log.contains(STARTED_AGAIN), "{log}");
    assert!(log.contains("field 'age'"), "{log}");
    let offset = only.find("99999999,").unwrap();
    assert!(
        log.contains(&format!("the record at byte {offset} of")),
        "{log}"
    );
    assert_eq!(csv.rows.len(), 5 * ROWS + 1);
    assert_eq!(csv.user_value("99999999", "AGE"), "unknown");
    assert_eq!(type_of(&types, "AGE"), r#"["null","string"]"#);
}

#[test]
fn an_export_rewritten_between_runs_is_inferred_again() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d.join("ev/a.csv"), users(0));
    write(d.join("ev/b.csv"), users(ROWS));
    let (_, types, _) = run(d, "user_id, age");
    assert_eq!(type_of(&types, "AGE"), r#"["null","long"]"#);
    // A file past the sample, rewritten with ages given as ranges.
    write(d.join("ev/b.csv"), users(ROWS).replace(",t1,2", ",t1,2x"));
    let (csv, types, _) = run(d, "user_id, age");
    assert_eq!(type_of(&types, "AGE"), r#"["null","string"]"#);
    assert_eq!(csv.user_value("25001", "AGE"), "21");
    assert!(csv.column("AGE").iter().any(|age| age.starts_with("2x")));
}
