//! Writes a drafted dataset as a commented mapping file, and the sources as `pengine.toml`.

use super::draft::Draft;
use super::unnest::Unnest;
use crate::crawl::Detected;

/// The source a mapping file reads: its table, its variable, what the crawl found.
pub struct SourceText<'a> {
    pub table: &'a str,
    pub variable: &'a str,
    pub detected: &'a Detected,
    /// The nested array of items read one row per element.
    pub unnest: Option<&'a Unnest>,
}

/// A hint for Interactions: keep only events whose item is in the catalog.
pub struct CatalogHint<'a> {
    pub source: SourceText<'a>,
    pub item_expr: &'a str,
}

fn describe_source(source: &SourceText<'_>) -> String {
    let d = source.detected;
    if d.format.is_database() {
        return super::draft::clean(&format!("{}, {}", d.format.sql_name(), d.layout.describe()));
    }
    let mut text = format!(
        "{}, {} file(s), {}, {}",
        d.format.sql_name(),
        d.files,
        bytesize::ByteSize(d.bytes),
        d.layout.describe()
    );
    let compressed: Vec<String> = d
        .compression
        .iter()
        .filter(|(c, _)| **c != "none")
        .map(|(c, n)| format!("{n} of the sniffed files {c}"))
        .collect();
    if !compressed.is_empty() {
        text.push_str(&format!(", {}", compressed.join(", ")));
    }
    if !d.json_layouts.is_empty() {
        let layouts: Vec<&str> = d.json_layouts.keys().copied().collect();
        text.push_str(&format!(", {}", layouts.join(" and ")));
    }
    if let Some(csv) = &d.csv {
        let delimiter = match csv.delimiter {
            ',' => "comma",
            '\t' => "tab",
            ';' => "semicolon",
            '|' => "pipe",
            _ => "other",
        };
        text.push_str(&format!(
            ", {delimiter}-separated, {}",
            if csv.has_header {
                "header row"
            } else {
                "no header row"
            }
        ));
    }
    super::draft::clean(&text)
}

/// A commented comment block: each line of `text` wrapped under `--` at about 100 columns.
pub fn comment(out: &mut String, first: &str, text: &str) {
    let mut line = format!("-- {first}");
    for word in text.split_whitespace() {
        if line.len() + word.len() > 98 {
            out.push_str(&line);
            out.push('\n');
            line = "--   ".to_string();
        }
        if !line.ends_with(' ') {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
}

/// The mapping file text for a draft.
pub fn mapping_file(
    draft: &Draft,
    source: &SourceText<'_>,
    catalog: Option<&CatalogHint<'_>>,
) -> String {
    let mut out = format!("-- pengine: dataset = {}\n", draft.dataset);
    for (key, column) in &draft.directives {
        out.push_str(&format!("-- pengine: {key} = {column}\n"));
    }
    out.push_str(&format!(
        "-- Written by pengine init from {}. Every guess is stated beside what it decided;\n\
         -- lines marked CHECK are open decisions: look at them before using the output.\n",
        super::draft::clean(&source.detected.location)
    ));
    comment(
        &mut out,
        &format!("Source {}:", source.table),
        &describe_source(source),
    );
    if let Some(csv) = &source.detected.csv {
        comment(
            &mut out,
            "Header:",
            &super::draft::clean(&csv.header_reason),
        );
    }
    comment(
        &mut out,
        "Location:",
        &format!(
            "the variable {} in pengine.toml (or --var {}=...)",
            source.variable, source.variable
        ),
    );
    if !source.detected.other_formats.is_empty() {
        comment(
            &mut out,
            "CHECK:",
            &format!(
                "some files are not {} and will fail the scan: {}",
                source.detected.format.sql_name(),
                super::draft::clean(&source.detected.other_formats.join(", "))
            ),
        );
    }
    for left in &draft.left_out {
        comment(&mut out, "Left out:", left);
    }
    for check in &draft.checks {
        comment(&mut out, "CHECK:", check);
    }
    if let Some(hint) = catalog {
        comment(
            &mut out,
            "CHECK:",
            &format!(
                "events of items missing from the catalog are kept. To drop them, register the \
                 catalog below and add to the WHERE clause: AND {} IN (SELECT {} FROM {})",
                draft
                    .columns
                    .iter()
                    .find(|c| c.alias == "item_id")
                    .map_or("item_id", |c| c.sql.as_str()),
                hint.item_expr,
                hint.source.table
            ),
        );
        out.push_str(&format!(
            "-- {}\n",
            hint.source
                .detected
                .ddl(hint.source.table, &format!("${{{}}}", hint.source.variable))
                .replace('\n', "\n-- ")
        ));
    }
    out.push('\n');
    out.push_str(
        &source
            .detected
            .ddl(source.table, &format!("${{{}}}", source.variable)),
    );
    out.push_str("\n\n");
    let from = match source.unnest {
        Some(u) => {
            comment(
                &mut out,
                "One row per element of",
                &super::draft::clean(&format!(
                    "{}: each record holds its items there, and a dataset row is one item \
                     (records whose {} is empty or null give no row).",
                    u.path, u.path
                )),
            );
            out.push_str(&u.view_sql(source.table));
            out.push_str("\n\n");
            u.view.as_str()
        }
        None => source.table,
    };

    let width = draft
        .columns
        .iter()
        .map(|c| c.sql.len())
        .max()
        .unwrap_or(0)
        .max(20);
    let alias_width = draft
        .columns
        .iter()
        .map(|c| c.alias.len())
        .max()
        .unwrap_or(0)
        + 1;
    for (i, column) in draft.columns.iter().enumerate() {
        let lead = if i == 0 { "SELECT " } else { "       " };
        let comma = if i + 1 < draft.columns.len() { "," } else { "" };
        let alias = format!("{}{comma}", column.alias);
        out.push_str(&format!(
            "{lead}{:<width$} AS {:<alias_width$} -- {}\n",
            column.sql, alias, column.note
        ));
    }
    out.push_str(&format!("FROM {from}"));
    for (i, filter) in draft.filters.iter().enumerate() {
        let lead = if i == 0 { "\nWHERE " } else { "\n  AND " };
        out.push_str(&format!("{lead}{:<width$} -- {}", filter.sql, filter.note));
    }
    out.push_str("\n;\n");
    out
}

/// `pengine.toml` with one variable per source location.
pub fn vars_file(sources: &[(String, String)]) -> String {
    let mut out = String::from(
        "# Source locations for the mapping files beside this file (written by pengine init).\n\
         # Point them at other data to run the same files there, or override one with\n\
         # --var NAME=VALUE.\n[vars]\n",
    );
    for (variable, location) in sources {
        out.push_str(&format!(
            "{variable} = {}\n",
            toml::Value::String(location.clone())
        ));
    }
    out
}
