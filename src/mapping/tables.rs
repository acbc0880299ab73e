//! The tables a mapping file creates (name, LOCATION, format), read from its `CREATE EXTERNAL
//! TABLE` statements before anything runs: what an incremental run lists and selects from.

use datafusion::sql::parser::{DFParser, Statement as DFStatement};
use datafusion::sql::sqlparser::ast::{ObjectNamePart, Value};

use super::SourceStatement;
use crate::sources::exclude::EXCLUDE_OPTION;

/// One `CREATE EXTERNAL TABLE` of a mapping file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExternalTable {
    /// As SQL resolves it: unquoted parts lower-cased.
    pub name: String,
    pub location: String,
    /// `STORED AS`, upper-cased.
    pub format: String,
    /// The 1-based line of the mapping file the statement starts on.
    pub line: usize,
    /// Its `'format.exclude'` option: file names its folder listing leaves out.
    pub exclude: Option<String>,
}

/// The external tables `setup` creates, in file order.
pub fn external_tables(setup: &[SourceStatement]) -> Vec<ExternalTable> {
    setup
        .iter()
        .filter_map(|statement| {
            let parsed = DFParser::parse_sql(&statement.sql).ok()?.pop_front()?;
            let DFStatement::CreateExternalTable(table) = parsed else {
                return None;
            };
            let name = table
                .name
                .0
                .iter()
                .map(|part| match part {
                    ObjectNamePart::Identifier(ident) if ident.quote_style.is_none() => {
                        ident.value.to_lowercase()
                    }
                    ObjectNamePart::Identifier(ident) => ident.value.clone(),
                    other => other.to_string(),
                })
                .collect::<Vec<_>>()
                .join(".");
            // As DataFusion reads option keys: a key without a namespace is a format option.
            let exclude = table.options.iter().find_map(|(key, value)| {
                let key = key.to_lowercase();
                (key == EXCLUDE_OPTION || format!("format.{key}") == EXCLUDE_OPTION).then(|| {
                    match value {
                        Value::SingleQuotedString(text) | Value::DoubleQuotedString(text) => {
                            text.clone()
                        }
                        other => other.to_string(),
                    }
                })
            });
            Some(ExternalTable {
                name,
                location: table.locations.first()?.clone(),
                format: table.file_type.to_ascii_uppercase(),
                line: statement.line,
                exclude,
            })
        })
        .collect()
}

/// A table name as written in a directive, as SQL resolves it: `"Events"` keeps its case,
/// `Events` is `events`.
pub fn directive_table_name(written: &str) -> String {
    let written = written.trim();
    match written
        .strip_prefix('"')
        .and_then(|rest| rest.strip_suffix('"'))
    {
        Some(quoted) => quoted.to_string(),
        None => written.to_lowercase(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_resolve_as_sql_does_and_locations_are_kept() {
        let setup = [
            SourceStatement {
                sql: "CREATE EXTERNAL TABLE Events STORED AS json LOCATION 's3://raw/events/'"
                    .into(),
                line: 3,
            },
            SourceStatement {
                sql: "CREATE VIEW v AS SELECT 1".into(),
                line: 5,
            },
            SourceStatement {
                sql: "CREATE EXTERNAL TABLE \"Items\" STORED AS CSV LOCATION 'items.csv'".into(),
                line: 6,
            },
        ];
        let tables = external_tables(&setup);
        assert_eq!(
            tables,
            [
                ExternalTable {
                    name: "events".into(),
                    location: "s3://raw/events/".into(),
                    format: "JSON".into(),
                    line: 3,
                    exclude: None,
                },
                ExternalTable {
                    name: "Items".into(),
                    location: "items.csv".into(),
                    format: "CSV".into(),
                    line: 6,
                    exclude: None,
                }
            ]
        );
        assert_eq!(directive_table_name("Events"), "events");
        // The file names an incremental listing leaves out, however the key is written.
        for key in ["format.exclude", "exclude", "FORMAT.EXCLUDE"] {
            let sql = format!(
                "CREATE EXTERNAL TABLE e STORED AS JSON LOCATION 'raw/' OPTIONS ('{key}' '*.md')"
            );
            let tables = external_tables(&[SourceStatement { sql, line: 1 }]);
            assert_eq!(tables[0].exclude.as_deref(), Some("*.md"), "{key}");
        }
        assert_eq!(directive_table_name("\"Items\""), "Items");
    }
}
