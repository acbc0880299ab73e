//! Ordinary mistakes must not lose, double or silently change a user's data, through the binary:
//! an empty result, files pengine did not write, its own output under a source, a misspelled
//! variable, SIGTERM/SIGHUP, a closed stderr, running out of memory, and what `-v`, `-q` and
//! `--json` show when something goes wrong.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;

use crate::common::*;
use serde_json::Value;

/// `rows` users `{"id": n, "tier": "t<n % 3>"}` in `<dir>/src/users/users.json`.
fn users_source(dir: &Path, rows: usize) -> PathBuf {
    let text: String = (0..rows)
        .map(|i| format!("{{\"id\":{i},\"tier\":\"t{}\"}}\n", i % 3))
        .collect();
    let src = dir.join("src");
    write(src.join("users/users.json"), text);
    src
}

/// A users mapping over `${src}/users/` whose WHERE clause is `${filter}`.
fn users_mapping(dir: &Path) -> PathBuf {
    let path = dir.join("users.sql");
    write(
        &path,
        "CREATE EXTERNAL TABLE u STORED AS JSON LOCATION '${src}/users/';\n\
         SELECT id AS user_id, tier AS tier FROM u WHERE ${filter:-true};\n",
    );
    path
}

/// `pengine run MAPPING --var src=SRC EXTRA... -o OUT`.
fn run(mapping: &Path, src: &Path, out: impl AsRef<std::ffi::OsStr>, extra: &[&str]) -> Command {
    run_mapping(mapping, &format!("src={}", src.display()), out, extra)
}

fn names(files: &[(String, Vec<u8>)]) -> Vec<&str> {
    files.iter().map(|(name, _)| name.as_str()).collect()
}

fn report(out: &Path, dataset: &str) -> Value {
    serde_json::from_slice(&std::fs::read(out.join(format!("{dataset}.report.json"))).unwrap())
        .unwrap()
}

#[test]
fn an_empty_result_keeps_the_previous_export_unless_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let src = users_source(dir.path(), 30);
    let mapping = users_mapping(dir.path());
    let out = dir.path().join("out");
    run_ok(&mut run(&mapping, &src, &out, &[]));
    let before = tree(&out);

    // A filter that matches nothing: refused, nothing changed.
    let err = run_fails(
        &mut run(&mapping, &src, &out, &["--var", "filter=tier = 'T1'"]),
        4,
    );
    assert!(
        err.contains("returned no rows") && err.contains("30 rows read") && err.contains("kept"),
        "{err}"
    );
    assert!(err.contains("--allow-empty"), "{err}");
    assert_eq!(tree(&out), before);

    // An empty source folder too.
    let empty = dir.path().join("empty");
    write(empty.join("users/users.json"), "");
    write(
        empty.join("users/more.json"),
        "{\"id\": 1, \"tier\": \"x\"}\n",
    );
    let err = run_fails(
        &mut run(&mapping, &empty, &out, &["--var", "filter=id > 5"]),
        4,
    );
    assert!(err.contains("returned no rows"), "{err}");
    assert_eq!(tree(&out), before);

    // On purpose: published, with no rows.
    run_ok(&mut run(
        &mapping,
        &src,
        &out,
        &["--var", "filter=false", "--allow-empty"],
    ));
    assert_eq!(report(&out, "users")["rows"]["written"], 0);
    let csv = read_dataset(&out.join("users"));
    assert_eq!(csv.header, ["USER_ID", "TIER"]);
    assert!(csv.rows.is_empty());
}

#[test]
fn an_empty_result_in_a_project_fails_that_dataset_only() {
    let dir = tempfile::tempdir().unwrap();
    let src = users_source(dir.path(), 30);
    let project = dir.path().join("project");
    write(
        project.join("users.sql"),
        "CREATE EXTERNAL TABLE u STORED AS JSON LOCATION '${src}/users/';\n\
         SELECT id AS user_id, tier AS tier FROM u WHERE tier = 'none';\n",
    );
    write(
        project.join("items.sql"),
        "CREATE EXTERNAL TABLE u STORED AS JSON LOCATION '${src}/users/';\n\
         SELECT id AS item_id, tier AS genre FROM u;\n",
    );
    let out = dir.path().join("out");
    let output = run_with_code(
        pengine()
            .arg("run")
            .arg(&project)
            .arg("--var")
            .arg(format!("src={}", src.display()))
            .args(["--json", "-o"])
            .arg(&out),
        4,
    );
    let summary: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_statuses(&summary, &[("items", "published"), ("users", "failed")]);
    assert!(!out.join("users").exists());
}

