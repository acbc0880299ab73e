//! Reads a mapping file: directives, variables, and the SQL statements in their roles.
//!
//! A mapping file is plain DataFusion SQL: any number of `CREATE EXTERNAL TABLE` / `CREATE VIEW`
//! (and `SET`) statements, then exactly one final query whose columns are the dataset's columns.
//! Everything that could make pengine write somewhere other than its output (COPY, INSERT, ...)
//! is refused here, before anything runs.

pub mod directives;
pub mod statements;
pub mod tables;
pub mod vars;

use std::path::{Path, PathBuf};

use datafusion::sql::parser::{DFParser, Statement as DFStatement};
use datafusion::sql::sqlparser::ast;

use crate::error::{Error, Result};
use crate::personalize::DatasetType;
pub use directives::Directives;
pub use statements::SourceStatement;
pub use tables::{ExternalTable, external_tables};
pub use vars::Vars;

/// The name of the optional variables file looked up beside each mapping file.
pub const VARS_FILE: &str = "pengine.toml";

/// A parsed, variable-substituted mapping file, ready for the engine.
#[derive(Debug, Clone)]
pub struct MappingFile {
    pub path: PathBuf,
    pub dataset: DatasetType,
    pub directives: Directives,
    /// DDL and settings, in file order.
    pub setup: Vec<SourceStatement>,
    /// The one final query.
    pub query: SourceStatement,
}

impl MappingFile {
    /// Reads and parses `path`, filling `${name}` from `cli_vars`, then `pengine.toml` beside it.
    pub fn load(path: &Path, cli_vars: &Vars) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("cannot read mapping file {}", path.display()), e))?;
        let mut all_vars = read_vars_file(path)?;
        all_vars.extend(cli_vars.clone());
        Self::parse(path, &text, &all_vars)
    }

    /// Parses mapping-file `text`; `path` names it in errors and gives the dataset by default.
    pub fn parse(path: &Path, text: &str, vars: &Vars) -> Result<Self> {
        let err = |line: usize, message: String| Error::mapping(path, line, message);

        // Directives live in the leading comment block; the SQL starts after it.
        let mut directives = Directives::default();
        let mut sql_first_line = 1;
        let mut sql_start = 0;
        for (index, line) in text.split_inclusive('\n').enumerate() {
            let trimmed = line.trim();
            if let Some(directive) = directives::directive_text(line) {
                let directive = vars::substitute(directive, vars, index + 1)
                    .map_err(|e| substitute_error(path, e))?;
                directives
                    .apply(&directive, index + 1)
                    .map_err(|(line, message)| err(line, message))?;
            } else if !(trimmed.is_empty() || trimmed.starts_with("--")) {
                break;
            }
            sql_first_line = index + 2;
            sql_start += line.len();
        }
        let sql = &text[sql_start..];
        if let Some((offset, _)) = sql
            .lines()
            .enumerate()
            .find(|(_, line)| directives::directive_text(line).is_some())
        {
            return Err(err(
                sql_first_line + offset,
                "`-- pengine:` directives must come before the first SQL statement".into(),
            ));
        }

        let dataset = match directives.dataset {
            Some(dataset) => dataset,
            None => dataset_from_file_name(path).ok_or_else(|| {
                err(
                    1,
                    format!(
                        "cannot tell the dataset type: add a line `-- pengine: dataset = <type>` \
                         ({}) or name the file after it, e.g. interactions.sql",
                        DatasetType::ALL.map(|d| d.key()).join(", ")
                    ),
                )
            })?,
        };

        let (sql, file_lines) = substitute_outside_comments(sql, vars, sql_first_line)
            .map_err(|e| substitute_error(path, e))?;
        let mut setup = Vec::new();
        let mut query: Option<SourceStatement> = None;
        for mut statement in statements::split(&sql, 0) {
            statement.line = file_lines[statement.line];
            let mut parsed = DFParser::parse_sql(&statement.sql)
                .map_err(|e| err(statement.line, format!("invalid SQL: {e}")))?;
            if parsed.len() > 1 {
                return Err(err(
                    statement.line,
                    "invalid SQL: several statements where one was expected \
                     (a `;` inside a `/*!` comment is read as code)"
                        .into(),
                ));
            }
            let Some(parsed) = parsed.pop_front() else {
                continue;
            };
            match Role::of(&parsed) {
                Role::Setup => {
                    if let Some(query) = &query {
                        return Err(err(
                            statement.line,
                            format!(
                                "the final query (line {}) must be the last statement; \
                                 move this statement above it",
                                query.line
                            ),
                        ));
                    }
                    setup.push(statement);
                }
                Role::Query => {
                    if let Some(first) = &query {
                        return Err(err(
                            statement.line,
                            format!(
                                "a second final query; a mapping file has exactly one \
                                 (the first is on line {}). Combine them with UNION ALL or \
                                 turn the first into a CREATE VIEW",
                                first.line
                            ),
                        ));
                    }
                    query = Some(statement);
                }
                Role::Refused(keyword) => {
                    return Err(err(
                        statement.line,
                        format!(
                            "{keyword} statements are not allowed in a mapping file: pengine \
                             writes only to its output. Use CREATE EXTERNAL TABLE / CREATE VIEW \
                             and one final SELECT"
                        ),
                    ));
                }
            }
        }
        let query = query.ok_or_else(|| {
            err(
                text.lines().count().max(1),
                "no final query: end the file with the SELECT whose columns are the dataset".into(),
            )
        })?;
        let tables = external_tables(&setup);
        for name in &directives.incremental {
            if !tables.iter().any(|t| t.name == *name) {
                let defined: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
                return Err(err(
                    directives.incremental_line,
                    format!(
                        "`incremental` names table {name}, which this file does not create \
                         (its external tables: {}); name a CREATE EXTERNAL TABLE of the file",
                        if defined.is_empty() {
                            "none".to_string()
                        } else {
                            defined.join(", ")
                        }
                    ),
                ));
            }
        }
        Ok(MappingFile {
            path: path.to_path_buf(),
            dataset,
            directives,
            setup,
            query,
        })
    }

    /// The mapping file's name for messages.
    pub fn display_name(&self) -> String {
        self.path.display().to_string()
    }
}

