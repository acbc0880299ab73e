//! Where the CLI writes: messages on stderr, results on stdout, JSON rendering, and the failure
//! record a `--json` command prints. A reader that goes away is never the command's failure.

use std::io::Write;

use crate::error::{Error, Result};

/// Writes to standard error. A reader that went away (`pengine run ... 2>&1 | head`) changes
/// nothing: the run's outcome, not its messages, decides the exit code.
pub(crate) fn say(text: impl std::fmt::Display) {
    let mut stderr = std::io::stderr().lock();
    let _ = write!(stderr, "{text}").and_then(|()| stderr.flush());
}

/// Writes to standard output. A reader that went away (`pengine schema x.sql | head`) is not an
/// error: the rest is simply not wanted.
pub(crate) fn out(text: impl std::fmt::Display) -> Result<()> {
    let mut stdout = std::io::stdout().lock();
    match write!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(Error::io("writing to standard output", e))
        }
        _ => Ok(()),
    }
}

/// [`out`] with a line break.
pub(crate) fn outln(text: impl std::fmt::Display) -> Result<()> {
    out(format_args!("{text}\n"))
}

/// A value as the pretty JSON the commands print.
pub(crate) fn to_json(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string_pretty(value).map_err(|e| Error::Internal(e.to_string()))
}

/// Tells a failed command: the message on stderr, and with `--json` the failure record on stdout
/// (so a script reading stdout always gets JSON).
pub(crate) fn failure(message: &str, code: i32, json: bool) {
    say(format_args!("error: {message}\n"));
    if json {
        let failure =
            serde_json::json!({ "status": "failed", "exit_code": code, "error": message });
        // Nothing more can be done when stdout is gone too.
        let _ = outln(failure);
    }
}
