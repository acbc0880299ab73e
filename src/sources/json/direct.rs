//! Decodes a batch of JSON records straight into the scanned columns when they are all flat
//! (text, 64-bit integers, doubles, booleans): one pass over each record, and the fields the query
//! does not read (a nested context, a session id) are stepped over without being copied.
//!
//! arrow-json's decoder first writes every value of every record to its tape and then builds the
//! columns from the tape; on the reference export that was a fifth of the interactions job.
//!
//! This decoder accepts only what it decodes exactly as arrow-json does (in its "coerce
//! primitive" mode) and declines the whole batch otherwise: a string in a numeric column, a
//! number that is not plain JSON, a surrogate escape, an escaped key, a field given twice, bytes
//! that are not UTF-8, separators arrow-json tolerates but JSON does not. The opener then decodes
//! that batch with arrow-json, which finds and names the bad records. A record that is not JSON
//! at all by serde_json's judgement (the one schema inference applies) is reported as such, so
//! that a trailing comma, which arrow-json lets through, is a bad record with declared columns as
//! it is with inferred ones. The differential test checks that both decoders give the same batch
//! whenever this one accepts, and that this one declines every batch arrow-json rejects.

use std::sync::Arc;

use datafusion::arrow::array::{
    ArrayRef, BooleanBuilder, Float64Builder, Int64Builder, LargeStringBuilder, StringBuilder,
    StringViewBuilder,
};
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};

use super::cursor::{Cursor, Declined, QuotedName, Step};
use super::fit::{self, Fit, Shape};
use super::infer::{Inferred, json_syntax_error};
use super::records::{Piece, Window};

/// Decodes batches of records of one projected schema.
#[derive(Debug)]
pub struct DirectDecoder {
    schema: SchemaRef,
    names: Vec<Box<[u8]>>,
    /// Each column's name between quotes, when no character of it needs escaping.
    quoted: Vec<Option<QuotedName>>,
    /// When the columns come from a sample: the type every record must fit (see [`super::fit`]).
    shape: Option<Checked>,
}

/// The sample's record type, and which of its fields are columns here.
#[derive(Debug)]
struct Checked {
    shape: Arc<Shape>,
    /// Per field of the shape: the column it is decoded into, if any.
    column_of: Vec<Option<usize>>,
    /// Per column: whether decoding a value into it checks it fits (a text column takes every
    /// scalar, as text does in inference, and declines the rest); others are checked first.
    decoding_checks: Vec<bool>,
}

/// A column being built.
enum Column {
    Utf8View(StringViewBuilder),
    Utf8(StringBuilder),
    LargeUtf8(LargeStringBuilder),
    Int64(Int64Builder),
    Float64(Float64Builder),
    Boolean(BooleanBuilder),
}

/// Why a batch is not decoded here.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// Left to arrow-json, which decodes it or names the bad records.
    Declined,
    /// These records (index in the batch, reason) are not JSON: bad records, whatever arrow-json
    /// would make of them (it lets a trailing comma through, for one).
    Invalid(Vec<(usize, String)>),
    /// This record (index in the batch) does not fit the sample's schema at this field.
    Misfit(usize, String),
}

impl Column {
    /// A builder for `rows` values of `data_type`; None for a type this decoder does not write.
    fn new(data_type: &DataType, rows: usize) -> Option<Self> {
        Some(match data_type {
            DataType::Utf8View => Self::Utf8View(StringViewBuilder::with_capacity(rows)),
            DataType::Utf8 => Self::Utf8(StringBuilder::with_capacity(rows, rows * 8)),
            DataType::LargeUtf8 => {
                Self::LargeUtf8(LargeStringBuilder::with_capacity(rows, rows * 8))
            }
            DataType::Int64 => Self::Int64(Int64Builder::with_capacity(rows)),
            DataType::Float64 => Self::Float64(Float64Builder::with_capacity(rows)),
            DataType::Boolean => Self::Boolean(BooleanBuilder::with_capacity(rows)),
            _ => return None,
        })
    }

    fn append_null(&mut self) {
        match self {
            Self::Utf8View(b) => b.append_null(),
            Self::Utf8(b) => b.append_null(),
            Self::LargeUtf8(b) => b.append_null(),
            Self::Int64(b) => b.append_null(),
            Self::Float64(b) => b.append_null(),
            Self::Boolean(b) => b.append_null(),
        }
    }

    /// Text (a JSON string's, unescaped, or a literal's) for a text column; a string in any
    /// other column is for arrow-json to parse or refuse.
    fn append_text(&mut self, text: &str) -> Step {
        match self {
            Self::Utf8View(b) => b.append_value(text),
            Self::Utf8(b) => b.append_value(text),
            Self::LargeUtf8(b) => b.append_value(text),
            _ => return Err(Declined),
        }
        Ok(())
    }

