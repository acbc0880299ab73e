//! One large CSV file read in byte ranges, end to end through the binary: the plan shows its
//! ranges, and the run writes the rows, bad records (file, line, offset, reason) and inferred
//! schema of a run that reads the file whole. A quoted line break after the first 64 KiB that a
//! cut falls in makes the file read whole: by inference when the columns are inferred, by a
//! second attempt when they are declared. Files are kept to a few MB by lowering the size from
//! which DataFusion splits a file, so the debug binary reads them in seconds.

use std::path::Path;

use crate::common::*;
use serde_json::Value;

/// Ranges from 100 kB files up, over 4 partitions.
const SPLIT: &str = "SET datafusion.optimizer.repartition_file_min_size = 100000;\n\
                     SET datafusion.execution.target_partitions = 4;";
/// Every file read whole, by one reader.
const WHOLE: &str = "SET datafusion.optimizer.repartition_file_scans = false;";

/// A users mapping over the CSV file `${d}/big.csv`, after `settings`; `columns`: declared ones.
fn mapping(dir: &Path, name: &str, settings: &str, columns: &str) -> std::path::PathBuf {
    mapping_with(dir, name, settings, columns, "")
}

/// [`mapping`], with more table `options` (`, 'key' 'value'` each).
fn mapping_with(
    dir: &Path,
    name: &str,
    settings: &str,
    columns: &str,
    options: &str,
) -> std::path::PathBuf {
    let path = dir.join(format!("{name}/users.sql"));
    write(
        &path,
        format!(
            "{settings}\nCREATE EXTERNAL TABLE t {columns} STORED AS CSV LOCATION '${{d}}/big.csv' \
             OPTIONS ('format.has_header' 'true'{options});\n\
             SELECT u AS user_id, s AS tag, left(n, 200) AS note, x AS score FROM t;\n"
        ),
    );
    path
}

/// Table options that keep a file whole whatever its size: no byte ranges, no segments.
const KEEP_WHOLE: &str = ", 'format.newlines_in_values' 'true'";

/// What the log says when a file's text is parsed in segments.
const SEGMENTED: &str = "big.csv: its text is cut in segments";

/// Partitions enough for segments (as on 3 cores and more by default).
const FOUR: &str = "SET datafusion.execution.target_partitions = 4;";

/// Records from `first` on, until over `min_bytes`: quoted commas, escaped quotes, CRLF lines,
/// and past the first 64 KiB bad records (a field too many, one too few, a quote left open, not
/// UTF-8). The last tenth has one score with a fraction, so only a read of every range infers a
/// float for it.
fn records(first: usize, min_bytes: usize) -> Vec<u8> {
    let mut text = Vec::new();
    let mut u = first;
    let mut fraction_due = true;
    while text.len() < min_bytes {
        if u % 10_000 == 5_000 {
            let bad: &[u8] = match (u / 10_000) % 4 {
                0 => b"-1,a,b,c,d\n",
                1 => b"-2\n",
                2 => b"-3,\"open,x,1\n",
                _ => b"-4,caf\xe9,x,1\n",
            };
            text.extend_from_slice(bad);
        }
        let line_end = if u.is_multiple_of(7) { "\r\n" } else { "\n" };
        let note = match u % 3 {
            0 => format!("\"a, b {u}\""),
            1 => format!("\"say \"\"hi\"\" {u}\""),
            _ => format!("plain{}", "x".repeat(u % 30)),
        };
        let score = if fraction_due && text.len() > min_bytes / 10 * 9 {
            fraction_due = false;
            format!("{u}.5")
        } else {
            u.to_string()
        };
        text.extend(format!("{u},tag-{u},{note},{score}{line_end}").bytes());
        u += 1;
    }
    text
}

/// Records without quotes (`u,tag-u,plainu,u`) from `first` on, until `text` is `until` bytes
/// long; how many.
fn plain_records(text: &mut Vec<u8>, first: usize, until: usize) -> usize {
    let mut u = first;
    while text.len() < until {
        text.extend(format!("{u},tag-{u},plain{u},{u}\n").bytes());
        u += 1;
    }
    u - first
}

