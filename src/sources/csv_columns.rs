//! What a CSV file's records say about its columns: the header's names and each column's kind,
//! read by pengine's own record reader, for a whole file or one byte range of it. Below the CSV
//! format and its inference in ranges, which both build on it.

use std::io::Read;

use datafusion::arrow::datatypes::DataType;
use serde::{Deserialize, Serialize};

use super::bad_records::BadRecordPolicy;
use super::csv_format::ExportCsvFormat;
use super::csv_records::{CsvRecord, CsvRecords, Next};

/// What the values of one column say about its type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ColumnKind {
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
        if !self.not_bool && !is_boolean(value) {
            self.not_bool = true;
        }
    }

    /// Whether observing `value` leaves this column's type as it is, whatever else is observed
    /// with it: then a sample's type is also every record's when each of them is admitted.
    pub(super) fn admits(&self, value: &str) -> bool {
        if value.is_empty() {
            return true;
        }
        match self.data_type() {
            // A column the sample saw empty only: a value that makes any column text.
            _ if !self.seen => {
                !is_boolean(value) && !is_plain_number(value) && !is_plain_integer(value)
            }
            DataType::Int64 => is_plain_integer(value),
            DataType::Boolean => is_boolean(value),
            DataType::Float64 => is_plain_number(value),
            _ => true,
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

/// `true` or `false`, in any case.
fn is_boolean(value: &str) -> bool {
    value.eq_ignore_ascii_case("true") || value.eq_ignore_ascii_case("false")
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

/// Column names and kinds of one file (or of its first records).
pub(super) struct FileColumns {
    pub(super) names: Vec<String>,
    pub(super) kinds: Vec<ColumnKind>,
    /// Records read (the header not counted).
    pub(super) records: usize,
    /// Whether the read stopped at the format's inference limit, records left unread.
    pub(super) stopped_at_limit: bool,
    /// Whether a value read holds a line break (quoted).
    pub(super) line_breaks: bool,
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
    records: usize,
    stopped_at_limit: bool,
    line_breaks: bool,
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
        self.records += later.records;
        self.stopped_at_limit |= later.stopped_at_limit;
        self.line_breaks |= later.line_breaks;
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
        FileColumns {
            names,
            kinds,
            records: self.records,
            stopped_at_limit: self.stopped_at_limit,
            line_breaks: self.line_breaks,
        }
    }
}

/// Reads the records of one file, every one or up to the format's inference limit (bad ones: an
/// error under `fail`, left out under `skip`).
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
/// record), up to the format's inference limit. `lines_before`: the lines before the records,
/// added to a bad record's line.
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
        if format
            .infer_limit
            .is_some_and(|limit| columns.records >= limit)
        {
            columns.stopped_at_limit = true;
            break;
        }
        columns.records += 1;
        let kinds = &mut columns.kinds;
        if record.len() > kinds.len() {
            kinds.resize(record.len(), ColumnKind::default());
        }
        for (i, kind) in kinds.iter_mut().enumerate() {
            let value = record.get(i);
            kind.observe(value);
            columns.line_breaks |= value.contains(['\n', '\r']);
        }
    }
    Ok(Some(columns))
}

/// The columns a sample of a source's first records gave, which the scan checks every other
/// record against ([`crate::sources::sampled`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CsvSample {
    /// The table's column names (also the number of fields a record may have).
    pub names: Vec<String>,
    pub kinds: Vec<ColumnKind>,
    /// Records the sample read.
    pub sampled: usize,
}

impl CsvSample {
    /// The first of `columns` (file column indexes) whose value in `record` could change its
    /// type, or a field past the sample's columns; None when the record fits.
    pub(super) fn misfit(&self, record: &CsvRecord<'_>, columns: &[usize]) -> Option<String> {
        if record.len() > self.names.len() {
            return Some(format!("column_{}", self.names.len() + 1));
        }
        columns
            .iter()
            .find(|&&i| {
                i < record.len() && !self.kinds.get(i).is_some_and(|k| k.admits(record.get(i)))
            })
            .map(|&i| self.names[i].clone())
    }

