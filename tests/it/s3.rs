//! S3 end to end against a real S3-compatible server (s3s-fs) that the test starts on loopback:
//! sources read from S3, the dataset published to S3, replacement, a killed run, and credentials
//! never printed.

use crate::common::*;

#[test]
fn bundled_example_from_s3_to_s3() {
    let server = S3Server::start(&["raw", "personalize"]);
    copy_tree(&repo_root().join("testdata"), &server.path("raw/exports"));

    let mut cmd = pengine();
    server.configure(&mut cmd);
    let output = run_ok(cmd.current_dir(repo_root()).args([
        "run",
        "sql/",
        "--var",
        "source=s3://raw/exports",
        "--output",
        "s3://personalize/2024-q1",
        "--json",
    ]));
    let published = file_names(&server.path("personalize/2024-q1"));
    assert_eq!(
        published
            .iter()
            .filter(|f| !f.contains("/.") && !f.starts_with('.'))
            .cloned()
            .collect::<Vec<_>>(),
        [
            "interactions.current.json",
            "interactions.report.json",
            "interactions.schema.json",
            "interactions/part-00000.csv",
            "items.current.json",
            "items.report.json",
            "items.schema.json",
            "items/part-00000.csv",
            "users.current.json",
            "users.report.json",
            "users.schema.json",
            "users/part-00000.csv"
        ]
    );
    let staged = staged_files(&server.path("personalize/2024-q1"));
    assert!(staged.is_empty(), "staging left on S3: {staged:?}");

    // Same rows as the local run of the same example.
    let local = tempfile::tempdir().unwrap();
    run_ok(
        pengine()
            .current_dir(repo_root())
            .args(["run", "sql/interactions.sql", "-o"])
            .arg(local.path()),
    );
    let from_s3 = read_dataset(&server.path("personalize/2024-q1/interactions"));
    let from_disk = read_dataset(&local.path().join("interactions"));
    let mut a = from_s3.rows.clone();
    let mut b = from_disk.rows.clone();
    a.sort();
    b.sort();
    assert_eq!(a, b);

    // Credentials appear nowhere in what pengine printed or wrote.
    let printed = format!("{}{}", stdout(&output), stderr(&output));
    assert!(!printed.contains(S3_SECRET) && !printed.contains(S3_KEY));
    for file in published {
        let text = std::fs::read_to_string(server.path("personalize/2024-q1").join(&file))
            .unwrap_or_default();
        assert!(!text.contains(S3_SECRET), "{file} holds the secret");
    }
}

