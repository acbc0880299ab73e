//! The splitter against hand-written streams, fed in chunks of every size, with and without the
//! 64-byte blocks.

use super::*;

/// Splits `text` fed in chunks of `chunk` bytes; returns (kind, text) of each piece.
fn split(text: &[u8], chunk: usize, max: u64) -> Vec<(PieceKind, String)> {
    split_with(text, chunk, max, true)
}

/// [`split`], with or without the 64-byte blocks.
fn split_with(text: &[u8], chunk: usize, max: u64, blocks: bool) -> Vec<(PieceKind, String)> {
    let mut splitter = Splitter::new(max);
    splitter.blocks = blocks;
    let mut window = Window::default();
    let mut pieces = Vec::new();
    let mut shown = Vec::new();
    let mut take = |pieces: &mut Vec<Piece>, window: &Window| {
        for p in pieces.drain(..) {
            let text = match p.kind {
                PieceKind::Oversized { .. } => String::new(),
                _ => String::from_utf8_lossy(window.slice(p.start, p.end)).into_owned(),
            };
            shown.push((p.kind, text));
        }
    };
    for part in text.chunks(chunk) {
        window.bytes.extend_from_slice(part);
        splitter.split(&window, false, &mut pieces);
        take(&mut pieces, &window);
        window.drop_before(splitter.keep_from());
    }
    splitter.split(&window, true, &mut pieces);
    take(&mut pieces, &window);
    shown
}

fn objects(texts: &[&str]) -> Vec<(PieceKind, String)> {
    texts
        .iter()
        .map(|t| (PieceKind::Object, t.to_string()))
        .collect()
}

#[test]
fn objects_in_any_layout_and_any_chunking() {
    let text = br#"{"a":"}{\"","b":[{"c":1}]}{"a":2}
  {"a":"x\\"}"#;
    for chunk in 1..=text.len() {
        assert_eq!(
            split(text, chunk, 1 << 20),
            objects(&[
                r#"{"a":"}{\"","b":[{"c":1}]}"#,
                r#"{"a":2}"#,
                r#"{"a":"x\\"}"#
            ]),
            "chunk {chunk}"
        );
    }
}

#[test]
fn blocks_cut_as_the_byte_by_byte_scan_does() {
    // Random streams over the bytes that matter (and filler), long runs without escapes so
    // that whole blocks are taken, fed in chunks of several sizes.
    let alphabet = b"{{}}\"\"\"::,,aaaaaaaaaa   \n[]\\x";
    let mut random = crate::test_random::Random(0x9e37_79b9_7f4a_7c15);
    let mut next = || random.next();
    for case in 0..400 {
        let len = 1 + (next() % 700) as usize;
        let escapes = case % 3 == 0;
        let text: Vec<u8> = (0..len)
            .map(|_| {
                loop {
                    let b = alphabet[(next() % alphabet.len() as u64) as usize];
                    if escapes || b != b'\\' {
                        break b;
                    }
                }
            })
            .collect();
        for chunk in [1, 7, 64, 100, 1000] {
            for max in [50, 1 << 20] {
                assert_eq!(
                    split_with(&text, chunk, max, true),
                    split_with(&text, chunk, max, false),
                    "case {case}, chunk {chunk}, max {max}: {:?}",
                    String::from_utf8_lossy(&text)
                );
            }
        }
    }
}

#[test]
fn a_block_finds_the_end_past_strings_with_braces() {
    let mut text = br#"{"a":"}}}{{{","b":{"c":"x"},"d":""#.to_vec();
    text.resize(130, b'y');
    text.extend_from_slice(b"\"}\n{\"e\":1}");
    let got = split(&text, 1 << 10, 1 << 20);
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!(got[0].1.len(), 132);
    assert_eq!(got[1], (PieceKind::Object, "{\"e\":1}".into()));
}

