//! Which JSON files are read in byte ranges, several cores to one file ([`crate::sources::split`]).
//!
//! Newline-delimited JSON is cut at line starts: a raw line break cannot be inside a JSON string,
//! so in a file of one object per line every line start is a record start; a pretty-printed
//! record past the head spans line starts all the same. Firehose's back-to-back objects
//! (`{..}{..}`, no separator) are cut at `}{`, which a string can hold. For both, the range before
//! each cut reads on to the record that crosses it and stops the scan with a [`SplitMismatch`]
//! when that record does not end there (the run then reads such files whole; a broken record
//! across a line start is cut again after it, as a whole read does,
//! [`RangeEnd::crossed_by_record`]), and a range that would stop the scan with an error of its own
//! first checks that it started at a record start. A top-level array or pretty-printed records
//! have line breaks inside records, and a compressed or transcoded file has no byte offsets to cut
//! at: those are read whole (a large compressed one's text in segments, [`crate::sources::segments`]). The
//! head of the file decides, and every range reads the same head, so the ranges of one file all
//! decide alike. Schema inference splits both layouts the same way ([`infer_in_ranges`]); its probe of a
//! file's tail, which has no range before it to check its start, only newline-delimited files.

use std::sync::Arc;

use bytes::Bytes;
use datafusion::common::Result;
use memchr::memchr;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;
use object_store::path::Path;

use futures::{StreamExt, TryStreamExt};

use super::framing::{Framing, bom_len};
use super::infer::{self, FileInference, Reading};
use super::records::{Piece, PieceKind, Splitter, Window};
use crate::sources::bad_records::{BadRecordLog, BadRecordPolicy};
use crate::sources::compression::{Compression, read_bytes_blocking};
use crate::sources::encoding::TextEncoding;
use crate::sources::object_read;
pub use crate::sources::split::InferSplit;
use crate::sources::split::{
    ByteRange, Cut, HEAD_LEN, Plan, RangeEnd, SplitMismatch, skip_to_record_start_blocking,
};

/// Whether the start of a file is newline-delimited JSON: it starts with an object, and each
/// complete line of `head` holds one record at most, none spanning a line break (a bad line is
/// still one line). `whole_file`: `head` is the whole file (its last line is complete too).
pub fn looks_newline_delimited(head: &[u8], whole_file: bool) -> bool {
    let head = &head[bom_len(head)..];
    if head.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return false;
    }
    let complete = match whole_file {
        true => head.len(),
        false => memchr::memrchr(b'\n', head).map_or(0, |k| k + 1),
    };
    let window = Window {
        base: 0,
        bytes: head[..complete].to_vec(),
    };
    let mut pieces = Vec::new();
    Splitter::new(u64::MAX).split(&window, true, &mut pieces);
    let one_line = |start: u64, end: u64| memchr(b'\n', window.slice(start, end)).is_none();
    pieces.iter().any(|p| p.kind == PieceKind::Object)
        && pieces.iter().all(|p| one_line(p.start, p.end))
        && pieces.windows(2).all(|w| !one_line(w[0].end, w[1].start))
}

/// Whether the start of a file is back-to-back JSON objects: it starts with an object, the
/// records of `head` are all objects (at least two), and nothing separates one from the next.
/// `whole_file`: `head` is the whole file.
pub fn looks_back_to_back(head: &[u8], whole_file: bool) -> bool {
    let bom = bom_len(head);
    if head.get(bom) != Some(&b'{') {
        return false;
    }
    let window = Window {
        base: 0,
        bytes: head.to_vec(),
    };
    let mut pieces = Vec::new();
    let mut splitter = Splitter::new(u64::MAX);
    splitter.restart_at(bom as u64);
    splitter.split(&window, whole_file, &mut pieces);
    pieces.len() >= 2
        && pieces.iter().all(|p| p.kind == PieceKind::Object)
        && pieces.windows(2).all(|w| w[0].end == w[1].start)
}

/// How this opener reads `range` of a JSON file of `size` bytes: decided from the file's head.
/// `split_at_cuts`: the file may be cut (off after a cut fell inside a record).
pub async fn plan(
    store: &Arc<dyn ObjectStore>,
    local: Option<&LocalFileSystem>,
    location: &Path,
    size: u64,
    range: ByteRange,
    encoding: TextEncoding,
    split_at_cuts: bool,
) -> Result<Plan> {
    let cut = reads_splittable(store, local, location, size, encoding).await?;
    Ok(Plan::new(range, cut.filter(|_| split_at_cuts)))
}