/// What a statement does in a mapping file.
#[derive(Debug, PartialEq, Eq)]
enum Role {
    Setup,
    Query,
    Refused(String),
}

impl Role {
    /// The role of a statement as DataFusion parsed it (comments and spacing do not matter).
    fn of(statement: &DFStatement) -> Role {
        match statement {
            DFStatement::Statement(s) => match s.as_ref() {
                ast::Statement::Query(_) => Role::Query,
                // Runtime settings (the spill folder, ...) are pengine's flags, not the file's.
                ast::Statement::Set(set)
                    if set
                        .to_string()
                        .to_ascii_lowercase()
                        .contains("datafusion.runtime") =>
                {
                    Role::Refused("SET datafusion.runtime".into())
                }
                ast::Statement::Set(_) => Role::Setup,
                ast::Statement::CreateView(view) if !view.materialized => Role::Setup,
                other => Role::Refused(keyword(&other.to_string())),
            },
            DFStatement::CreateExternalTable(_) => Role::Setup,
            DFStatement::CopyTo(_) => Role::Refused("COPY".into()),
            DFStatement::Explain(_) => Role::Refused("EXPLAIN".into()),
            DFStatement::Reset(_) => Role::Refused("RESET".into()),
        }
    }
}

/// The statement's kind for messages: its first word, two for CREATE (`CREATE TABLE`).
fn keyword(sql: &str) -> String {
    let mut words = sql.split_whitespace();
    match words.next().unwrap_or("") {
        "CREATE" => format!("CREATE {}", words.next().unwrap_or("")),
        word => word.to_string(),
    }
}

/// Substitutes variables in SQL text, leaving full-line `--` comments alone (an example in a
/// comment must not demand a variable). Also returns, for each line of the result (from 0), the
/// line of the file it comes from: a value may hold line breaks.
fn substitute_outside_comments(
    sql: &str,
    vars: &Vars,
    first_line: usize,
) -> std::result::Result<(String, Vec<usize>), vars::SubstituteError> {
    let mut out = String::with_capacity(sql.len());
    let mut file_lines = Vec::new();
    for (index, line) in sql.split_inclusive('\n').enumerate() {
        let start = out.len();
        if line.trim_start().starts_with("--") {
            out.push_str(line);
        } else {
            out.push_str(&vars::substitute(line, vars, first_line + index)?);
        }
        let breaks = out[start..].matches('\n').count();
        file_lines.extend(std::iter::repeat_n(first_line + index, breaks));
    }
    // The line after the last line break.
    file_lines.push(first_line + sql.matches('\n').count());
    Ok((out, file_lines))
}

fn substitute_error(path: &Path, e: vars::SubstituteError) -> Error {
    match e {
        vars::SubstituteError::Unset(v) => Error::mapping(
            path,
            v.line,
            format!(
                "variable ${{{name}}} is not set: pass --var {name}=VALUE, add it to {VARS_FILE} \
                 beside the mapping file, or write a default as ${{{name}:-VALUE}}",
                name = v.name
            ),
        ),
        vars::SubstituteError::Malformed { line, text } => Error::mapping(
            path,
            line,
            format!(
                "malformed placeholder '{text}': write ${{name}} or ${{name:-default}}, the default plain text"
            ),
        ),
    }
}

