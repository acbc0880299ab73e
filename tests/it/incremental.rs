//! `pengine run --incremental`: only the files of the incremental tables that the dataset's last
//! committed run did not convert, as an increment of its own; catalogs read whole; a changed
//! file refused; the record advanced only by a committed run.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::common::*;

/// An hourly events export (`events/2024/01/01/HH/events.json`) and a catalog CSV that maps each
/// item to an event type: the catalog is read whole every run.
struct Export {
    dir: tempfile::TempDir,
}

impl Export {
    fn new() -> Export {
        let export = Export {
            dir: tempfile::tempdir().unwrap(),
        };
        write(
            export.mapping(),
            "-- pengine: incremental = events\n\
             CREATE EXTERNAL TABLE events STORED AS JSON LOCATION '${events}';\n\
             CREATE EXTERNAL TABLE catalog STORED AS CSV LOCATION '${catalog}' OPTIONS ('format.has_header' 'true');\n\
             SELECT e.user AS user_id, e.item AS item_id, e.ts AS timestamp, c.kind AS event_type\n\
             FROM events e JOIN catalog c ON e.item = c.item;\n",
        );
        export.catalog(&["i0", "i1"]);
        export
    }

    fn mapping(&self) -> PathBuf {
        self.dir.path().join("interactions.sql")
    }

    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    fn catalog(&self, items: &[&str]) {
        let mut text = String::from("item,kind\n");
        for item in items {
            text.push_str(&format!("{item},view\n"));
        }
        write(self.dir.path().join("catalog.csv"), text);
    }

    /// Writes hour `hour`'s file with `users` events on `item`.
    fn hour(&self, root: &str, hour: u32, users: usize, item: &str) -> PathBuf {
        let path = self
            .dir
            .path()
            .join(format!("{root}/2024/01/01/{hour:02}/events.json"));
        let lines: String = (0..users)
            .map(|u| {
                format!(
                    "{{\"user\":\"h{hour}u{u}\",\"item\":\"{item}\",\"ts\":{}}}\n",
                    1_704_067_200 + hour * 3600 + u as u32
                )
            })
            .collect();
        write(&path, lines);
        path
    }

    fn run(&self, root: &str, out: &Path, flags: &[&str]) -> std::process::Command {
        let mut cmd = pengine();
        cmd.arg("run")
            .arg(self.mapping())
            .arg("--var")
            .arg(format!("events={}/", self.dir.path().join(root).display()))
            .arg("--var")
            .arg(format!(
                "catalog={}",
                self.dir.path().join("catalog.csv").display()
            ))
            .args(flags)
            .args(["--json", "--no-insights", "-o"])
            .arg(out);
        cmd
    }

    fn report(&self, flags: &[&str]) -> Value {
        stdout_json(&run_ok(&mut self.run("events", &self.out(), flags)))
    }
}

fn sorted(csv: Csv) -> Vec<Vec<String>> {
    let mut rows = csv.rows;
    rows.sort();
    rows
}

#[test]
fn an_incremental_run_converts_exactly_the_new_files_and_reads_catalogs_whole() {
    let export = Export::new();
    export.hour("events", 0, 3, "i0");
    export.hour("events", 1, 2, "i1");
    // The first incremental run has nothing to go by: it converts everything, and records it.
    let first = export.report(&["--incremental"]);
    assert_eq!(first["increment"]["kind"], "full", "{first}");
    assert!(
        first["increment"]["full_because"]
            .as_str()
            .unwrap()
            .contains("no committed run"),
        "{first}"
    );
    assert_eq!(first["rows"]["written"], 5);

    // Two new hours, whose events use an item only the updated catalog has.
    export.catalog(&["i0", "i1", "i2"]);
    export.hour("events", 2, 4, "i2");
    export.hour("events", 3, 1, "i0");
    let second = export.report(&["--incremental"]);
    let increment = &second["increment"];
    assert_eq!(increment["kind"], "increment", "{second}");
    assert_eq!(increment["new_files"], 2);
    assert_eq!(increment["skipped_files"], 2);
    assert_eq!(increment["changed_files"], 0);
    assert_eq!(second["rows"]["written"], 5);
    assert_eq!(increment["data_location"], second["data_location"]);

    // The increment holds exactly what a run over the new hours alone gives.
    export.hour("alone", 2, 4, "i2");
    export.hour("alone", 3, 1, "i0");
    let alone = export.dir.path().join("alone-out");
    run_ok(&mut export.run("alone", &alone, &[]));
    let dirs = pointer_data_dirs(&export.out(), "interactions");
    assert_eq!(dirs.len(), 2, "a full run and one increment");
    assert_eq!(
        sorted(read_dataset(&dirs[1])),
        sorted(read_dataset(&alone.join("interactions")))
    );
    // Following the pointer (or the data folder) gives every event once.
    let all = read_via_pointer(&export.out(), "interactions");
    assert_eq!(all.rows.len(), 10);
    assert_eq!(
        sorted(read_dataset(&export.out().join("interactions"))),
        sorted(all)
    );
    assert_no_staging(&export.out());

    // Nothing new: nothing published, not a failure (exit 0), and the output says so.
    let output = run_ok(&mut export.run("events", &export.out(), &["--incremental"]));
    let unchanged = stdout_json(&output);
    assert_eq!(unchanged["status"], "unchanged", "{unchanged}");
    assert!(
        unchanged["message"]
            .as_str()
            .unwrap()
            .contains("no new source files"),
        "{unchanged}"
    );
    assert_eq!(pointer_data_dirs(&export.out(), "interactions"), dirs);

    // --full converts everything again and starts a new chain.
    let full = export.report(&["--full"]);
    assert_eq!(full["rows"]["written"], 10);
    assert_eq!(pointer_data_dirs(&export.out(), "interactions").len(), 1);
}