#[test]
fn garbage_lines_and_truncated_ends_are_pieces_of_their_own() {
    let text = b"{\"a\":1}\n\x00\xffgarbage {\"a\"\n{\"a\":2}\n{\"a\":3,\"b\":\"cut";
    for chunk in [1, 3, 64] {
        let got = split(text, chunk, 1 << 20);
        assert_eq!(got.len(), 4, "{got:?}");
        assert_eq!(got[1].0, PieceKind::NotAnObject);
        assert_eq!(got[1].1, "\0\u{fffd}garbage {\"a\"");
        assert_eq!(got[2], (PieceKind::Object, "{\"a\":2}".into()));
        assert_eq!(got[3].0, PieceKind::Truncated);
    }
}

#[test]
fn oversized_records_are_not_kept() {
    let mut text = b"{\"a\":1}\n{\"big\":\"".to_vec();
    text.extend(std::iter::repeat_n(b'x', 5000));
    text.extend_from_slice(b"\"}\n{\"a\":2}\n");
    let mut splitter = Splitter::new(1000);
    let mut window = Window::default();
    let mut pieces = Vec::new();
    let mut most_held = 0;
    let mut taken = Vec::new();
    for part in text.chunks(100) {
        window.bytes.extend_from_slice(part);
        splitter.split(&window, false, &mut taken);
        // A reader takes the pieces as they come; the window keeps what is still needed.
        pieces.append(&mut taken);
        window.drop_before(splitter.keep_from());
        most_held = most_held.max(window.bytes.len());
    }
    splitter.split(&window, true, &mut pieces);
    assert!(most_held < 1200, "held {most_held} bytes");
    assert_eq!(pieces.len(), 3);
    let PieceKind::Oversized { excerpt } = &pieces[1].kind else {
        panic!("{pieces:?}");
    };
    assert!(excerpt.starts_with("{\"big\":\"xxx"));
    assert_eq!(pieces[1].end - pieces[1].start, 5010);
    assert!(pieces[1].kind_reason(1000).unwrap().contains("5010 bytes"));
}

#[test]
fn a_line_break_inside_a_string_cuts_the_record_short() {
    let text = b"{\"a\":1}{\"a\":\"cut\n{\"a\":\"x\\\nok\"}\n";
    for chunk in [1, 2, 64] {
        let got = split(text, chunk, 1 << 20);
        assert_eq!(
            got,
            [
                (PieceKind::Object, "{\"a\":1}".into()),
                (PieceKind::CutShort, "{\"a\":\"cut".into()),
                (PieceKind::Object, "{\"a\":\"x\\\nok\"}".into()),
            ],
            "chunk {chunk}"
        );
    }
}

#[test]
fn resync_after_a_cut_line_but_not_inside_valid_json() {
    let cut = b"{\"a\":\"cut\n{\"a\":2}\n{\"a\":3}";
    assert_eq!(resync_point(cut), Some(10));
    let valid = b"{\"a\":\n{\"b\":1}}";
    assert_eq!(resync_point(valid), None);
    assert_eq!(resync_point(b"{\"a\":tru}"), None);
}

#[test]
fn a_broken_line_followed_by_more_than_the_limit_loses_only_itself() {
    // A line cut before its closing brace nests the lines after it in the object; past the
    // limit the splitter resyncs at the next object line, as a whole read of a small file does.
    let mut text = b"{\"a\":1,\n".to_vec();
    for i in 0..40 {
        text.extend_from_slice(format!("{{\"a\":{i}}}\n").as_bytes());
    }
    for chunk in [1, 7, 64, 4096] {
        let pieces = split(&text, chunk, 64);
        assert_eq!(
            pieces[0],
            (PieceKind::Truncated, "{\"a\":1,\n".into()),
            "chunk {chunk}"
        );
        let objects: Vec<&String> = pieces[1..]
            .iter()
            .map(|(kind, text)| {
                assert_eq!(*kind, PieceKind::Object, "chunk {chunk}");
                text
            })
            .collect();
        assert_eq!(objects.len(), 40, "chunk {chunk}");
        assert_eq!(objects[39], "{\"a\":39}");
    }
}
