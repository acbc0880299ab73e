//! Guesses for `pengine init`: which dataset type a source feeds and what each column is, from
//! column names (camelCase, snake_case and nested names alike) and from the sampled values
//! (epoch seconds vs milliseconds vs ISO text, categories vs ids vs free text).

use serde::Serialize;

use crate::crawl::ColumnProfile;
use crate::personalize::DatasetType;

/// A reserved column of a Personalize dataset that init looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Role {
    UserId,
    ItemId,
    Timestamp,
    EventType,
    EventValue,
    CreationTimestamp,
}

impl Role {
    pub fn column(self) -> &'static str {
        match self {
            Role::UserId => "user_id",
            Role::ItemId => "item_id",
            Role::Timestamp => "timestamp",
            Role::EventType => "event_type",
            Role::EventValue => "event_value",
            Role::CreationTimestamp => "creation_timestamp",
        }
    }

    /// Names (lower-cased, without `_`, `-`, spaces) that say a column has this role.
    fn names(self) -> &'static [&'static str] {
        match self {
            Role::UserId => &[
                "userid",
                "user",
                "customerid",
                "customer",
                "custid",
                "memberid",
                "member",
                "visitorid",
                "visitor",
                "uid",
                "accountid",
                "clientid",
                "shopperid",
                "personid",
                "profileid",
                "viewerid",
            ],
            Role::ItemId => &[
                "itemid",
                "item",
                "sku",
                "productid",
                "product",
                "asin",
                "movieid",
                "movie",
                "articleid",
                "contentid",
                "iid",
                "productsku",
                "skuid",
                "videoid",
                "songid",
                "trackid",
                "bookid",
                "offerid",
                "listingid",
            ],
            Role::Timestamp => &[
                "ts",
                "timestamp",
                "eventtime",
                "eventtimestamp",
                "time",
                "occurredat",
                "createdat",
                "datetime",
                "eventdate",
                "date",
                "tsms",
                "timestampms",
                "clickedat",
                "viewedat",
                "happenedat",
                "eventts",
                "loggedat",
            ],
            Role::EventType => &[
                "event",
                "eventtype",
                "eventname",
                "action",
                "actiontype",
                "type",
                "interaction",
                "interactiontype",
                "activity",
                "activitytype",
                "verb",
            ],
            Role::EventValue => &[
                "price",
                "value",
                "rating",
                "amount",
                "score",
                "revenue",
                "eventvalue",
                "total",
                "stars",
            ],
            Role::CreationTimestamp => &[
                "createdat",
                "creationtimestamp",
                "created",
                "addedat",
                "added",
                "publishedat",
                "published",
                "releasedate",
                "createdate",
                "creationdate",
                "listedat",
                "createdon",
                "releasedat",
                "launchdate",
            ],
        }
    }
}

/// `userId`, `user_id`, `User ID` → `userid`.
fn normal(name: &str) -> String {
    name.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// The last part of a nested path (`context.page` → `page`).
fn leaf(path: &str) -> &str {
    path.rsplit('.').next().unwrap_or(path)
}

/// Whether a column's name says `role` (top-level names fully, nested ones by their leaf).
pub fn named(profile: &ColumnProfile, role: Role, dataset: Option<DatasetType>) -> bool {
    path_named(&profile.path, role, dataset)
}

/// Whether a column at `path` (`userId`, `context.page`) is named for `role`.
pub fn path_named(path: &str, role: Role, dataset: Option<DatasetType>) -> bool {
    let whole = normal(path);
    let last = normal(leaf(path));
    let matches = |n: &str| role.names().contains(&n);
    if matches(&whole) {
        return true;
    }
    // A bare `id` is the key of an items or users source.
    if whole == "id" {
        return matches!(
            (role, dataset),
            (Role::UserId, Some(DatasetType::Users)) | (Role::ItemId, Some(DatasetType::Items))
        );
    }
    match role {
        Role::UserId => whole.ends_with("userid") || whole.ends_with("customerid"),
        Role::ItemId => {
            whole.ends_with("itemid") || whole.ends_with("productid") || whole.ends_with("sku")
        }
        _ => path.contains('.') && matches(&last),
    }
}

/// How a column holds time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeEncoding {
    /// An Arrow timestamp or date (pengine converts it to epoch seconds).
    Native,
    EpochSeconds,
    /// Epoch seconds with a fraction.
    EpochSecondsFloat,
    EpochMillis,
    EpochMicros,
    /// ISO-8601 text.
    IsoText,
}

