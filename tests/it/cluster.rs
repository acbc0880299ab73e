//! Runs on a Ballista cluster of pengine's own processes (`pengine cluster scheduler` and
//! executors on loopback): the same rows and report as a local run, to local output and to the
//! loopback S3 server, with parts written by several executors; an executor killed mid-run; an
//! unreachable scheduler; what a cluster does not do yet.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::common::cluster::Cluster;
use crate::common::*;

/// The rows of every dataset under `out`, sorted, by dataset.
fn datasets(out: &Path, names: &[&str]) -> Vec<(String, Vec<Vec<String>>)> {
    names
        .iter()
        .map(|name| {
            let mut rows = read_dataset(&out.join(name)).rows;
            rows.sort();
            (name.to_string(), rows)
        })
        .collect()
}

fn run_reports(output: &std::process::Output) -> Vec<Value> {
    let json = stdout_json(output);
    match json["datasets"].as_array() {
        Some(datasets) => datasets.iter().map(|d| d["report"].clone()).collect(),
        None => vec![json],
    }
}

#[test]
fn the_bundled_example_on_a_cluster_gives_the_local_rows_and_report() {
    let cluster = Cluster::start(2, |_| {});
    let dir = tempfile::tempdir().unwrap();
    let (local, remote) = (dir.path().join("local"), dir.path().join("cluster"));
    run_ok(
        pengine()
            .current_dir(repo_root())
            .args(["run", "sql/", "-q", "-o"])
            .arg(&local),
    );
    let output = run_ok(
        pengine()
            .current_dir(repo_root())
            .args(["run", "sql/", "--json", "--cluster"])
            .arg(format!("df://{}", cluster.scheduler))
            .arg("-o")
            .arg(&remote),
    );
    let names = ["interactions", "items", "users"];
    assert_eq!(datasets(&remote, &names), datasets(&local, &names));
    assert!(
        staged_files(&remote).is_empty(),
        "{:?}",
        staged_files(&remote)
    );

    let mut executors = std::collections::BTreeSet::new();
    for report in run_reports(&output) {
        let local_report: Value = serde_json::from_slice(
            &std::fs::read(local.join(format!(
                "{}.report.json",
                report["dataset"].as_str().unwrap()
            )))
            .unwrap(),
        )
        .unwrap();
        // Rows accounted for as in the local run: read, removed by kind, written.
        for key in ["read_from_sources", "removed_by", "written", "measured"] {
            assert_eq!(
                report["rows"][key], local_report["rows"][key],
                "{key} of {}",
                report["dataset"]
            );
        }
        // The insights add up over the tasks as over local partitions.
        for key in [
            "rows",
            "event_types",
            "distinct_users",
            "distinct_items",
            "duplicate_rows",
            "first_timestamp",
            "last_timestamp",
        ] {
            assert_eq!(
                report["checks"][key], local_report["checks"][key],
                "{key} of {}",
                report["dataset"]
            );
        }
        assert_eq!(
            report["cluster"]["scheduler"].as_str(),
            Some(cluster.scheduler.as_str())
        );
        // The scheduler's task counts: every stage's tasks, none run again.
        let tasks = report["cluster"]["tasks"].as_u64().unwrap();
        assert!(tasks >= report["cluster"]["write_partitions"].as_u64().unwrap());
        assert_eq!(report["cluster"]["task_retries"], 0, "{report}");
        for part in report["files"].as_array().unwrap() {
            assert!(part["name"].as_str().unwrap().starts_with("part-"));
        }
        for executor in report["cluster"]["executors"].as_array().unwrap() {
            executors.insert(executor.as_str().unwrap().to_string());
        }
    }
    // One slot each: the interactions' three final tasks go to both executors.
    assert_eq!(executors.len(), 2, "{executors:?}");
}