#[test]
fn files_pengine_did_not_write_stop_the_run_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let src = users_source(dir.path(), 30);
    let mapping = users_mapping(dir.path());
    let out = dir.path().join("out");
    write(out.join("users/README.md"), "hand-written notes");
    write(out.join("users/manual-upload.csv"), "USER_ID,TIER\nx,y\n");
    let before = tree(&out);

    let err = run_fails(&mut run(&mapping, &src, &out, &["-v"]), 5);
    assert!(
        err.contains("README.md") && err.contains("manual-upload.csv"),
        "{err}"
    );
    assert!(err.contains("--take-over"), "{err}");
    assert_eq!(tree(&out), before, "nothing may be written or deleted");

    // Taken over on purpose: the report says what was deleted.
    run_ok(&mut run(&mapping, &src, &out, &["--take-over"]));
    let deleted = report(&out, "users")["deleted_files"].clone();
    let deleted: Vec<String> = serde_json::from_value(deleted).unwrap();
    assert_eq!(deleted.len(), 2, "{deleted:?}");
    assert!(deleted.iter().any(|d| d.ends_with("users/README.md")));
    assert_eq!(
        std::fs::read_dir(out.join("users")).unwrap().count(),
        1,
        "only the new part"
    );

    // From then on the folder is pengine's: later runs need no flag, and a file added by hand is
    // again refused.
    run_ok(&mut run(&mapping, &src, &out, &[]));
    write(out.join("users/notes.txt"), "x");
    let err = run_fails(&mut run(&mapping, &src, &out, &[]), 5);
    assert!(err.contains("notes.txt"), "{err}");
    assert!(out.join("users/notes.txt").exists());
}

#[test]
fn files_pengine_did_not_write_on_s3_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let src = users_source(dir.path(), 30);
    let mapping = users_mapping(dir.path());
    let server = S3Server::start(&["out"]);
    write(server.path("out/p/users/README.md"), "hand-written notes");
    let mut cmd = run(&mapping, &src, "s3://out/p", &[]);
    server.configure(&mut cmd);
    let err = run_fails(&mut cmd, 5);
    assert!(
        err.contains("s3://out/p/users/") && err.contains("README.md"),
        "{err}"
    );
    assert_eq!(
        std::fs::read(server.path("out/p/users/README.md")).unwrap(),
        b"hand-written notes"
    );
    assert!(!server.path("out/p/users.report.json").exists());

    let mut cmd = run(&mapping, &src, "s3://out/p", &["--take-over"]);
    server.configure(&mut cmd);
    run_ok(&mut cmd);
    assert!(!server.path("out/p/users/README.md").exists());
    assert_eq!(read_dataset(&server.path("out/p/users")).rows.len(), 30);
}

/// A source folder with what Spark, Hive and Firehose leave beside the data.
fn export_with_side_files(dir: &Path) -> PathBuf {
    let src = users_source(dir, 30);
    write(src.join("users/.users.json.crc"), [0u8, 1, 2, 255]);
    write(src.join("users/_SUCCESS"), "");
    write(src.join("users/_temporary/0/x.json"), "{\"other\": 1}\n");
    write(
        src.join("users/.hidden/y.json"),
        "{\"id\": 999, \"tier\": \"z\"}\n",
    );
    src
}

#[test]
fn hidden_and_side_files_are_not_read_and_sources_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let src = export_with_side_files(dir.path());
    let mapping = users_mapping(dir.path());
    let out = dir.path().join("out");
    run_ok(&mut run(&mapping, &src, &out, &[]));
    assert_eq!(report(&out, "users")["rows"]["read_from_sources"], 30);
    assert_eq!(read_dataset(&out.join("users")).rows.len(), 30);

    let output = run_ok(
        pengine()
            .arg("sources")
            .arg(&mapping)
            .arg("--var")
            .arg(format!("src={}", src.display()))
            .arg("--json"),
    );
    let sources: Value = serde_json::from_slice(&output.stdout).unwrap();
    let skipped: Vec<String> = sources[0]["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["location"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(skipped.len(), 4, "{skipped:?}");
    assert!(skipped.iter().any(|s| s.ends_with("users/_SUCCESS")));
    let human = stdout(&run_ok(
        pengine()
            .arg("sources")
            .arg(&mapping)
            .arg("--var")
            .arg(format!("src={}", src.display())),
    ));
    assert!(
        human.contains("not read:   4 file(s)") && human.contains("name starting with . or _"),
        "{human}"
    );
}

