--
-- trust: every answer is exactly right or a clean refusal, under the query
-- shapes users write (partitions, UNION ALL views, inheritance, odd WHERE
-- clauses, joins of three relations, generic plans, cursors, PL/pgSQL)
--
SET timezone = 'UTC';
\set t2 '''22222222-2222-2222-2222-222222222222'''
\set t3 '''33333333-3333-3333-3333-333333333333'''
\set jan 'start_date = ''2024-01-01 00:00+00'' AND end_date = ''2024-01-02 00:00+00'''

-- 1. bindings: one foreign table per tenant, as partitions
CREATE TABLE p_flows (flow_id text, environment_id text, connection_id text, tenant text)
  PARTITION BY LIST (tenant);
CREATE FOREIGN TABLE p_flows_contoso PARTITION OF p_flows FOR VALUES IN ('contoso')
  SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage', tenant 'contoso');
CREATE FOREIGN TABLE p_flows_fabrikam PARTITION OF p_flows FOR VALUES IN ('fabrikam')
  SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage', tenant 'fabrikam');
\! python3 test/mockctl.py reset
SELECT count(*) FROM p_flows;
SELECT count(*) FROM p_flows WHERE tenant IN ('contoso', 'fabrikam');
SELECT tableoid::regclass, tenant, count(*) FROM p_flows
 WHERE tenant IN ('contoso', 'fabrikam') GROUP BY 1, 2 ORDER BY 1, 2;
-- every request carries its partition's tenant, and only that
\! python3 test/mockctl.py requests --sorted
SET enable_partition_pruning = off;
\! python3 test/mockctl.py reset
SELECT tenant, count(*) FROM p_flows WHERE tenant = 'fabrikam' GROUP BY 1;
-- the contoso partition sends nothing: its binding excludes fabrikam
\! python3 test/mockctl.py requests
RESET enable_partition_pruning;
-- a clause that is not pushed down is still exact on a bound table
SELECT tenant, count(*) FROM p_flows WHERE tenant LIKE 'fab%' GROUP BY 1;
SELECT tenant, count(*) FROM p_flows WHERE upper(tenant) = 'CONTOSO' GROUP BY 1;
EXPLAIN (COSTS OFF) SELECT * FROM p_flows WHERE tenant IN ('contoso', 'fabrikam');

-- the same tables in a UNION ALL view
CREATE VIEW v_flows AS
  SELECT * FROM p_flows_contoso UNION ALL SELECT * FROM p_flows_fabrikam;
SELECT count(*) FROM v_flows WHERE tenant = 'fabrikam';
SELECT tenant, count(*) FROM v_flows WHERE tenant IN ('contoso', 'fabrikam', 'other')
 GROUP BY 1 ORDER BY 1;

-- and as inheritance children
CREATE TABLE i_flows (flow_id text, environment_id text, connection_id text, tenant text);
CREATE FOREIGN TABLE i_flows_contoso () INHERITS (i_flows)
  SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage', tenant 'contoso');
CREATE FOREIGN TABLE i_flows_fabrikam () INHERITS (i_flows)
  SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage', tenant 'fabrikam');
SELECT tableoid::regclass, tenant, count(*) FROM i_flows
 WHERE tenant IN ('contoso', 'fabrikam') GROUP BY 1, 2 ORDER BY 1, 2;

-- prepared statements under a generic plan, and a cursor
SET plan_cache_mode = force_generic_plan;
PREPARE by_tenant(text[]) AS
  SELECT tenant, count(*) FROM p_flows WHERE tenant = ANY($1) GROUP BY 1 ORDER BY 1;
EXECUTE by_tenant('{contoso,fabrikam}');
EXECUTE by_tenant('{fabrikam,nobody}');
DEALLOCATE by_tenant;
RESET plan_cache_mode;
BEGIN;
DECLARE c CURSOR FOR SELECT tenant, flow_id FROM v_flows WHERE tenant = 'fabrikam' ORDER BY 2;
FETCH 2 FROM c;
FETCH ALL FROM c;
COMMIT;

-- 2. a clause on an echo column that the requests would not carry: refused
SELECT count(*) FROM usage.cloud_flow_connection_usage WHERE tenant = 'contoso';
SELECT count(*) FROM usage.cloud_flow_connection_usage WHERE tenant LIKE 'contoso';
SELECT count(*) FROM usage.cloud_flow_connection_usage WHERE upper(tenant) = 'CONTOSO';
SELECT count(*) FROM usage.cloud_flow_connection_usage
 WHERE tenant = 'contoso' OR flow_id = 'flow-0002';
SELECT count(*) FROM usage.cloud_flow_connection_usage
 WHERE (tenant, flow_id) > ('contoso', 'flow-0001');