    /// A JSON number, as its literal (already checked to be a plain JSON number).
    fn append_number(&mut self, literal: &str, integral: bool) -> Step {
        match self {
            Self::Int64(b) if integral => b.append_value(literal.parse().map_err(|_| Declined)?),
            Self::Float64(b) => {
                let value: f64 = literal.parse().map_err(|_| Declined)?;
                if !value.is_finite() {
                    return Err(Declined);
                }
                b.append_value(value)
            }
            Self::Int64(_) | Self::Boolean(_) => return Err(Declined),
            _ => return self.append_text(literal),
        }
        Ok(())
    }

    fn append_bool(&mut self, value: bool) -> Step {
        match self {
            Self::Boolean(b) => {
                b.append_value(value);
                Ok(())
            }
            _ => self.append_text(if value { "true" } else { "false" }),
        }
    }

    fn finish(self) -> ArrayRef {
        match self {
            Self::Utf8View(mut b) => Arc::new(b.finish()),
            Self::Utf8(mut b) => Arc::new(b.finish()),
            Self::LargeUtf8(mut b) => Arc::new(b.finish()),
            Self::Int64(mut b) => Arc::new(b.finish()),
            Self::Float64(mut b) => Arc::new(b.finish()),
            Self::Boolean(mut b) => Arc::new(b.finish()),
        }
    }
}

impl DirectDecoder {
    /// A decoder for `schema`, or None when a column is of a type it does not write (or not
    /// nullable: arrow-json's handling of a missing value is then an error to report).
    pub fn for_schema(schema: &SchemaRef) -> Option<Self> {
        let flat = schema
            .fields()
            .iter()
            .all(|f| f.is_nullable() && Column::new(f.data_type(), 0).is_some());
        if !flat {
            return None;
        }
        let names: Vec<Box<[u8]>> = schema
            .fields()
            .iter()
            .map(|f| f.name().as_bytes().into())
            .collect();
        let quoted = names.iter().map(|name| QuotedName::new(name)).collect();
        Some(Self {
            schema: Arc::clone(schema),
            names,
            quoted,
            shape: None,
        })
    }

    /// The same decoder, also checking that every record fits `shape` (the record type the
    /// columns were inferred from; every column is one of its fields).
    pub fn with_shape(mut self, shape: Arc<Shape>) -> Self {
        let column_of = (0..shape.len())
            .map(|i| self.names.iter().position(|n| **n == *shape.name(i)))
            .collect();
        let mut hint = 0;
        let decoding_checks = self
            .names
            .iter()
            .map(|name| {
                shape
                    .position(name, &mut hint)
                    .is_some_and(|i| *shape.kind(i) == Inferred::Text)
            })
            .collect();
        self.shape = Some(Checked {
            shape,
            column_of,
            decoding_checks,
        });
        self
    }

    /// The batch of `pieces` (whole objects in `window`), or why not.
    pub fn decode(&self, window: &Window, pieces: &[Piece]) -> Result<RecordBatch, Refusal> {
        let mut columns = self
            .schema
            .fields()
            .iter()
            .map(|f| Column::new(f.data_type(), pieces.len()))
            .collect::<Option<Vec<_>>>()
            .ok_or(Refusal::Declined)?;
        let mut record = RecordState {
            seen: vec![false; self.names.len()],
            hint: 0,
            scratch: String::new(),
        };
        let mut declined = false;
        let mut invalid = Vec::new();
        // The batch's bytes checked as UTF-8 in one pass (per record, the checks' setup cost
        // more than the checking); records are cut out of it at their brackets.
        let span = match (pieces.first(), pieces.last()) {
            (Some(first), Some(last)) => std::str::from_utf8(window.slice(first.start, last.end))
                .ok()
                .map(|text| (first.start, text)),
            _ => None,
        };
        for (index, piece) in pieces.iter().enumerate() {
            let bytes = window.slice(piece.start, piece.end);
            let text = match span {
                Some((start, text)) => {
                    text.get((piece.start - start) as usize..(piece.end - start) as usize)
                }
                None => std::str::from_utf8(bytes).ok(),
            };
            if !declined
                && let Some(text) = text
                && self.record(text, &mut columns, &mut record).is_ok()
            {
                continue;
            }
            // The batch is left to arrow-json from here on; the rest of it is only checked to
            // find the records that are not JSON at all (arrow-json lets some through), and
            // those that do not fit the sample. Most records pass this plain pass, and only the
            // others go to inference's judge.
            declined = true;
            if let Some(checked) = &self.shape {
                match fit::check_record(&checked.shape, bytes) {
                    Fit::Fits => {}
                    Fit::Invalid(reason) => invalid.push((index, reason)),
                    Fit::Misfit(field) => return Err(Refusal::Misfit(index, field)),
                }
            } else if !text.is_some_and(well_formed)
                && let Some(reason) = json_syntax_error(bytes)
            {
                invalid.push((index, reason));
            }
        }
        if !invalid.is_empty() {
            return Err(Refusal::Invalid(invalid));
        }
        if declined {
            return Err(Refusal::Declined);
        }
        let arrays: Vec<ArrayRef> = columns.into_iter().map(Column::finish).collect();
        let options = RecordBatchOptions::new().with_row_count(Some(pieces.len()));
        RecordBatch::try_new_with_options(Arc::clone(&self.schema), arrays, &options)
            .map_err(|_| Refusal::Declined)
    }