/// A file of over `min_bytes`, its header first.
fn big_csv(min_bytes: usize) -> Vec<u8> {
    let mut text = b"u,s,n,x\n".to_vec();
    text.extend(records(0, min_bytes));
    text
}

/// A bad record as the bad-records file gives it: file, line, byte offset, reason.
type BadLine = (String, u64, u64, String);

/// What a run wrote: the users (sorted), the report's rows, the bad records (sorted), the log.
struct Written {
    users: Vec<String>,
    rows: Value,
    bad: Vec<BadLine>,
    log: String,
}

/// Runs `mapping` with `--on-bad-records skip` and `extra` arguments (`-v`: the log at info).
fn run(d: &Path, mapping: &Path, out: &str, extra: &[&str]) -> Written {
    run_on(d, None, mapping, out, extra)
}

/// [`run`], with `${d}` in the mapping the bucket `s3://raw` of `s3` when given (the output
/// stays under `d`).
fn run_on(d: &Path, s3: Option<&S3Server>, mapping: &Path, out: &str, extra: &[&str]) -> Written {
    run_by(pengine(), d, s3, mapping, out, extra)
}

/// [`run_on`] by `command` (pengine with its environment).
fn run_by(
    mut command: std::process::Command,
    d: &Path,
    s3: Option<&S3Server>,
    mapping: &Path,
    out: &str,
    extra: &[&str],
) -> Written {
    let source = source_root(&mut command, d, s3);
    command
        .arg("run")
        .arg(mapping)
        .args(["--json", "--no-progress", "--on-bad-records", "skip", "-o"])
        .arg(d.join(out))
        .args(extra)
        .arg("--var")
        .arg(format!("d={source}"));
    if extra.contains(&"-v") {
        command.env_remove("PENGINE_LOG");
    }
    let output = run_ok(&mut command);
    let report: Value = stdout_json(&output);
    let data = read_dataset(&d.join(out).join("users"));
    let columns = ["USER_ID", "TAG", "NOTE", "SCORE"].map(|name| data.column(name));
    let mut users: Vec<String> = (0..columns[0].len())
        .map(|i| {
            columns
                .iter()
                .map(|c| c[i].as_str())
                .collect::<Vec<_>>()
                .join("|")
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
    Written {
        users,
        rows: report["rows"].clone(),
        bad,
        log: stderr(&output),
    }
}

/// A run in ranges (with `-v`) read to the end without a cut inside a record, and wrote the users,
/// rows and bad records of the whole read.
fn same_as_whole(split: &Written, whole: &Written) {
    assert!(!split.log.contains("whole"), "{}", split.log);
    assert!(split.users.len() > 70_000, "{}", split.users.len());
    assert_eq!(split.users, whole.users);
    assert_eq!(split.rows, whole.rows);
    assert!(split.bad.len() >= 8, "{:#?}", split.bad);
    assert_eq!(split.bad, whole.bad);
}

#[test]
fn a_large_csv_read_in_ranges_gives_what_a_whole_read_gives() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let big = big_csv(3 << 20);
    write(d.join("big.csv"), &big);
    let split = mapping(d, "split", SPLIT, "");
    let whole = mapping(d, "whole", WHOLE, "");

    let plan = show("explain", d, &split, "skip");
    assert!(plan.matches("big.csv:").count() >= 4, "not split:\n{plan}");
    let plan = show("explain", d, &whole, "skip");
    assert_eq!(plan.matches("big.csv:").count(), 0, "{plan}");
    // Inference in ranges sees the fraction in the last one, as a whole read does.
    let schema = show("schema", d, &split, "skip");
    assert_eq!(schema, show("schema", d, &whole, "skip"));
    assert!(schema.contains("\"double\""), "{schema}");

    let split = run(d, &split, "out-split", &["-v"]);
    let whole = run(d, &whole, "out-whole", &[]);
    same_as_whole(&split, &whole);
    // Lines are the file's: the record at each bad line is the one named.
    let lines: Vec<&[u8]> = big.split(|b| *b == b'\n').collect();
    for (_, line, _, _) in &split.bad {
        assert!(lines[*line as usize - 1].starts_with(b"-"), "line {line}");
    }
}

/// The same file on S3 (ranges read by range requests, a range's bad-record lines counted
/// through the store): the rows and bad records of a whole read, the file named by its URL.
#[test]
fn a_large_csv_on_s3_read_in_ranges_gives_what_a_whole_read_gives() {
    let server = S3Server::start(&["raw"]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(server.path("raw/big.csv"), big_csv(3 << 20));
    let split = mapping(d, "split", SPLIT, "");
    let whole = mapping(d, "whole", WHOLE, "");
    let mut explain = pengine();
    server.configure(&mut explain);
    let plan = stdout(&run_ok(
        explain
            .args(["explain", "--on-bad-records", "skip"])
            .arg(&split)
            .args(["--var", "d=s3://raw"]),
    ));
    assert!(plan.matches("big.csv:").count() >= 4, "not split:\n{plan}");

    let split = run_on(d, Some(&server), &split, "out-split", &["-v"]);
    let whole = run_on(d, Some(&server), &whole, "out-whole", &[]);
    same_as_whole(&split, &whole);
    assert!(
        split.bad.iter().all(|b| b.0 == "s3://raw/big.csv"),
        "{:?}",
        split.bad[0]
    );
}

/// A file whose second range of two starts right after a line break inside a quoted value, after
/// `before` bytes of records, and whose lines from there look like good records up to the
/// closing quote (their first field `user(u)`).
fn cut_in_a_quoted_value(before: usize, user: impl Fn(usize) -> String) -> Vec<u8> {
    let mut text = big_csv(before);
    text.extend(b"999999,multi,\"first line\n");
    // DataFusion cuts 2 ranges at half the size rounded up: as many bytes follow the line break.
    let half = text.len();
    let inside: Vec<u8> = (0..2_000)
        .flat_map(|u| format!("{},tag-{u},inside,{u}\n", user(u)).into_bytes())
        .collect();
    let closing = b"\",1\n";
    let budget = half - inside.len() - closing.len();
    let mut rest = records(1_000_000, budget);
    rest.truncate(budget);
    let complete = rest.iter().rposition(|b| *b == b'\n').map_or(0, |k| k + 1);
    rest.truncate(complete);
    text.extend(inside);
    text.resize(text.len() + budget - rest.len(), b'z');
    text.extend(closing);
    text.extend(rest);
    assert_eq!(text.len(), 2 * half);
    text
}

#[test]
fn a_quoted_line_break_where_a_file_is_cut_makes_it_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let text = cut_in_a_quoted_value(300_000, |u| u.to_string());
    write(d.join("big.csv"), &text);
    let two = "SET datafusion.optimizer.repartition_file_min_size = 100000;\n\
               SET datafusion.execution.target_partitions = 2;";
    let inferred = mapping(d, "inferred", two, "");
    let declared = mapping(
        d,
        "declared",
        two,
        "(u BIGINT, s VARCHAR, n VARCHAR, x DOUBLE)",
    );
    let whole = mapping(d, "whole", WHOLE, "");
    let cut = text.len().div_ceil(2);
    assert_eq!(text[cut - 1], b'\n');
    let plan = show("explain", d, &declared, "skip");
    assert!(plan.contains(&format!("big.csv:0..{cut}")), "{plan}");
    assert_eq!(
        show("schema", d, &inferred, "skip"),
        show("schema", d, &whole, "skip")
    );

    let whole = run(d, &whole, "out-whole", &[]);
    let multi = whole
        .users
        .iter()
        .filter(|r| r.starts_with("999999|multi|"));
    assert_eq!(multi.count(), 1, "{:?}", &whole.users[..3]);
    // Inferred columns: a run types them from a sample of the first records (here the whole
    // file), which meets the quoted line break, and the scan reads the file whole; `schema`
    // infers from every record in ranges, and finds the cut inside the record.
    let retry = format!("the one starting at byte {cut} began inside a record");
    let inferred = run(d, &inferred, "out-inferred", &["-v"]);
    assert_eq!(inferred.users, whole.users);
    assert_eq!(inferred.bad, whole.bad);
    assert!(
        inferred
            .log
            .contains("big.csv: a quoted value holds a line break in the first records")
            && !inferred.log.contains(&retry),
        "{}",
        inferred.log
    );
    let log = stderr(&run_ok(
        pengine()
            .env_remove("PENGINE_LOG")
            .args(["schema", "-v", "--on-bad-records", "skip"])
            .arg(d.join("inferred/users.sql"))
            .arg("--var")
            .arg(format!("d={}", d.display())),
    ));
    assert!(
        log.contains("big.csv: a quoted value holds a line break")
            && log.contains("reading the file whole"),
        "{log}"
    );
    // Declared columns: the scan finds it, and the run starts again reading CSV files whole.
    let declared = run(d, &declared, "out-declared", &["-v"]);
    assert_eq!(declared.users, whole.users);
    assert_eq!(declared.bad, whole.bad);
    assert!(
        declared.log.contains(&retry)
            && declared
                .log
                .contains("reading such files whole and running again"),
        "{}",
        declared.log
    );
}

/// The lines of a quoted value a range starts in read as rows without a user, which can break
/// the USER_ID rule under `--on-invalid fail` before the range before the cut reaches it (always,
/// with the first range held back and batches small enough to reach the writer without its
/// rows). The failed run checks its cuts before it reports, and reads the file whole: the rows
/// of a whole read. With columns declared; with them inferred, the same rows (by another route:
/// see the loop).
#[test]
fn rows_made_up_inside_a_quoted_value_do_not_fail_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d.join("big.csv"),
        cut_in_a_quoted_value(1_500_000, |_| String::new()),
    );
    let two = "SET datafusion.optimizer.repartition_file_min_size = 100000;\n\
               SET datafusion.execution.target_partitions = 2;";
    let declared = mapping(
        d,
        "declared",
        two,
        "(u BIGINT, s VARCHAR, n VARCHAR, x DOUBLE)",
    );
    let whole = mapping(
        d,
        "whole",
        WHOLE,
        "(u BIGINT, s VARCHAR, n VARCHAR, x DOUBLE)",
    );
    let small_batches = |name, columns| {
        let settings = format!("{two}\nSET datafusion.execution.batch_size = 100;");
        mapping(d, name, &settings, columns)
    };
    let declared_late = small_batches(
        "declared-late",
        "(u BIGINT, s VARCHAR, n VARCHAR, x DOUBLE)",
    );
    let inferred_late = small_batches("inferred-late", "");
    let whole = run(d, &whole, "out-whole", &[]);
    // Whichever range stops first; with the first range held back, the one after the cut.
    for (name, mapping, late) in [
        ("declared", &declared, false),
        ("declared", &declared_late, true),
        ("inferred", &inferred_late, true),
    ] {
        let mut command = pengine();
        if late {
            command.env("PENGINE_FAILPOINT", "first-range-late");
        }
        let out = format!("out-{name}-{late}");
        let written = run_by(command, d, None, mapping, &out, &["-v"]);
        assert_eq!(written.users, whole.users, "{name} {late}");
        assert_eq!(written.bad, whole.bad, "{name} {late}");
        let log = &written.log;
        assert!(!d.join(&out).join("users.rejects.csv").exists());
        if name == "inferred" {
            // Records probed past the sample do not fit it (the quoted value's lines and its
            // end): the columns come from every record, which meets the quoted line break, and
            // the file is read whole before any range is.
            assert!(
                log.contains("a quoted value holds a line break past the first 64 KiB"),
                "{log}"
            );
            continue;
        }
        assert!(
            log.contains("began inside a record")
                && log.contains("reading such files whole and running again"),
            "{log}"
        );
        if late {
            assert!(log.contains("checking the cuts of 1 file(s)"), "{log}");
        }
    }
}

