//! `${name}` placeholders in mapping files.
//!
//! The same mapping file runs on `testdata/` and on production S3: locations are written as
//! `${source}/events/` and filled from `--var source=...`, from a `pengine.toml` beside the file,
//! or from a default written in place as `${source:-testdata}` (plain text: it cannot hold another
//! placeholder). A placeholder with no value is an error that names it and the line it is on.

use std::collections::BTreeMap;

/// Variable values, from the command line and `pengine.toml` (command line wins).
pub type Vars = BTreeMap<String, String>;

/// An unset variable, with where it was found.
#[derive(Debug, PartialEq, Eq)]
pub struct UnsetVariable {
    pub name: String,
    pub line: usize,
}

/// A placeholder that is not `${name}` or `${name:-default}`.
#[derive(Debug, PartialEq, Eq)]
pub enum SubstituteError {
    Unset(UnsetVariable),
    Malformed { line: usize, text: String },
}

/// Replaces every `${name}` / `${name:-default}` in `text`. Lines are counted from `first_line`.
pub fn substitute(text: &str, vars: &Vars, first_line: usize) -> Result<String, SubstituteError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut line = first_line;
    while let Some(start) = rest.find("${") {
        let before = &rest[..start];
        line += before.matches('\n').count();
        out.push_str(before);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            return Err(SubstituteError::Malformed {
                line,
                text: excerpt(&rest[start..]),
            });
        };
        let body = &after[..end];
        let (name, default) = match body.split_once(":-") {
            Some((name, default)) => (name, Some(default)),
            None => (body, None),
        };
        // A default is plain text: a placeholder inside it would be left in the SQL as is.
        if !is_identifier(name) || default.is_some_and(|d| d.contains("${")) {
            return Err(SubstituteError::Malformed {
                line,
                text: format!("${{{body}}}"),
            });
        }
        match vars.get(name).map(String::as_str).or(default) {
            Some(value) => out.push_str(value),
            None => {
                return Err(SubstituteError::Unset(UnsetVariable {
                    name: name.to_string(),
                    line,
                }));
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// The names of the `${name}` / `${name:-default}` placeholders in `text`, comments included (a
/// name written only in a comment counts as used: being lenient there costs nothing).
pub fn names_in(text: &str) -> std::collections::BTreeSet<String> {
    text.split("${")
        .skip(1)
        .filter_map(|rest| {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            is_identifier(&name).then_some(name)
        })
        .collect()
}

/// `names`, closest to `name` first (edit distance, then alphabetical).
pub fn closest_first<'a>(name: &str, names: impl IntoIterator<Item = &'a String>) -> Vec<&'a str> {
    let mut ranked: Vec<(usize, &str)> = names
        .into_iter()
        .map(|n| (strsim::levenshtein(name, n), n.as_str()))
        .collect();
    ranked.sort();
    ranked.into_iter().map(|(_, n)| n).collect()
}

fn is_identifier(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn excerpt(text: &str) -> String {
    text.lines().next().unwrap_or("").chars().take(40).collect()
}

/// Parses `name=value` as given to `--var`.
pub fn parse_assignment(arg: &str) -> Result<(String, String), String> {
    let (name, value) = arg
        .split_once('=')
        .ok_or_else(|| format!("expected NAME=VALUE, got '{arg}'"))?;
    let name = name.trim();
    if !is_identifier(name) {
        return Err(format!(
            "variable name '{name}' must be letters, digits and _ (not starting with a digit)"
        ));
    }
    Ok((name.to_string(), value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn fills_values_and_defaults() {
        let v = vars(&[("source", "s3://b/x")]);
        assert_eq!(
            substitute("'${source}/e/' '${out:-local}'", &v, 1).unwrap(),
            "'s3://b/x/e/' 'local'"
        );
    }

    #[test]
    fn given_value_beats_default() {
        let v = vars(&[("source", "given")]);
        assert_eq!(substitute("${source:-dflt}", &v, 1).unwrap(), "given");
    }

    #[test]
    fn unset_variable_names_itself_and_its_line() {
        let err = substitute("a\nb\n  ${missing}", &Vars::new(), 10).unwrap_err();
        assert_eq!(
            err,
            SubstituteError::Unset(UnsetVariable {
                name: "missing".into(),
                line: 12
            })
        );
    }

    #[test]
    fn malformed_placeholders_are_errors() {
        assert!(matches!(
            substitute("${not closed", &Vars::new(), 1),
            Err(SubstituteError::Malformed { .. })
        ));
        assert!(matches!(
            substitute("${1bad}", &Vars::new(), 1),
            Err(SubstituteError::Malformed { .. })
        ));
    }

    /// Found by the `mapping` fuzz target: `${out:-${source}/out}` left `${source}/out` in the
    /// SQL when `out` was unset.
    #[test]
    fn placeholder_in_a_default_is_malformed() {
        let v = vars(&[("source", "s3://b")]);
        assert_eq!(
            substitute("'${out:-${source}/out}'", &v, 1),
            Err(SubstituteError::Malformed {
                line: 1,
                text: "${out:-${source}".into()
            })
        );
    }

    #[test]
    fn names_in_text_and_closest_first() {
        let names = names_in("-- pengine: output = ${out:-x}\nFROM '${source}/e' ${1no} ${_ok}");
        let names: Vec<&String> = names.iter().collect();
        assert_eq!(names, ["_ok", "out", "source"]);
        let used: Vec<String> = ["filter", "source", "out"].map(String::from).into();
        assert_eq!(closest_first("sourc", &used), ["source", "out", "filter"]);
    }

    #[test]
    fn assignment_parsing() {
        assert_eq!(
            parse_assignment("source=s3://a=b").unwrap(),
            ("source".into(), "s3://a=b".into())
        );
        assert!(parse_assignment("novalue").is_err());
        assert!(parse_assignment("bad name=1").is_err());
    }
}