#[test]
fn a_cluster_reads_from_and_writes_to_s3_with_its_own_credentials() {
    let server = S3Server::start(&["raw", "personalize"]);
    copy_tree(&repo_root().join("testdata"), &server.path("raw/exports"));
    let cluster = Cluster::start(2, |cmd| server.configure(cmd));
    // The bundled interactions from the bucket `raw` into `personalize`, on the cluster.
    let run = |extra: &[&str]| {
        let mut cmd = pengine();
        server.configure(&mut cmd);
        run_ok(
            cmd.current_dir(repo_root())
                .args([
                    "run",
                    "sql/interactions.sql",
                    "--var",
                    "source=s3://raw/exports",
                ])
                .args(["--output", "s3://personalize/2024-q1", "--json"])
                .args(["--cluster", &cluster.scheduler])
                .args(extra),
        )
    };
    let output = run(&[]);
    assert!(!stdout(&output).contains(S3_SECRET) && !stderr(&output).contains(S3_SECRET));
    let local = tempfile::tempdir().unwrap();
    run_ok(
        pengine()
            .current_dir(repo_root())
            .args(["run", "sql/interactions.sql", "-q", "-o"])
            .arg(local.path()),
    );
    let names = ["interactions"];
    assert_eq!(
        datasets(&server.path("personalize/2024-q1"), &names),
        datasets(local.path(), &names)
    );
    assert!(server.pending_uploads().is_empty());

    // Again into the same (now published) output, with a line of garbage in one events file,
    // skipped: the executors write it to the bucket, the client stages it once.
    let file = "raw/exports/events/2024/03/01/03/events-00003-a.json";
    let mut text = std::fs::read_to_string(server.path(file)).unwrap();
    text.push_str("\u{1}not an event\n");
    std::fs::write(server.path(file), text).unwrap();
    let output = run(&["--on-bad-records", "skip"]);
    let report = &run_reports(&output)[0];
    assert_eq!(report["bad_records"]["total"], 1, "{report}");
    let out = server.path("personalize/2024-q1");
    let bad = std::fs::read_to_string(out.join("interactions.bad-records.jsonl")).unwrap();
    assert_eq!(bad.lines().count(), 1, "{bad}");
    assert!(bad.contains(&format!("s3://{file}")), "{bad}");
    // The first run's parts were replaced, not added to.
    assert_eq!(datasets(&out, &names), datasets(local.path(), &names));
    assert!(staged_files(&out).is_empty(), "{:?}", staged_files(&out));
    assert!(server.pending_uploads().is_empty());
}

/// Event `i` as a line of newline-delimited JSON, with `extra` fields.
fn event(i: usize, extra: &str) -> String {
    format!(
        "{{\"u\":\"u{}\",\"i\":\"i{}\",\"ts\":{}{extra}}}\n",
        i % 5000,
        i % 700,
        1_709_251_200 + i
    )
}

/// `dir/interactions.sql`, reading the events under `${src}` (with `columns` declared, if any)
/// into interactions as they are.
fn plain_mapping(dir: &Path, columns: &str) -> std::path::PathBuf {
    let mapping = dir.join("interactions.sql");
    write(
        &mapping,
        format!(
            "CREATE EXTERNAL TABLE e {columns}STORED AS JSON LOCATION '${{src}}/';\n\
             SELECT u AS user_id, i AS item_id, ts AS timestamp FROM e;"
        ),
    );
    mapping
}

/// `files` newline-delimited files `src/eNN.json` of `per_file` events each: the text of the
/// `j`th event of file `f`, event `i` of all, is `text(f, j, i)`.
fn event_files(
    dir: &Path,
    files: usize,
    per_file: usize,
    text: impl Fn(usize, usize, usize) -> String,
) {
    for f in 0..files {
        let lines: String = (0..per_file)
            .map(|j| text(f, j, f * per_file + j))
            .collect();
        write(dir.join(format!("src/e{f:02}.json")), lines);
    }
}

/// An export of `files` newline-delimited files of `per_file` events each, with 1 % repeated
/// lines, and a mapping that keeps distinct rows.
fn repeated_export(dir: &Path, files: usize, per_file: usize) -> std::path::PathBuf {
    event_files(dir, files, per_file, |_, j, i| match j % 100 {
        0 => event(i, "").repeat(2),
        _ => event(i, ""),
    });
    let mapping = dir.join("interactions.sql");
    write(
        &mapping,
        "CREATE EXTERNAL TABLE e STORED AS JSON LOCATION '${src}/';\n\
         SELECT DISTINCT u AS user_id, i AS item_id, ts AS timestamp FROM e;",
    );
    mapping
}

