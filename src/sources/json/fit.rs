//! Checks that records fit a schema inferred from a sample, so the scan can read the export once.
//!
//! Inferring from every record means reading the export twice (once for the types, once for the
//! rows). A run instead infers the columns from the first records (see [`crate::sources::sampled`])
//! and its scan checks every other record against them: a record fits when merging its type into
//! the sample's ([`Inferred::merge`]) changes nothing. When every record fits, the schema of every
//! record is the sample's — same fields, same types, and the same field order, since the sample is
//! the first records in the order inference reads them — so the rows are exactly those of a full
//! inference. The first record that does not fit stops the scan with a misfit, and the run starts
//! again with a full inference.
//!
//! The walk is the direct decoder's grammar ([`super::cursor::Cursor`]), which is no looser than
//! serde_json's; where it is unsure (an escaped key, a surrogate escape, deep nesting, a huge
//! number) the record's type is taken by inference's own reader instead.

use std::sync::Arc;

use super::cursor::{Cursor, Declined, QuotedName};
use super::infer::{Inferred, json_syntax_error, record_type};

/// Nesting depth beyond which the walk leaves a record to inference's reader.
const MAX_DEPTH: usize = 64;

/// The record type a sample of the source's first records gave, which the rest must fit.
#[derive(Debug)]
pub struct Shape {
    record: Inferred,
    /// The record's fields (names as bytes, types), in order.
    fields: Vec<(Box<[u8]>, Inferred)>,
    /// Each field's name between quotes, as a record spells it when no escape is needed (see
    /// [`Cursor::known_key`]); None for a name that holds a character to escape.
    quoted: Vec<Option<QuotedName>>,
    /// Records the sample read.
    pub sampled: usize,
}

impl Shape {
    /// The shape of records whose merged type is `record` (an object), from `sampled` records.
    pub fn new(record: Inferred, sampled: usize) -> Arc<Self> {
        let fields = match &record {
            Inferred::Object(fields) => fields
                .iter()
                .map(|(name, kind)| (name.as_bytes().into(), kind.clone()))
                .collect(),
            _ => Vec::new(),
        };
        let quoted = fields
            .iter()
            .map(|(name, _): &(Box<[u8]>, Inferred)| QuotedName::new(name))
            .collect();
        Arc::new(Self {
            record,
            fields,
            quoted,
            sampled,
        })
    }

    /// The record type the sample gave.
    pub fn record(&self) -> &Inferred {
        &self.record
    }

    /// The index of the top-level field `name`, trying first the one after the last found.
    pub fn position(&self, name: &[u8], hint: &mut usize) -> Option<usize> {
        let start = (*hint).min(self.fields.len());
        let found = (start..self.fields.len())
            .chain(0..start)
            .find(|&f| *self.fields[f].0 == *name)?;
        *hint = found + 1;
        Some(found)
    }

    /// The field records usually hold after the one before `hint` (the first after the last),
    /// with its name as [`Cursor::known_key`] matches it.
    pub fn expected(&self, hint: usize) -> Option<(usize, &QuotedName)> {
        let field = if hint < self.fields.len() { hint } else { 0 };
        Some((field, self.quoted.get(field)?.as_ref()?))
    }

    /// Top-level fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    pub fn name(&self, field: usize) -> &[u8] {
        &self.fields[field].0
    }

    pub fn kind(&self, field: usize) -> &Inferred {
        &self.fields[field].1
    }
}

/// What checking one record found.
#[derive(Debug, PartialEq)]
pub enum Fit {
    Fits,
    /// The record is not JSON (the reason bad records are reported with).
    Invalid(String),
    /// The record's type widens the sample's, at this field (`a.b` for a nested one).
    Misfit(String),
}

/// Why the walk stopped.
#[derive(Debug)]
pub enum Stop {
    /// Not decided here: ask inference's reader.
    Unsure,
    /// The value at this field path does not fit.
    Misfit(String),
}

/// Checks one record (one object, blanks around it) against `shape`.
pub fn check_record(shape: &Shape, bytes: &[u8]) -> Fit {
    if let Ok(text) = std::str::from_utf8(bytes) {
        let mut at = Cursor::new(text);
        at.blanks();
        match value(&mut at, &shape.record, 0).and_then(|()| at.end().map_err(|_| Stop::Unsure)) {
            Ok(()) => return Fit::Fits,
            Err(Stop::Misfit(path)) if well_formed_from(text) => return Fit::Misfit(path),
            Err(_) => {}
        }
    }
    // The judge inference applies decides, then the record's own type is merged.
    if let Some(reason) = json_syntax_error(bytes) {
        return Fit::Invalid(reason);
    }
    match record_type(bytes) {
        Ok(own) => {
            let merged = shape.record.clone().merge(own);
            match first_difference(&shape.record, &merged, "") {
                None => Fit::Fits,
                Some(path) => Fit::Misfit(path),
            }
        }
        Err(reason) => Fit::Invalid(reason),
    }
}

/// Whether `text` is one well-formed object by the walk's grammar (a misfit found on the way is
/// only reported for a record that is JSON: a broken one is a bad record, not a new type).
fn well_formed_from(text: &str) -> bool {
    let mut at = Cursor::new(text);
    at.blanks();
    at.peek() == Some(b'{') && at.skip_value(0).is_ok() && at.end().is_ok()
}

