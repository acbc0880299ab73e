//! One error type for the whole engine, and the exit code each kind of failure maps to.
//!
//! The CLI prints the error chain whole and exits with [`Error::exit_code`], so scripts can tell a
//! broken mapping file from bad data or an unreachable bucket without parsing messages.

use std::path::PathBuf;

/// Process exit codes, documented in the README.
pub mod exit_code {
    /// The run succeeded.
    pub const OK: i32 = 0;
    /// An unexpected internal failure (a bug: please report it).
    pub const INTERNAL: i32 = 1;
    /// The command line was wrong (clap's own code).
    pub const USAGE: i32 = 2;
    /// The mapping file is wrong: syntax, directive, variable or SQL planning error.
    pub const MAPPING: i32 = 3;
    /// The data breaks a Personalize rule or cannot be coerced.
    pub const DATA: i32 = 4;
    /// A source or the destination could not be read or written.
    pub const IO: i32 = 5;
    /// The data was checked (and, for `run`, published) but a dataset-level rule fails: the
    /// service would refuse to train on it (e.g. fewer than 1,000 interactions).
    pub const CHECKS: i32 = 6;
    /// The run was interrupted (Ctrl-C); the previous export is untouched.
    pub const INTERRUPTED: i32 = 130;
}

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

    /// A value in the data that breaks a rule.
    #[error("{0}")]
    Data(String),

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
    DataFusion(#[from] datafusion::error::DataFusionError),

    #[error(transparent)]
    Arrow(#[from] datafusion::arrow::error::ArrowError),

    #[error("interrupted")]
    Interrupted,

    #[error("internal error: {0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

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

    /// The process exit code for this error (see [`exit_code`]).
    pub fn exit_code(&self) -> i32 {
        use datafusion::error::DataFusionError as D;
        match self {
            Error::Mapping { .. } | Error::Config(_) => exit_code::MAPPING,
            Error::Column { .. } | Error::Data(_) | Error::Arrow(_) => exit_code::DATA,
            Error::Storage { .. } | Error::Io { .. } | Error::DiskFull { .. } => exit_code::IO,
            Error::Interrupted => exit_code::INTERRUPTED,
            Error::Internal(_) => exit_code::INTERNAL,
            Error::DataFusion(e) => match e.find_root() {
                D::ObjectStore(_) | D::IoError(_) => exit_code::IO,
                D::ArrowError(..) | D::ParquetError(_) | D::Execution(_) => exit_code::DATA,
                D::External(inner) => match inner.downcast_ref::<Error>() {
                    Some(ours) => ours.exit_code(),
                    None => exit_code::IO,
                },
                D::SQL(..) | D::Plan(_) | D::SchemaError(..) | D::NotImplemented(_) => {
                    exit_code::MAPPING
                }
                D::ResourcesExhausted(_) => exit_code::IO,
                _ => exit_code::INTERNAL,
            },
        }
    }

    /// True when a hash join's build side did not fit the memory pool (hash joins cannot spill;
    /// the run retries with sort-merge joins). Other out-of-memory errors are not retried.
    pub fn is_hash_join_out_of_memory(&self) -> bool {
        use datafusion::error::DataFusionError as D;
        match self {
            Error::DataFusion(e) => match e.find_root() {
                // The tracking pool names the consumer that failed to grow.
                D::ResourcesExhausted(message) => message.contains("HashJoin"),
                _ => false,
            },
            _ => false,
        }
    }
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

/// The error and its causes, joined, without repeating a cause already in the message.
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
    text
}

impl From<Error> for datafusion::error::DataFusionError {
    fn from(e: Error) -> Self {
        match e {
            Error::DataFusion(inner) => inner,
            other => datafusion::error::DataFusionError::External(Box::new(other)),
        }
    }
}