#[test]
fn an_executor_killed_mid_run_leaves_the_output_exactly_right() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mapping = repeated_export(d, 12, 40_000);
    let src = format!("src={}", d.join("src").display());
    run_ok(&mut run_mapping(&mapping, &src, d.join("local"), &["-q"]));

    // Ballista's recovery can still fail a job now and then (a stage's shuffle output lost with
    // the executor, beyond what the client's second job catches): such a run must publish
    // nothing, and the scenario is played once more. Wrong rows are never retried.
    let mut plays = 0;
    let output = loop {
        plays += 1;
        let mut cluster = Cluster::start(3, |_| {});
        let idle = executors_cpu(&cluster);
        let run = run_mapping(
            &mapping,
            &src,
            d.join("cluster"),
            &["--json", "--cluster", &cluster.scheduler],
        )
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
        // Mid-run, however fast the machine: the scans are under way on every executor.
        wait_for_tasks(&cluster, &idle, 0.3);
        let mut victim = cluster.executors.remove(0);
        victim.kill().unwrap();
        victim.wait().unwrap();
        let output = run.wait_with_output().unwrap();
        if output.status.success() || plays == 2 {
            break output;
        }
        assert!(!d.join("cluster/interactions").exists());
        assert!(staged_files(&d.join("cluster")).is_empty());
        eprintln!("the run failed, publishing nothing: {}", stderr(&output));
    };
    assert!(output.status.success(), "{}", stderr(&output));

    let names = ["interactions"];
    let (cluster_rows, local_rows) = (
        datasets(&d.join("cluster"), &names),
        datasets(&d.join("local"), &names),
    );
    assert_eq!(cluster_rows[0].1.len(), 12 * 40_000);
    assert_eq!(cluster_rows, local_rows);
    let report = &run_reports(&output)[0];
    assert_eq!(report["rows"]["written"], 12 * 40_000);
    assert_eq!(report["rows"]["measured"], true);
    // The lost executor's tasks ran again, unless the job itself was run again.
    let rerun = stderr(&output).contains("running the job again");
    assert!(
        rerun || report["cluster"]["task_retries"].as_u64().unwrap() >= 1,
        "{report}"
    );
    // Every part in the data folder is one the report lists: none from a lost attempt.
    let mut listed: Vec<&str> = report["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    listed.sort_unstable();
    let on_disk = file_names(&d.join("cluster/interactions"));
    assert_eq!(on_disk, listed);
}

/// Every file under `dir`, relative to it, sorted.
fn all_files(dir: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut folders = vec![dir.to_path_buf()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                folders.push(path);
            } else {
                found.push(path.strip_prefix(dir).unwrap().display().to_string());
            }
        }
    }
    found.sort();
    found
}

/// CPU time a process has used, in seconds (Linux).
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // Fields after the command's closing parenthesis; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// Each executor's CPU seconds so far.
fn executors_cpu(cluster: &Cluster) -> Vec<f64> {
    cluster
        .executors
        .iter()
        .map(|e| cpu_seconds(e.id()))
        .collect()
}

