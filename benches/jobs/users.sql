-- pengine: dataset = users
-- Reference job of the end-to-end benchmark (benches/e2e.sh; benches/duckdb/users.sql is the same
-- job in DuckDB SQL). No default for ${source}: pass --var source=<export folder>.
--
-- Customer profiles (Parquet) → Users. USER_ID is the integer customer id as text, AGE numeric
-- metadata, GENDER and LOYALTY_TIER categorical, SIGNUP_DATE (a date) epoch seconds.

CREATE EXTERNAL TABLE customers STORED AS PARQUET LOCATION '${source}/users.parquet';

SELECT customer_id   AS user_id,
       age           AS age,
       gender        AS gender,
       loyalty_tier  AS loyalty_tier,
       signup_date   AS signup_date
FROM customers;
