//! One large newline-delimited JSON file read in byte ranges, end to end through the binary: the
//! plan shows the file's ranges, and the run writes the rows and reports the bad records (same
//! files, offsets, reasons) of a run that reads the file whole. A gzip file beside it is read
//! whole either way.

use std::io::Write;
use std::path::Path;

use crate::common::*;
use serde_json::Value;

/// A users mapping over the JSON folder `${d}/ev/`, after `settings` (`SET` statements).
fn mapping(dir: &Path, name: &str, settings: &str) -> std::path::PathBuf {
    let path = dir.join(format!("{name}/users.sql"));
    write(
        &path,
        format!(
            "{settings}\nCREATE EXTERNAL TABLE t STORED AS JSON LOCATION '${{d}}/ev/';\n\
             SELECT u AS user_id, s AS tag FROM t;\n"
        ),
    );
    path
}

/// Newline-delimited events over 2 MB, with bad lines (invalid, garbage, a line break inside a
/// string, truncated) spread through it past its first 64 KiB.
fn big_file() -> Vec<u8> {
    let mut text = Vec::new();
    for u in 0..60_000 {
        if u % 9_000 == 4_500 {
            let bad: &[u8] = match (u / 9_000) % 4 {
                0 => b"{\"u\":-1,}\n",
                1 => b"not json at all\n",
                2 => b"{\"u\":-2,\"s\":\"cut\nshort\"}\n",
                _ => b"{\"u\":-3,\n",
            };
            text.extend_from_slice(bad);
        }
        let line_end = if u % 7 == 0 { "\r\n" } else { "\n" };
        text.extend(
            format!(
                "{{\"u\":{u},\"s\":\"tag-{u}-{}\"}}{line_end}",
                "x".repeat(u % 40)
            )
            .bytes(),
        );
    }
    text
}

/// A bad record as the bad-records file gives it: file, byte offset, reason, excerpt.
type BadLine = (String, u64, String, String);

/// Runs `mapping` with `--on-bad-records skip`; the users written (sorted), the report's row
/// counts and bad records per file, and the bad records as (file, offset, reason, excerpt).
fn run(d: &Path, mapping: &Path, out: &str) -> (Vec<String>, Value, Vec<BadLine>) {
    let output = run_ok(
        pengine()
            .arg("run")
            .arg(mapping)
            .args(["--json", "--no-progress", "--on-bad-records", "skip", "-o"])
            .arg(d.join(out))
            .arg("--var")
            .arg(format!("d={}", d.display())),
    );
    let report: Value = stdout_json(&output);
    let mut users = read_dataset(&d.join(out).join("users")).column("USER_ID");
    users.sort();
    let text = std::fs::read_to_string(d.join(out).join("users.bad-records.jsonl")).unwrap();
    let mut bad: Vec<BadLine> = text
        .lines()
        .map(|l| {
            let b: Value = serde_json::from_str(l).unwrap();
            (
                b["file"].as_str().unwrap().to_string(),
                b["byte_offset"].as_u64().unwrap(),
                b["reason"].as_str().unwrap().to_string(),
                b["excerpt"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    bad.sort();
    let summary = serde_json::json!({
        "rows": report["rows"],
        "bad_records": report["bad_records"]["by_file"],
    });
    (users, summary, bad)
}

#[test]
fn a_large_file_read_in_ranges_gives_what_a_whole_read_gives() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let big = big_file();
    assert!(big.len() > 2 << 20, "{}", big.len());
    write(d.join("ev/big.json"), &big);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(b"{\"u\":900001,\"s\":\"gz\"}\n{\"u\":900002,\"s\":\"gz\"}\nnot json\n")
        .unwrap();
    write(d.join("ev/small.json.gz"), gz.finish().unwrap());

    // Ranges from 1 MB files up, over 4 partitions; and no ranges at all.
    let split = mapping(
        d,
        "split",
        "SET datafusion.optimizer.repartition_file_min_size = 1000000;\n\
         SET datafusion.execution.target_partitions = 4;",
    );
    let whole = mapping(
        d,
        "whole",
        "SET datafusion.optimizer.repartition_file_scans = false;",
    );

    let plan = stdout(&run_ok(
        pengine()
            .args(["explain", "--on-bad-records", "skip"])
            .arg(&split)
            .arg("--var")
            .arg(format!("d={}", d.display())),
    ));
    let ranges = plan.matches("big.json:").count();
    assert!(
        ranges >= 4,
        "the big file is not split into ranges:\n{plan}"
    );
    let plan = stdout(&run_ok(
        pengine()
            .args(["explain", "--on-bad-records", "skip"])
            .arg(&whole)
            .arg("--var")
            .arg(format!("d={}", d.display())),
    ));
    assert_eq!(plan.matches("big.json:").count(), 0, "{plan}");

    let (split_users, split_report, split_bad) = run(d, &split, "out-split");
    let (whole_users, whole_report, whole_bad) = run(d, &whole, "out-whole");
    assert_eq!(split_users.len(), 60_000 + 2);
    assert_eq!(split_users, whole_users);
    assert_eq!(split_report, whole_report);
    // 7 bad lines in the big file (each cut-short one is two bad records), 1 in the gzip file.
    assert_eq!(split_bad.len(), 10, "{split_bad:#?}");
    assert_eq!(split_bad, whole_bad);
}