/// The dataset type named by the file name (`interactions.sql`, `items-2024.sql`, ...).
fn dataset_from_file_name(path: &Path) -> Option<DatasetType> {
    let stem = path.file_stem()?.to_str()?.to_ascii_lowercase();
    // Longest key first so `action_interactions` is not read as `interactions`.
    let mut all = DatasetType::ALL;
    all.sort_by_key(|d| std::cmp::Reverse(d.key().len()));
    all.into_iter().find(|d| {
        let key = d.key();
        stem == key
            || stem
                .strip_prefix(key)
                .is_some_and(|rest| rest.starts_with(['-', '.', '_']))
    })
}

/// Reads `[vars]` from `pengine.toml` beside the mapping file, if there is one.
/// Refuses a `--var NAME` that none of the mapping files at `paths` uses (a typo would otherwise
/// run the job on a default, e.g. the bundled test data); returns warnings for `pengine.toml`
/// entries that no mapping file beside it uses.
pub fn check_variables(paths: &[PathBuf], given: &Vars) -> Result<Vec<String>> {
    let read = |path: &Path| {
        std::fs::read_to_string(path)
            .map_err(|e| Error::io(format!("cannot read mapping file {}", path.display()), e))
    };
    let mut used = std::collections::BTreeSet::new();
    for path in paths {
        used.extend(vars::names_in(&read(path)?));
    }
    if let Some(unused) = given.keys().find(|name| !used.contains(*name)) {
        let files: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
        let uses = if used.is_empty() {
            "no variables".to_string()
        } else {
            let names: Vec<String> = vars::closest_first(unused, &used)
                .into_iter()
                .map(|n| format!("${{{n}}}"))
                .collect();
            names.join(", ")
        };
        return Err(Error::Usage(format!(
            "--var {unused}: no mapping file uses ${{{unused}}} ({} use {uses}); check the name",
            files.join(", ")
        )));
    }
    let mut warnings = Vec::new();
    let folders: std::collections::BTreeSet<&Path> =
        paths.iter().filter_map(|p| p.parent()).collect();
    for folder in folders {
        let folder = if folder.as_os_str().is_empty() {
            Path::new(".")
        } else {
            folder
        };
        let toml_vars = read_vars_file(&folder.join(VARS_FILE))?;
        if toml_vars.is_empty() {
            continue;
        }
        let used_here = variables_used_in(folder)?;
        for name in toml_vars.keys().filter(|n| !used_here.contains(*n)) {
            warnings.push(format!(
                "{}: [vars] {name} is used by no mapping file beside it",
                folder.join(VARS_FILE).display()
            ));
        }
    }
    Ok(warnings)
}

/// The `[vars]` of the `pengine.toml` in `folder` (none when there is no such file).
pub fn folder_vars(folder: &Path) -> Result<Vars> {
    read_vars_file(&folder.join(VARS_FILE))
}

/// The variables the `*.sql` files of `folder` use.
pub fn variables_used_in(folder: &Path) -> Result<std::collections::BTreeSet<String>> {
    let mut used = std::collections::BTreeSet::new();
    let entries = std::fs::read_dir(folder)
        .map_err(|e| Error::io(format!("cannot read folder {}", folder.display()), e))?;
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e == "sql") {
            let text = std::fs::read_to_string(&path).map_err(|e| {
                Error::io(format!("cannot read mapping file {}", path.display()), e)
            })?;
            used.extend(vars::names_in(&text));
        }
    }
    Ok(used)
}

