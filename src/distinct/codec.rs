//! Rows as byte strings for the distinct operator: equal rows, equal bytes, and back to columns.
//!
//! Arrow's row format is made for sorting: it cuts text into 8- and 32-byte blocks with a marker
//! after each, so a row of short ids, an event type and two numbers takes ~76 bytes where its
//! values take ~45. A distinct operator only needs equality, and every byte it keeps is memory
//! it does not have or disk it writes and reads again. [`RowCodec`] writes each value once:
//! a presence byte, then the value's bytes (fixed-width values as stored, text and binary after
//! their length, one byte below 128). The column types are fixed, so the encoding is unambiguous: two rows have
//! the same bytes exactly when every value is the same. Columns of other types (decimals,
//! intervals, ...) make the whole row use Arrow's row format instead.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayData, ArrayRef, AsArray, BinaryArray, BinaryBuilder, BinaryViewArray,
    BinaryViewBuilder, BooleanArray, BooleanBufferBuilder, BooleanBuilder, LargeBinaryArray,
    LargeBinaryBuilder, LargeStringArray, LargeStringBuilder, NullArray, StringArray,
    StringBuilder, StringViewArray, StringViewBuilder, make_array,
};
use datafusion::arrow::buffer::{Buffer, MutableBuffer, NullBuffer};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::row::{RowConverter, RowParser, SortField};
use datafusion::error::{DataFusionError, Result};

/// How one column's values are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Always null: nothing is written.
    Null,
    Boolean,
    /// A primitive of this many bytes, written as stored (little endian).
    Fixed(usize),
    Utf8,
    LargeUtf8,
    Utf8View,
    Binary,
    LargeBinary,
    BinaryView,
}

impl Kind {
    fn of(data_type: &DataType) -> Option<Kind> {
        use DataType::*;
        Some(match data_type {
            Null => Kind::Null,
            Boolean => Kind::Boolean,
            Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 | Float32 | Float64
            | Date32 | Date64 | Time32(_) | Time64(_) | Timestamp(..) | Duration(_) => {
                Kind::Fixed(data_type.primitive_width()?)
            }
            Utf8 => Kind::Utf8,
            LargeUtf8 => Kind::LargeUtf8,
            Utf8View => Kind::Utf8View,
            Binary => Kind::Binary,
            LargeBinary => Kind::LargeBinary,
            BinaryView => Kind::BinaryView,
            _ => return None,
        })
    }
}

/// Encodes rows of a fixed list of column types, and decodes them back.
pub struct RowCodec {
    encoding: Encoding,
}

enum Encoding {
    Compact(Vec<(Kind, DataType)>),
    /// Arrow's row format, for column types the compact encoding does not cover.
    Arrow(RowConverter, RowParser),
}

/// Rows encoded: row `i` is `bytes[ends[i - 1]..ends[i]]` (from 0 for the first).
#[derive(Default)]
pub struct EncodedRows {
    bytes: Vec<u8>,
    ends: Vec<usize>,
}

impl EncodedRows {
    pub fn iter(&self) -> impl Iterator<Item = &[u8]> {
        let starts = std::iter::once(0).chain(self.ends.iter().copied());
        starts.zip(&self.ends).map(|(s, &e)| &self.bytes[s..e])
    }
}

impl RowCodec {
    pub fn new(types: &[DataType]) -> Result<Self> {
        let kinds: Option<Vec<(Kind, DataType)>> = types
            .iter()
            .map(|t| Kind::of(t).map(|k| (k, t.clone())))
            .collect();
        let encoding = match kinds {
            Some(kinds) => Encoding::Compact(kinds),
            None => {
                let fields = types.iter().map(|t| SortField::new(t.clone())).collect();
                let converter = RowConverter::new(fields)?;
                let parser = converter.parser();
                Encoding::Arrow(converter, parser)
            }
        };
        Ok(Self { encoding })
    }

