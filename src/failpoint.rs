//! Named points where a test can stop the process, to prove what a crash at that moment leaves.
//!
//! Inactive unless `PENGINE_FAILPOINT=<name>` is set. At the named point pengine touches the file
//! named by `PENGINE_FAILPOINT_FILE` (so the test knows it got there) and waits for the test to
//! kill it (SIGKILL: no cleanup code runs) or interrupt it (Ctrl-C: the run then stops as it
//! would anywhere else). Used by the crash tests only.

use std::sync::OnceLock;

fn armed() -> Option<&'static str> {
    static ARMED: OnceLock<Option<String>> = OnceLock::new();
    ARMED
        .get_or_init(|| std::env::var("PENGINE_FAILPOINT").ok())
        .as_deref()
}

/// Stops here, until the process is killed or interrupted, when `name` is the armed failpoint.
pub fn hit(name: &str) {
    if armed() != Some(name) {
        return;
    }
    if let Ok(file) = std::env::var("PENGINE_FAILPOINT_FILE") {
        let _ = std::fs::write(file, name);
    }
    eprintln!("pengine: failpoint {name} reached; waiting to be killed or interrupted");
    while !crate::interrupt::requested() {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}
