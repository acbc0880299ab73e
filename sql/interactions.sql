-- pengine: dataset = interactions
-- Click-stream events → Interactions.
-- Events come from Kinesis Firehose: hourly folders, newline-delimited and back-to-back JSON,
-- some files gzip-compressed. Rows without a user or with an unreadable timestamp are dropped,
-- exact duplicates are removed (compared as written: timestamps in whole seconds), and events for
-- SKUs missing from the catalog are dropped.
-- Run on your own data with: --var source=s3://bucket/exports --output s3://bucket/personalize

CREATE EXTERNAL TABLE events STORED AS JSON LOCATION '${source:-testdata}/events/';

CREATE EXTERNAL TABLE catalog STORED AS CSV LOCATION '${source:-testdata}/items.csv'
  OPTIONS ('format.has_header' 'true', 'format.newlines_in_values' 'true');

SELECT DISTINCT
       e.user_id                          AS user_id,
       e.item_id                          AS item_id,
       e.event_type                       AS event_type,
       e.price                            AS event_value,
       date_trunc('second', TRY_CAST(e.ts AS TIMESTAMP)) AS timestamp,
       e.device                           AS device,
       e.context['page']                  AS page
FROM events e
JOIN catalog c ON c.sku = e.item_id
WHERE e.user_id IS NOT NULL
  AND TRY_CAST(e.ts AS TIMESTAMP) IS NOT NULL;
