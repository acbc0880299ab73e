//! Opens one JSON file and streams it as record batches: sniff compression, unwrap arrays, cut
//! into records, decode (flat columns directly, see [`super::direct`]; others, and every batch the
//! direct decoder declines, with arrow's streaming JSON decoder). Memory is one batch of records
//! plus one chunk (a record longer than the limit is not held).
//!
//! A batch is decoded in one go. Only when that fails is it decoded again in small groups, and a
//! failing group record by record, so each bad record is found, named with its byte offset and
//! set aside (or, under `--on-bad-records fail`, stops the run) while the good ones are kept.

use std::sync::Arc;

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use datafusion::arrow::compute::concat_batches;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json::ReaderBuilder;
use datafusion::arrow::json::reader::Decoder;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::Result;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileOpenFuture, FileOpener};
use datafusion::error::DataFusionError;
use datafusion::execution::object_store::ObjectStoreUrl;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::ObjectStore;
use object_store::local::LocalFileSystem;

use super::direct::{DirectDecoder, Refusal};
use super::fit::{Fit, Shape};
use super::framing::{BOM, Framing};
use super::ranges::JsonCutCheck;
use super::records::{Piece, PieceKind, Splitter, Window};
use crate::sources::bad_records::BadRecordLog;
use crate::sources::compression::{self, Compression};
use crate::sources::object_read;
use crate::sources::sampled::SchemaMisfit;
use crate::sources::split::{self, ByteRange, Plan, RangeEnd};
use crate::sources::unchecked_cuts::{CutCheck, UncheckedCuts};

pub struct JsonExportOpener {
    pub batch_size: usize,
    pub schema: SchemaRef,
    pub store: Arc<dyn ObjectStore>,
    /// The store's file system, when it is this machine's.
    pub local: Option<LocalFileSystem>,
    pub bad_records: Arc<BadRecordLog>,
    pub max_record_bytes: u64,
    /// Bad records schema inference found, per file (offset, reason).
    pub known_bad: super::KnownBad,
    /// The store the files are on, to name them.
    pub store_url: ObjectStoreUrl,
    /// The files' text encoding: transcoded to UTF-8 after decompression.
    pub encoding: crate::sources::encoding::TextEncoding,
    /// When the columns come from a sample: the record type every record must fit.
    pub shape: Option<Arc<Shape>>,
    /// Large files may be cut into ranges or segments (see [`super::ranges`]).
    pub split_at_cuts: bool,
    /// Where a range past a file's start notes its cut ([`UncheckedCuts`]).
    pub unchecked_cuts: Option<Arc<UncheckedCuts>>,
}