/// A table that says values hold line breaks is never split.
#[test]
fn newlines_in_values_keeps_a_file_whole() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d.join("big.csv"), big_csv(1 << 20));
    let path = d.join("m/users.sql");
    write(
        &path,
        format!(
            "{SPLIT}\nCREATE EXTERNAL TABLE t STORED AS CSV LOCATION '${{d}}/big.csv' OPTIONS \
             ('format.has_header' 'true', 'format.newlines_in_values' 'true');\n\
             SELECT u AS user_id, s AS tag FROM t;\n"
        ),
    );
    let plan = show("explain", d, &path, "skip");
    assert!(plan.contains("big.csv"), "{plan}");
    assert_eq!(plan.matches("big.csv:").count(), 0, "{plan}");
}

/// One large gzip CSV file (stored, so that it is over the 4 MiB from which a file read whole is
/// parsed in segments): the users, rows and bad records (line, offset, reason) of a whole read,
/// in one attempt, with the columns inferred and declared. Its bad records include quotes left
/// open, which upset the quote count cuts are placed by until a cut is forced. Over 3 partitions
/// (2 cores' default), the file is parsed by one reader, with the same rows.
#[test]
fn a_large_gzip_csv_parsed_in_segments_gives_what_a_whole_read_gives() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, gzip) = (dir.path().join("plain"), dir.path().join("gzip"));
    let big = big_csv(7 << 20);
    write(plain.join("big.csv"), &big);
    let compressed = gzipped(&big, flate2::Compression::none());
    assert!(compressed.len() > 4 << 20);
    // Sniffed by its first bytes, whatever its name.
    write(gzip.join("big.csv"), compressed);
    let whole = run(
        &plain,
        &mapping_with(&plain, "whole", "", "", KEEP_WHOLE),
        "out",
        &["-v"],
    );
    assert!(!whole.log.contains(SEGMENTED), "{}", whole.log);
    let in_file = |bad: &[BadLine]| -> Vec<(u64, u64, String)> {
        bad.iter()
            .map(|(_, line, at, why)| (*line, *at, why.clone()))
            .collect()
    };
    let declared = "(u BIGINT, s VARCHAR, n VARCHAR, x DOUBLE)";
    let three = "SET datafusion.execution.target_partitions = 3;";
    for (settings, columns) in [(FOUR, ""), (FOUR, declared), (three, "")] {
        let segmented = run(
            &gzip,
            &mapping(&gzip, "segmented", settings, columns),
            "out",
            &["-v"],
        );
        let expected = settings == FOUR;
        assert_eq!(
            segmented.log.contains(SEGMENTED),
            expected,
            "{}",
            segmented.log
        );
        assert!(
            !segmented.log.contains("began inside a record"),
            "{}",
            segmented.log
        );
        assert!(segmented.users.len() > 150_000, "{}", segmented.users.len());
        assert_eq!(segmented.users, whole.users, "columns {columns:?}");
        assert_eq!(segmented.rows, whole.rows);
        assert!(whole.bad.len() >= 16, "{:#?}", whole.bad);
        assert_eq!(in_file(&segmented.bad), in_file(&whole.bad));
        std::fs::remove_dir_all(gzip.join("out")).unwrap();
    }
}

