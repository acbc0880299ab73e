-- pengine: dataset = items
-- pengine: textual = DESCRIPTION
-- pengine: not_categorical = TITLE
-- Reference job of the end-to-end benchmark (benches/e2e.sh; benches/duckdb/items.sql is the same
-- job in DuckDB SQL). No default for ${source}: pass --var source=<export folder>.
--
-- Product catalog (CSV with quoted titles, line breaks in descriptions) → Items.
-- The category path `Kitchen>Knives>Chef` becomes the multi-value categorical `Kitchen|Knives|Chef`,
-- and its first level a separate CATEGORY_L1. TITLE is unique per item: kept for filtering only.

CREATE EXTERNAL TABLE catalog STORED AS CSV LOCATION '${source}/items.csv'
  OPTIONS ('format.has_header' 'true', 'format.newlines_in_values' 'true');

SELECT sku                                    AS item_id,
       replace(category_path, '>', '|')       AS categories,
       split_part(category_path, '>', 1)      AS category_l1,
       brand                                  AS brand,
       price                                  AS price,
       created_at                             AS creation_timestamp,
       title                                  AS title,
       description                            AS description
FROM catalog;
