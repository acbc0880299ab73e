//! A CSV file read in byte ranges, cut at every position of a region holding every kind of line a
//! cut can fall next to, gives a whole read's rows and bad records, or says the cut was inside a
//! record exactly when it was.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::util::display::array_value_to_string;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::FileOpener;
use datafusion::execution::object_store::ObjectStoreUrl;
use futures::TryStreamExt;
use object_store::local::LocalFileSystem;
use object_store::path::Path;

use super::*;
use crate::sources::bad_records::{BadRecordLog, BadRecordPolicy};
use crate::sources::split::HEAD_LEN;

/// Longest record in the test (the long line is longer).
const MAX_RECORD: u64 = 300;

/// A header and short lines filling the head, then: CRLF, a blank line, quoted commas, escaped
/// quotes, a field too many, one too few, a quote left open (read again from its next line),
/// bytes that are not UTF-8, a value that is not an integer, a quoted line break, a record over
/// the limit, blank CRLF lines and a last line without a line break. Also where the quoted line
/// break's second line starts: the one line start that is no record start.
pub(in crate::sources) fn awkward_file() -> (Vec<u8>, u64, u64) {
    let mut text = b"\xEF\xBB\xBFu,s\n".to_vec();
    for i in 0..700 {
        text.extend(format!("{i},{}\n", "p".repeat(90)).bytes());
    }
    let region = text.len() as u64;
    assert!(region > HEAD_LEN);
    let long = "l".repeat(400);
    text.extend(
        b"100,a\r\n\n101,\"x,y\"\n102,\"q\"\"uote\"\n103,b,extra\n104\n105,\"open\n106,c\n\
          107,caf",
    );
    text.push(0xE9);
    text.extend(b"\nnotint,f\n108,\"multi\n");
    let inside = text.len() as u64;
    text.extend(format!("line\"\n109,{long}\n110,d\r\n\r\n111,last").bytes());
    (text, region, inside)
}

/// The first line start at or after `x`.
pub(in crate::sources) fn line_start(text: &[u8], x: u64) -> u64 {
    if x == 0 {
        return 0;
    }
    (x - 1..text.len() as u64)
        .find(|&i| text[i as usize] == b'\n')
        .map_or(text.len() as u64, |i| i + 1)
}

fn opener(log: &Arc<BadRecordLog>) -> CsvExportOpener {
    let schema = Arc::new(Schema::new(vec![
        Field::new("u", DataType::Int64, true),
        Field::new("s", DataType::Utf8, true),
    ]));
    CsvExportOpener {
        dialect: CsvDialect::from_options(&Default::default()).unwrap(),
        max_record_bytes: MAX_RECORD,
        bad_records: Arc::clone(log),
        projected_schema: schema,
        projection: vec![0, 1],
        batch_size: 4,
        store: Arc::new(LocalFileSystem::new()),
        local: Some(LocalFileSystem::new()),
        store_url: ObjectStoreUrl::local_filesystem(),
        encoding: Default::default(),
        read_whole: Arc::default(),
        sample: None,
        unchecked_cuts: None,
        segments: true,
    }
}

/// A bad record as compared: offset, line, reason, excerpt.
type Bad = (u64, u64, String, String);

/// Reads `ranges` of the file in turn: the rows (as text) and bad records, or the first error.
async fn read_ranges(
    path: &std::path::Path,
    ranges: &[(u64, u64)],
    policy: BadRecordPolicy,
) -> std::result::Result<(Vec<String>, Vec<Bad>), DataFusionError> {
    let log = Arc::new(BadRecordLog::new(policy));
    let opener = opener(&log);
    let location = Path::from_filesystem_path(path).unwrap();
    let size = std::fs::metadata(path).unwrap().len();
    let mut rows = Vec::new();
    for &(start, end) in ranges {
        let file =
            PartitionedFile::new_with_range(location.to_string(), size, start as i64, end as i64);
        let batches: Vec<RecordBatch> = opener.open(file)?.await?.try_collect().await?;
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
    }
    let bad = log
        .take_pending()
        .into_iter()
        .map(|b| (b.byte_offset.unwrap(), b.line.unwrap(), b.reason, b.excerpt))
        .collect();
    Ok((rows, bad))
}