/// The same on S3: the gzip file's text comes from a GET's stream, through the segments' bridges;
/// the users, rows and bad records of a whole read, the bad records named by the file's URL.
#[test]
fn a_large_gzip_csv_on_s3_parsed_in_segments_gives_what_a_whole_read_gives() {
    let server = S3Server::start(&["raw"]);
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let big = big_csv(5 << 20);
    write(
        server.path("raw/big.csv"),
        gzipped(&big, flate2::Compression::none()),
    );
    let whole = mapping_with(d, "whole", "", "", KEEP_WHOLE);
    let whole = run_on(d, Some(&server), &whole, "out-whole", &[]);
    let segmented = mapping(d, "segmented", FOUR, "");
    let segmented = run_on(d, Some(&server), &segmented, "out-segmented", &["-v"]);
    assert!(segmented.log.contains(SEGMENTED), "{}", segmented.log);
    assert!(
        !segmented.log.contains("began inside a record"),
        "{}",
        segmented.log
    );
    assert_eq!(segmented.users, whole.users);
    assert_eq!(segmented.rows, whole.rows);
    assert!(whole.bad.len() >= 8, "{:#?}", whole.bad);
    assert_eq!(segmented.bad, whole.bad);
    assert!(segmented.bad.iter().all(|b| b.0 == "s3://raw/big.csv"));
}

