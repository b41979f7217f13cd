--
-- pushdown: each clause form sends exactly the expected request(s) and the
-- rows satisfy the query (every clause is also checked locally)
--
\set VERBOSITY default
SET timezone = 'UTC';
\set t2 '''22222222-2222-2222-2222-222222222222'''
\set t3 '''33333333-3333-3333-3333-333333333333'''
\set jan 'start_date = ''2024-01-01'' AND end_date = ''2024-01-02'''
\! python3 test/mockctl.py reset

-- col = v
SELECT count(*) FROM usage.consumption_by_folder
 WHERE tenant_id = :t2 AND consumable_code = 'RU' AND :jan;
-- IN (...) and = ANY(array): one request per value, each row echoing its value
SELECT tenant_id, count(*) FROM usage.consumption_by_folder
 WHERE tenant_id IN (:t2, :t3) AND consumable_code = 'RU' AND :jan GROUP BY 1 ORDER BY 1;
SELECT consumable_code, sum(consumed_by_self) FROM usage.consumption_by_folder
 WHERE tenant_id = :t3 AND consumable_code = ANY (ARRAY['RU', 'AIU', 'RU']) AND :jan
 GROUP BY 1 ORDER BY 1;
-- an OR of equalities on one column is a fan-out too
SELECT tenant_id, count(*) FROM usage.consumption_by_folder
 WHERE (tenant_id = :t2 OR tenant_id = :t3) AND consumable_code = 'RU' AND :jan GROUP BY 1 ORDER BY 1;
\! python3 test/mockctl.py requests --sorted
\! python3 test/mockctl.py reset
-- several fan-out columns multiply: 2 tenants x 3 codes = 6 requests
SELECT tenant_id, consumable_code, sum(consumed_by_self) FROM usage.consumption_by_folder
 WHERE tenant_id IN (:t2, :t3) AND consumable_code IN ('RU', 'AIU', 'PLTU') AND :jan
 GROUP BY 1, 2 ORDER BY 1, 2;
\! python3 test/mockctl.py requests --sorted
\! python3 test/mockctl.py reset
-- intersections: one value left, or none (then no request at all)
SELECT count(*) FROM usage.consumption_by_folder
 WHERE tenant_id IN (:t2, :t3) AND tenant_id = :t3 AND consumable_code = 'RU' AND :jan;
SELECT count(*) FROM usage.consumption_by_folder
 WHERE tenant_id = :t2 AND tenant_id = :t3 AND consumable_code = 'RU' AND :jan;
SELECT count(*) FROM usage.consumption_by_folder
 WHERE tenant_id = ANY ('{}'::text[]) AND consumable_code = 'RU' AND :jan;
\! python3 test/mockctl.py requests

-- date ranges on UTC day boundaries: >=, >, <=, <, BETWEEN, =
\! python3 test/mockctl.py reset
SELECT min(date), max(date), count(*) FROM usage.daily_consumption_by_service
 WHERE tenant_id = :t3 AND consumable_code = 'RU' AND date >= '2024-02-27' AND date <= '2024-03-01';
SELECT min(date), max(date), count(*) FROM usage.daily_consumption_by_service
 WHERE tenant_id = :t3 AND consumable_code = 'RU' AND date > '2024-02-27' AND date < '2024-03-01';
SELECT min(date), max(date), count(*) FROM usage.daily_consumption_by_service
 WHERE tenant_id = :t3 AND consumable_code = 'RU' AND date BETWEEN '2023-12-31' AND '2024-01-01';
SELECT min(date), max(date), count(*) FROM usage.daily_consumption_by_service
 WHERE tenant_id = :t3 AND consumable_code = 'RU' AND date = '2024-02-29';
-- several bounds: the narrowest wins
SELECT min(date), max(date), count(*) FROM usage.daily_consumption_by_service
 WHERE tenant_id = :t3 AND consumable_code = 'RU' AND date >= '2024-01-01'
   AND date >= '2024-01-05' AND date < '2024-01-10' AND date <= '2024-01-06';
-- a timestamptz bound on a date column: the days whose midnight (in the session's
-- time zone) satisfies it, rechecked locally
SELECT min(date), max(date), count(*) FROM usage.daily_consumption_by_service
 WHERE tenant_id = :t3 AND consumable_code = 'RU'
   AND date >= '2024-01-05 12:00:00+00'::timestamptz AND date < '2024-01-07'::timestamptz;
