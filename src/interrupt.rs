//! Ctrl-C as a request to stop cleanly. The CLI calls [`request`] on the first Ctrl-C (and quits
//! at once on a second); a run notices it at its next step ([`cancellable`], [`requested`]),
//! aborts its uploads, removes what it staged and ends with [`Error::Interrupted`]. A run already
//! past its commit point finishes publishing instead: stopping there would only leave the next
//! run to finish it.

use std::future::Future;
use std::sync::OnceLock;

use tokio::sync::watch;

use crate::error::{Error, Result};

fn flag() -> &'static watch::Sender<bool> {
    static FLAG: OnceLock<watch::Sender<bool>> = OnceLock::new();
    FLAG.get_or_init(|| watch::Sender::new(false))
}

/// Asks the running command to stop.
pub fn request() {
    flag().send_replace(true);
}

/// Whether a stop was asked for.
pub fn requested() -> bool {
    *flag().borrow()
}

/// Resolves once a stop is asked for.
pub async fn wait() {
    let mut asked = flag().subscribe();
    // The sender lives in a static: it is never dropped, so this only returns when asked.
    let _ = asked.wait_for(|asked| *asked).await;
}

/// Runs `work` unless a stop is asked for first: `work` is then dropped where it stands and the
/// result is [`Error::Interrupted`]. For work that leaves nothing behind when dropped, or whose
/// caller cleans up after it.
pub async fn cancellable<T>(work: impl Future<Output = Result<T>>) -> Result<T> {
    tokio::select! {
        biased;
        _ = wait() => Err(Error::Interrupted),
        done = work => done,
    }
}
