-- pengine: dataset = interactions
-- The reference interactions job (benches/jobs/interactions.sql) with the event fields declared,
-- as the DuckDB and Polars jobs declare them: no inference pass over every record, and the
-- fields not declared (session_id, context) are not read. user_id as text keeps a number's digits
-- exactly. Same SELECT, same rows as the headline job, which lets pengine infer the columns;
-- benches/e2e.sh runs both and shows them side by side. No default for ${source}.

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
