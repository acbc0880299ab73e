//! Shared test helpers: run the real binary, read its CSV back with an independent reader, and
//! start a real S3-compatible server (s3s-fs) on loopback, with faults injected on demand
//! ([`Faults`]).

pub mod cluster;
mod failing_proxy;
mod faults;
pub mod mariadb;
pub mod personalize;
pub mod postgres;
mod servers;
mod state;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;

pub use failing_proxy::FailingProxy;
pub use faults::{Fault, Faults, Rule};
pub use servers::{ServerProcess, free_port, installed};
pub use state::*;

pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The pengine binary with a clean environment (no cloud store or PENGINE variables from the
/// caller).
pub fn pengine() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_pengine"));
    for (key, _) in std::env::vars() {
        let cloud = ["AWS_", "GOOGLE_", "AZURE_", "AZURITE_"];
        if cloud.iter().any(|p| key.starts_with(p)) || key.starts_with("PENGINE_") {
            cmd.env_remove(key);
        }
    }
    cmd.env("PENGINE_LOG", "warn");
    cmd
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Runs and asserts success, returning the output.
#[track_caller]
pub fn run_ok(cmd: &mut Command) -> Output {
    let output = cmd.output().expect("pengine runs");
    assert!(
        output.status.success(),
        "pengine failed ({:?}):\n{}",
        output.status.code(),
        stderr(&output)
    );
    output
}

/// Runs and asserts success, returning the output and the process's peak resident memory in
/// bytes (its high-water mark, read from /proc while it runs, so a lower bound by at most what
/// it took in its last few milliseconds).
#[track_caller]
pub fn run_ok_peak_rss(cmd: &mut Command) -> (Output, u64) {
    use std::io::Read;
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("pengine runs");
    let status_file = format!("/proc/{}/status", child.id());
    // Drained on threads, or a full pipe would stall the child.
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let out = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        out.read_to_end(&mut bytes).map(|_| bytes)
    });
    let err = std::thread::spawn(move || {
        let mut bytes = Vec::new();
        err.read_to_end(&mut bytes).map(|_| bytes)
    });
    let mut peak_kib = 0u64;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        let high_water = std::fs::read_to_string(&status_file).ok().and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        });
        peak_kib = peak_kib.max(high_water.unwrap_or(0));
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let output = Output {
        status,
        stdout: out.join().unwrap().unwrap(),
        stderr: err.join().unwrap().unwrap(),
    };
    assert!(
        output.status.success(),
        "pengine failed ({:?}):\n{}",
        output.status.code(),
        stderr(&output)
    );
    (output, peak_kib * 1024)
}

/// Runs and asserts the exit code, returning stderr.
#[track_caller]
pub fn run_fails(cmd: &mut Command, code: i32) -> String {
    let output = cmd.output().expect("pengine runs");
    let err = stderr(&output);
    assert_eq!(
        output.status.code(),
        Some(code),
        "unexpected exit; stderr:\n{err}"
    );
    err
}

/// `rows` newline-delimited events `{"u":"u<n>","i":"i<n>","ts":<epoch seconds>}`, users and
/// items cycling through `users` and `items` ids, one second apart from 2024-03-01.
pub fn cycling_events(rows: usize, users: usize, items: usize) -> String {
    (0..rows)
        .map(|i| {
            format!(
                "{{\"u\":\"u{}\",\"i\":\"i{}\",\"ts\":{}}}\n",
                i % users,
                i % items,
                1_709_251_200 + i
            )
        })
        .collect()
}

pub fn write(path: impl AsRef<Path>, contents: impl AsRef<[u8]>) {
    let path = path.as_ref();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, contents).unwrap();
}

/// `text` as one gzip member compressed at `level` (`Compression::none()`: stored blocks, a large
/// compressed file quick to make).
pub fn gzipped(text: &[u8], level: flate2::Compression) -> Vec<u8> {
    use std::io::Write;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), level);
    gz.write_all(text).unwrap();
    gz.finish().unwrap()
}

