//! Why a row cannot be imported: one rejection per offending row, with the rule it breaks, the
//! column and the value, and the message that tells the user what to change.

use serde::Serialize;

use super::limits;

/// A rule a single row can break.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Rule {
    /// A required field (or EVENT_TYPE, CREATION_TIMESTAMP) is null or empty.
    Required,
    /// An id longer than [`limits::MAX_ID_CHARS`].
    IdTooLong,
    /// A categorical or impression value longer than [`limits::MAX_CATEGORICAL_CHARS`].
    CategoricalTooLong,
    /// A plain string in Users/Items/Actions longer than [`limits::MAX_STRING_CHARS`].
    StringTooLong,
    /// An integer epoch above [`limits::MAX_PLAUSIBLE_EPOCH_SECONDS`]: milliseconds (or micro-
    /// or nanoseconds, see [`finer_epoch_unit`]).
    TimestampMilliseconds,
    /// Text that should hold a timestamp but does not.
    NotATimestamp,
    /// Text that should hold a number but does not, a non-finite float, or one beyond a 32-bit
    /// Avro `float`.
    NotANumber,
    /// Text that should hold an integer but does not, or an integer beyond 64 bits.
    NotAnInteger,
    /// Actions VALUE outside 1–10 or REPEAT_FREQUENCY over 30 days.
    OutOfRange,
    /// Action interactions EVENT_TYPE other than Taken / Not Taken / Viewed.
    EventTypeNotAllowed,
}

impl Rule {
    pub fn key(self) -> &'static str {
        match self {
            Rule::Required => "required",
            Rule::IdTooLong => "id_too_long",
            Rule::CategoricalTooLong => "categorical_too_long",
            Rule::StringTooLong => "string_too_long",
            Rule::TimestampMilliseconds => "timestamp_milliseconds",
            Rule::NotATimestamp => "not_a_timestamp",
            Rule::NotANumber => "not_a_number",
            Rule::NotAnInteger => "not_an_integer",
            Rule::OutOfRange => "out_of_range",
            Rule::EventTypeNotAllowed => "event_type_not_allowed",
        }
    }
}

/// One rejected row's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    pub rule: Rule,
    pub column: String,
    /// The offending value, cut to a readable length (None for a missing value).
    pub value: Option<String>,
}

impl Rejection {
    pub fn new(rule: Rule, column: &str, value: Option<&str>) -> Self {
        Self {
            rule,
            column: column.to_string(),
            value: value.map(excerpt),
        }
    }

