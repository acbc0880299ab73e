-- DuckDB counterpart of benches/jobs/items.sql, a reference job of the benchmark (same columns,
-- same order). run.py replaces ${source} and ${output}.
-- Product catalog (CSV with quoted titles, line breaks in descriptions) → Items.
-- The category path `Kitchen>Knives>Chef` becomes `Kitchen|Knives|Chef`, its first level CATEGORY_L1.

-- Text timestamps without an offset are UTC, with one are converted (see interactions.sql).
SET TimeZone = 'UTC';

CREATE MACRO personalize_text(s) AS
    replace(replace(replace(s, chr(13) || chr(10), ' '), chr(13), ' '), chr(10), ' ');

-- pengine turns a text CREATION_TIMESTAMP into epoch seconds from digits or ISO-8601; a value that
-- is neither fails the run there, and makes the CAST fail here.
CREATE MACRO epoch_seconds(s) AS
    CASE WHEN regexp_full_match(s, '-?[0-9]+') THEN CAST(s AS BIGINT)
         ELSE CAST(epoch(date_trunc('second', CAST(s AS TIMESTAMPTZ))) AS BIGINT) END;

CREATE VIEW catalog AS
    SELECT * FROM read_csv('${source}/items.csv', header = true, quote = '"', escape = '"',
        columns = {sku: 'VARCHAR', title: 'VARCHAR', category_path: 'VARCHAR', price: 'DOUBLE',
                   brand: 'VARCHAR', created_at: 'VARCHAR', description: 'VARCHAR'});

COPY (
    SELECT personalize_text(sku)                                   AS ITEM_ID,
           personalize_text(replace(category_path, '>', '|'))      AS CATEGORIES,
           personalize_text(split_part(category_path, '>', 1))     AS CATEGORY_L1,
           personalize_text(brand)                                 AS BRAND,
           price                                                   AS PRICE,
           epoch_seconds(created_at)                               AS CREATION_TIMESTAMP,
           personalize_text(title)                                 AS TITLE,
           personalize_text(description)                           AS DESCRIPTION
    FROM catalog
) TO '${output}/items/part-00000.csv' (
    FORMAT csv, HEADER true, DELIMITER ',', QUOTE '"', ESCAPE '\', NULLSTR '',
    FORCE_QUOTE (ITEM_ID, CATEGORIES, CATEGORY_L1, BRAND, TITLE, DESCRIPTION));
