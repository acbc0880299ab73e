//! `-- pengine: key = value` lines: what a mapping file says that SQL cannot.
//!
//! They sit in the comment block before the first statement. Unknown keys are errors (a typo in
//! `textual` must not silently make a description categorical).

use crate::personalize::{ColumnHints, DatasetType};

/// The directives of one mapping file.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Directives {
    /// `dataset = interactions`; else taken from the file name.
    pub dataset: Option<DatasetType>,
    /// `output = s3://bucket/prefix`; the `--output` flag wins over it.
    pub output: Option<String>,
    /// `textual = DESCRIPTION`: string columns Personalize reads as free text (Items only).
    pub textual: Vec<String>,
    /// `categorical = AGE, TIER`: non-string columns to write as categorical strings.
    pub categorical: Vec<String>,
    /// `not_categorical = NOTE`: string columns kept for filtering only.
    pub not_categorical: Vec<String>,
    /// `incremental = events, clicks`: tables `run --incremental` reads only the new files of
    /// (names as SQL resolves them), with the directive's line.
    pub incremental: Vec<String>,
    pub incremental_line: usize,
}

impl Directives {
    /// The column hints the Personalize layer takes.
    pub fn hints(&self) -> ColumnHints {
        ColumnHints {
            textual: self.textual.clone(),
            categorical: self.categorical.clone(),
            not_categorical: self.not_categorical.clone(),
        }
    }
}

/// The keys a directive may use, for the error message on an unknown one.
pub const KNOWN_KEYS: &[&str] = &[
    "dataset",
    "output",
    "textual",
    "categorical",
    "not_categorical",
    "incremental",
];

/// A directive problem: the 1-based line and what is wrong.
pub type DirectiveError = (usize, String);

const PREFIX: &str = "pengine:";

/// If `line` is a directive comment, returns its `key = value` text.
pub fn directive_text(line: &str) -> Option<&str> {
    let comment = line.trim_start().strip_prefix("--")?.trim_start();
    comment.strip_prefix(PREFIX).map(str::trim)
}

impl Directives {
    /// Applies one directive line (`key = value`) found on `line`.
    pub fn apply(&mut self, text: &str, line: usize) -> Result<(), DirectiveError> {
        let (key, value) = text.split_once('=').ok_or_else(|| {
            (
                line,
                format!(
                    "directive '{text}' must be 'key = value' (keys: {})",
                    KNOWN_KEYS.join(", ")
                ),
            )
        })?;
        let (key, value) = (key.trim().to_ascii_lowercase(), value.trim());
        if value.is_empty() {
            return Err((line, format!("directive '{key}' has no value")));
        }
        match key.as_str() {
            "dataset" => {
                let dataset = value.parse::<DatasetType>().map_err(|e| (line, e))?;
                if self.dataset.replace(dataset).is_some() {
                    return Err((line, "the dataset is given twice".into()));
                }
            }
            "output" => self.output = Some(value.to_string()),
            "textual" => self.textual.extend(column_list(value)),
            "categorical" => self.categorical.extend(column_list(value)),
            "not_categorical" => self.not_categorical.extend(column_list(value)),
            "incremental" => {
                self.incremental.extend(
                    value
                        .split(',')
                        .filter(|t| !t.trim().is_empty())
                        .map(super::tables::directive_table_name),
                );
                self.incremental_line = line;
            }
            other => {
                return Err((
                    line,
                    format!(
                        "unknown directive '{other}'; known directives: {}",
                        KNOWN_KEYS.join(", ")
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn column_list(value: &str) -> impl Iterator<Item = String> + '_ {
    value
        .split(',')
        .map(|c| c.trim().to_ascii_uppercase())
        .filter(|c| !c.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_directive_lines() {
        assert_eq!(
            directive_text("-- pengine: dataset = items"),
            Some("dataset = items")
        );
        assert_eq!(
            directive_text("  --pengine:textual=DESCRIPTION"),
            Some("textual=DESCRIPTION")
        );
        assert_eq!(directive_text("-- a plain comment"), None);
    }

    #[test]
    fn applies_known_keys() {
        let mut d = Directives::default();
        d.apply("dataset = Items", 1).unwrap();
        d.apply("textual = description", 2).unwrap();
        d.apply("categorical = age, tier", 3).unwrap();
        assert_eq!(d.dataset, Some(DatasetType::Items));
        assert_eq!(d.textual, vec!["DESCRIPTION"]);
        assert_eq!(d.categorical, vec!["AGE", "TIER"]);
    }

    #[test]
    fn unknown_key_is_an_error_naming_it() {
        let err = Directives::default().apply("textul = X", 4).unwrap_err();
        assert_eq!(err.0, 4);
        assert!(err.1.contains("unknown directive 'textul'"), "{}", err.1);
    }

    #[test]
    fn bad_dataset_is_an_error() {
        assert!(Directives::default().apply("dataset = clicks", 1).is_err());
    }
}