    /// The message for a person: what is wrong, the limit, and what to change.
    pub fn message(&self) -> String {
        let column = &self.column;
        let value = self.value.as_deref().unwrap_or("");
        let lower = column.to_ascii_lowercase();
        match self.rule {
            Rule::Required => format!(
                "{column} is empty; it never takes nulls or empty values. Filter such rows in the \
                 mapping file, e.g. `WHERE {lower} IS NOT NULL`"
            ),
            Rule::IdTooLong => format!(
                "{column} value '{value}' is longer than {} characters, the limit for ids",
                limits::MAX_ID_CHARS
            ),
            Rule::CategoricalTooLong => format!(
                "{column} value '{value}' is longer than {} characters (separators included), the \
                 limit for categorical values; shorten it or mark the column not_categorical",
                limits::MAX_CATEGORICAL_CHARS
            ),
            Rule::StringTooLong => format!(
                "{column} value '{value}' is longer than {} characters, the limit for strings",
                limits::MAX_STRING_CHARS
            ),
            Rule::TimestampMilliseconds => {
                let (unit, per_second, function) = finer_epoch_unit(value.parse().unwrap_or(0));
                format!(
                    "{column} value {value} looks like epoch {unit} (above {}); Personalize \
                     wants seconds: divide by {per_second} in the mapping file (e.g. \
                     `ts / {per_second} AS {lower}` or `{function}(ts) AS {lower}`)",
                    limits::MAX_PLAUSIBLE_EPOCH_SECONDS * (per_second / 1000)
                )
            }
            Rule::NotATimestamp => format!(
                "{column} value '{value}' is neither epoch seconds nor an ISO-8601 timestamp; \
                 convert it in SQL (e.g. to_timestamp(col, '%d/%m/%Y %H:%M'))"
            ),
            // A finite value here is one a 32-bit float cannot hold (see `rows::check_batch`).
            Rule::NotANumber if value.parse::<f64>().is_ok_and(f64::is_finite) => format!(
                "{column} value {value} is out of the range of a 32-bit float (±{:.1e}), the \
                 type Personalize's schema gives {column}; scale it down in the mapping file, or \
                 make such values null (e.g. `CASE WHEN abs(v) < 3.4e38 THEN v END AS {lower}`)",
                f32::MAX
            ),
            Rule::NotANumber => format!("{column} value '{value}' is not a finite number"),
            Rule::NotAnInteger => {
                format!("{column} value '{value}' is not an integer that fits 64 bits")
            }
            Rule::OutOfRange => match column.as_str() {
                "VALUE" => format!(
                    "VALUE {value} is outside {}–{}",
                    limits::ACTION_VALUE_RANGE.0,
                    limits::ACTION_VALUE_RANGE.1
                ),
                _ => format!(
                    "{column} {value} is over {} days",
                    limits::MAX_REPEAT_FREQUENCY_DAYS
                ),
            },
            Rule::EventTypeNotAllowed => format!(
                "EVENT_TYPE '{value}' is not one of {}",
                limits::ACTION_EVENT_TYPES.join(", ")
            ),
        }
    }
}

/// The unit an integer epoch too large for seconds is most likely in, by its magnitude (each unit
/// a thousand times the last, from [`limits::MAX_PLAUSIBLE_EPOCH_SECONDS`] on): its name, units
/// per second and the DataFusion function that reads it.
pub fn finer_epoch_unit(value: i64) -> (&'static str, i64, &'static str) {
    let seconds = limits::MAX_PLAUSIBLE_EPOCH_SECONDS;
    if value > seconds * 1_000_000 {
        ("nanoseconds", 1_000_000_000, "to_timestamp_nanos")
    } else if value > seconds * 1_000 {
        ("microseconds", 1_000_000, "to_timestamp_micros")
    } else {
        ("milliseconds", 1_000, "to_timestamp_millis")
    }
}

/// Cuts a value for a message.
pub fn excerpt(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(MAX).collect::<String>())
    }
}

/// The first rejection of each row of a batch.
#[derive(Debug, Default)]
pub struct RowRejections {
    reasons: Vec<Option<Rejection>>,
    count: usize,
}

impl RowRejections {
    pub fn new(rows: usize) -> Self {
        Self {
            reasons: vec![None; rows],
            count: 0,
        }
    }

    /// Records why `row` is rejected, unless it already has a reason.
    pub fn reject(&mut self, row: usize, rejection: Rejection) {
        if self.reasons[row].is_none() {
            self.reasons[row] = Some(rejection);
            self.count += 1;
        }
    }

    pub fn is_rejected(&self, row: usize) -> bool {
        self.reasons[row].is_some()
    }

    pub fn count(&self) -> usize {
        self.count
    }

    /// (row, reason) of every rejected row.
    pub fn iter(&self) -> impl Iterator<Item = (usize, &Rejection)> {
        self.reasons
            .iter()
            .enumerate()
            .filter_map(|(row, reason)| reason.as_ref().map(|r| (row, r)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epoch_units_by_magnitude() {
        let unit = |v: i64| finer_epoch_unit(v).0;
        assert_eq!(unit(100_000_000_001), "milliseconds");
        assert_eq!(unit(100_000_000_000_000), "milliseconds");
        assert_eq!(unit(100_000_000_000_001), "microseconds");
        assert_eq!(unit(1_709_251_200_000_000), "microseconds");
        assert_eq!(unit(100_000_000_000_000_001), "nanoseconds");
        assert_eq!(unit(1_709_251_200_000_000_000), "nanoseconds");
    }
}
