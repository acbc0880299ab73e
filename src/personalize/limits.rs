//! Every number Amazon Personalize imposes, in one place, with the page it comes from.
//!
//! Pages of the Amazon Personalize Developer Guide, as summarised in shared/personalize-rules.md.
//! When the service changes a limit, change it here.

/// "Custom datasets and schemas": ids are strings of at most 256 characters.
pub const MAX_ID_CHARS: usize = 256;
/// "Custom datasets and schemas": categorical values, `|` separators included.
pub const MAX_CATEGORICAL_CHARS: usize = 1_000;
/// "Custom datasets and schemas": other string values in Users, Items and Actions.
pub const MAX_STRING_CHARS: usize = 1_000;
/// "Custom datasets and schemas": textual values beyond this are truncated by the service.
pub const MAX_TEXTUAL_CHARS: usize = 20_000;
/// "Creating schema JSON files": the schema JSON text.
pub const MAX_SCHEMA_CHARS: usize = 20_000;
/// "Custom datasets and schemas": metadata columns per dataset type (min, max).
pub const USERS_METADATA: (usize, usize) = (1, 25);
pub const ITEMS_METADATA: (usize, usize) = (1, 100);
pub const ACTIONS_METADATA: (usize, usize) = (1, 10);
pub const INTERACTIONS_METADATA: (usize, usize) = (0, 5);
pub const ACTION_INTERACTIONS_METADATA: (usize, usize) = (0, 5);
/// "Custom datasets and schemas": at most one textual field, Items only.
pub const MAX_TEXTUAL_FIELDS: usize = 1;
/// "Preparing training data": epoch seconds; a value above this is almost surely milliseconds.
pub const MAX_PLAUSIBLE_EPOCH_SECONDS: i64 = 100_000_000_000;
/// "Custom datasets and schemas": Actions VALUE range.
pub const ACTION_VALUE_RANGE: (i64, i64) = (1, 10);
/// "Custom datasets and schemas": Actions REPEAT_FREQUENCY, in days.
pub const MAX_REPEAT_FREQUENCY_DAYS: i64 = 30;
/// "Custom datasets and schemas": Action interactions EVENT_TYPE values.
pub const ACTION_EVENT_TYPES: &[&str] = &["Taken", "Not Taken", "Viewed"];
/// "Importing bulk data": data per import job.
pub const MAX_FULL_IMPORT_BYTES: u64 = 100 * 1_000_000_000;
pub const MAX_INCREMENTAL_IMPORT_BYTES: u64 = 1_000_000_000;
/// "Preparing training data": minimum interactions.
pub const MIN_INTERACTIONS: u64 = 1_000;
/// The Avro namespace every Personalize schema uses.
pub const SCHEMA_NAMESPACE: &str = "com.amazonaws.personalize.schema";
/// The separator of several values in one categorical field or an impression list.
pub const MULTI_VALUE_SEPARATOR: &str = "|";
/// "Data insights": share of non-null values under which the service's analysis flags a column.
pub const MIN_COMPLETENESS: f64 = 0.70;
/// Share under which a textual column is not used for training.
pub const MIN_TEXTUAL_COMPLETENESS: f64 = 0.85;
/// Categorical cardinality the service's analysis flags, and the one it calls far too many.
pub const HIGH_CARDINALITY: u64 = 30;
pub const VERY_HIGH_CARDINALITY: u64 = 1_000;
/// Users with at least two interactions: at least this many, and this share of all users.
pub const MIN_USERS_WITH_TWO: u64 = 25;
pub const MIN_SHARE_USERS_WITH_TWO: f64 = 0.01;
/// More distinct event types than this and training fails.
pub const MAX_EVENT_TYPES: usize = 10;

/// The most one INCREMENTAL dataset import job takes: 1 GB.
pub const INCREMENTAL_IMPORT_MAX_BYTES: u64 = 1_000_000_000;
