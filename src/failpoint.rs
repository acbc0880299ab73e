//! Named points where a test can stop the process, to prove what a crash at that moment leaves,
//! and one simulated fault.
//!
//! Inactive unless `PENGINE_FAILPOINT=<name>` is set. At the named point pengine touches the file
//! named by `PENGINE_FAILPOINT_FILE` (so the test knows it got there) and waits for the test to
//! kill it (SIGKILL: no cleanup code runs) or interrupt it (Ctrl-C: the run then stops as it
//! would anywhere else). `PENGINE_FAILPOINT=disk-full:<bytes>` makes output writes fail with
//! "no space left on device" once that many bytes were written, for tests that cannot mount a
//! small file system; `PENGINE_FAILPOINT=lose-a-batch` makes the writer drop the first batch it
//! is given; `PENGINE_FAILPOINT=first-range-late` holds the first byte range of a split file back
//! until its attempt ends (or [`FIRST_RANGE_DELAY`] passed), so that the ranges after it meet their
//! records first. Used by the crash and fault tests only.

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// The armed failpoint. Only builds with the `failpoints` feature have any: the tests turn it on
/// (the package's dev-dependency on itself), so `cargo build` and release binaries carry none.
#[cfg(feature = "failpoints")]
fn armed() -> Option<&'static str> {
    static ARMED: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    ARMED
        .get_or_init(|| std::env::var("PENGINE_FAILPOINT").ok())
        .as_deref()
}

#[cfg(not(feature = "failpoints"))]
fn armed() -> Option<&'static str> {
    None
}

/// Stops here, until the process is killed or interrupted, when `name` is the armed failpoint.
pub fn hit(name: &str) {
    if armed() != Some(name) {
        return;
    }
    if let Ok(file) = std::env::var("PENGINE_FAILPOINT_FILE") {
        let _ = std::fs::write(file, name);
    }
    // A closed stderr must not turn the wait into a panic.
    let _ = writeln!(
        std::io::stderr(),
        "pengine: failpoint {name} reached; waiting to be killed or interrupted"
    );
    // Off the async worker: its other duties (the signal driver among them) move to another
    // thread, so the signal that ends the wait is seen.
    tokio::task::block_in_place(|| {
        while !crate::interrupt::requested() {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    });
}

/// Whether `name` is the armed failpoint, for faults that are simulated rather than waited at
/// (`lose-a-batch`: the writer drops a batch, to prove the row accounting catches it).
pub fn armed_for(name: &str) -> bool {
    armed() == Some(name)
}

/// How long the first byte range of a split file waits at most under `first-range-late`. The
/// attempt ends first when a later range fails it; a wait of a few seconds was a race (CI lost
/// it), since the exchange before the writer can hold a later range's rows until the first
/// range's come.
pub const FIRST_RANGE_DELAY: std::time::Duration = std::time::Duration::from_secs(60);

/// Under `first-range-late`, blocks a reading thread until `gone()` says its reader was dropped
/// (the attempt ended) or [`FIRST_RANGE_DELAY`] passed.
pub fn hold_first_range_blocking(gone: impl Fn() -> bool) {
    if !armed_for("first-range-late") {
        return;
    }
    let until = std::time::Instant::now() + FIRST_RANGE_DELAY;
    while !gone() && std::time::Instant::now() < until {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// With `disk-full:<bytes>` armed: counts `bytes` about to be written to the output and, once
/// the total passes the budget, returns the error a full disk gives.
pub fn disk_full(bytes: usize) -> Option<std::io::Error> {
    static WRITTEN: AtomicU64 = AtomicU64::new(0);
    let budget: u64 = armed()?.strip_prefix("disk-full:")?.parse().ok()?;
    let written = WRITTEN.fetch_add(bytes as u64, Ordering::Relaxed) + bytes as u64;
    (written > budget).then(|| {
        std::io::Error::new(
            std::io::ErrorKind::StorageFull,
            "No space left on device (simulated by PENGINE_FAILPOINT)",
        )
    })
}
