//! One large CSV file read in byte ranges, end to end through the binary: the plan shows its
//! ranges, and the run writes the rows and bad records (file, line, offset, reason) of a run on
//! one thread. A quoted line break after the first 64 KiB that a cut falls in makes the file read
//! whole: by inference when the columns are inferred, by a second attempt when they are declared.

use std::path::Path;

use crate::common::*;
use serde_json::Value;

/// A users mapping over the CSV file `${d}/big.csv`, after `settings`; `columns`: declared ones.
fn mapping(dir: &Path, name: &str, settings: &str, columns: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{name}/users.sql"));
    write(
        &path,
        format!(
            "{settings}\nCREATE EXTERNAL TABLE t {columns} STORED AS CSV LOCATION '${{d}}/big.csv' \
             OPTIONS ('format.has_header' 'true');\n\
             SELECT u AS user_id, s AS tag, left(n, 200) AS note FROM t;\n"
        ),
    );
    path
}

/// Over `min_bytes` of records with quoted commas, escaped quotes and CRLF lines, and, past the
/// first 64 KiB, bad records (a field too many, one too few, a quote left open).
fn big_csv(min_bytes: usize) -> Vec<u8> {
    let mut text = b"u,s,n\n".to_vec();
    let mut u = 0;
    while text.len() < min_bytes {
        if u % 50_000 == 25_000 {
            let bad: &[u8] = match (u / 50_000) % 3 {
                0 => b"-1,a,b,c\n",
                1 => b"-2\n",
                _ => b"-3,\"open,x\n",
            };
            text.extend_from_slice(bad);
        }
        let line_end = if u % 7 == 0 { "\r\n" } else { "\n" };
        let note = match u % 3 {
            0 => format!("\"a, b {u}\""),
            1 => format!("\"say \"\"hi\"\" {u}\""),
            _ => format!("plain{}", "x".repeat(u % 30)),
        };
        text.extend(format!("{u},tag-{u},{note}{line_end}").bytes());
        u += 1;
    }
    text
}

/// A bad record as the bad-records file gives it: file, line, byte offset, reason.
type BadLine = (String, u64, u64, String);

