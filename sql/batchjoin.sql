--
-- batchjoin: a join that supplies parameters of a foreign table runs as a
-- batched key join: the outer rows are read in batches, the distinct keys of
-- a batch are fetched as one concurrent fan-out (one request per key), and
-- the rows are joined locally, applying every join clause.  Every result is
-- compared with the nested loop's (usage_fdw.enable_batched_join = off).
--
SET timezone = 'UTC';
-- run q batched and as a nested loop: was it batched, how many rows, the same?
CREATE FUNCTION batch_vs_nestloop(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  line text;
  used boolean := false;
  n_b bigint;
  n_n bigint;
  diff bigint;
BEGIN
  PERFORM set_config('usage_fdw.enable_batched_join', 'on', true);
  FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
    IF line LIKE '%UsageBatchedJoin%' THEN used := true; END IF;
  END LOOP;
  EXECUTE 'CREATE TEMP TABLE bvn_b AS ' || q;
  PERFORM set_config('usage_fdw.enable_batched_join', 'off', true);
  EXECUTE 'CREATE TEMP TABLE bvn_n AS ' || q;
  PERFORM set_config('usage_fdw.enable_batched_join', 'on', true);
  SELECT count(*) INTO n_b FROM bvn_b;
  SELECT count(*) INTO n_n FROM bvn_n;
  SELECT count(*) INTO diff FROM ((TABLE bvn_b EXCEPT ALL TABLE bvn_n)
                                  UNION ALL (TABLE bvn_n EXCEPT ALL TABLE bvn_b)) d;
  DROP TABLE bvn_b, bvn_n;
  RETURN format('%s, %s rows, %s',
                CASE WHEN used THEN 'batched' ELSE 'NOT batched' END, n_b,
                CASE WHEN diff = 0 AND n_b = n_n THEN 'same as the nested loop'
                     ELSE 'DIFFERENT from the nested loop (' || n_n || ' rows)' END);
END $$;

-- outer keys with duplicates and NULLs; flow-9999 is unknown to the API
-- (the mock's 10 rows: flow-0001 .. flow-0005, two connections each)
CREATE TABLE refs (n int, flow_id text, env text);
INSERT INTO refs VALUES (1, 'flow-0001', 'env-01'), (2, 'flow-0002', 'env-01'),
  (3, 'flow-0001', 'env-02'), (4, NULL, 'env-01'), (5, 'flow-0003', 'env-03'),
  (6, 'flow-0002', 'env-02'), (7, 'flow-9999', 'env-01'), (8, NULL, NULL),
  (9, 'flow-0001', 'env-01');
ANALYZE refs;

-- inner join: 4 distinct non-NULL keys, 4 requests
\! python3 test/mockctl.py reset
EXPLAIN (COSTS OFF)
SELECT r.n, u.connection_id FROM refs r
  JOIN usage.cloud_flow_connection_usage u ON u.flow_id = r.flow_id;
SELECT r.n, r.flow_id, u.connection_id, u.environment_id FROM refs r
  JOIN usage.cloud_flow_connection_usage u ON u.flow_id = r.flow_id ORDER BY 1, 3;
\! python3 test/mockctl.py requests --sorted
SELECT batch_vs_nestloop($$SELECT r.n, r.flow_id, u.connection_id, u.environment_id
  FROM refs r JOIN usage.cloud_flow_connection_usage u ON u.flow_id = r.flow_id$$);
-- EXPLAIN ANALYZE: batches, distinct keys, requests
SELECT * FROM explain_stable($$SELECT r.n, u.connection_id FROM refs r
  JOIN usage.cloud_flow_connection_usage u ON u.flow_id = r.flow_id$$,
  'ANALYZE, BUFFERS OFF, COSTS OFF, TIMING OFF, SUMMARY OFF');

-- left join: NULL keys and the unknown key are kept, NULL-extended
\! python3 test/mockctl.py reset
EXPLAIN (COSTS OFF)
SELECT r.n, u.connection_id FROM refs r
  LEFT JOIN usage.cloud_flow_connection_usage u ON u.flow_id = r.flow_id;
SELECT r.n, r.flow_id, u.connection_id FROM refs r
  LEFT JOIN usage.cloud_flow_connection_usage u ON u.flow_id = r.flow_id ORDER BY 1, 3;
\! python3 test/mockctl.py count
SELECT batch_vs_nestloop($$SELECT r.n, r.flow_id, u.connection_id
  FROM refs r LEFT JOIN usage.cloud_flow_connection_usage u ON u.flow_id = r.flow_id$$);

-- semi join (EXISTS, IN): each outer row at most once
\! python3 test/mockctl.py reset
EXPLAIN (COSTS OFF)
SELECT r.n FROM refs r
 WHERE EXISTS (SELECT 1 FROM usage.cloud_flow_connection_usage u WHERE u.flow_id = r.flow_id);
SELECT r.n, r.flow_id FROM refs r
 WHERE EXISTS (SELECT 1 FROM usage.cloud_flow_connection_usage u WHERE u.flow_id = r.flow_id)
 ORDER BY 1;
\! python3 test/mockctl.py count
SELECT batch_vs_nestloop($$SELECT r.n, r.flow_id FROM refs r
 WHERE EXISTS (SELECT 1 FROM usage.cloud_flow_connection_usage u WHERE u.flow_id = r.flow_id)$$);
SELECT batch_vs_nestloop($$SELECT r.n FROM refs r
 WHERE r.flow_id IN (SELECT u.flow_id FROM usage.cloud_flow_connection_usage u)$$);

-- anti join (NOT EXISTS): only unmatched rows, NULL keys included
\! python3 test/mockctl.py reset
EXPLAIN (COSTS OFF)
SELECT r.n FROM refs r
 WHERE NOT EXISTS (SELECT 1 FROM usage.cloud_flow_connection_usage u WHERE u.flow_id = r.flow_id);
SELECT r.n, r.flow_id FROM refs r
 WHERE NOT EXISTS (SELECT 1 FROM usage.cloud_flow_connection_usage u WHERE u.flow_id = r.flow_id)
 ORDER BY 1;
\! python3 test/mockctl.py count
SELECT batch_vs_nestloop($$SELECT r.n, r.flow_id FROM refs r
 WHERE NOT EXISTS (SELECT 1 FROM usage.cloud_flow_connection_usage u WHERE u.flow_id = r.flow_id)$$);

-- an extra join clause is applied locally, the key still decides the requests
\! python3 test/mockctl.py reset
EXPLAIN (COSTS OFF)
SELECT r.n, u.connection_id FROM refs r
  JOIN usage.cloud_flow_connection_usage u ON u.flow_id = r.flow_id AND u.environment_id = r.env;
SELECT r.n, r.flow_id, r.env, u.connection_id FROM refs r
  JOIN usage.cloud_flow_connection_usage u ON u.flow_id = r.flow_id AND u.environment_id = r.env
 ORDER BY 1, 4;
\! python3 test/mockctl.py count
SELECT batch_vs_nestloop($$SELECT r.n, u.connection_id FROM refs r
  LEFT JOIN usage.cloud_flow_connection_usage u
    ON u.flow_id = r.flow_id AND u.environment_id = r.env AND u.connection_id <> 'conn-00002'$$);
SELECT batch_vs_nestloop($$SELECT r.n FROM refs r
 WHERE NOT EXISTS (SELECT 1 FROM usage.cloud_flow_connection_usage u
                    WHERE u.flow_id = r.flow_id AND u.environment_id = r.env)$$);

-- a two-column key from a tenants table: one request per distinct pair
CREATE TABLE tenant_codes (id text, code text, label text);
INSERT INTO tenant_codes VALUES
  ('22222222-2222-2222-2222-222222222222', 'RU', 'prod robots'),
  ('22222222-2222-2222-2222-222222222222', 'AIU', 'prod AI'),
  ('33333333-3333-3333-3333-333333333333', 'RU', 'staging robots'),
  ('22222222-2222-2222-2222-222222222222', 'RU', 'prod robots again'),
  (NULL, 'RU', 'no tenant'),
  ('33333333-3333-3333-3333-333333333333', NULL, 'no code');
ANALYZE tenant_codes;
\! python3 test/mockctl.py reset
EXPLAIN (COSTS OFF)
SELECT t.label, c.folder_name, c.consumed_by_self FROM tenant_codes t
  JOIN usage.consumption_by_folder c ON c.tenant_id = t.id AND c.consumable_code = t.code
 WHERE c.start_date = '2024-01-01' AND c.end_date = '2024-01-02';
SELECT t.label, c.consumable_code, c.folder_name, c.consumed_by_self FROM tenant_codes t
  JOIN usage.consumption_by_folder c ON c.tenant_id = t.id AND c.consumable_code = t.code
 WHERE c.start_date = '2024-01-01' AND c.end_date = '2024-01-02'
 ORDER BY 1, 3;
\! python3 test/mockctl.py requests --sorted
SELECT batch_vs_nestloop($$SELECT t.label, c.consumable_code, c.folder_name, c.consumed_by_self
  FROM tenant_codes t LEFT JOIN usage.consumption_by_folder c
    ON c.tenant_id = t.id AND c.consumable_code = t.code
   AND c.start_date = '2024-01-01' AND c.end_date = '2024-01-02'$$);

-- a generic plan: the scan's own parameters and the batch's keys together
\! python3 test/mockctl.py reset
SET plan_cache_mode = force_generic_plan;
PREPARE daily(text, date) AS
SELECT t.label, d.date, d.service, d.consumed_amount FROM tenant_codes t
  JOIN usage.daily_consumption_by_service d ON d.tenant_id = t.id
 WHERE d.consumable_code = $1 AND d.date >= $2 AND d.date < $2 + 2 AND t.code = 'RU';
EXPLAIN (COSTS OFF) EXECUTE daily('RU', '2024-01-01');
EXECUTE daily('RU', '2024-01-01');
EXECUTE daily('AIU', '2024-01-02');
\! python3 test/mockctl.py requests --sorted
DEALLOCATE daily;
RESET plan_cache_mode;

-- rescans: the join in a correlated subquery, run once per owner
CREATE TABLE owners (env text);
INSERT INTO owners VALUES ('env-01'), ('env-02'), ('env-03');
\! python3 test/mockctl.py reset
-- (explain_stable writes 19's "SubPlan expr_1" as 15 to 18 do: "SubPlan 1")
SELECT * FROM explain_stable($$SELECT o.env, (SELECT count(*) FROM refs r
                 JOIN usage.cloud_flow_connection_usage u ON u.flow_id = r.flow_id
                WHERE r.env = o.env) FROM owners o$$);
SELECT o.env, (SELECT count(*) FROM refs r
                 JOIN usage.cloud_flow_connection_usage u ON u.flow_id = r.flow_id
                WHERE r.env = o.env) FROM owners o ORDER BY 1;
-- env-01: flow-0001, flow-0002, flow-9999; env-02: flow-0001, flow-0002; env-03: flow-0003
\! python3 test/mockctl.py count
SELECT batch_vs_nestloop($$SELECT o.env, (SELECT count(*) FROM refs r
                 JOIN usage.cloud_flow_connection_usage u ON u.flow_id = r.flow_id
                WHERE r.env = o.env) FROM owners o$$);

-- batches: batch_size 2 over 7 non-NULL keys in 9 rows
CREATE FOREIGN TABLE flows_b2 (flow_id text, connection_id text)
  SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage', batch_size '2');
-- (so small a batch costs as much as Memoize would: compare with a plain nested loop)
SET enable_memoize = off;
\! python3 test/mockctl.py reset
-- (18 prints the inner scan's rows per loop as 2.40, 15 as 2: cut the fraction)
SELECT regexp_replace("QUERY PLAN", '(actual rows=[0-9]+)\.[0-9]+', '\1') AS "QUERY PLAN"
  FROM explain_stable($$SELECT r.n, u.connection_id FROM refs r
    JOIN flows_b2 u ON u.flow_id = r.flow_id$$,
    'ANALYZE, BUFFERS OFF, COSTS OFF, TIMING OFF, SUMMARY OFF');
-- batches {1,2} {3,4} {5,6} {7,8} {9}: keys 2 + 1 + 2 + 1 + 1 = 7 requests
\! python3 test/mockctl.py count
SELECT batch_vs_nestloop($$SELECT r.n, r.flow_id, u.connection_id
  FROM refs r LEFT JOIN flows_b2 u ON u.flow_id = r.flow_id$$);
RESET enable_memoize;
ALTER FOREIGN TABLE flows_b2 OPTIONS (SET batch_size '0');
ALTER FOREIGN TABLE flows_b2 OPTIONS (SET batch_size '10001');

-- the plans the planner keeps: a one-row outer side stays a nested loop ...
-- (through explain_stable, setup.sql: 17 on may print the Filter's join clause
-- with its sides swapped)
SELECT * FROM explain_stable($$SELECT u.connection_id FROM refs r
  JOIN usage.cloud_flow_connection_usage u ON u.flow_id = r.flow_id WHERE r.n = 1$$);
-- ... many distinct keys fetch everything once and hash (AvePoint without flowId)
CREATE TABLE many_flows (id text);
INSERT INTO many_flows SELECT 'flow-' || lpad(g::text, 5, '0') FROM generate_series(1, 20000) g;
ANALYZE many_flows;
EXPLAIN (COSTS OFF)
SELECT count(*) FROM many_flows m
  JOIN usage.cloud_flow_connection_usage u ON u.flow_id = m.id;
-- ... and the setting turns batching off
SET usage_fdw.enable_batched_join = off;
SELECT * FROM explain_stable($$SELECT r.n, u.connection_id FROM refs r
  JOIN usage.cloud_flow_connection_usage u ON u.flow_id = r.flow_id$$);
RESET usage_fdw.enable_batched_join;

-- a request of the batch that finally fails fails the statement (HV000), cleanly
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault '{"match": {"query": {"flowId": "flow-0002"}}, "times": -1, "action": {"status": 500}}'
SELECT count(*) FROM refs r
  LEFT JOIN usage.cloud_flow_connection_usage u ON u.flow_id = r.flow_id;
\! python3 test/mockctl.py reset
SELECT count(*) FROM refs r
  LEFT JOIN usage.cloud_flow_connection_usage u ON u.flow_id = r.flow_id;

DROP TABLE refs, tenant_codes, owners, many_flows;
DROP FOREIGN TABLE flows_b2;
DROP FUNCTION batch_vs_nestloop(text);
\! python3 test/mockctl.py reset
RESET timezone;

-- the scan's own fan-out is known only at execution: a batch takes the keys
-- that fit under the per-scan request limit, the rest go to another rescan
-- (100 keys x 201 tenants = 20100 requests: three rescans, no error)
CREATE TABLE k100 AS SELECT 'nf-' || g AS id FROM generate_series(1, 95) g
  UNION ALL (SELECT DISTINCT flow_id FROM usage.cloud_flow_connection_usage
              WHERE tenant = 'contoso' ORDER BY 1 LIMIT 5);
CREATE TABLE tn201 AS SELECT 't' || g AS name FROM generate_series(1, 200) g UNION ALL SELECT 'contoso';
ANALYZE k100, tn201;
CREATE FUNCTION plan_has_batched_join(query text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE line text;
BEGIN
  FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || query LOOP
    IF line LIKE '%UsageBatchedJoin%' THEN RETURN true; END IF;
  END LOOP;
  RETURN false;
END $$;
-- ARRAY(SELECT ...): the planner takes its size from the subquery's
-- estimate (201 tenants, not a guess of 10): the scan's row estimate is
-- that of 201 requests, and the batched join is not chosen
SELECT plan_has_batched_join($$SELECT count(*) FROM k100 k JOIN usage.cloud_flow_connection_usage u
  ON u.flow_id = k.id WHERE u.tenant = ANY (ARRAY(SELECT name FROM tn201))$$);
CREATE FUNCTION scan_rows(query text) RETURNS numeric LANGUAGE plpgsql AS $$
DECLARE plan json;
BEGIN
  EXECUTE 'EXPLAIN (FORMAT JSON) ' || query INTO plan;
  RETURN (plan #>> '{0,Plan,Plan Rows}')::numeric;
END $$;
SELECT round(scan_rows('SELECT * FROM usage.cloud_flow_connection_usage
                         WHERE tenant = ANY (ARRAY(SELECT name FROM tn201))')
           / scan_rows('SELECT * FROM usage.cloud_flow_connection_usage
                         WHERE tenant = ''contoso''')) AS requests_estimated;
-- a parameter of a generic plan is still a guess of 10: batched, and the
-- keys that do not fit under the request limit go to further rescans
SELECT count(*) FROM usage.cloud_flow_connection_usage
 WHERE tenant = 'contoso' AND flow_id IN (SELECT id FROM k100);
SELECT array_agg(name)::text AS tns FROM tn201 \gset
PREPARE k_tn(text[]) AS
SELECT count(*) FROM k100 k JOIN usage.cloud_flow_connection_usage u ON u.flow_id = k.id
 WHERE u.tenant = ANY ($1);
SET plan_cache_mode = force_generic_plan;
SELECT plan_has_batched_join(format('EXECUTE k_tn(%L)', :'tns'));
EXECUTE k_tn(:'tns');
RESET plan_cache_mode;
SET usage_fdw.enable_batched_join = off;
EXECUTE k_tn(:'tns');
RESET usage_fdw.enable_batched_join;
DEALLOCATE k_tn;
DROP TABLE k100, tn201;
DROP FUNCTION plan_has_batched_join(text), scan_rows(text);

-- a one-time filter on the foreign table (a contradiction) gates its scan:
-- the plain plans serve the join (found by the differential stage)
CREATE TABLE k_gate (name text);
INSERT INTO k_gate VALUES ('contoso'), ('fabrikam'), (NULL);
ANALYZE k_gate;
SELECT count(*) FROM k_gate k WHERE NOT EXISTS
  (SELECT 1 FROM usage.cloud_flow_connection_usage u
    WHERE u.tenant = k.name AND u.flow_id = 'flow-0004' AND u.flow_id = 'flow-0001');
SELECT count(*) FROM k_gate k WHERE EXISTS
  (SELECT 1 FROM usage.cloud_flow_connection_usage u
    WHERE u.tenant = k.name AND u.flow_id = 'flow-0004' AND u.flow_id = 'flow-0001');
SELECT count(*) FROM k_gate k JOIN usage.cloud_flow_connection_usage u
  ON u.tenant = k.name AND u.flow_id = 'flow-0004' AND u.flow_id = 'flow-0001';
SELECT count(*) FROM k_gate k LEFT JOIN usage.cloud_flow_connection_usage u
  ON u.tenant = k.name AND u.flow_id = 'flow-0004' AND u.flow_id = 'flow-0001';
DROP TABLE k_gate;
