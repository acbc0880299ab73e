-- DuckDB counterpart of sql/interactions.sql (same job, same filters, same columns in the same
-- order). run.py replaces ${source} (the export folder) and ${output} (the output folder) and sets
-- threads / memory_limit / temp_directory / preserve_insertion_order before running this file.
--
-- Click-stream events → Interactions: rows without a user or with an unreadable timestamp are
-- dropped, exact duplicates removed, events for SKUs missing from the catalog dropped.

-- DataFusion's TRY_CAST(text AS TIMESTAMP) applies a UTC offset, reads text without one as UTC and
-- keeps nanoseconds. DuckDB ignores the offset when casting to TIMESTAMP (docs: sql/data_types/
-- timestamp, "When strings with UTC offsets are passed to a WITHOUT TIME ZONE type, the offsets ...
-- are ignored"), so cast to TIMESTAMPTZ_NS (2.0+) with the session time zone set to UTC instead.
SET TimeZone = 'UTC';

-- Epoch seconds rounded down, like pengine (div_euclid); DuckDB's // truncates toward zero.
CREATE MACRO floor_seconds(ns) AS (ns - ((ns % 1000000000) + 1000000000) % 1000000000) // 1000000000;

-- read_json's compression='auto_detect' goes by the file extension only (docs: data/json/
-- loading_json, "detected automatically from the file extension"), so a Firehose gzip object
-- without `.gz` is read as plain text and fails ("Malformed JSON ... at byte 1"). One read_json call
-- takes one compression for all its files: sniff the gzip magic bytes (1f 8b) first and read the
-- two groups separately. (Either list being empty makes read_json fail: "needs at least one file".)
SET VARIABLE gzip_files = (
    SELECT list(filename ORDER BY filename)
    FROM read_blob('${source}/events/**')
    WHERE content[1:2] = '\x1f\x8b'::BLOB);
SET VARIABLE plain_files = (
    SELECT list(filename ORDER BY filename)
    FROM read_blob('${source}/events/**')
    WHERE content[1:2] <> '\x1f\x8b'::BLOB OR content IS NULL);

-- Personalize CSV: a line break inside a value becomes a space (\r\n counts as one), as pengine does.
CREATE MACRO personalize_text(s) AS
    replace(replace(replace(s, chr(13) || chr(10), ' '), chr(13), ' '), chr(10), ' ');

-- format='unstructured' reads both newline-delimited and back-to-back objects (read_ndjson /
-- format='newline_delimited' rejects the latter: "unexpected content after document").
-- Columns are declared: auto-detection types user_id (numbers in some records, strings in others)
-- as JSON, whose text keeps the quotes of the strings; as VARCHAR a number keeps its digits.
CREATE VIEW events AS
    SELECT * FROM read_json(getvariable('plain_files'), format = 'unstructured', compression = 'none',
        columns = {user_id: 'VARCHAR', item_id: 'VARCHAR', event_type: 'VARCHAR', ts: 'VARCHAR',
                   price: 'DOUBLE', device: 'VARCHAR',
                   context: 'STRUCT(page VARCHAR, campaign VARCHAR)'})
    UNION ALL
    SELECT * FROM read_json(getvariable('gzip_files'), format = 'unstructured', compression = 'gzip',
        columns = {user_id: 'VARCHAR', item_id: 'VARCHAR', event_type: 'VARCHAR', ts: 'VARCHAR',
                   price: 'DOUBLE', device: 'VARCHAR',
                   context: 'STRUCT(page VARCHAR, campaign VARCHAR)'});

-- Only the key is needed from the catalog; quoted fields hold commas, quotes and line breaks.
CREATE VIEW catalog AS
    SELECT sku FROM read_csv('${source}/items.csv', header = true, quote = '"', escape = '"',
        columns = {sku: 'VARCHAR', title: 'VARCHAR', category_path: 'VARCHAR', price: 'DOUBLE',
                   brand: 'VARCHAR', created_at: 'VARCHAR', description: 'VARCHAR'});

COPY (
    SELECT personalize_text(user_id)                          AS USER_ID,
           personalize_text(item_id)                          AS ITEM_ID,
           personalize_text(event_type)                       AS EVENT_TYPE,
           event_value                                        AS EVENT_VALUE,
           floor_seconds(epoch_ns(ts))                        AS TIMESTAMP,
           personalize_text(device)                           AS DEVICE,
           personalize_text(page)                             AS PAGE
    FROM (
        -- DISTINCT before formatting, on the parsed instant, exactly as the pengine query does
        SELECT DISTINCT
               e.user_id                         AS user_id,
               e.item_id                         AS item_id,
               e.event_type                      AS event_type,
               e.price                           AS event_value,
               TRY_CAST(e.ts AS TIMESTAMPTZ_NS)  AS ts,
               e.device                          AS device,
               e.context.page                    AS page
        FROM events e
        JOIN catalog c ON c.sku = e.item_id
        WHERE e.user_id IS NOT NULL
          AND TRY_CAST(e.ts AS TIMESTAMPTZ_NS) IS NOT NULL
    )
) TO '${output}/interactions/part-00000.csv' (
    FORMAT csv, HEADER true, DELIMITER ',', QUOTE '"', ESCAPE '\', NULLSTR '',
    -- DuckDB quotes (and then escapes " and \) only values holding the delimiter, a quote or a line
    -- break; a value holding a backslash alone would be written bare. Quote every text column.
    FORCE_QUOTE (USER_ID, ITEM_ID, EVENT_TYPE, DEVICE, PAGE));