impl TimeEncoding {
    pub fn describe(self) -> &'static str {
        match self {
            TimeEncoding::Native => "a timestamp/date type",
            TimeEncoding::EpochSeconds => "epoch seconds",
            TimeEncoding::EpochSecondsFloat => "epoch seconds with a fraction",
            TimeEncoding::EpochMillis => "epoch milliseconds",
            TimeEncoding::EpochMicros => "epoch microseconds",
            TimeEncoding::IsoText => "ISO-8601 text",
        }
    }

    /// The expression turning `expr` into something pengine writes as epoch seconds.
    pub fn to_seconds(self, expr: &str) -> String {
        match self {
            TimeEncoding::Native | TimeEncoding::EpochSeconds => expr.to_string(),
            TimeEncoding::EpochSecondsFloat => format!("CAST({expr} AS BIGINT)"),
            TimeEncoding::EpochMillis => format!("to_timestamp_millis(CAST({expr} AS BIGINT))"),
            TimeEncoding::EpochMicros => format!("to_timestamp_micros(CAST({expr} AS BIGINT))"),
            TimeEncoding::IsoText => format!("TRY_CAST({expr} AS TIMESTAMP)"),
        }
    }
}

/// Reads how a column holds time from its values (epoch ranges: 1979 to 5138 in seconds).
pub fn time_encoding(profile: &ColumnProfile) -> Option<TimeEncoding> {
    if profile.is_temporal() {
        return Some(TimeEncoding::Native);
    }
    if profile.is_numeric() {
        let (lo, hi) = (profile.min?, profile.max?);
        let within = |a: f64, b: f64| lo >= a && hi < b;
        return if within(3e8, 1e11) {
            Some(if profile.is_integer() {
                TimeEncoding::EpochSeconds
            } else {
                TimeEncoding::EpochSecondsFloat
            })
        } else if within(3e11, 1e14) {
            Some(TimeEncoding::EpochMillis)
        } else if within(3e14, 1e17) {
            Some(TimeEncoding::EpochMicros)
        } else {
            None
        };
    }
    (profile.is_text() && profile.non_null() > 0 && profile.time_text >= 0.9)
        .then_some(TimeEncoding::IsoText)
}

/// Whether values can be ids: text or integers, not free text.
pub fn id_like(profile: &ColumnProfile) -> bool {
    (profile.is_text() && profile.spaced < 0.1 && profile.max_len <= 256) || profile.is_integer()
}

/// Free text: long values with spaces.
pub fn free_text(profile: &ColumnProfile) -> bool {
    profile.is_text() && profile.spaced > 0.5 && profile.avg_len >= 30.0
}

/// Names that usually hold personal data; init leaves them out.
pub fn personal(profile: &ColumnProfile) -> bool {
    let n = normal(leaf(&profile.path));
    [
        "email",
        "mail",
        "phone",
        "mobile",
        "name",
        "firstname",
        "lastname",
        "fullname",
        "address",
        "street",
        "ip",
        "ipaddress",
        "password",
        "ssn",
        "birthdate",
        "dob",
    ]
    .contains(&n.as_str())
}

/// The first column named for `role` whose values fit it, else the first whose values fit.
pub fn find(
    profiles: &[ColumnProfile],
    role: Role,
    dataset: DatasetType,
    taken: &[usize],
) -> Option<(usize, &'static str)> {
    let fits = |p: &ColumnProfile| match role {
        Role::UserId | Role::ItemId => id_like(p),
        Role::Timestamp | Role::CreationTimestamp => time_encoding(p).is_some(),
        Role::EventType => p.is_text() && p.low_cardinality(),
        Role::EventValue => p.is_numeric() || (p.is_text() && p.integer_text > 0.9),
    };
    let free = |i: &usize| !taken.contains(i);
    let by_name = (0..profiles.len())
        .filter(free)
        .find(|&i| named(&profiles[i], role, Some(dataset)) && fits(&profiles[i]));
    if let Some(i) = by_name {
        return Some((i, "its name"));
    }
    // Timestamps are recognisable by their values alone.
    if matches!(role, Role::Timestamp | Role::CreationTimestamp) {
        let hinted = |p: &ColumnProfile| {
            let n = normal(leaf(&p.path));
            n.contains("time") || n.contains("date") || n.ends_with("at") || n.contains("ts")
        };
        let by_values = (0..profiles.len())
            .filter(free)
            .filter(|&i| fits(&profiles[i]))
            .max_by_key(|&i| hinted(&profiles[i]));
        return by_values.map(|i| (i, "its values"));
    }
    None
}