fn read_vars_file(mapping: &Path) -> Result<Vars> {
    let Some(dir) = mapping.parent() else {
        return Ok(Vars::new());
    };
    let file = dir.join(VARS_FILE);
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vars::new()),
        Err(e) => return Err(Error::io(format!("cannot read {}", file.display()), e)),
    };
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    struct VarsFile {
        #[serde(default)]
        vars: Vars,
    }
    let parsed: VarsFile =
        toml::from_str(&text).map_err(|e| Error::Config(format!("{}: {e}", file.display())))?;
    Ok(parsed.vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(name: &str, text: &str) -> Result<MappingFile> {
        MappingFile::parse(Path::new(name), text, &Vars::new())
    }

    #[test]
    fn reads_directives_setup_and_query() {
        let m = parse(
            "x.sql",
            "-- pengine: dataset = items\n-- pengine: textual = description\n\n\
             CREATE VIEW v AS SELECT 1 AS a;\nSELECT a AS item_id FROM v;\n",
        )
        .unwrap();
        assert_eq!(m.dataset, DatasetType::Items);
        assert_eq!(m.directives.textual, vec!["DESCRIPTION"]);
        assert_eq!(m.setup.len(), 1);
        assert_eq!(m.query.line, 5);
    }

    #[test]
    fn dataset_from_file_name() {
        assert_eq!(
            parse("sql/interactions.sql", "SELECT 1").unwrap().dataset,
            DatasetType::Interactions
        );
        assert_eq!(
            parse("action_interactions.sql", "SELECT 1")
                .unwrap()
                .dataset,
            DatasetType::ActionInteractions
        );
        assert!(parse("clicks.sql", "SELECT 1").is_err());
    }

    #[test]
    fn second_query_is_an_error_with_its_line() {
        let e = parse("users.sql", "SELECT 1;\n\nSELECT 2;")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("users.sql:3: a second final query"), "{e}");
    }

    #[test]
    fn runtime_settings_are_refused() {
        let e = parse(
            "users.sql",
            "SET datafusion.runtime.temp_directory = '/etc';\nSELECT 1",
        )
        .unwrap_err();
        assert!(e.to_string().contains("SET datafusion.runtime"), "{e}");
        parse(
            "users.sql",
            "SET datafusion.execution.batch_size = 1024;\nSELECT 1",
        )
        .unwrap();
    }

    #[test]
    fn copy_and_insert_are_refused() {
        let e = parse("users.sql", "COPY (SELECT 1) TO '/tmp/x.csv';\nSELECT 1").unwrap_err();
        assert!(
            e.to_string().contains("COPY statements are not allowed"),
            "{e}"
        );
        let e = parse(
            "users.sql",
            "CREATE VIEW v AS SELECT 1;\nINSERT INTO v VALUES (1);\nSELECT 1",
        )
        .unwrap_err();
        assert!(e.to_string().starts_with("users.sql:2: INSERT"), "{e}");
    }

    #[test]
    fn invalid_sql_names_the_line() {
        let e = parse("users.sql", "-- c\nCREATE VIEW v AS SELEC 1;\nSELECT 1").unwrap_err();
        assert!(e.to_string().starts_with("users.sql:2: invalid SQL"), "{e}");
    }

    #[test]
    fn unset_variable_names_file_line_and_name() {
        let e = parse("items.sql", "SELECT 1 FROM\n '${source}'")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("items.sql:2: variable ${source} is not set"),
            "{e}"
        );
    }

    /// Found by the `mapping` fuzz target: a value holding line breaks moved every later
    /// statement's line down, past the end of the file.
    #[test]
    fn values_with_line_breaks_keep_statement_lines() {
        let vars = Vars::from([("filter".to_string(), "1 = 1\nAND 2 = 2\n".to_string())]);
        let text = "CREATE VIEW v AS SELECT 1 AS a WHERE ${filter};\nSELECT a FROM v;\nSELECT 2";
        let e = MappingFile::parse(Path::new("users.sql"), text, &vars)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("users.sql:3: a second final query"), "{e}");
        assert!(e.contains("(the first is on line 2)"), "{e}");
    }

    #[test]
    fn variables_in_comments_are_left_alone() {
        parse("items.sql", "-- e.g. ${source}/x\nSELECT 1").unwrap();
    }

    #[test]
    fn directive_after_sql_is_an_error() {
        let e = parse("items.sql", "SELECT 1\n-- pengine: textual = X").unwrap_err();
        assert!(e.to_string().contains("must come before"), "{e}");
    }

    /// Found by the `mapping` fuzz target: roles were read from the first words of the text, so
    /// a leading block comment or `SELECT*` was refused as a "/*" or "SELECT*" statement.
    #[test]
    fn roles_come_from_the_parsed_statement() {
        let m = parse(
            "users.sql",
            "/* the view */ CREATE VIEW v AS SELECT 1 AS a;\n\
             /* tune */SET datafusion.execution.batch_size = 10;\n\
             /* the query */\nSELECT*FROM v",
        )
        .unwrap();
        assert_eq!(m.setup.len(), 2);
        assert_eq!(m.query.line, 4);
        parse("users.sql", "SELECT'u' AS user_id").unwrap();
        let e = parse("users.sql", "/* c */ DROP VIEW v;\nSELECT 1").unwrap_err();
        assert!(
            e.to_string().contains("DROP statements are not allowed"),
            "{e}"
        );
    }

    /// Found by the `mapping` fuzz target: DataFusion reads a `/*!` comment as code, so a
    /// statement hidden in one was accepted here and failed only when run.
    #[test]
    fn statement_hidden_in_a_hint_comment_is_refused() {
        let e = parse("users.sql", "SELECT 1 /*! ; COPY (SELECT 1) TO 'x' */").unwrap_err();
        assert!(
            e.to_string()
                .starts_with("users.sql:1: invalid SQL: several"),
            "{e}"
        );
    }

    #[test]
    fn query_must_be_last() {
        let e = parse("items.sql", "SELECT 1;\nCREATE VIEW v AS SELECT 2").unwrap_err();
        assert!(e.to_string().contains("must be the last statement"), "{e}");
    }
}