#[test]
fn an_output_inside_the_source_is_never_read_back() {
    let dir = tempfile::tempdir().unwrap();
    let src = users_source(dir.path(), 30);
    // The source is the whole `src/` folder, the output inside it.
    let mapping = dir.path().join("users.sql");
    write(
        &mapping,
        "CREATE EXTERNAL TABLE u STORED AS JSON LOCATION '${src}/';\n\
         SELECT id AS user_id, tier AS tier FROM u;\n",
    );
    let out = src.join("out");
    for _ in 0..3 {
        run_ok(&mut run(
            &mapping,
            &src,
            &out,
            &["--on-bad-records", "skip", "--on-invalid", "skip"],
        ));
        let report = report(&out, "users");
        assert_eq!(report["rows"]["read_from_sources"], 30, "{report}");
        assert_eq!(report["rows"]["bad_records"], 0, "{report}");
        assert_eq!(read_dataset(&out.join("users")).rows.len(), 30);
    }
    // Another run's output under the source, found by what pengine leaves there.
    let other = src.join("exports/2024");
    run_ok(&mut run(&mapping, &src, &other, &[]));
    run_ok(&mut run(&mapping, &src, &out, &[]));
    assert_eq!(report(&out, "users")["rows"]["read_from_sources"], 30);
}

#[test]
fn a_source_inside_the_output_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let src = users_source(&out, 30);
    let mapping = users_mapping(dir.path());
    let err = run_fails(&mut run(&mapping, &src, &out, &[]), 3);
    assert!(
        err.contains("inside the output") && err.contains("--output"),
        "{err}"
    );
    assert!(!out.join("users").exists());
}

#[test]
fn a_misspelled_variable_is_an_error_naming_the_ones_used() {
    let dir = tempfile::tempdir().unwrap();
    let src = users_source(dir.path(), 30);
    let mapping = users_mapping(dir.path());
    let out = dir.path().join("out");
    let mut cmd = pengine();
    cmd.arg("run")
        .arg(&mapping)
        .arg("--var")
        .arg(format!("sr={}", src.display()))
        .arg("-o")
        .arg(&out);
    let err = run_fails(&mut cmd, 2);
    assert!(err.contains("--var sr:"), "{err}");
    let uses = err.split("use ").nth(1).unwrap_or_default();
    assert!(
        uses.starts_with("${src}, ${filter}"),
        "closest first: {err}"
    );
    assert!(!out.exists(), "nothing may run");
    for command in ["schema", "explain", "validate", "sources"] {
        run_fails(
            pengine()
                .arg(command)
                .arg(&mapping)
                .args(["--var", "filtr=true"]),
            2,
        );
    }
    // A pengine.toml entry no file uses: a warning, the run goes on.
    write(
        dir.path().join("pengine.toml"),
        format!("[vars]\nsrc = '{}'\nsoruce = 'x'\n", src.display()),
    );
    let output = run_ok(pengine().arg("run").arg(&mapping).arg("-o").arg(&out));
    let err = stderr(&output);
    assert!(err.contains("soruce is used by no mapping file"), "{err}");
}

/// Sends `signal` to a run stopped after writing its parts, and checks it stops as Ctrl-C does.
fn stops_cleanly_on(signal: &str, code: i32) {
    let dir = tempfile::tempdir().unwrap();
    let src = users_source(dir.path(), 30);
    let mapping = users_mapping(dir.path());
    let out = dir.path().join("out");
    run_ok(&mut run(&mapping, &src, &out, &[]));
    let before = tree(&out);
    let output = signalled_at(
        &mut run(&mapping, &src, &out, &["--var", "filter=id < 10"]),
        "after-parts-written",
        signal,
        dir.path(),
    );
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(code), "{err}");
    assert!(
        err.contains(&format!("interrupted by SIG{signal}")),
        "{err}"
    );
    assert_eq!(tree(&out), before, "no staging left, nothing published");
}