#[test]
fn a_changed_file_is_refused_unless_reconverted() {
    let export = Export::new();
    let first_hour = export.hour("events", 0, 3, "i0");
    export.report(&["--incremental"]);
    let before = std::fs::read(export.out().join("interactions.current.json")).unwrap();

    // The same file, rewritten with more events (another size).
    std::thread::sleep(std::time::Duration::from_millis(20));
    export.hour("events", 0, 4, "i0");
    export.hour("events", 1, 1, "i1");
    let err = run_fails(
        &mut export.run("events", &export.out(), &["--incremental"]),
        4,
    );
    assert!(err.contains(&first_hour.display().to_string()), "{err}");
    assert!(
        err.contains("--full") && err.contains("--on-changed reconvert"),
        "{err}"
    );
    let after = std::fs::read(export.out().join("interactions.current.json")).unwrap();
    assert_eq!(before, after, "a refused run changed the pointer");

    let report = export.report(&["--incremental", "--on-changed", "reconvert"]);
    assert_eq!(report["increment"]["changed_files"], 1, "{report}");
    assert_eq!(report["increment"]["new_files"], 1);
    assert_eq!(report["rows"]["written"], 5);
}

#[test]
fn a_killed_incremental_run_leaves_its_files_for_the_next() {
    let export = Export::new();
    export.hour("events", 0, 3, "i0");
    export.report(&["--incremental"]);
    export.hour("events", 1, 2, "i1");
    let mut child = spawn_at_failpoint(
        &mut export.run("events", &export.out(), &["--incremental"]),
        "after-parts-written",
        export.dir.path(),
    );
    child.kill().unwrap();
    child.wait().unwrap();
    let report = export.report(&["--incremental"]);
    assert_eq!(report["increment"]["new_files"], 1, "{report}");
    assert_eq!(report["rows"]["written"], 2);
    assert_eq!(
        read_via_pointer(&export.out(), "interactions").rows.len(),
        5
    );
    assert_no_staging(&export.out());
}

#[test]
fn an_incremental_directive_naming_no_table_is_a_mapping_error() {
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("interactions.sql");
    write(
        &mapping,
        "-- pengine: incremental = evnets\n\
         CREATE EXTERNAL TABLE events STORED AS JSON LOCATION 'x/';\n\
         SELECT 1 AS user_id;\n",
    );
    let err = run_fails(pengine().arg("run").arg(&mapping).arg("--incremental"), 3);
    // --on-changed means nothing without --incremental: said, not ignored.
    let usage = run_fails(
        pengine()
            .arg("run")
            .arg(&mapping)
            .args(["--on-changed", "reconvert"]),
        2,
    );
    assert!(usage.contains("--incremental"), "{usage}");
    assert!(
        err.contains("interactions.sql:1") && err.contains("evnets"),
        "{err}"
    );
    assert!(
        err.contains("events"),
        "names the tables the file creates: {err}"
    );
}