/// A parsed CSV dataset part: header and rows, read by the `csv` crate in Personalize's dialect
/// (backslash escapes, no doubled quotes). Also asserts one record per line.
#[derive(Debug)]
pub struct Csv {
    pub header: Vec<String>,
    pub rows: Vec<Vec<String>>,
}

impl Csv {
    pub fn column(&self, name: &str) -> Vec<String> {
        let index = self
            .header
            .iter()
            .position(|h| h == name)
            .unwrap_or_else(|| panic!("no column {name} in {:?}", self.header));
        self.rows.iter().map(|r| r[index].clone()).collect()
    }

    /// `column`'s value in the row whose USER_ID is `user`.
    #[track_caller]
    pub fn user_value(&self, user: &str, column: &str) -> String {
        let row = self
            .column("USER_ID")
            .iter()
            .position(|id| id == user)
            .unwrap_or_else(|| panic!("no user {user}"));
        self.column(column)[row].clone()
    }
}

#[track_caller]
pub fn read_csv_bytes(bytes: &[u8]) -> Csv {
    assert!(
        !bytes.starts_with(&[0xEF, 0xBB, 0xBF]),
        "CSV starts with a byte-order mark"
    );
    let text = std::str::from_utf8(bytes).expect("CSV is UTF-8");
    let header_line = text.lines().next().expect("a header line");
    assert!(
        !header_line.contains('"'),
        "header is quoted: {header_line}"
    );
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .escape(Some(b'\\'))
        .double_quote(false)
        .from_reader(bytes);
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_string)
        .collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.expect("valid CSV record");
        assert_eq!(
            record.len(),
            header.len(),
            "row has a different field count: {record:?}"
        );
        rows.push(record.iter().map(str::to_string).collect::<Vec<_>>());
    }
    assert_eq!(
        text.lines().count(),
        rows.len() + 1,
        "a record spans several lines (line break inside a field)"
    );
    Csv { header, rows }
}

/// Reads and concatenates every part of a dataset folder (checking every part has the header).
#[track_caller]
pub fn read_dataset(dir: &Path) -> Csv {
    let mut parts: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .collect();
    parts.sort();
    assert!(!parts.is_empty(), "no parts in {}", dir.display());
    let mut all: Option<Csv> = None;
    for part in parts {
        let name = part.file_name().unwrap().to_string_lossy().into_owned();
        assert!(
            name.contains("part-") && name.ends_with(".csv"),
            "unexpected file in the data folder: {name}"
        );
        let csv = read_csv_bytes(&std::fs::read(&part).unwrap());
        match &mut all {
            None => all = Some(csv),
            Some(all) => {
                assert_eq!(all.header, csv.header, "parts have different headers");
                all.rows.extend(csv.rows);
            }
        }
    }
    all.unwrap()
}

/// A real S3-compatible server (s3s-fs) on a loopback port, serving a temporary folder. Each
/// bucket is a sub-folder of `root`. Requests pass through [`Faults`] (none unless a test sets
/// some). Stops when dropped.
pub struct S3Server {
    pub endpoint: String,
    pub root: tempfile::TempDir,
    pub faults: Arc<Faults>,
    thread: Option<std::thread::JoinHandle<()>>,
}

pub const S3_KEY: &str = "pengine-test-key";
pub const S3_SECRET: &str = "pengine-test-secret-DO-NOT-LEAK-1234";

impl S3Server {
    pub fn start(buckets: &[&str]) -> S3Server {
        let root = tempfile::tempdir().unwrap();
        for bucket in buckets {
            std::fs::create_dir_all(root.path().join(bucket)).unwrap();
        }
        let faults = Faults::new();
        let (endpoint, thread) = serve_folder(root.path(), Arc::clone(&faults));
        S3Server {
            endpoint,
            root,
            faults,
            thread: Some(thread),
        }
    }

