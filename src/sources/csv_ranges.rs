//! Which CSV files are read in byte ranges, several cores to one file ([`crate::sources::split`]),
//! and what a range past the start needs to know to read as a whole read would.
//!
//! A line start is a record start unless a quoted value holds a line break. A file is split only
//! when its head (read alike by every range) holds none, it is plain UTF-8 and the table does not
//! say values hold line breaks (`'format.newlines_in_values'`). A quoted line break further on is
//! still possible, so every cut is checked: the range before it reads on past its end as a whole
//! read would, and the first record start it meets there must be the cut's line start
//! ([`Next::CutInRecord`](super::csv_records::Next) otherwise). Range 0 starts right, and each
//! range checks the next one's start, so the ranges read exactly the records of a whole read; a
//! failed check stops the scan with a [`SplitMismatch`](super::split::SplitMismatch) and the run reads CSV files whole.

use std::io::BufRead;
use std::sync::Arc;

use datafusion::common::Result;
use memchr::memchr_iter;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path;

use super::compression::{Compression, read_bytes_blocking};
use super::csv_options::CsvDialect;
use super::csv_records::{CsvRecords, Next};
use super::encoding::TextEncoding;
use super::json::framing::bom_len;
use super::object_read;
use super::split::{ByteRange, Cut, HEAD_LEN, Plan};

/// What every range of a split file reads from its head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadFacts {
    /// Bytes of a UTF-8 byte-order mark, which the text (and its offsets) leave out.
    pub bom: u64,
    /// Text offset of the file's first good record: the header, or what sets the field count.
    pub first_good: u64,
    /// Its number of fields, which every later record must have.
    pub width: usize,
}

/// How a range's reader starts, as a whole read would be at that point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RangeStart {
    /// Text offset of the range's first line.
    pub text: u64,
    /// Field count every record must have (None: the first good record sets it).
    pub width: Option<usize>,
    /// Whether the first good record is the header.
    pub header_pending: bool,
}

impl HeadFacts {
    /// The reader's state at `file_offset`, a line start that is a record start.
    pub fn start_at(&self, file_offset: u64, has_header: bool) -> RangeStart {
        let text = file_offset.saturating_sub(self.bom);
        let before_first = text <= self.first_good;
        RangeStart {
            text,
            width: (!before_first).then_some(self.width),
            header_pending: before_first && has_header,
        }
    }
}

/// How a table's files are written: what decides whether they can be split, and how to read them.
#[derive(Debug, Clone, Copy)]
pub struct CsvText<'a> {
    pub encoding: TextEncoding,
    pub dialect: &'a CsvDialect,
    pub max_record_bytes: u64,
}

/// The facts of a file that can be split, from its first bytes `head`; None when it is read whole.
pub fn head_facts(head: &[u8], size: u64, location: &Path, text: CsvText) -> Option<HeadFacts> {
    let CsvText {
        encoding,
        dialect,
        max_record_bytes,
    } = text;
    if !encoding.is_utf8()
        || dialect.newlines_in_values
        || Compression::sniff(head, location.as_ref()) != Compression::None
    {
        return None;
    }
    let bom = bom_len(head);
    // The head's complete lines (all of it when it is the whole file).
    let complete = match head.len() as u64 >= size {
        true => head.len(),
        false => memchr::memrchr(b'\n', head).map_or(0, |k| k + 1),
    };
    let (first_good, width) =
        first_good_record(head.get(bom..complete)?, dialect, max_record_bytes)?;
    Some(HeadFacts {
        bom: bom as u64,
        first_good,
        width,
    })
}

/// The text offset and field count of the first good record in `text` (whole lines of a file's
/// text, from its start); None when there is none, or when a record in `text` spans lines (the
/// file's line starts are then not all record starts, and it is not cut).
pub fn first_good_record(
    text: &[u8],
    dialect: &CsvDialect,
    max_record_bytes: u64,
) -> Option<(u64, usize)> {
    let mut records = CsvRecords::new(text, "", dialect, max_record_bytes);
    let mut first = None;
    loop {
        let good = match records.next_record().ok()? {
            Next::End | Next::CutInRecord { .. } | Next::SegmentEndInRecord { .. } => break,
            Next::Bad(_) => None,
            Next::Record(record) => Some((record.byte_offset, record.len())),
        };
        if records.spanned_lines() {
            return None;
        }
        first = first.or(good);
    }
    first
}

