//! A real MariaDB server for a test: a new data folder (Debian's server, installed by
//! `.ci/test-servers`), on a free loopback port, logging every statement it receives, so a test
//! can show pengine wrote nothing.

use std::path::PathBuf;
use std::process::Command;

use super::servers::{ServerProcess, free_port, install_once};

pub struct MariaDb {
    pub server: ServerProcess,
    dir: tempfile::TempDir,
}

fn running_as_root() -> bool {
    unsafe { libc::geteuid() == 0 }
}

impl MariaDb {
    /// A new server, started and ready; `root` logs in over its socket without a password.
    pub fn start() -> MariaDb {
        install_once();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut install = Command::new("mariadb-install-db");
        install
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args(["--auth-root-authentication-method=normal", "--skip-test-db"]);
        if running_as_root() {
            install.arg("--user=mysql");
            let status = Command::new("chown")
                .args(["mysql:mysql"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success());
        }
        let output = install.output().unwrap();
        assert!(
            output.status.success(),
            "mariadb-install-db failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        let port = free_port();
        let mut cmd = Command::new("/usr/sbin/mariadbd");
        cmd.arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg(format!("--socket={}", dir.path().join("sock").display()))
            .arg(format!("--port={port}"))
            .args([
                "--bind-address=127.0.0.1",
                "--skip-log-bin",
                "--general-log=1",
            ])
            .arg(format!(
                "--general-log-file={}",
                dir.path().join("general.log").display()
            ));
        if running_as_root() {
            cmd.arg("--user=mysql");
        }
        let server = ServerProcess::start("mariadbd", &mut cmd, port);
        MariaDb { server, dir }
    }

    /// Runs SQL as root (over the socket); returns what the client printed.
    #[track_caller]
    pub fn sql(&self, sql: &str) -> String {
        let output = Command::new("mariadb")
            .arg("--no-defaults")
            .arg(format!(
                "--socket={}",
                self.dir.path().join("sock").display()
            ))
            .args(["-u", "root", "-N", "-B", "-e", sql])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "mariadb failed on {sql}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `mysql://user@127.0.0.1:port/database?ssl-mode=disabled`.
    pub fn location(&self, user: &str, database: &str) -> String {
        format!(
            "mysql://{user}@127.0.0.1:{}/{database}?ssl-mode=disabled",
            self.server.port
        )
    }

    /// Every statement the server received, in order.
    pub fn general_log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("general.log")
    }
}
