//! Turns the three JSON layouts found in exports into one: objects one after another.
//!
//! Newline-delimited JSON and Kinesis Firehose's back-to-back objects (`{..}{..}` with no
//! separator) are already that, and pass through untouched (no copy). A top-level array
//! `[{..},{..}]` has its outer brackets and top-level commas blanked to spaces, so positions
//! stay the same and the arrow JSON decoder reads the elements as a stream of objects. Works
//! chunk by chunk: state carries across chunk boundaries, memory stays bounded.

/// Streaming normalizer; feed chunks in order.
#[derive(Debug, Default)]
pub struct Framing {
    mode: Mode,
    nesting: Nesting,
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
    /// Processes one chunk. Returns `None` when the chunk can be used as is, else the rewritten
    /// bytes (same length).
    pub fn process(&mut self, chunk: &[u8]) -> Option<Vec<u8>> {
        if self.mode == Mode::Undecided {
            match chunk.iter().find(|b| !b.is_ascii_whitespace()) {
                None => return None,
                Some(b'[') => self.mode = Mode::Array,
                Some(_) => self.mode = Mode::Objects,
            }
        }
        if self.mode == Mode::Objects {
            return None;
        }
        let mut out = chunk.to_vec();
        for byte in out.iter_mut() {
            match self.nesting.step(*byte) {
                // The outer array's brackets (a second array after the first is unwrapped the
                // same way).
                Step::Open { depth: 1 } | Step::Close { depth: 0 } => *byte = b' ',
                Step::Comma { depth: 1 } => *byte = b'\n',
                _ => {}
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
    fn array_split_inside_a_string() {
        let got = run(&["[{\"s\":\"a,", "b]\"},{\"s\":1}]"]);
        assert_eq!(got, " {\"s\":\"a,b]\"}\n{\"s\":1} ");
    }
}
