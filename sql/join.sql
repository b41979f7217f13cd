--
-- join: a join clause on a parameter column becomes a parameterized scan
-- (nested loop, one request per outer value)
--
SET timezone = 'UTC';
-- (the batched key join is tested in batchjoin: here, the nested loop)
SET usage_fdw.enable_batched_join = off;
CREATE TABLE local_flows (id text PRIMARY KEY, owner text);
INSERT INTO local_flows SELECT 'flow-' || lpad(g::text, 4, '0'), 'owner' || (g % 3)
  FROM generate_series(1, 10) g;
ANALYZE local_flows;
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py config '{"avepoint_rows": 100000}'
-- (EXPLAINs through explain_stable, setup.sql: the scan's Filter rechecks the
-- join clause, which PostgreSQL 17 on may print with its sides swapped)
SELECT * FROM explain_stable($$SELECT l.id, u.connection_id FROM local_flows l
  JOIN usage.cloud_flow_connection_usage u ON u.flow_id = l.id$$);
SELECT l.id, l.owner, u.connection_id, u.environment_id FROM local_flows l
  JOIN usage.cloud_flow_connection_usage u ON u.flow_id = l.id ORDER BY 3;
-- one request per outer row
\! python3 test/mockctl.py count
-- repeated keys: Memoize saves requests
CREATE TABLE flow_refs (flow_id text);
INSERT INTO flow_refs SELECT 'flow-000' || (g % 3 + 1) FROM generate_series(1, 30) g;
ANALYZE flow_refs;
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py config '{"avepoint_rows": 100000}'
SELECT * FROM explain_stable($$SELECT r.flow_id, u.connection_id FROM flow_refs r
  JOIN usage.cloud_flow_connection_usage u ON u.flow_id = r.flow_id$$);
SELECT count(*) FROM flow_refs r
  JOIN usage.cloud_flow_connection_usage u ON u.flow_id = r.flow_id;
\! python3 test/mockctl.py count
-- a required parameter from a join: only plans that supply it are possible
CREATE TABLE tenants (id text, name text);
INSERT INTO tenants VALUES ('22222222-2222-2222-2222-222222222222', 'Production'),
                           ('33333333-3333-3333-3333-333333333333', 'Staging');
ANALYZE tenants;
\! python3 test/mockctl.py reset
SELECT * FROM explain_stable($$SELECT t.name, sum(d.consumed_amount)
  FROM tenants t JOIN usage.daily_consumption_by_service d ON d.tenant_id = t.id
 WHERE d.consumable_code = 'RU' AND d.date >= '2024-01-01' AND d.date < '2024-01-08'
 GROUP BY 1 ORDER BY 1$$);
SELECT t.name, sum(d.consumed_amount)
  FROM tenants t JOIN usage.daily_consumption_by_service d ON d.tenant_id = t.id
 WHERE d.consumable_code = 'RU' AND d.date >= '2024-01-01' AND d.date < '2024-01-08'
 GROUP BY 1 ORDER BY 1;
\! python3 test/mockctl.py requests --sorted
-- even when the planner would rather hash
SET enable_nestloop = off;
SELECT t.name, count(*)
  FROM tenants t JOIN usage.daily_consumption_by_service d ON d.tenant_id = t.id
 WHERE d.consumable_code = 'RU' AND d.date >= '2024-01-01' AND d.date < '2024-01-08'
 GROUP BY 1 ORDER BY 1;
RESET enable_nestloop;
-- a join clause in the other direction and a LATERAL reference
SELECT t.name, x.n FROM tenants t,
  LATERAL (SELECT count(*) AS n FROM usage.consumption_by_folder c
            WHERE c.tenant_id = t.id AND c.consumable_code = 'RU'
              AND c.start_date = '2024-01-01' AND c.end_date = '2024-01-02') x
 ORDER BY 1;
-- no path can supply the parameter: the plan-time error
SELECT count(*) FROM tenants t
  LEFT JOIN usage.daily_consumption_by_service d ON d.tenant_id LIKE t.id
 WHERE d.consumable_code = 'RU' AND d.date >= '2024-01-01';
DROP TABLE local_flows, flow_refs, tenants;
\! python3 test/mockctl.py reset
RESET usage_fdw.enable_batched_join;
RESET timezone;
