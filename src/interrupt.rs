//! Ctrl-C, SIGTERM and SIGHUP as a request to stop cleanly: what a person, Kubernetes, systemd,
//! Airflow or a CI runner sends. The CLI calls [`request`] on the first signal (and quits at once
//! on a second); a run notices it at its next step ([`cancellable`], [`requested`]), aborts its
//! uploads, removes what it staged and ends with [`Error::Interrupted`], and the process exits
//! with 128 + the signal's number. A run already past its commit point finishes publishing
//! instead: stopping there would only leave the next run to finish it.

use std::future::Future;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU8, Ordering};

use tokio::sync::watch;

use crate::error::{Error, Result};

/// A signal that asks pengine to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopSignal {
    Interrupt,
    Terminate,
    Hangup,
}

impl StopSignal {
    pub fn name(self) -> &'static str {
        match self {
            StopSignal::Interrupt => "Ctrl-C (SIGINT)",
            StopSignal::Terminate => "SIGTERM",
            StopSignal::Hangup => "SIGHUP",
        }
    }

    /// The signal's number (the exit code after stopping for it is 128 + this).
    pub fn number(self) -> i32 {
        match self {
            StopSignal::Interrupt => 2,
            StopSignal::Terminate => 15,
            StopSignal::Hangup => 1,
        }
    }

    fn code(self) -> u8 {
        match self {
            StopSignal::Interrupt => 1,
            StopSignal::Terminate => 2,
            StopSignal::Hangup => 3,
        }
    }
}

/// The stop signals, listened to from the start of the process (so none kills it outright).
pub struct Signals {
    #[cfg(unix)]
    terminate: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    pub fn listen() -> std::io::Result<Signals> {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{SignalKind, signal};
            Ok(Signals {
                terminate: signal(SignalKind::terminate())?,
                hangup: signal(SignalKind::hangup())?,
            })
        }
        #[cfg(not(unix))]
        Ok(Signals {})
    }

    /// The next stop signal.
    pub async fn next(&mut self) -> StopSignal {
        #[cfg(unix)]
        {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => StopSignal::Interrupt,
                _ = self.terminate.recv() => StopSignal::Terminate,
                _ = self.hangup.recv() => StopSignal::Hangup,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
            StopSignal::Interrupt
        }
    }
}

fn flag() -> &'static watch::Sender<bool> {
    static FLAG: OnceLock<watch::Sender<bool>> = OnceLock::new();
    FLAG.get_or_init(|| watch::Sender::new(false))
}

/// The first stop signal received (0: none).
static RECEIVED: AtomicU8 = AtomicU8::new(0);

/// Asks the running command to stop, for `signal`.
pub fn request(signal: StopSignal) {
    let _ = RECEIVED.compare_exchange(0, signal.code(), Ordering::SeqCst, Ordering::SeqCst);
    flag().send_replace(true);
}

/// The signal that asked for the stop (Ctrl-C when none did: an interrupt without a signal).
pub fn received() -> StopSignal {
    match RECEIVED.load(Ordering::SeqCst) {
        2 => StopSignal::Terminate,
        3 => StopSignal::Hangup,
        _ => StopSignal::Interrupt,
    }
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
