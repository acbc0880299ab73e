//! CSV schema inference of one large file on every core: its byte ranges read at the same time
//! ([`super::csv_ranges`]), their columns merged in file order, so the result is the whole
//! read's. Looked at in file order, a range's outcome counts only once the ranges before it are
//! known to have started and ended at record starts; a cut found inside a record makes the file
//! inferred whole, and the scan then reads it whole too.

use std::sync::Arc;

use datafusion::common::Result;
use futures::StreamExt;
use object_store::{ObjectMeta, ObjectStore};

use super::bad_records::{BadRecordLog, BadRecordPolicy};
use super::compression::read_bytes_blocking;
use super::csv_columns::{Columns, infer_records};
use super::csv_format::ExportCsvFormat;
use super::csv_ranges::{self, HeadFacts};
use super::csv_records::CsvRecords;
use super::object_read;
use super::split::{ByteRange, Cut, HEAD_LEN, InferSplit, RangeEnd, skip_to_record_start_blocking};

/// The columns of a large splittable file, inferred in byte ranges; None when it is read whole
/// (small, not splittable, or cut inside a record).
pub(super) async fn infer_in_ranges(
    store: &Arc<dyn ObjectStore>,
    object: &ObjectMeta,
    format: &ExportCsvFormat,
    split: InferSplit,
) -> Result<Option<Columns>> {
    let size = object.size;
    let Some(ranges) = split.ranges(size, None).filter(|_| format.split) else {
        return Ok(None);
    };
    let head = object_read::read_head(store, None, &object.location, HEAD_LEN.min(size)).await?;
    let Some(facts) = csv_ranges::head_facts(&head, size, &object.location, format.text()) else {
        return Ok(None);
    };
    let concurrency = ranges.len();
    let mut parts = futures::stream::iter(ranges)
        .map(|range| {
            infer_range(
                Arc::clone(store),
                object.clone(),
                format.clone(),
                range,
                facts,
            )
        })
        .buffered(concurrency);
    let mut merged = Columns::default();
    while let Some(part) = parts.next().await {
        match part? {
            Some(columns) => merged = merged.then(columns),
            None => {
                let file = super::file_name(format.store_url.as_ref(), &object.location);
                tracing::info!(
                    "{file}: a quoted value holds a line break past the first {} KiB; reading \
                     the file whole",
                    HEAD_LEN >> 10
                );
                format
                    .read_whole
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(object.location.to_string());
                return Ok(None);
            }
        }
    }
    Ok(Some(merged))
}

/// The columns of the records in the last `bytes` of a large splittable file (a probe: its bad
/// records are skipped, and a line start inside a quoted value can only misread it as records
/// that do not fit); None when the file is not one.
pub(super) async fn infer_tail(
    store: &Arc<dyn ObjectStore>,
    object: &ObjectMeta,
    format: &ExportCsvFormat,
    bytes: u64,
) -> Result<Option<Columns>> {
    let size = object.size;
    if !format.split || size <= 2 * bytes {
        return Ok(None);
    }
    let head = object_read::read_head(store, None, &object.location, HEAD_LEN.min(size)).await?;
    let Some(facts) = csv_ranges::head_facts(&head, size, &object.location, format.text()) else {
        return Ok(None);
    };
    let mut probe = format.clone();
    probe.bad_records = Arc::new(BadRecordLog::new(BadRecordPolicy::Skip));
    probe.infer_limit = None;
    let range = ByteRange {
        start: size - bytes,
        end: size,
    };
    infer_range(Arc::clone(store), object.clone(), probe, range, facts).await
}

