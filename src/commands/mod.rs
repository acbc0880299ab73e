//! The commands, apart from the command line: each takes plain inputs and returns what it found
//! or did, so that [`crate::cli`] alone parses arguments, prints, and picks the exit code.

pub(crate) mod explain;
pub(crate) mod import;
pub(crate) mod init;
pub(crate) mod mappings;
pub(crate) mod run;
pub(crate) mod schema;
pub(crate) mod sources;
pub(crate) mod validate;
