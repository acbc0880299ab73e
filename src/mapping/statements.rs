//! Splits a mapping file's SQL into statements, keeping the line each one starts on.
//!
//! DataFusion parses one statement at a time and reports positions relative to it; pengine wants
//! every error to name the file and the line, so it splits the text itself and remembers where
//! each statement began. It splits where DataFusion's own tokenizer finds a `;`, so quotes,
//! comments (nested ones too), backquoted names and dollar-quoted strings are read exactly as the
//! parser reads them.

use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::{Location, Token, Tokenizer};

/// One SQL statement and the 1-based line of the mapping file where it starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceStatement {
    pub sql: String,
    pub line: usize,
}

/// Splits `text` (whose first line is `first_line`) into statements. Comments stay in the SQL;
/// statements that are only whitespace and comments are dropped. Text the tokenizer cannot read
/// (an unclosed quote or comment, a `;` inside a `/*!` hint comment) goes, with all that follows,
/// into one last statement, whose parsing then reports the problem.
pub fn split(text: &str, first_line: usize) -> Vec<SourceStatement> {
    let mut tokens = Vec::new();
    let mut unreadable = Tokenizer::new(&GenericDialect {}, text)
        .tokenize_with_location_into_buf(&mut tokens)
        .is_err();
    let line_starts: Vec<usize> = std::iter::once(0)
        .chain(text.match_indices('\n').map(|(i, _)| i + 1))
        .collect();
    let offset = |at: Location| {
        let line_start = line_starts[at.line as usize - 1];
        text[line_start..]
            .char_indices()
            .nth(at.column as usize - 1)
            .map_or(text.len(), |(i, _)| line_start + i)
    };
    let mut statements = Vec::new();
    let mut push = |from: usize, to: usize, code_line: Option<u64>| {
        if let Some(line) = code_line {
            statements.push(SourceStatement {
                sql: text[from..to].trim().to_string(),
                line: first_line + line as usize - 1,
            });
        }
    };
    let mut start = 0;
    // The line of the current statement's first token that is not whitespace or a comment.
    let mut code_line = None;
    for token in &tokens {
        match token.token {
            Token::SemiColon => {
                let end = offset(token.span.start);
                if !text[end..].starts_with(';') {
                    // A `;` in a `/*!` hint comment, which the tokenizer reads as code but
                    // cannot place: the rest stays one statement, which parsing refuses.
                    unreadable = true;
                    break;
                }
                push(start, end, code_line.take());
                start = end + 1;
            }
            Token::Whitespace(_) => {}
            _ => {
                code_line.get_or_insert(token.span.start.line);
            }
        }
    }
    let rest = &text[start..];
    if unreadable && code_line.is_none() && !rest.trim().is_empty() {
        let at = start + (rest.len() - rest.trim_start().len());
        code_line = Some(text[..at].matches('\n').count() as u64 + 1);
    }
    push(start, text.len(), code_line);
    statements
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

    /// Found by the `mapping` fuzz target: the old splitter read `;` inside backquotes, nested
    /// comments and dollar-quoted strings as statement ends, and `/*/` as a whole comment.
    #[test]
    fn splits_where_datafusion_does() {
        let sqls =
            |text: &str| -> Vec<String> { split(text, 1).into_iter().map(|s| s.sql).collect() };
        assert_eq!(
            sqls("SELECT 1 AS `a;b`; SELECT 2"),
            ["SELECT 1 AS `a;b`", "SELECT 2"]
        );
        assert_eq!(
            sqls("/* a /* b; */ c; */ SELECT 1"),
            ["/* a /* b; */ c; */ SELECT 1"]
        );
        assert_eq!(sqls("/*/ ; */ SELECT 1"), ["/*/ ; */ SELECT 1"]);
        assert_eq!(
            sqls("SELECT $$a;b$$; SELECT 2"),
            ["SELECT $$a;b$$", "SELECT 2"]
        );
        assert_eq!(
            sqls("SELECT E'a\\';b'; SELECT 2"),
            ["SELECT E'a\\';b'", "SELECT 2"]
        );
    }

    #[test]
    fn unreadable_text_ends_the_last_statement() {
        let got = split("SELECT 1;\n\nSELECT 'open; SELECT 2", 1);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].sql, "SELECT 'open; SELECT 2");
        assert_eq!(got[1].line, 3);
        let got = split("SELECT 1;\n /* open", 1);
        assert_eq!(got[1].sql, "/* open");
        assert_eq!(got[1].line, 2);
    }

    /// Found by the `mapping` fuzz target: the tokenizer reads a `/*!` hint comment as code but
    /// places its tokens a few columns early, so a `;` in it cut the text in the wrong place.
    #[test]
    fn semicolon_in_a_hint_comment_keeps_the_rest_whole() {
        let got = split("SELECT 1;\nSELECT 2 /*!50110 ; x*/ ; SELECT 3", 1);
        assert_eq!(got.len(), 2);
        assert_eq!(got[1].sql, "SELECT 2 /*!50110 ; x*/ ; SELECT 3");
        assert_eq!(got[1].line, 2);
    }
}
