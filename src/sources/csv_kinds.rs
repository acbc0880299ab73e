//! What the values of a CSV column say about its type, and the rule a sample of the first records
//! sets for the rest ([`crate::sources::sampled`]): a value is admitted when it cannot change the
//! type a full inference gives. Below both inference (csv_columns.rs) and the format's settings
//! (csv_format.rs), which hold a sample.

use datafusion::arrow::datatypes::DataType;
use serde::{Deserialize, Serialize};

use super::csv_records::CsvRecord;

/// What the values of one column say about its type.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ColumnKind {
    seen: bool,
    not_integer: bool,
    not_float: bool,
    not_bool: bool,
}

impl ColumnKind {
    pub(super) fn observe(&mut self, value: &str) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::csv_records::{CsvRecords, Next};

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