/// How this opener reads `range` of a CSV file of `size` bytes, decided from the file's head;
/// with the head's facts when it reads lines.
pub async fn plan(
    store: &Arc<dyn ObjectStore>,
    local: Option<&LocalFileSystem>,
    location: &Path,
    size: u64,
    range: ByteRange,
    text: CsvText<'_>,
) -> Result<(Plan, Option<HeadFacts>)> {
    let head = object_read::read_head(store, local, location, HEAD_LEN.min(size)).await?;
    let facts = head_facts(&head, size, location, text);
    Ok((
        Plan::new(range, facts.is_some().then_some(Cut::LineStart)),
        facts,
    ))
}

/// Line breaks in the first `offset` bytes of `reader` (the file from its start): a range's first
/// line is one more. Counted only when a range meets a bad record, so a clean file costs nothing.
pub fn lines_before(reader: &mut dyn BufRead, offset: u64) -> std::io::Result<u64> {
    let mut left = offset;
    let mut lines = 0;
    while left > 0 {
        let buffer = reader.fill_buf()?;
        if buffer.is_empty() {
            break;
        }
        let take = buffer
            .len()
            .min(usize::try_from(left).unwrap_or(usize::MAX));
        lines += memchr_iter(b'\n', &buffer[..take]).count() as u64;
        reader.consume(take);
        left -= take as u64;
    }
    Ok(lines)
}

/// A split CSV file's cuts, checked by reading it from its start as a whole read would: a cut is
/// inside a record when a record (good or bad, as far as a whole read takes it) starts before it
/// and ends after it.
pub struct CsvCutCheck {
    pub store: Arc<dyn ObjectStore>,
    pub location: Path,
    pub file: String,
    pub dialect: CsvDialect,
    pub max_record_bytes: u64,
    /// Bytes of a UTF-8 byte-order mark: cuts are file offsets, records' offsets the text's.
    pub bom: u64,
}