    /// What in a later file's header could change the table's names: a name past the sample's
    /// columns (the longest header names them), or one named twice (an error); None when it
    /// leaves them as they are.
    pub(super) fn header_misfit(&self, record: &CsvRecord<'_>) -> Option<String> {
        if record.len() > self.names.len() {
            return Some(record.get(self.names.len()).to_string());
        }
        let names: Vec<String> = (0..record.len())
            .map(|i| record.get(i).to_string())
            .collect();
        let twice = (1..names.len()).find(|&i| names[..i].contains(&names[i]))?;
        Some(names[twice].clone())
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    const VALUES: [&str; 14] = [
        "",
        "0",
        "12",
        "-3",
        "007",
        "1.5",
        "1e3",
        ".5",
        "true",
        "FALSE",
        "yes",
        "abc",
        "NaN",
        "99999999999999999999",
    ];

    fn kind_of(values: &[&str]) -> ColumnKind {
        let mut kind = ColumnKind::default();
        values.iter().for_each(|v| kind.observe(v));
        kind
    }

    /// Whatever the sample saw, values it admits leave its type as it is, one at a time and
    /// together; and a value it refuses would change the type of a column that saw it alone.
    #[test]
    fn values_a_sample_admits_leave_its_type_as_it_is() {
        let samples: Vec<Vec<&str>> = VALUES
            .iter()
            .flat_map(|a| VALUES.iter().map(move |b| vec![*a, *b]))
            .collect();
        for sample in &samples {
            let kind = kind_of(sample);
            let admitted: Vec<&str> = VALUES.into_iter().filter(|v| kind.admits(v)).collect();
            for later in &admitted {
                let mut all = sample.clone();
                all.push(later);
                assert_eq!(kind_of(&all).data_type(), kind.data_type(), "{all:?}");
            }
            let mut all = sample.clone();
            all.extend(&admitted);
            assert_eq!(kind_of(&all).data_type(), kind.data_type(), "{all:?}");
            for refused in VALUES.iter().filter(|v| !kind.admits(v)) {
                let mut all = sample.clone();
                all.push(refused);
                let seen_alone = kind_of(&[refused]).data_type();
                assert!(
                    kind_of(&all).data_type() != kind.data_type() || !kind.seen,
                    "{sample:?} refused {refused} ({seen_alone})"
                );
            }
        }
    }

    #[test]
    fn a_record_past_the_sample_s_columns_or_a_header_naming_new_ones_is_a_misfit() {
        let sample = CsvSample {
            names: vec!["id".into(), "age".into()],
            kinds: vec![kind_of(&["1"]), kind_of(&["20"])],
            sampled: 3,
        };
        let options = std::collections::HashMap::new();
        let dialect = crate::sources::csv_options::CsvDialect::from_options(&options).unwrap();
        // Each line is a file's first record (a record wider than the first one of its file is
        // a bad record, not a misfit).
        let got: Vec<_> = [
            "id,age",
            "4,21",
            "5,x",
            "6,22,extra",
            "id,id",
            "id,age,segment",
        ]
        .into_iter()
        .map(|line| {
            let mut records = CsvRecords::new(line.as_bytes(), "f.csv", &dialect, 1 << 20);
            let Next::Record(record) = records.next_record().unwrap() else {
                panic!("{line}: not a record");
            };
            (
                sample.misfit(&record, &[0, 1]),
                sample.misfit(&record, &[0]),
                sample.header_misfit(&record),
            )
        })
        .collect();
        let s = |v: &str| Some(v.to_string());
        assert_eq!(
            got,
            [
                (s("id"), s("id"), None),
                (None, None, None),
                (s("age"), None, None),
                (s("column_3"), s("column_3"), s("extra")),
                (s("id"), s("id"), s("id")),
                (s("column_3"), s("column_3"), s("segment")),
            ]
        );
    }
}
