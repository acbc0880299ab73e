//! Storage servers that run as their own processes (Azurite, fake-gcs-server, WsgiDAV), installed
//! by `.ci/test-servers` outside the clone: started on a free loopback port, waited for, killed
//! when dropped. The first test that needs one runs the install (once per test process, reused
//! when already done), so a plain `cargo test` works on a fresh machine; a failed install fails
//! the test with the script's output: nothing is skipped.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// Where `.ci/test-servers` installs the servers.
fn servers_dir() -> PathBuf {
    match std::env::var_os("PENGINE_TEST_SERVERS") {
        Some(dir) => PathBuf::from(dir),
        None => PathBuf::from(std::env::var_os("HOME").expect("HOME is set"))
            .join(".cache/pengine-test-servers"),
    }
}

/// Runs `.ci/test-servers` once per test process (it returns at once when its stamp matches).
pub fn install_once() {
    static INSTALLED: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    let outcome = INSTALLED.get_or_init(|| {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".ci/test-servers");
        let output = Command::new("bash")
            .arg(&script)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", script.display()))?;
        if output.status.success() {
            Ok(())
        } else {
            Err(format!(
                "{} failed ({}): {}{}",
                script.display(),
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ))
        }
    });
    if let Err(e) = outcome {
        panic!("{e}");
    }
}

/// An installed server program (relative to [`servers_dir`]), installed first if need be;
/// panics with the install command when it is still missing.
#[track_caller]
pub fn installed(relative: &str) -> PathBuf {
    install_once();
    let path = servers_dir().join(relative);
    assert!(
        path.exists(),
        "{} is missing: run `bash .ci/test-servers` (what .ci/run does before the tests)",
        path.display()
    );
    path
}

/// A port free on loopback now (the server is told to take it right after).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// A server process on `port`, killed (and reaped) when dropped. Its output goes to a log file
/// that a failed start prints.
pub struct ServerProcess {
    child: Child,
    pub port: u16,
    pub log: tempfile::NamedTempFile,
}

impl ServerProcess {
    /// Spawns `cmd` and waits until `port` accepts connections.
    #[track_caller]
    pub fn start(name: &str, cmd: &mut Command, port: u16) -> ServerProcess {
        let log = tempfile::NamedTempFile::new().unwrap();
        let child = cmd
            .stdin(Stdio::null())
            .stdout(log.reopen().unwrap())
            .stderr(log.reopen().unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let mut server = ServerProcess { child, port, log };
        // Node and Python servers take a second or two to listen.
        let deadline = Instant::now() + Duration::from_secs(60);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            let exited = server.child.try_wait().unwrap();
            if exited.is_some() || Instant::now() > deadline {
                panic!(
                    "{name} did not start on port {port} ({exited:?}):\n{}",
                    std::fs::read_to_string(server.log.path()).unwrap_or_default()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        server
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
