//! The CSV dialect writer, round trip: rows of text (every Arrow string type), integers, floats
//! and nulls are encoded by pengine, then read back by the `csv` crate configured for
//! Personalize's dialect (as tests/common/mod.rs reads the parts). Every value must come back
//! exactly, except line breaks in text, which become one space each (and are counted); one
//! record per line, the same number of fields in each.
#![no_main]

use std::sync::Arc;

use arbitrary::{Result, Unstructured};
use arrow::array::{
    ArrayRef, Float64Array, Int64Array, LargeStringArray, StringArray, StringViewArray,
};
use libfuzzer_sys::fuzz_target;
use pengine::personalize::coerce::Coerced;
use pengine::sink::csv_dialect::{DialectChanges, EncodedRows, encode};

/// One column as generated, with the values it holds.
#[derive(Debug)]
enum Column {
    Text(Vec<Option<String>>),
    Long(Vec<Option<i64>>),
    Float(Vec<Option<f64>>),
    Null,
}

/// Characters the dialect treats specially, and some it must leave alone.
const SPECIAL: &[char] = &[
    ',', '"', '\\', '\n', '\r', ' ', '\t', '\'', 'a', 'é', '\u{feff}', '\u{2028}', '\u{85}', '\0',
    '\u{b}', '\u{c}', '|', '#',
];

fn text(u: &mut Unstructured) -> Result<String> {
    if u.arbitrary()? {
        u.arbitrary()
    } else {
        let len = u.int_in_range(0..=12)?;
        (0..len).map(|_| u.choose(SPECIAL).copied()).collect()
    }
}

/// `rows` values, about one in five null.
fn values<T>(
    u: &mut Unstructured,
    rows: usize,
    mut value: impl FnMut(&mut Unstructured) -> Result<T>,
) -> Result<Vec<Option<T>>> {
    (0..rows)
        .map(|_| {
            if u.ratio(1, 5)? {
                Ok(None)
            } else {
                value(u).map(Some)
            }
        })
        .collect()
}

fn column(u: &mut Unstructured, rows: usize) -> Result<Column> {
    Ok(match u.int_in_range(0..=3)? {
        0 => Column::Text(values(u, rows, text)?),
        1 => Column::Long(values(u, rows, |u| u.arbitrary())?),
        2 => Column::Float(values(u, rows, |u| u.arbitrary())?),
        _ => Column::Null,
    })
}

fn coerced(u: &mut Unstructured, column: &Column, rows: usize) -> Result<Coerced> {
    Ok(match column {
        Column::Text(v) => {
            let strs = v.iter().map(Option::as_deref);
            let array: ArrayRef = match u.int_in_range(0..=2)? {
                0 => Arc::new(strs.collect::<StringArray>()),
                1 => Arc::new(strs.collect::<LargeStringArray>()),
                _ => Arc::new(strs.collect::<StringViewArray>()),
            };
            Coerced::Text(array)
        }
        Column::Long(v) => Coerced::Long(Int64Array::from(v.clone())),
        Column::Float(v) => Coerced::Float(Float64Array::from(v.clone())),
        Column::Null => Coerced::Null(rows),
    })
}

/// What the reader must give back for one value.
fn expected(column: &Column, row: usize) -> String {
    match column {
        Column::Text(v) => v[row]
            .as_deref()
            .unwrap_or("")
            .replace("\r\n", " ")
            .replace(['\r', '\n'], " "),
        Column::Long(v) => v[row].map(|x| x.to_string()).unwrap_or_default(),
        Column::Float(_) | Column::Null => String::new(),
    }
}

fn line_breaks(column: &Column) -> u64 {
    match column {
        Column::Text(v) => v
            .iter()
            .flatten()
            .filter(|s| s.contains(['\r', '\n']))
            .count() as u64,
        _ => 0,
    }
}

fn run(u: &mut Unstructured) -> Result<()> {
    // Every dataset has at least two columns (an id and one more).
    let width = u.int_in_range(2..=6)?;
    let rows = u.int_in_range(0..=8)?;
    let columns: Vec<Column> = (0..width).map(|_| column(u, rows)).collect::<Result<_>>()?;
    let arrays: Vec<Coerced> = columns
        .iter()
        .map(|c| coerced(u, c, rows))
        .collect::<Result<_>>()?;

    // Appending to rows already in the buffer, as a part does batch after batch.
    let mut out = EncodedRows::default();
    let prefix = "x,y\n";
    out.bytes.extend_from_slice(prefix.as_bytes());
    let mut changes = DialectChanges::new(width);
    encode(&arrays, &mut out, &mut changes);

    let text = std::str::from_utf8(&out.bytes).expect("UTF-8");
    assert_eq!(out.row_ends.len(), rows);
    assert_eq!(
        out.row_ends.last().copied().unwrap_or(prefix.len()),
        text.len()
    );
    assert_eq!(
        text.matches('\n').count(),
        rows + 1,
        "one record per line: {text:?}"
    );
    for end in &out.row_ends {
        assert_eq!(out.bytes[end - 1], b'\n');
    }
    let counted: Vec<u64> = columns.iter().map(line_breaks).collect();
    assert_eq!(changes.line_breaks_replaced, counted);

    // From the file's start, header included, as Personalize reads a part (a reader strips a
    // byte-order mark only there, so a value starting with U+FEFF must not be first).
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .escape(Some(b'\\'))
        .double_quote(false)
        .from_reader(&out.bytes[..]);
    let mut records = reader.records();
    for row in 0..rows {
        let record = records
            .next()
            .unwrap_or_else(|| panic!("row {row} missing: {text:?}"))
            .expect("the reader reads every row");
        assert_eq!(record.len(), width, "row {row}: {record:?} in {text:?}");
        let line_start = if row == 0 {
            prefix.len()
        } else {
            out.row_ends[row - 1]
        };
        assert_eq!(
            record.position().expect("a position").byte() as usize,
            line_start,
            "row {row} does not start its own line: {text:?}"
        );
        for (index, column) in columns.iter().enumerate() {
            let got = &record[index];
            match column {
                Column::Float(v) => match v[row] {
                    None => assert_eq!(got, ""),
                    Some(x) => {
                        let back: f64 = got.parse().unwrap_or_else(|_| panic!("float {got:?}"));
                        assert!(
                            back.to_bits() == x.to_bits() || (back.is_nan() && x.is_nan()),
                            "{x:?} written as {got:?}"
                        );
                    }
                },
                _ => assert_eq!(got, expected(column, row), "row {row} column {index}"),
            }
        }
    }
    assert!(records.next().is_none(), "extra records in {text:?}");
    Ok(())
}

fuzz_target!(|data: &[u8]| {
    let _ = run(&mut Unstructured::new(data));
});
