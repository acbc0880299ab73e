//! `pengine init`: crawl sources, write mapping files and pengine.toml, validate what was written.
//! The work is in [`crate::init`]; this is the command's entry, as the others have one.

use crate::error::Result;
use crate::init::{InitOptions, InitReport};

/// Crawls, writes and validates; the report says what was written and whether it validates.
pub(crate) async fn init(options: &InitOptions) -> Result<InitReport> {
    crate::init::init(options).await
}
