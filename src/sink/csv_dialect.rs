//! The CSV dialect Personalize reads: comma-separated UTF-8 without BOM, one record per line, an
//! unquoted header; a value that needs quoting goes in double quotes with `"` and `\` escaped by a
//! backslash; no line break inside any field (each becomes a space, counted); null is empty.

use std::io::Write;

use super::super::personalize::coerce::{Coerced, TextColumn};

/// What the dialect changed, per column, for the run report.
#[derive(Debug, Default, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DialectChanges {
    /// Values whose line breaks were replaced by spaces, per column index.
    pub line_breaks_replaced: Vec<u64>,
}

impl DialectChanges {
    pub fn new(columns: usize) -> Self {
        Self {
            line_breaks_replaced: vec![0; columns],
        }
    }

    pub fn add(&mut self, other: &DialectChanges) {
        for (a, b) in self
            .line_breaks_replaced
            .iter_mut()
            .zip(&other.line_breaks_replaced)
        {
            *a += b;
        }
    }
}

/// The header line, names unquoted, with its newline.
pub fn header<'a>(names: impl IntoIterator<Item = &'a str>) -> Vec<u8> {
    let mut line = names.into_iter().collect::<Vec<_>>().join(",").into_bytes();
    line.push(b'\n');
    line
}

/// Rows encoded into one buffer, with where each row ends, so a part can be cut at a row.
#[derive(Debug, Default)]
pub struct EncodedRows {
    pub bytes: Vec<u8>,
    /// `row_ends[i]` is the offset just past row `i`'s newline.
    pub row_ends: Vec<usize>,
}

/// Appends the rows of `columns` (all the same length) to `out`.
pub fn encode(columns: &[Coerced], out: &mut EncodedRows, changes: &mut DialectChanges) {
    let rows = columns.first().map_or(0, Coerced::len);
    let texts: Vec<Option<TextColumn<'_>>> = columns
        .iter()
        .map(|c| match c {
            Coerced::Text(a) => TextColumn::new(a.as_ref()),
            _ => None,
        })
        .collect();
    let mut ints = itoa::Buffer::new();
    out.row_ends.reserve(rows);
    for row in 0..rows {
        for (index, column) in columns.iter().enumerate() {
            if index > 0 {
                out.bytes.push(b',');
            }
            match column {
                Coerced::Text(_) => {
                    if let Some(value) = texts[index].as_ref().and_then(|t| t.get(row))
                        && write_text(value, &mut out.bytes)
                    {
                        changes.line_breaks_replaced[index] += 1;
                    }
                }
                Coerced::Long(a) => {
                    if a.is_valid(row) {
                        out.bytes
                            .extend_from_slice(ints.format(a.value(row)).as_bytes());
                    }
                }
                Coerced::Float(a) => {
                    if a.is_valid(row) {
                        let _ = write!(out.bytes, "{}", a.value(row));
                    }
                }
                Coerced::Null(_) => {}
            }
        }
        out.bytes.push(b'\n');
        out.row_ends.push(out.bytes.len());
    }
}

use datafusion::arrow::array::Array;

/// Writes one text value; returns true when line breaks were replaced.
pub fn write_text(value: &str, out: &mut Vec<u8>) -> bool {
    let bytes = value.as_bytes();
    let needs_quotes = bytes
        .iter()
        .any(|b| matches!(b, b',' | b'"' | b'\\' | b'\n' | b'\r'))
        || bytes.first().is_some_and(u8::is_ascii_whitespace)
        || bytes.last().is_some_and(u8::is_ascii_whitespace);
    if !needs_quotes {
        out.extend_from_slice(bytes);
        return false;
    }
    let mut replaced = false;
    out.push(b'"');
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\r' => {
                // \r\n is one line break.
                if bytes.get(i + 1) == Some(&b'\n') {
                    i += 1;
                }
                out.push(b' ');
                replaced = true;
            }
            b'\n' => {
                out.push(b' ');
                replaced = true;
            }
            b => out.push(b),
        }
        i += 1;
    }
    out.push(b'"');
    replaced
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Float64Array, Int64Array, StringArray};
    use std::sync::Arc;

    fn text(v: &str) -> String {
        let mut out = Vec::new();
        write_text(v, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn plain_values_are_not_quoted() {
        assert_eq!(text("Kitchen>Knives"), "Kitchen>Knives");
        assert_eq!(text("Crème brûlée"), "Crème brûlée");
    }

    #[test]
    fn quotes_backslashes_and_commas_use_backslash_escapes() {
        assert_eq!(text("a,b"), "\"a,b\"");
        assert_eq!(text("12\" knife"), "\"12\\\" knife\"");
        assert_eq!(text("C:\\tmp"), "\"C:\\\\tmp\"");
    }

    #[test]
    fn line_breaks_become_spaces() {
        let mut out = Vec::new();
        assert!(write_text("a\r\nb\nc\rd", &mut out));
        assert_eq!(String::from_utf8(out).unwrap(), "\"a b c d\"");
    }

    #[test]
    fn rows_nulls_and_numbers() {
        let columns = vec![
            Coerced::Text(Arc::new(StringArray::from(vec![Some("u1"), Some("x\ny")]))),
            Coerced::Long(Int64Array::from(vec![Some(1_709_301_600), None])),
            Coerced::Float(Float64Array::from(vec![Some(19.99), Some(1e20)])),
            Coerced::Null(2),
        ];
        let mut out = EncodedRows::default();
        let mut changes = DialectChanges::new(4);
        encode(&columns, &mut out, &mut changes);
        let s = String::from_utf8(out.bytes).unwrap();
        assert_eq!(s, "u1,1709301600,19.99,\n\"x y\",,100000000000000000000,\n");
        assert_eq!(out.row_ends, vec![21, s.len()]);
        assert_eq!(changes.line_breaks_replaced, vec![1, 0, 0, 0]);
        assert_eq!(header(["USER_ID", "ITEM_ID"]), b"USER_ID,ITEM_ID\n");
    }
}