SELECT count(*) FROM usage.cloud_flow_connection_usage WHERE tenant IS NULL;
SELECT count(*) FROM usage.cloud_flow_connection_usage u
 WHERE u IS NOT NULL AND flow_id = 'flow-0001';
SELECT count(*) FROM usage.daily_consumption_by_service
 WHERE tenant_id = :t3 AND consumable_code = 'RU' AND date >= '2024-01-01'
   AND folder_key LIKE 'bbbb%';
SELECT count(*) FROM usage.consumption_by_folder
 WHERE tenant_id = :t3 AND consumable_code = 'RU' AND :jan
   AND aggregate_by_ownership::text = 'true';
-- a name is compared as text: pushed down, exact
SELECT count(*) FROM usage.cloud_flow_connection_usage WHERE tenant = 'contoso'::name;
-- a clause that narrows a parameter that is sent is fine
SELECT count(*) FROM usage.cloud_flow_connection_usage
 WHERE tenant IN ('contoso', 'fabrikam') AND tenant LIKE 'c%';
-- in PL/pgSQL too (without the CONTEXT lines, which PostgreSQL 18 words differently)
\set SHOW_CONTEXT never
CREATE FUNCTION count_like(p text) RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
  RETURN (SELECT count(*) FROM usage.cloud_flow_connection_usage WHERE tenant LIKE p);
END $$;
SELECT count_like('contoso');
\set SHOW_CONTEXT errors
DROP FUNCTION count_like(text);

-- 3. a boolean parameter on a column that is not boolean: through its text
CREATE FOREIGN TABLE folders_txt (tenant_id text, start_date timestamptz, end_date timestamptz,
  consumable_code text, aggregate_by_ownership text, folder_name text)
  SERVER uipath OPTIONS (endpoint 'consumption_by_folder');
CREATE FOREIGN TABLE folders_int (tenant_id text, start_date timestamptz, end_date timestamptz,
  consumable_code text, aggregate_by_ownership int, folder_name text)
  SERVER uipath OPTIONS (endpoint 'consumption_by_folder');
\! python3 test/mockctl.py reset
SELECT DISTINCT aggregate_by_ownership FROM folders_txt
 WHERE tenant_id = :t3 AND consumable_code = 'RU' AND :jan AND aggregate_by_ownership = 'false';
SELECT DISTINCT aggregate_by_ownership FROM folders_txt
 WHERE tenant_id = :t3 AND consumable_code = 'RU' AND :jan AND aggregate_by_ownership = 'on';
SELECT DISTINCT aggregate_by_ownership FROM folders_int
 WHERE tenant_id = :t3 AND consumable_code = 'RU' AND :jan AND aggregate_by_ownership = 0;
SELECT DISTINCT aggregate_by_ownership FROM folders_int
 WHERE tenant_id = :t3 AND consumable_code = 'RU' AND :jan AND aggregate_by_ownership = 1;
\! python3 test/mockctl.py requests
SELECT count(*) FROM folders_int
 WHERE tenant_id = :t3 AND consumable_code = 'RU' AND :jan AND aggregate_by_ownership = 2;
EXPLAIN (COSTS OFF) SELECT * FROM folders_txt
 WHERE tenant_id = :t3 AND consumable_code = 'RU' AND :jan AND aggregate_by_ownership = 'false';
DROP FOREIGN TABLE folders_txt, folders_int;

-- 4. a required parameter from a join, with a third relation: a plan, not XX000
CREATE TABLE t_tenants (id text, code text);
INSERT INTO t_tenants VALUES ('22222222-2222-2222-2222-222222222222', 'RU'),
                             ('33333333-3333-3333-3333-333333333333', 'AIU'),
                             ('33333333-3333-3333-3333-333333333333', 'AIU'),
                             (NULL, 'RU');
CREATE TABLE t_owner (flow text, owner text);
INSERT INTO t_owner VALUES ('f1', 'ann'), ('f2', 'bob');
ANALYZE t_tenants, t_owner;
\! python3 test/mockctl.py reset
SELECT count(*) FROM usage.consumption_by_folder c, t_tenants t, t_owner f
 WHERE c.tenant_id = t.id AND c.consumable_code = 'RU' AND :jan;
\! python3 test/mockctl.py count
-- the echo column joined to another table: only plans that send it
SELECT t.name, count(*) FROM usage.cloud_flow_connection_usage u
  JOIN (VALUES ('contoso'), ('fabrikam'), ('nobody')) t(name) ON u.tenant = t.name
 GROUP BY 1 ORDER BY 1;
-- a semi-join on the echo column: the tenants are sent, the rows are exact
CREATE TABLE t_names (name text);
INSERT INTO t_names VALUES ('contoso'), ('fabrikam'), ('fabrikam'), (NULL);
ANALYZE t_names;
\! python3 test/mockctl.py reset
SELECT count(*) FROM usage.cloud_flow_connection_usage u WHERE u.tenant IN (SELECT name FROM t_names);
SELECT count(*) FROM usage.cloud_flow_connection_usage u
 WHERE EXISTS (SELECT 1 FROM t_names n WHERE n.name = u.tenant);
