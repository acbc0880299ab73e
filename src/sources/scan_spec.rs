//! A scan's reader settings as data: what another process (a cluster's executor) needs to
//! rebuild the reader that was planned here and read the same records the same way. Each format
//! says what its settings are ([`super::scan::RecordFormat::spec`]) and rebuilds itself from them;
//! [`super::rebuild`] picks the format.
//!
//! What planning learned travels with the scan: the columns a sample gave (which the rest of the
//! records are checked against), the bad records inference already found, the CSV files that
//! must be read whole. What belongs to the process does not: the bad-records log is the
//! receiving session's.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::csv_kinds::CsvSample;
use super::csv_options::CsvDialect;
use super::encoding::TextEncoding;
use super::json::infer::Inferred;
use crate::error::{Error, Result};

/// The settings of one of pengine's own readers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum FormatSpec {
    Json(JsonSpec),
    Csv(CsvSpec),
}

/// The JSON reader's settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct JsonSpec {
    pub max_record_bytes: u64,
    /// Per file: (offset, reason) of the bad records inference found.
    pub known_bad: HashMap<String, Vec<(u64, String)>>,
    pub store_url: String,
    pub encoding: Option<String>,
    /// The record type of the sample the scan checks records against, and its size.
    pub shape: Option<(InferredSpec, usize)>,
    /// Large files may be read in byte ranges (and compressed ones in segments).
    pub split_at_cuts: bool,
}

/// The CSV reader's settings.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CsvSpec {
    pub dialect: CsvDialect,
    pub max_record_bytes: u64,
    pub store_url: String,
    pub encoding: Option<String>,
    pub split: bool,
    pub segments: bool,
    pub read_whole: Vec<String>,
    /// The columns of the sample the scan checks records against.
    pub sample: Option<CsvSample>,
}

/// [`Inferred`] as data.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum InferredSpec {
    Null,
    Bool,
    Int,
    Float,
    Text,
    List(Box<InferredSpec>),
    Object(Vec<(String, InferredSpec)>),
}

impl InferredSpec {
    /// None for a type holding a conflict (a scan is never planned on one).
    pub fn of(inferred: &Inferred) -> Option<InferredSpec> {
        Some(match inferred {
            Inferred::Null => InferredSpec::Null,
            Inferred::Bool => InferredSpec::Bool,
            Inferred::Int => InferredSpec::Int,
            Inferred::Float => InferredSpec::Float,
            Inferred::Text => InferredSpec::Text,
            Inferred::List(item) => InferredSpec::List(Box::new(InferredSpec::of(item)?)),
            Inferred::Object(fields) => InferredSpec::Object(
                fields
                    .iter()
                    .map(|(name, kind)| Some((name.clone(), InferredSpec::of(kind)?)))
                    .collect::<Option<_>>()?,
            ),
            Inferred::Conflict(_) => return None,
        })
    }

    pub fn to_inferred(&self) -> Inferred {
        match self {
            InferredSpec::Null => Inferred::Null,
            InferredSpec::Bool => Inferred::Bool,
            InferredSpec::Int => Inferred::Int,
            InferredSpec::Float => Inferred::Float,
            InferredSpec::Text => Inferred::Text,
            InferredSpec::List(item) => Inferred::List(Box::new(item.to_inferred())),
            InferredSpec::Object(fields) => Inferred::Object(
                fields
                    .iter()
                    .map(|(name, kind)| (name.clone(), kind.to_inferred()))
                    .collect(),
            ),
        }
    }
}

/// The encoding a spec names (None: UTF-8).
pub fn encoding_of(label: Option<&str>) -> Result<TextEncoding> {
    match label {
        None => Ok(TextEncoding::default()),
        Some(label) => TextEncoding::from_label(label).map_err(Error::Internal),
    }
}
