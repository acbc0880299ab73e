//! The CSV dialect of a file's first lines: delimiter, header or not (by the kinds of values in
//! the first row against the others), values spanning lines.

use super::{CsvGuess, HEAD_BYTES};

/// Guesses the delimiter (the one giving the most consistent field count) and whether the first
/// row is a header.
pub fn guess_csv(head: &[u8]) -> CsvGuess {
    let text = String::from_utf8_lossy(head);
    // Drop a last line cut by the sniff.
    let text = match text.rfind('\n') {
        Some(end) if head.len() as u64 >= HEAD_BYTES => &text[..end],
        _ => &text[..],
    };
    let mut best: Option<(usize, char, Vec<Vec<String>>)> = None;
    for delimiter in [',', '\t', ';', '|'] {
        let records = read_records(text, delimiter);
        let Some(first) = records.first() else {
            continue;
        };
        let width = first.len();
        if width < 2 {
            continue;
        }
        let consistent = records.iter().filter(|r| r.len() == width).count();
        let score = consistent * width;
        if best.as_ref().is_none_or(|(s, _, _)| score > *s) {
            best = Some((score, delimiter, records));
        }
    }
    let Some((_, delimiter, records)) = best else {
        return CsvGuess {
            delimiter: ',',
            has_header: true,
            header_reason: "one column only; assumed a header row".into(),
            newlines_in_values: false,
        };
    };
    let newlines_in_values = records.iter().flatten().any(|v| v.contains('\n'));
    let (has_header, header_reason) = header_guess(&records);
    CsvGuess {
        delimiter,
        has_header,
        header_reason,
        newlines_in_values,
    }
}

fn read_records(text: &str, delimiter: char) -> Vec<Vec<String>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .delimiter(delimiter as u8)
        .from_reader(text.as_bytes());
    reader
        .records()
        .take(200)
        .filter_map(|r| r.ok())
        .map(|r| r.iter().map(str::to_string).collect())
        .collect()
}

#[derive(PartialEq, Clone, Copy)]
enum CellKind {
    Empty,
    Number,
    Date,
    Text,
}

fn cell_kind(value: &str) -> CellKind {
    let v = value.trim();
    if v.is_empty() {
        CellKind::Empty
    } else if v.parse::<f64>().is_ok() {
        CellKind::Number
    } else if crate::crawl::profile::parse_time_text(v).is_some() {
        CellKind::Date
    } else {
        CellKind::Text
    }
}

/// A header row has a text cell above a column of numbers or dates, and no empty cells.
fn header_guess(records: &[Vec<String>]) -> (bool, String) {
    let Some((first, rest)) = records.split_first() else {
        return (true, "no rows to compare; assumed a header row".into());
    };
    if rest.is_empty() {
        return (true, "only one row; assumed a header row".into());
    }
    if first.iter().any(|c| c.trim().is_empty()) {
        return (false, "the first row has empty cells, so it is data".into());
    }
    for (i, cell) in first.iter().enumerate() {
        let kinds: Vec<CellKind> = rest
            .iter()
            .filter_map(|r| r.get(i))
            .map(|v| cell_kind(v))
            .filter(|k| *k != CellKind::Empty)
            .collect();
        let Some(&kind) = kinds.first() else { continue };
        if kind != CellKind::Text && kinds.iter().all(|k| *k == kind) {
            let head = cell_kind(cell);
            return if head == CellKind::Text {
                (
                    true,
                    format!("column {} holds values below a text cell '{cell}'", i + 1),
                )
            } else {
                (
                    false,
                    format!("the cell '{cell}' in the first row looks like the values below it"),
                )
            };
        }
    }
    let names_like = first.iter().all(|c| {
        c.chars()
            .next()
            .is_some_and(|ch| ch.is_alphabetic() || ch == '_')
            && c.len() <= 64
            && !c.contains(char::is_whitespace)
    });
    let distinct = first
        .iter()
        .collect::<std::collections::BTreeSet<_>>()
        .len()
        == first.len();
    if names_like && distinct {
        (
            true,
            "every column is text; the first row looks like names, so it was taken as the \
             header"
                .into(),
        )
    } else {
        (
            false,
            "every column is text and the first row does not look like names".into(),
        )
    }
}