-- date IN (...) asks for the range from the least to the greatest
SELECT date, count(*) FROM usage.daily_consumption_by_service
 WHERE tenant_id = :t3 AND consumable_code = 'RU' AND date IN ('2024-01-03', '2024-01-01')
 GROUP BY 1 ORDER BY 1;
\! python3 test/mockctl.py requests
-- contradictory ranges send no request
\! python3 test/mockctl.py reset
SELECT count(*) FROM usage.daily_consumption_by_service
 WHERE tenant_id = :t3 AND consumable_code = 'RU' AND date >= '2024-02-01' AND date < '2024-01-01';
SELECT count(*) FROM usage.daily_consumption_by_service
 WHERE tenant_id = :t3 AND consumable_code = 'RU' AND date > '2024-02-01' AND date < '2024-02-02';
SELECT count(*) FROM usage.daily_consumption_by_service
 WHERE tenant_id = :t3 AND consumable_code = 'RU' AND date >= 'infinity';
\! python3 test/mockctl.py count
-- an open upper bound means now: endDate is the transaction's start time
SELECT count(*) > 0 AS has_rows, max(date) <= current_date AS not_in_future
  FROM usage.daily_consumption_by_service
 WHERE tenant_id = :t3 AND consumable_code = 'RU' AND date >= current_date - 2;
\! python3 test/mockctl.py requests | sed -E 's/"endDate":[0-9]+/"endDate":NOW/; s/"startDate":[0-9]+/"startDate":TODAY-2/'

-- aggregate_by_ownership: bare column, NOT, = true/false, IS TRUE, IS NOT FALSE
\! python3 test/mockctl.py reset
SELECT count(*) FROM usage.consumption_by_folder
 WHERE tenant_id = :t3 AND consumable_code = 'RU' AND :jan AND aggregate_by_ownership;
SELECT count(*) FROM usage.consumption_by_folder
 WHERE tenant_id = :t3 AND consumable_code = 'RU' AND :jan AND NOT aggregate_by_ownership;
SELECT count(*) FROM usage.consumption_by_folder
 WHERE tenant_id = :t3 AND consumable_code = 'RU' AND :jan AND aggregate_by_ownership = false;
SELECT count(*) FROM usage.consumption_by_folder
 WHERE tenant_id = :t3 AND consumable_code = 'RU' AND :jan AND aggregate_by_ownership IS TRUE;
SELECT count(*) FROM usage.consumption_by_folder
 WHERE tenant_id = :t3 AND consumable_code = 'RU' AND :jan AND aggregate_by_ownership IS NOT FALSE;
SELECT count(*) FROM usage.consumption_by_folder
 WHERE tenant_id = :t3 AND consumable_code = 'RU' AND :jan AND aggregate_by_ownership IS NULL;
\! python3 test/mockctl.py requests

-- values known only at execution: query parameters, custom and generic plans
\! python3 test/mockctl.py reset
-- (min(tenant_id), not GROUP BY tenant_id: from 17 on the generic plan's
-- GroupAggregate leaves out a Group Key on a column a parameter fixes; a plain
-- aggregate reads the same on every version)
PREPARE q(text, text) AS
  SELECT min(tenant_id) AS tenant_id, count(*) FROM usage.consumption_by_folder
   WHERE tenant_id = $1 AND consumable_code = $2 AND start_date = '2024-01-01' AND end_date = '2024-01-02';
EXECUTE q(:t2, 'RU');
SET plan_cache_mode = force_generic_plan;
EXECUTE q(:t3, 'AIU');
EXPLAIN (COSTS OFF) EXECUTE q(:t3, 'AIU');
RESET plan_cache_mode;
DEALLOCATE q;
PREPARE qa(text[]) AS
  SELECT count(*) FROM usage.consumption_by_folder
   WHERE tenant_id = ANY ($1) AND consumable_code = 'RU' AND start_date = '2024-01-01' AND end_date = '2024-01-02';
SET plan_cache_mode = force_generic_plan;
EXECUTE qa(ARRAY[:t2, :t3]);
RESET plan_cache_mode;
DEALLOCATE qa;
\! python3 test/mockctl.py requests --sorted
-- PL/pgSQL variables
\! python3 test/mockctl.py reset
DO $$
DECLARE
  t text := '33333333-3333-3333-3333-333333333333';
  d date := '2024-01-01';
  n bigint;
BEGIN
  FOR i IN 1..2 LOOP
    SELECT count(*) INTO n FROM usage.daily_consumption_by_service
     WHERE tenant_id = t AND consumable_code = 'RU' AND date >= d AND date < d + i;
    RAISE NOTICE 'days %: % rows', i, n;
  END LOOP;
