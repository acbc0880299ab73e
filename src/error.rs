//! One error type for the whole engine, its kinds told apart so that the CLI's exit-code policy
//! (`cli/exit.rs`) can let scripts tell a broken mapping file from bad data or an unreachable
//! bucket without parsing messages.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A problem in the mapping file, located by file and line.
    #[error("{file}:{line}: {message}")]
    Mapping {
        file: PathBuf,
        line: usize,
        message: String,
    },

    /// A column of the final query that Personalize cannot take as is.
    #[error("column {column}: {message}")]
    Column { column: String, message: String },

    /// The query returned no rows to publish (and `--allow-empty` was not given).
    #[error("{0}")]
    Empty(String),

    /// An incremental run found no new source file: nothing to do, which is not a failure.
    #[error("{0}")]
    NothingNew(String),

    /// A value in the data that breaks a rule.
    #[error("{0}")]
    Data(String),

    /// The command line asks for something that cannot be right (exit code 2, as clap's own).
    #[error("{0}")]
    Usage(String),

    /// Configuration outside the mapping file (flags, pengine.toml, environment).
    #[error("{0}")]
    Config(String),

    /// Reading a source or writing the destination failed.
    #[error("{context}: {source}")]
    Storage {
        context: String,
        #[source]
        source: object_store::Error,
    },

    /// A database source could not be reached, logged into or read (named without secrets).
    #[error("{0}")]
    Database(String),

    /// A cluster that cannot be reached or serve the job (`--cluster`).
    #[error("{0}")]
    Cluster(String),

    /// A cluster's job failed (`--cluster`): the task's own words, and what they mean to the run.
    #[error("{message}")]
    ClusterJob { message: String, cause: JobFailure },

    /// The destination cannot be published to as it stands (it holds files pengine did not
    /// write).
    #[error("{0}")]
    Destination(String),

    /// A cloud service's API (Amazon Personalize, for `pengine import`) refused a request or
    /// failed a job; the message names the resource and carries the service's code and words.
    #[error("{0}")]
    Service(String),

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// Writing failed because the disk (or the user's quota on it) is full.
    #[error(
        "{context}: the disk is full ({reason}). Free space on it, or write the output to \
         another disk with --output, then run again"
    )]
    DiskFull { context: String, reason: String },

    #[error(transparent)]
    DataFusion(datafusion::error::DataFusionError),

    #[error(transparent)]
    Arrow(#[from] datafusion::arrow::error::ArrowError),

    #[error("interrupted")]
    Interrupted,

    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What made a cluster's job fail, as far as the run can act on it. A task's error crosses the
/// cluster as text; it is read once, where it arrives ([`crate::cluster::submit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobFailure {
    /// A record the JSON columns inferred from a sample do not cover.
    RecordMisfit,
    /// A file cut into byte ranges where a record spans the cut (CSV, back-to-back JSON).
    SplitMismatch,
    /// A hash join out of memory (hash joins cannot spill).
    HashJoinOutOfMemory,
    /// An executor went away with its shuffle output, or could not be reached.
    LostExecutor,
    /// Anything else: the run fails with the task's words.
    Other,
}

impl Error {
    pub fn mapping(file: impl Into<PathBuf>, line: usize, message: impl Into<String>) -> Self {
        Error::Mapping {
            file: file.into(),
            line,
            message: message.into(),
        }
    }

    pub fn column(column: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Column {
            column: column.into(),
            message: message.into(),
        }
    }

    /// A storage error; a full disk is told apart ([`Error::DiskFull`]).
    pub fn storage(context: impl Into<String>, source: object_store::Error) -> Self {
        match disk_full(&source) {
            Some(reason) => Error::DiskFull {
                context: context.into(),
                reason,
            },
            None => Error::Storage {
                context: context.into(),
                source,
            },
        }
    }

    /// An I/O error; a full disk is told apart ([`Error::DiskFull`]).
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        match disk_full(&source) {
            Some(reason) => Error::DiskFull {
                context: context.into(),
                reason,
            },
            None => Error::Io {
                context: context.into(),
                source,
            },
        }
    }

    /// The operator's own words when the query ran out of its memory pool.
    pub fn out_of_memory(&self) -> Option<String> {
        let Error::DataFusion(e) = self else {
            return None;
        };
        let message = resources_exhausted(e)?;
        // DataFusion's advice names settings pengine users cannot reach.
        let first = message
            .split(" Consider increasing")
            .next()
            .unwrap_or(message);
        let first = first.lines().next().unwrap_or(first);
        Some(first.trim_end_matches(['.', ' ', ':']).to_string())
    }

    /// True when a hash join's build side did not fit the memory pool (hash joins cannot spill;
    /// the run retries with sort-merge joins). Other out-of-memory errors are not retried.
    pub fn is_hash_join_out_of_memory(&self) -> bool {
        match self {
            // The tracking pool names the consumer that failed to grow.
            Error::DataFusion(e) => resources_exhausted(e).is_some_and(|m| m.contains("HashJoin")),
            Error::ClusterJob { cause, .. } => *cause == JobFailure::HashJoinOutOfMemory,
            _ => false,
        }
    }
}

