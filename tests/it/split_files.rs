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

    let plan = show("explain", d, &split, "skip");
    let ranges = plan.matches("big.json:").count();
    assert!(
        ranges >= 4,
        "the big file is not split into ranges:\n{plan}"
    );
    let plan = show("explain", d, &whole, "skip");
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

/// Back-to-back records (`{..}{..}`, as Firehose writes them) of users `from..`, about `len`
/// bytes.
fn joined_records(from: u64, len: usize) -> Vec<u8> {
    let mut text = Vec::new();
    let mut u = from;
    while text.len() < len {
        text.extend(format!("{{\"u\":{u},\"s\":\"tag-{u}\"}}").bytes());
        u += 1;
    }
    text
}

/// A back-to-back file whose middle, where two ranges cut it, is inside a string full of `}{`
/// followed by what a range starting there would read as records (`{\"u\":7777777}`, bad JSON).
fn joined_with_a_cut_in_a_string() -> Vec<u8> {
    // Short enough for a categorical value (1,000 characters).
    joined_with_a_string_at_the_cut(&"}{\\\"u\\\":7777777}".repeat(55), b"")
}

/// A back-to-back file cut at a `}{` inside a string that a range starting there reads as empty
/// records (`{}{}..`): rows without a user, which break Personalize's USER_ID rule. `tail`
/// ends the file.
fn joined_with_empty_records_in_a_string(tail: &[u8]) -> Vec<u8> {
    joined_with_a_string_at_the_cut(&"}{}{".repeat(200), tail)
}

/// Back-to-back records, then a record whose string holds `inside`, where DataFusion cuts 2
/// ranges (at half the size rounded up), then records and `tail`.
fn joined_with_a_string_at_the_cut(inside: &str, tail: &[u8]) -> Vec<u8> {
    let mut text = joined_records(0, 1 << 20);
    text.extend(b"{\"u\":999999,\"s\":\"first");
    let closing = b"\"}";
    let rest = joined_records(2_000_000, text.len() - closing.len() - tail.len());
    let before_inside = text.len();
    text.extend(inside.bytes());
    text.extend(closing);
    text.extend(rest);
    text.extend(tail);
    let cut = text.len().div_ceil(2);
    assert!(before_inside + 100 < cut && cut + 100 < before_inside + inside.len());
    text
}

/// Runs `mapping` by `command` (pengine, with its environment; its own output folder `out`)
/// with `args`, its sources in `d` or in the bucket `raw` of `s3`; the users written, sorted,
/// and the log.
fn run_logged_by(
    mut command: std::process::Command,
    d: &Path,
    s3: Option<&S3Server>,
    mapping: &Path,
    out: &str,
    args: &[&str],
) -> (Vec<String>, String) {
    let source = source_root(&mut command, d, s3);
    let output = run_ok(
        command
            .env_remove("PENGINE_LOG")
            .arg("run")
            .arg(mapping)
            .args(["--no-progress", "-v", "-o"])
            .arg(d.join(out))
            .args(args)
            .arg("--var")
            .arg(format!("d={source}")),
    );
    let mut users = read_dataset(&d.join(out).join("users")).column("USER_ID");
    users.sort();
    (users, stderr(&output))
}

/// What the log says when a cut fell inside a record (for a back-to-back file, in a string).
const CUT_IN_A_STRING: &str = "began inside a record (";

/// Two users mappings over `${d}/ev/`: one reading files of 100 kB and more in 2 ranges, one
/// reading every file whole.
fn split_and_whole(d: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let two = "SET datafusion.optimizer.repartition_file_min_size = 100000;\n\
               SET datafusion.execution.target_partitions = 2;";
    let whole = "SET datafusion.optimizer.repartition_file_scans = false;";
    (mapping(d, "split", two), mapping(d, "whole", whole))
}

