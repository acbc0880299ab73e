-- pengine: dataset = users
-- Customer profiles (Parquet) → Users. AGE is numeric metadata; the rest are categorical.

CREATE EXTERNAL TABLE customers STORED AS PARQUET LOCATION '${source:-testdata}/users.parquet';

SELECT customer_id   AS user_id,
       age           AS age,
       gender        AS gender,
       loyalty_tier  AS loyalty_tier,
       signup_date   AS signup_date
FROM customers;
