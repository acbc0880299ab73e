//! Faults in the middle of a run, against the real binary and a real S3 server (s3s-fs) with
//! faults injected in front of it: S3 errors that pass (retried, and counted in the report), S3
//! errors that do not, the server stopping during a multipart upload, Ctrl-C during one, and a
//! full local disk. In every case the previous export stays byte for byte as it was, no partial
//! part shows in the data folder, and the next run cleans up and succeeds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use crate::common::*;
use serde_json::Value;

/// `rows` users with a ~900-character attribute (`<tag>xxx...<n>`): 12,000 make about 11 MB of
/// CSV, more than one 8 MiB upload chunk, so their part goes up as a multipart upload.
fn wide_users(rows: usize, tag: &str) -> String {
    let pad = "x".repeat(880);
    (0..rows)
        .map(|i| format!("{{\"id\":\"u{i}\",\"bio\":\"{tag}{pad}{i:05}\"}}\n"))
        .collect()
}

/// The rows [`wide_users`] must come out as, sorted.
fn expected_rows(rows: usize, tag: &str) -> Vec<Vec<String>> {
    let pad = "x".repeat(880);
    let mut expected: Vec<Vec<String>> = (0..rows)
        .map(|i| vec![format!("u{i}"), format!("{tag}{pad}{i:05}")])
        .collect();
    expected.sort();
    expected
}

fn sorted_rows(csv: Csv) -> Vec<Vec<String>> {
    let mut rows = csv.rows;
    rows.sort();
    rows
}

/// Every file under `root` (relative paths, sorted) with its bytes, `.pengine/` left out: what a
/// user of the export sees.
fn export_files(root: &Path) -> Vec<(String, Vec<u8>)> {
    tree(root)
        .into_iter()
        .filter(|(name, _)| !name.starts_with(".pengine"))
        .collect()
}

/// A users mapping reading `s3://raw/users/users.json` and publishing to `s3://out/p`, on a test server.
struct S3Case {
    server: S3Server,
    _dir: tempfile::TempDir,
    mapping: PathBuf,
}

impl S3Case {
    fn new() -> S3Case {
        let server = S3Server::start(&["raw", "out"]);
        let dir = tempfile::tempdir().unwrap();
        let mapping = dir.path().join("users.sql");
        write(
            &mapping,
            "CREATE EXTERNAL TABLE u STORED AS JSON LOCATION 's3://raw/users/users.json';\n\
             SELECT id AS user_id, bio AS bio FROM u;",
        );
        S3Case {
            server,
            _dir: dir,
            mapping,
        }
    }

    fn users(&self, rows: usize, tag: &str) {
        write(
            self.server.path("raw/users/users.json"),
            wide_users(rows, tag),
        );
    }

    fn run(&self, extra: &[&str]) -> Command {
        let mut cmd = pengine();
        self.server.configure(&mut cmd);
        cmd.arg("run")
            .arg(&self.mapping)
            .args(["-o", "s3://out/p", "--no-progress"])
            .args(extra);
        cmd
    }

    fn export(&self) -> Vec<(String, Vec<u8>)> {
        export_files(&self.server.path("out/p"))
    }

    /// Objects under `.pengine/` a finished run must not leave (see [`staged_files`]).
    fn staging(&self) -> Vec<String> {
        staged_files(&self.server.path("out/p"))
    }

    fn rows(&self) -> Vec<Vec<String>> {
        sorted_rows(read_dataset(&self.server.path("out/p/users")))
    }
}

/// Publishes a first export of `rows` users in parts of 64 KiB and returns it.
fn previous_export(case: &S3Case, rows: usize) -> Vec<(String, Vec<u8>)> {
    case.users(rows, "old");
    run_ok(&mut case.run(&["--max-file-size", "64KiB"]));
    let before = case.export();
    assert!(
        before
            .iter()
            .filter(|(f, _)| f.starts_with("users/"))
            .count()
            >= 2,
        "expected several parts: {:?}",
        before.iter().map(|(f, _)| f).collect::<Vec<_>>()
    );
    before
}

/// Every S3 operation a run to S3 uses, from reading the sources to promoting the parts.
const OPERATIONS: [&str; 9] = [
    "ListObjects",
    "HeadObject",
    "GetObject",
    "PutObject",
    "CreateMultipartUpload",
    "UploadPart",
    "CompleteMultipartUpload",
    "CopyObject",
    "DeleteObjects",
];