impl FileOpener for JsonExportOpener {
    fn open(&self, file: PartitionedFile) -> Result<FileOpenFuture> {
        let store = Arc::clone(&self.store);
        let local = self.local.clone();
        let schema = Arc::clone(&self.schema);
        let batch_size = self.batch_size;
        let bad_records = Arc::clone(&self.bad_records);
        let max_record_bytes = self.max_record_bytes;
        let encoding = self.encoding;
        let shape = self.shape.clone();
        let split_at_cuts = self.split_at_cuts;
        let unchecked_cuts = self.unchecked_cuts.clone();
        let name = crate::sources::file_name(self.store_url.as_ref(), &file.object_meta.location);
        let known_bad = self
            .known_bad
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(file.object_meta.location.as_ref())
            .cloned()
            .unwrap_or_default();
        Ok(Box::pin(async move {
            let location = file.object_meta.location.clone();
            let size = file.object_meta.size;
            // A byte range of a split file: the records starting in it ([`super::ranges`]).
            let plan = match ByteRange::of(&file) {
                Some(range) => {
                    let plan = super::ranges::plan(
                        &store,
                        local.as_ref(),
                        &location,
                        size,
                        range,
                        encoding,
                        split_at_cuts,
                    );
                    plan.await?
                }
                None => Plan::Whole,
            };
            if matches!(plan, Plan::Ranges(range, _) if range.start == 0)
                && crate::failpoint::armed_for("first-range-late")
            {
                // Dropped with the attempt, which a later range ends.
                tokio::time::sleep(crate::failpoint::FIRST_RANGE_DELAY).await;
            }
            let (input, start, end, cut) = match plan {
                Plan::Nothing => return Ok(futures::stream::empty().boxed()),
                Plan::Whole => {
                    let input = object_read::byte_stream(&store, local.as_ref(), &location).await?;
                    (input, 0, RangeEnd::none(), None)
                }
                Plan::Ranges(range, cut) => {
                    let from = range.start.saturating_sub(1);
                    let input =
                        object_read::byte_stream_from(&store, local.as_ref(), &location, from)
                            .await?;
                    match split::skip_to_record_start(input, range, cut).await? {
                        Some((start, input)) => {
                            (input, start, RangeEnd::cut_at(range, size, cut), Some(cut))
                        }
                        None => return Ok(futures::stream::empty().boxed()),
                    }
                }
            };
            // A range that starts past the file's start checks, before it stops the scan with
            // an error, that it started at a record start (a string can hold `}{`, a record can
            // span lines).
            let unchecked_start = (cut.is_some() && start > 0).then(|| StartToCheck {
                check: Arc::new(JsonCutCheck {
                    store: Arc::clone(&store),
                    local: local.clone(),
                    location: location.clone(),
                    max_record_bytes,
                }),
                start,
            });
            // And whatever error the run stops with ([`UncheckedCuts`]).
            if let (Some(cuts), Some(unchecked)) = (&unchecked_cuts, &unchecked_start) {
                cuts.note(&name, start, || Arc::clone(&unchecked.check) as _);
            }
            // A range past the start is plain (see `ranges::splittable`): nothing to sniff.
            let (compression, raw) = match start {
                0 => compression::sniffed(input, location.as_ref()).await,
                _ => (Compression::None, input),
            };
            // Not after a cut turned out to fall inside a record (the run reads files whole).
            let segmented = compression.reads_ahead(size) && encoding.is_utf8() && split_at_cuts;
            let bytes = compression.decoded_stream(raw, size)?;
            let bytes = encoding.stream(bytes);
            let setup = DecodeSetup {
                schema,
                batch_size,
                shape,
                max_record_bytes,
                known_bad,
                location: name,
                bad_records,
            };
            if segmented {
                // A large compressed file: when its text is newline-delimited, its segments are
                // decoded on several cores ([`crate::sources::segments`]).
                let (head, rest) = object_read::head_of(bytes, split::HEAD_LEN as usize).await;
                let newline_delimited = super::ranges::looks_newline_delimited(&head, false);
                let bytes = futures::stream::once(async move { Ok(head) })
                    .chain(rest)
                    .boxed();
                if newline_delimited {
                    let setup = Arc::new(setup);
                    return Ok(crate::sources::segments::decode(
                        bytes,
                        super::segments::BetweenObjectLines,
                        Arc::new(move |segment| {
                            let text = segment.text;
                            let at = segment.start.offset;
                            setup.batches(text.input, at, RangeEnd::none(), Some(text.cut), None)
                        }),
                    ));
                }
                return Ok(setup.batches(bytes, 0, end, None, None));
            }
            let bytes = first_chunk_of_at_least(bytes, BOM.len()).await;
            Ok(setup.batches(bytes, start, end, None, unchecked_start))
        }))
    }
}

/// What every decoding of one file shares.
struct DecodeSetup {
    schema: SchemaRef,
    batch_size: usize,
    shape: Option<Arc<Shape>>,
    max_record_bytes: u64,
    /// Bad records schema inference found in the file, in file order (offset, reason).
    known_bad: Vec<(u64, String)>,
    location: String,
    bad_records: Arc<BadRecordLog>,
}