/// How the file can be cut, from its first bytes (read here); None: it cannot.
async fn reads_splittable(
    store: &Arc<dyn ObjectStore>,
    local: Option<&LocalFileSystem>,
    location: &Path,
    size: u64,
    encoding: TextEncoding,
) -> Result<Option<Cut>> {
    let head = object_read::read_head(store, local, location, HEAD_LEN.min(size)).await?;
    Ok(splittable(&head, size, location, encoding))
}

/// How a file whose first bytes are `head` can be cut (see the module documentation); None:
/// it is read whole.
pub fn splittable(head: &[u8], size: u64, location: &Path, encoding: TextEncoding) -> Option<Cut> {
    if !encoding.is_utf8() || Compression::sniff(head, location.as_ref()) != Compression::None {
        return None;
    }
    let whole_file = head.len() as u64 >= size;
    if looks_newline_delimited(head, whole_file) {
        Some(Cut::LineStart)
    } else if looks_back_to_back(head, whole_file) {
        Some(Cut::ObjectJoin)
    } else {
        None
    }
}

/// The first of `cuts` (ascending file offsets) that is no record start of the file, as a whole
/// read would find: the file is read once from its start, cut into records, and a cut where a
/// record is still open is inside one. Read only when a range starting at a cut is about to stop
/// the scan with an error (a bad record, a field the sample did not show), or the run failed
/// ([`crate::sources::unchecked_cuts`]): a range that started inside a string makes such errors up.
pub async fn first_cut_inside_a_record(
    store: &Arc<dyn ObjectStore>,
    local: Option<&LocalFileSystem>,
    location: &Path,
    cuts: &[u64],
    max_record_bytes: u64,
) -> Result<Option<u64>> {
    let Some(&last) = cuts.last() else {
        return Ok(None);
    };
    let mut input = object_read::byte_stream(store, local, location).await?;
    let mut framing = Framing::default();
    let mut splitter = Splitter::new(max_record_bytes);
    let mut window = Window {
        base: 0,
        bytes: Vec::new(),
    };
    let mut pieces: Vec<Piece> = Vec::new();
    let mut cuts = cuts.iter().copied().peekable();
    let mut chunk = Bytes::new();
    while window.end() < last {
        if chunk.is_empty() {
            match input.next().await {
                Some(next) => chunk = next?,
                None => break,
            }
        }
        // Up to the next cut at most, so that the splitter's state is read right there.
        let next_cut = cuts.peek().copied().unwrap_or(last);
        let take = chunk.len().min((next_cut - window.end()) as usize);
        let taken = chunk.split_to(take);
        window.drop_before(splitter.keep_from());
        match framing.process(&taken) {
            Some(rewritten) => window.bytes.extend_from_slice(&rewritten),
            None => window.bytes.extend_from_slice(&taken),
        }
        splitter.split(&window, false, &mut pieces);
        pieces.clear();
        while cuts.peek() == Some(&window.end()) {
            let cut = cuts.next().expect("peeked");
            if splitter.pending_start().is_some() {
                return Ok(Some(cut));
            }
        }
    }
    // Cuts past the file's end start no record, and none is inside one.
    Ok(None)
}

/// A back-to-back or newline-delimited JSON file's cuts, checked by reading it from its start.
pub struct JsonCutCheck {
    pub store: Arc<dyn ObjectStore>,
    pub local: Option<LocalFileSystem>,
    pub location: Path,
    pub max_record_bytes: u64,
}

#[async_trait::async_trait]
impl crate::sources::unchecked_cuts::CutCheck for JsonCutCheck {
    async fn first_inside_a_record(&self, cuts: &[u64]) -> Result<Option<u64>> {
        let (store, local) = (&self.store, self.local.as_ref());
        first_cut_inside_a_record(store, local, &self.location, cuts, self.max_record_bytes).await
    }
}