    /// The rows of `columns` (one array per column type, all of the same length).
    pub fn encode(&self, columns: &[ArrayRef]) -> Result<EncodedRows> {
        let rows = columns.first().map_or(0, |c| c.len());
        let mut out = EncodedRows {
            bytes: Vec::new(),
            ends: Vec::with_capacity(rows),
        };
        match &self.encoding {
            Encoding::Arrow(converter, _) => {
                let converted = converter.convert_columns(columns)?;
                for row in converted.iter() {
                    out.bytes.extend_from_slice(row.as_ref());
                    out.ends.push(out.bytes.len());
                }
            }
            Encoding::Compact(kinds) => {
                let values: usize = columns.iter().map(|c| c.get_buffer_memory_size()).sum();
                out.bytes.reserve(values + rows * (columns.len() * 2));
                let typed: Vec<Typed> = columns
                    .iter()
                    .zip(kinds)
                    .map(|(column, (kind, _))| Typed::new(column.as_ref(), *kind))
                    .collect();
                for row in 0..rows {
                    for column in &typed {
                        column.encode(row, &mut out.bytes);
                    }
                    out.ends.push(out.bytes.len());
                }
            }
        }
        Ok(out)
    }

    /// Columns from encoded rows (each as [`Self::encode`] wrote it).
    pub fn decode(&self, rows: &[&[u8]]) -> Result<Vec<ArrayRef>> {
        match &self.encoding {
            Encoding::Arrow(converter, parser) => {
                Ok(converter.convert_rows(rows.iter().map(|r| parser.parse(r)))?)
            }
            Encoding::Compact(kinds) => {
                let mut decoders: Vec<Decoder> = kinds
                    .iter()
                    .map(|(kind, data_type)| Decoder::new(*kind, data_type, rows.len()))
                    .collect();
                for row in rows {
                    let mut at = 0;
                    for decoder in &mut decoders {
                        at = decoder.push(row, at)?;
                    }
                    if at != row.len() {
                        return Err(corrupt());
                    }
                }
                decoders.into_iter().map(Decoder::finish).collect()
            }
        }
    }
}

