//! What a CSV file's records say about its columns: the header's names and each column's kind,
//! read by pengine's own record reader, for a whole file or one byte range of it. Below the CSV
//! format and its inference in ranges, which both build on it.

use std::io::Read;

use datafusion::arrow::datatypes::DataType;

use super::bad_records::BadRecordPolicy;
use super::csv_format::ExportCsvFormat;
use super::csv_records::{CsvRecords, Next};

/// What the values of one column say about its type.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct ColumnKind {
    seen: bool,
    not_integer: bool,
    not_float: bool,
    not_bool: bool,
}

impl ColumnKind {
    fn observe(&mut self, value: &str) {
        if value.is_empty() {
            return;
        }
        self.seen = true;
        if !self.not_integer && !is_plain_integer(value) {
            self.not_integer = true;
        }
        if !self.not_float && !is_plain_number(value) {
            self.not_float = true;
        }
        if !self.not_bool
            && !value.eq_ignore_ascii_case("true")
            && !value.eq_ignore_ascii_case("false")
        {
            self.not_bool = true;
        }
    }

    pub(super) fn merge(&mut self, other: ColumnKind) {
        self.seen |= other.seen;
        self.not_integer |= other.not_integer;
        self.not_float |= other.not_float;
        self.not_bool |= other.not_bool;
    }

    pub(super) fn data_type(&self) -> DataType {
        match self {
            k if !k.seen => DataType::Utf8,
            k if !k.not_integer => DataType::Int64,
            k if !k.not_bool => DataType::Boolean,
            k if !k.not_float => DataType::Float64,
            _ => DataType::Utf8,
        }
    }
}

/// `-12`, `0`, `345`, fitting 64 bits; not `007` (a code) or `+3`.
pub(super) fn is_plain_integer(value: &str) -> bool {
    let digits = value.strip_prefix('-').unwrap_or(value);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'))
        && value.parse::<i64>().is_ok()
}

/// A decimal number without a leading zero (`0.5`, `-12.25`, `1e3`); not `007.5`, `inf`, `NaN`.
pub(super) fn is_plain_number(value: &str) -> bool {
    let unsigned = value.strip_prefix('-').unwrap_or(value);
    let leading_zero =
        unsigned.len() > 1 && unsigned.starts_with('0') && unsigned.as_bytes()[1].is_ascii_digit();
    unsigned.starts_with(|c: char| c.is_ascii_digit() || c == '.')
        && !leading_zero
        && value
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
        && value.parse::<f64>().is_ok()
}

/// Column names and kinds of one file.
pub(super) struct FileColumns {
    pub(super) names: Vec<String>,
    pub(super) kinds: Vec<ColumnKind>,
}

#[cfg(test)]
impl FileColumns {
    /// Each column as `name: type`.
    pub(super) fn describe(&self) -> Vec<String> {
        let types = self.kinds.iter().map(ColumnKind::data_type);
        self.names
            .iter()
            .zip(types)
            .map(|(name, data_type)| format!("{name}: {data_type}"))
            .collect()
    }
}

/// What records of a file (all, or a byte range's) say about its columns: the header's names,
/// when they held it, and each column's kind.
#[derive(Default)]
pub(super) struct Columns {
    names: Option<Vec<String>>,
    kinds: Vec<ColumnKind>,
}

impl Columns {
    /// These records' columns, then `later`'s (the next byte range of the file).
    pub(super) fn then(mut self, later: Columns) -> Columns {
        self.names = self.names.or(later.names);
        if later.kinds.len() > self.kinds.len() {
            self.kinds.resize(later.kinds.len(), ColumnKind::default());
        }
        for (kind, seen) in self.kinds.iter_mut().zip(later.kinds) {
            kind.merge(seen);
        }
        self
    }

    /// The file's columns; a headerless file's named like DataFusion names them.
    pub(super) fn finish(self) -> FileColumns {
        let mut names = self.names.unwrap_or_default();
        let mut kinds = self.kinds;
        kinds.resize(kinds.len().max(names.len()), ColumnKind::default());
        while names.len() < kinds.len() {
            names.push(format!("column_{}", names.len() + 1));
        }
        FileColumns { names, kinds }
    }
}

/// Reads every record of one file (bad ones: an error under `fail`, left out under `skip`).
pub(super) fn infer_reader(
    reader: impl Read,
    file: &str,
    format: &ExportCsvFormat,
) -> std::result::Result<FileColumns, String> {
    let records = CsvRecords::new(reader, file, &format.dialect, format.max_record_bytes);
    let columns = infer_records(records, format.dialect.has_header, format, &|| Ok(0))?;
    Ok(columns.unwrap_or_default().finish())
}

/// The columns of `records` (a file, or a byte range of one: None when its end was inside a
/// record). `lines_before`: the lines before the records, added to a bad record's line.
pub(super) fn infer_records<R: Read>(
    mut records: CsvRecords<R>,
    mut header_pending: bool,
    format: &ExportCsvFormat,
    lines_before: &dyn Fn() -> std::result::Result<u64, String>,
) -> std::result::Result<Option<Columns>, String> {
    let mut columns = Columns::default();
    loop {
        let record = match records.next_record().map_err(|e| e.to_string())? {
            Next::End => break,
            Next::CutInRecord { .. } => return Ok(None),
            Next::Bad(mut bad) => {
                if format.bad_records.policy() == BadRecordPolicy::Fail
                    && let Some(line) = bad.line
                {
                    bad.line = Some(line + lines_before()?);
                }
                format.bad_records.seen_while_inferring(&bad)?;
                continue;
            }
            Next::Record(record) => record,
        };
        if std::mem::take(&mut header_pending) {
            let names: Vec<String> = (0..record.len())
                .map(|i| record.get(i).to_string())
                .collect();
            duplicate_header(&names)?;
            columns.names = Some(names);
            continue;
        }
        let kinds = &mut columns.kinds;
        if record.len() > kinds.len() {
            kinds.resize(record.len(), ColumnKind::default());
        }
        for (i, kind) in kinds.iter_mut().enumerate() {
            kind.observe(record.get(i));
        }
    }
    Ok(Some(columns))
}

/// A header naming one column twice cannot name a table's columns (DataFusion would only say
/// "duplicate qualified field name"): the error names it and how to name the columns instead.
fn duplicate_header(names: &[String]) -> std::result::Result<(), String> {
    for (second, name) in names.iter().enumerate() {
        if let Some(first) = names[..second].iter().position(|n| n == name) {
            return Err(format!(
                "the CSV header names the column '{name}' twice (columns {} and {}), so its \
                 columns cannot be told apart; name the {} columns yourself in the mapping file, \
                 the header line left out of the data: CREATE EXTERNAL TABLE t (column_1 \
                 VARCHAR, column_2 VARCHAR, ...) STORED AS CSV LOCATION '...' OPTIONS \
                 ('format.has_header' 'true')",
                first + 1,
                second + 1,
                names.len()
            ));
        }
    }
    Ok(())
}