#[test]
fn sigterm_stops_a_run_cleanly_with_143() {
    stops_cleanly_on("TERM", 143);
}

#[test]
fn sighup_stops_a_run_cleanly_with_129() {
    stops_cleanly_on("HUP", 129);
}

#[test]
fn sigterm_on_s3_aborts_and_removes_the_staging() {
    let dir = tempfile::tempdir().unwrap();
    let src = users_source(dir.path(), 30);
    let mapping = users_mapping(dir.path());
    let server = S3Server::start(&["out"]);
    let mut cmd = run(&mapping, &src, "s3://out/p", &[]);
    server.configure(&mut cmd);
    let output = signalled_at(&mut cmd, "after-parts-written", "TERM", dir.path());
    assert_eq!(output.status.code(), Some(143), "{}", stderr(&output));
    let left = tree(&server.path("out/p"));
    assert!(left.is_empty(), "{:?}", names(&left));
    assert!(server.pending_uploads().is_empty());
}

/// SIGTERM while the write stage's partitions are still writing parts (a batch written, the
/// parts open): their uploads are aborted, nothing is published, no staging is left.
#[test]
fn sigterm_while_parts_are_written_aborts_them() {
    let dir = tempfile::tempdir().unwrap();
    let src = users_source(dir.path(), 30);
    let mapping = users_mapping(dir.path());
    let out = dir.path().join("out");
    run_ok(&mut run(&mapping, &src, &out, &[]));
    let before = tree(&out);
    let server = S3Server::start(&["out"]);
    let mut on_s3 = run(&mapping, &src, "s3://out/p", &[]);
    server.configure(&mut on_s3);
    for (mut cmd, local) in [(run(&mapping, &src, &out, &[]), true), (on_s3, false)] {
        let output = signalled_at(&mut cmd, "while-writing", "TERM", dir.path());
        assert_eq!(output.status.code(), Some(143), "{}", stderr(&output));
        if local {
            assert_eq!(tree(&out), before, "no staging left, nothing published");
        } else {
            let left = tree(&server.path("out/p"));
            assert!(left.is_empty(), "{:?}", names(&left));
            assert!(server.pending_uploads().is_empty());
        }
    }
}

