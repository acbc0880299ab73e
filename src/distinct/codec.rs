//! Rows as byte strings for the distinct operator: equal rows, equal bytes, and back to columns.
//!
//! Arrow's row format is made for sorting: it cuts text into 8- and 32-byte blocks with a marker
//! after each, so a row of short ids, an event type and two numbers takes ~76 bytes where its
//! values take ~45. A distinct operator only needs equality, and every byte it keeps is memory
//! it does not have or disk it writes and reads again. [`RowCodec`] writes each value once: a
//! presence byte, then the value's bytes (fixed-width values as stored, text and binary after
//! their length, one byte below 128). The column types are fixed, so the encoding is
//! unambiguous: two rows have the same bytes exactly when every value is the same. Columns of
//! other types (decimals, intervals, ...) make the whole row use Arrow's row format instead.

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayData, ArrayRef, AsArray, BinaryArray, BinaryBuilder, BinaryViewArray,
    BinaryViewBuilder, BooleanBufferBuilder, BooleanBuilder, LargeBinaryArray, NullArray,
    StringArray, make_array,
};
use datafusion::arrow::buffer::{BooleanBuffer, Buffer, MutableBuffer, NullBuffer};
use datafusion::arrow::compute::{CastOptions, cast_with_options};
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
    /// Text or binary: its length, then its bytes.
    Bytes,
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
            Utf8 | LargeUtf8 | Utf8View | Binary | LargeBinary | BinaryView => Kind::Bytes,
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
                let columns: Vec<Column> = columns
                    .iter()
                    .zip(kinds)
                    .map(|(column, (kind, _))| Column::new(column.as_ref(), *kind))
                    .collect();
                for row in 0..rows {
                    for column in &columns {
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

/// One column of a batch, taken apart once: which rows are null, and where the values are.
struct Column {
    nulls: Option<NullBuffer>,
    values: Values,
}

/// A column's values. Text is read as the binary it is stored as (no copy).
enum Values {
    Null,
    Boolean(BooleanBuffer),
    /// Values from the column's first row on, and their width.
    Fixed(Buffer, usize),
    Binary(BinaryArray),
    LargeBinary(LargeBinaryArray),
    BinaryView(BinaryViewArray),
}

impl Column {
    fn new(column: &dyn Array, kind: Kind) -> Self {
        let values = match (kind, column.data_type()) {
            (Kind::Null, _) => Values::Null,
            (Kind::Boolean, _) => Values::Boolean(column.as_boolean().values().clone()),
            (Kind::Fixed(width), _) => {
                // Fixed-width (primitive) arrays hold their values in their first buffer.
                let data = column.to_data();
                Values::Fixed(data.buffers()[0].slice(data.offset() * width), width)
            }
            (Kind::Bytes, DataType::Utf8) => {
                Values::Binary(column.as_string::<i32>().clone().into())
            }
            (Kind::Bytes, DataType::LargeUtf8) => {
                Values::LargeBinary(column.as_string::<i64>().clone().into())
            }
            (Kind::Bytes, DataType::Utf8View) => {
                Values::BinaryView(column.as_string_view().clone().to_binary_view())
            }
            (Kind::Bytes, DataType::Binary) => Values::Binary(column.as_binary().clone()),
            (Kind::Bytes, DataType::LargeBinary) => Values::LargeBinary(column.as_binary().clone()),
            (Kind::Bytes, _) => Values::BinaryView(column.as_binary_view().clone()),
        };
        Self {
            nulls: column.logical_nulls(),
            values,
        }
    }

    /// Appends the value of `row`: nothing for a null column, else a presence byte and the value.
    fn encode(&self, row: usize, out: &mut Vec<u8>) {
        if matches!(self.values, Values::Null) {
            return;
        }
        if self.nulls.as_ref().is_some_and(|n| n.is_null(row)) {
            out.push(0);
            return;
        }
        out.push(1);
        let bytes = match &self.values {
            Values::Null => return,
            Values::Boolean(values) => return out.push(u8::from(values.value(row))),
            Values::Fixed(values, width) => {
                return out.extend_from_slice(&values.as_slice()[row * width..(row + 1) * width]);
            }
            Values::Binary(a) => a.value(row),
            Values::LargeBinary(a) => a.value(row),
            Values::BinaryView(a) => a.value(row),
        };
        write_length(out, bytes.len());
        out.extend_from_slice(bytes);
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

/// Hands a text or binary value at `at` (its length, then its bytes; nothing when absent) to
/// `append`; returns where the next value starts.
fn read_bytes(
    row: &[u8],
    at: usize,
    present: bool,
    append: impl FnOnce(Option<&[u8]>),
) -> Result<usize> {
    if !present {
        append(None);
        return Ok(at);
    }
    let (len, at) = read_length(row, at)?;
    append(Some(row.get(at..at + len).ok_or_else(corrupt)?));
    Ok(at + len)
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
    /// Text or binary with 32-bit offsets: built as binary, checked to be UTF-8 in one pass at
    /// the end when it is text (no copy: a cast from views copied every value again).
    Offsets(BinaryBuilder, DataType),
    /// Other byte types: read as binary views, cast to the column's type at the end.
    Bytes(BinaryViewBuilder, DataType),
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
            Kind::Bytes if matches!(data_type, DataType::Utf8 | DataType::Binary) => {
                Decoder::Offsets(
                    BinaryBuilder::with_capacity(rows, rows * 16),
                    data_type.clone(),
                )
            }
            Kind::Bytes => {
                Decoder::Bytes(BinaryViewBuilder::with_capacity(rows), data_type.clone())
            }
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
            Decoder::Offsets(b, _) => read_bytes(row, at, present, |v| b.append_option(v))?,
            Decoder::Bytes(b, _) => read_bytes(row, at, present, |v| b.append_option(v))?,
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
            Decoder::Offsets(mut b, DataType::Utf8) => {
                // Bytes that are not UTF-8 are an error, as for the cast below.
                Arc::new(StringArray::try_from_binary(b.finish())?)
            }
            Decoder::Offsets(mut b, _) => Arc::new(b.finish()),
            Decoder::Bytes(mut b, data_type) => {
                // Not `safe`: bytes that are not UTF-8 are an error, not a null.
                let options = CastOptions {
                    safe: false,
                    ..CastOptions::default()
                };
                cast_with_options(&b.finish(), &data_type, &options)?
            }
        })
    }
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
            Arc::new(BinaryArray::from(vec![
                Some(&b"\xff\x00"[..]),
                None,
                Some(b""),
                Some(b"b"),
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
    fn bytes_that_are_not_text_are_an_error_not_a_null() {
        let row: &[u8] = &[1, 1, 0xff];
        for text in [DataType::Utf8View, DataType::Utf8, DataType::LargeUtf8] {
            let codec = RowCodec::new(std::slice::from_ref(&text)).unwrap();
            assert!(codec.decode(&[row]).is_err(), "{text}");
        }
        let binary = RowCodec::new(&[DataType::Binary]).unwrap();
        let decoded = binary.decode(&[row]).unwrap();
        assert_eq!(decoded[0].as_binary::<i32>().value(0), &[0xff]);
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