/// The path of the first field whose type differs between `a` and `b` (same shape otherwise).
fn first_difference(a: &Inferred, b: &Inferred, path: &str) -> Option<String> {
    match (a, b) {
        (Inferred::Object(x), Inferred::Object(y)) => {
            for (name, kind) in y {
                let inner = join(path, name);
                match x.iter().find(|(n, _)| n == name) {
                    None => return Some(inner),
                    Some((_, old)) => {
                        if let Some(found) = first_difference(old, kind, &inner) {
                            return Some(found);
                        }
                    }
                }
            }
            None
        }
        (Inferred::List(x), Inferred::List(y)) => first_difference(x, y, &format!("{path}[]")),
        _ if a == b => None,
        _ => Some(if path.is_empty() {
            "(the record)".into()
        } else {
            path.into()
        }),
    }
}

fn join(path: &str, name: &str) -> String {
    if path.is_empty() {
        name.to_string()
    } else {
        format!("{path}.{name}")
    }
}

/// Reads one value at `at`, checking it fits `kind` (a null fits anything).
pub(super) fn value(at: &mut Cursor, kind: &Inferred, depth: usize) -> Result<(), Stop> {
    if depth > MAX_DEPTH {
        return Err(Stop::Unsure);
    }
    let misfit = || Err(Stop::Misfit(String::new()));
    match at.peek().ok_or(Stop::Unsure)? {
        b'n' => {
            at.advance(1);
            at.literal("ull").map_err(|_| Stop::Unsure)
        }
        b't' | b'f' => {
            let word = if at.peek() == Some(b't') {
                "true"
            } else {
                "false"
            };
            at.literal(word).map_err(|_| Stop::Unsure)?;
            match kind {
                Inferred::Bool | Inferred::Text => Ok(()),
                _ => misfit(),
            }
        }
        b'"' => {
            at.advance(1);
            at.string_end().map_err(|_| Stop::Unsure)?;
            match kind {
                Inferred::Text => Ok(()),
                _ => misfit(),
            }
        }
        b'-' | b'0'..=b'9' => {
            let (literal, integral) = at.number().map_err(|_| Stop::Unsure)?;
            match (kind, number_kind(literal, integral)) {
                (Inferred::Text, _)
                | (Inferred::Int, Inferred::Int)
                | (Inferred::Float, Inferred::Int | Inferred::Float) => Ok(()),
                _ => misfit(),
            }
        }
        b'[' => {
            let Inferred::List(item) = kind else {
                return misfit();
            };
            at.advance(1);
            members(at, b']', |at| {
                value(at, item, depth + 1).map_err(|stop| within(stop, "[]"))
            })
        }
        b'{' => {
            let Inferred::Object(fields) = kind else {
                return misfit();
            };
            at.advance(1);
            let mut hint = 0;
            members(at, b'}', |at| {
                let key = at.key().map_err(|_| Stop::Unsure)?;
                if key.contains('\\') {
                    return Err(Stop::Unsure);
                }
                let Some(kind) = find(fields, key, &mut hint) else {
                    return Err(Stop::Misfit(key.to_string()));
                };
                value(at, kind, depth + 1).map_err(|stop| within(stop, key))
            })
        }
        _ => Err(Stop::Unsure),
    }
}

/// The type serde_json's reading gives a number literal (what inference records for it): an
/// integer within i64 is an integer; a positive one beyond i64 but within u64 is text (an id); a
/// larger one, a negative one below i64, `-0`, a fraction or an exponent is a float.
fn number_kind(literal: &str, integral: bool) -> Inferred {
    if !integral {
        return Inferred::Float;
    }
    if let Some(digits) = literal.strip_prefix('-') {
        return match digits.parse::<u64>() {
            Ok(0) | Err(_) => Inferred::Float,
            Ok(n) if n <= i64::MIN.unsigned_abs() => Inferred::Int,
            Ok(_) => Inferred::Float,
        };
    }
    match literal.parse::<u64>() {
        Ok(n) if i64::try_from(n).is_ok() => Inferred::Int,
        Ok(_) => Inferred::Text,
        Err(_) => Inferred::Float,
    }
}

/// The members of an array or object after its opening bracket, each read by `member`.
fn members(
    at: &mut Cursor,
    close: u8,
    mut member: impl FnMut(&mut Cursor) -> Result<(), Stop>,
) -> Result<(), Stop> {
    let mut failed = None;
    let walked = at.members(close, |at| {
        member(at).map_err(|stop| {
            failed = Some(stop);
            Declined
        })
    });
    match (walked, failed) {
        (_, Some(stop)) => Err(stop),
        (Ok(()), None) => Ok(()),
        (Err(_), None) => Err(Stop::Unsure),
    }
}

fn find<'k>(fields: &'k [(String, Inferred)], key: &str, hint: &mut usize) -> Option<&'k Inferred> {
    let start = (*hint).min(fields.len());
    let found = (start..fields.len())
        .chain(0..start)
        .find(|&f| fields[f].0 == key)?;
    *hint = found + 1;
    Some(&fields[found].1)
}

/// `stop` inside the member `name`: its path gains the name in front.
pub(super) fn within(stop: Stop, name: &str) -> Stop {
    match stop {
        Stop::Misfit(inner) if inner.is_empty() => Stop::Misfit(name.to_string()),
        Stop::Misfit(inner) if inner.starts_with('[') => Stop::Misfit(format!("{name}{inner}")),
        Stop::Misfit(inner) => Stop::Misfit(format!("{name}.{inner}")),
        unsure => unsure,
    }
}

#[cfg(test)]
mod tests;
