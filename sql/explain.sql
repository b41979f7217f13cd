--
-- explain: method, path, query string or body with $n placeholders, fan-out;
-- EXPLAIN ANALYZE adds requests, retries, pages, rows and bytes
--
SET timezone = 'UTC';
EXPLAIN (COSTS OFF)
SELECT * FROM usage.consumption_by_folder
 WHERE tenant_id IN ('t1', 't2') AND consumable_code = 'RU'
   AND start_date = '2024-01-01' AND end_date = '2024-02-01';
EXPLAIN (COSTS OFF)
SELECT * FROM usage.consumption_by_folder
 WHERE tenant_id IN ('t1', 't2') AND consumable_code IN ('RU', 'AIU', 'PLTU')
   AND start_date = '2024-01-01' AND end_date = '2024-02-01' AND NOT aggregate_by_ownership;
EXPLAIN (COSTS OFF)
SELECT * FROM usage.daily_consumption_by_service
 WHERE tenant_id = 't1' AND consumable_code = 'RU' AND folder_key = 'f"1'
   AND date BETWEEN '2024-01-01' AND '2024-01-31';
EXPLAIN (COSTS OFF)
SELECT * FROM usage.daily_consumption_by_service
 WHERE tenant_id = 't1' AND consumable_code = 'RU' AND date >= '2024-01-01';
EXPLAIN (COSTS OFF)
SELECT * FROM usage.daily_consumption_by_service
 WHERE tenant_id = 't1' AND consumable_code = 'RU' AND date >= current_date - 30;
EXPLAIN (COSTS OFF)
SELECT * FROM usage.daily_consumption_by_service
 WHERE tenant_id = 't1' AND consumable_code = 'RU' AND date > '2024-02-01' AND date < '2024-01-01';
EXPLAIN (COSTS OFF)
SELECT * FROM usage.cloud_flow_connection_usage WHERE flow_id = 'a&b=c d' AND tenant = 'contoso';
EXPLAIN (COSTS OFF)
SELECT * FROM usage.cloud_flow_connection_usage WHERE flow_id IN ('f1', 'f2', 'f3', 'f4', 'f5', 'f6', 'f1');
PREPARE p(text) AS SELECT * FROM usage.cloud_flow_connection_usage WHERE flow_id = $1;
SET plan_cache_mode = force_generic_plan;
EXPLAIN (COSTS OFF) EXECUTE p('x');
RESET plan_cache_mode;
DEALLOCATE p;
-- (without the Filter and InitPlan lines, which each version names differently)
SELECT * FROM explain_stable($$
SELECT flow_id FROM usage.cloud_flow_connection_usage WHERE flow_id = ANY (ARRAY(SELECT 'x'::text))$$,
  'COSTS OFF, VERBOSE') AS p WHERE p."QUERY PLAN" !~ '^ *(Filter:|InitPlan|->  Result|Output: ''x'')';
-- other formats
SELECT * FROM explain_stable($$
SELECT * FROM usage.consumption_by_folder
 WHERE tenant_id = 't1' AND consumable_code = 'RU'
   AND start_date = '2024-01-01' AND end_date = '2024-02-01'$$, 'COSTS OFF, FORMAT JSON');
-- EXPLAIN ANALYZE: what the scan did
CREATE FOREIGN TABLE flows4 (flow_id text, connection_id text)
  SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage', page_size '4');
SELECT * FROM explain_stable('SELECT * FROM flows4', 'ANALYZE, BUFFERS OFF, COSTS OFF, TIMING OFF, SUMMARY OFF');
SELECT * FROM explain_stable($$SELECT * FROM flows4 WHERE flow_id = 'flow-0001'$$,
  'ANALYZE, BUFFERS OFF, COSTS OFF, TIMING OFF, SUMMARY OFF, FORMAT YAML');
SELECT * FROM explain_stable($$
SELECT * FROM usage.consumption_by_folder
 WHERE tenant_id IN ('22222222-2222-2222-2222-222222222222', '33333333-3333-3333-3333-333333333333')
   AND consumable_code = 'RU' AND start_date = '2024-01-01' AND end_date = '2024-02-01'$$,
  'ANALYZE, BUFFERS OFF, COSTS OFF, TIMING OFF, SUMMARY OFF');
DROP FOREIGN TABLE flows4;
-- no secret in EXPLAIN output
SELECT * FROM explain_stable($$
SELECT * FROM usage.cloud_flow_connection_usage WHERE flow_id = 'flow-0001'$$,
  'VERBOSE, COSTS OFF, ANALYZE, BUFFERS OFF, TIMING OFF, SUMMARY OFF');
RESET timezone;