/// A large back-to-back file is read in ranges cut at `}{`: the rows of a whole read, in one
/// pass. When a cut falls at a `}{` inside a string, the scan finds it (under `skip` from the
/// range before the cut, under `fail` from the range after it, before it reports a made-up bad
/// record) and the run reads the file whole: the same rows again, never a record made up of a
/// string's contents. Inference from every record (`schema`) finds it too.
#[test]
fn a_large_back_to_back_file_is_read_in_ranges_and_whole_when_a_cut_is_in_a_string() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (split, whole) = split_and_whole(d);

    write(d.join("ev/big.json"), joined_records(0, 2 << 20));
    let plan = show("explain", d, &split, "skip");
    assert_eq!(plan.matches("big.json:").count(), 2, "not split:\n{plan}");
    let (whole_users, _) = run_logged_by(pengine(), d, None, &whole, "out-whole", &[]);
    let (split_users, log) = run_logged_by(pengine(), d, None, &split, "out-split", &[]);
    assert!(whole_users.len() > 60_000, "{}", whole_users.len());
    assert_eq!(split_users, whole_users);
    assert!(!log.contains(CUT_IN_A_STRING), "{log}");

    write(d.join("ev/big.json"), joined_with_a_cut_in_a_string());
    let (whole_users, _) = run_logged_by(pengine(), d, None, &whole, "out-whole2", &[]);
    assert!(whole_users.contains(&"999999".to_string()));
    for policy in ["skip", "fail"] {
        assert_eq!(
            show("schema", d, &split, policy),
            show("schema", d, &whole, policy)
        );
    }
    assert!(!whole_users.contains(&"7777777".to_string()));
    for policy in ["skip", "fail"] {
        let out = format!("out-split2-{policy}");
        let args = ["--on-bad-records", policy];
        let (split_users, log) = run_logged_by(pengine(), d, None, &split, &out, &args);
        assert_eq!(split_users, whole_users, "{policy}");
        assert!(log.contains(CUT_IN_A_STRING), "{policy}: {log}");
        let bad_records = d.join(&out).join("users.bad-records.jsonl");
        assert!(!bad_records.exists(), "{policy}");
    }
}

/// The rows a range after a cut inside a string makes up can fail the run before the range
/// before the cut finds the cut: here under `--on-bad-records skip` (the string's end is only a
/// skipped bad record), empty records break the USER_ID rule under `--on-invalid fail`. The
/// failed run checks its cuts before it reports, and reads the file whole instead: the rows of a
/// whole read, no rejects, no bad records. Whichever range stops first; the range after the cut
/// always does when the first range is held back (`first-range-late`) and batches are small
/// (the exchange before the writer holds a batch under the batch size until more rows come, and
/// those would be the held range's). A row that does break the rule still fails the run, its
/// cuts checked and found right.
#[test]
fn rows_made_up_after_a_cut_in_a_string_do_not_fail_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (split, whole) = split_and_whole(d);
    let small_batches = mapping(
        d,
        "split-small-batches",
        "SET datafusion.optimizer.repartition_file_min_size = 100000;\n\
         SET datafusion.execution.target_partitions = 2;\n\
         SET datafusion.execution.batch_size = 100;",
    );
    write(
        d.join("ev/big.json"),
        joined_with_empty_records_in_a_string(b""),
    );
    let plan = show("explain", d, &split, "skip");
    assert_eq!(plan.matches("big.json:").count(), 2, "not split:\n{plan}");
    let (whole_users, _) = run_logged_by(pengine(), d, None, &whole, "out-whole", &[]);
    assert!(whole_users.contains(&"999999".to_string()));
    for (policy, late) in [("skip", false), ("fail", false), ("skip", true)] {
        let out = format!("out-split-{policy}-{late}");
        let args = ["--on-bad-records", policy];
        let mut command = pengine();
        let mut mapping = &split;
        if late {
            command.env("PENGINE_FAILPOINT", "first-range-late");
            mapping = &small_batches;
        }
        let (split_users, log) = run_logged_by(command, d, None, mapping, &out, &args);
        assert_eq!(split_users, whole_users, "{policy}");
        assert!(log.contains(CUT_IN_A_STRING), "{policy}: {log}");
        if late {
            assert!(log.contains("checking the cuts of 1 file(s)"), "{log}");
        }
        assert!(
            !d.join(&out).join("users.bad-records.jsonl").exists(),
            "{policy}"
        );
        assert!(!d.join(&out).join("users.rejects.csv").exists(), "{policy}");
    }

    // A record without a user near the file's end: a real failure, reported as it is, whether
    // a cut is inside a string (found, the file read whole) or not (checked and found right).
    let mut tail = b"{\"s\":\"no user\"}".to_vec();
    tail.extend(joined_records(3_000_000, 1000));
    let mut cuts_right = joined_records(0, 2 << 20);
    cuts_right.extend(&tail);
    for (name, text) in [
        (
            "cut in a string",
            joined_with_empty_records_in_a_string(&tail),
        ),
        ("cuts right", cuts_right),
    ] {
        write(d.join("ev/big.json"), text);
        let out = d.join(format!("out-invalid-{}", name.replace(' ', "-")));
        let output = pengine()
            .env_remove("PENGINE_LOG")
            .arg("run")
            .arg(&split)
            .args(["--no-progress", "-v", "--on-bad-records", "skip", "-o"])
            .arg(&out)
            .arg("--var")
            .arg(format!("d={}", d.display()))
            .output()
            .unwrap();
        let log = stderr(&output);
        assert!(!output.status.success(), "{name}: {log}");
        // With the cut in a string, the range before it may find it first.
        if name == "cuts right" {
            assert!(log.contains("checking the cuts of 1 file(s)"), "{log}");
        }
        assert_eq!(
            log.contains(CUT_IN_A_STRING),
            name == "cut in a string",
            "{log}"
        );
        assert!(log.contains("USER_ID is empty"), "{name}: {log}");
        assert!(
            log.contains("no user"),
            "{name}: not the real record's row: {log}"
        );
        assert!(!out.join("users").exists(), "{name}: {log}");
    }
}