#[test]
fn a_closed_stderr_or_stdout_is_not_a_panic() {
    let dir = tempfile::tempdir().unwrap();
    let src = users_source(dir.path(), 30);
    let mapping = users_mapping(dir.path());
    let out = dir.path().join("out");
    // `pengine run ... 2>&1 | head -0`: both ends closed before pengine writes.
    let mut child = run(&mapping, &src, &out, &["--json", "-v"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(0));
    assert_eq!(read_dataset(&out.join("users")).rows.len(), 30);
    // A failing run keeps its own exit code.
    let mut child = run(&mapping, &src, &out, &["--var", "filter=false"])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    assert_eq!(child.wait().unwrap().code(), Some(4));
}

#[test]
fn running_out_of_memory_has_its_own_code_and_advice() {
    let dir = tempfile::tempdir().unwrap();
    // One group holding every value: nothing an aggregate can spill.
    let text: String = (0..400_000)
        .map(|i| format!("{{\"id\":1,\"tier\":\"{i:0>80}\"}}\n"))
        .collect();
    let src = dir.path().join("src");
    write(src.join("users/users.json"), text);
    let mapping = dir.path().join("users.sql");
    write(
        &mapping,
        "CREATE EXTERNAL TABLE u STORED AS JSON LOCATION '${src}/users/';\n\
         SELECT id AS user_id, array_agg(tier) AS tiers FROM u GROUP BY id;\n",
    );
    let out = dir.path().join("out");
    let err = run_fails(
        &mut run(&mapping, &src, &out, &["--memory-limit", "16MiB"]),
        7,
    );
    assert!(
        err.contains("out of memory") && err.contains("--memory-limit"),
        "{err}"
    );
    assert!(!err.contains("datafusion.runtime"), "{err}");
    // A limit no query can run in is refused up front, with the minimum.
    let err = run_fails(
        &mut run(&mapping, &src, &out, &["--memory-limit", "15MiB"]),
        2,
    );
    assert!(err.contains("at least 16.0 MiB"), "{err}");
}

#[test]
fn verbose_shows_pengines_steps_and_no_parser_noise() {
    let dir = tempfile::tempdir().unwrap();
    let src = export_with_side_files(dir.path());
    let mapping = users_mapping(dir.path());
    let out = dir.path().join("out");
    let plain = stderr(&run_ok(
        run(&mapping, &src, &out, &[]).env_remove("PENGINE_LOG"),
    ));
    let verbose = stderr(&run_ok(
        run(&mapping, &src, &out, &["-v"]).env_remove("PENGINE_LOG"),
    ));
    for step in [
        "table u:",
        "listed ",
        "not read: ",
        "wrote ",
        "commit point",
        "published 1 part",
    ] {
        assert!(verbose.contains(step), "-v lacks {step:?}:\n{verbose}");
        assert!(!plain.contains(step), "plain run shows {step:?}:\n{plain}");
    }
    let output = run_ok(run(&mapping, &src, &out, &[]).env("PENGINE_LOG", "debug"));
    let debug = stderr(&output);
    assert!(debug.contains("commit point"), "{debug}");
    assert!(debug.lines().count() < 60, "dependency noise:\n{debug}");
}

#[test]
fn quiet_still_prints_failed_checks_and_json_prints_failures() {
    let dir = tempfile::tempdir().unwrap();
    let events: String = (0..50)
        .map(|i| {
            format!(
                "{{\"u\":\"u{i}\",\"i\":\"i{i}\",\"ts\":{}}}\n",
                1_709_251_200 + i
            )
        })
        .collect();
    write(dir.path().join("src/events/e.json"), events);
    let mapping = dir.path().join("interactions.sql");
    write(
        &mapping,
        "CREATE EXTERNAL TABLE e STORED AS JSON LOCATION '${src}/events/';\n\
         SELECT u AS user_id, i AS item_id, ts AS timestamp FROM e;\n",
    );
    let src = dir.path().join("src");
    let out = dir.path().join("out");
    // Under 1,000 interactions: published, but the checks fail (exit 6).
    let err = run_fails(&mut run(&mapping, &src, &out, &["-q"]), 6);
    assert!(err.contains("min_interactions"), "{err}");

    // A failed single-file run with --json: the error as JSON on stdout.
    let output = run(&mapping, &dir.path().join("nowhere"), &out, &["--json"])
        .output()
        .unwrap();
    let code = output.status.code().unwrap();
    assert_ne!(code, 0);
    let failure: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(failure["status"], "failed");
    assert_eq!(failure["exit_code"], code);
    assert!(failure["error"].as_str().unwrap().contains("nowhere"));
}

#[test]
fn on_s3_side_files_and_an_output_inside_the_source_are_not_read_and_empty_is_refused() {
    let server = S3Server::start(&["raw"]);
    let text: String = (0..30)
        .map(|i| format!("{{\"id\":{i},\"tier\":\"t{}\"}}\n", i % 3))
        .collect();
    write(server.path("raw/users/2024/01/users.json"), text);
    write(server.path("raw/users/_SUCCESS"), "");
    write(
        server.path("raw/users/2024/01/.users.json.crc"),
        [0u8, 1, 2],
    );
    write(
        server.path("raw/users/_temporary/0/x.json"),
        "{\"other\": 1}\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("users.sql");
    write(
        &mapping,
        "CREATE EXTERNAL TABLE u STORED AS JSON LOCATION 's3://raw/users/';\n\
         SELECT id AS user_id, tier AS tier FROM u WHERE ${filter:-true};\n",
    );
    // The output inside the source, three times: the same 30 rows each time.
    for _ in 0..3 {
        let mut cmd = pengine();
        cmd.arg("run")
            .arg(&mapping)
            .args(["--on-bad-records", "skip", "-o", "s3://raw/users/out"]);
        server.configure(&mut cmd);
        run_ok(&mut cmd);
        let report: Value = serde_json::from_slice(
            &std::fs::read(server.path("raw/users/out/users.report.json")).unwrap(),
        )
        .unwrap();
        assert_eq!(report["rows"]["read_from_sources"], 30, "{report}");
        assert_eq!(report["rows"]["bad_records"], 0, "{report}");
    }
    let before = tree(&server.path("raw/users/out"));
    let mut cmd = pengine();
    cmd.arg("run")
        .arg(&mapping)
        .args(["--var", "filter=id < 0", "-o", "s3://raw/users/out"]);
    server.configure(&mut cmd);
    let err = run_fails(&mut cmd, 4);
    assert!(err.contains("returned no rows"), "{err}");
    assert_eq!(tree(&server.path("raw/users/out")), before);
}

#[test]
fn sigterm_stops_every_dataset_of_a_project() {
    let dir = tempfile::tempdir().unwrap();
    let src = users_source(dir.path(), 30);
    let project = dir.path().join("project");
    for (file, id) in [("users.sql", "user_id"), ("items.sql", "item_id")] {
        write(
            project.join(file),
            format!(
                "CREATE EXTERNAL TABLE u STORED AS JSON LOCATION '${{src}}/users/';\n\
                 SELECT id AS {id}, tier AS tier FROM u;\n"
            ),
        );
    }
    let out = dir.path().join("out");
    let mut cmd = pengine();
    cmd.arg("run")
        .arg(&project)
        .arg("--var")
        .arg(format!("src={}", src.display()))
        .arg("-o")
        .arg(&out);
    let output = signalled_at(&mut cmd, "after-parts-written", "TERM", dir.path());
    assert_eq!(output.status.code(), Some(143), "{}", stderr(&output));
    let left = tree(&out);
    assert!(left.is_empty(), "{:?}", names(&left));
}

#[test]
fn every_row_read_is_accounted_for_operator_by_operator() {
    let dir = tempfile::tempdir().unwrap();
    let event = |u: &str, i: &str, ts: u64| format!("{{\"u\":{u},\"i\":\"{i}\",\"ts\":{ts}}}\n");
    let mut events = String::new();
    for n in 0..6 {
        events.push_str(&event(
            &format!("\"u{n}\""),
            &format!("i{}", n % 3),
            1_709_251_200 + n,
        ));
    }
    events.push_str(&event("\"u0\"", "i0", 1_709_251_200)); // an exact duplicate
    events.push_str(&event("null", "i1", 1_709_251_300)); // no user
    events.push_str(&event("null", "i2", 1_709_251_300)); // no user
    events.push_str(&event("\"u7\"", "i9", 1_709_251_400)); // not in the catalog
    write(dir.path().join("src/events/e.json"), events);
    write(
        dir.path().join("src/items.csv"),
        "sku,name\ni0,a\ni1,b\ni2,c\n",
    );
    let mapping = dir.path().join("interactions.sql");
    write(
        &mapping,
        "CREATE EXTERNAL TABLE e STORED AS JSON LOCATION '${src}/events/';\n\
         CREATE EXTERNAL TABLE c STORED AS CSV LOCATION '${src}/items.csv' \
         OPTIONS ('format.has_header' 'true');\n\
         SELECT DISTINCT e.u AS user_id, e.i AS item_id, e.ts AS timestamp \
         FROM e JOIN c ON c.sku = e.i WHERE e.u IS NOT NULL;\n",
    );
    let out = dir.path().join("out");
    let src = dir.path().join("src");
    // Under 1,000 interactions the checks fail (exit 6); the counts are what this test is about.
    run_fails(&mut run(&mapping, &src, &out, &[]), 6);
    let rows = report(&out, "interactions")["rows"].clone();
    // 10 events + 3 catalog rows; 2 without a user, 1 event of an unknown item and the 3 catalog
    // rows in the join, 1 duplicate.
    assert_eq!(rows["read_from_sources"], 13, "{rows}");
    assert_eq!(rows["written"], 6, "{rows}");
    assert_eq!(rows["measured"], true, "{rows}");
    assert_eq!(rows["removed_by"]["where"], 2, "{rows}");
    assert_eq!(rows["removed_by"]["join"], 4, "{rows}");
    assert_eq!(rows["removed_by"]["distinct_or_group_by"], 1, "{rows}");
    assert_eq!(rows["filtered_by_sql"], 7, "{rows}");
    assert_eq!(rows["added_by_sql"], 0, "{rows}");

    // A catalog that lists an item four times: the join makes more rows than it is given, and
    // says so (added_by) instead of reading as a negative filter.
    write(
        dir.path().join("src/items.csv"),
        "sku,name\ni0,a\ni0,a2\ni0,a3\ni0,a4\ni1,b\ni2,c\n",
    );
    let mapping = dir.path().join("with-names.sql");
    write(
        &mapping,
        "-- pengine: dataset = interactions\n\
         CREATE EXTERNAL TABLE e STORED AS JSON LOCATION '${src}/events/';\n\
         CREATE EXTERNAL TABLE c STORED AS CSV LOCATION '${src}/items.csv' \
         OPTIONS ('format.has_header' 'true');\n\
         SELECT e.u AS user_id, e.i AS item_id, e.ts AS timestamp, c.name AS name \
         FROM e JOIN c ON c.sku = e.i WHERE e.u IS NOT NULL;\n",
    );
    run_fails(&mut run(&mapping, &src, &out, &[]), 6);
    let rows = report(&out, "interactions")["rows"].clone();
    // 10 events + 6 catalog rows; the 8 events with a user, 3 of them of i0, make 3 x 4 + 2 + 2
    // = 16 rows from 8 + 6 (2 added).
    assert_eq!(rows["read_from_sources"], 16, "{rows}");
    assert_eq!(rows["added_by"]["join"], 2, "{rows}");
    assert_eq!(rows["added_by_sql"], 2, "{rows}");
    assert_eq!(rows["removed_by"]["where"], 2, "{rows}");
    assert_eq!(rows["written"], 16, "{rows}");
    assert_eq!(rows["filtered_by_sql"], 2, "{rows}");
}

#[test]
fn rows_lost_between_the_query_and_the_writer_stop_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let src = users_source(dir.path(), 30);
    let mapping = users_mapping(dir.path());
    let out = dir.path().join("out");
    let err = run_fails(
        run(&mapping, &src, &out, &[]).env("PENGINE_FAILPOINT", "lose-a-batch"),
        1,
    );
    assert!(
        err.contains("do not add up") && err.contains("unaccounted for"),
        "{err}"
    );
    assert!(!out.join("users").exists());
    assert_no_staging(&out);
}

#[test]
fn init_that_writes_no_mapping_does_not_succeed() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path().join("x.csv"), "a,b\n1,2\n3,4\n");
    let err = run_fails(
        pengine()
            .arg("init")
            .arg("--source")
            .arg(dir.path().join("x.csv"))
            .arg("--into")
            .arg(dir.path().join("mappings")),
        3,
    );
    assert!(err.contains("wrote no mapping file"), "{err}");
}