/// The columns of the records starting in `range`; None when its end was inside a record.
async fn infer_range(
    store: Arc<dyn ObjectStore>,
    object: ObjectMeta,
    format: ExportCsvFormat,
    range: ByteRange,
    facts: HeadFacts,
) -> Result<Option<Columns>> {
    let file = super::file_name(format.store_url.as_ref(), &object.location);
    let from = range.start.saturating_sub(1);
    let end = RangeEnd::of(range, object.size);
    let location = object.location.clone();
    read_bytes_blocking(
        Arc::clone(&store),
        &object.location,
        from,
        file.clone(),
        move |mut reader| {
            let dialect = format.dialect();
            let new = |input| CsvRecords::new(input, &file, dialect, format.max_record_bytes);
            if range.start == 0 {
                let input = format.encoding.reader_without_bom(Box::new(reader));
                let records = new(input).in_range(0, facts.bom, end);
                return infer_records(records, dialect.has_header, &format, &|| Ok(0));
            }
            let Some(at) = skip_to_record_start_blocking(&mut reader, range, Cut::LineStart)
                .map_err(|e| e.to_string())?
            else {
                return Ok(Some(Columns::default()));
            };
            let start = facts.start_at(at, dialect.has_header);
            let mut records = new(Box::new(reader)).in_range(start.text, facts.bom, end);
            records.width = start.width;
            // Counted only for a bad record that stops the read (this runs in a blocking task).
            let lines_before = || {
                let handle = tokio::runtime::Handle::current();
                let mut prefix = handle
                    .block_on(object_read::blocking_reader(&store, None, &location))
                    .map_err(|e| e.to_string())?;
                csv_ranges::lines_before(&mut prefix, at).map_err(|e| e.to_string())
            };
            infer_records(records, start.header_pending, &format, &lines_before)
        },
    )
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::bad_records::{BadRecordLog, BadRecordPolicy};
    use crate::sources::csv_columns::FileColumns;
    use crate::sources::csv_scan::tests::{awkward_file, line_start};
    use object_store::ObjectStoreExt;
    use object_store::local::LocalFileSystem;

    fn format(policy: BadRecordPolicy) -> ExportCsvFormat {
        let mut format = ExportCsvFormat::new(
            Arc::new(datafusion::datasource::file_format::csv::CsvFormat::default()),
            super::super::csv_options::CsvDialect::from_options(&Default::default()).unwrap(),
            Arc::new(BadRecordLog::new(policy)),
        );
        format.max_record_bytes = 300;
        format
    }

    /// Names and types, to compare.
    fn shown(columns: FileColumns) -> Vec<String> {
        columns.describe()
    }

    /// Cut anywhere, inference of the ranges merged in order is the whole file's (or the cut is
    /// found inside a record, exactly where it is); under `fail` the error is the whole read's.
    #[tokio::test]
    async fn ranges_infer_what_the_whole_file_infers() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("awkward.csv");
        let (text, region, inside) = awkward_file();
        std::fs::write(&path, &text).unwrap();
        let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new());
        let location = object_store::path::Path::from_filesystem_path(&path).unwrap();
        let object = store.head(&location).await.unwrap();
        let size = object.size;
        for policy in [BadRecordPolicy::Skip, BadRecordPolicy::Fail] {
            let format = format(policy);
            let infer = |ranges: Vec<(u64, u64)>| {
                let (store, object, format) = (Arc::clone(&store), object.clone(), format.clone());
                async move {
                    let facts = csv_ranges::head_facts(
                        &text_head(&store, &object).await,
                        object.size,
                        &object.location,
                        format.text(),
                    )
                    .unwrap();
                    let mut merged = Columns::default();
                    for (start, end) in ranges {
                        let range = ByteRange { start, end };
                        let part = infer_range(
                            Arc::clone(&store),
                            object.clone(),
                            format.clone(),
                            range,
                            facts,
                        )
                        .await
                        .map_err(|e| e.to_string())?;
                        match part {
                            Some(columns) => merged = merged.then(columns),
                            None => return Ok(None),
                        }
                    }
                    Ok::<_, String>(Some(shown(merged.finish())))
                }
            };
            let whole = infer(vec![(0, size)]).await;
            match policy {
                BadRecordPolicy::Skip => assert!(whole.as_ref().is_ok_and(Option::is_some)),
                BadRecordPolicy::Fail => {
                    let e = whole.as_ref().unwrap_err();
                    assert!(e.contains("line 706 (byte 66426)"), "{e}");
                }
            }
            for cut in region - 2..size {
                let split = infer(vec![(0, cut), (cut, size)]).await;
                match split {
                    Ok(None) => assert_eq!(line_start(&text, cut), inside, "cut at {cut}"),
                    split => assert_eq!(split, whole, "cut at {cut}"),
                }
            }
        }
    }

    async fn text_head(store: &Arc<dyn ObjectStore>, object: &ObjectMeta) -> Vec<u8> {
        object_read::read_head(store, None, &object.location, HEAD_LEN.min(object.size))
            .await
            .unwrap()
            .to_vec()
    }
}