    /// Stops the server (if a fault did not already) and starts it again on the same folder, on
    /// a new port ([`S3Server::configure`] points commands at it).
    pub fn restart(&mut self) {
        self.stop();
        self.faults.down.send_replace(false);
        let (endpoint, thread) = serve_folder(self.root.path(), Arc::clone(&self.faults));
        self.endpoint = endpoint;
        self.thread = Some(thread);
    }

    fn stop(&mut self) {
        self.faults.stop_server();
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }

    /// Points a pengine command at this server.
    pub fn configure(&self, cmd: &mut Command) {
        cmd.env("AWS_ACCESS_KEY_ID", S3_KEY)
            .env("AWS_SECRET_ACCESS_KEY", S3_SECRET)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_ALLOW_HTTP", "true");
    }

    /// The folder holding `bucket/key` objects.
    pub fn path(&self, bucket_and_key: &str) -> PathBuf {
        self.root.path().join(bucket_and_key)
    }

    /// The server's own files for multipart uploads not completed or aborted (s3s-fs keeps them
    /// at the top of its folder, outside the buckets).
    pub fn pending_uploads(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(self.root.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with('.') && name.contains("upload"))
            .collect();
        names.sort();
        names
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Serves `dir` on a new loopback port until `faults` says the server is down; returns the
/// endpoint and the server's thread.
fn serve_folder(dir: &Path, faults: Arc<Faults>) -> (String, std::thread::JoinHandle<()>) {
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let dir = dir.to_path_buf();
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            use hyper_util::rt::{TokioExecutor, TokioIo};
            let fs = s3s_fs::FileSystem::new(&dir).unwrap();
            let mut builder = s3s::service::S3ServiceBuilder::new(fs);
            builder.set_auth(s3s::auth::SimpleAuth::from_single(S3_KEY, S3_SECRET));
            let service = builder.build();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            addr_tx.send(listener.local_addr().unwrap()).unwrap();
            let server = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
            let mut down = faults.down.subscribe();
            let mut connections = tokio::task::JoinSet::new();
            loop {
                tokio::select! {
                    accepted = listener.accept() => {
                        let Ok((socket, _)) = accepted else { continue };
                        let (service, faults) = (service.clone(), Arc::clone(&faults));
                        let handler = hyper::service::service_fn(move |request| {
                            faults::serve(service.clone(), Arc::clone(&faults), request)
                        });
                        let connection = server
                            .serve_connection(TokioIo::new(socket), handler)
                            .into_owned();
                        connections.spawn(async move { let _ = connection.await; });
                    }
                    _ = down.wait_for(|down| *down) => break,
                }
            }
            // Stopped: no new connections (the listener closes) and the open ones are cut.
            drop(listener);
            connections.shutdown().await;
        });
    });
    let addr = addr_rx.recv().unwrap();
    (format!("http://{addr}"), thread)
}

/// Copies a folder tree.
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

/// Spawns `cmd` with a failpoint armed and returns once the process has reached it (it then
/// waits there to be killed or interrupted).
pub fn spawn_at_failpoint(
    cmd: &mut Command,
    failpoint: &str,
    scratch: &Path,
) -> std::process::Child {
    let marker = scratch.join(format!("failpoint-{failpoint}"));
    let _ = std::fs::remove_file(&marker);
    let mut child = cmd
        .env("PENGINE_FAILPOINT", failpoint)
        .env("PENGINE_FAILPOINT_FILE", &marker)
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    while !marker.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("pengine exited ({status}) before the failpoint {failpoint}");
        }
        assert!(
            std::time::Instant::now() < deadline,
            "failpoint {failpoint} never reached"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child
}

