//! The five dataset types and the reserved fields each one defines.

use std::fmt;
use std::str::FromStr;

use super::limits;

/// A Personalize dataset type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DatasetType {
    Interactions,
    Items,
    Users,
    Actions,
    ActionInteractions,
}

/// What a reserved field holds, which fixes its Avro type and how values are coerced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldKind {
    /// USER_ID, ITEM_ID, ACTION_ID: exact strings of at most 256 characters.
    Id,
    /// TIMESTAMP and friends: epoch seconds as `long`.
    EpochSeconds,
    /// EVENT_VALUE: `float`.
    Float,
    /// VALUE, REPEAT_FREQUENCY: `long`.
    Long,
    /// EVENT_TYPE: a string, never categorical.
    EventType,
    /// IMPRESSION: item ids joined by `|`.
    Impression,
    /// RECOMMENDATION_ID, EVENT_ATTRIBUTION_SOURCE, TYPE: a plain string.
    Text,
}

/// A reserved field of a dataset type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReservedField {
    pub name: &'static str,
    pub kind: FieldKind,
    /// Required fields must be present and are never null.
    pub required: bool,
    /// Whether the schema lets the field be null (optional reserved fields mostly are).
    pub nullable: bool,
}

const fn field(
    name: &'static str,
    kind: FieldKind,
    required: bool,
    nullable: bool,
) -> ReservedField {
    ReservedField {
        name,
        kind,
        required,
        nullable,
    }
}

use FieldKind::*;

const INTERACTIONS: &[ReservedField] = &[
    field("USER_ID", Id, true, false),
    field("ITEM_ID", Id, true, false),
    field("TIMESTAMP", EpochSeconds, true, false),
    field("EVENT_TYPE", EventType, false, false),
    field("EVENT_VALUE", Float, false, true),
    field("IMPRESSION", Impression, false, true),
    field("RECOMMENDATION_ID", Text, false, true),
    field("EVENT_ATTRIBUTION_SOURCE", Text, false, true),
];
const USERS: &[ReservedField] = &[field("USER_ID", Id, true, false)];
const ITEMS: &[ReservedField] = &[
    field("ITEM_ID", Id, true, false),
    field("CREATION_TIMESTAMP", EpochSeconds, false, false),
];
const ACTIONS: &[ReservedField] = &[
    field("ACTION_ID", Id, true, false),
    field("CREATION_TIMESTAMP", EpochSeconds, false, false),
    field("VALUE", Long, false, true),
    field("TYPE", Text, false, true),
    field("EXPIRATION_TIMESTAMP", EpochSeconds, false, true),
    field("REPEAT_FREQUENCY", Long, false, true),
];
const ACTION_INTERACTIONS: &[ReservedField] = &[
    field("USER_ID", Id, true, false),
    field("ACTION_ID", Id, true, false),
    field("EVENT_TYPE", EventType, true, false),
    field("TIMESTAMP", EpochSeconds, true, false),
    field("IMPRESSION", Impression, false, true),
    field("RECOMMENDATION_ID", Text, false, true),
];

impl DatasetType {
    pub const ALL: [DatasetType; 5] = [
        DatasetType::Interactions,
        DatasetType::Items,
        DatasetType::Users,
        DatasetType::Actions,
        DatasetType::ActionInteractions,
    ];

    /// The lower-case key used in file names, directives and the output layout.
    pub fn key(self) -> &'static str {
        match self {
            DatasetType::Interactions => "interactions",
            DatasetType::Items => "items",
            DatasetType::Users => "users",
            DatasetType::Actions => "actions",
            DatasetType::ActionInteractions => "action_interactions",
        }
    }

    /// The Avro record name Personalize expects.
    pub fn record_name(self) -> &'static str {
        match self {
            DatasetType::Interactions => "Interactions",
            DatasetType::Items => "Items",
            DatasetType::Users => "Users",
            DatasetType::Actions => "Actions",
            DatasetType::ActionInteractions => "ActionInteractions",
        }
    }

    pub fn reserved_fields(self) -> &'static [ReservedField] {
        match self {
            DatasetType::Interactions => INTERACTIONS,
            DatasetType::Items => ITEMS,
            DatasetType::Users => USERS,
            DatasetType::Actions => ACTIONS,
            DatasetType::ActionInteractions => ACTION_INTERACTIONS,
        }
    }

    pub fn reserved(self, name: &str) -> Option<&'static ReservedField> {
        self.reserved_fields().iter().find(|f| f.name == name)
    }

    /// (min, max) custom metadata columns.
    pub fn metadata_range(self) -> (usize, usize) {
        match self {
            DatasetType::Interactions => limits::INTERACTIONS_METADATA,
            DatasetType::Items => limits::ITEMS_METADATA,
            DatasetType::Users => limits::USERS_METADATA,
            DatasetType::Actions => limits::ACTIONS_METADATA,
            DatasetType::ActionInteractions => limits::ACTION_INTERACTIONS_METADATA,
        }
    }

    /// Whether plain strings in this dataset are limited to [`limits::MAX_STRING_CHARS`].
    pub fn limits_plain_strings(self) -> bool {
        matches!(
            self,
            DatasetType::Users | DatasetType::Items | DatasetType::Actions
        )
    }
}

impl fmt::Display for DatasetType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.key())
    }
}

impl FromStr for DatasetType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        let wanted = match wanted.as_str() {
            "actioninteractions" => "action_interactions",
            other => other,
        };
        DatasetType::ALL
            .into_iter()
            .find(|d| d.key() == wanted)
            .ok_or_else(|| {
                format!(
                    "unknown dataset type '{s}'; expected one of: {}",
                    DatasetType::ALL.map(|d| d.key()).join(", ")
                )
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_spellings() {
        assert_eq!("Interactions".parse(), Ok(DatasetType::Interactions));
        assert_eq!(
            "action-interactions".parse(),
            Ok(DatasetType::ActionInteractions)
        );
        assert_eq!(
            "ActionInteractions".parse(),
            Ok(DatasetType::ActionInteractions)
        );
        assert!("clicks".parse::<DatasetType>().is_err());
    }

    #[test]
    fn every_dataset_requires_an_id() {
        for d in DatasetType::ALL {
            assert!(
                d.reserved_fields()
                    .iter()
                    .any(|f| f.required && f.kind == FieldKind::Id)
            );
        }
    }
}