/// The same on S3: ranges read by range requests; under `fail`, a range after a cut inside a
/// string that stops first checks its start by reading the object's bytes before it through the
/// store (which range stops first is up to the scheduler; the unit tests force each order).
#[test]
fn a_back_to_back_file_on_s3_is_read_in_ranges_and_whole_when_a_cut_is_in_a_string() {
    let server = S3Server::start(&["raw"]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let (split, whole) = split_and_whole(d);

    write(server.path("raw/ev/big.json"), joined_records(0, 2 << 20));
    let (whole_users, _) = run_logged_by(pengine(), d, Some(&server), &whole, "out-whole", &[]);
    let (split_users, log) = run_logged_by(pengine(), d, Some(&server), &split, "out-split", &[]);
    assert!(whole_users.len() > 60_000, "{}", whole_users.len());
    assert_eq!(split_users, whole_users);
    assert!(!log.contains(CUT_IN_A_STRING), "{log}");

    write(
        server.path("raw/ev/big.json"),
        joined_with_a_cut_in_a_string(),
    );
    let (whole_users, _) = run_logged_by(pengine(), d, Some(&server), &whole, "out-whole2", &[]);
    for policy in ["skip", "fail"] {
        let out = format!("out-split2-{policy}");
        let args = ["--on-bad-records", policy];
        let (split_users, log) = run_logged_by(pengine(), d, Some(&server), &split, &out, &args);
        assert_eq!(split_users, whole_users, "{policy}");
        assert!(log.contains(CUT_IN_A_STRING), "{policy}: {log}");
        assert!(log.contains("s3://raw/ev/big.json"), "{policy}: {log}");
    }
}

/// A compressed file over 4 MB cannot be cut into ranges, and is inflated on a task of its own
/// ahead of its parser: it gives the rows and bad records (offsets in its inflated text) of the
/// same file uncompressed. A corrupt one fails the run, naming it, and publishes nothing.
#[test]
fn a_large_gzip_file_inflated_ahead_gives_what_the_plain_file_gives() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, gzip) = (dir.path().join("plain"), dir.path().join("gzip"));
    let mut text = big_file();
    text.extend(big_file());
    assert!(text.len() > 4 << 20, "{}", text.len());
    write(plain.join("ev/big.json"), &text);
    let compressed = gzipped(&text, flate2::Compression::none());
    // Over the size from which a compressed file is inflated ahead of its parser.
    assert!(compressed.len() > 4 << 20, "{}", compressed.len());
    write(gzip.join("ev/big.json.gz"), &compressed);
    let settings = "SET datafusion.optimizer.repartition_file_min_size = 1000000;";
    let (plain_users, plain_report, plain_bad) =
        run(&plain, &mapping(&plain, "m", settings), "out");
    let (gzip_users, gzip_report, gzip_bad) = run(&gzip, &mapping(&gzip, "m", settings), "out");
    assert_eq!(plain_users.len(), 2 * 60_000);
    assert_eq!(gzip_users, plain_users);
    let in_file = |bad: Vec<BadLine>| -> Vec<(u64, String, String)> {
        bad.into_iter()
            .map(|(_, at, why, text)| (at, why, text))
            .collect()
    };
    assert_eq!(plain_bad.len(), 2 * 9, "{plain_bad:#?}");
    assert_eq!(in_file(gzip_bad), in_file(plain_bad));
    assert_eq!(gzip_report["rows"], plain_report["rows"]);

    // The same file with bytes past its middle overwritten.
    let mut corrupt = compressed;
    let middle = corrupt.len() / 2;
    corrupt[middle..middle + 4096].fill(0xa5);
    write(gzip.join("ev/big.json.gz"), &corrupt);
    let err = run_fails(
        pengine()
            .arg("run")
            .arg(mapping(&gzip, "m", settings))
            .args(["--no-progress", "--on-bad-records", "skip", "-o"])
            .arg(gzip.join("out-corrupt"))
            .arg("--var")
            .arg(format!("d={}", gzip.display())),
        4,
    );
    assert!(err.contains("big.json.gz"), "{err}");
    assert!(!gzip.join("out-corrupt/users").exists(), "{err}");
}