    /// Decodes one record (one object and blanks around it) into one row of `columns`.
    fn record(&self, text: &str, columns: &mut [Column], state: &mut RecordState) -> Step {
        let mut at = Cursor::new(text);
        state.seen.fill(false);
        at.blanks();
        at.expect(b'{')?;
        at.members(b'}', |at| {
            let Some(checked) = &self.shape else {
                let field = match self.expected(state.hint) {
                    Some((f, quoted)) if at.known_key(quoted)? => {
                        state.hint = f + 1;
                        Some(f)
                    }
                    _ => self.field(unescaped_key(at)?, &mut state.hint),
                };
                return match field {
                    Some(f) if std::mem::replace(&mut state.seen[f], true) => Err(Declined),
                    Some(f) => at.value_into(&mut columns[f], &mut state.scratch),
                    None => at.skip_value(0),
                };
            };
            // Records list the sample's fields in the same order, so the field after the last
            // one found is usually next: its quoted name is matched in place. Otherwise one
            // lookup among the sample's fields. Then the column, if the field is one.
            let i = match checked.shape.expected(state.hint) {
                Some((i, quoted)) if at.known_key(quoted)? => {
                    state.hint = i + 1;
                    i
                }
                _ => checked
                    .shape
                    .position(unescaped_key(at)?, &mut state.hint)
                    .ok_or(Declined)?,
            };
            let kind = checked.shape.kind(i);
            let checked = match checked.column_of[i] {
                Some(f) if std::mem::replace(&mut state.seen[f], true) => return Err(Declined),
                Some(f) if checked.decoding_checks[f] => {
                    return at.value_into(&mut columns[f], &mut state.scratch);
                }
                Some(f) => {
                    // Checked on a copy, then decoded: a value the column would take may still
                    // widen the sample's type (`-0` is a float to inference).
                    let checked = fit::value(&mut at.clone(), kind, 0);
                    if checked.is_ok() {
                        at.value_into(&mut columns[f], &mut state.scratch)?;
                    }
                    checked
                }
                None => fit::value(at, kind, 0),
            };
            // A record that does not fit (or that the walk is unsure of) declines: the batch's
            // own check then says which it is, with the field's path.
            checked.map_err(|_| Declined)
        })?;
        at.end()?;
        for (column, seen) in columns.iter_mut().zip(&state.seen) {
            if !seen {
                column.append_null();
            }
        }
        Ok(())
    }

    /// The column records usually hold after the one before `hint`, with its quoted name.
    fn expected(&self, hint: usize) -> Option<(usize, &QuotedName)> {
        let column = if hint < self.quoted.len() { hint } else { 0 };
        Some((column, self.quoted.get(column)?.as_ref()?))
    }

    /// The column named `key`, trying first the one after the last found (records of an export
    /// usually list their fields in the same order).
    fn field(&self, key: &[u8], hint: &mut usize) -> Option<usize> {
        let start = (*hint).min(self.names.len());
        (start..self.names.len())
            .chain(0..start)
            .find(|&f| *self.names[f] == *key)
            .inspect(|&f| *hint = f + 1)
    }
}

/// The next member's name, read as written; arrow-json matches the unescaped name, so an escaped
/// one is for it to read.
fn unescaped_key<'a>(at: &mut Cursor<'a>) -> Step<&'a [u8]> {
    let key = at.key()?;
    if key.contains('\\') {
        return Err(Declined);
    }
    Ok(key.as_bytes())
}

/// Whether `text` is one object by this decoder's grammar (stricter than JSON's in a few places
/// — a surrogate escape, deep nesting — where the judge is asked instead).
fn well_formed(text: &str) -> bool {
    let mut at = Cursor::new(text);
    at.blanks();
    at.peek() == Some(b'{') && at.skip_value(0).is_ok() && at.end().is_ok()
}

/// Per-batch scratch reused record after record.
struct RecordState {
    seen: Vec<bool>,
    hint: usize,
    scratch: String,
}

/// Decoding a value where the cursor stands, into a column of this decoder.
impl Cursor<'_> {
    /// Reads one value into `column`.
    fn value_into(&mut self, column: &mut Column, scratch: &mut String) -> Step {
        match self.peek().ok_or(Declined)? {
            b'"' => {
                self.advance(1);
                let text = self.string(scratch)?;
                column.append_text(text)
            }
            b'-' | b'0'..=b'9' => {
                let (literal, integral) = self.number()?;
                column.append_number(literal, integral)
            }
            b't' => {
                self.literal("true")?;
                column.append_bool(true)
            }
            b'f' => {
                self.literal("false")?;
                column.append_bool(false)
            }
            b'n' => {
                self.literal("null")?;
                column.append_null();
                Ok(())
            }
            _ => Err(Declined),
        }
    }
}

#[cfg(test)]
mod tests;
