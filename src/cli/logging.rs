//! The log on stderr: `-v`/`-q` pick pengine's level, `PENGINE_LOG` overrides them.

use tracing_subscriber::EnvFilter;

/// Installs the log subscriber for the process.
pub(crate) fn init(verbose: u8, quiet: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "pengine=debug,warn",
        (false, _) => "pengine=trace,info",
    };
    // A bare level (`PENGINE_LOG=debug`) is pengine's own; dependencies' chatter (the SQL
    // parser's, the HTTP client's) only when asked for by name (`PENGINE_LOG=datafusion=debug`).
    let filter = match std::env::var("PENGINE_LOG") {
        Ok(text) if !text.contains(['=', ',']) && !text.trim().is_empty() => {
            EnvFilter::try_new(format!("pengine={},warn", text.trim()))
        }
        Ok(text) => EnvFilter::try_new(text),
        Err(_) => EnvFilter::try_new(default),
    }
    .unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .without_time()
        .try_init();
}