/// A gzip file's inflated text is cut into segments of 2 MiB at line breaks between a `}` and a
/// `{`. A broken record whose first line ends there (`{..,"o":{"a":1}`, closed by the next line's
/// last `}`) spans the cut: the segment before it ends with the record open, and the run reads
/// the file whole again, with the plain file's rows and bad records (the broken record's reason
/// is the whole record's, not a truncation at the cut), under `skip` and `fail` alike.
#[test]
fn a_broken_record_across_a_cut_of_a_compressed_file_makes_the_run_read_it_whole() {
    const SEGMENT: usize = 2 << 20;
    let dir = tempfile::tempdir().unwrap();
    let (plain, gzip) = (dir.path().join("plain"), dir.path().join("gzip"));
    let line = |u: usize| format!("{{\"u\":{u},\"s\":\"tag-{u}\"}}\n");
    let mut text = Vec::new();
    let mut u = 0;
    while text.len() + line(u).len() < SEGMENT - 200 {
        text.extend(line(u).bytes());
        u += 1;
    }
    // Its first line break is the first past the segment's size.
    let broken = format!(
        "{{\"u\":-9,\"pad\":\"{}\",\"o\":{{\"a\":1}}\n",
        "p".repeat(400)
    );
    text.extend(broken.bytes());
    text.extend(b"{\"u\":777777,\"s\":\"after\"}}\n");
    for u in 900_000..1_020_000 {
        text.extend(line(u).bytes());
    }
    write(plain.join("ev/big.json"), &text);
    let compressed = gzipped(&text, flate2::Compression::none());
    // Over the size from which a compressed file is inflated ahead and decoded in segments.
    assert!(compressed.len() > 4 << 20, "{}", compressed.len());
    write(gzip.join("ev/big.json.gz"), compressed);

    let (plain_users, plain_report, plain_bad) = run(&plain, &mapping(&plain, "m", ""), "out");
    let (gzip_users, gzip_report, gzip_bad) = run(&gzip, &mapping(&gzip, "m", ""), "out");
    assert!(plain_users.contains(&"900000".to_string()));
    assert!(plain_users.contains(&"777777".to_string()));
    assert_eq!(gzip_users, plain_users);
    assert_eq!(gzip_report["rows"], plain_report["rows"]);
    let in_file = |bad: Vec<BadLine>| -> Vec<(u64, String)> {
        bad.into_iter().map(|(_, at, why, _)| (at, why)).collect()
    };
    // The broken record, and the `}` after the record the whole read starts again at.
    assert_eq!(plain_bad.len(), 2, "{plain_bad:#?}");
    assert!(!plain_bad[0].2.contains("truncated"), "{plain_bad:#?}");
    assert_eq!(in_file(gzip_bad), in_file(plain_bad.clone()));

    let retry = "where the compressed file's text was cut";
    let skip = ["--on-bad-records", "skip"];
    let (users, log) = run_logged_by(
        pengine(),
        &gzip,
        None,
        &mapping(&gzip, "m", ""),
        "out-logged",
        &skip,
    );
    assert_eq!(users, plain_users);
    assert!(log.contains(retry), "{log}");
    let fails = |d: &Path| {
        run_fails(
            pengine()
                .env_remove("PENGINE_LOG")
                .arg("run")
                .arg(mapping(d, "m", ""))
                .args(["--no-progress", "-v", "--on-bad-records", "fail", "-o"])
                .arg(d.join("out-fail"))
                .arg("--var")
                .arg(format!("d={}", d.display())),
            4,
        )
    };
    let (plain_err, gzip_err) = (fails(&plain), fails(&gzip));
    let offset = format!("byte {}", plain_bad[0].1);
    assert!(plain_err.contains(&offset), "{plain_err}");
    assert!(gzip_err.contains(&offset), "{gzip_err}");
    assert!(gzip_err.contains(retry), "{gzip_err}");
}

