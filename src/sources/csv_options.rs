//! How a CSV source's files are written: delimiter, quote, escape, comment and header, from the
//! table's options (escapes such as `'\\t'` as DuckDB and Spark take them). The record reader and
//! the scan read by it; DataFusion's CSV format is given the same bytes.

use std::collections::HashMap;

use datafusion::common::{DataFusionError, Result};

/// How to read the CSV files, from the table's options.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CsvDialect {
    pub has_header: bool,
    pub delimiter: u8,
    pub quote: u8,
    pub escape: Option<u8>,
    pub comment: Option<u8>,
    /// `'format.newlines_in_values'`: the user says values hold line breaks, so a large file is
    /// never cut into byte ranges at line starts.
    pub newlines_in_values: bool,
}

/// The options naming one character of the dialect.
const CHARACTER_OPTIONS: [&str; 4] = [
    "format.delimiter",
    "format.quote",
    "format.escape",
    "format.comment",
];

impl CsvDialect {
    /// From `format.*` options (DataFusion's names), with DataFusion's defaults. A character may
    /// be written as an escape, as DuckDB and Spark read them: `\t` (tab), `\\` (backslash),
    /// `\xHH` (the byte HH).
    pub fn from_options(options: &HashMap<String, String>) -> Result<Self> {
        let byte = |key: &str| -> Result<Option<u8>> {
            options.get(key).map(|v| character(key, v)).transpose()
        };
        Ok(Self {
            has_header: options
                .get("format.has_header")
                .is_none_or(|v| v.eq_ignore_ascii_case("true")),
            delimiter: byte("format.delimiter")?.unwrap_or(b','),
            quote: byte("format.quote")?.unwrap_or(b'"'),
            escape: byte("format.escape")?,
            comment: byte("format.comment")?,
            newlines_in_values: options
                .get("format.newlines_in_values")
                .is_some_and(|v| v.eq_ignore_ascii_case("true")),
        })
    }

    /// `options` with the dialect's characters given as byte values, which DataFusion's CSV
    /// options read as such (`9` is the tab), so its format, made from them, agrees with this one.
    pub fn datafusion_options(&self, options: &HashMap<String, String>) -> HashMap<String, String> {
        let mut out = options.clone();
        let bytes = [
            Some(self.delimiter),
            Some(self.quote),
            self.escape,
            self.comment,
        ];
        for (key, byte) in CHARACTER_OPTIONS.into_iter().zip(bytes) {
            if let Some(byte) = byte.filter(|_| options.contains_key(key)) {
                out.insert(key.to_string(), byte.to_string());
            }
        }
        out
    }
}

/// One dialect character from its option's text: a single byte, `\t`, `\\` or `\xHH`.
fn character(key: &str, value: &str) -> Result<u8> {
    let decoded = match value.as_bytes() {
        [byte] => Some(*byte),
        b"\\t" => Some(b'\t'),
        b"\\\\" => Some(b'\\'),
        [b'\\', b'x', high, low] if high.is_ascii_hexdigit() && low.is_ascii_hexdigit() => {
            u8::from_str_radix(&value[2..], 16).ok()
        }
        _ => None,
    };
    decoded.ok_or_else(|| {
        DataFusionError::Plan(format!(
            "'{key}' must be a single character, got '{value}'; write a tab as '\\t' or \
             E'\\t', a backslash as '\\\\', another byte as '\\x' and two hex digits ('\\x01')"
        ))
    })
}
