//! One file's first bytes: compression, format, JSON layout and text encoding.

use std::io::Read;

use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};

use super::{Format, HEAD_BYTES};
use crate::error::{Error, Result};
use crate::sources::compression::Compression;

/// What the first bytes of one file say.
pub(super) struct Sniff {
    pub(super) format: Format,
    pub(super) compression: &'static str,
    pub(super) json_layout: Option<&'static str>,
    /// The decompressed head, as UTF-8.
    pub(super) head: Vec<u8>,
    /// Not UTF-8: the encoding label, and whether it is a guess (no byte-order mark).
    pub(super) encoding: Option<(&'static str, bool)>,
}

/// The encoding of a file's first bytes when they are not UTF-8: UTF-16 by its byte-order mark,
/// else windows-1252, a guess, for bytes UTF-8 cannot hold. Text that also holds UTF-8 characters
/// is UTF-8 with damaged records (read as windows-1252 its characters would change silently); a
/// character cut at the end of the head counts for nothing.
pub(super) fn sniff_encoding(head: &[u8]) -> Option<(&'static str, bool)> {
    if head.starts_with(&[0xFF, 0xFE]) {
        return Some(("utf-16le", false));
    }
    if head.starts_with(&[0xFE, 0xFF]) {
        return Some(("utf-16be", false));
    }
    let (mut invalid, mut utf8_characters) = (false, false);
    let mut chunks = head.utf8_chunks().peekable();
    while let Some(chunk) = chunks.next() {
        utf8_characters |= !chunk.valid().is_ascii();
        let cut_at_the_end = chunks.peek().is_none() && chunk.invalid().len() < 4;
        invalid |= !chunk.invalid().is_empty() && !cut_at_the_end;
    }
    (invalid && !utf8_characters).then_some(("windows-1252", true))
}

pub(super) async fn sniff(
    store: &std::sync::Arc<dyn ObjectStore>,
    meta: &ObjectMeta,
    name: &str,
) -> Result<Sniff> {
    let end = meta.size.min(HEAD_BYTES);
    let raw = store
        .get_range(&meta.location, 0..end)
        .await
        .map_err(|e| Error::storage(format!("reading {name}"), e))?;
    if raw.starts_with(b"PAR1") {
        return Ok(Sniff {
            format: Format::Parquet,
            compression: "none",
            json_layout: None,
            head: Vec::new(),
            encoding: None,
        });
    }
    let compression = Compression::sniff(&raw, name);
    let head = decompress_prefix(compression, &raw);
    let encoding = sniff_encoding(&head);
    let head = match encoding {
        Some((label, _)) => {
            let encoding = encoding_rs::Encoding::for_label(label.as_bytes())
                .expect("a label encoding_rs knows");
            encoding.decode(&head).0.into_owned().into_bytes()
        }
        None => head,
    };
    let label = match compression {
        Compression::None => "none",
        Compression::Gzip => "gzip",
        Compression::Zstd => "zstd",
    };
    // A byte-order mark before the JSON is skipped, as the JSON scan skips it.
    let text = &head[crate::sources::json::framing::bom_len(&head)..];
    let first = text.iter().copied().find(|b| !b.is_ascii_whitespace());
    let (format, json_layout) = match first {
        Some(b'[') => (Format::Json, Some("array")),
        Some(b'{') => (Format::Json, Some(json_layout(text))),
        _ => (Format::Csv, None),
    };
    Ok(Sniff {
        format,
        compression: label,
        json_layout,
        head,
        encoding,
    })
}

/// Decompresses as much of a file's first bytes as they hold (a cut stream ends the read).
fn decompress_prefix(compression: Compression, raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    let Ok(mut reader) = compression.reader(raw) else {
        return out;
    };
    let mut buffer = [0u8; 8192];
    while out.len() < HEAD_BYTES as usize * 4 {
        match reader.read(&mut buffer) {
            Ok(0) | Err(_) => break,
            Ok(n) => out.extend_from_slice(&buffer[..n]),
        }
    }
    out
}

/// Newline-delimited when the second object starts on a new line, else back to back.
pub(super) fn json_layout(head: &[u8]) -> &'static str {
    let mut stream =
        serde_json::Deserializer::from_slice(head).into_iter::<serde::de::IgnoredAny>();
    if stream.next().is_none() {
        return "newline-delimited";
    }
    let end = stream.byte_offset();
    let between: Vec<u8> = head[end..]
        .iter()
        .copied()
        .take_while(|b| b.is_ascii_whitespace())
        .collect();
    if end < head.len() && !between.contains(&b'\n') && head.get(end + between.len()) == Some(&b'{')
    {
        "back-to-back objects"
    } else {
        "newline-delimited"
    }
}
