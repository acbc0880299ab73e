-- pengine: dataset = interactions
-- Reference job of the end-to-end benchmark, the headline (benches/e2e.sh; benches/duckdb/
-- interactions.sql and benches/polars/interactions.py are the same job for the peers). No default
-- for ${source}: pass --var source=<export folder>.
--
-- Click-stream events → Interactions, the mapping as a user writes it: the events' columns are not
-- listed, pengine infers them (user_id is a number in most records and a string in some, price
-- is in a few records only, context is an object). Rows without a user or with an unreadable
-- timestamp are dropped; USER_ID is the user id as text (numbers and numeric strings alike),
-- EVENT_VALUE the price, TIMESTAMP epoch seconds; exact duplicates are removed, compared as written
-- (the timestamp is truncated to the second inside the DISTINCT, so two otherwise equal events in
-- the same second make one row); events for SKUs missing from the catalog are dropped.
-- interactions_declared.sql is the same job with the event columns declared.

CREATE EXTERNAL TABLE events STORED AS JSON LOCATION '${source}/events/';

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