/// The error of a range before a `}{` cut when a record crosses it.
pub fn crossed_cut(file: &str, piece: &Piece, boundary: u64, cut: Cut) -> SplitMismatch {
    let why = match cut {
        Cut::ObjectJoin => "a JSON string holds `}{`",
        Cut::LineStart => "a record spans lines (pretty-printed or broken)",
    };
    SplitMismatch {
        file: file.to_string(),
        boundary,
        detail: format!(
            "{why}; the record crossing it runs from byte {} to {}",
            piece.start, piece.end
        ),
    }
}

/// Infers a large file's records in byte ranges at the same time, merged in file order (so the
/// result is the whole file's, bad-record offsets included). None when the file is not to be
/// split, or a record of a back-to-back file crosses a cut: the caller reads it whole.
///
/// A range of a back-to-back file may start inside a string, and is only known to be right once
/// the range before it is read: such ranges set bad records aside whatever the policy, and under
/// `fail` a file with one is read whole again, which stops at the first as a whole read does.
pub async fn infer_in_ranges(
    store: &Arc<dyn ObjectStore>,
    object: &object_store::ObjectMeta,
    format: &super::ExportJsonFormat,
    split: InferSplit,
) -> Result<Option<FileInference>> {
    let size = object.size;
    let Some(ranges) = split.ranges(size, format.infer_limit) else {
        return Ok(None);
    };
    let cut = match reads_splittable(store, None, &object.location, size, format.encoding).await? {
        Some(_) if !format.split_at_cuts => return Ok(None),
        Some(cut) => cut,
        None => return Ok(None),
    };
    let mut ranges_format = format.clone();
    if cut == Cut::ObjectJoin {
        ranges_format.bad_records = Arc::new(BadRecordLog::new(BadRecordPolicy::Skip));
    }
    let concurrency = ranges.len();
    let parts: Vec<Option<FileInference>> = futures::stream::iter(ranges)
        .map(|range| {
            let format = ranges_format.clone();
            infer_range(Arc::clone(store), object.clone(), format, range, cut)
        })
        .buffered(concurrency)
        .try_collect()
        .await?;
    let Some(parts) = parts.into_iter().collect::<Option<Vec<_>>>() else {
        return Ok(None);
    };
    let inferred = parts.into_iter().reduce(FileInference::then);
    let failing = format.bad_records.policy() == BadRecordPolicy::Fail;
    if cut == Cut::ObjectJoin && failing && inferred.as_ref().is_some_and(|i| !i.bad.is_empty()) {
        return Ok(None);
    }
    Ok(inferred)
}

/// The records starting in the last `bytes` of a splittable file, inferred (None when the file is
/// not splittable or not larger than that): a probe of where a chronological export's newest
/// fields are, without reading the rest.
pub async fn infer_tail(
    store: &Arc<dyn ObjectStore>,
    object: &object_store::ObjectMeta,
    format: &super::ExportJsonFormat,
    bytes: u64,
) -> Result<Option<FileInference>> {
    let size = object.size;
    if size <= bytes.saturating_mul(2) {
        return Ok(None);
    }
    if reads_splittable(store, None, &object.location, size, format.encoding).await?
        != Some(Cut::LineStart)
    {
        return Ok(None);
    }
    let range = ByteRange {
        start: size - bytes,
        end: size,
    };
    let tail = infer_range(
        Arc::clone(store),
        object.clone(),
        format.clone(),
        range,
        Cut::LineStart,
    );
    tail.await
}

