//! Splits a mapping file's SQL into statements, keeping the line each one starts on.
//!
//! DataFusion parses one statement at a time and reports positions relative to it; pengine wants
//! every error to name the file and the line, so it splits the text itself (on `;` outside quotes
//! and comments) and remembers where each statement began.

/// One SQL statement and the 1-based line of the mapping file where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceStatement {
    pub sql: String,
    pub line: usize,
}

/// Splits `text` (whose first line is `first_line`) into statements. Comments stay in the SQL;
/// statements that are only whitespace and comments are dropped.
pub fn split(text: &str, first_line: usize) -> Vec<SourceStatement> {
    #[derive(Clone, Copy, PartialEq)]
    enum State {
        Code,
        Single,
        Double,
        LineComment,
        BlockComment,
    }
    let bytes = text.as_bytes();
    let mut statements = Vec::new();
    let mut state = State::Code;
    let mut start = 0;
    let mut i = 0;
    let mut push = |from: usize, to: usize| {
        let sql = &text[from..to];
        // The statement starts at its first line holding code, not at leading comments.
        if let Some(code) = code_offset(sql) {
            statements.push(SourceStatement {
                sql: sql.trim().to_string(),
                line: first_line + text[..from + code].matches('\n').count(),
            });
        }
    };
    while i < bytes.len() {
        let b = bytes[i];
        let next = bytes.get(i + 1).copied();
        match state {
            State::Code => match b {
                b'\'' => state = State::Single,
                b'"' => state = State::Double,
                b'-' if next == Some(b'-') => state = State::LineComment,
                b'/' if next == Some(b'*') => state = State::BlockComment,
                b';' => {
                    push(start, i);
                    start = i + 1;
                }
                _ => {}
            },
            State::Single if b == b'\'' => state = State::Code,
            State::Double if b == b'"' => state = State::Code,
            State::LineComment if b == b'\n' => state = State::Code,
            State::BlockComment if b == b'*' && next == Some(b'/') => {
                state = State::Code;
                i += 1;
            }
            _ => {}
        }
        i += 1;
    }
    push(start, text.len());
    statements
}

/// The byte offset of the first character of `sql` that is not whitespace or comment.
fn code_offset(sql: &str) -> Option<usize> {
    let mut rest = sql.trim_start();
    loop {
        if let Some(after) = rest.strip_prefix("--") {
            rest = after.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(after) = rest.strip_prefix("/*") {
            rest = after.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else if rest.is_empty() {
            return None;
        } else {
            return Some(sql.len() - rest.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_on_semicolons_outside_quotes_and_comments() {
        let text = "CREATE VIEW a AS SELECT ';' AS x; -- c;\n\nSELECT \"a;b\" /* ; */ FROM a;\n";
        let got = split(text, 1);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].sql, "CREATE VIEW a AS SELECT ';' AS x");
        assert_eq!(got[0].line, 1);
        assert!(got[1].sql.starts_with("-- c;\n\nSELECT \"a;b\""));
        assert_eq!(got[1].line, 3);
    }

    #[test]
    fn statement_line_is_its_first_code_line() {
        let got = split("\n\nSELECT 1;\n\n\nSELECT 2", 5);
        assert_eq!(got[0].line, 7);
        assert_eq!(got[1].line, 10);
    }

    #[test]
    fn comment_only_tail_is_dropped() {
        assert_eq!(split("SELECT 1; -- done\n/* end */\n", 1).len(), 1);
    }
}
