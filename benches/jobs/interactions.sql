-- pengine: dataset = interactions
-- Reference job of the end-to-end benchmark (benches/e2e.sh; benches/duckdb/interactions.sql is
-- the same job in DuckDB SQL). No default for ${source}: pass --var source=<export folder>.
--
-- Click-stream events → Interactions. Rows without a user or with an unreadable timestamp are
-- dropped; USER_ID is the user id as text (numbers and numeric strings alike), EVENT_VALUE the
-- price, TIMESTAMP epoch seconds; exact duplicates are removed, compared as written (the timestamp
-- is truncated to the second inside the DISTINCT, so two otherwise equal events in the same second
-- make one row); events for SKUs missing from the catalog are dropped.

-- The event fields the job reads are declared, as the DuckDB job declares them (its read_json
-- cannot infer user_id, numbers in some records and strings in others): no inference pass over
-- every record, and the fields not declared (session_id, context) are not read. user_id as text
-- keeps a number's digits exactly. Without the column list pengine infers the same types from
-- every record (benches/README.md gives that run's time too).
CREATE EXTERNAL TABLE events (
  user_id    VARCHAR,
  item_id    VARCHAR,
  event_type VARCHAR,
  price      DOUBLE,
  ts         VARCHAR,
  device     VARCHAR
) STORED AS JSON LOCATION '${source}/events/';

CREATE EXTERNAL TABLE catalog STORED AS CSV LOCATION '${source}/items.csv'
  OPTIONS ('format.has_header' 'true', 'format.newlines_in_values' 'true');

SELECT DISTINCT
       e.user_id                                          AS user_id,
       e.item_id                                          AS item_id,
       e.event_type                                       AS event_type,
       e.price                                            AS event_value,
       date_trunc('second', TRY_CAST(e.ts AS TIMESTAMP))  AS timestamp,
       e.device                                           AS device
FROM events e
JOIN catalog c ON c.sku = e.item_id
WHERE e.user_id IS NOT NULL
  AND TRY_CAST(e.ts AS TIMESTAMP) IS NOT NULL;