#[test]
fn transient_s3_errors_are_retried_and_counted_in_the_report() {
    let case = S3Case::new();
    previous_export(&case, 300);
    case.users(12_000, "new");
    // The first request of every operation is throttled; the second CompleteMultipartUpload and
    // CopyObject get a 200 whose body is an error, which S3 does for those two.
    let mut rules: Vec<Rule> = OPERATIONS
        .iter()
        .map(|op| Rule::first(op, Fault::SlowDown))
        .collect();
    rules.push(Rule::nth(
        "CompleteMultipartUpload",
        2,
        Fault::InternalErrorIn200,
    ));
    rules.push(Rule::nth("CopyObject", 2, Fault::InternalErrorIn200));
    case.server.faults.set(rules);

    let output = run_ok(&mut case.run(&["--json"]));
    let injected = case.server.faults.injected();
    for op in OPERATIONS {
        assert!(
            injected.contains_key(op),
            "no {op} was faulted: {injected:?}"
        );
    }
    assert_eq!(injected["CompleteMultipartUpload"], 2);

    // Complete and correct.
    assert_eq!(case.rows(), expected_rows(12_000, "new"));
    assert!(case.staging().is_empty(), "{:?}", case.staging());

    // Every injected error was retried once, and counted once, by operation.
    let report: Value = stdout_json(&output);
    let counted: BTreeMap<String, u64> =
        serde_json::from_value(report["storage_retries"]["by_operation"].clone())
            .unwrap_or_else(|e| panic!("no retry counts in the report ({e}): {report:#}"));
    assert_eq!(counted, injected);
    let total: u64 = injected.values().sum();
    assert_eq!(report["storage_retries"]["total"], total);
    let err = stderr(&output);
    assert!(
        err.contains(&format!("{total} storage request(s) retried")),
        "{err}"
    );
    // The report file is written before promotion: it counts the retries up to then.
    let file: Value = serde_json::from_slice(
        &std::fs::read(case.server.path("out/p/users.report.json")).unwrap(),
    )
    .unwrap();
    let in_file = file["storage_retries"]["total"].as_u64().unwrap();
    assert!(in_file > 0 && in_file <= total, "{in_file} of {total}");
}

#[test]
fn persistent_s3_errors_fail_the_run_naming_the_operation_and_path() {
    let case = S3Case::new();
    let before = previous_export(&case, 300);
    case.users(80, "new");
    case.server
        .faults
        .set(vec![Rule::every("PutObject", Fault::SlowDown)]);

    let err = run_fails(case.run(&[]).env("PENGINE_MAX_RETRIES", "2"), 5);
    // The first PUT of the run is its part: pengine gave up on it after 1 + 2 attempts.
    assert_eq!(case.server.faults.injected()["PutObject"], 3, "{err}");
    assert!(
        err.contains("writing s3://out/p/.pengine/snapshots/users/")
            && err.contains("/part-00000.csv"),
        "{err}"
    );
    assert!(
        err.contains("PUT") && err.contains("503") && err.contains("SlowDown"),
        "{err}"
    );
    assert!(err.contains("after 2 retries"), "{err}");
    assert_eq!(case.export(), before, "the previous export changed");
    assert!(case.staging().is_empty(), "{:?}", case.staging());

    case.server.faults.clear();
    run_ok(&mut case.run(&[]));
    assert_eq!(case.rows(), expected_rows(80, "new"));
}

#[test]
fn s3_server_stopping_during_a_multipart_upload_fails_cleanly_and_the_next_run_recovers() {
    let mut case = S3Case::new();
    let before = previous_export(&case, 300);
    case.users(12_000, "new");
    // The server stores the first part of the upload, then stops: it closes every connection
    // and refuses new ones.
    case.server
        .faults
        .set(vec![Rule::first("UploadPart", Fault::StopServerAfter)]);

    let err = run_fails(case.run(&[]).env("PENGINE_MAX_RETRIES", "1"), 5);
    assert!(case.server.faults.server_stopped());
    assert!(
        err.contains("s3://out/p/.pengine/snapshots/users/") && err.contains("/part-00000.csv"),
        "{err}"
    );
    // The server holds a stored part of an upload pengine could not abort; none of it is in
    // the bucket, and the previous export is as it was.
    assert!(!case.server.pending_uploads().is_empty());
    assert_eq!(case.export(), before, "the previous export changed");

    case.server.restart();
    case.server.faults.clear();
    assert_eq!(case.export(), before);
    run_ok(&mut case.run(&[]));
    assert_eq!(case.rows(), expected_rows(12_000, "new"));
    assert!(case.staging().is_empty(), "{:?}", case.staging());
}