#[test]
fn rerun_on_s3_replaces_and_a_killed_run_changes_nothing() {
    let server = S3Server::start(&["raw", "out"]);
    let mut users = String::new();
    for i in 0..300 {
        users.push_str(&format!("{{\"id\":\"u{i}\",\"tier\":\"t{}\"}}\n", i % 4));
    }
    write(server.path("raw/users/users.json"), &users);
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("users.sql");
    write(
        &mapping,
        "CREATE EXTERNAL TABLE u STORED AS JSON LOCATION 's3://raw/users/';\nSELECT id AS user_id, tier AS tier FROM u;",
    );
    let run = |size: &str| {
        let mut cmd = pengine();
        server.configure(&mut cmd);
        cmd.arg("run")
            .arg(&mapping)
            .args(["-o", "s3://out/p", "--max-file-size", size]);
        cmd
    };
    run_ok(&mut run("1KiB"));
    let many = std::fs::read_dir(server.path("out/p/users"))
        .unwrap()
        .count();
    assert!(many >= 3, "{many} parts");
    assert_eq!(read_dataset(&server.path("out/p/users")).rows.len(), 300);

    run_ok(&mut run("1MiB"));
    assert_eq!(file_names(&server.path("out/p/users")), ["part-00000.csv"]);
    let before = std::fs::read(server.path("out/p/users/part-00000.csv")).unwrap();

    // Killed before its commit point: the S3 export is exactly as it was.
    write(
        server.path("raw/users/users.json"),
        "{\"id\":\"only\",\"tier\":\"x\"}\n",
    );
    let mut child = spawn_at_failpoint(&mut run("1MiB"), "after-parts-written", dir.path());
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(file_names(&server.path("out/p/users")), ["part-00000.csv"]);
    assert_eq!(
        std::fs::read(server.path("out/p/users/part-00000.csv")).unwrap(),
        before
    );

    run_ok(&mut run("1MiB"));
    assert_eq!(
        read_dataset(&server.path("out/p/users")).rows,
        vec![vec!["only", "x"]]
    );
    let leftovers = staged_files(&server.path("out/p"));
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_reader_following_the_pointer_on_s3_sees_one_whole_run_while_a_run_promotes() {
    let server = S3Server::start(&["raw", "out"]);
    let users = |n: usize, tag: &str| {
        let lines: String = (0..n)
            .map(|i| format!("{{\"id\":\"{tag}{i}\",\"tier\":\"t\"}}\n"))
            .collect();
        write(server.path("raw/users/users.json"), &lines);
    };
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("users.sql");
    write(
        &mapping,
        "CREATE EXTERNAL TABLE u STORED AS JSON LOCATION 's3://raw/users/';\nSELECT id AS user_id, tier AS tier FROM u;",
    );
    let run = || {
        let mut cmd = pengine();
        server.configure(&mut cmd);
        cmd.arg("run")
            .arg(&mapping)
            .args(["-o", "s3://out/p", "--max-file-size", "1KiB"]);
        cmd
    };
    let out = server.path("out/p");
    let tags = |csv: Csv| {
        let mut tags: Vec<String> = csv.rows.iter().map(|r| r[0][..1].to_string()).collect();
        tags.dedup();
        (csv.rows.len(), tags)
    };
    users(300, "a");
    run_ok(&mut run());
    assert_eq!(
        tags(read_via_pointer(&out, "users")),
        (300, vec!["a".into()])
    );

    // Stopped after its commit point, with one part promoted: the mirror mixes the two runs,
    // the pointer names run b alone, and run a's snapshot is still whole for readers that began
    // before the commit.
    users(120, "b");
    let mut child = spawn_at_failpoint(&mut run(), "after-first-promoted-part", dir.path());
    let mirror = read_dataset(&out.join("users"));
    assert!(
        mirror.rows.iter().any(|r| r[0].starts_with('a'))
            && mirror.rows.iter().any(|r| r[0].starts_with('b')),
        "the stop did not land mid-promotion"
    );
    assert_eq!(
        tags(read_via_pointer(&out, "users")),
        (120, vec!["b".into()])
    );
    let before_commit = kept_snapshots(&out);
    assert_eq!(before_commit.len(), 2, "{before_commit:?}");
    child.kill().unwrap();
    child.wait().unwrap();

    // The next run finishes that promotion first, then publishes its own.
    users(5, "c");
    run_ok(&mut run());
    assert_eq!(tags(read_via_pointer(&out, "users")), (5, vec!["c".into()]));
    assert_eq!(
        tags(read_dataset(&out.join("users"))),
        (5, vec!["c".into()])
    );
    let leftovers = staged_files(&out);
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn wrong_credentials_fail_clearly_without_printing_the_secret() {
    let server = S3Server::start(&["raw"]);
    write(server.path("raw/u.json"), "{\"id\":\"a\",\"t\":\"b\"}\n");
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("users.sql");
    write(
        &mapping,
        "CREATE EXTERNAL TABLE u STORED AS JSON LOCATION 's3://raw/u.json';\nSELECT id AS user_id, t AS t FROM u;",
    );
    let mut cmd = pengine();
    server.configure(&mut cmd);
    let wrong_secret = "wrong-secret-value-SHOULD-NOT-APPEAR";
    cmd.env("AWS_SECRET_ACCESS_KEY", wrong_secret);
    let output = cmd
        .arg("run")
        .arg(&mapping)
        .arg("-o")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(!err.contains(wrong_secret), "{err}");
    assert!(err.contains("users.sql:1"), "{err}");
    assert!(!dir.path().join("out/users").exists());
}

#[test]
fn aws_profile_credentials_through_the_sdk_chain() {
    let server = S3Server::start(&["raw"]);
    write(server.path("raw/u.json"), "{\"id\":\"a\",\"t\":\"b\"}\n");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("aws-config");
    let credentials = dir.path().join("aws-credentials");
    write(&config, "[profile pengine-test]\nregion = eu-west-1\n");
    write(
        &credentials,
        format!(
            "[pengine-test]\naws_access_key_id = {S3_KEY}\naws_secret_access_key = {S3_SECRET}\n"
        ),
    );
    let mapping = dir.path().join("users.sql");
    write(
        &mapping,
        "CREATE EXTERNAL TABLE u STORED AS JSON LOCATION 's3://raw/u.json';\nSELECT id AS user_id, t AS t FROM u;",
    );
    // No keys in the environment: only the profile can provide them.
    let mut cmd = pengine();
    cmd.env("AWS_ENDPOINT_URL", &server.endpoint)
        .env("AWS_PROFILE", "pengine-test")
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_SHARED_CREDENTIALS_FILE", &credentials)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .arg("run")
        .arg(&mapping)
        .arg("-o")
        .arg(dir.path().join("out"));
    run_ok(&mut cmd);
    assert_eq!(
        read_dataset(&dir.path().join("out/users")).rows,
        vec![vec!["a", "b"]]
    );
}

#[test]
fn credentials_never_appear_in_output_logs_reports_or_bad_records() {
    let server = S3Server::start(&["raw", "out"]);
    // A bad record too, so the bad-records file and its excerpts are checked as well.
    write(
        server.path("raw/u.json"),
        "{\"id\":\"a\",\"t\":\"b\"}\n{\"id\":\"b\",\n{\"id\":\"c\",\"t\":\"d\"}\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("users.sql");
    write(
        &mapping,
        "CREATE EXTERNAL TABLE u STORED AS JSON LOCATION 's3://raw/u.json';\nSELECT id AS user_id, t AS t FROM u;",
    );
    let session_token = "session-token-SHOULD-NOT-APPEAR";
    let mut cmd = pengine();
    server.configure(&mut cmd);
    cmd.env("AWS_SESSION_TOKEN", session_token)
        // Every crate's logs (the HTTP and AWS clients' too): a filter with targets is used as is.
        .env("PENGINE_LOG", "trace,pengine=trace")
        .arg("-vv")
        .arg("run")
        .arg(&mapping)
        .arg("--json")
        .arg("--on-bad-records")
        .arg("skip")
        .arg("-o")
        .arg("s3://out/export");
    let output = run_ok(&mut cmd);
    let mut texts = vec![stdout(&output), stderr(&output)];
    assert!(
        texts[1].len() > 1000,
        "trace logging produced little output"
    );
    for file in file_names(&server.path("out")) {
        texts.push(
            String::from_utf8_lossy(&std::fs::read(server.path("out").join(&file)).unwrap())
                .into_owned(),
        );
    }
    assert!(
        texts.iter().any(|t| t.contains("bad-records")),
        "no bad-records file or mention"
    );
    for text in &texts {
        assert!(!text.contains(S3_SECRET), "the secret key appears:\n{text}");
        assert!(
            !text.contains(session_token),
            "the session token appears:\n{text}"
        );
    }
}

/// Credentials from the SDK chain (here a profile's credential_process, which counts its calls)
/// are fetched once for the whole run: every source, bucket and part shares them.
#[test]
fn sdk_chain_credentials_are_fetched_once_per_run() {
    let server = S3Server::start(&["raw", "lookup", "out"]);
    let users: String = (0..300)
        .map(|i| format!("{{\"id\":\"u{i}\",\"t\":\"tier{}\"}}\n", i % 3))
        .collect();
    for hour in 0..6 {
        write(server.path(&format!("raw/users/{hour:02}/u.json")), &users);
    }
    let labels: String = (0..3)
        .map(|t| format!("tier{t},label-{t}-{}\n", "x".repeat(40)))
        .collect();
    write(
        server.path("lookup/tiers.csv"),
        format!("t,label\n{labels}"),
    );
    let dir = tempfile::tempdir().unwrap();
    let calls = dir.path().join("calls");
    let process = dir.path().join("credentials.sh");
    write(
        &process,
        format!(
            "#!/bin/sh\necho call >> '{}'\nprintf '{{\"Version\": 1, \"AccessKeyId\": \"{S3_KEY}\", \
             \"SecretAccessKey\": \"{S3_SECRET}\", \"Expiration\": \"2099-01-01T00:00:00Z\"}}'\n",
            calls.display()
        ),
    );
    std::fs::set_permissions(
        &process,
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let config = dir.path().join("aws-config");
    write(
        &config,
        format!(
            "[profile counting]\ncredential_process = {}\nregion = us-east-1\n",
            process.display()
        ),
    );
    let mapping = dir.path().join("users.sql");
    write(
        &mapping,
        "CREATE EXTERNAL TABLE u STORED AS JSON LOCATION 's3://raw/users/';\n\
         CREATE EXTERNAL TABLE t STORED AS CSV LOCATION 's3://lookup/tiers.csv' \
         OPTIONS ('format.has_header' 'true');\n\
         SELECT DISTINCT u.id AS user_id, t.label AS label FROM u JOIN t ON u.t = t.t;",
    );
    let mut cmd = pengine();
    cmd.env("AWS_PROFILE", "counting")
        .env("AWS_CONFIG_FILE", &config)
        .env("AWS_SHARED_CREDENTIALS_FILE", dir.path().join("none"))
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_ENDPOINT_URL", &server.endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .arg("run")
        .arg(&mapping)
        .args(["--max-file-size", "1KiB", "-o", "s3://out/p", "--json"]);
    let output = run_ok(&mut cmd);
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    let parts = report["files"].as_array().unwrap().len();
    assert!(parts > 10, "many parts, many requests: {parts}");
    assert_eq!(read_dataset(&server.path("out/p/users")).rows.len(), 300);
    let fetched = std::fs::read_to_string(&calls).unwrap().lines().count();
    assert_eq!(fetched, 1, "credential_process ran {fetched} times");
}

/// A bad record in an S3 source is named by its URL, in the error and in the bad-records file.
#[test]
fn bad_records_in_s3_sources_are_named_by_their_url() {
    let server = S3Server::start(&["raw"]);
    write(
        server.path("raw/ev/u.json"),
        "{\"id\":\"a\"}\n{\"id\":\"b\",}\n{\"id\":\"c\"}\n",
    );
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("users.sql");
    write(
        &mapping,
        "CREATE EXTERNAL TABLE u STORED AS JSON LOCATION 's3://raw/ev/';\nSELECT id AS user_id, concat('t', id) AS tag FROM u;",
    );
    let run = |policy: &str| {
        let mut cmd = pengine();
        server.configure(&mut cmd);
        cmd.arg("run")
            .arg(&mapping)
            .args(["--on-bad-records", policy, "-o"])
            .arg(dir.path().join("out"));
        cmd
    };
    let err = run_fails(&mut run("fail"), 4);
    assert!(err.contains(" s3://raw/ev/u.json: byte 11: "), "{err}");
    run_ok(&mut run("skip"));
    let bad = std::fs::read_to_string(dir.path().join("out/users.bad-records.jsonl")).unwrap();
    let line: serde_json::Value = serde_json::from_str(bad.trim()).unwrap();
    assert_eq!(line["file"], "s3://raw/ev/u.json");
}

#[test]
fn incremental_runs_on_s3_tell_new_and_changed_objects_by_their_entity_tags() {
    let server = S3Server::start(&["raw", "out"]);
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("users.sql");
    write(
        &mapping,
        "-- pengine: incremental = u\nCREATE EXTERNAL TABLE u STORED AS JSON LOCATION 's3://raw/users/';\nSELECT id AS user_id, tier AS tier FROM u;",
    );
    let run = |flags: &[&str]| {
        let mut cmd = pengine();
        server.configure(&mut cmd);
        cmd.arg("run")
            .arg(&mapping)
            .args(["-o", "s3://out/p", "--json", "--no-insights"])
            .args(flags);
        cmd
    };
    write(
        server.path("raw/users/a.json"),
        "{\"id\":\"a\",\"tier\":\"x\"}\n",
    );
    run_ok(&mut run(&["--incremental"]));
    write(
        server.path("raw/users/b.json"),
        "{\"id\":\"b\",\"tier\":\"x\"}\n",
    );
    let report = stdout_json(&run_ok(&mut run(&["--incremental"])));
    assert_eq!(report["increment"]["kind"], "increment", "{report}");
    assert_eq!(report["increment"]["new_files"], 1);
    assert_eq!(report["rows"]["written"], 1);
    assert_eq!(
        read_via_pointer(&server.path("out/p"), "users").rows.len(),
        2
    );

    // Same size, other bytes: only the entity tag tells.
    write(
        server.path("raw/users/a.json"),
        "{\"id\":\"A\",\"tier\":\"y\"}\n",
    );
    let err = run_fails(&mut run(&["--incremental"]), 4);
    assert!(err.contains("s3://raw/users/a.json"), "{err}");
}

/// Reporting the partitions a WHERE pruned lists the table once more, whole; on S3 that costs at
/// most one LIST (DataFusion's listing cache often answers it), measured against the same run
/// without a filter on the partition column.
#[test]
fn pruned_partitions_cost_at_most_one_more_list() {
    let server = S3Server::start(&["raw", "out"]);
    let dir = tempfile::tempdir().unwrap();
    partitioned_users(&server.path("raw/export"));
    let mapping = dir.path().join("users.sql");
    write(
        &mapping,
        "CREATE EXTERNAL TABLE u STORED AS JSON LOCATION 's3://raw/export/users/';\n\
         SELECT id AS user_id, tier AS tier FROM u WHERE ${filter};\n",
    );
    // Each run publishes to a fresh output, so both list the same for publication.
    let lists = |filter: &str, output: &str| {
        server.faults.clear();
        let mut cmd = pengine();
        server.configure(&mut cmd);
        let output = run_ok(
            cmd.arg("run")
                .arg(&mapping)
                .args(["--var", &format!("filter={filter}")])
                .args(["--json", "-o", output]),
        );
        let rows = stdout_json(&output)["rows"].clone();
        (server.faults.answered_count("ListObjects"), rows)
    };
    let (unfiltered, rows) = lists("tier <> 'none'", "s3://out/a");
    assert!(rows["pruned"].get("partitions").is_none(), "{rows}");
    let (pruning, rows) = lists("date = '2024-03-02'", "s3://out/b");
    assert_eq!(rows["pruned"]["partitions"], 2, "{rows}");
    assert_eq!(rows["read_from_sources"], 20, "{rows}");
    eprintln!("ListObjects requests: {unfiltered} without a partition filter, {pruning} with");
    assert!(pruning <= unfiltered + 1, "{pruning} against {unfiltered}");
}
