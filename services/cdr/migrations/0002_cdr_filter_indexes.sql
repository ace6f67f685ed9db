-- Country and endpoint filters over long ranges: without these, a filter
-- that matches few records (a country rarely called, an agent's calls in a
-- busy account) reads every record of the range (2 s over 3 million).
-- Partial like the number indexes: most legs have no endpoint. Queries
-- repeat the "<> ''" so generic plans of prepared statements can use them.
CREATE INDEX cdrs_account_first_country ON cdrs (account_id, first_country, created_at) WHERE first_country <> '';
CREATE INDEX cdrs_account_second_country ON cdrs (account_id, second_country, created_at) WHERE second_country <> '';
CREATE INDEX cdrs_account_first_endpoint ON cdrs (account_id, first_endpoint, created_at) WHERE first_endpoint <> '';
CREATE INDEX cdrs_account_second_endpoint ON cdrs (account_id, second_endpoint, created_at) WHERE second_endpoint <> '';