#[test]
fn ctrl_c_during_an_s3_multipart_upload_aborts_it() {
    let case = S3Case::new();
    let before = previous_export(&case, 300);
    case.users(12_000, "new");
    // The second part is held without an answer: the upload is in progress when Ctrl-C comes.
    case.server
        .faults
        .set(vec![Rule::nth("UploadPart", 2, Fault::Hold)]);
    let mut child = case
        .run(&[])
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    while !case
        .server
        .faults
        .wait_until_held(1, "UploadPart", 1, Duration::from_millis(100))
    {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("pengine exited ({status}) before its upload was held");
        }
    }
    assert!(!case.server.pending_uploads().is_empty());

    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let output = child.wait_with_output().unwrap();
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(130), "{err}");
    assert!(err.contains("interrupted"), "{err}");
    assert_eq!(
        case.server.pending_uploads(),
        Vec::<String>::new(),
        "the multipart upload was not aborted"
    );
    assert_eq!(case.export(), before, "the previous export changed");
    assert!(case.staging().is_empty(), "{:?}", case.staging());

    case.server.faults.clear();
    run_ok(&mut case.run(&[]));
    assert_eq!(case.rows(), expected_rows(12_000, "new"));
}

/// A tmpfs mounted for the length of a test.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` at `at`, or says why it cannot (not root, no capability).
    fn mount(at: &Path, size: &str) -> Result<Tmpfs, String> {
        std::fs::create_dir_all(at).unwrap();
        let output = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .output()
            .map_err(|e| e.to_string())?;
        if output.status.success() {
            Ok(Tmpfs(at.to_path_buf()))
        } else {
            Err(stderr(&output).trim().to_string())
        }
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// How the disk fills up.
#[derive(PartialEq)]
enum FullDisk {
    /// The output is on a 1 MiB tmpfs (falls back to `Simulated` where mounting is not allowed).
    Tmpfs,
    /// pengine's `disk-full` failpoint: writes fail with ENOSPC after 1 MB.
    Simulated,
}

fn disk_full_case(disk: FullDisk) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let mounted = match disk {
        FullDisk::Tmpfs => match Tmpfs::mount(&out, "1m") {
            Ok(mounted) => Some(mounted),
            Err(why) => {
                eprintln!("cannot mount a tmpfs here ({why}): the full disk is simulated");
                None
            }
        },
        FullDisk::Simulated => None,
    };
    std::fs::create_dir_all(&out).unwrap();
    let mapping = dir.path().join("users.sql");
    write(
        &mapping,
        "CREATE EXTERNAL TABLE u STORED AS JSON LOCATION '${src}/users.json';\n\
         SELECT id AS user_id, bio AS bio FROM u;",
    );
    let src = format!("src={}", dir.path().join("src").display());
    let run = || {
        let mut cmd = pengine();
        cmd.arg("run")
            .arg(&mapping)
            .args(["--var", &src, "--no-progress", "-o"])
            .arg(&out);
        cmd
    };
    let users =
        |rows: usize, tag: &str| write(dir.path().join("src/users.json"), wide_users(rows, tag));

    users(50, "old");
    run_ok(&mut run());
    let before = export_files(&out);

    // About 11 MB of CSV: more than the disk has.
    users(12_000, "new");
    let mut full = run();
    if mounted.is_none() {
        full.env("PENGINE_FAILPOINT", "disk-full:1000000");
    }
    let err = run_fails(&mut full, 5);
    assert!(err.contains("disk is full"), "{err}");
    assert!(
        err.contains(&format!("{}/.pengine/snapshots/users/", out.display()))
            && err.contains("part-00000.csv"),
        "{err}"
    );
    assert!(err.contains("--output"), "says what to do: {err}");
    assert_eq!(export_files(&out), before, "the previous export changed");
    assert_no_staging(&out);

    users(7, "next");
    run_ok(&mut run());
    assert_eq!(
        sorted_rows(read_dataset(&out.join("users"))),
        expected_rows(7, "next")
    );
    assert_no_staging(&out);
}

#[test]
fn full_local_disk_on_a_small_tmpfs() {
    disk_full_case(FullDisk::Tmpfs);
}

#[test]
fn full_local_disk_simulated() {
    disk_full_case(FullDisk::Simulated);
}
