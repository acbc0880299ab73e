//! A Ballista cluster of pengine's own processes on loopback: `pengine cluster scheduler` on a
//! free port and executors joining it, each with one task slot so that a job's tasks spread over
//! them. Killed when dropped; their work folders are the cluster's own, removed with it.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::pengine;

pub struct Cluster {
    /// `127.0.0.1:<port>`, as `--cluster` takes it.
    pub scheduler: String,
    scheduler_process: Child,
    pub executors: Vec<Child>,
    /// The executors' work folders (a killed executor cannot remove its own).
    work: tempfile::TempDir,
}

impl Cluster {
    /// A scheduler and `executors` executors; `configure` sets up each executor's command (its
    /// environment: store credentials come from the executor's own).
    pub fn start(executors: usize, configure: impl Fn(&mut Command)) -> Cluster {
        let mut scheduler_process = pengine()
            .args(["cluster", "scheduler", "--bind", "127.0.0.1:0"])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("the scheduler starts");
        let mut line = String::new();
        BufReader::new(scheduler_process.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let scheduler = line
            .trim()
            .rsplit(' ')
            .next()
            .filter(|a| a.contains(':'))
            .unwrap_or_else(|| panic!("the scheduler printed {line:?}"))
            .to_string();
        let mut cluster = Cluster {
            scheduler,
            scheduler_process,
            executors: Vec::new(),
            work: tempfile::tempdir().unwrap(),
        };
        for _ in 0..executors {
            cluster.add_executor(&configure);
        }
        // Executors register within a heartbeat of starting; a job submitted earlier would wait
        // for them, but might then run on the first alone.
        std::thread::sleep(Duration::from_secs(2));
        cluster
    }

    pub fn add_executor(&mut self, configure: &impl Fn(&mut Command)) {
        let mut cmd = pengine();
        configure(&mut cmd);
        let executor = cmd
            .args(["cluster", "executor", "--slots", "1", "--scheduler"])
            .arg(&self.scheduler)
            .arg("--work-dir")
            .arg(self.work.path().join(self.executors.len().to_string()))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("an executor starts");
        self.executors.push(executor);
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for child in self
            .executors
            .iter_mut()
            .chain([&mut self.scheduler_process])
        {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