/// Infers the records starting in `range` of a splittable file; None when a record crosses the
/// range's end at a `}{` cut.
async fn infer_range(
    store: Arc<dyn ObjectStore>,
    object: object_store::ObjectMeta,
    format: super::ExportJsonFormat,
    range: ByteRange,
    cut: Cut,
) -> Result<Option<FileInference>> {
    let file = crate::sources::file_name(format.store_url.as_ref(), &object.location);
    let from = range.start.saturating_sub(1);
    let end = RangeEnd::cut_at(range, object.size, cut);
    read_bytes_blocking(
        store,
        &object.location,
        from,
        file.clone(),
        move |mut reader| {
            let Some(start) = skip_to_record_start_blocking(&mut reader, range, cut)
                .map_err(|e| e.to_string())?
            else {
                return Ok(Some(FileInference::empty()));
            };
            let reading = Reading {
                file: &file,
                limit: None,
                max_record_bytes: format.max_record_bytes,
                bad_records: &format.bad_records,
            };
            infer::infer_range(reader, &reading, start, end)
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::arrow::util::display::array_value_to_string;
    use datafusion::datasource::listing::PartitionedFile;
    use datafusion::datasource::physical_plan::FileOpener;
    use datafusion::execution::object_store::ObjectStoreUrl;

    /// 16 records of 4 KiB (the 64 KiB a file's layout is judged by), each followed by
    /// `separator`.
    fn padded_head(separator: &str) -> Vec<u8> {
        let pad = "p".repeat(4096);
        (0..16)
            .flat_map(|i| format!("{{\"u\":{i},\"s\":\"{pad}\"}}{separator}").into_bytes())
            .collect()
    }

    /// A file that is newline-delimited in its first 64 KiB (16 lines of 4 KiB), then has every
    /// kind of line a range end can fall in or next to: blank and CRLF lines, braces in strings,
    /// a truncated line, garbage, a raw line break in a string, a value of the wrong type, a long
    /// line, and a last line without a line break.
    fn awkward_file() -> (Vec<u8>, u64) {
        let mut text = padded_head("\n");
        let region = text.len() as u64;
        let long = "l".repeat(150);
        text.extend(
            format!(
                "{{\"u\":100,\"s\":\"a\"}}\n\n{{\"u\":101,\"s\":\"bb\"}}\r\n\
                 {{\"u\":102,\"s\":\"x}}{{\\\"y\"}}\n{{\"u\":103,\n{{\"u\":104,\"s\":\"c\"}}\n\
                 not json\n{{\"u\":105,\"s\":\"cut\nshort\"}}\n{{\"u\":\"x\"}}\n\
                 {{\"u\":106,\"s\":\"{long}\"}}\n\n\r\n{{\"u\":107,\"s\":\"e\"}}"
            )
            .bytes(),
        );
        (text, region)
    }

    fn schema() -> datafusion::arrow::datatypes::SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("u", DataType::Int64, true),
            Field::new("s", DataType::Utf8, true),
        ]))
    }

    /// What reading `ranges` of the file at `path` gives, in range order: the rows (as text) and
    /// the bad records (offset, reason, excerpt).
    async fn read_ranges(
        path: &std::path::Path,
        ranges: &[(u64, u64)],
        known_bad: super::super::KnownBad,
    ) -> (Vec<String>, Vec<(u64, String, String)>) {
        let read = try_read_ranges(path, ranges, known_bad, BadRecordPolicy::Skip, false);
        read.await.unwrap()
    }

    /// [`read_ranges`] under `policy`, the ranges read last to first when `backwards` (as
    /// ranges running at once may finish): the first error any range stops with.
    async fn try_read_ranges(
        path: &std::path::Path,
        ranges: &[(u64, u64)],
        known_bad: super::super::KnownBad,
        policy: BadRecordPolicy,
        backwards: bool,
    ) -> Result<(Vec<String>, Vec<(u64, String, String)>)> {
        let log = Arc::new(BadRecordLog::new(policy));
        let opener = super::super::opener::JsonExportOpener {
            batch_size: 4,
            schema: schema(),
            store: Arc::new(LocalFileSystem::new()),
            local: Some(LocalFileSystem::new()),
            bad_records: Arc::clone(&log),
            max_record_bytes: 1 << 20,
            known_bad,
            store_url: ObjectStoreUrl::local_filesystem(),
            encoding: TextEncoding::default(),
            shape: None,
            split_at_cuts: true,
            unchecked_cuts: None,
        };
        let location = Path::from_filesystem_path(path).unwrap();
        let size = std::fs::metadata(path).unwrap().len();
        let mut by_range = Vec::new();
        let mut order: Vec<usize> = (0..ranges.len()).collect();
        if backwards {
            order.reverse();
        }
        for index in order {
            let (start, end) = ranges[index];
            let file = PartitionedFile::new_with_range(
                location.to_string(),
                size,
                start as i64,
                end as i64,
            );
            let batches: Vec<_> = opener.open(file)?.await?.try_collect().await?;
            let mut rows = Vec::new();
            for batch in batches {
                for row in 0..batch.num_rows() {
                    let cells: Vec<String> = batch
                        .columns()
                        .iter()
                        .map(|c| array_value_to_string(c, row).unwrap())
                        .collect();
                    rows.push(cells.join("|"));
                }
            }
            by_range.push((index, rows));
        }
        by_range.sort_by_key(|(index, _)| *index);
        let rows = by_range.into_iter().flat_map(|(_, rows)| rows).collect();
        let mut bad: Vec<_> = log
            .take_pending()
            .into_iter()
            .map(|b| (b.byte_offset.unwrap(), b.reason, b.excerpt))
            .collect();
        bad.sort_by_key(|b| b.0);
        Ok((rows, bad))
    }

    /// A reading of file "f" that sets bad records aside in `log`.
    fn skipping(log: &BadRecordLog) -> Reading<'_> {
        Reading {
            file: "f",
            limit: None,
            max_record_bytes: 1 << 20,
            bad_records: log,
        }
    }

    /// The file's bad records as schema inference finds them (what the scan is given).
    fn known_bad(path: &std::path::Path, text: &[u8]) -> super::super::KnownBad {
        let log = BadRecordLog::new(BadRecordPolicy::Skip);
        let reading = skipping(&log);
        let inferred = infer::infer_records(text, &reading).unwrap();
        let location = Path::from_filesystem_path(path).unwrap().to_string();
        Arc::new(std::sync::Mutex::new(
            [(location, inferred.bad)].into_iter().collect(),
        ))
    }

    /// Cut anywhere in two or three ranges, a file gives the rows and bad records (same offsets,
    /// reasons and excerpts) of its whole read: a range end right before, at or after a line
    /// break, inside a long line, ranges holding no line start, CRLF, blank and bad lines.
    #[tokio::test]
    async fn ranges_read_every_record_once_wherever_the_cuts_fall() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events.json");
        let (text, region) = awkward_file();
        std::fs::write(&path, &text).unwrap();
        let size = text.len() as u64;
        let known = known_bad(&path, &text);
        let whole = read_ranges(&path, &[(0, size)], Arc::clone(&known)).await;
        assert_eq!(whole.0.len(), 16 + 6, "{:?}", &whole.0[16..]);
        assert_eq!(whole.1.len(), 5, "{:#?}", whole.1);
        let no_known = read_ranges(&path, &[(0, size)], Arc::default()).await;
        for cut in region - 2..=size {
            let ranges = [(0, cut), (cut, size)];
            let ranges = &ranges[..if cut == size { 1 } else { 2 }];
            assert_eq!(
                read_ranges(&path, ranges, Arc::clone(&known)).await,
                whole,
                "{ranges:?}"
            );
            assert_eq!(
                read_ranges(&path, ranges, Arc::default()).await,
                no_known,
                "{ranges:?} without inference's bad records"
            );
        }
        for first in (region..size).step_by(13) {
            for second in (first + 1..size).step_by(9) {
                let ranges = [(0, first), (first, second), (second, size)];
                assert_eq!(
                    read_ranges(&path, &ranges, Arc::clone(&known)).await,
                    whole,
                    "{ranges:?}"
                );
            }
        }
        // One range per byte: most hold no line start at all.
        let bytes: Vec<(u64, u64)> = std::iter::once((0, region))
            .chain((region..size).map(|i| (i, i + 1)))
            .collect();
        assert_eq!(read_ranges(&path, &bytes, Arc::clone(&known)).await, whole);
    }

    /// A file that is not newline-delimited, or compressed, is read whole by the range at 0 and
    /// not at all by the others.
    #[tokio::test]
    async fn files_that_cannot_be_split_are_read_whole_by_the_first_range() {
        let dir = tempfile::tempdir().unwrap();
        let firehose = b"{\"u\":1}{\"u\":2}\n{\"u\":3}\n{\"u\":4}".to_vec();
        let pretty = b"{\n  \"u\": 1\n}\n{\n  \"u\": 2\n}\n".to_vec();
        let array = b"[{\"u\":1},\n{\"u\":2},\n{\"u\":3}]\n".to_vec();
        let mut gzip = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gzip, b"{\"u\":1}\n{\"u\":2}\n{\"u\":3}\n").unwrap();
        let gzip = gzip.finish().unwrap();
        for (name, text) in [
            ("firehose.json", firehose),
            ("pretty.json", pretty),
            ("array.json", array),
            ("events.json.gz", gzip),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, &text).unwrap();
            let size = text.len() as u64;
            let whole = read_ranges(&path, &[(0, size)], Arc::default()).await;
            assert!(
                whole.0.len() >= 2 && whole.1.is_empty(),
                "{name}: {whole:?}"
            );
            for cut in 1..size {
                let split = read_ranges(&path, &[(0, cut), (cut, size)], Arc::default()).await;
                assert_eq!(split, whole, "{name} cut at {cut}");
            }
        }
    }

    /// A Firehose file: back-to-back in its first 64 KiB (16 records of 4 KiB), then records
    /// whose strings hold `}{` (one with an object after it, as a range starting there would read
    /// one), a value of the wrong type, a line break between two records, and no line break at
    /// the end.
    fn firehose_file() -> (Vec<u8>, u64) {
        let mut text = padded_head("");
        let region = text.len() as u64;
        text.extend(
            concat!(
                r#"{"u":100,"s":"a}{}"}{"u":101,"s":"}{\"u\":7}"}{"u":"x","s":"wrong type"}"#,
                r#"{"u":102,"s":"q"}{"u":103,"s":"}{"}{"u":104,"s":"{}}{{"}"#,
                "{\"u\":105}\n{\"u\":106,\"s\":\"last\"}",
            )
            .bytes(),
        );
        (text, region)
    }

    /// `B(cut)` for `}{` cuts, and whether a whole read starts a record there.
    fn join_cut(text: &[u8], cut: u64) -> (u64, bool) {
        let n = text.len() as u64;
        let boundary = (cut - 1..n)
            .find(|&i| text[i as usize] == b'}' && text.get(i as usize + 1) == Some(&b'{'))
            .map_or(n, |i| i + 1);
        let window = Window {
            base: 0,
            bytes: text.to_vec(),
        };
        let mut pieces = Vec::new();
        Splitter::new(1 << 20).split(&window, true, &mut pieces);
        let starts_a_record = boundary == n || pieces.iter().any(|p| p.start == boundary);
        (boundary, starts_a_record)
    }

    /// Many cuts checked in one read give what checking each alone gives: the first that is no
    /// record start of a whole read (several cuts fall in one chunk of the file here).
    #[tokio::test]
    async fn cuts_checked_together_find_the_first_inside_a_record() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("firehose.json");
        let (text, region) = firehose_file();
        std::fs::write(&path, &text).unwrap();
        let location = Path::from_absolute_path(&path).unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new());
        let local = LocalFileSystem::new();
        let joins: Vec<u64> = (region..text.len() as u64)
            .filter(|&i| text[i as usize - 1] == b'}' && text[i as usize] == b'{')
            .collect();
        let inside: Vec<u64> = joins
            .iter()
            .copied()
            .filter(|&at| !join_cut(&text, at).1)
            .collect();
        assert!(
            inside.len() >= 3 && inside.len() < joins.len(),
            "{joins:?} {inside:?}"
        );
        let check = |cuts: Vec<u64>| {
            let (store, local, location) = (&store, &local, &location);
            async move {
                first_cut_inside_a_record(store, Some(local), location, &cuts, 1 << 20)
                    .await
                    .unwrap()
            }
        };
        for &at in &joins {
            let alone = check(vec![at]).await;
            assert_eq!(alone.is_none(), join_cut(&text, at).1, "cut {at}");
        }
        assert_eq!(check(joins.clone()).await, inside.first().copied());
        let starts: Vec<u64> = joins
            .iter()
            .copied()
            .filter(|at| !inside.contains(at))
            .collect();
        assert_eq!(check(starts.clone()).await, None);
        let mut last_inside = starts;
        last_inside.push(*inside.last().unwrap());
        last_inside.sort();
        assert_eq!(check(last_inside).await, inside.last().copied());
        assert_eq!(check(vec![text.len() as u64 + 10]).await, None);
    }

    /// Cut anywhere, a back-to-back file gives its whole read's rows and bad records when the cut
    /// is a record start; when it is inside a string the scan stops with a mismatch (under `skip`
    /// and `fail`, whichever range finishes first), never with rows or bad records made up of a
    /// string.
    #[tokio::test]
    async fn back_to_back_ranges_read_every_record_once_or_stop_at_a_cut_inside_a_string() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("firehose.json");
        let (text, region) = firehose_file();
        std::fs::write(&path, &text).unwrap();
        let size = text.len() as u64;
        let head = &text[..HEAD_LEN as usize];
        assert_eq!(
            splittable(head, size, &Path::from("f.json"), TextEncoding::default()),
            Some(Cut::ObjectJoin)
        );
        let whole = read_ranges(&path, &[(0, size)], Arc::default()).await;
        assert_eq!(whole.0.len(), 16 + 7, "{:?}", &whole.0[16..]);
        assert_eq!(whole.1.len(), 1, "{:#?}", whole.1);
        let (mut split, mut mismatched) = (0, 0);
        for cut in region - 2..size {
            let (boundary, starts_a_record) = join_cut(&text, cut);
            let ranges = [(0, cut), (cut, size)];
            for (policy, backwards) in [
                (BadRecordPolicy::Skip, false),
                (BadRecordPolicy::Skip, true),
                (BadRecordPolicy::Fail, true),
            ] {
                let read = try_read_ranges(&path, &ranges, Arc::default(), policy, backwards).await;
                let case = format!("cut {cut} (B = {boundary}), {policy:?}, backwards {backwards}");
                match (starts_a_record, read) {
                    (true, Ok(read)) if policy == BadRecordPolicy::Skip => {
                        assert_eq!(read, whole, "{case}")
                    }
                    // The whole read's bad record is the error.
                    (true, Err(e)) if policy == BadRecordPolicy::Fail => {
                        assert!(e.to_string().contains(&whole.1[0].1), "{case}: {e}")
                    }
                    (false, Err(e)) => {
                        let mismatch = crate::sources::find_cause::<SplitMismatch>(&e)
                            .unwrap_or_else(|| panic!("{case}: {e}"));
                        assert_eq!(mismatch.boundary, boundary, "{case}");
                    }
                    (_, read) => {
                        let past_head =
                            read.map(|(rows, bad)| (rows[16.min(rows.len())..].to_vec(), bad));
                        panic!("{case}: {past_head:?}")
                    }
                }
            }
            if starts_a_record {
                split += 1;
            } else {
                mismatched += 1;
            }
        }
        // Both kinds of cut were met.
        assert!(split > 10 && mismatched > 10, "{split} {mismatched}");
    }

    /// Inference of a file's byte ranges, merged in order, is inference of the whole file: types,
    /// field order, record count and bad-record offsets.
    #[test]
    fn ranges_infer_what_the_whole_file_infers() {
        let (mut text, region) = awkward_file();
        // A field seen first late in the file, and a type widened by a later record.
        text.extend(b"\n{\"late\":1,\"u\":1.5}\n{\"late\":\"x\"}\n");
        let log = BadRecordLog::new(BadRecordPolicy::Skip);
        let reading = skipping(&log);
        let whole = infer::infer_records(text.as_slice(), &reading).unwrap();
        let size = text.len() as u64;
        let infer_cut = |cuts: &[u64]| {
            let bounds: Vec<u64> = std::iter::once(0)
                .chain(cuts.iter().copied())
                .chain([size])
                .collect();
            bounds
                .windows(2)
                .map(|w| {
                    let range = ByteRange {
                        start: w[0],
                        end: w[1],
                    };
                    let from = range.start.saturating_sub(1) as usize;
                    let mut reader = &text[from..];
                    match skip_to_record_start_blocking(&mut reader, range, Cut::LineStart).unwrap()
                    {
                        Some(start) => {
                            infer::infer_range(reader, &reading, start, RangeEnd::of(range, size))
                                .unwrap()
                                .unwrap()
                        }
                        None => FileInference::empty(),
                    }
                })
                .reduce(FileInference::then)
                .unwrap()
        };
        for cut in region - 2..size {
            let split = infer_cut(&[cut]);
            assert_eq!(split.merged, whole.merged, "cut at {cut}");
            assert_eq!(split.records, whole.records, "cut at {cut}");
            assert_eq!(split.bad, whole.bad, "cut at {cut}");
        }
        for first in (region..size).step_by(11) {
            for second in (first + 1..size).step_by(13) {
                let split = infer_cut(&[first, second]);
                assert_eq!(
                    (&split.merged, split.records, &split.bad),
                    (&whole.merged, whole.records, &whole.bad),
                    "cuts at {first}, {second}"
                );
            }
        }
    }

    /// Inference of a back-to-back file's two byte ranges is the whole file's when the cut is a
    /// record start, and says the record crossing it when it is inside a string (the file is
    /// then inferred whole), never a type made up of a string's contents.
    #[test]
    fn back_to_back_ranges_infer_the_whole_file_or_find_the_cut_inside_a_string() {
        let (mut text, region) = firehose_file();
        text.extend(br#"{"late":1,"u":1.5}"#);
        let log = BadRecordLog::new(BadRecordPolicy::Skip);
        let reading = skipping(&log);
        let whole = infer::infer_records(text.as_slice(), &reading).unwrap();
        let size = text.len() as u64;
        let (mut split, mut crossed) = (0, 0);
        for cut in region - 2..size {
            let parts: Option<Vec<FileInference>> = [(0, cut), (cut, size)]
                .into_iter()
                .map(|(start, end)| {
                    let range = ByteRange { start, end };
                    let mut reader = &text[start.saturating_sub(1) as usize..];
                    let at = skip_to_record_start_blocking(&mut reader, range, Cut::ObjectJoin);
                    let end = RangeEnd::cut_at(range, size, Cut::ObjectJoin);
                    match at.unwrap() {
                        Some(start) => infer::infer_range(reader, &reading, start, end).unwrap(),
                        None => Some(FileInference::empty()),
                    }
                })
                .collect();
            let (boundary, starts_a_record) = join_cut(&text, cut);
            match parts {
                Some(parts) => {
                    assert!(starts_a_record, "cut {cut} (B = {boundary})");
                    let split_whole = parts.into_iter().reduce(FileInference::then).unwrap();
                    assert_eq!(
                        (&split_whole.merged, split_whole.records, &split_whole.bad),
                        (&whole.merged, whole.records, &whole.bad),
                        "cut {cut} (B = {boundary})"
                    );
                    split += 1;
                }
                None => {
                    assert!(!starts_a_record, "cut {cut} (B = {boundary})");
                    crossed += 1;
                }
            }
        }
        assert!(split > 10 && crossed > 10, "{split} {crossed}");
    }

    #[test]
    fn only_one_object_per_line_is_newline_delimited() {
        let yes: &[&[u8]] = &[
            b"{\"a\":1}\n{\"a\":2}\n",
            b"\xEF\xBB\xBF{\"a\":1}\r\n\r\n{\"a\":2}",
            // Bad lines are lines too: a cut string, garbage.
            b"{\"a\":1}\n{\"s\":\"cut\nshort\"}\nnot json\n{\"a\":2}\n",
            // A file cut short in its last line.
            b"{\"a\":1}\n{\"a\":",
        ];
        for head in yes {
            assert!(looks_newline_delimited(head, true), "{head:?}");
        }
        // The incomplete last line of the head is not judged.
        assert!(looks_newline_delimited(b"{\"a\":1}\n{\"a\":[", false));
        let no: &[&[u8]] = &[
            b"[{\"a\":1},\n{\"a\":2}]\n",
            b"{\"a\":1}{\"a\":2}\n{\"a\":3}\n",
            b"{\"a\":1}\n{\"a\":2} trailing\n",
            b"{\n  \"a\": 1\n}\n{\n  \"a\": 2\n}\n",
            b"{\"a\":{\n}}\n",
            b"not json\n{\"a\":1}\n",
            b"",
            b"\n\n",
        ];
        for head in no {
            assert!(!looks_newline_delimited(head, true), "{head:?}");
        }
        // A head without one complete line says nothing: read whole.
        assert!(!looks_newline_delimited(b"{\"a\":\"long", false));
    }

    #[test]
    fn compressed_and_transcoded_files_are_read_whole() {
        let path = Path::from("x.json");
        let ndjson = b"{\"a\":1}\n{\"a\":2}\n";
        let utf8 = TextEncoding::default();
        assert_eq!(splittable(ndjson, 100, &path, utf8), Some(Cut::LineStart));
        let joined = b"{\"a\":1}{\"a\":2}{\"a\":3}";
        assert_eq!(splittable(joined, 100, &path, utf8), Some(Cut::ObjectJoin));
        let latin1 = TextEncoding::from_label("latin1").unwrap();
        assert_eq!(splittable(ndjson, 100, &path, latin1), None);
        assert_eq!(splittable(joined, 100, &path, latin1), None);
        let gzip = [0x1f, 0x8b, 8, 0, b'{', b'}', b'\n'];
        assert_eq!(splittable(&gzip, 100, &path, utf8), None);
    }
}
