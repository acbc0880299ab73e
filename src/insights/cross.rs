//! Checks across the datasets of one output: interactions whose USER_ID / ITEM_ID / ACTION_ID is
//! in no Users / Items / Actions row, and users / items / actions without interactions, the usual
//! sign of ids mangled differently in two exports.
//!
//! Each run keeps a sample of its id hashes beside the export (`.pengine/ids/`), so the datasets
//! can be compared whatever order they are run in; the dataset run last reports the comparison.

use serde::Serialize;

use super::finding::{Finding, Severity};
use super::sampler::SampledCounter;
use super::stats::DatasetStats;
use crate::personalize::DatasetType;

/// Interactions whose id is in no entity row, above this share, are flagged.
pub const MAX_UNKNOWN_ID_SHARE: f64 = 0.01;
/// Entities without interactions, above this share, are flagged.
pub const MAX_UNUSED_ENTITY_SHARE: f64 = 0.5;

/// (interactions dataset, entity dataset, id column) pairs compared.
pub const PAIRS: &[(DatasetType, DatasetType, &str)] = &[
    (DatasetType::Interactions, DatasetType::Users, "USER_ID"),
    (DatasetType::Interactions, DatasetType::Items, "ITEM_ID"),
    (
        DatasetType::ActionInteractions,
        DatasetType::Users,
        "USER_ID",
    ),
    (
        DatasetType::ActionInteractions,
        DatasetType::Actions,
        "ACTION_ID",
    ),
];

/// The id samples a run keeps: (column, counter).
pub fn id_samples(
    dataset: DatasetType,
    stats: &DatasetStats,
) -> Vec<(&'static str, SampledCounter)> {
    let pick = |c: &Option<SampledCounter>| c.clone();
    let pairs: Vec<(&'static str, Option<SampledCounter>)> = match dataset {
        DatasetType::Interactions => vec![
            ("USER_ID", pick(&stats.users)),
            ("ITEM_ID", pick(&stats.items)),
        ],
        DatasetType::ActionInteractions => {
            vec![
                ("USER_ID", pick(&stats.users)),
                ("ACTION_ID", pick(&stats.items)),
            ]
        }
        DatasetType::Users => vec![("USER_ID", pick(&stats.ids))],
        DatasetType::Items => vec![("ITEM_ID", pick(&stats.ids))],
        DatasetType::Actions => vec![("ACTION_ID", pick(&stats.ids))],
    };
    pairs
        .into_iter()
        .filter_map(|(column, counter)| counter.map(|c| (column, c)))
        .collect()
}

#[derive(Debug, Clone, Serialize)]
pub struct CrossCheck {
    pub interactions: DatasetType,
    pub entities: DatasetType,
    pub column: &'static str,
    /// Share of interactions whose id is in no entity row.
    pub interactions_with_unknown_id: f64,
    /// Share of entity rows (ids) with no interaction.
    pub entities_without_interactions: f64,
    pub approximate: bool,
}

/// Compares interactions' ids with an entity dataset's ids.
pub fn compare(
    (interactions, entities, column): (DatasetType, DatasetType, &'static str),
    interaction_ids: &SampledCounter,
    entity_ids: &SampledCounter,
) -> (CrossCheck, Vec<Finding>) {
    let o = interaction_ids.overlap(entity_ids);
    let share = |part: u64, whole: u64| {
        if whole == 0 {
            0.0
        } else {
            part as f64 / whole as f64
        }
    };
    let check = CrossCheck {
        interactions,
        entities,
        column,
        interactions_with_unknown_id: share(o.occurrences_missing, o.occurrences),
        entities_without_interactions: share(o.other_unmatched, o.other_keys),
        approximate: o.approximate,
    };
    let mut findings = Vec::new();
    if check.interactions_with_unknown_id > MAX_UNKNOWN_ID_SHARE {
        findings.push(Finding {
            severity: Severity::Warning,
            check: "cross_dataset_ids",
            message: format!(
                "{:.1} % of {interactions} rows have a {column} found in no {entities} row \
                 ({} distinct ids): check that both mapping files build {column} the same way",
                check.interactions_with_unknown_id * 100.0,
                o.keys_missing
            ),
        });
    }
    if check.entities_without_interactions > MAX_UNUSED_ENTITY_SHARE {
        findings.push(Finding {
            severity: Severity::Warning,
            check: "cross_dataset_ids",
            message: format!(
                "{:.1} % of {entities} have no {interactions} row (by {column})",
                check.entities_without_interactions * 100.0
            ),
        });
    }
    (check, findings)
}
