//! Running a command so that stop signals are seen whatever it is doing: a run stops cleanly on
//! Ctrl-C, SIGTERM or SIGHUP (aborting uploads, removing what it staged), and so does a cluster
//! executor (removing the work folder it made); other commands write nothing and stop at once. A
//! second signal always quits at once.

use std::future::Future;

use super::output::say;
use crate::error::{Error, Result};
use crate::interrupt;

/// How a command stops on the first signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnSignal {
    /// At once: it has nothing to undo.
    Quit,
    /// It stops itself, doing what this says (printed after the signal's name).
    Clean(&'static str),
}

/// Runs `command` on a worker of the current runtime, answering stop signals as `on_signal` says.
pub(crate) async fn until_stopped(
    command: impl Future<Output = Result<i32>> + Send + 'static,
    on_signal: OnSignal,
) -> Result<i32> {
    let mut signals =
        interrupt::Signals::listen().map_err(|e| Error::io("listening for signals", e))?;
    let mut command = tokio::spawn(command);
    let joined = tokio::select! {
        joined = &mut command => joined,
        signal = signals.next() => {
            interrupt::request(signal);
            let OnSignal::Clean(doing) = on_signal else {
                return Err(Error::Interrupted);
            };
            say(format_args!(
                "pengine: {} received: stopping, {doing} (send it again to quit at once)\n",
                signal.name()
            ));
            tokio::select! {
                joined = &mut command => joined,
                _ = signals.next() => return Err(Error::Interrupted),
            }
        }
    };
    joined.unwrap_or_else(|e| Err(Error::Internal(format!("the command failed: {e}"))))
}
