//! What a CSV file's records say about its columns: the header's names and each column's kind,
//! read by pengine's own record reader, for a whole file or one byte range of it. Below the CSV
//! format and its inference in ranges, which both build on it.

use std::io::Read;

use super::bad_records::BadRecordPolicy;
use super::csv_format::ExportCsvFormat;
use super::csv_kinds::ColumnKind;
use super::csv_records::{CsvRecords, Next};

/// Column names and kinds of one file (or of its first records).
pub(super) struct FileColumns {
    pub(super) names: Vec<String>,
    pub(super) kinds: Vec<ColumnKind>,
    /// Records read (the header not counted).
    pub(super) records: usize,
    /// Whether the read stopped at the format's inference limit, records left unread.
    pub(super) stopped_at_limit: bool,
    /// Whether a value read holds a line break (quoted); looked for only when reading up to a
    /// limit (a sample).
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
            Next::CutInRecord { .. } | Next::SegmentEndInRecord { .. } => return Ok(None),
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
            kind.observe(record.get(i));
        }
        // Only a sample decides from them (a full inference finds cuts in ranges instead).
        if format.infer_limit.is_some() && !columns.line_breaks {
            columns.line_breaks = (0..record.len()).any(|i| record.get(i).contains(['\n', '\r']));
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