#[async_trait::async_trait]
impl super::unchecked_cuts::CutCheck for CsvCutCheck {
    async fn first_inside_a_record(&self, cuts: &[u64]) -> Result<Option<u64>> {
        let (file, dialect) = (self.file.clone(), self.dialect.clone());
        let (bom, max_record_bytes) = (self.bom, self.max_record_bytes);
        let mut cuts: Vec<u64> = cuts.iter().map(|cut| cut.saturating_sub(bom)).collect();
        cuts.reverse();
        let store = Arc::clone(&self.store);
        read_bytes_blocking(store, &self.location, 0, self.file.clone(), move |reader| {
            let input = TextEncoding::default().reader_without_bom(reader);
            let mut records = CsvRecords::new(input, &file, &dialect, max_record_bytes);
            while !cuts.is_empty() {
                let start = match records.next_record().map_err(|e| e.to_string())? {
                    Next::Record(record) => record.byte_offset,
                    Next::Bad(bad) => bad.byte_offset.unwrap_or(0),
                    Next::End | Next::CutInRecord { .. } | Next::SegmentEndInRecord { .. } => break,
                };
                // Where a whole read goes on (after a bad record's first line, when it spans
                // several).
                let end = records.offset();
                // Cuts up to this record's start are between records: the earlier ones ended
                // before them.
                while cuts.last().is_some_and(|&cut| cut <= start) {
                    cuts.pop();
                }
                if let Some(&cut) = cuts.last()
                    && cut < end
                {
                    return Ok(Some(cut + bom));
                }
            }
            Ok(None)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A cut is inside a record when a whole read's record spans it: a quoted line break, not a
    /// bad record's later lines (a whole read goes on after the first line of one that spans
    /// several). The first such cut is found, in one read, past a byte-order mark.
    #[tokio::test]
    async fn csv_cuts_inside_a_quoted_value_are_found() {
        use crate::sources::unchecked_cuts::CutCheck;
        let text = "\u{feff}u,s\n1,a\n2,\"two\nlines\"\n3,\"open\n4,d\n5,e\n";
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.csv");
        std::fs::write(&path, text).unwrap();
        let check = CsvCutCheck {
            store: Arc::new(LocalFileSystem::new()),
            location: Path::from_absolute_path(&path).unwrap(),
            file: "c.csv".into(),
            dialect: dialect(),
            max_record_bytes: 1 << 20,
            bom: 3,
        };
        let at = |line: &str| text.find(line).unwrap() as u64;
        let starts = [at("1,a"), at("2,"), at("3,"), at("4,d"), at("5,e")];
        assert_eq!(check.first_inside_a_record(&starts).await.unwrap(), None);
        let inside = at("lines");
        let mut cuts = starts.to_vec();
        cuts.push(inside);
        cuts.sort();
        assert_eq!(
            check.first_inside_a_record(&cuts).await.unwrap(),
            Some(inside)
        );
        let end = text.len() as u64;
        assert_eq!(
            check
                .first_inside_a_record(&[at("5,e"), end])
                .await
                .unwrap(),
            None
        );
    }

    fn dialect() -> CsvDialect {
        CsvDialect::from_options(&HashMap::new()).unwrap()
    }

    fn written(encoding: TextEncoding, dialect: &CsvDialect) -> CsvText<'_> {
        CsvText {
            encoding,
            dialect,
            max_record_bytes: 1 << 20,
        }
    }

    fn facts(head: &[u8], size: u64) -> Option<HeadFacts> {
        let path = Path::from("x.csv");
        head_facts(
            head,
            size,
            &path,
            written(TextEncoding::default(), &dialect()),
        )
    }

    #[test]
    fn heads_without_quoted_line_breaks_are_split() {
        let plain = b"\xEF\xBB\xBFa,b\r\n1,\"x,y\"\n\n2,\"q\"\"\"\n3,4,5\n";
        assert_eq!(
            facts(plain, 1000),
            Some(HeadFacts {
                bom: 3,
                first_good: 0,
                width: 2
            })
        );
        // A bad first line: the header is the first good record.
        let latin1 = b"caf\xe9\na,b\n1,2\n";
        assert_eq!(facts(latin1, 1000).map(|f| f.first_good), Some(5));
        // The incomplete last line of the head is not judged.
        assert!(facts(b"a,b\n1,\"open", 1000).is_some());
        assert!(facts(b"a,b\n1,\"x\ny\"\n", 1000).is_none());
        assert!(facts(b"a,b\n1,\"open\n2,3\n", 1000).is_none());
        assert!(facts(b"a,b\r\n1,\"x\r\ny\"\r\n", 1000).is_none());
        // No complete line, or no good record: read whole.
        assert!(facts(b"a,b", 1000).is_none());
        assert!(facts(b"\xff\n", 1000).is_none());
    }

    #[test]
    fn compressed_transcoded_and_multiline_tables_are_read_whole() {
        let path = Path::from("x.csv");
        let text = b"a,b\n1,2\n";
        let utf8 = TextEncoding::default();
        let gzip = [0x1f, 0x8b, 8, 0, b'\n'];
        assert!(head_facts(&gzip, 100, &path, written(utf8, &dialect())).is_none());
        let latin1 = TextEncoding::from_label("latin1").unwrap();
        assert!(head_facts(text, 100, &path, written(latin1, &dialect())).is_none());
        let multiline = CsvDialect {
            newlines_in_values: true,
            ..dialect()
        };
        assert!(head_facts(text, 100, &path, written(utf8, &multiline)).is_none());
    }

    #[test]
    fn line_breaks_before_an_offset_are_counted() {
        let text = b"a\nb\r\nc\n\nd";
        for offset in 0..=text.len() as u64 + 2 {
            let expected = text[..(offset as usize).min(text.len())]
                .iter()
                .filter(|b| **b == b'\n')
                .count() as u64;
            let mut reader = std::io::BufReader::with_capacity(3, &text[..]);
            assert_eq!(lines_before(&mut reader, offset).unwrap(), expected);
        }
    }
}