/// Waits until every executor has used `cpu` seconds more than at `since`: they use none while
/// idle, so their tasks are then running.
fn wait_for_tasks(cluster: &Cluster, since: &[f64], cpu: f64) {
    let waited = std::time::Instant::now();
    while !executors_cpu(cluster)
        .iter()
        .zip(since)
        .all(|(now, before)| *now >= before + cpu)
    {
        assert!(
            waited.elapsed() < Duration::from_secs(120),
            "the executors stay idle"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until the process `pid` uses less than a tenth of a second of CPU in 3 s (its heartbeats
/// and pings use a little), at most 90 s: what it was doing is done.
fn wait_until_idle(pid: u32) {
    let waited = std::time::Instant::now();
    loop {
        let before = cpu_seconds(pid);
        std::thread::sleep(Duration::from_secs(3));
        if cpu_seconds(pid) - before < 0.1 {
            return;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(90),
            "{pid} stays busy"
        );
    }
}

#[test]
fn an_executor_that_stalls_past_its_timeout_and_comes_back_adds_nothing_to_the_output() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    repeated_export(d, 12, 40_000);
    // One stage: every task reads and writes, so the stalled one is writing a part.
    let mapping = plain_mapping(&d.join("plain"), "");
    let src = format!("src={}", d.join("src").display());
    run_ok(&mut run_mapping(&mapping, &src, d.join("local"), &["-q"]));
    // Two executors of one slot and four tasks: each executor is running one when it stalls.
    let cluster = Cluster::start(2, |_| {});
    let idle = executors_cpu(&cluster);
    let run = run_mapping(
        &mapping,
        &src,
        d.join("cluster"),
        &["--json", "--threads", "4", "--cluster", &cluster.scheduler],
    )
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .spawn()
    .unwrap();
    // Stalled mid-task (as a paused VM or a long GC pause would): the scheduler takes it for lost
    // after 30 s and runs its tasks elsewhere.
    wait_for_tasks(&cluster, &idle, 0.3);
    let stalled = cluster.executors[0].id().to_string();
    let signal = |name: &str| {
        let sent = Command::new("kill")
            .args([name, &stalled])
            .status()
            .unwrap();
        assert!(sent.success());
    };
    signal("-STOP");
    let output = run.wait_with_output().unwrap();
    let published = all_files(&d.join("cluster"));
    // No upload's temporary file (`part-...csv#1`) among the committed files: a task's uploads
    // are staged outside the data folder.
    let temporary: Vec<&String> = published.iter().filter(|f| f.contains('#')).collect();
    assert!(temporary.is_empty(), "{temporary:?}");
    // It comes back after the commit, and finishes the task it was running (its upload, which
    // the fence keeps from completing, is aborted at the end).
    signal("-CONT");
    wait_until_idle(cluster.executors[0].id());
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        all_files(&d.join("cluster")),
        published,
        "files appeared after the run"
    );
    let names = ["interactions"];
    assert_eq!(
        datasets(&d.join("cluster"), &names),
        datasets(&d.join("local"), &names)
    );
    let report = &run_reports(&output)[0];
    assert!(
        report["cluster"]["task_retries"].as_u64().unwrap() >= 1,
        "{report}"
    );
}

#[test]
fn an_unreachable_scheduler_is_exit_5_and_nothing_is_published() {
    let dir = tempfile::tempdir().unwrap();
    let closed = free_port();
    let err = run_fails(
        pengine()
            .current_dir(repo_root())
            .args(["run", "sql/interactions.sql", "--cluster"])
            .arg(format!("127.0.0.1:{closed}"))
            .arg("-o")
            .arg(dir.path()),
        5,
    );
    assert!(
        err.contains(&format!("127.0.0.1:{closed} cannot be reached")),
        "{err}"
    );
    assert!(!dir.path().join("interactions").exists());
    assert!(staged_files(dir.path()).is_empty());
}

#[test]
fn what_a_cluster_does_not_do_yet_is_refused_before_anything_runs() {
    let cluster = Cluster::start(1, |_| {});
    let dir = tempfile::tempdir().unwrap();
    // A database source is read by the client's process only.
    let db = dir.path().join("crm.db");
    let status = Command::new("python3")
        .args([
            "-c",
            &format!(
                "import sqlite3\ndb = sqlite3.connect({:?})\n\
                 db.execute('CREATE TABLE profiles (id INTEGER, city TEXT)')\n\
                 db.execute(\"INSERT INTO profiles VALUES (1, 'Oslo')\")\ndb.commit()\n",
                db.display().to_string()
            ),
        ])
        .status()
        .unwrap();
    assert!(status.success());
    let mapping = dir.path().join("users.sql");
    write(
        &mapping,
        "CREATE EXTERNAL TABLE p STORED AS SQLITE LOCATION '${db}' OPTIONS ('table' 'profiles');\n\
         SELECT id AS user_id, city AS city FROM p;\n",
    );
    let err = run_fails(
        &mut run_mapping(
            &mapping,
            &format!("db={}", db.display()),
            dir.path().join("out"),
            &["--cluster", &cluster.scheduler],
        ),
        2,
    );
    assert!(err.contains("cannot run on a cluster yet"), "{err}");
    assert!(!dir.path().join("out/users").exists());
    let err = run_fails(
        pengine().args(["run", "sql/interactions.sql", "--cluster", "nowhere"]),
        2,
    );
    assert!(err.contains("HOST:PORT"), "{err}");
}

/// The sorted lines of a bad-records file.
fn bad_record_lines(path: &Path) -> Vec<String> {
    let mut lines: Vec<String> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    lines.sort();
    lines
}

#[test]
fn bad_records_skipped_on_a_cluster_are_the_local_run_s() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Bad records in the sample's first file (found by the client's inference), past the sample,
    // in the last file, and a file of nothing else; JSON and CSV sources joined.
    event_files(d, 6, 3_000, |f, j, i| match (f, j) {
        (0, 5) | (3, 2_500) | (5, 2_999) => {
            event(i, "") + "{\"u\":\"cut short\n\u{1}\u{2} binary garbage\n"
        }
        _ => event(i, ""),
    });
    write(d.join("src/e9.json"), "not json at all\n{\"u\":\n");
    let mut catalog = String::from("item,category\n");
    for i in 0..700 {
        catalog.push_str(&format!("i{i},c{}\n", i % 7));
        if i == 350 {
            catalog.push_str("i350,c0,one field too many\n");
        }
    }
    write(d.join("catalog/items.csv"), catalog);
    let mapping = d.join("interactions.sql");
    write(
        &mapping,
        "CREATE EXTERNAL TABLE e STORED AS JSON LOCATION '${src}/';\n\
         CREATE EXTERNAL TABLE c STORED AS CSV LOCATION '${catalog}/' OPTIONS ('format.has_header' 'true');\n\
         SELECT e.u AS user_id, e.i AS item_id, e.ts AS timestamp, c.category AS event_type \
         FROM e JOIN c ON e.i = c.item;",
    );
    let vars = [
        format!("src={}", d.join("src").display()),
        format!("catalog={}", d.join("catalog").display()),
    ];
    let run = |out: &str, extra: &[&str]| {
        let mut command = pengine();
        command.args(["run"]).arg(&mapping);
        for var in &vars {
            command.args(["--var", var]);
        }
        command
            .args(["--on-bad-records", "skip", "--json", "-o"])
            .arg(d.join(out))
            .args(extra);
        run_ok(&mut command)
    };
    let local = run("local", &[]);
    let cluster = Cluster::start(2, |_| {});
    let remote = run("cluster", &["--cluster", &cluster.scheduler]);

    let names = ["interactions"];
    assert_eq!(
        datasets(&d.join("cluster"), &names),
        datasets(&d.join("local"), &names)
    );
    let (local, remote) = (&run_reports(&local)[0], &run_reports(&remote)[0]);
    assert_eq!(local["bad_records"]["total"], 9, "{local}");
    assert_eq!(remote["bad_records"], local["bad_records"], "{remote}");
    assert_eq!(remote["rows"]["bad_records"], local["rows"]["bad_records"]);
    assert_eq!(remote["rows"]["measured"], true, "{remote}");
    let file = "interactions.bad-records.jsonl";
    assert_eq!(
        bad_record_lines(&d.join("cluster").join(file)),
        bad_record_lines(&d.join("local").join(file))
    );
    assert!(staged_files(&d.join("cluster")).is_empty());
}

