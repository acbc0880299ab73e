//! Turns the gathered figures into findings, as the service treats them: errors (import or training
//! would fail) and warnings (data the service ignores, collapses or flags in its own analysis), each
//! quoting the limit and what to change; plus the insights table (completeness, cardinality,
//! numbers, time range) with approximate figures marked.

use std::collections::BTreeMap;

use serde::Serialize;

use super::finding::{Finding, Severity};
use super::stats::DatasetStats;
use crate::personalize::limits::{
    HIGH_CARDINALITY, MAX_EVENT_TYPES, MIN_COMPLETENESS, MIN_SHARE_USERS_WITH_TWO,
    MIN_TEXTUAL_COMPLETENESS, MIN_USERS_WITH_TWO, VERY_HIGH_CARDINALITY,
};
use crate::personalize::{ColumnPlan, DatasetType, limits};

/// A value this many standard deviations from the mean is an outlier.
pub const OUTLIER_SIGMAS: f64 = 6.0;

#[derive(Debug, Clone, Serialize)]
pub struct ColumnInsight {
    pub name: String,
    pub completeness: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distinct: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mean: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stddev: Option<f64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Checks {
    pub findings: Vec<Finding>,
    pub rows: u64,
    pub columns: Vec<ColumnInsight>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub event_types: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distinct_users: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub users_with_two_or_more: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub distinct_items: Option<u64>,
    pub duplicate_rows: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicate_ids: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_timestamp: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_timestamp: Option<String>,
    /// Figures that are estimates (counted on a sample of keys to bound memory).
    pub approximate: Vec<&'static str>,
    /// Comparisons with the other datasets of the same output.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cross_dataset: Vec<super::cross::CrossCheck>,
}

impl Checks {
    pub fn errors(&self) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == Severity::Error)
            .count()
    }
}

fn iso(seconds: i64) -> String {
    chrono::DateTime::from_timestamp(seconds, 0)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_else(|| seconds.to_string())
}

