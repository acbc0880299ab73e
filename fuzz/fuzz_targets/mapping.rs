//! The mapping-file parser: directives, `${var}` placeholders, statement splitting, roles.
//!
//! Input: UTF-8 text. Up to the first NUL byte it is the mapping file; each further NUL-separated
//! part is a `name=value` variable (as given to `--var`). So a corpus file can be a real mapping
//! file, optionally followed by `\0source=s3://b/x`.
//!
//! Checked: nothing panics; every line an error or a statement names is a line of the file;
//! substitution leaves no `${` behind and names lines of its input; splitting agrees with
//! DataFusion's own parser on where statements are and what they are; a parsed file written back
//! out parses to the same statements; text cleaned for an init comment never becomes a directive.
#![no_main]

use std::path::Path;

use datafusion::sql::parser::{DFParser, Statement as DFStatement};
use datafusion::sql::sqlparser::ast;
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::tokenizer::Tokenizer;
use libfuzzer_sys::fuzz_target;
use pengine::Error;
use pengine::init::{draft, render};
use pengine::mapping::{MappingFile, Vars, statements, vars};

fuzz_target!(|data: &[u8]| {
    let Ok(input) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = input.split('\0');
    let text = parts.next().unwrap_or("");
    let vars: Vars = parts
        .filter_map(|p| vars::parse_assignment(p).ok())
        .collect();

    check_substitute(text, &vars);
    check_split(text);
    check_parse(text, &vars);
    for value in vars.values() {
        check_init_comment(value);
    }
});

/// Lines of `text` are 1 ..= (newlines + 1).
fn last_line(text: &str) -> usize {
    text.matches('\n').count() + 1
}

fn check_substitute(text: &str, vars: &Vars) {
    const FIRST: usize = 3;
    match vars::substitute(text, vars, FIRST) {
        Ok(out) => {
            // A `${` in the output may only come from a value, or from a `$` written just
            // before a placeholder whose value starts with `{` (or the reverse).
            let values_have_dollar = vars.values().any(|v| v.contains('$'));
            if !values_have_dollar && !text.contains("$${") && !text.contains("$}{") {
                assert!(
                    !out.contains("${"),
                    "placeholder left unexpanded: {text:?} -> {out:?}"
                );
            }
        }
        Err(vars::SubstituteError::Unset(v)) => {
            assert!((FIRST..FIRST + last_line(text)).contains(&v.line), "{v:?}");
            assert!(text.contains(&format!("${{{}", v.name)), "{v:?}");
        }
        Err(vars::SubstituteError::Malformed { line, .. }) => {
            assert!((FIRST..FIRST + last_line(text)).contains(&line), "{line}");
        }
    }
}

fn check_split(text: &str) {
    const FIRST: usize = 5;
    let got = statements::split(text, FIRST);
    let mut cursor = 0;
    let mut previous_line = FIRST;
    for statement in &got {
        assert!(!statement.sql.is_empty());
        assert_eq!(statement.sql, statement.sql.trim());
        assert!(statement.line >= previous_line, "lines go back: {got:?}");
        previous_line = statement.line;
        // Statements are pieces of the text, in order, each holding the line it names.
        let lines_at = |offset: usize| {
            let start = FIRST + text[..offset].matches('\n').count();
            start..=start + statement.sql.matches('\n').count()
        };
        let (offset, _) = text[cursor..]
            .match_indices(&statement.sql)
            .map(|(at, _)| (cursor + at, ()))
            .find(|(at, _)| lines_at(*at).contains(&statement.line))
            .unwrap_or_else(|| panic!("{statement:?} is not a piece of the text on its line"));
        let start_line = *lines_at(offset).start();
        // Splitting one statement again finds just itself (text the tokenizer cannot read
        // may be read differently from another start, so only readable text).
        if readable(text) {
            assert_eq!(
                statements::split(&statement.sql, start_line),
                vec![statement.clone()]
            );
        }
        cursor = offset + statement.sql.len();
        check_role(&statement.sql);
    }
    // Where DataFusion reads the whole text as statements, the split finds the same ones.
    if let Some(whole) = datafusion_statements(text).ok().filter(|_| readable(text)) {
        let pieces: Vec<usize> = got
            .iter()
            .map(|s| datafusion_statements(&s.sql).map_or(usize::MAX, |n| n))
            .collect();
        assert!(
            pieces.len() == whole && pieces.iter().all(|n| *n == 1),
            "DataFusion reads {whole} statement(s), the split {pieces:?}: {got:#?}"
        );
    }
}

/// Text the tokenizer reads, and places exactly (it reads `/*!` hint comments as code but places
/// their tokens a few columns early; pengine refuses a `;` in one).
fn readable(text: &str) -> bool {
    !text.contains("/*!") && Tokenizer::new(&GenericDialect {}, text).tokenize().is_ok()
}

