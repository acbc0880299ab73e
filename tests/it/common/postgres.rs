//! A real PostgreSQL server for a test: a new cluster in a temporary folder (Debian's server
//! binaries, installed by `.ci/test-servers`), on a free loopback port, with password logins
//! over TCP and every data-changing statement logged, so a test can show pengine wrote nothing.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

use super::servers::{ServerProcess, free_port};

/// The superuser's name and password in test clusters.
pub const ADMIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-pw";

pub struct PgServer {
    pub server: ServerProcess,
    /// The cluster's files, removed when the server is dropped.
    _dir: tempfile::TempDir,
}

/// The newest installed server binary `name` (installing PostgreSQL first if need be).
fn pg_bin(name: &str) -> PathBuf {
    super::servers::install_once();
    let mut found: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (.ci/test-servers)")
        .map(|e| e.unwrap().path().join("bin").join(name))
        .filter(|p| p.exists())
        .collect();
    found.sort();
    found
        .pop()
        .unwrap_or_else(|| panic!("no PostgreSQL {name} under /usr/lib/postgresql"))
}

/// The uid and gid of the `postgres` account: the server refuses to run as root.
fn postgres_account() -> Option<(u32, u32)> {
    if unsafe { libc::geteuid() } != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap();
    passwd.lines().find_map(|line| {
        let fields: Vec<&str> = line.split(':').collect();
        (fields.first() == Some(&"postgres"))
            .then(|| (fields[2].parse().unwrap(), fields[3].parse().unwrap()))
    })
}

fn as_postgres(cmd: &mut Command) -> &mut Command {
    if let Some((uid, gid)) = postgres_account() {
        cmd.uid(uid).gid(gid);
    }
    cmd
}

impl PgServer {
    /// A new cluster, started and ready.
    pub fn start() -> PgServer {
        PgServer::start_with(&[])
    }

    /// A new cluster that also takes TLS connections with a self-signed certificate for
    /// 127.0.0.1, written to `cert` (the file a client trusts).
    pub fn start_tls(cert: &std::path::Path) -> PgServer {
        let dir = cert.parent().unwrap();
        let key = dir.join("server.key");
        let output = Command::new("openssl")
            .args([
                "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
            ])
            .args([
                "-subj",
                "/CN=127.0.0.1",
                "-addext",
                "subjectAltName=IP:127.0.0.1",
            ])
            .arg("-keyout")
            .arg(&key)
            .arg("-out")
            .arg(cert)
            .output()
            .expect("openssl runs (.ci/test-servers installs it)");
        assert!(
            output.status.success(),
            "openssl failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        // The server reads its key only when no one else may.
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        if let Some((uid, gid)) = postgres_account() {
            std::os::unix::fs::chown(&key, Some(uid), Some(gid)).unwrap();
            std::os::unix::fs::chown(cert, Some(uid), Some(gid)).unwrap();
        }
        PgServer::start_with(&[
            "-c".into(),
            "ssl=on".into(),
            "-c".into(),
            format!("ssl_cert_file={}", cert.display()),
            "-c".into(),
            format!("ssl_key_file={}", key.display()),
            "-c".into(),
            "log_connections=on".into(),
        ])
    }

    fn start_with(extra: &[String]) -> PgServer {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, ADMIN_PASSWORD).unwrap();
        if let Some((uid, gid)) = postgres_account() {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
            std::os::unix::fs::chown(&pwfile, Some(uid), Some(gid)).unwrap();
        }
        let output = as_postgres(&mut Command::new(pg_bin("initdb")))
            .arg("-D")
            .arg(&data)
            .args(["-U", ADMIN, "-E", "UTF8", "--no-sync", "--auth-local=trust"])
            .args(["--auth-host=scram-sha-256", "--pwfile"])
            .arg(&pwfile)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let port = free_port();
        let mut cmd = Command::new(pg_bin("postgres"));
        as_postgres(&mut cmd)
            .arg("-D")
            .arg(&data)
            .args(["-p", &port.to_string(), "-k"])
            .arg(dir.path())
            .args(["-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"])
            .args(["-c", "log_statement=mod", "-c", "log_line_prefix=%u: "])
            .args(extra);
        let server = ServerProcess::start("postgres", &mut cmd, port);
        let pg = PgServer { server, _dir: dir };
        pg.wait_ready();
        pg
    }

    fn wait_ready(&self) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
        loop {
            let output = self.psql_command("postgres", "SELECT 1").output().unwrap();
            if output.status.success() {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "postgres never accepted logins: {}",
                String::from_utf8_lossy(&output.stderr)
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }

    fn psql_command(&self, database: &str, sql: &str) -> Command {
        let mut cmd = Command::new(pg_bin("psql"));
        cmd.env("PGPASSWORD", ADMIN_PASSWORD)
            .args(["-h", "127.0.0.1", "-p", &self.server.port.to_string()])
            .args([
                "-U",
                ADMIN,
                "-d",
                database,
                "-v",
                "ON_ERROR_STOP=1",
                "-qAt",
                "-c",
                sql,
            ]);
        cmd
    }

    /// Runs SQL as the superuser; returns what psql printed.
    #[track_caller]
    pub fn psql(&self, database: &str, sql: &str) -> String {
        let output = self.psql_command(database, sql).output().unwrap();
        assert!(
            output.status.success(),
            "psql failed on {sql}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// `postgres://user@127.0.0.1:port/database?sslmode=disable`.
    pub fn location(&self, user: &str, database: &str) -> String {
        format!(
            "postgres://{user}@127.0.0.1:{}/{database}?sslmode=disable",
            self.server.port
        )
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.server.log.path()).unwrap_or_default()
    }

    /// The statements the server logged as changing data or schema, by user (`user: ...`).
    pub fn logged_changes(&self) -> Vec<String> {
        let log = std::fs::read_to_string(self.server.log.path()).unwrap_or_default();
        log.lines()
            .filter(|l| l.contains("statement:"))
            .map(str::to_string)
            .collect()
    }
}