impl DecodeSetup {
    /// The batches of the records that start in `input` (the file's bytes from `start`, a record
    /// start, on) before `end`. `segment_cut`: set when `input` is a segment of a compressed file
    /// cut at its end ([`crate::sources::segments`]). `unchecked_start`: a cut to check before
    /// failing.
    fn batches(
        &self,
        input: BoxStream<'static, Result<Bytes>>,
        start: u64,
        end: RangeEnd,
        segment_cut: Option<Arc<AtomicBool>>,
        unchecked_start: Option<StartToCheck>,
    ) -> BoxStream<'static, Result<RecordBatch>> {
        let schema = Arc::clone(&self.schema);
        let decoder = match new_decoder(&schema, self.batch_size) {
            Ok(decoder) => decoder,
            Err(e) => return futures::stream::once(async move { Err(e) }).boxed(),
        };
        let state = DecodeState {
            input,
            decoder,
            direct: DirectDecoder::for_schema(&schema).map(|direct| match &self.shape {
                Some(shape) => direct.with_shape(Arc::clone(shape)),
                None => direct,
            }),
            shape: self.shape.clone(),
            schema,
            batch_size: self.batch_size,
            framing: match start {
                0 => Framing::default(),
                _ => Framing::objects(),
            },
            window: Window {
                base: start,
                bytes: Vec::new(),
            },
            splitter: splitter_at(self.max_record_bytes, start),
            end,
            pieces: VecDeque::new(),
            found: Vec::new(),
            known_bad: self.known_bad.iter().cloned().collect(),
            eof: false,
            location: self.location.clone(),
            bad_records: Arc::clone(&self.bad_records),
            unchecked_start,
            segment_cut,
        };
        futures::stream::try_unfold(state, |mut state| async move {
            let batch = match state.next_batch().await {
                Ok(batch) => batch,
                Err(e) => return Err(state.checked_error(e).await),
            };
            Ok(batch.map(|b| (b, state)))
        })
        .boxed()
    }
}

/// Where a range past the file's start started (at a `}{` or a line start), to check when it is
/// about to fail.
struct StartToCheck {
    check: Arc<JsonCutCheck>,
    start: u64,
}

impl StartToCheck {
    /// `error`, or the mismatch that made it up when the range did not start at a record.
    async fn error(self, error: DataFusionError, file: String) -> DataFusionError {
        match self.check.first_inside_a_record(&[self.start]).await {
            Ok(None) => error,
            Ok(Some(_)) => split::SplitMismatch {
                file: file.clone(),
                boundary: self.start,
                detail: "the range's first bytes are inside a record".into(),
            }
            .into_error(),
            Err(check_failed) => {
                tracing::debug!("checking where {file} was cut: {check_failed}");
                error
            }
        }
    }
}

/// A splitter that starts cutting at `start` (a record start; 0 for the whole file).
fn splitter_at(max_record_bytes: u64, start: u64) -> Splitter {
    let mut splitter = Splitter::new(max_record_bytes);
    splitter.restart_at(start);
    splitter
}

/// `stream` with its first chunk holding at least `n` bytes (or all there are): [`Framing`] looks
/// for a byte-order mark in the first chunk, and a decompressor may hand out a tiny one. An error
/// met on the way is passed on in its place.
async fn first_chunk_of_at_least(
    stream: BoxStream<'static, Result<Bytes>>,
    n: usize,
) -> BoxStream<'static, Result<Bytes>> {
    let (first, rest) = object_read::head_of(stream, n).await;
    futures::stream::once(async move { Ok(first) })
        .chain(rest)
        .boxed()
}

pub(super) fn new_decoder(schema: &SchemaRef, batch_size: usize) -> Result<Decoder> {
    Ok(ReaderBuilder::new(Arc::clone(schema))
        .with_batch_size(batch_size)
        .with_coerce_primitive(true)
        .build_decoder()?)
}

use crate::sources::BATCH_BYTES;

/// Records decoded together when looking for the bad ones in a batch that failed.
const PROBE_RECORDS: usize = 64;