\! python3 test/mockctl.py requests --sorted
DROP TABLE t_names;
-- no join order can send it: the documented error, with its HINT
SELECT count(*) FROM usage.consumption_by_folder c FULL JOIN t_tenants t ON c.tenant_id = t.id
 WHERE c.consumable_code = 'RU' AND c.start_date = '2024-01-01 00:00+00'
   AND c.end_date = '2024-01-02 00:00+00';
SELECT count(*) FROM usage.cloud_flow_connection_usage u
  FULL JOIN (VALUES ('contoso')) t(name) ON u.tenant = t.name;
-- enable_nestloop = off does not leave the planner with the disabled scan
SET enable_nestloop = off;
SELECT count(*) FROM usage.consumption_by_folder c JOIN t_tenants t ON c.tenant_id = t.id
 WHERE c.consumable_code = 'RU' AND :jan;
RESET enable_nestloop;

-- 5. pairs that cannot hold (start after end) are not sent
\! python3 test/mockctl.py reset
SELECT start_date, end_date, count(*) FROM usage.consumption_by_folder
 WHERE tenant_id = :t3 AND consumable_code = 'RU'
   AND start_date IN ('2024-01-01 00:00+00', '2024-03-01 00:00+00')
   AND end_date IN ('2024-02-01 00:00+00', '2024-04-01 00:00+00')
 GROUP BY 1, 2 ORDER BY 1, 2;
\! python3 test/mockctl.py requests --sorted
\! python3 test/mockctl.py reset
SELECT count(*) FROM usage.consumption_by_folder
 WHERE tenant_id = :t3 AND consumable_code = 'RU'
   AND start_date = '2024-03-01 00:00+00' AND end_date = '2024-02-01 00:00+00';
\! python3 test/mockctl.py count

-- 6. EXPLAIN of values the executor refuses or converts
EXPLAIN (COSTS OFF) SELECT * FROM usage.consumption_by_folder
 WHERE tenant_id = '22222222-2222-2222-2222-222222222222' AND consumable_code = 'RU' AND start_date = '-infinity' AND end_date = '2024-01-01';
SELECT * FROM usage.consumption_by_folder
 WHERE tenant_id = '22222222-2222-2222-2222-222222222222' AND consumable_code = 'RU' AND start_date = '-infinity' AND end_date = '2024-01-01';
EXPLAIN (COSTS OFF) SELECT * FROM usage.consumption_by_folder
 WHERE tenant_id = '22222222-2222-2222-2222-222222222222' AND consumable_code = 'RU' AND :jan AND aggregate_by_ownership IN (true, true);
EXPLAIN (COSTS OFF) SELECT * FROM usage.consumption_by_folder
 WHERE tenant_id = '22222222-2222-2222-2222-222222222222' AND consumable_code = 'RU' AND end_date = '2024-01-02'
   AND start_date IN ('2024-01-01 00:00+00', '2024-01-01 00:00+00');

-- 7. a date column declared timestamptz: the day of the bound in the
-- session's time zone, as PostgreSQL's cast gives it
CREATE FOREIGN TABLE daily_tz (tenant_id text, consumable_code text, date timestamptz,
  service text, consumed_amount numeric)
  SERVER uipath OPTIONS (endpoint 'daily_consumption_by_service');
\! python3 test/mockctl.py reset
SELECT min(date), max(date), count(*) FROM daily_tz
 WHERE tenant_id = :t3 AND consumable_code = 'RU'
   AND date >= '2024-01-01 00:00+00' AND date < '2024-01-03 00:00+00';
SET timezone = 'Asia/Tokyo';
SELECT min(date), max(date), count(*) FROM daily_tz
 WHERE tenant_id = :t3 AND consumable_code = 'RU'
   AND date >= '2024-01-01 00:00+09' AND date <= '2024-01-02 00:00+09';
SET timezone = 'America/New_York';
SELECT min(date), max(date), count(*) FROM daily_tz
 WHERE tenant_id = :t3 AND consumable_code = 'RU'
   AND date > '2024-01-01 00:00-05' AND date < '2024-01-03 12:00-05';
SET timezone = 'UTC';
\! python3 test/mockctl.py requests
DROP FOREIGN TABLE daily_tz;

DROP VIEW v_flows;
DROP TABLE p_flows, i_flows CASCADE;
DROP TABLE t_tenants, t_owner;

-- async_capable: a boolean option of servers and tables
ALTER SERVER avepoint OPTIONS (ADD async_capable 'maybe');
ALTER SERVER avepoint OPTIONS (ADD async_capable 'off');
ALTER SERVER avepoint OPTIONS (DROP async_capable);
