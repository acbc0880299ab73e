-- DuckDB counterpart of benches/jobs/users.sql, a reference job of the benchmark (same columns,
-- same order). run.py replaces ${source} and ${output}.
-- Customer profiles (Parquet) → Users.

CREATE MACRO personalize_text(s) AS
    replace(replace(replace(s, chr(13) || chr(10), ' '), chr(13), ' '), chr(10), ' ');

COPY (
    SELECT CAST(customer_id AS VARCHAR)                  AS USER_ID,      -- integer id → its digits
           age                                           AS AGE,
           personalize_text(gender)                      AS GENDER,
           personalize_text(loyalty_tier)                AS LOYALTY_TIER,
           -- DATE → epoch seconds of its midnight UTC
           CAST(epoch(signup_date) AS BIGINT)            AS SIGNUP_DATE
    FROM read_parquet('${source}/users.parquet')
) TO '${output}/users/part-00000.csv' (
    FORMAT csv, HEADER true, DELIMITER ',', QUOTE '"', ESCAPE '\', NULLSTR '',
    FORCE_QUOTE (USER_ID, GENDER, LOYALTY_TIER));
