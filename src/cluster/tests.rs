//! The cluster in this process: Ballista's own scheduler and executor servers, started through
//! [`super::serve`] on loopback ports, running the bundled example's mapping files.

use std::path::PathBuf;

use super::serve::{self, ExecutorOptions};
use crate::mapping::Vars;
use crate::run::RunOptions;

/// A scheduler and two one-slot executors in this process; returns the scheduler's address.
async fn in_process_cluster() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(serve::scheduler(listener));
    for _ in 0..2 {
        let work = tempfile::tempdir().unwrap().keep();
        tokio::spawn(serve::executor(ExecutorOptions {
            scheduler: address,
            bind: "127.0.0.1:0".parse().unwrap(),
            external_host: None,
            slots: 1,
            work_dir: Some(work),
            memory_limit: Some(256 << 20),
        }));
    }
    // Executors register within a heartbeat of starting.
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    address.to_string()
}

/// Runs the bundled example into `out`, on `cluster` or here; the sorted rows by dataset.
async fn bundled_example(out: &std::path::Path, cluster: Option<String>) -> Vec<Vec<String>> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let options = RunOptions {
        output: Some(out.display().to_string()),
        progress: false,
        cluster,
        ..RunOptions::default()
    };
    let vars: Vars = [(
        "source".to_string(),
        root.join("testdata").display().to_string(),
    )]
    .into_iter()
    .collect();
    let report = crate::commands::run::run(&[root.join("sql")], &vars, &options)
        .await
        .unwrap();
    let mut all = Vec::new();
    for dataset in report.datasets {
        let report = dataset.result.unwrap();
        if let Some(cluster) = &report.cluster {
            // The scheduler's own figures for the job agree with the run's.
            let http = reqwest::Client::new();
            let progress = super::progress::fetch(&http, &cluster.scheduler, &cluster.job)
                .await
                .unwrap();
            assert_eq!(progress.stages_done, progress.stages, "{progress:?}");
            assert_eq!(
                progress.rows_to_write,
                report.rows.written + report.rows.rejected
            );
            assert_eq!(Some(progress.tasks_done), cluster.tasks);
            assert!(progress.tasks_done >= cluster.write_partitions);
            assert_eq!(cluster.task_retries, Some(0));
        }
        let mut rows = Vec::new();
        for part in &report.files {
            let path = out.join(dataset.dataset.key()).join(&part.name);
            let text = std::fs::read_to_string(path).unwrap();
            rows.extend(text.lines().skip(1).map(str::to_string));
        }
        rows.sort();
        assert_eq!(rows.len() as u64, report.rows.written);
        all.push(rows);
    }
    all
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_library_s_own_servers_run_the_bundled_example_as_a_local_run_does() {
    let scheduler = in_process_cluster().await;
    let dir = tempfile::tempdir().unwrap();
    let on_cluster = bundled_example(&dir.path().join("cluster"), Some(scheduler)).await;
    let here = bundled_example(&dir.path().join("local"), None).await;
    assert_eq!(on_cluster.len(), 3);
    assert_eq!(on_cluster, here);
}
