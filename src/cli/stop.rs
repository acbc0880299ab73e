//! Running a command so that stop signals are seen whatever it is doing: a run stops cleanly on
//! Ctrl-C, SIGTERM or SIGHUP (aborting uploads, removing what it staged), other commands write
//! nothing and stop at once; a second signal always quits at once.

use std::future::Future;

use super::output::say;
use crate::error::{Error, Result};
use crate::interrupt;

/// Runs `command` on a worker of the current runtime, answering stop signals. `clean_stop`: wait
/// for the command to stop itself after the first signal (a run), rather than stopping at once.
pub(crate) async fn until_stopped(
    command: impl Future<Output = Result<i32>> + Send + 'static,
    clean_stop: bool,
) -> Result<i32> {
    let mut signals =
        interrupt::Signals::listen().map_err(|e| Error::io("listening for signals", e))?;
    let mut command = tokio::spawn(command);
    let joined = tokio::select! {
        joined = &mut command => joined,
        signal = signals.next() => {
            interrupt::request(signal);
            if !clean_stop {
                return Err(Error::Interrupted);
            }
            say(format_args!(
                "pengine: {} received: stopping, aborting uploads and removing what this run \
                 staged (send it again to quit at once)\n",
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