struct DecodeState {
    input: BoxStream<'static, Result<Bytes>>,
    decoder: Decoder,
    /// Decodes flat schemas without arrow-json's tape; declines batches it cannot vouch for.
    direct: Option<DirectDecoder>,
    /// The sample's record type, when the columns come from one (see [`super::fit`]).
    shape: Option<Arc<Shape>>,
    schema: SchemaRef,
    batch_size: usize,
    framing: Framing,
    /// Decompressed bytes from the first record not yet decoded.
    window: Window,
    splitter: Splitter,
    /// Where this byte range's records stop (nowhere when the file is read whole).
    end: RangeEnd,
    /// Records found and not yet decoded.
    pieces: VecDeque<Piece>,
    /// Scratch for the splitter's output.
    found: Vec<Piece>,
    /// Bad records schema inference found ahead, in file order (offset, reason).
    known_bad: VecDeque<(u64, String)>,
    eof: bool,
    location: String,
    bad_records: Arc<BadRecordLog>,
    /// A range cut past the file's start: checked before it stops the scan with an
    /// error ([`Self::checked_error`]).
    unchecked_start: Option<StartToCheck>,
    /// A segment of a compressed file ([`crate::sources::segments`]): set when it was cut at its end, where
    /// no record may still be open.
    segment_cut: Option<Arc<AtomicBool>>,
}

impl DecodeState {
    async fn next_batch(&mut self) -> Result<Option<RecordBatch>> {
        loop {
            while self.pieces.len() < self.batch_size
                && !self.eof
                && !self.range_read()
                && !self.holding_enough()
            {
                self.read_more().await?;
            }
            if self.pieces.is_empty() {
                return Ok(None);
            }
            let take = self.pieces.len().min(self.batch_size);
            let batch: Vec<Piece> = self.pieces.drain(..take).collect();
            if let Some(batch) = self.decode(batch)? {
                return Ok(Some(batch));
            }
        }
    }

    /// Whether the records waiting are already many bytes (large records make smaller batches,
    /// so memory stays bounded whatever the record size).
    fn holding_enough(&self) -> bool {
        self.pieces
            .front()
            .is_some_and(|first| self.window.end() - first.start >= BATCH_BYTES as u64)
    }

    /// Whether every record starting in this byte range is found (the rest of the file is the
    /// next range's).
    fn range_read(&self) -> bool {
        self.end
            .reached(self.splitter.pending_start(), self.splitter.scanned())
    }

    /// Reads the next chunk and cuts what it completes into records.
    async fn read_more(&mut self) -> Result<()> {
        let keep = self
            .pieces
            .front()
            .map_or(self.splitter.keep_from(), |p| p.start)
            .min(self.splitter.keep_from());
        self.window.drop_before(keep);
        match self.input.next().await {
            Some(chunk) => {
                let chunk = chunk.map_err(|e| self.context(e))?;
                let at = self.window.end();
                match self.framing.process(&chunk) {
                    Some(rewritten) => self.window.bytes.extend_from_slice(&rewritten),
                    None => self.window.bytes.extend_from_slice(&chunk),
                }
                self.end.observe(at, &chunk);
            }
            None => {
                self.eof = true;
                self.check_segment_end()?;
            }
        }
        self.splitter.split(&self.window, self.eof, &mut self.found);
        self.take_found()
    }

    /// Fails when this is a segment cut at its end inside a record: the next segment did not start
    /// at a record start.
    fn check_segment_end(&mut self) -> Result<()> {
        let cut = self
            .segment_cut
            .as_ref()
            .is_some_and(|cut| cut.load(Ordering::SeqCst));
        // Every byte is cut into records already (`read_more`): one still open spans the cut.
        match self.splitter.pending_start() {
            Some(start) if cut => Err(split::SplitMismatch {
                file: self.location.clone(),
                boundary: self.window.end(),
                detail: format!(
                    "the record at byte {start} spans a line break where the compressed file's \
                     text was cut"
                ),
            }
            .into_error()),
            _ => Ok(()),
        }
    }

    /// Queues the pieces the splitter found, marking those inference found bad. Fails when one
    /// crosses the range's end at a cut inside it (at a line start, a valid one only:
    /// [`RangeEnd::crossed_by_record`]): the next range did not start at a record.
    fn take_found(&mut self) -> Result<()> {
        let end = &self.end;
        let window = &self.window;
        if let Some((piece, boundary)) = self.found.iter().find_map(|p| {
            let valid = || p.is_valid_json(window);
            Some((p, end.crossed_by_record(p.start, p.end, valid)?))
        }) {
            let crossed = super::ranges::crossed_cut(&self.location, piece, boundary, end.cut());
            return Err(crossed.into_error());
        }
        // Records starting past the range's end are the next range's.
        self.found.retain(|piece| end.includes(piece.start));
        for mut piece in self.found.drain(..) {
            while self
                .known_bad
                .front()
                .is_some_and(|(at, _)| *at < piece.start)
            {
                self.known_bad.pop_front();
            }
            if let Some((at, reason)) = self.known_bad.front()
                && *at == piece.start
                && piece.kind == PieceKind::Object
            {
                piece.kind = PieceKind::Rejected(reason.clone());
            }
            self.pieces.push_back(piece);
        }
        Ok(())
    }