fn is_mismatch(e: &DataFusionError) -> bool {
    crate::sources::find_cause::<SplitMismatch>(e).is_some()
}

#[tokio::test]
async fn ranges_read_a_whole_reads_records_or_find_the_cut_inside_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("awkward.csv");
    let (text, region, inside) = awkward_file();
    std::fs::write(&path, &text).unwrap();
    let size = text.len() as u64;
    let whole = read_ranges(&path, &[(0, size)], BadRecordPolicy::Skip)
        .await
        .unwrap();
    assert_eq!(whole.0.len(), 700 + 7, "{:?}", &whole.0[700..]);
    let lines: Vec<u64> = whole.1.iter().map(|b| b.1).collect();
    // 103, 104, the open quote, 107, notint (found when its batch is cast), the long record.
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(sorted, [706, 707, 708, 710, 711, 714], "{:#?}", whole.1);
    let ordered = |mut read: (Vec<String>, Vec<Bad>)| {
        read.1.sort();
        read
    };
    let whole = ordered(whole);
    let mut cut_inside = 0;
    for cut in region - 2..=size {
        let ranges = [(0, cut), (cut, size)];
        let ranges = &ranges[..if cut == size { 1 } else { 2 }];
        let read = read_ranges(&path, ranges, BadRecordPolicy::Skip).await;
        match read {
            Ok(read) => assert_eq!(ordered(read), whole, "{ranges:?}"),
            Err(e) if is_mismatch(&e) => {
                assert_eq!(line_start(&text, cut), inside, "{ranges:?}: {e}");
                cut_inside += 1;
            }
            Err(e) => panic!("{ranges:?}: {e}"),
        }
    }
    // Every cut whose line start is the quoted line break's second line.
    assert!(cut_inside > 0);
    for first in (region..size).step_by(13) {
        for second in (first + 1..size).step_by(17) {
            let ranges = [(0, first), (first, second), (second, size)];
            let crosses = [first, second]
                .map(|c| line_start(&text, c))
                .contains(&inside);
            match read_ranges(&path, &ranges, BadRecordPolicy::Skip).await {
                Ok(read) if !crosses => assert_eq!(ordered(read), whole, "{ranges:?}"),
                Err(e) if crosses && is_mismatch(&e) => {}
                other => panic!("{ranges:?}: {:?}", other.map(|_| ())),
            }
        }
    }
}

/// Under `fail`, a range past the start that meets a bad record stops with the file's first bad
/// record (in file order), with its line; or, when it started inside a record, with the mismatch.
#[tokio::test]
async fn a_range_fails_with_the_files_first_bad_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("awkward.csv");
    let (text, region, inside) = awkward_file();
    std::fs::write(&path, &text).unwrap();
    let size = text.len() as u64;
    let (_, mut bad) = read_ranges(&path, &[(0, size)], BadRecordPolicy::Skip)
        .await
        .unwrap();
    bad.sort();
    let first = format!("line {} (byte {})", bad[0].1, bad[0].0);
    for cut in (region - 2..size).step_by(3) {
        let start = line_start(&text, cut);
        let read = read_ranges(&path, &[(cut, size)], BadRecordPolicy::Fail).await;
        // Bad records' offsets leave the byte-order mark out, as a whole read's do.
        let bad_after = bad.iter().any(|b| b.0 + 3 >= start);
        match read {
            Err(e) if start == inside => assert!(is_mismatch(&e), "{cut}: {e}"),
            Err(e) if bad_after => assert!(e.to_string().contains(&first), "{cut}: {e}"),
            Ok(_) if !bad_after => {}
            other => panic!("{cut}: {:?}", other.map(|_| ())),
        }
    }
}