#[test]
fn an_interrupted_cluster_run_cancels_its_job_and_publishes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mapping = repeated_export(d, 12, 40_000);
    let src = format!("src={}", d.join("src").display());
    let cluster = Cluster::start(2, |_| {});
    // Ctrl-C, and the signal an orchestrator sends.
    for (signal, code) in [("INT", 130), ("TERM", 143)] {
        let run = run_mapping(
            &mapping,
            &src,
            d.join("cluster"),
            &["--cluster", &cluster.scheduler],
        )
        .env("PENGINE_LOG", "info")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
        // Mid-job, however fast the machine: once the executors' tasks are running.
        let idle = executors_cpu(&cluster);
        wait_for_tasks(&cluster, &idle, 0.3);
        let status = Command::new("kill")
            .args([&format!("-{signal}"), &run.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let output = run.wait_with_output().unwrap();
        assert_eq!(output.status.code(), Some(code), "{}", stderr(&output));
        let err = stderr(&output);
        assert!(err.contains("cancelled"), "{err}");
        // The executors' tasks are stopped too: nothing appears after the client is gone.
        for _ in 0..2 {
            assert!(!d.join("cluster/interactions").exists(), "SIG{signal}");
            assert!(
                staged_files(&d.join("cluster")).is_empty(),
                "SIG{signal}: {:?}",
                staged_files(&d.join("cluster"))
            );
            std::thread::sleep(Duration::from_secs(3));
        }
    }
}

#[test]
fn one_large_file_is_read_in_byte_ranges_on_the_executors_with_columns_declared_or_not() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // About 20 MB: more than DataFusion's smallest file to cut (10 MiB).
    let mut text = String::new();
    for i in 0..400_000 {
        text.push_str(&event(i, ""));
    }
    write(d.join("src/big.json"), text);
    let src = format!("src={}", d.join("src").display());
    let cluster = Cluster::start(2, |_| {});
    for (name, columns) in [
        ("inferred", ""),
        ("declared", "(u VARCHAR, i VARCHAR, ts BIGINT) "),
    ] {
        let mapping = plain_mapping(&d.join(name), columns);
        let plan = run_ok(pengine().arg("explain").arg(&mapping).args(["--var", &src]));
        let plan = String::from_utf8_lossy(&plan.stdout);
        assert!(
            plan.matches("big.json:").count() >= 2,
            "{name}: not cut:\n{plan}"
        );
        let (local, remote) = (d.join(name).join("local"), d.join(name).join("cluster"));
        run_ok(&mut run_mapping(&mapping, &src, &local, &["-q"]));
        let output = run_ok(&mut run_mapping(
            &mapping,
            &src,
            &remote,
            &["--json", "--cluster", &cluster.scheduler],
        ));
        let names = ["interactions"];
        let rows = datasets(&remote, &names);
        assert_eq!(rows[0].1.len(), 400_000, "{name}");
        assert_eq!(rows, datasets(&local, &names), "{name}");
        let report = &run_reports(&output)[0];
        assert_eq!(
            report["rows"]["read_from_sources"], 400_000,
            "{name}: {report}"
        );
        assert_eq!(report["rows"]["measured"], true, "{name}");
    }
}