/// A file whose head is one record per line, with a pretty-printed record (over several lines,
/// one of them a whole object) where a range is cut: the range before the cut finds the record
/// crossing it, and the run reads the file whole. The rows and bad records of a whole read,
/// under `skip` and `fail` alike; before, the range after the cut made up bad records (and a
/// row) from the record's inner lines.
#[test]
fn a_pretty_printed_record_across_a_line_start_cut_makes_the_run_read_the_file_whole() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let line = |u: usize| format!("{{\"u\":{u},\"s\":\"tag-{u}\"}}\n");
    let mut first = Vec::new();
    let mut u = 0;
    while first.len() < 1 << 20 {
        first.extend(line(u).bytes());
        u += 1;
        if u == 5_000 {
            // One bad line past the head, for a bad-records file to compare.
            first.extend(b"not json at all\n");
        }
    }
    let pretty = "{\n  \"u\": 888888,\n  \"s\": \"pretty\",\n  \"o\":\n{\"u\": 555555}\n}\n";
    let mut text = first.clone();
    text.extend(pretty.bytes());
    // As long again after it: DataFusion cuts 2 ranges at half the size, inside `pretty`.
    while text.len() < 2 * first.len() + pretty.len() {
        text.extend(line(u).bytes());
        u += 1;
    }
    let half = text.len().div_ceil(2);
    assert!(first.len() < half && half < first.len() + pretty.len());
    write(d.join("ev/big.json"), &text);
    let (split, whole) = split_and_whole(d);
    let plan = show("explain", d, &split, "skip");
    assert_eq!(plan.matches("big.json:").count(), 2, "not split:\n{plan}");

    let (whole_users, whole_report, whole_bad) = run(d, &whole, "out-whole");
    assert!(whole_users.contains(&"888888".to_string()));
    assert!(!whole_users.contains(&"555555".to_string()));
    assert_eq!(whole_bad.len(), 1, "{whole_bad:?}");
    let (split_users, split_report, split_bad) = run(d, &split, "out-split");
    assert_eq!(split_users, whole_users);
    assert_eq!(split_report, whole_report);
    assert_eq!(split_bad, whole_bad);
    // Under `fail` the run stops at the one bad line, as a whole read does, and not at a line
    // made up of the record's inside.
    let fails = |mapping: &Path| {
        run_fails(
            pengine()
                .arg("run")
                .arg(mapping)
                .args(["--no-progress", "--on-bad-records", "fail", "-o"])
                .arg(d.join("out-fail"))
                .arg("--var")
                .arg(format!("d={}", d.display())),
            4,
        )
    };
    let offset = format!("byte {}", whole_bad[0].1);
    assert!(fails(&whole).contains(&offset));
    let err = fails(&split);
    assert!(err.contains(&offset), "{err}");
}

