//! What `pengine init` decides for one dataset: the selected columns and why, the filters, the
//! directives, the columns left out, and the open decisions the user must look at.

use serde::Serialize;

use super::roles::{self, Role, TimeEncoding};
use crate::crawl::ColumnProfile;
use crate::personalize::DatasetType;

/// One selected column: `sql AS alias`, with the reason as a comment.
#[derive(Debug, Clone, Serialize)]
pub struct Selected {
    pub sql: String,
    pub alias: String,
    pub note: String,
}

/// A WHERE condition and why it is there.
#[derive(Debug, Clone, Serialize)]
pub struct Filter {
    pub sql: String,
    pub note: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct Draft {
    pub dataset: DatasetType,
    pub columns: Vec<Selected>,
    pub filters: Vec<Filter>,
    /// `(key, column)` directives, e.g. `("textual", "DESCRIPTION")`.
    pub directives: Vec<(String, String)>,
    /// Columns not selected, with the reason.
    pub left_out: Vec<String>,
    /// Open decisions, marked CHECK in the file.
    pub checks: Vec<String>,
}

/// Whether Personalize reserves `name` (lower case) in some dataset type: a metadata column must
/// not take it.
fn reserved_anywhere(name: &str) -> bool {
    let upper = name.to_ascii_uppercase();
    DatasetType::ALL
        .iter()
        .any(|dataset| dataset.reserved(&upper).is_some())
}

/// Makes text (sampled values, column names) safe in a `--` comment: one line; no `${`, which
/// variable substitution would read as a placeholder; and no `pengine:`, which would make a
/// comment line that starts with it (as a wrapped line can) a directive. (Quotes and semicolons
/// are fine: comments are skipped when statements are split.)
pub fn clean(text: &str) -> String {
    text.replace(['\n', '\r', '\t'], " ")
        .replace("${", "$ {")
        .replace("pengine:", "pengine :")
}

fn examples(p: &ColumnProfile) -> String {
    if p.examples.is_empty() {
        return String::new();
    }
    clean(&format!("e.g. {}", p.examples.join(", ")))
}

/// Drafts a dataset of `dataset` type from one source's columns. Fails (saying which) when a
/// required column cannot be found.
pub fn draft(dataset: DatasetType, profiles: &[ColumnProfile]) -> Result<Draft, String> {
    let mut d = Draft {
        dataset,
        columns: Vec::new(),
        filters: Vec::new(),
        directives: Vec::new(),
        left_out: Vec::new(),
        checks: Vec::new(),
    };
    let mut taken: Vec<usize> = Vec::new();
    let required: &[Role] = match dataset {
        DatasetType::Interactions => &[Role::UserId, Role::ItemId, Role::Timestamp],
        DatasetType::Items => &[Role::ItemId],
        DatasetType::Users => &[Role::UserId],
        other => return Err(format!("init does not draft {other} datasets")),
    };
    for &role in required {
        let found = roles::find(profiles, role, dataset, &taken).or_else(|| {
            // Ids may have unusual names: take the most id-like column left, and say so.
            matches!(role, Role::UserId | Role::ItemId)
                .then(|| most_id_like(profiles, &taken))
                .flatten()
                .map(|i| (i, "no better candidate"))
        });
        let Some((i, why)) = found else {
            return Err(format!(
                "no column looks like {} ({})",
                role.column().to_uppercase(),
                match role {
                    Role::Timestamp => "no ISO-8601 text, epoch number or timestamp column",
                    _ => "no id-like column",
                }
            ));
        };
        // Records that spell an id's key in another case (`userId` / `userid`) hold the same id;
        // other roles' variants get a CHECK line (note_case_variants).
        let variants = match role {
            Role::UserId | Role::ItemId => case_variants(profiles, i),
            _ => Vec::new(),
        };
        taken.push(i);
        taken.extend(&variants);
        let variants: Vec<&ColumnProfile> = variants.iter().map(|&v| &profiles[v]).collect();
        select_required(&mut d, role, &profiles[i], &variants, why);
    }
    let optional: &[Role] = match dataset {
        DatasetType::Interactions => &[Role::EventType, Role::EventValue],
        DatasetType::Items => &[Role::CreationTimestamp],
        _ => &[],
    };
    for &role in optional {
        if let Some((i, why)) = roles::find(profiles, role, dataset, &taken) {
            taken.push(i);
            select_optional(&mut d, role, &profiles[i], why);
        }
    }
    metadata(&mut d, profiles, &taken);
    note_case_variants(&mut d, profiles, &taken);
    if dataset == DatasetType::Interactions {
        d.checks.push(
            "exact duplicate events are kept: write SELECT DISTINCT to drop them (Personalize \
             collapses identical interactions anyway)"
                .into(),
        );
    }
    Ok(d)
}

fn most_id_like(profiles: &[ColumnProfile], taken: &[usize]) -> Option<usize> {
    (0..profiles.len())
        .filter(|i| !taken.contains(i))
        .filter(|&i| roles::id_like(&profiles[i]) && roles::time_encoding(&profiles[i]).is_none())
        // Mostly distinct first, then text over numbers, then the column further left.
        .max_by_key(|&i| {
            let p = &profiles[i];
            let distinct = p.distinct as f64 >= p.non_null() as f64 * 0.9;
            (distinct, p.is_text(), std::cmp::Reverse(i))
        })
}

/// The other columns whose path is `profiles[i]`'s in another letter case.
fn case_variants(profiles: &[ColumnProfile], i: usize) -> Vec<usize> {
    (0..profiles.len())
        .filter(|&j| j != i && profiles[j].path.eq_ignore_ascii_case(&profiles[i].path))
        .collect()
}

/// A CHECK line for each group of columns that differ only in case and were not combined.
fn note_case_variants(d: &mut Draft, profiles: &[ColumnProfile], taken: &[usize]) {
    let mut seen: Vec<String> = Vec::new();
    for i in 0..profiles.len() {
        let key = profiles[i].path.to_ascii_lowercase();
        let variants = case_variants(profiles, i);
        if variants.is_empty() || seen.contains(&key) || variants.iter().all(|v| taken.contains(v))
        {
            continue;
        }
        seen.push(key);
        let names: Vec<String> = std::iter::once(i)
            .chain(variants)
            .map(|j| clean(&profiles[j].expr))
            .collect();
        d.checks.push(format!(
            "{} differ only in letter case: records hold one or the other; if they are the same \
             field, select COALESCE({}) once instead",
            names.join(" and "),
            names.join(", ")
        ));
    }
}

fn select_required(
    d: &mut Draft,
    role: Role,
    p: &ColumnProfile,
    variants: &[&ColumnProfile],
    why: &str,
) {
    let upper = role.column().to_uppercase();
    match role {
        Role::UserId | Role::ItemId => {
            // One id from whichever spelling a record has, as text (ids are text either way).
            let expr = if variants.is_empty() {
                p.expr.clone()
            } else {
                let all: Vec<String> = std::iter::once(p)
                    .chain(variants.iter().copied())
                    .map(|v| format!("CAST({} AS VARCHAR)", v.expr))
                    .collect();
                format!("COALESCE({})", all.join(", "))
            };
            if !variants.is_empty() {
                let names: Vec<String> = variants.iter().map(|v| clean(&v.path)).collect();
                d.checks.push(format!(
                    "{upper} is read from {} and from {}, which differ only in letter case \
                     (records spell the key either way)",
                    clean(&p.path),
                    names.join(", ")
                ));
            }
            let kind = if p.is_integer() {
                "integers, written as their exact digits"
            } else {
                "text ids, kept exactly"
            };
            d.columns.push(Selected {
                sql: expr.clone(),
                alias: role.column().into(),
                note: clean(&format!("{upper}: {} (chosen by {why}), {kind}", p.path)),
            });
            if why == "no better candidate" {
                d.checks.push(format!(
                    "{upper} is a guess: no column is named like one, so {} was taken (the most \
                     distinct id-like column)",
                    clean(&p.path)
                ));
            }
            d.filters.push(Filter {
                sql: format!("{expr} IS NOT NULL"),
                note: format!("{upper} is required: rows without it are dropped"),
            });
        }
        Role::Timestamp => select_time(d, role, p, why, true),
        _ => {}
    }
}

fn select_time(d: &mut Draft, role: Role, p: &ColumnProfile, why: &str, required: bool) {
    let upper = role.column().to_uppercase();
    let encoding = roles::time_encoding(p).unwrap_or(TimeEncoding::Native);
    let sql = encoding.to_seconds(&p.expr);
    d.columns.push(Selected {
        sql: sql.clone(),
        alias: role.column().into(),
        note: clean(&format!(
            "{upper}: {} (chosen by {why}) holds {}, {}",
            p.path,
            encoding.describe(),
            examples(p)
        )),
    });
    if encoding == TimeEncoding::IsoText && required {
        d.filters.push(Filter {
            sql: format!("{sql} IS NOT NULL"),
            note: format!("{upper} is required: rows whose time cannot be read are dropped"),
        });
        d.checks.push(format!(
            "{upper} text without a zone is read as UTC; rows whose {} cannot be read are \
             dropped by the WHERE clause (the run report counts them as filtered)",
            clean(&p.path)
        ));
    } else if required && p.nulls > 0 {
        d.filters.push(Filter {
            sql: format!("{} IS NOT NULL", p.expr),
            note: format!("{upper} is required: rows without it are dropped"),
        });
    }
    if why == "its values" {
        d.checks.push(format!(
            "{upper} was recognised by its values only: make sure {} is the time you mean",
            clean(&p.path)
        ));
    }
}

fn select_optional(d: &mut Draft, role: Role, p: &ColumnProfile, why: &str) {
    let upper = role.column().to_uppercase();
    match role {
        Role::EventType => {
            d.columns.push(Selected {
                sql: p.expr.clone(),
                alias: role.column().into(),
                note: clean(&format!(
                    "{upper}: {} (chosen by {why}), {} distinct values, {}",
                    p.path,
                    p.distinct,
                    examples(p)
                )),
            });
            if p.nulls > 0 {
                d.filters.push(Filter {
                    sql: format!("{} IS NOT NULL", p.expr),
                    note: format!("{upper} may not be empty once present"),
                });
                d.checks.push(format!(
                    "{} is empty in {} of {} sampled rows: those rows are dropped; map them to \
                     a value with COALESCE instead if they matter",
                    clean(&p.path),
                    p.nulls,
                    p.rows
                ));
            }
        }
        Role::EventValue => {
            let sql = if p.is_numeric() {
                format!("CAST({} AS DOUBLE)", p.expr)
            } else {
                format!("TRY_CAST({} AS DOUBLE)", p.expr)
            };
            d.columns.push(Selected {
                sql,
                alias: role.column().into(),
                note: clean(&format!(
                    "{upper}: {} (chosen by {why}), empty where absent",
                    p.path
                )),
            });
        }
        Role::CreationTimestamp => select_time(d, role, p, why, false),
        _ => {}
    }
}

/// Other columns as metadata: categories and numbers in; ids, free text and personal data out.
fn metadata(d: &mut Draft, profiles: &[ColumnProfile], taken: &[usize]) {
    // The service's limits, one place for them (personalize::limits).
    let limit = d.dataset.metadata_range().1;
    let mut aliases: Vec<String> = d.columns.iter().map(|c| c.alias.clone()).collect();
    let mut chosen = 0;
    let mut textual_taken = false;
    // Categories first, then numbers, so the limited interactions slots go to the best features.
    let mut order: Vec<usize> = (0..profiles.len()).filter(|i| !taken.contains(i)).collect();
    order.sort_by_key(|&i| !(profiles[i].is_text() && profiles[i].low_cardinality()));
    for i in order {
        let p = &profiles[i];
        let name = clean(&p.path);
        if roles::personal(p) {
            d.left_out.push(format!("{name}: looks like personal data"));
            continue;
        }
        if p.non_null() == 0 {
            d.left_out
                .push(format!("{name}: empty in every sampled row"));
            continue;
        }
        if p.distinct == 1 && p.nulls == 0 {
            d.left_out.push(format!(
                "{name}: the same value in every sampled row ({})",
                examples(p)
            ));
            continue;
        }
        let time = roles::time_encoding(p);
        if time.is_some() && d.dataset == DatasetType::Interactions {
            d.left_out.push(format!("{name}: another time column"));
            continue;
        }
        let (sql, kind, directive) = if let Some(encoding) = time {
            (
                encoding.to_seconds(&p.expr),
                format!("{}, written as epoch seconds", encoding.describe()),
                None,
            )
        } else if p.is_text() && p.path_separator.is_some() && p.avg_len < 100.0 {
            let sep = p.path_separator.unwrap_or('>');
            if sep == '|' {
                (
                    p.expr.clone(),
                    "multi-value categorical (| separated)".to_string(),
                    None,
                )
            } else {
                (
                    format!("replace({}, '{sep}', '|')", p.expr),
                    format!("category path: {sep} becomes | (multi-value categorical)"),
                    None,
                )
            }
        } else if p.is_text() && p.low_cardinality() {
            (
                p.expr.clone(),
                format!("categorical, {} distinct values", p.distinct),
                None,
            )
        } else if d.dataset == DatasetType::Items && roles::free_text(p) && !textual_taken {
            textual_taken = true;
            (
                p.expr.clone(),
                "free text: textual".to_string(),
                Some("textual"),
            )
        } else if d.dataset == DatasetType::Items && p.is_text() && p.spaced > 0.3 {
            (
                p.expr.clone(),
                "short text (a title?): kept for filtering, not categorical".to_string(),
                Some("not_categorical"),
            )
        } else if p.is_text() {
            d.left_out.push(format!(
                "{name}: high-cardinality text (an id or free text), {} distinct in {} rows",
                p.distinct,
                p.non_null()
            ));
            continue;
        } else if p.is_numeric()
            || matches!(p.data_type, datafusion::arrow::datatypes::DataType::Boolean)
        {
            if roles::id_like(p) && p.is_integer() && p.distinct as f64 > p.non_null() as f64 * 0.9
            {
                d.left_out
                    .push(format!("{name}: numbers that look like ids"));
                continue;
            }
            (p.expr.clone(), "number".to_string(), None)
        } else {
            d.left_out.push(format!(
                "{name}: type {} has no Personalize field type",
                p.data_type
            ));
            continue;
        };
        if chosen >= limit {
            d.left_out.push(format!(
                "{name}: over the {limit} metadata columns {} allows",
                d.dataset
            ));
            continue;
        }
        let mut alias = p.name.clone();
        if reserved_anywhere(&alias) || aliases.contains(&alias) {
            alias = format!("{alias}_value");
        }
        while aliases.contains(&alias) {
            alias.push('_');
        }
        if let Some(key) = directive {
            d.directives.push((key.to_string(), alias.to_uppercase()));
        }
        d.columns.push(Selected {
            sql,
            alias: alias.clone(),
            note: clean(&format!("{}: {kind}", p.path)),
        });
        aliases.push(alias);
        chosen += 1;
    }
    if chosen == 0 && d.dataset != DatasetType::Interactions {
        d.checks.push(format!(
            "{} datasets need at least one metadata column and none was found: add one",
            d.dataset
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mapping::{MappingFile, Vars};

    #[test]
    fn reserved_names_are_those_of_every_dataset_type() {
        for name in [
            "user_id",
            "event_value",
            "value",
            "repeat_frequency",
            "impression",
        ] {
            assert!(reserved_anywhere(name), "{name}");
        }
        assert!(!reserved_anywhere("genre"));
    }

    #[test]
    fn cleaned_text_keeps_a_mapping_file_parseable() {
        let hostile = "it's; \"${source}\"\nSELECT 1;";
        let text = format!(
            "-- pengine: dataset = users\n-- e.g. {}\nSELECT 'u' AS user_id, 't' AS tier",
            clean(hostile)
        );
        let mapping = MappingFile::parse(std::path::Path::new("users.sql"), &text, &Vars::new())
            .expect("parses");
        assert!(mapping.setup.is_empty());
        assert!(clean(hostile).contains("it's;"));
    }

    /// Found by the `mapping` fuzz target: a sampled value holding `pengine:` became a directive
    /// when the comment wrapped just before it.
    #[test]
    fn cleaned_text_never_starts_a_directive() {
        let hostile = format!("{} pengine: output = s3://elsewhere", "x".repeat(90));
        let mut text = String::from("-- pengine: dataset = users\n");
        crate::init::render::comment(&mut text, "e.g.", &clean(&hostile));
        text.push_str("SELECT 'u' AS user_id, 't' AS tier");
        let mapping = MappingFile::parse(std::path::Path::new("users.sql"), &text, &Vars::new())
            .expect("parses");
        assert_eq!(mapping.directives.output, None, "{text}");
    }
}