#[test]
fn executors_that_cannot_reach_the_output_fail_the_run_with_a_clear_error() {
    let server = S3Server::start(&["personalize"]);
    // The executors have no credentials for the output (the client has).
    let cluster = Cluster::start(1, |cmd| {
        cmd.env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", &server.endpoint)
            .env("AWS_ALLOW_HTTP", "true")
            .env("AWS_ACCESS_KEY_ID", "someone-else")
            .env("AWS_SECRET_ACCESS_KEY", "wrong-secret");
    });
    let mut cmd = pengine();
    server.configure(&mut cmd);
    let err = run_fails(
        cmd.current_dir(repo_root()).args([
            "run",
            "sql/users.sql",
            "--output",
            "s3://personalize/out",
            "--cluster",
            &cluster.scheduler,
        ]),
        5,
    );
    assert!(err.contains("failed"), "{err}");
    // The task's own words, not Ballista's wrapping of them.
    assert!(
        err.contains("writing s3://personalize/out/") && !err.contains("DataFusionError("),
        "{err}"
    );
    assert!(
        !err.contains(S3_SECRET) && !err.contains("wrong-secret"),
        "{err}"
    );
    let left = file_names(&server.path("personalize/out"));
    assert!(
        left.iter().all(|f| !f.starts_with("users")),
        "published: {left:?}"
    );
    assert!(
        staged_files(&server.path("personalize/out")).is_empty(),
        "{left:?}"
    );
}

#[test]
fn a_record_the_sample_missed_runs_the_job_again_with_every_record_s_columns() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A field only one record carries, past the sample, in a file in the middle.
    event_files(d, 5, 10_000, |f, j, i| match (f, j) {
        (2, 9_990) => event(i, ",\"price\":12.5"),
        _ => event(i, ""),
    });
    let mapping = plain_mapping(d, "");
    let (log, _) = starts_again_and_writes_the_local_rows(d, &mapping);
    assert!(log.contains("field 'price'"), "{log}");
}