/// A large gzip file whose head is one object per line, and whose lines after it start with a
/// space (no line break between a `}` and a `{` to cut at): its text is cut at the segment's size
/// limit instead, at any line break. There the cut falls inside a pretty-printed record, which
/// makes the run read the file whole: the rows and bad records of the plain file.
#[test]
fn a_large_gzip_file_without_a_cut_between_objects_is_cut_at_the_size_limit() {
    const FORCED: usize = 8 << 20;
    let dir = tempfile::tempdir().unwrap();
    let (plain, gzip) = (dir.path().join("plain"), dir.path().join("gzip"));
    let mut text = Vec::new();
    let mut u = 0;
    while text.len() < 20_000 {
        text.extend(format!("{{\"u\":{u},\"s\":\"tag-{u}\"}}\n").bytes());
        u += 1;
    }
    let line = |u: usize| match u % 50_000 {
        // A bad line now and then, placed by its offset.
        25_000 => " {\"u\":oops}\n".to_string(),
        _ => format!(
            " {{\"u\":{u},\"s\":\"tag-{u}\",\"pad\":\"{}\"}}\n",
            "p".repeat(u % 60)
        ),
    };
    while text.len() + 200 < FORCED - 10 {
        text.extend(line(u).bytes());
        u += 1;
    }
    let short = " {\"u\":-1,\"s\":\"pad\",\"pad\":\"\"}\n".len();
    let pad = format!(
        " {{\"u\":-1,\"s\":\"pad\",\"pad\":\"{}\"}}\n",
        "p".repeat(FORCED - 10 - text.len() - short)
    );
    text.extend(pad.bytes());
    assert_eq!(text.len(), FORCED - 10);
    // Its first line break is before the limit, its second the first past it.
    text.extend(b" {\n  \"u\": 999999,\n  \"s\": \"pretty\"\n }\n");
    while text.len() < 19 << 20 {
        text.extend(line(u).bytes());
        u += 1;
    }
    write(plain.join("ev/big.json"), &text);
    let compressed = gzipped(&text, flate2::Compression::none());
    write(gzip.join("ev/big.json.gz"), compressed);
    let (plain_users, plain_report, plain_bad) = run(&plain, &mapping(&plain, "m", ""), "out");
    let (gzip_users, gzip_report, gzip_bad) = run(&gzip, &mapping(&gzip, "m", ""), "out");
    assert!(plain_users.len() > 200_000, "{}", plain_users.len());
    assert!(plain_users.contains(&"999999".to_string()));
    assert_eq!(gzip_users, plain_users);
    assert_eq!(gzip_report["rows"], plain_report["rows"]);
    assert!(plain_bad.len() >= 3, "{plain_bad:#?}");
    let in_file = |bad: Vec<BadLine>| -> Vec<(u64, String)> {
        bad.into_iter().map(|(_, at, why, _)| (at, why)).collect()
    };
    assert_eq!(in_file(gzip_bad), in_file(plain_bad));
    let skip = ["--on-bad-records", "skip"];
    let mapping = mapping(&gzip, "m", "");
    let (users, log) = run_logged_by(pengine(), &gzip, None, &mapping, "out-logged", &skip);
    assert_eq!(users, plain_users);
    let cut = FORCED - 10 + " {\n  \"u\": 999999,\n".len();
    assert!(
        log.contains(&format!(
            "the one starting at byte {cut} began inside a record"
        )),
        "{log}"
    );
}