END
$$;
\! python3 test/mockctl.py requests
-- an initplan: flow_id = ANY(ARRAY(SELECT ...))
CREATE TABLE my_flows (id text);
INSERT INTO my_flows VALUES ('flow-0002'), ('flow-0004');
\! python3 test/mockctl.py reset
SELECT flow_id, connection_id FROM usage.cloud_flow_connection_usage
 WHERE flow_id = ANY (ARRAY(SELECT id FROM my_flows)) ORDER BY 2;
\! python3 test/mockctl.py requests --sorted
DROP TABLE my_flows;

-- a date or timestamp compared with a timestamptz parameter column
\! python3 test/mockctl.py reset
SELECT DISTINCT start_date, end_date FROM usage.consumption_by_folder
 WHERE tenant_id = :t2 AND consumable_code = 'RU'
   AND start_date = '2024-01-01'::date AND end_date = '2024-01-02 00:00'::timestamp;
SET timezone = 'America/New_York';
SELECT DISTINCT start_date, end_date FROM usage.consumption_by_folder
 WHERE tenant_id = :t2 AND consumable_code = 'RU'
   AND start_date = '2024-01-01'::date AND end_date = '2024-01-02'::date;
SET timezone = 'UTC';
\! python3 test/mockctl.py requests
-- the API takes whole milliseconds: a finer value of an echo column is
-- refused, since the rows would show a time the request was not for
SELECT count(*) FROM usage.consumption_by_folder
 WHERE tenant_id = :t2 AND consumable_code = 'RU'
   AND start_date = '2024-01-01 00:00:00.0005+00' AND end_date = '2024-01-02';
SELECT count(*) FROM usage.consumption_by_folder
 WHERE tenant_id = :t2 AND consumable_code = 'RU'
   AND start_date = '2024-01-01' AND end_date = ANY (ARRAY['2024-01-02 00:00:00.001+00', '2024-01-02 00:00:00.0015+00']::timestamptz[]);
SELECT count(*) > 0 FROM usage.consumption_by_folder
 WHERE tenant_id = :t2 AND consumable_code = 'RU'
   AND start_date = date_trunc('month', now(), 'UTC') AND end_date = date_trunc('milliseconds', now());

-- not pushed down, so a required parameter is missing: a plan-time error
SELECT count(*) FROM usage.consumption_by_folder
 WHERE tenant_id LIKE '2222%' AND consumable_code = 'RU' AND :jan;
SELECT count(*) FROM usage.consumption_by_folder
 WHERE upper(tenant_id) = :t2 AND consumable_code = 'RU' AND :jan;
SELECT count(*) FROM usage.consumption_by_folder
 WHERE (tenant_id = :t2 OR consumable_code = 'AIU') AND consumable_code = 'RU' AND :jan;
SELECT count(*) FROM usage.daily_consumption_by_service
 WHERE tenant_id = :t3 AND consumable_code = 'RU' AND date <= '2024-01-01';
SELECT count(*) FROM usage.consumption_by_folder
 WHERE tenant_id = :t2 AND consumable_code = 'RU' AND start_date >= '2024-01-01' AND end_date = '2024-01-02';
-- EXPLAIN shows the error too
EXPLAIN SELECT * FROM usage.daily_consumption_by_service WHERE tenant_id = 'x';
-- equality under a nondeterministic collation is not pushed down
CREATE COLLATION ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
SELECT count(*) FROM usage.consumption_by_folder
 WHERE tenant_id = :t2 COLLATE ci AND consumable_code = 'RU' AND :jan;
DROP COLLATION ci;
-- a volatile expression is not pushed down
SELECT count(*) FROM usage.consumption_by_folder
 WHERE tenant_id = (CASE WHEN random() >= 0 THEN :t2 END) AND consumable_code = 'RU' AND :jan;
-- too many requests
SELECT count(*) FROM usage.consumption_by_folder
 WHERE tenant_id = ANY (ARRAY(SELECT lpad(g::text, 8, '0') || '-0000-0000-0000-000000000000' FROM generate_series(1, 10001) g))
   AND consumable_code = 'RU' AND :jan;
-- rows always satisfy the query: the echo makes WHERE hold
\! python3 test/mockctl.py reset
SELECT DISTINCT tenant_id, consumable_code, start_date, end_date, aggregate_by_ownership
  FROM usage.consumption_by_folder
 WHERE tenant_id IN (:t2, '99999999-9999-9999-9999-999999999999') AND consumable_code = 'PLTU' AND :jan ORDER BY 1;
RESET timezone;