/// A large gzip CSV cut short (an upload that stopped half way), parsed in segments: the segment
/// the end falls in fails the run as a data error naming the file and saying it looks truncated,
/// under `--on-bad-records skip` too, and nothing is published.
#[test]
fn a_truncated_large_gzip_csv_parsed_in_segments_fails_the_run_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let whole = gzipped(&big_csv(9 << 20), flate2::Compression::none());
    write(d.join("big.csv"), &whole[..whole.len() * 2 / 3]);
    let out = d.join("out");
    let err = run_fails(
        pengine()
            .env_remove("PENGINE_LOG")
            .arg("run")
            .arg(mapping(d, "segmented", FOUR, ""))
            .args(["--no-progress", "-v", "--on-bad-records", "skip", "-o"])
            .arg(&out)
            .arg("--var")
            .arg(format!("d={}", d.display())),
        4,
    );
    assert!(err.contains(SEGMENTED), "{err}");
    // As a read in one piece says it (`target_partitions = 3`).
    let truncated =
        "big.csv: the gzip data ends inside a compressed stream (is the file truncated?)";
    assert!(err.contains(truncated), "{err}");
    assert!(!out.join("users").exists(), "{err}");
}

/// SIGTERM while a large gzip CSV is parsed in segments (the first batch written, the other
/// segments in flight on blocking threads): the run stops as interrupted, promptly, and nothing
/// is published.
#[test]
fn sigterm_while_a_gzip_csv_is_parsed_in_segments_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d.join("big.csv"),
        gzipped(&big_csv(9 << 20), flate2::Compression::none()),
    );
    let out = d.join("out");
    let mut cmd = pengine();
    cmd.env("PENGINE_LOG", "debug")
        .args(["run", "--no-progress", "--on-bad-records", "skip", "-o"])
        .arg(&out)
        .arg(mapping(d, "segmented", FOUR, ""))
        .arg("--var")
        .arg(format!("d={}", d.display()));
    let started = std::time::Instant::now();
    let output = signalled_at(&mut cmd, "while-writing", "TERM", d);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(143), "{err}");
    assert!(err.contains(SEGMENTED), "{err}");
    assert!(err.contains("interrupted by SIGTERM"), "{err}");
    assert!(!out.join("users").exists(), "nothing published");
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}