#[test]
fn init_force_with_fewer_sources_keeps_the_variables_other_files_use() {
    let dir = tempfile::tempdir().unwrap();
    let into = dir.path().join("project");
    let testdata = repo_root().join("testdata");
    let source = |s: &str| format!("{}/{s}", testdata.display());
    let init = |sources: &[&str], extra: &[&str]| {
        let mut cmd = pengine();
        cmd.arg("init");
        for s in sources {
            cmd.arg("--source").arg(source(s));
        }
        cmd.arg("--into").arg(&into).args(extra);
        cmd
    };
    run_ok(&mut init(&["events/", "items.csv", "users.parquet"], &[]));
    run_ok(&mut init(&["users.parquet"], &["--force"]));
    let toml = std::fs::read_to_string(into.join("pengine.toml")).unwrap();
    assert!(toml.contains("events") && toml.contains("items"), "{toml}");
    let out = dir.path().join("out");
    run_ok(pengine().arg("run").arg(&into).arg("-o").arg(&out));
}

#[test]
fn a_limit_and_a_pruned_parquet_row_group_are_accounted_for() {
    use arrow::array::{Int64Array, StringArray};
    use arrow::datatypes::{DataType, Field, Schema};
    use arrow::record_batch::RecordBatch;
    let dir = tempfile::tempdir().unwrap();
    let src = users_source(dir.path(), 30);
    let out = dir.path().join("out");
    let limited = dir.path().join("users.sql");
    write(
        &limited,
        "CREATE EXTERNAL TABLE u STORED AS JSON LOCATION '${src}/users/';\n\
         SELECT id AS user_id, tier AS tier FROM u LIMIT 5;\n",
    );
    run_ok(&mut run(&limited, &src, &out, &[]));
    let rows = report(&out, "users")["rows"].clone();
    assert_eq!(rows["written"], 5, "{rows}");
    assert_eq!(rows["measured"], true, "{rows}");
    let read = rows["read_from_sources"].as_u64().unwrap();
    assert_eq!(
        read,
        5 + rows["filtered_by_sql"].as_u64().unwrap(),
        "{rows}"
    );

    // 200 users in two row groups of 100; the WHERE rules the first out by its statistics.
    let schema = Arc::new(Schema::new(vec![
        Field::new("id", DataType::Int64, false),
        Field::new("tier", DataType::Utf8, false),
    ]));
    let ids = Int64Array::from_iter_values(0..200);
    let tiers = StringArray::from_iter_values((0..200).map(|i| format!("t{}", i % 3)));
    let batch =
        RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(ids), Arc::new(tiers)]).unwrap();
    let props = parquet::file::properties::WriterProperties::builder()
        .set_max_row_group_row_count(Some(100))
        .build();
    std::fs::create_dir_all(dir.path().join("pq")).unwrap();
    let file = std::fs::File::create(dir.path().join("pq/users.parquet")).unwrap();
    let mut writer = parquet::arrow::ArrowWriter::try_new(file, schema, Some(props)).unwrap();
    writer.write(&batch).unwrap();
    writer.close().unwrap();
    let pruned = dir.path().join("pruned.sql");
    write(
        &pruned,
        "-- pengine: dataset = users\n\
         CREATE EXTERNAL TABLE u STORED AS PARQUET LOCATION '${src}/../pq/';\n\
         SELECT id AS user_id, tier AS tier FROM u WHERE id >= 150;\n",
    );
    run_ok(&mut run(&pruned, &src, &out, &[]));
    let rows = report(&out, "users")["rows"].clone();
    assert_eq!(rows["written"], 50, "{rows}");
    assert_eq!(rows["read_from_sources"], 100, "{rows}");
    assert_eq!(rows["pruned"]["parquet_row_groups"], 1, "{rows}");
}

