//! Turns the three JSON layouts found in exports into one: objects one after another.
//!
//! Newline-delimited JSON and Kinesis Firehose's back-to-back objects (`{..}{..}` with no
//! separator) are already that, and pass through untouched (no copy). A top-level array
//! `[{..},{..}]` has its outer brackets and top-level commas blanked to spaces, so positions
//! stay the same and the arrow JSON decoder reads the elements as a stream of objects. Works
//! chunk by chunk: state carries across chunk boundaries, memory stays bounded.
//!
//! A UTF-8 byte-order mark at the start of the file (Windows tools write one) is blanked to
//! spaces too, in any layout. Offsets therefore stay those of the (decompressed) file: the first
//! record after a mark is at byte 3.

/// The UTF-8 byte-order mark.
pub const BOM: &[u8] = b"\xEF\xBB\xBF";

/// How many bytes at the start of `bytes` are a UTF-8 byte-order mark (0 or 3). The one test for a
/// mark, used by the scan, schema inference and format detection alike.
pub fn bom_len(bytes: &[u8]) -> usize {
    if bytes.starts_with(BOM) { BOM.len() } else { 0 }
}

/// Streaming normalizer; feed chunks in order. The first non-empty chunk must hold the stream's
/// first [`BOM`]`.len()` bytes (or the whole stream), so that a byte-order mark is seen whole.
#[derive(Debug, Default)]
pub struct Framing {
    mode: Mode,
    nesting: Nesting,
    /// A non-empty chunk was seen (a byte-order mark can only be at the start of the first).
    started: bool,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// No non-whitespace byte seen yet.
    #[default]
    Undecided,
    /// Objects one after another: bytes pass through.
    Objects,
    /// A top-level array being unwrapped.
    Array,
}

impl Framing {
    /// A normalizer for a stream read from a line start inside a newline-delimited file (a byte
    /// range, see [`crate::sources::split`]): objects pass through, and neither a byte-order mark
    /// nor an array can start there.
    pub fn objects() -> Framing {
        Framing {
            mode: Mode::Objects,
            started: true,
            ..Framing::default()
        }
    }

    /// Processes one chunk. Returns `None` when the chunk can be used as is, else the rewritten
    /// bytes (same length).
    pub fn process(&mut self, chunk: &[u8]) -> Option<Vec<u8>> {
        let bom = if self.started || chunk.is_empty() {
            0
        } else {
            self.started = true;
            bom_len(chunk)
        };
        if self.mode == Mode::Undecided {
            match chunk[bom..].iter().find(|b| !b.is_ascii_whitespace()) {
                None => {}
                Some(b'[') => self.mode = Mode::Array,
                Some(_) => self.mode = Mode::Objects,
            }
        }
        if self.mode != Mode::Array && bom == 0 {
            return None;
        }
        let mut out = chunk.to_vec();
        // Blanked, not removed: the bytes after the mark keep their offsets in the file.
        out[..bom].fill(b' ');
        if self.mode == Mode::Array {
            for byte in out[bom..].iter_mut() {
                match self.nesting.step(*byte) {
                    // The outer array's brackets (a second array after the first is unwrapped
                    // the same way).
                    Step::Open { depth: 1 } | Step::Close { depth: 0 } => *byte = b' ',
                    Step::Comma { depth: 1 } => *byte = b'\n',
                    _ => {}
                }
            }
        }
        Some(out)
    }

    /// True when the input was a top-level array.
    pub fn is_array(&self) -> bool {
        self.mode == Mode::Array
    }
}

/// What one byte of JSON does to the nesting (bytes inside strings do nothing).
#[derive(Debug, PartialEq, Eq)]
enum Step {
    /// `{` or `[`; `depth` is the depth after it.
    Open {
        depth: u32,
    },
    /// `}` or `]`; `depth` is the depth after it.
    Close {
        depth: u32,
    },
    /// `,` at `depth`.
    Comma {
        depth: u32,
    },
    Other,
}

/// Tracks object/array nesting across chunks, skipping string contents (with escapes).
#[derive(Debug, Default)]
struct Nesting {
    depth: u32,
    in_string: bool,
    escaped: bool,
}

impl Nesting {
    fn step(&mut self, b: u8) -> Step {
        if self.in_string {
            if self.escaped {
                self.escaped = false;
            } else if b == b'\\' {
                self.escaped = true;
            } else if b == b'"' {
                self.in_string = false;
            }
            return Step::Other;
        }
        match b {
            b'"' => {
                self.in_string = true;
                Step::Other
            }
            b'{' | b'[' => {
                self.depth += 1;
                Step::Open { depth: self.depth }
            }
            b'}' | b']' => {
                self.depth = self.depth.saturating_sub(1);
                Step::Close { depth: self.depth }
            }
            b',' => Step::Comma { depth: self.depth },
            _ => Step::Other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(chunks: &[&str]) -> String {
        let mut f = Framing::default();
        let mut out = String::new();
        for c in chunks {
            match f.process(c.as_bytes()) {
                Some(v) => out.push_str(std::str::from_utf8(&v).unwrap()),
                None => out.push_str(c),
            }
        }
        out
    }

    #[test]
    fn objects_pass_through() {
        assert_eq!(
            run(&["{\"a\":1}{\"a\":2}", "\n{\"a\":3}"]),
            "{\"a\":1}{\"a\":2}\n{\"a\":3}"
        );
    }

    #[test]
    fn array_is_unwrapped_keeping_nested_structure() {
        let got = run(&["  [{\"a\":[1,2],\"s\":\"x],{\\\"\"},", "{\"a\":[3]}]"]);
        assert_eq!(got, "   {\"a\":[1,2],\"s\":\"x],{\\\"\"}\n{\"a\":[3]} ");
    }

    #[test]
    fn a_byte_order_mark_is_blanked_in_every_layout() {
        assert_eq!(
            run(&["\u{feff}{\"a\":1}", "{\"a\":2}"]),
            "   {\"a\":1}{\"a\":2}"
        );
        assert_eq!(
            run(&["\u{feff} [{\"a\":1},", "{\"a\":2}]"]),
            "     {\"a\":1}\n{\"a\":2} "
        );
        assert_eq!(run(&["\u{feff}", "\n{\"a\":1}"]), "   \n{\"a\":1}");
        // Only at the start of the stream.
        assert_eq!(run(&["{\"a\":1}", "\u{feff}"]), "{\"a\":1}\u{feff}");
        assert_eq!(run(&["", "\u{feff}[]"]), "     ");
    }

    #[test]
    fn array_split_inside_a_string() {
        let got = run(&["[{\"s\":\"a,", "b]\"},{\"s\":1}]"]);
        assert_eq!(got, " {\"s\":\"a,b]\"}\n{\"s\":1} ");
    }
}
