-- pengine: dataset = interactions
-- The CSV benchmark's job (benches/README.md, "CSV columns inferred"): an interactions export
-- unloaded as CSV by a warehouse (benches/csv_export.py writes one), the columns not listed as a
-- user writes it. No default for ${source}: pass --var source=<export folder>.

CREATE EXTERNAL TABLE events STORED AS CSV LOCATION '${source}/'
  OPTIONS ('format.has_header' 'true');

SELECT CAST(user_id AS VARCHAR) AS user_id,
       item_id                  AS item_id,
       event_type               AS event_type,
       event_value              AS event_value,
       ts                       AS timestamp,
       device                   AS device
FROM events
WHERE user_id IS NOT NULL;