/// One column, downcast once per batch.
enum Typed<'a> {
    Null,
    Boolean(&'a BooleanArray),
    /// Values from the column's first row on, their width, and which rows are valid.
    Fixed(Buffer, usize, Option<NullBuffer>),
    Utf8(&'a StringArray),
    LargeUtf8(&'a LargeStringArray),
    Utf8View(&'a StringViewArray),
    Binary(&'a BinaryArray),
    LargeBinary(&'a LargeBinaryArray),
    BinaryView(&'a BinaryViewArray),
}

impl<'a> Typed<'a> {
    fn new(column: &'a dyn Array, kind: Kind) -> Self {
        match kind {
            Kind::Null => Typed::Null,
            Kind::Boolean => Typed::Boolean(column.as_boolean()),
            Kind::Fixed(width) => {
                // Fixed-width (primitive) arrays hold their values in their first buffer.
                let data = column.to_data();
                let values = data.buffers()[0].slice(data.offset() * width);
                Typed::Fixed(values, width, column.nulls().cloned())
            }
            Kind::Utf8 => Typed::Utf8(column.as_string()),
            Kind::LargeUtf8 => Typed::LargeUtf8(column.as_string()),
            Kind::Utf8View => Typed::Utf8View(column.as_string_view()),
            Kind::Binary => Typed::Binary(column.as_binary()),
            Kind::LargeBinary => Typed::LargeBinary(column.as_binary()),
            Kind::BinaryView => Typed::BinaryView(column.as_binary_view()),
        }
    }

    fn is_null(&self, row: usize) -> bool {
        match self {
            Typed::Null => false,
            Typed::Boolean(a) => a.is_null(row),
            Typed::Fixed(_, _, nulls) => nulls.as_ref().is_some_and(|n| n.is_null(row)),
            Typed::Utf8(a) => a.is_null(row),
            Typed::LargeUtf8(a) => a.is_null(row),
            Typed::Utf8View(a) => a.is_null(row),
            Typed::Binary(a) => a.is_null(row),
            Typed::LargeBinary(a) => a.is_null(row),
            Typed::BinaryView(a) => a.is_null(row),
        }
    }

    /// Appends the value of `row`: nothing for a null column, else a presence byte and the value.
    fn encode(&self, row: usize, out: &mut Vec<u8>) {
        if matches!(self, Typed::Null) {
            return;
        }
        if self.is_null(row) {
            out.push(0);
            return;
        }
        out.push(1);
        let mut bytes = |value: &[u8]| {
            write_length(out, value.len());
            out.extend_from_slice(value);
        };
        match self {
            Typed::Null => {}
            Typed::Boolean(a) => out.push(u8::from(a.value(row))),
            Typed::Fixed(values, width, _) => {
                out.extend_from_slice(&values.as_slice()[row * width..(row + 1) * width])
            }
            Typed::Utf8(a) => bytes(a.value(row).as_bytes()),
            Typed::LargeUtf8(a) => bytes(a.value(row).as_bytes()),
            Typed::Utf8View(a) => bytes(a.value(row).as_bytes()),
            Typed::Binary(a) => bytes(a.value(row)),
            Typed::LargeBinary(a) => bytes(a.value(row)),
            Typed::BinaryView(a) => bytes(a.value(row)),
        }
    }
}

/// A length in 7-bit groups, low first, the high bit set on all but the last (LEB128): one byte
/// below 128. Each length has one encoding, so equal values keep equal bytes.
fn write_length(out: &mut Vec<u8>, mut len: usize) {
    while len >= 0x80 {
        out.push((len as u8) | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
}

/// The length written by [`write_length`] at `at`, and where the value starts.
fn read_length(row: &[u8], mut at: usize) -> Result<(usize, usize)> {
    let mut len = 0usize;
    for shift in (0..usize::BITS).step_by(7) {
        let byte = *row.get(at).ok_or_else(corrupt)?;
        at += 1;
        len |= usize::from(byte & 0x7f) << shift;
        if byte < 0x80 {
            return Ok((len, at));
        }
    }
    Err(corrupt())
}

fn corrupt() -> DataFusionError {
    DataFusionError::Internal("a distinct row read back does not match its columns".into())
}

/// Builds one column from encoded rows.
enum Decoder {
    Null(usize),
    Boolean(BooleanBuilder),
    Fixed {
        data_type: DataType,
        width: usize,
        values: MutableBuffer,
        valid: BooleanBufferBuilder,
    },
    Utf8(StringBuilder),
    LargeUtf8(LargeStringBuilder),
    Utf8View(StringViewBuilder),
    Binary(BinaryBuilder),
    LargeBinary(LargeBinaryBuilder),
    BinaryView(BinaryViewBuilder),
}

impl Decoder {
    fn new(kind: Kind, data_type: &DataType, rows: usize) -> Self {
        match kind {
            Kind::Null => Decoder::Null(0),
            Kind::Boolean => Decoder::Boolean(BooleanBuilder::with_capacity(rows)),
            Kind::Fixed(width) => Decoder::Fixed {
                data_type: data_type.clone(),
                width,
                values: MutableBuffer::new(rows * width),
                valid: BooleanBufferBuilder::new(rows),
            },
            Kind::Utf8 => Decoder::Utf8(StringBuilder::with_capacity(rows, rows * 16)),
            Kind::LargeUtf8 => {
                Decoder::LargeUtf8(LargeStringBuilder::with_capacity(rows, rows * 16))
            }
            Kind::Utf8View => Decoder::Utf8View(StringViewBuilder::with_capacity(rows)),
            Kind::Binary => Decoder::Binary(BinaryBuilder::with_capacity(rows, rows * 16)),
            Kind::LargeBinary => {
                Decoder::LargeBinary(LargeBinaryBuilder::with_capacity(rows, rows * 16))
            }
            Kind::BinaryView => Decoder::BinaryView(BinaryViewBuilder::with_capacity(rows)),
        }
    }

    /// Reads one value of `row` from `at`; returns where the next value starts.
    fn push(&mut self, row: &[u8], at: usize) -> Result<usize> {
        if let Decoder::Null(n) = self {
            *n += 1;
            return Ok(at);
        }
        let present = *row.get(at).ok_or_else(corrupt)? == 1;
        let at = at + 1;
        let length_prefixed = |at: usize| -> Result<(&[u8], usize)> {
            let (len, at) = read_length(row, at)?;
            let value = row.get(at..at + len).ok_or_else(corrupt)?;
            Ok((value, at + len))
        };
        Ok(match self {
            Decoder::Null(_) => unreachable!("handled above"),
            Decoder::Boolean(b) if !present => {
                b.append_null();
                at
            }
            Decoder::Boolean(b) => {
                b.append_value(*row.get(at).ok_or_else(corrupt)? == 1);
                at + 1
            }
            Decoder::Fixed {
                width,
                values,
                valid,
                ..
            } => {
                valid.append(present);
                if present {
                    values.extend_from_slice(row.get(at..at + *width).ok_or_else(corrupt)?);
                    at + *width
                } else {
                    values.extend_zeros(*width);
                    at
                }
            }
            Decoder::Utf8(b) if !present => {
                b.append_null();
                at
            }
            Decoder::Utf8(b) => {
                let (value, next) = length_prefixed(at)?;
                b.append_value(text(value)?);
                next
            }
            Decoder::LargeUtf8(b) if !present => {
                b.append_null();
                at
            }
            Decoder::LargeUtf8(b) => {
                let (value, next) = length_prefixed(at)?;
                b.append_value(text(value)?);
                next
            }
            Decoder::Utf8View(b) if !present => {
                b.append_null();
                at
            }
            Decoder::Utf8View(b) => {
                let (value, next) = length_prefixed(at)?;
                b.append_value(text(value)?);
                next
            }
            Decoder::Binary(b) if !present => {
                b.append_null();
                at
            }
            Decoder::Binary(b) => {
                let (value, next) = length_prefixed(at)?;
                b.append_value(value);
                next
            }
            Decoder::LargeBinary(b) if !present => {
                b.append_null();
                at
            }
            Decoder::LargeBinary(b) => {
                let (value, next) = length_prefixed(at)?;
                b.append_value(value);
                next
            }
            Decoder::BinaryView(b) if !present => {
                b.append_null();
                at
            }
            Decoder::BinaryView(b) => {
                let (value, next) = length_prefixed(at)?;
                b.append_value(value);
                next
            }
        })
    }

    fn finish(self) -> Result<ArrayRef> {
        Ok(match self {
            Decoder::Null(n) => Arc::new(NullArray::new(n)),
            Decoder::Boolean(mut b) => Arc::new(b.finish()),
            Decoder::Fixed {
                data_type,
                width,
                values,
                mut valid,
            } => {
                let len = values.len() / width;
                let valid = valid.finish();
                let nulls = (valid.count_set_bits() < len).then(|| valid.into_inner());
                let data = ArrayData::builder(data_type)
                    .len(len)
                    .add_buffer(Buffer::from(values))
                    .null_bit_buffer(nulls)
                    .build()?;
                make_array(data)
            }
            Decoder::Utf8(mut b) => Arc::new(b.finish()),
            Decoder::LargeUtf8(mut b) => Arc::new(b.finish()),
            Decoder::Utf8View(mut b) => Arc::new(b.finish()),
            Decoder::Binary(mut b) => Arc::new(b.finish()),
            Decoder::LargeBinary(mut b) => Arc::new(b.finish()),
            Decoder::BinaryView(mut b) => Arc::new(b.finish()),
        })
    }
}

/// `value` as text (it was text when encoded).
fn text(value: &[u8]) -> Result<&str> {
    std::str::from_utf8(value).map_err(|_| corrupt())
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{
        BooleanArray, Date32Array, Decimal128Array, Float64Array, Int64Array, LargeStringArray,
        StringArray, StringViewArray,
    };

    use super::*;

    fn round_trip(columns: Vec<ArrayRef>) {
        let types: Vec<DataType> = columns.iter().map(|c| c.data_type().clone()).collect();
        let codec = RowCodec::new(&types).unwrap();
        // Sliced, so that arrays with an offset are read from the right row.
        let sliced: Vec<ArrayRef> = columns.iter().map(|c| c.slice(1, c.len() - 1)).collect();
        let encoded = codec.encode(&sliced).unwrap();
        let rows: Vec<&[u8]> = encoded.iter().collect();
        assert_eq!(rows.len(), sliced[0].len());
        let decoded = codec.decode(&rows).unwrap();
        for (a, b) in decoded.iter().zip(&sliced) {
            assert_eq!(a.to_data(), b.to_data(), "{}", b.data_type());
        }
    }

    #[test]
    fn rows_decode_to_the_columns_they_came_from() {
        round_trip(vec![
            Arc::new(Int64Array::from(vec![
                Some(9),
                Some(-1),
                None,
                Some(i64::MAX),
            ])),
            Arc::new(StringArray::from(vec![
                Some("x"),
                Some(""),
                Some("ünï"),
                None,
            ])),
            Arc::new(StringViewArray::from(vec![
                None,
                Some("a string longer than twelve bytes"),
                Some("short"),
                Some(""),
            ])),
            Arc::new(LargeStringArray::from(vec![
                Some("l"),
                None,
                Some("m"),
                Some("n"),
            ])),
            Arc::new(Float64Array::from(vec![
                Some(1.5),
                Some(0.0),
                None,
                Some(-2.25),
            ])),
            Arc::new(BooleanArray::from(vec![
                Some(true),
                None,
                Some(false),
                Some(true),
            ])),
            Arc::new(Date32Array::from(vec![Some(1), Some(2), Some(3), None])),
            Arc::new(NullArray::new(4)),
            // Lengths of one, two and three bytes.
            Arc::new(StringArray::from(vec![
                "a".repeat(127),
                "b".repeat(128),
                "c".repeat(20_000),
                String::new(),
            ])),
        ]);
        // Decimals go through Arrow's row format.
        round_trip(vec![
            Arc::new(
                Decimal128Array::from(vec![Some(1), None, Some(-300), Some(7)])
                    .with_precision_and_scale(12, 2)
                    .unwrap(),
            ),
            Arc::new(StringArray::from(vec![
                Some("x"),
                Some("y"),
                None,
                Some("z"),
            ])),
        ]);
    }

    #[test]
    fn equal_rows_are_equal_bytes_and_different_rows_are_not() {
        let codec = RowCodec::new(&[DataType::Utf8, DataType::Utf8]).unwrap();
        // ("ab", "c") and ("a", "bc") must differ; (null, "") and ("", null) too.
        let columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from(vec![
                Some("ab"),
                Some("a"),
                None,
                Some(""),
                Some("ab"),
            ])),
            Arc::new(StringArray::from(vec![
                Some("c"),
                Some("bc"),
                Some(""),
                None,
                Some("c"),
            ])),
        ];
        let encoded = codec.encode(&columns).unwrap();
        let rows: Vec<&[u8]> = encoded.iter().collect();
        assert_eq!(rows[0], rows[4]);
        for i in 0..4 {
            for j in i + 1..4 {
                assert_ne!(rows[i], rows[j], "rows {i} and {j}");
            }
        }
    }
}