/// Which dataset type a source most likely feeds, how sure (a score), and why.
pub fn guess_dataset(
    table: &str,
    profiles: &[ColumnProfile],
) -> (Option<DatasetType>, u32, String) {
    let table_name = normal(table);
    let hints: [(DatasetType, &[&str]); 3] = [
        (
            DatasetType::Interactions,
            &[
                "event",
                "click",
                "interaction",
                "view",
                "order",
                "purchase",
                "history",
                "log",
                "activity",
                "rating",
                "stream",
                "session",
                "transaction",
                "play",
            ],
        ),
        (
            DatasetType::Items,
            &[
                "item",
                "catalog",
                "product",
                "movie",
                "article",
                "content",
                "inventory",
                "offer",
                "listing",
                "sku",
            ],
        ),
        (
            DatasetType::Users,
            &[
                "user", "customer", "profile", "member", "account", "visitor", "people", "person",
                "shopper",
            ],
        ),
    ];
    let has = |role: Role, dataset: DatasetType| {
        profiles
            .iter()
            .any(|p| named(p, role, Some(dataset)) && (role != Role::UserId || id_like(p)))
    };
    let user = has(Role::UserId, DatasetType::Interactions);
    let item = has(Role::ItemId, DatasetType::Interactions);
    let time = profiles.iter().any(|p| time_encoding(p).is_some());
    let mut best: Option<(DatasetType, u32, String)> = None;
    for (dataset, words) in hints {
        let mut score = 0;
        let mut why = Vec::new();
        if let Some(word) = words.iter().find(|w| table_name.contains(*w)) {
            score += 2;
            why.push(format!("the source is named '{table}' ({word})"));
        }
        let (columns, text) = match dataset {
            DatasetType::Interactions => {
                (user && item && time, "it has user, item and time columns")
            }
            DatasetType::Items => (
                !user && (item || has(Role::ItemId, DatasetType::Items)),
                "it has an item id and no user id",
            ),
            _ => (
                !item && (user || has(Role::UserId, DatasetType::Users)),
                "it has a user id and no item id",
            ),
        };
        if columns {
            score += 3;
            why.push(text.to_string());
        }
        if score > 0 && best.as_ref().is_none_or(|(_, s, _)| score > *s) {
            best = Some((dataset, score, why.join(" and ")));
        }
    }
    match best {
        Some((dataset, score, why)) => (Some(dataset), score, why),
        None => (None, 0, "neither its name nor its columns say".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::DataType;

    pub fn column(path: &str, data_type: DataType) -> ColumnProfile {
        ColumnProfile {
            path: path.into(),
            expr: path.into(),
            name: path.into(),
            data_type,
            rows: 100,
            nulls: 0,
            distinct: 100,
            min: None,
            max: None,
            time_text: 0.0,
            integer_text: 0.0,
            avg_len: 8.0,
            max_len: 10,
            spaced: 0.0,
            path_separator: None,
            examples: Vec::new(),
        }
    }

    fn number(path: &str, min: f64, max: f64, data_type: DataType) -> ColumnProfile {
        ColumnProfile {
            min: Some(min),
            max: Some(max),
            ..column(path, data_type)
        }
    }

    #[test]
    fn names_in_any_case_and_nesting_are_recognised() {
        let user = column("userId", DataType::Utf8);
        assert!(named(&user, Role::UserId, None));
        assert!(named(
            &column("customer_id", DataType::Int64),
            Role::UserId,
            None
        ));
        assert!(named(
            &column("movieId", DataType::Int64),
            Role::ItemId,
            None
        ));
        assert!(named(&column("ASIN", DataType::Utf8), Role::ItemId, None));
        assert!(named(
            &column("context.eventType", DataType::Utf8),
            Role::EventType,
            None
        ));
        assert!(named(
            &column("id", DataType::Utf8),
            Role::ItemId,
            Some(DatasetType::Items)
        ));
        assert!(!named(
            &column("id", DataType::Utf8),
            Role::ItemId,
            Some(DatasetType::Users)
        ));
        assert!(!named(
            &column("session_id", DataType::Utf8),
            Role::UserId,
            None
        ));
    }

    #[test]
    fn epoch_units_are_told_apart_by_their_values() {
        let seconds = number("ts", 1.7e9, 1.71e9, DataType::Int64);
        assert_eq!(time_encoding(&seconds), Some(TimeEncoding::EpochSeconds));
        let millis = number("ts", 1.7e12, 1.71e12, DataType::Int64);
        assert_eq!(time_encoding(&millis), Some(TimeEncoding::EpochMillis));
        let fraction = number("ts", 1.7e9, 1.71e9, DataType::Float64);
        assert_eq!(
            time_encoding(&fraction),
            Some(TimeEncoding::EpochSecondsFloat)
        );
        let price = number("price", 1.0, 99.0, DataType::Float64);
        assert_eq!(time_encoding(&price), None);
        let iso = ColumnProfile {
            time_text: 1.0,
            ..column("when", DataType::Utf8)
        };
        assert_eq!(time_encoding(&iso), Some(TimeEncoding::IsoText));
        assert_eq!(
            TimeEncoding::EpochMillis.to_seconds("ts"),
            "to_timestamp_millis(CAST(ts AS BIGINT))"
        );
    }

    #[test]
    fn dataset_types_come_from_names_and_columns() {
        let events = [
            column("user_id", DataType::Utf8),
            column("sku", DataType::Utf8),
            number("ts", 1.7e12, 1.71e12, DataType::Int64),
        ];
        assert_eq!(
            guess_dataset("clicks", &events).0,
            Some(DatasetType::Interactions)
        );
        let catalog = [
            column("sku", DataType::Utf8),
            column("title", DataType::Utf8),
        ];
        assert_eq!(
            guess_dataset("export_b", &catalog).0,
            Some(DatasetType::Items)
        );
        let people = [
            column("customerId", DataType::Utf8),
            column("tier", DataType::Utf8),
        ];
        assert_eq!(guess_dataset("dump", &people).0, Some(DatasetType::Users));
        assert_eq!(guess_dataset("x", &[column("a", DataType::Utf8)]).0, None);
    }
}