    /// The error a range stops the scan with: a [`SplitMismatch`](split::SplitMismatch) instead
    /// when it was cut at a place that is no record start (then the error is made up of a
    /// string's contents or a record's inner lines).
    fn checked_error(
        &mut self,
        error: DataFusionError,
    ) -> impl Future<Output = DataFusionError> + Send + 'static {
        let location = self.location.clone();
        let start = self.unchecked_start.take();
        async move {
            match start {
                Some(check) => check.error(error, location).await,
                None => error,
            }
        }
    }

    /// Decodes one batch of records. Fast paths: the direct decoder, then arrow-json on the
    /// whole batch. When that fails, the batch is decoded in small groups, and a failing group
    /// record by record, to set the bad ones aside (with the records the direct decoder found
    /// not to be JSON). None when every record was bad.
    fn decode(&mut self, mut batch: Vec<Piece>) -> Result<Option<RecordBatch>> {
        if let Some(direct) = &self.direct {
            let objects: Vec<usize> = (0..batch.len())
                .filter(|&i| batch[i].kind == PieceKind::Object)
                .collect();
            let decoded = if objects.len() == batch.len() {
                direct.decode(&self.window, &batch)
            } else {
                let pieces: Vec<Piece> = objects.iter().map(|&i| batch[i].clone()).collect();
                direct.decode(&self.window, &pieces)
            };
            match decoded {
                Ok(decoded) if objects.len() == batch.len() => return Ok(Some(decoded)),
                // Records that are not JSON are bad records, whatever arrow-json makes of them.
                Err(Refusal::Invalid(invalid)) => {
                    for (index, reason) in invalid {
                        batch[objects[index]].kind = PieceKind::Rejected(reason);
                    }
                }
                Err(Refusal::Misfit(index, field)) => {
                    return Err(self.misfit(&batch[objects[index]], field));
                }
                Ok(_) | Err(Refusal::Declined) => {}
            }
        } else if let Some(shape) = &self.shape {
            for piece in batch.iter_mut().filter(|p| p.kind == PieceKind::Object) {
                match super::fit::check_record(shape, self.window.slice(piece.start, piece.end)) {
                    Fit::Fits => {}
                    Fit::Invalid(reason) => piece.kind = PieceKind::Rejected(reason),
                    Fit::Misfit(field) => return Err(self.misfit(piece, field)),
                }
            }
        }
        if batch.iter().all(|p| p.kind == PieceKind::Object)
            && let Ok(decoded) = decode_into(&mut self.decoder, &self.window, &batch)
        {
            return Ok(decoded);
        }
        self.decoder = new_decoder(&self.schema, self.batch_size)?;
        let mut probe = new_decoder(&self.schema, PROBE_RECORDS)?;
        let mut parts = Vec::new();
        for group in batch.chunks(PROBE_RECORDS) {
            if group.iter().all(|p| p.kind == PieceKind::Object)
                && let Ok(decoded) = decode_into(&mut probe, &self.window, group)
            {
                parts.extend(decoded);
                continue;
            }
            probe = new_decoder(&self.schema, PROBE_RECORDS)?;
            let mut good = Vec::new();
            let mut restart = None;
            for piece in group {
                match self.check(piece)? {
                    Verdict::Good => good.push(piece.clone()),
                    Verdict::Bad => {}
                    Verdict::BadRestartAt(offset) => {
                        restart = Some(offset);
                        break;
                    }
                }
            }
            let decoded =
                decode_into(&mut probe, &self.window, &good).map_err(|e| self.context(e.into()))?;
            parts.extend(decoded);
            if let Some(offset) = restart {
                // A broken line swallowed what follows it: cut again from the next line.
                self.pieces.clear();
                self.splitter.restart_at(offset);
                self.splitter.split(&self.window, self.eof, &mut self.found);
                self.take_found()?;
                break;
            }
        }
        if parts.is_empty() {
            return Ok(None);
        }
        let schema = parts[0].schema();
        Ok(Some(concat_batches(&schema, &parts)?))
    }

    /// Judges one record alone; a bad one is recorded (under `fail`, it is the error).
    fn check(&mut self, piece: &Piece) -> Result<Verdict> {
        let reason = match piece.kind_reason(self.splitter.max_record()) {
            Some(reason) => reason,
            None => {
                let mut alone = new_decoder(&self.schema, 1)?;
                match decode_into(&mut alone, &self.window, std::slice::from_ref(piece)) {
                    Ok(_) => return Ok(Verdict::Good),
                    Err(e) => e.to_string().trim_start_matches("Json error: ").to_string(),
                }
            }
        };
        let (bad, resync) = piece.to_bad_record(&self.location, reason, &self.window);
        self.bad_records.record(bad)?;
        Ok(match resync {
            Some(offset) => Verdict::BadRestartAt(offset),
            None => Verdict::Bad,
        })
    }

    /// The error that stops a scan whose columns came from a sample at a record that does not
    /// fit them (the run then infers from every record and starts again).
    fn misfit(&self, piece: &Piece, field: String) -> DataFusionError {
        DataFusionError::External(Box::new(SchemaMisfit {
            file: self.location.clone(),
            offset: piece.start,
            field,
            sampled: self.shape.as_ref().map_or(0, |s| s.sampled),
        }))
    }

    fn context(&self, e: DataFusionError) -> DataFusionError {
        DataFusionError::Execution(format!(
            "reading JSON {}: {}",
            self.location,
            e.strip_backtrace()
        ))
    }
}

