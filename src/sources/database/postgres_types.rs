//! PostgreSQL column types the provider crate reads wrongly or not at all (money as a count of
//! cents, inet failing mid-scan, geometry as lists): such a column is refused when a query uses
//! it, with the cast that reads it, and the table's other columns stay readable.

/// The SQL that reads `column` of PostgreSQL type `source_type` as pengine can take it, when
/// it cannot take the column as it is; with what goes wrong otherwise.
pub(super) fn cast_needed(column: &str, source_type: &str) -> Option<(String, &'static str)> {
    let quoted = format!("\"{}\"", column.replace('"', "\"\""));
    let base = source_type.split('(').next().unwrap_or(source_type).trim();
    match base {
        "money" => Some((
            format!("{quoted}::numeric::float8"),
            "it would arrive as a count of cents",
        )),
        "interval" => Some((
            format!("extract(epoch from {quoted})::float8"),
            "Personalize has no duration type",
        )),
        "inet"
        | "cidr"
        | "macaddr"
        | "macaddr8"
        | "xml"
        | "tsvector"
        | "tsquery"
        | "bit"
        | "bit varying"
        | "point"
        | "line"
        | "lseg"
        | "box"
        | "path"
        | "polygon"
        | "circle"
        | "time without time zone"
        | "time with time zone"
        | "pg_lsn" => Some((
            format!("{quoted}::text"),
            "the reader has no exact value for it",
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_read_wrongly_get_the_cast_that_reads_them() {
        assert_eq!(
            cast_needed("amount", "money").map(|c| c.0),
            Some("\"amount\"::numeric::float8".into())
        );
        assert_eq!(
            cast_needed("Addr", "inet").map(|c| c.0),
            Some("\"Addr\"::text".into())
        );
        assert_eq!(
            cast_needed("b", "bit(3)").map(|c| c.0),
            Some("\"b\"::text".into())
        );
        for fine in [
            "bigint",
            "numeric(10,2)",
            "text",
            "jsonb",
            "timestamp with time zone",
        ] {
            assert_eq!(cast_needed("c", fine), None, "{fine}");
        }
    }
}