#[test]
fn an_increment_whose_columns_differ_from_the_dataset_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("interactions.sql");
    write(
        &mapping,
        "-- pengine: incremental = e\n\
         CREATE EXTERNAL TABLE e STORED AS JSON LOCATION '${events}';\n\
         SELECT user AS user_id, item AS item_id, ts AS timestamp, device AS device FROM e;\n",
    );
    let events = dir.path().join("events");
    let out = dir.path().join("out");
    let run = || {
        let mut cmd = pengine();
        cmd.arg("run")
            .arg(&mapping)
            .arg("--var")
            .arg(format!("events={}/", events.display()))
            .args(["--incremental", "--no-insights", "-o"])
            .arg(&out);
        cmd
    };
    write(
        events.join("00/a.json"),
        "{\"user\":\"u\",\"item\":\"i\",\"ts\":1704067200,\"device\":\"phone\"}\n",
    );
    run_ok(&mut run());
    // The new hour alone infers DEVICE as a number: another schema than the dataset's.
    write(
        events.join("01/b.json"),
        "{\"user\":\"v\",\"item\":\"i\",\"ts\":1704070800,\"device\":7}\n",
    );
    let err = run_fails(&mut run(), 4);
    assert!(
        err.contains("other columns or types") && err.contains("--full"),
        "{err}"
    );
    assert_eq!(pointer_data_dirs(&out, "interactions").len(), 1);
    assert_no_staging(&out);
}

#[test]
fn a_folder_run_with_nothing_new_for_one_dataset_publishes_the_others_and_succeeds() {
    let export = Export::new();
    write(
        export.dir.path().join("items.sql"),
        "CREATE EXTERNAL TABLE catalog STORED AS CSV LOCATION '${catalog}' OPTIONS ('format.has_header' 'true');\n\
         SELECT item AS item_id, kind AS kind FROM catalog;\n",
    );
    export.hour("events", 0, 3, "i0");
    let folder_run = || {
        let mut cmd = pengine();
        cmd.arg("run")
            .arg(export.dir.path())
            .arg("--var")
            .arg(format!(
                "events={}/",
                export.dir.path().join("events").display()
            ))
            .arg("--var")
            .arg(format!(
                "catalog={}",
                export.dir.path().join("catalog.csv").display()
            ))
            .args(["--incremental", "--no-insights", "--json", "-o"])
            .arg(export.out());
        cmd
    };
    run_ok(&mut folder_run());
    let summary = stdout_json(&run_ok(&mut folder_run()));
    assert_statuses(
        &summary,
        &[("interactions", "unchanged"), ("items", "published")],
    );
    assert_eq!(summary["datasets"][0]["exit_code"], 0);
}

#[test]
fn an_incremental_table_lists_its_files_as_its_scan_does() {
    // One Parquet file under a name without `.parquet` (an export's own naming): the scan reads
    // it as the LOCATION names it, so the incremental listing must too, or the run reads nothing.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("profiles-2024-03-01");
    std::fs::copy(repo_root().join("testdata/users.parquet"), &file).unwrap();
    let mapping = dir.path().join("users.sql");
    write(
        &mapping,
        "-- pengine: incremental = customers\n\
         CREATE EXTERNAL TABLE customers STORED AS PARQUET LOCATION '${file}';\n\
         SELECT customer_id AS user_id, age AS age FROM customers;\n",
    );
    let out = dir.path().join("out");
    let report = stdout_json(&run_ok(&mut run_mapping(
        &mapping,
        &format!("file={}", file.display()),
        &out,
        &["--incremental", "--no-insights", "--json"],
    )));
    assert_eq!(report["increment"]["new_files"], 1, "{report}");
    assert_eq!(report["rows"]["written"], 75);
}

#[test]
fn an_increment_whose_new_files_lack_a_field_the_query_uses_says_why_and_what_to_do() {
    // The mapping as users write it (no declared columns): the new hour has no `device` at all.
    let dir = tempfile::tempdir().unwrap();
    let mapping = dir.path().join("interactions.sql");
    write(
        &mapping,
        "-- pengine: incremental = e\n\
         CREATE EXTERNAL TABLE e STORED AS JSON LOCATION '${events}';\n\
         SELECT user AS user_id, item AS item_id, ts AS timestamp, device AS device FROM e;\n",
    );
    let events = dir.path().join("events");
    let out = dir.path().join("out");
    let run = || {
        run_mapping(
            &mapping,
            &format!("events={}/", events.display()),
            &out,
            &["--incremental", "--no-insights"],
        )
    };
    write(
        events.join("00/a.json"),
        "{\"user\":\"u\",\"item\":\"i\",\"ts\":1704067200,\"device\":\"phone\"}\n",
    );
    run_ok(&mut run());
    write(
        events.join("01/b.json"),
        "{\"user\":\"v\",\"item\":\"i\",\"ts\":1704070800}\n",
    );
    let err = run_fails(&mut run(), 3);
    assert!(err.contains("device"), "{err}");
    assert!(
        err.contains("1 new file(s) alone") && err.contains("--full"),
        "{err}"
    );
    assert_no_staging(&out);
}