#[test]
fn a_csv_value_the_sample_missed_runs_the_job_again_with_every_record_s_columns() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // Event values are integers in the sample; one past it, in a file in the middle, is text.
    for f in 0..5 {
        let mut text = String::from("u,i,ts,v\n");
        for j in 0..10_000 {
            let i = f * 10_000 + j;
            let value = match (f, j) {
                (2, 9_990) => "n/a".to_string(),
                _ => (i % 9).to_string(),
            };
            let ts = 1_709_251_200 + i;
            text.push_str(&format!("u{},i{},{ts},{value}\n", i % 5000, i % 700));
        }
        write(d.join(format!("src/e{f:02}.csv")), text);
    }
    let mapping = d.join("interactions.sql");
    write(
        &mapping,
        "CREATE EXTERNAL TABLE e STORED AS CSV LOCATION '${src}/' \
         OPTIONS ('format.has_header' 'true');\n\
         SELECT u AS user_id, i AS item_id, ts AS timestamp, v AS channel FROM e;",
    );
    let (log, rows) = starts_again_and_writes_the_local_rows(d, &mapping);
    assert!(log.contains("field 'v'"), "{log}");
    assert!(rows.iter().any(|row| row.contains(&"n/a".to_string())));
}

/// Runs the interactions `mapping` over `d/src` locally, then on a cluster of two executors,
/// whose first job meets a record the sample missed: checks the run started again on every
/// record's columns and wrote the local rows. Returns the cluster run's log and the rows.
fn starts_again_and_writes_the_local_rows(d: &Path, mapping: &Path) -> (String, Vec<Vec<String>>) {
    let src = format!("src={}", d.join("src").display());
    run_ok(&mut run_mapping(mapping, &src, d.join("local"), &["-q"]));
    let cluster = Cluster::start(2, |_| {});
    let output = run_ok(
        run_mapping(
            mapping,
            &src,
            d.join("cluster"),
            &["--cluster", &cluster.scheduler],
        )
        .env("PENGINE_LOG", "info"),
    );
    let log = stderr(&output);
    assert!(
        log.contains("inferring the columns from every record and running again"),
        "{log}"
    );
    let names = ["interactions"];
    let mut local = datasets(&d.join("local"), &names);
    assert_eq!(datasets(&d.join("cluster"), &names), local);
    (log, local.remove(0).1)
}

/// An executor stopped by SIGTERM removes the work folder it made under the temporary folder;
/// one given with `--work-dir` is the user's and stays.
#[test]
fn an_executor_stopped_by_sigterm_removes_the_work_folder_it_made() {
    let cluster = Cluster::start(0, |_| {});
    let tmp = tempfile::tempdir().unwrap();
    let (own_tmp, given) = (tmp.path().join("tmp"), tmp.path().join("given"));
    std::fs::create_dir_all(&own_tmp).unwrap();
    write(given.join("mine.txt"), "the user's");
    let start = |extra: &[&std::ffi::OsStr]| {
        pengine()
            .env("TMPDIR", &own_tmp)
            .args(["cluster", "executor", "--slots", "1", "--scheduler"])
            .arg(&cluster.scheduler)
            .args(extra)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let made = start(&[]);
    let kept = start(&["--work-dir".as_ref(), given.as_os_str()]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while std::fs::read_dir(&own_tmp).unwrap().count() == 0 {
        assert!(std::time::Instant::now() < deadline, "no work folder made");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    for child in [&made, &kept] {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
    for child in [made, kept] {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "{}", stderr(&output));
    }
    let left: Vec<_> = std::fs::read_dir(&own_tmp).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    assert!(given.join("mine.txt").is_file());
}

/// A stop signal that comes while the executor starts, before Ballista listens for signals:
/// pengine stops it itself (after a grace period for Ballista) and removes its work folder.
#[test]
fn an_executor_asked_to_stop_while_it_starts_stops_and_removes_its_work_folder() {
    let cluster = Cluster::start(0, |_| {});
    let tmp = tempfile::tempdir().unwrap();
    let own_tmp = tmp.path().join("tmp");
    std::fs::create_dir_all(&own_tmp).unwrap();
    let mut executor = pengine();
    executor
        .env("TMPDIR", &own_tmp)
        .args(["cluster", "executor", "--slots", "1", "--scheduler"])
        .arg(&cluster.scheduler)
        .stdout(std::process::Stdio::null());
    let mut child = spawn_at_failpoint(&mut executor, "executor-starting", tmp.path());
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    // Bounded: an executor that missed the signal would run for ever.
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            panic!("the executor did not stop within 60 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    let left: Vec<_> = std::fs::read_dir(&own_tmp).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}