/// A stray quote in an unquoted value (a good record: `5" screen`) upsets the quote count, so
/// the first cut falls inside a quoted value of three lines, after its second. The segment
/// before the cut reads on past it, as a whole read would, and finds its record ending after
/// the cut; the run starts again reading the file whole: the users of a whole read, the
/// three-line note one value.
#[test]
fn a_cut_inside_a_quoted_value_makes_a_large_gzip_csv_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, gzip) = (dir.path().join("plain"), dir.path().join("gzip"));
    let mut text = b"u,s,n,x\n1,tag-1,5\" screen,1\n".to_vec();
    plain_records(&mut text, 2, (2 << 20) + 100_000);
    text.extend(b"999999,multi,\"first line\nmiddle line\n");
    let cut = text.len();
    text.extend(b"last line\",1\n");
    plain_records(&mut text, 1_000_000, 5 << 20);
    write(plain.join("big.csv"), &text);
    write(
        gzip.join("big.csv"),
        gzipped(&text, flate2::Compression::none()),
    );
    let whole = run(
        &plain,
        &mapping_with(&plain, "whole", "", "", KEEP_WHOLE),
        "out",
        &[],
    );
    let multi: Vec<&String> = whole
        .users
        .iter()
        .filter(|r| r.starts_with("999999|multi|"))
        .collect();
    assert_eq!(multi, ["999999|multi|first line middle line last line|1"]);
    assert!(whole.bad.is_empty(), "{:#?}", whole.bad);
    let declared = mapping(
        &gzip,
        "declared",
        FOUR,
        "(u BIGINT, s VARCHAR, n VARCHAR, x DOUBLE)",
    );
    let segmented = run(&gzip, &declared, "out", &["-v"]);
    assert_eq!(segmented.users, whole.users);
    assert!(segmented.bad.is_empty(), "{:#?}", segmented.bad);
    let mismatch = format!("the one starting at byte {cut} began inside a record");
    assert!(
        segmented.log.contains(SEGMENTED)
            && segmented.log.contains(&mismatch)
            && segmented
                .log
                .contains("reading such files whole and running again"),
        "{}",
        segmented.log
    );
}