/// Runs `mapping` with `--on-bad-records skip` and `extra` arguments; the users written (sorted),
/// the report's rows, the bad records (sorted) and the log.
fn run(
    d: &Path,
    mapping: &Path,
    out: &str,
    extra: &[&str],
) -> (Vec<String>, Value, Vec<BadLine>, String) {
    let output = run_ok(
        pengine()
            .arg("run")
            .arg(mapping)
            .args(["--json", "--no-progress", "--on-bad-records", "skip", "-o"])
            .arg(d.join(out))
            .args(extra)
            .arg("--var")
            .arg(format!("d={}", d.display())),
    );
    let report: Value = stdout_json(&output);
    let data = read_dataset(&d.join(out).join("users"));
    let mut users: Vec<String> = (0..data.column("USER_ID").len())
        .map(|i| {
            format!(
                "{}|{}|{}",
                data.column("USER_ID")[i],
                data.column("TAG")[i],
                data.column("NOTE")[i]
            )
        })
        .collect();
    users.sort();
    let bad_file = d.join(out).join("users.bad-records.jsonl");
    let text = std::fs::read_to_string(bad_file).unwrap_or_default();
    let mut bad: Vec<BadLine> = text
        .lines()
        .map(|l| {
            let b: Value = serde_json::from_str(l).unwrap();
            (
                b["file"].as_str().unwrap().to_string(),
                b["line"].as_u64().unwrap(),
                b["byte_offset"].as_u64().unwrap(),
                b["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    bad.sort();
    (users, report["rows"].clone(), bad, stderr(&output))
}

fn explain(d: &Path, mapping: &Path, extra: &[&str]) -> String {
    stdout(&run_ok(
        pengine()
            .args(["explain", "--on-bad-records", "skip"])
            .arg(mapping)
            .args(extra)
            .arg("--var")
            .arg(format!("d={}", d.display())),
    ))
}

#[test]
fn a_large_csv_read_in_ranges_gives_what_one_thread_gives() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let big = big_csv(11 << 20);
    write(d.join("big.csv"), &big);
    let users = mapping(d, "m", "", "");

    let plan = explain(d, &users, &[]);
    assert!(plan.matches("big.csv:").count() >= 2, "not split:\n{plan}");
    let plan = explain(d, &users, &["--threads", "1"]);
    assert_eq!(plan.matches("big.csv:").count(), 0, "{plan}");

    let (split_rows, split_report, split_bad, _) = run(d, &users, "out-split", &[]);
    let (whole_rows, whole_report, whole_bad, _) = run(d, &users, "out-whole", &["--threads", "1"]);
    assert!(split_rows.len() > 200_000, "{}", split_rows.len());
    assert_eq!(split_rows, whole_rows);
    assert_eq!(split_report, whole_report);
    assert!(split_bad.len() >= 4, "{split_bad:#?}");
    assert_eq!(split_bad, whole_bad);
    // Lines are the file's: the record at each bad line is the one named.
    let lines: Vec<&[u8]> = big.split(|b| *b == b'\n').collect();
    for (_, line, _, _) in &split_bad {
        assert!(lines[*line as usize - 1].starts_with(b"-"), "line {line}");
    }
}

#[test]
fn a_quoted_line_break_where_a_file_is_cut_makes_it_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Two ranges, cut in the middle, inside a value of many lines.
    let mut text = big_csv(1 << 20);
    let long: String = (0..4000)
        .map(|i| format!("line {i} of the note\n"))
        .collect();
    text.extend(format!("999999,multi,\"{long}\"\n").bytes());
    text.extend_from_slice(&big_csv(1 << 20)[6..]);
    write(d.join("big.csv"), &text);
    let settings = "SET datafusion.optimizer.repartition_file_min_size = 1000000;\n\
                    SET datafusion.execution.target_partitions = 2;";
    let inferred = mapping(d, "inferred", settings, "");
    let declared = mapping(d, "declared", settings, "(u BIGINT, s VARCHAR, n VARCHAR)");
    let plan = explain(d, &declared, &[]);
    assert!(plan.matches("big.csv:").count() >= 2, "not split:\n{plan}");

    let (whole_rows, _, whole_bad, _) = run(d, &inferred, "out-whole", &["--threads", "1"]);
    assert!(
        whole_rows
            .iter()
            .any(|r| r.starts_with("999999|multi|line 0"))
    );
    // Inferred columns: inference finds the cut inside the record, the scan reads the file whole.
    let (rows, _, bad, log) = run(d, &inferred, "out-inferred", &["-v"]);
    assert_eq!(rows, whole_rows);
    assert_eq!(bad, whole_bad);
    assert!(log.contains("reading the file whole"), "{log}");
    // Declared columns: the scan finds it, and the run starts again reading CSV files whole.
    let (rows, _, bad, log) = run(d, &declared, "out-declared", &["-v"]);
    assert_eq!(rows, whole_rows);
    assert_eq!(bad, whole_bad);
    assert!(
        log.contains("began inside a record")
            && log.contains("reading CSV files whole and running again"),
        "{log}"
    );
}

/// A table that says values hold line breaks is never split.
#[test]
fn newlines_in_values_keeps_a_file_whole() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d.join("big.csv"), big_csv(11 << 20));
    let path = d.join("m/users.sql");
    write(
        &path,
        "CREATE EXTERNAL TABLE t STORED AS CSV LOCATION '${d}/big.csv' OPTIONS \
         ('format.has_header' 'true', 'format.newlines_in_values' 'true');\n\
         SELECT u AS user_id, s AS tag FROM t;\n",
    );
    let plan = explain(d, &path, &[]);
    assert_eq!(plan.matches("big.csv:").count(), 0, "{plan}");
}