/// The message of the out-of-memory error in `e`'s causes, however it was wrapped on its way
/// (contexts, errors shared between partitions, Arrow errors of a stream).
fn resources_exhausted(e: &datafusion::error::DataFusionError) -> Option<&str> {
    use datafusion::error::DataFusionError as D;
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(error) = cause {
        match error.downcast_ref::<D>() {
            Some(D::ResourcesExhausted(message)) => return Some(message),
            Some(D::Shared(inner)) => return resources_exhausted(inner),
            Some(D::Context(_, inner)) => return resources_exhausted(inner),
            _ => {}
        }
        cause = error.source();
    }
    None
}

/// The I/O error that says a disk (or quota) is full, if `e` or one of its causes is one.
fn disk_full(e: &(dyn std::error::Error + 'static)) -> Option<String> {
    use std::io::ErrorKind;
    let mut cause = Some(e);
    while let Some(error) = cause {
        if let Some(io) = error.downcast_ref::<std::io::Error>()
            && matches!(io.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded)
        {
            return Some(io.to_string());
        }
        cause = error.source();
    }
    None
}

/// What a person is told of an error: its chain, or for running out of memory, what to do about
/// it in pengine's terms.
pub fn message(e: &Error) -> String {
    // pengine's own error raised inside a scan (a bad record under `fail`): told as itself, not
    // as DataFusion's "External error: ...".
    if let Error::DataFusion(inner) = e
        && let datafusion::error::DataFusionError::External(root) = inner.find_root()
        && let Some(own) = root.downcast_ref::<Error>()
    {
        return message(own);
    }
    match e.out_of_memory() {
        Some(operator) => format!(
            "out of memory: the query needs more than --memory-limit allows ({operator}). Raise \
             --memory-limit (e.g. 4GiB, or `unlimited`); declare the source columns in CREATE \
             EXTERNAL TABLE t (...) so that fewer are held; and in a join, put the small table \
             on the side that is held whole (a lookup joined to the events)"
        ),
        None => chain(e),
    }
}

/// The error and its causes, joined, without repeating a cause already in the message, and
/// without the signatures of request URLs ([`without_url_secrets`]).
pub fn chain(e: &Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(&format!(": {cause_text}"));
        }
        source = cause.source();
    }
    without_url_secrets(&text)
}

/// URL query parameters that are credentials: an Azure SAS signature, a presigned URL's.
const SECRET_PARAMETERS: &[&str] = &[
    "sig",
    "signature",
    "x-amz-signature",
    "x-amz-security-token",
    "x-goog-signature",
];

/// `text` with the values of [`SECRET_PARAMETERS`] in URLs replaced: object_store's request
/// errors quote the whole URL, and a SAS token travels in its query.
pub fn without_url_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(at) = rest.find(['?', '&']) {
        out.push_str(&rest[..=at]);
        rest = &rest[at + 1..];
        let Some((name, _)) = rest.split_once('=') else {
            continue;
        };
        if name.len() <= 20 && SECRET_PARAMETERS.contains(&name.to_ascii_lowercase().as_str()) {
            let end = rest
                .find(|c: char| c == '&' || c == '"' || c == '\'' || c.is_whitespace())
                .unwrap_or(rest.len());
            out.push_str(name);
            out.push_str("=REDACTED");
            rest = &rest[end..];
        }
    }
    out.push_str(rest);
    out
}

/// A DataFusion error that carries one of pengine's own (raised inside a scan or the write stage)
/// gives that error back, so its kind (and exit code) survives the trip through DataFusion.
impl From<datafusion::error::DataFusionError> for Error {
    fn from(e: datafusion::error::DataFusionError) -> Self {
        match e {
            datafusion::error::DataFusionError::External(inner) => {
                match inner.downcast::<Error>() {
                    Ok(ours) => *ours,
                    Err(other) => {
                        Error::DataFusion(datafusion::error::DataFusionError::External(other))
                    }
                }
            }
            other => Error::DataFusion(other),
        }
    }
}

impl From<Error> for datafusion::error::DataFusionError {
    fn from(e: Error) -> Self {
        match e {
            Error::DataFusion(inner) => inner,
            other => datafusion::error::DataFusionError::External(Box::new(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_in_urls_are_redacted_and_nothing_else() {
        let text = "Error performing POST http://127.0.0.1:1/acct/out?restype=container&comp=batch\
                    &se=2026-12-06T16%3A50%3A35Z&sig=hbt%2FC7du%3D in 117ms: 500; \
                    https://b.s3.amazonaws.com/k?X-Amz-Signature=abc123&x=1 and 'a?sig=q'";
        let clean = without_url_secrets(text);
        assert!(
            !clean.contains("hbt%2FC7du") && !clean.contains("abc123"),
            "{clean}"
        );
        assert!(!clean.contains("=q'"), "{clean}");
        assert!(
            clean.contains("comp=batch&se=2026-12-06T16%3A50%3A35Z&sig=REDACTED in 117ms"),
            "{clean}"
        );
        assert!(clean.contains("X-Amz-Signature=REDACTED&x=1"), "{clean}");
        let plain = "file? no & query = here";
        assert_eq!(without_url_secrets(plain), plain);
    }
}
