//! Where a large compressed newline-delimited JSON file's inflated text is cut into segments
//! ([`crate::sources::segments`]): in newline-delimited JSON a line start is a record start, so a
//! cut falls at a line break between a line that ends with `}` and one that starts with `{`. A
//! segment that finds none goes on for at most [`FORCED_CUT_BYTES`] and is then cut at any line
//! break: a segment's batches are held until it ends, so it must end (a record the forced cut
//! falls in fails the segment's check, and the run reads the file whole).

use crate::sources::segments::{CutRule, FORCED_CUT_BYTES, size_reached_at};

/// Cuts between two lines that look like whole objects.
pub struct BetweenObjectLines;

impl CutRule for BetweenObjectLines {
    // JSON's bad records are placed by byte offset.
    const COUNTS_LINES: bool = false;
    // A record that spans a cut fails the check; nothing to find past it.
    const READS_ON: bool = false;

    /// Just past the first line break once the segment is full, between a line that ends with `}`
    /// and one that starts with `{` (both in `chunk`); past any line break from
    /// [`FORCED_CUT_BYTES`] on.
    fn segment_end(&mut self, held: u64, chunk: &[u8]) -> Option<usize> {
        let from = size_reached_at(held, chunk);
        memchr::memchr_iter(b'\n', &chunk[from..])
            .map(|k| from + k)
            .find(|&k| {
                let line = chunk[..k].strip_suffix(b"\r").unwrap_or(&chunk[..k]);
                let between_objects = line.last() == Some(&b'}') && chunk.get(k + 1) == Some(&b'{');
                between_objects || held + k as u64 >= FORCED_CUT_BYTES
            })
            .map(|k| k + 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::segments::SEGMENT_BYTES;

    fn end(held: u64, chunk: &[u8]) -> Option<usize> {
        BetweenObjectLines.segment_end(held, chunk)
    }

    #[test]
    fn a_segment_ends_past_its_size_between_a_close_and_an_open() {
        let held = SEGMENT_BYTES - 10;
        let mut chunk = b"{\"a\":1}\n{\"a\":2}\r\n{\"b\":3".to_vec();
        // The first break is before the size is reached.
        assert_eq!(end(held, &chunk), Some(17));
        assert_eq!(end(0, &chunk), None);
        chunk[16] = b' ';
        assert_eq!(end(held, &chunk), None, "no line break past the size");
        assert_eq!(
            end(SEGMENT_BYTES + 5, b"{\"a\":1}\n"),
            None,
            "nothing after it"
        );
    }

    #[test]
    fn no_cut_where_the_next_line_is_not_a_record_start_until_the_size_limit() {
        // Every line break is followed by a space.
        let chunk = b"{\"a\":1}\n {\"a\":1}\n {\"a\":1}\n ".repeat(100);
        assert_eq!(end(SEGMENT_BYTES, &chunk), None);
        assert_eq!(end(FORCED_CUT_BYTES - 3, &chunk), Some(8));
    }
}