/// Evaluates every dataset-level check on the figures of a finished pass.
pub fn evaluate(plan: &ColumnPlan, stats: &DatasetStats, bytes_written: u64) -> Checks {
    let mut findings = Vec::new();
    let mut approximate = Vec::new();
    let mut error = |check: &'static str, message: String| {
        findings.push(Finding {
            severity: Severity::Error,
            check,
            message,
        })
    };
    let rows = stats.rows;

    if matches!(
        plan.dataset,
        DatasetType::Interactions | DatasetType::ActionInteractions
    ) {
        if rows < limits::MIN_INTERACTIONS {
            error(
                "min_interactions",
                format!(
                    "{rows} interactions; Personalize needs at least {} to train",
                    limits::MIN_INTERACTIONS
                ),
            );
        }
        if stats.items.as_ref().is_some_and(|i| i.is_approximate()) {
            approximate.push("distinct_items");
        }
        if let Some(users) = &stats.users {
            let distinct = users.distinct();
            let with_two = users.keys_with_at_least(2);
            if users.is_approximate() {
                approximate.extend(["distinct_users", "users_with_two_or_more"]);
            }
            if with_two < MIN_USERS_WITH_TWO {
                error(
                    "users_with_two_interactions",
                    format!(
                        "{with_two} users have at least 2 interactions; Personalize needs at least \
                         {MIN_USERS_WITH_TWO} (check that USER_ID is not mangled or nulled)"
                    ),
                );
            } else if distinct > 0 && (with_two as f64) < MIN_SHARE_USERS_WITH_TWO * distinct as f64
            {
                error(
                    "users_with_two_interactions",
                    format!(
                        "only {with_two} of {distinct} users ({:.2} %) have at least 2 interactions; \
                         Personalize needs at least {} %",
                        100.0 * with_two as f64 / distinct as f64,
                        MIN_SHARE_USERS_WITH_TWO * 100.0
                    ),
                );
            }
        }
        if stats.event_types.len() > MAX_EVENT_TYPES || stats.event_types_capped {
            error(
                "event_types",
                format!(
                    "{}{} distinct EVENT_TYPE values; training fails above {MAX_EVENT_TYPES}: map \
                     them to fewer types in the mapping file",
                    if stats.event_types_capped {
                        "more than "
                    } else {
                        ""
                    },
                    stats.event_types.len()
                ),
            );
        }
    }

    let mut warnings: Vec<(&'static str, String)> = Vec::new();
    for (event_type, n) in &stats.event_types {
        if *n < limits::MIN_INTERACTIONS && stats.event_types.len() > 1 {
            warnings.push((
                "interactions_per_event_type",
                format!(
                    "EVENT_TYPE '{event_type}' has {n} interactions; a solution trained on this \
                     type alone needs at least {}",
                    limits::MIN_INTERACTIONS
                ),
            ));
        }
    }
    if let (Some(min), Some(max)) = (stats.time.min, stats.time.max)
        && min == max
        && rows > 1
        && plan.columns.iter().any(|c| c.name == "TIMESTAMP")
    {
        warnings.push((
            "timestamps_all_equal",
            format!("every TIMESTAMP is {min}; some recipes fail when all timestamps are equal"),
        ));
    }
    if stats.time.before_1990 > 0 {
        warnings.push((
            "timestamp_before_1990",
            format!(
                "{} timestamps lie before 1990; check the unit and the source",
                stats.time.before_1990
            ),
        ));
    }
    if stats.time.in_the_future > 0 {
        warnings.push((
            "timestamp_in_the_future",
            format!("{} timestamps lie in the future", stats.time.in_the_future),
        ));
    }
    let duplicates = stats.row_hashes.repeats();
    if stats.row_hashes.is_approximate() {
        approximate.push("duplicate_rows");
    }
    if duplicates > 0 {
        warnings.push((
            "duplicate_rows",
            format!(
                "{duplicates} rows are exact duplicates of another; Personalize keeps one of each \
                 (add DISTINCT to the final query)"
            ),
        ));
    }
    let duplicate_ids = stats.ids.as_ref().map(|ids| {
        if ids.is_approximate() {
            approximate.push("duplicate_ids");
        }
        ids.repeats()
    });
    if let Some(n) = duplicate_ids.filter(|n| *n > 0) {
        warnings.push((
            "duplicate_ids",
            format!("{n} rows repeat an id of an earlier row; Personalize keeps the last one"),
        ));
    }
    if plan.dataset == DatasetType::Interactions {
        if bytes_written > limits::MAX_FULL_IMPORT_BYTES {
            error(
                "import_size",
                format!(
                    "{bytes_written} bytes: over the {} bytes a FULL import job takes; split the \
                     export",
                    limits::MAX_FULL_IMPORT_BYTES
                ),
            );
        } else if bytes_written > limits::MAX_INCREMENTAL_IMPORT_BYTES {
            warnings.push((
                "import_size",
                format!(
                    "{bytes_written} bytes: over the {} bytes an INCREMENTAL import job takes; \
                     import it in FULL mode",
                    limits::MAX_INCREMENTAL_IMPORT_BYTES
                ),
            ));
        }
    }

    let mut columns = Vec::new();
    for (column, s) in plan.columns.iter().zip(&stats.columns) {
        let completeness = if rows == 0 {
            1.0
        } else {
            1.0 - s.nulls as f64 / rows as f64
        };
        if column.textual && completeness < MIN_TEXTUAL_COMPLETENESS {
            warnings.push((
                "completeness",
                format!(
                    "{} is {:.0} % complete; a textual column under {:.0} % is not used for training",
                    column.name,
                    completeness * 100.0,
                    MIN_TEXTUAL_COMPLETENESS * 100.0
                ),
            ));
        } else if !column.is_required() && completeness < MIN_COMPLETENESS {
            warnings.push((
                "completeness",
                format!(
                    "{} is {:.0} % complete (under {:.0} %)",
                    column.name,
                    completeness * 100.0,
                    MIN_COMPLETENESS * 100.0
                ),
            ));
        }
        if s.over_textual_limit > 0 {
            warnings.push((
                "textual_length",
                format!(
                    "{} values of {} are over {} characters; the service truncates them",
                    s.over_textual_limit,
                    column.name,
                    limits::MAX_TEXTUAL_CHARS
                ),
            ));
        }
        let distinct = s.distinct.as_ref().map(|d| {
            if d.is_approximate() {
                approximate.push("categorical_cardinality");
            }
            d.distinct()
        });
        match distinct {
            Some(n) if n > VERY_HIGH_CARDINALITY => warnings.push((
                "categorical_cardinality",
                format!(
                    "{} has about {n} distinct values, far above the {HIGH_CARDINALITY} the service \
                     recommends; consider not_categorical or grouping values",
                    column.name
                ),
            )),
            Some(n) if n > HIGH_CARDINALITY => warnings.push((
                "categorical_cardinality",
                format!(
                    "{} has {n} distinct values (the service's analysis flags more than \
                     {HIGH_CARDINALITY})",
                    column.name
                ),
            )),
            _ => {}
        }
        let moments = s.moments.as_ref().filter(|m| m.count > 0);
        if let Some(m) = moments {
            let sd = m.stddev();
            if sd > 0.0
                && ((m.max - m.mean) / sd > OUTLIER_SIGMAS
                    || (m.mean - m.min) / sd > OUTLIER_SIGMAS)
                && !matches!(column.name.as_str(), "TIMESTAMP" | "CREATION_TIMESTAMP")
            {
                warnings.push((
                    "numeric_outliers",
                    format!(
                        "{} ranges from {} to {} around a mean of {:.3} (standard deviation \
                         {:.3}): values over {OUTLIER_SIGMAS} deviations out look like outliers",
                        column.name, m.min, m.max, m.mean, sd
                    ),
                ));
            }
        }
        columns.push(ColumnInsight {
            name: column.name.clone(),
            completeness,
            distinct,
            min: moments.map(|m| m.min),
            max: moments.map(|m| m.max),
            mean: moments.map(|m| m.mean),
            stddev: moments.map(|m| m.stddev()),
        });
    }
    findings.extend(warnings.into_iter().map(|(check, message)| Finding {
        severity: Severity::Warning,
        check,
        message,
    }));
    approximate.sort_unstable();
    approximate.dedup();
    Checks {
        findings,
        rows,
        columns,
        event_types: stats.event_types.clone(),
        distinct_users: stats.users.as_ref().map(|u| u.distinct()),
        users_with_two_or_more: stats.users.as_ref().map(|u| u.keys_with_at_least(2)),
        distinct_items: stats.items.as_ref().map(|i| i.distinct()),
        duplicate_rows: duplicates,
        duplicate_ids,
        first_timestamp: stats.time.min.map(iso),
        last_timestamp: stats.time.max.map(iso),
        approximate,
        cross_dataset: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::personalize::ColumnHints;
    use crate::personalize::coerce::Coerced;
    use datafusion::arrow::array::{Float64Array, Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn plan(
        dataset: DatasetType,
        fields: &[(&str, DataType)],
        directives: &ColumnHints,
    ) -> ColumnPlan {
        let schema = Schema::new(
            fields
                .iter()
                .map(|(n, t)| Field::new(*n, t.clone(), true))
                .collect::<Vec<_>>(),
        );
        ColumnPlan::new(&schema, dataset, directives).unwrap()
    }

    fn text(values: Vec<String>) -> Coerced {
        Coerced::Text(Arc::new(StringArray::from(values)))
    }

    fn checks_of(checks: &Checks) -> Vec<&'static str> {
        checks.findings.iter().map(|f| f.check).collect()
    }

    #[test]
    fn share_of_users_with_two_interactions_below_one_percent() {
        let p = plan(
            DatasetType::Interactions,
            &[
                ("user_id", DataType::Utf8),
                ("item_id", DataType::Utf8),
                ("timestamp", DataType::Int64),
            ],
            &ColumnHints::default(),
        );
        // 3,030 users with one interaction each, and `repeated` of them with a second one.
        let stats_with = |repeated: usize| {
            let users: Vec<String> = (0..3030)
                .chain(0..repeated)
                .map(|i| format!("u{i}"))
                .collect();
            let n = users.len();
            let mut stats = DatasetStats::new(&p);
            let times = (0..n as i64).map(|i| 1_709_251_200 + i).collect::<Vec<_>>();
            stats
                .observe(
                    &p,
                    &[
                        text(users),
                        text(vec!["i".into(); n]),
                        Coerced::Long(Int64Array::from(times)),
                    ],
                )
                .unwrap();
            stats
        };
        // 30 of 3,030 users with 2 interactions: just under 1 %.
        let checks = evaluate(&p, &stats_with(30), 0);
        assert_eq!(checks.users_with_two_or_more, Some(30));
        assert!(
            checks_of(&checks).contains(&"users_with_two_interactions"),
            "{checks:?}"
        );
        // 31 of 3,030 users (just over 1 %): the rule holds.
        let stats = stats_with(31);
        assert!(!checks_of(&evaluate(&p, &stats, 0)).contains(&"users_with_two_interactions"));
    }

    #[test]
    fn cardinality_outliers_time_and_text_length() {
        let directives = ColumnHints {
            textual: vec!["DESCRIPTION".into()],
            ..ColumnHints::default()
        };
        let p = plan(
            DatasetType::Items,
            &[
                ("item_id", DataType::Utf8),
                ("brand", DataType::Utf8),
                ("color", DataType::Utf8),
                ("price", DataType::Float64),
                ("creation_timestamp", DataType::Int64),
                ("description", DataType::Utf8),
            ],
            &directives,
        );
        let n = 2000;
        let mut prices = vec![10.0; n];
        prices[0] = 1e9;
        let mut created = vec![1_709_251_200i64; n];
        created[1] = 0; // 1970
        created[2] = 4_102_444_800; // 2100
        let mut descriptions = vec!["short".to_string(); n];
        descriptions[3] = "x".repeat(limits::MAX_TEXTUAL_CHARS + 1);
        descriptions[4] = "x".repeat(limits::MAX_TEXTUAL_CHARS);
        let mut stats = DatasetStats::new(&p);
        stats
            .observe(
                &p,
                &[
                    text((0..n).map(|i| format!("i{i}")).collect()),
                    text((0..n).map(|i| format!("b{}", i % 31)).collect()), // 31 brands
                    text((0..n).map(|i| format!("c{i}")).collect()),        // 2,000 colors
                    Coerced::Float(Float64Array::from(prices)),
                    Coerced::Long(Int64Array::from(created)),
                    text(descriptions),
                ],
            )
            .unwrap();
        let checks = evaluate(&p, &stats, 0);
        let messages: Vec<&str> = checks.findings.iter().map(|f| f.message.as_str()).collect();
        assert!(
            messages
                .iter()
                .any(|m| m.starts_with("BRAND has 31 distinct")),
            "{messages:?}"
        );
        assert!(
            messages
                .iter()
                .any(|m| m.starts_with("COLOR has about 2000")),
            "{messages:?}"
        );
        assert!(
            messages.iter().any(|m| m.starts_with("PRICE ranges")),
            "{messages:?}"
        );
        assert!(
            messages
                .iter()
                .any(|m| m.starts_with("1 values of DESCRIPTION are over")),
            "{messages:?}"
        );
        assert!(checks_of(&checks).contains(&"timestamp_before_1990"));
        assert!(checks_of(&checks).contains(&"timestamp_in_the_future"));
        assert_eq!(checks.errors(), 0);
    }

    #[test]
    fn import_size_limits() {
        let p = plan(
            DatasetType::Interactions,
            &[
                ("user_id", DataType::Utf8),
                ("item_id", DataType::Utf8),
                ("timestamp", DataType::Int64),
            ],
            &ColumnHints::default(),
        );
        let stats = DatasetStats::new(&p);
        let at = |bytes| checks_of(&evaluate(&p, &stats, bytes)).contains(&"import_size");
        assert!(!at(limits::MAX_INCREMENTAL_IMPORT_BYTES));
        assert!(at(limits::MAX_INCREMENTAL_IMPORT_BYTES + 1));
        let full = evaluate(&p, &stats, limits::MAX_FULL_IMPORT_BYTES + 1);
        assert!(
            full.findings
                .iter()
                .any(|f| f.check == "import_size" && f.severity == Severity::Error)
        );
    }
}
