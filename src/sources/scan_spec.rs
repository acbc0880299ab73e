//! A scan's reader settings as data: what another process (a cluster's executor) needs to
//! rebuild the reader that was planned here and read the same records the same way.
//!
//! What planning learned travels with the scan: the columns a sample gave (which the rest of the
//! records are checked against), the bad records inference already found, the CSV files that
//! must be read whole. What belongs to the process does not: the bad-records log is the
//! receiving session's.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::execution::object_store::ObjectStoreUrl;
use serde::{Deserialize, Serialize};

use super::bad_records::BadRecordLog;
use super::csv::{CsvDialect, ExportCsvFormat};
use super::encoding::TextEncoding;
use super::json::ExportJsonFormat;
use super::json::fit::Shape;
use super::json::infer::Inferred;
use super::scan::RecordFormat;
use crate::error::{Error, Result};

/// The settings of one of pengine's own readers.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub enum FormatSpec {
    Json {
        max_record_bytes: u64,
        /// Per file: (offset, reason) of the bad records inference found.
        known_bad: HashMap<String, Vec<(u64, String)>>,
        store_url: String,
        encoding: Option<String>,
        /// The record type of the sample the scan checks records against, and its size.
        shape: Option<(InferredSpec, usize)>,
    },
    Csv {
        dialect: CsvDialect,
        max_record_bytes: u64,
        store_url: String,
        encoding: Option<String>,
        split: bool,
        read_whole: Vec<String>,
    },
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

fn encoding_of(label: Option<&str>) -> Result<TextEncoding> {
    match label {
        None => Ok(TextEncoding::default()),
        Some(label) => TextEncoding::from_label(label).map_err(Error::Internal),
    }
}

impl FormatSpec {
    /// The JSON reader's settings.
    pub fn of_json(format: &ExportJsonFormat) -> FormatSpec {
        let known_bad = format
            .known_bad
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let shape = format
            .shape
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .and_then(|shape| Some((InferredSpec::of(shape.record())?, shape.sampled)));
        FormatSpec::Json {
            max_record_bytes: format.max_record_bytes,
            known_bad,
            store_url: format.store_url.as_str().to_string(),
            encoding: format.encoding.label().map(str::to_string),
            shape,
        }
    }

    /// The CSV reader's settings.
    pub fn of_csv(format: &ExportCsvFormat) -> FormatSpec {
        let mut read_whole: Vec<String> = format
            .files_read_whole()
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect();
        read_whole.sort();
        FormatSpec::Csv {
            dialect: format.dialect().clone(),
            max_record_bytes: format.max_record_bytes,
            store_url: format.store_url.as_str().to_string(),
            encoding: format.encoding.label().map(str::to_string),
            split: format.split,
            read_whole,
        }
    }

    /// The reader these settings describe, recording bad records in `bad_records`.
    pub fn into_format(self, bad_records: Arc<BadRecordLog>) -> Result<Arc<dyn RecordFormat>> {
        match self {
            FormatSpec::Json {
                max_record_bytes,
                known_bad,
                store_url,
                encoding,
                shape,
            } => Ok(Arc::new(ExportJsonFormat {
                max_record_bytes,
                bad_records,
                known_bad: Arc::new(Mutex::new(known_bad)),
                store_url: ObjectStoreUrl::parse(&store_url)?,
                encoding: encoding_of(encoding.as_deref())?,
                shape: Arc::new(Mutex::new(
                    shape.map(|(record, sampled)| Shape::new(record.to_inferred(), sampled)),
                )),
                ..ExportJsonFormat::default()
            })),
            FormatSpec::Csv {
                dialect,
                max_record_bytes,
                store_url,
                encoding,
                split,
                read_whole,
            } => {
                let mut format =
                    ExportCsvFormat::new(Arc::new(CsvFormat::default()), dialect, bad_records);
                format.max_record_bytes = max_record_bytes;
                format.store_url = ObjectStoreUrl::parse(&store_url)?;
                format.encoding = encoding_of(encoding.as_deref())?;
                format.split = split;
                *format
                    .files_read_whole()
                    .lock()
                    .unwrap_or_else(|p| p.into_inner()) =
                    read_whole.into_iter().collect::<HashSet<_>>();
                Ok(Arc::new(format))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_json_reader_comes_back_with_its_sample_and_known_bad_records() {
        let format = ExportJsonFormat {
            max_record_bytes: 1234,
            encoding: TextEncoding::from_label("latin1").unwrap(),
            store_url: ObjectStoreUrl::parse("s3://bucket").unwrap(),
            ..ExportJsonFormat::default()
        };
        format
            .known_bad
            .lock()
            .unwrap()
            .insert("a.json".into(), vec![(7, "not JSON".into())]);
        let record = Inferred::Object(vec![
            ("id".into(), Inferred::Int),
            (
                "ctx".into(),
                Inferred::Object(vec![(
                    "tags".into(),
                    Inferred::List(Box::new(Inferred::Text)),
                )]),
            ),
        ]);
        *format.shape.lock().unwrap() = Some(Shape::new(record.clone(), 99));
        let spec = FormatSpec::of_json(&format);
        let text = serde_json::to_string(&spec).unwrap();
        let back: FormatSpec = serde_json::from_str(&text).unwrap();
        assert_eq!(back, spec);
        let rebuilt = back.clone().into_format(Arc::default()).unwrap();
        assert_eq!(rebuilt.spec(), spec);
        let FormatSpec::Json { shape, .. } = back else {
            panic!("not JSON")
        };
        let (kind, sampled) = shape.unwrap();
        assert_eq!((kind.to_inferred(), sampled), (record, 99));
    }

    #[test]
    fn a_csv_reader_comes_back_with_its_dialect_and_whole_files() {
        let dialect = CsvDialect {
            has_header: false,
            delimiter: b';',
            quote: b'\'',
            escape: Some(b'\\'),
            comment: Some(b'#'),
            newlines_in_values: true,
        };
        let mut format =
            ExportCsvFormat::new(Arc::new(CsvFormat::default()), dialect, Arc::default());
        format.split = false;
        format
            .files_read_whole()
            .lock()
            .unwrap()
            .insert("big.csv".into());
        let spec = FormatSpec::of_csv(&format);
        let rebuilt = spec.clone().into_format(Arc::default()).unwrap();
        assert_eq!(rebuilt.spec(), spec);
        assert!(!rebuilt.splits_files());
    }

    #[test]
    fn a_conflicting_type_has_no_spec() {
        let record = Inferred::Object(vec![("x".into(), Inferred::Conflict("mixed"))]);
        assert_eq!(InferredSpec::of(&record), None);
    }
}