fn datafusion_statements(sql: &str) -> Result<usize, ()> {
    DFParser::parse_sql(sql).map(|s| s.len()).map_err(|_| ())
}

/// A statement DataFusion reads as a query, a view, an external table or a setting has that role
/// in a mapping file: it is never refused, nor taken for another query.
fn check_role(sql: &str) {
    let Ok(parsed) = DFParser::parse_sql(sql) else {
        return;
    };
    let Ok([statement]) = <[DFStatement; 1]>::try_from(Vec::from(parsed)) else {
        return; // several statements: the split check reports that
    };
    let text = match statement {
        DFStatement::Statement(s) if matches!(*s, ast::Statement::Query(_)) => {
            format!("-- pengine: dataset = users\n{sql}\n")
        }
        DFStatement::CreateExternalTable(_) => {
            format!("-- pengine: dataset = users\n{sql}\n;\nSELECT 1\n")
        }
        DFStatement::Statement(s) => match *s {
            ast::Statement::CreateView(v) if !v.materialized => {
                format!("-- pengine: dataset = users\n{sql}\n;\nSELECT 1\n")
            }
            ast::Statement::Set(_) => {
                format!("-- pengine: dataset = users\n{sql}\n;\nSELECT 1\n")
            }
            _ => return,
        },
        _ => return,
    };
    if let Err(e) = MappingFile::parse(Path::new("users.sql"), &text, &Vars::new()) {
        let e = e.to_string();
        assert!(
            !["not allowed", "final query", "last statement"]
                .iter()
                .any(|m| e.contains(m)),
            "{e}\n{text}"
        );
    }
}

fn check_parse(text: &str, vars: &Vars) {
    let path = Path::new("interactions.sql");
    let parsed = MappingFile::parse(path, text, vars);
    let lines = 1..=last_line(text);
    let mapping = match parsed {
        Ok(mapping) => mapping,
        Err(Error::Mapping { line, .. }) => {
            assert!(lines.contains(&line), "error on line {line} of {lines:?}");
            return;
        }
        Err(e) => panic!("not a mapping error: {e}"),
    };
    for statement in mapping.setup.iter().chain([&mapping.query]) {
        assert!(
            lines.contains(&statement.line),
            "statement on line {} of {lines:?}: {statement:?}",
            statement.line
        );
    }
    // Written back out (values substituted), it parses to the same directives and statements.
    if vars.values().any(|v| v.contains('$')) {
        return;
    }
    let d = &mapping.directives;
    let mut again = format!("-- pengine: dataset = {}\n", mapping.dataset.key());
    if let Some(output) = &d.output {
        if output.contains(['\n', '\r']) {
            return;
        }
        again.push_str(&format!("-- pengine: output = {output}\n"));
    }
    for (key, names) in [
        ("textual", &d.textual),
        ("categorical", &d.categorical),
        ("not_categorical", &d.not_categorical),
    ] {
        if !names.is_empty() {
            again.push_str(&format!("-- pengine: {key} = {}\n", names.join(", ")));
        }
    }
    for statement in mapping.setup.iter().chain([&mapping.query]) {
        // On a line of its own: a statement may end in a `--` comment.
        again.push_str(&format!("{}\n;\n", statement.sql));
    }
    let reparsed = MappingFile::parse(path, &again, vars)
        .unwrap_or_else(|e| panic!("written back, it no longer parses: {e}\n{again}"));
    assert_eq!(reparsed.dataset, mapping.dataset);
    assert_eq!(reparsed.directives.output, d.output);
    // Compared as parsed: a statement's leading comment may join the file's comment block.
    let sql = |m: &MappingFile| -> Vec<String> {
        m.setup
            .iter()
            .chain([&m.query])
            .map(|s| DFParser::parse_sql(&s.sql).unwrap()[0].to_string())
            .collect()
    };
    assert_eq!(sql(&reparsed), sql(&mapping), "{again}");
}

/// Text `pengine init` writes into a comment (a sampled value, a column name) never becomes a
/// directive or SQL.
fn check_init_comment(hostile: &str) {
    let mut text = String::from("-- pengine: dataset = users\n");
    render::comment(&mut text, "Note:", &draft::clean(hostile));
    text.push_str("SELECT 'u' AS user_id, 't' AS tier");
    let mapping = MappingFile::parse(Path::new("users.sql"), &text, &Vars::new())
        .unwrap_or_else(|e| panic!("a cleaned comment broke the file: {e}\n{text}"));
    assert_eq!(
        mapping.directives,
        pengine::mapping::Directives {
            dataset: mapping.directives.dataset,
            ..Default::default()
        },
        "a cleaned comment became a directive:\n{text}"
    );
    assert!(mapping.setup.is_empty(), "{text}");
}