/// SIGTERM once a failed run has started checking where it cut its files, before it reports the
/// bad record it failed on (which a cut inside a record could have made up): the run stops as
/// interrupted, not with the unchecked error, and publishes nothing.
#[test]
fn sigterm_while_a_failed_run_checks_its_cuts_stops_it_as_interrupted() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut text = b"u,s,n,x\n".to_vec();
    plain_records(&mut text, 0, 3 << 20);
    // In the last range only: that range notes its cut before it reads, then fails the run.
    text.extend(b"-1,a,b,c,d\n1,tag-1,plain1,1\n");
    write(d.join("big.csv"), &text);
    let split = mapping(d, "split", SPLIT, "");
    let out = d.join("out");
    let failed = run_fails(
        pengine()
            .args(["run", "--no-progress", "-o"])
            .arg(d.join("out-failed"))
            .arg(&split)
            .arg("--var")
            .arg(format!("d={}", d.display())),
        4,
    );
    assert!(failed.contains("field(s) where the header has"), "{failed}");
    let mut cmd = pengine();
    cmd.env("PENGINE_LOG", "debug")
        .args(["run", "--no-progress", "-o"])
        .arg(&out)
        .arg(&split)
        .arg("--var")
        .arg(format!("d={}", d.display()));
    let output = signalled_at(&mut cmd, "checking-cuts", "TERM", d);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(143), "{err}");
    assert!(err.contains("checking the cuts of 1 file(s)"), "{err}");
    assert!(err.contains("interrupted by SIGTERM"), "{err}");
    // The bad record is in the debug log only: not reported as the run's error.
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("error:")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert!(errors[0].contains("interrupted by SIGTERM"), "{err}");
    assert!(!out.join("users").exists(), "nothing published");
}

/// A large gzip CSV file in UTF-16 with its byte-order mark (and no encoding named): read in one
/// piece, transcoded as a whole read transcodes it, never cut as bytes.
#[test]
fn a_large_utf16_gzip_csv_is_read_in_one_piece() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, gzip) = (dir.path().join("plain"), dir.path().join("gzip"));
    let mut text = b"u,s,n,x\n".to_vec();
    // ASCII only: its UTF-16 bytes split at 0x0A look like records of 4 fields.
    let records = plain_records(&mut text, 0, 2_200_000);
    let utf16: Vec<u8> = [0xFF, 0xFE]
        .into_iter()
        .chain(
            String::from_utf8(text)
                .unwrap()
                .encode_utf16()
                .flat_map(u16::to_le_bytes),
        )
        .collect();
    assert!(utf16.len() > 4 << 20);
    write(plain.join("big.csv"), &utf16);
    write(
        gzip.join("big.csv"),
        gzipped(&utf16, flate2::Compression::none()),
    );
    let whole = run(
        &plain,
        &mapping_with(&plain, "whole", "", "", KEEP_WHOLE),
        "out",
        &[],
    );
    assert_eq!(whole.users.len(), records, "{:?}", &whole.users[..2]);
    assert!(
        whole.users.contains(&"7|tag-7|plain7|7".to_string()),
        "{:?}",
        &whole.users[..2]
    );
    let segmented = run(&gzip, &mapping(&gzip, "m", FOUR, ""), "out", &["-v"]);
    assert!(!segmented.log.contains(SEGMENTED), "{}", segmented.log);
    assert_eq!(segmented.users, whole.users);
    assert_eq!(segmented.bad, whole.bad);
}
