-- DuckDB counterpart of benches/jobs/interactions.sql, the benchmark's reference job: same filters,
-- same columns in the same order, duplicates removed on the same values (timestamp in whole
-- seconds). run.py replaces ${source} (the export folder) and ${output} (the output folder) and
-- sets threads / memory_limit / temp_directory / preserve_insertion_order before running this file.
--
-- Click-stream events → Interactions: rows without a user or with an unreadable timestamp are
-- dropped, exact duplicates removed (compared as written: epoch seconds), events for SKUs missing
-- from the catalog dropped.

-- DataFusion's TRY_CAST(text AS TIMESTAMP) applies a UTC offset, reads text without one as UTC and
-- keeps nanoseconds. DuckDB ignores the offset when casting to TIMESTAMP (docs: sql/data_types/
-- timestamp, "When strings with UTC offsets are passed to a WITHOUT TIME ZONE type, the offsets ...
-- are ignored"), so cast to TIMESTAMPTZ_NS (2.0+) with the session time zone set to UTC instead.
SET TimeZone = 'UTC';

-- Epoch seconds rounded down, like DataFusion's date_trunc('second', ...) and pengine's conversion
-- (div_euclid); DuckDB's // truncates toward zero.
CREATE MACRO floor_seconds(ns) AS (ns - ((ns % 1000000000) + 1000000000) % 1000000000) // 1000000000;

-- read_json's compression='auto_detect' goes by the file extension only (docs: data/json/
-- loading_json, "detected automatically from the file extension"), so a Firehose gzip object
-- without `.gz` is read as plain text and fails ("Malformed JSON ... at byte 1"). One read_json call
-- takes one compression for all its files: sniff the gzip magic bytes (1f 8b) first and read the
-- two groups separately (read_events below). read_blob reads whole files, so the folder is read
-- once here and both lists taken from the table.
CREATE TEMP TABLE event_files AS
    SELECT filename, content[1:2] = '\x1f\x8b'::BLOB AS gzip FROM read_blob('${source}/events/**');
SET VARIABLE gzip_files = (SELECT list(filename ORDER BY filename) FROM event_files WHERE gzip);
SET VARIABLE plain_files = (
    SELECT list(filename ORDER BY filename) FROM event_files WHERE gzip IS NOT TRUE);

-- Personalize CSV: a line break inside a value becomes a space (\r\n counts as one), as pengine does.
CREATE MACRO personalize_text(s) AS
    replace(replace(replace(s, chr(13) || chr(10), ' '), chr(13), ' '), chr(10), ' ');

-- format='auto' reads both newline-delimited and back-to-back objects (read_ndjson /
-- format='newline_delimited' rejects the latter: "unexpected content after document"), and reads a
-- large newline-delimited file faster than format='unstructured' (1.5-1.8 s against 2.1-2.2 s for
-- the whole job on the 1M one-file export; the same on the hourly files).
-- Columns are declared: auto-detection types user_id (numbers in some records, strings in others)
-- as JSON, whose text keeps the quotes of the strings; as VARCHAR a number keeps its digits.
-- Fields not declared (session_id, context) are not read.
SET VARIABLE event_columns = {user_id: 'VARCHAR', item_id: 'VARCHAR', event_type: 'VARCHAR',
                              ts: 'VARCHAR', price: 'DOUBLE', device: 'VARCHAR'};

-- read_json of the files listed in the variable `files`, all of compression `compression`. An empty
-- list would fail, so it then reads no rows instead: query() runs a statement given as text, here
-- chosen when the view is bound.
CREATE MACRO read_events(files, compression) AS TABLE
    SELECT * FROM query(CASE WHEN len(getvariable(files)) > 0
        THEN 'SELECT * FROM read_json(getvariable(''' || files || '''), format = ''auto'', '
             || 'compression = ''' || compression || ''', columns = getvariable(''event_columns''))'
        ELSE 'SELECT NULL::VARCHAR AS user_id, NULL::VARCHAR AS item_id, NULL::VARCHAR AS event_type, '
             || 'NULL::VARCHAR AS ts, NULL::DOUBLE AS price, NULL::VARCHAR AS device LIMIT 0' END);

CREATE VIEW events AS
    SELECT * FROM read_events('plain_files', 'none')
    UNION ALL
    SELECT * FROM read_events('gzip_files', 'gzip');

-- Only the key is needed from the catalog; quoted fields hold commas, quotes and line breaks.
CREATE VIEW catalog AS
    SELECT sku FROM read_csv('${source}/items.csv', header = true, quote = '"', escape = '"',
        columns = {sku: 'VARCHAR', title: 'VARCHAR', category_path: 'VARCHAR', price: 'DOUBLE',
                   brand: 'VARCHAR', created_at: 'VARCHAR', description: 'VARCHAR'});

COPY (
    SELECT personalize_text(user_id)     AS USER_ID,
           personalize_text(item_id)     AS ITEM_ID,
           personalize_text(event_type)  AS EVENT_TYPE,
           event_value                   AS EVENT_VALUE,
           ts_seconds                    AS TIMESTAMP,
           personalize_text(device)      AS DEVICE
    FROM (
        -- DISTINCT on the values as written: the instant floored to whole seconds, exactly as the
        -- pengine query's date_trunc('second', ...) inside its DISTINCT
        SELECT DISTINCT
               e.user_id                                                   AS user_id,
               e.item_id                                                   AS item_id,
               e.event_type                                                AS event_type,
               e.price                                                     AS event_value,
               floor_seconds(epoch_ns(TRY_CAST(e.ts AS TIMESTAMPTZ_NS)))   AS ts_seconds,
               e.device                                                    AS device
        FROM events e
        JOIN catalog c ON c.sku = e.item_id
        WHERE e.user_id IS NOT NULL
          AND TRY_CAST(e.ts AS TIMESTAMPTZ_NS) IS NOT NULL
    )
) TO '${output}/interactions/part-00000.csv' (
    FORMAT csv, HEADER true, DELIMITER ',', QUOTE '"', ESCAPE '\', NULLSTR '',
    -- DuckDB quotes (and then escapes " and \) only values holding the delimiter, a quote or a line
    -- break; a value holding a backslash alone would be written bare. Quote every text column.
    FORCE_QUOTE (USER_ID, ITEM_ID, EVENT_TYPE, DEVICE));