/// Starts `cmd`, waits until it stops at `failpoint`, sends it `signal` (`TERM`, `HUP`) and
/// returns what it printed and its exit status.
pub fn signalled_at(cmd: &mut Command, failpoint: &str, signal: &str, scratch: &Path) -> Output {
    let child = spawn_at_failpoint(cmd, failpoint, scratch);
    let status = Command::new("kill")
        .args([format!("-{signal}"), child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    child.wait_with_output().unwrap()
}

/// `pengine <command>` (explain, schema) of `mapping` with `--var d=<d>` and
/// `--on-bad-records policy`: what it printed.
pub fn show(command: &str, d: &Path, mapping: &Path, policy: &str) -> String {
    stdout(&run_ok(
        pengine()
            .args([command, "--on-bad-records", policy])
            .arg(mapping)
            .arg("--var")
            .arg(format!("d={}", d.display())),
    ))
}

/// Where a test's sources are, for `--var d=...`: the bucket `s3://raw` of `s3` when given
/// (`command` then gets its credentials), else the folder `d`.
pub fn source_root(command: &mut Command, d: &Path, s3: Option<&S3Server>) -> String {
    match s3 {
        Some(server) => {
            server.configure(command);
            "s3://raw".to_string()
        }
        None => d.display().to_string(),
    }
}

/// Runs and asserts the exit code, returning the whole output.
#[track_caller]
pub fn run_with_code(cmd: &mut Command, code: i32) -> Output {
    let output = cmd.output().expect("pengine runs");
    assert_eq!(
        output.status.code(),
        Some(code),
        "unexpected exit; stderr:\n{}",
        stderr(&output)
    );
    output
}

/// The JSON pengine printed on stdout (`--json`).
#[track_caller]
pub fn stdout_json(output: &Output) -> serde_json::Value {
    serde_json::from_str(&stdout(output))
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", stdout(output)))
}

/// `pengine run MAPPING --var VAR EXTRA... -o OUT`.
pub fn run_mapping(
    mapping: &Path,
    var: &str,
    out: impl AsRef<std::ffi::OsStr>,
    extra: &[&str],
) -> Command {
    let mut cmd = pengine();
    cmd.arg("run")
        .arg(mapping)
        .args(["--var", var])
        .args(extra)
        .arg("-o")
        .arg(out);
    cmd
}

/// Every file under `dir` (none when it does not exist), relative to it, sorted, with its bytes.
pub fn tree(dir: &Path) -> Vec<(String, Vec<u8>)> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).into_iter().flatten() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(base, &path, out);
            } else {
                let relative = path.strip_prefix(base).unwrap().display().to_string();
                out.push((relative, std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = Vec::new();
    walk(dir, dir, &mut out);
    out.sort();
    out
}

/// The relative names of every file under `dir` (see [`tree`]), sorted.
pub fn file_names(dir: &Path) -> Vec<String> {
    tree(dir).into_iter().map(|(name, _)| name).collect()
}

/// Asserts the `(dataset, status)` of each dataset in a folder run's `--json` summary.
#[track_caller]
pub fn assert_statuses(summary: &serde_json::Value, expected: &[(&str, &str)]) {
    let statuses: Vec<(&str, &str)> = summary["datasets"]
        .as_array()
        .expect("a datasets array")
        .iter()
        .map(|d| {
            (
                d["dataset"].as_str().unwrap_or_default(),
                d["status"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(statuses, expected);
}

/// Users in `<src>/users/date=2024-03-0N/`: 10 in a.json of the 1st, 12 in b.json and 8 in c.json
/// of the 2nd, 5 in d.json of the 3rd.
pub fn partitioned_users(src: &Path) -> PathBuf {
    let mut id = 0;
    for (file, rows) in [
        ("date=2024-03-01/a.json", 10),
        ("date=2024-03-02/b.json", 12),
        ("date=2024-03-02/c.json", 8),
        ("date=2024-03-03/d.json", 5),
    ] {
        let text: String = (0..rows)
            .map(|_| {
                id += 1;
                format!("{{\"id\":{id},\"tier\":\"t{}\"}}\n", id % 3)
            })
            .collect();
        write(src.join("users").join(file), text);
    }
    src.to_path_buf()
}