/// Whether only whitespace separates two records.
fn only_blanks_between(window: &Window, a: &Piece, b: &Piece) -> bool {
    a.end == b.start
        || window
            .slice(a.end, b.start)
            .iter()
            .all(u8::is_ascii_whitespace)
}

/// What one record turned out to be.
enum Verdict {
    Good,
    Bad,
    /// Bad, and the records after it must be cut again from this offset.
    BadRestartAt(u64),
}

/// Decodes `pieces` (whole objects in `window`, in order) into one batch.
pub(super) fn decode_into(
    decoder: &mut Decoder,
    window: &Window,
    pieces: &[Piece],
) -> std::result::Result<Option<RecordBatch>, ArrowError> {
    if let (Some(first), Some(last)) = (pieces.first(), pieces.last())
        && pieces
            .windows(2)
            .all(|w| only_blanks_between(window, &w[0], &w[1]))
    {
        // One call for a run of records with nothing but blanks between them.
        let records = window.slice(first.start, last.end);
        if decoder.decode(records)? != records.len() {
            return Err(ArrowError::JsonError("more values than records".into()));
        }
        return decoder.flush();
    }
    for piece in pieces {
        let record = window.slice(piece.start, piece.end);
        let consumed = decoder.decode(record)?;
        if consumed != record.len() {
            return Err(ArrowError::JsonError(
                "more than one value in the record".into(),
            ));
        }
    }
    decoder.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_first_chunk_holds_a_whole_byte_order_mark() {
        let one_byte_chunks = futures::stream::iter(
            b"\xEF\xBB\xBF{}"
                .iter()
                .map(|b| Ok(Bytes::copy_from_slice(&[*b]))),
        )
        .boxed();
        let chunks: Vec<Bytes> = first_chunk_of_at_least(one_byte_chunks, BOM.len())
            .await
            .map(|c| c.unwrap())
            .collect()
            .await;
        assert_eq!(chunks[0].as_ref(), BOM);
        assert_eq!(chunks[1..].concat(), b"{}");
        let empty = futures::stream::empty().boxed();
        let chunks: Vec<_> = first_chunk_of_at_least(empty, 3).await.collect().await;
        assert_eq!(chunks.len(), 1);
    }
}