/// A `key=value` export whose WHERE keeps some partitions: DataFusion scans only those, and the
/// report names what it left unread (partitions, their files and bytes) instead of losing them.
#[test]
fn partitions_pruned_by_the_where_clause_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let src = partitioned_users(&dir.path().join("src"));
    let mapping = users_mapping(dir.path());
    let out = dir.path().join("out");
    let bytes = |files: &[&str]| -> u64 {
        let users = src.join("users");
        files
            .iter()
            .map(|f| std::fs::metadata(users.join(f)).unwrap().len())
            .sum()
    };
    let pruned_by = |filter: &str| {
        run_ok(&mut run(
            &mapping,
            &src,
            &out,
            &["--var", &format!("filter={filter}")],
        ));
        report(&out, "users")["rows"].clone()
    };
    let rows = pruned_by("date = '2024-03-02'");
    assert_eq!(rows["written"], 20, "{rows}");
    assert_eq!(rows["read_from_sources"], 20, "{rows}");
    assert_eq!(rows["pruned"]["partitions"], 2, "{rows}");
    assert_eq!(rows["pruned"]["partition_files"], 2, "{rows}");
    let unread = bytes(&["date=2024-03-01/a.json", "date=2024-03-03/d.json"]);
    assert_eq!(rows["pruned"]["partition_bytes"], unread, "{rows}");

    // A range: every partition is listed, the first is ruled out.
    let rows = pruned_by("date >= '2024-03-02'");
    assert_eq!(rows["written"], 25, "{rows}");
    assert_eq!(rows["pruned"]["partitions"], 1, "{rows}");
    assert_eq!(rows["pruned"]["partition_files"], 1, "{rows}");

    // No filter on the partition column: nothing pruned, nothing listed again.
    let rows = pruned_by("tier <> 'none'");
    assert_eq!(rows["written"], 35, "{rows}");
    assert!(rows["pruned"].get("partitions").is_none(), "{rows}");
}
