//! Sources in other text encodings than UTF-8: exports from older systems come in Latin-1,
//! Windows-1252, UTF-16 or Shift_JIS, and users can only say so, not convert terabytes first.
//!
//! `OPTIONS ('format.encoding' 'windows-1252')` on a CSV or JSON table names the encoding with any
//! label of the WHATWG Encoding Standard (`latin1`, `utf-16le`, `shift_jis`, ...); the files are
//! transcoded to UTF-8 while they stream, after decompression, and a byte-order mark at the start
//! of a file is honoured (it names the encoding) and removed. Byte offsets of bad records are then
//! offsets in the UTF-8 text. Without the option the bytes are read as UTF-8, unchanged.

use std::io::Read;

use bytes::Bytes;
use datafusion::common::Result;
use encoding_rs::Encoding;
use futures::StreamExt;
use futures::stream::BoxStream;

/// The table option naming the encoding.
pub const ENCODING_OPTION: &str = "format.encoding";

/// A source's text encoding: UTF-8 (read as it is) or another one (transcoded).
#[derive(Debug, Clone, Copy, Default)]
pub struct TextEncoding(Option<&'static Encoding>);

impl TextEncoding {
    /// The encoding a label names (`latin1`, `windows-1252`, `utf-16le`, ...).
    pub fn from_label(label: &str) -> std::result::Result<TextEncoding, String> {
        let encoding = Encoding::for_label(label.trim().as_bytes())
            // The "replacement" encoding decodes everything to one error character.
            .filter(|e| *e != encoding_rs::REPLACEMENT)
            .ok_or_else(|| {
                format!(
                    "'{ENCODING_OPTION}' '{label}' is not an encoding label the WHATWG Encoding \
                     Standard knows; use e.g. 'utf-8', 'latin1', 'windows-1252', 'utf-16le', \
                     'shift_jis'"
                )
            })?;
        Ok(TextEncoding(
            (encoding != encoding_rs::UTF_8).then_some(encoding),
        ))
    }

    /// The encoding's name, a label [`TextEncoding::from_label`] takes back (None for UTF-8).
    pub fn label(self) -> Option<&'static str> {
        self.0.map(|e| e.name())
    }

    /// Whether the bytes are read as they are (UTF-8): offsets in the text are offsets in the
    /// file, so a file can be split into byte ranges.
    pub fn is_utf8(self) -> bool {
        self.0.is_none()
    }

    /// Wraps a blocking reader of a file's bytes so that it reads UTF-8.
    pub fn reader<'a>(self, inner: Box<dyn Read + Send + 'a>) -> Box<dyn Read + Send + 'a> {
        match self.0 {
            None => inner,
            Some(encoding) => Box::new(
                encoding_rs_io::DecodeReaderBytesBuilder::new()
                    .encoding(Some(encoding))
                    .bom_override(true)
                    .strip_bom(true)
                    .build(inner),
            ),
        }
    }

    /// Like [`TextEncoding::reader`], and for UTF-8 too: a byte-order mark is removed (a UTF-16
    /// one transcodes the file), so that a CSV header's first name is the name. For readers whose
    /// every path does the same (CSV inference and scan), or offsets would differ between them.
    pub fn reader_without_bom<'a>(
        self,
        inner: Box<dyn Read + Send + 'a>,
    ) -> Box<dyn Read + Send + 'a> {
        match self.0 {
            Some(_) => self.reader(inner),
            None => Box::new(
                encoding_rs_io::DecodeReaderBytesBuilder::new()
                    .utf8_passthru(true)
                    .strip_bom(true)
                    .build(inner),
            ),
        }
    }

    /// Transcodes a stream of a file's bytes to UTF-8, chunk by chunk.
    pub fn stream(
        self,
        input: BoxStream<'static, Result<Bytes>>,
    ) -> BoxStream<'static, Result<Bytes>> {
        let Some(encoding) = self.0 else {
            return input;
        };
        // Sniffs a byte-order mark (which wins over the label) and removes it.
        let decoder = encoding.new_decoder();
        let chunks = input.map(Some).chain(futures::stream::once(async { None }));
        chunks
            .scan(decoder, |decoder, chunk| {
                let (bytes, last) = match chunk {
                    Some(Ok(bytes)) => (bytes, false),
                    Some(Err(e)) => return futures::future::ready(Some(Err(e))),
                    None => (Bytes::new(), true),
                };
                let capacity = decoder
                    .max_utf8_buffer_length(bytes.len())
                    .unwrap_or(bytes.len() * 3 + 16);
                let mut text = String::with_capacity(capacity);
                let _ = decoder.decode_to_string(&bytes, &mut text, last);
                futures::future::ready(Some(Ok(Bytes::from(text))))
            })
            .filter(|chunk| futures::future::ready(!matches!(chunk, Ok(b) if b.is_empty())))
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use futures::TryStreamExt;

    use super::*;
    use crate::sources::in_chunks;

    async fn transcoded(label: &str, bytes: &[u8], size: usize) -> String {
        let encoding = TextEncoding::from_label(label).unwrap();
        let out: Vec<Bytes> = encoding
            .stream(in_chunks(bytes, size))
            .try_collect()
            .await
            .unwrap();
        String::from_utf8(out.concat()).unwrap()
    }

    fn read(label: &str, bytes: &[u8]) -> String {
        let encoding = TextEncoding::from_label(label).unwrap();
        let mut text = String::new();
        encoding
            .reader(Box::new(std::io::Cursor::new(bytes.to_vec())))
            .read_to_string(&mut text)
            .unwrap();
        text
    }

    #[tokio::test]
    async fn streams_and_readers_transcode_alike_across_chunk_boundaries() {
        let latin1 = b"caf\xe9,na\xefve\n";
        let mut utf16 = vec![0xFF, 0xFE];
        for unit in "caf\u{e9} \u{1F600}\n".encode_utf16() {
            utf16.extend(unit.to_le_bytes());
        }
        for size in [1, 2, 3, 1024] {
            assert_eq!(transcoded("latin1", latin1, size).await, "café,naïve\n");
            assert_eq!(transcoded("utf-16le", &utf16, size).await, "café 😀\n");
        }
        assert_eq!(read("windows-1252", latin1), "café,naïve\n");
        assert_eq!(read("utf-16le", &utf16), "café 😀\n");
        // A byte-order mark names the encoding whatever the label says.
        assert_eq!(read("latin1", &utf16), "café 😀\n");
    }

    #[test]
    fn labels_are_checked_and_utf8_is_read_as_is() {
        assert!(TextEncoding::from_label("UTF-8").unwrap().0.is_none());
        assert!(TextEncoding::from_label(" Latin1 ").unwrap().0.is_some());
        let err = TextEncoding::from_label("klingon").unwrap_err();
        assert!(
            err.contains("'klingon'") && err.contains("windows-1252"),
            "{err}"
        );
        assert!(TextEncoding::from_label("iso-2022-kr").is_err());
    }
}
