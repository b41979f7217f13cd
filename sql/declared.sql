--
-- declared: foreign tables that declare their own endpoint (path instead of
-- endpoint).  A declaration of the built-in cloud-flow endpoint behaves as
-- the built-in table does; the declarations' errors name the option.
--
\getenv mock_url MOCK_URL
CREATE SCHEMA decl;
SET search_path = decl, public;

-- the built-in cloud_flow_connection_usage, declared
CREATE FOREIGN TABLE flows_d (
  flow_id        text OPTIONS (param 'flowId', json_key 'flowId'),
  environment_id text,
  connection_id  text,
  tenant         text OPTIONS (param 'tenant')
) SERVER avepoint
  OPTIONS (path '/smp/powerplatform/connectionusage/cloudflows',
           rows '/connectionUsageCloudFlows', page_size '4');

-- all rows, paged by nextLink (10 rows, 3 pages of 4)
\! python3 test/mockctl.py reset
SELECT * FROM flows_d ORDER BY connection_id;
\! python3 test/mockctl.py requests
-- the same rows as the built-in table
SELECT count(*) FROM (SELECT flow_id, environment_id, connection_id FROM flows_d
                      EXCEPT
                      SELECT flow_id, environment_id, connection_id
                        FROM usage.cloud_flow_connection_usage) d;

-- = and IN become requests; the echo column shows what was sent
\! python3 test/mockctl.py reset
SELECT flow_id, connection_id, tenant FROM flows_d
 WHERE flow_id IN ('flow-0001', 'flow-0003') AND tenant = 'contoso' ORDER BY 2;
\! python3 test/mockctl.py requests --sorted
SELECT explain_stable($$SELECT * FROM flows_d
 WHERE flow_id IN ('flow-0001', 'flow-0003') AND tenant = 'contoso'$$);

-- a test of the echo column that no request carries is refused
SELECT count(*) FROM flows_d WHERE tenant IS NULL;
SELECT count(*) FROM flows_d WHERE tenant <> 'contoso';

-- prepared statements under a generic plan, a cursor, PL/pgSQL
SET plan_cache_mode = force_generic_plan;
PREPARE by_flow(text) AS SELECT count(*) FROM flows_d WHERE flow_id = $1;
\! python3 test/mockctl.py reset
EXECUTE by_flow('flow-0002');
EXECUTE by_flow('flow-0004');
\! python3 test/mockctl.py requests
DEALLOCATE by_flow;
RESET plan_cache_mode;
BEGIN;
DECLARE c CURSOR FOR SELECT connection_id FROM flows_d WHERE tenant = 'fabrikam' ORDER BY 1;
FETCH 2 FROM c;
FETCH ALL FROM c;
COMMIT;
DO $$
DECLARE
  n int;
BEGIN
  FOR f IN 1..2 LOOP
    SELECT count(*) INTO n FROM decl.flows_d WHERE flow_id = format('flow-%s', lpad(f::text, 4, '0'));
    RAISE NOTICE 'flow % has % rows', f, n;
  END LOOP;
END
$$;

-- a join supplies the parameter: the batched fan-out, as for built-in tables
CREATE TABLE my_flows (id text PRIMARY KEY, owner text);
INSERT INTO my_flows VALUES ('flow-0002', 'ana'), ('flow-0004', 'ben'),
  ('flow-0005', 'ana'), ('flow-9999', 'cy');
ANALYZE my_flows;
\! python3 test/mockctl.py reset
SELECT f.owner, count(*) FROM my_flows f JOIN flows_d d ON d.flow_id = f.id
 GROUP BY 1 ORDER BY 1;
\! python3 test/mockctl.py requests --sorted
SELECT explain_stable($$SELECT f.owner, count(*) FROM my_flows f JOIN flows_d d ON d.flow_id = f.id GROUP BY 1$$);
-- a LEFT JOIN the other way, and EXISTS
SELECT f.id, count(d.connection_id) FROM my_flows f LEFT JOIN flows_d d ON d.flow_id = f.id
 GROUP BY 1 ORDER BY 1;
SELECT id FROM my_flows f WHERE EXISTS (SELECT 1 FROM flows_d d WHERE d.flow_id = f.id) ORDER BY 1;

-- declared tables bound by tenant, as partitions and in a UNION ALL view
CREATE FOREIGN TABLE flows_contoso (
  flow_id text OPTIONS (param 'flowId', json_key 'flowId'),
  connection_id text,
  tenant text OPTIONS (param 'tenant')
) SERVER avepoint
  OPTIONS (path '/smp/powerplatform/connectionusage/cloudflows',
           rows '/connectionUsageCloudFlows', tenant 'contoso');
CREATE FOREIGN TABLE flows_fabrikam (
  flow_id text OPTIONS (param 'flowId', json_key 'flowId'),
  connection_id text,
  tenant text OPTIONS (param 'tenant')
) SERVER avepoint
  OPTIONS (path '/smp/powerplatform/connectionusage/cloudflows',
           rows '/connectionUsageCloudFlows', tenant 'fabrikam');
CREATE TABLE flows_by_tenant (flow_id text, connection_id text, tenant text)
  PARTITION BY LIST (tenant);
ALTER TABLE flows_by_tenant ATTACH PARTITION flows_contoso FOR VALUES IN ('contoso');
ALTER TABLE flows_by_tenant ATTACH PARTITION flows_fabrikam FOR VALUES IN ('fabrikam');
SELECT tenant, count(*) FROM flows_by_tenant GROUP BY 1 ORDER BY 1;
SELECT count(*) FROM flows_by_tenant WHERE tenant = 'fabrikam';
CREATE VIEW all_flows AS
  SELECT * FROM flows_contoso UNION ALL SELECT * FROM flows_fabrikam;
\! python3 test/mockctl.py reset
SELECT tenant, count(*) FROM all_flows WHERE flow_id IN ('flow-0001', 'flow-0002')
 GROUP BY 1 ORDER BY 1;
\! python3 test/mockctl.py requests --sorted
-- a binding fixes the parameter: another value asks nothing
\! python3 test/mockctl.py reset
SELECT count(*) FROM flows_contoso WHERE tenant = 'fabrikam';
\! python3 test/mockctl.py count
-- fences and citext: checked locally over a wider request, or refused
SELECT count(*) FROM (SELECT * FROM flows_d OFFSET 0) s WHERE s.flow_id = 'flow-0001';
WITH m AS MATERIALIZED (SELECT * FROM flows_d) SELECT count(*) FROM m WHERE tenant = 'contoso';

-- the declarations' errors, each naming its option
CREATE FOREIGN TABLE bad (a text) SERVER avepoint
  OPTIONS (path '/x', rows '/items', endpoint 'cloud_flow_connection_usage');
CREATE FOREIGN TABLE bad (a text) SERVER avepoint OPTIONS (path '/x');
CREATE FOREIGN TABLE bad (a text) SERVER avepoint
  OPTIONS (path 'https://evil.example/x', rows '/items');
CREATE FOREIGN TABLE bad (a text) SERVER avepoint
  OPTIONS (path '//evil.example/x', rows '/items');
CREATE FOREIGN TABLE bad (a text) SERVER avepoint
  OPTIONS (path 'smp/x', rows '/items');
CREATE FOREIGN TABLE bad (a text) SERVER avepoint
  OPTIONS (path '/smp/x?top=3', rows '/items');
CREATE FOREIGN TABLE bad (a text) SERVER avepoint
  OPTIONS (path '/smp/{flowId/runs', rows '/items');
CREATE FOREIGN TABLE bad (a text) SERVER avepoint
  OPTIONS (path '/smp/{flowId}/runs', rows '/items');
CREATE FOREIGN TABLE bad (a text) SERVER avepoint
  OPTIONS (path '/smp/x', rows 'items');
CREATE FOREIGN TABLE bad (a text) SERVER avepoint
  OPTIONS (path '/smp/x', rows '/items~2');
CREATE FOREIGN TABLE bad (a text) SERVER avepoint
  OPTIONS (path '/smp/x', rows '/items', next_link '');
CREATE FOREIGN TABLE bad (a text) SERVER avepoint
  OPTIONS (path '/smp/x', rows '/items', method 'PUT');
CREATE FOREIGN TABLE bad (a text) SERVER avepoint
  OPTIONS (path '/smp/x', rows '/items', paging 'cursor');
CREATE FOREIGN TABLE bad (a text) SERVER avepoint
  OPTIONS (path '/smp/x', rows '/items', colour 'blue');
CREATE FOREIGN TABLE bad (a text) SERVER avepoint
  OPTIONS (path '/smp/x', rows '/items', tenant 'contoso');
CREATE FOREIGN TABLE bad (a text OPTIONS (param_from 'fromDate')) SERVER avepoint
  OPTIONS (path '/smp/x', rows '/items');
CREATE FOREIGN TABLE bad (a timestamptz OPTIONS (param_format 'rfc2822')) SERVER avepoint
  OPTIONS (path '/smp/x', rows '/items');
CREATE FOREIGN TABLE bad (a text OPTIONS (required 'true')) SERVER avepoint
  OPTIONS (path '/smp/x', rows '/items');
CREATE FOREIGN TABLE bad (a timestamptz OPTIONS (param 'at', param_from 'fromDate')) SERVER avepoint
  OPTIONS (path '/smp/x', rows '/items');
CREATE FOREIGN TABLE bad (a text OPTIONS (param 'id'), b text OPTIONS (param 'id')) SERVER avepoint
  OPTIONS (path '/smp/x', rows '/items');
CREATE FOREIGN TABLE bad (a text OPTIONS (param 'a b')) SERVER avepoint
  OPTIONS (path '/smp/x', rows '/items');
CREATE FOREIGN TABLE bad (a text OPTIONS (colour 'blue')) SERVER avepoint
  OPTIONS (path '/smp/x', rows '/items');
-- {organizationId} comes from the server (uipath); elsewhere it needs a column
CREATE FOREIGN TABLE bad (a text) SERVER avepoint
  OPTIONS (path '/x/{organizationId}', rows '/items');
-- a declaration's options on a table of a built-in endpoint
CREATE FOREIGN TABLE bad (a text) SERVER avepoint
  OPTIONS (endpoint 'cloud_flow_connection_usage', rows '/items');
CREATE FOREIGN TABLE bad (flow_id text OPTIONS (param 'flowId')) SERVER avepoint
  OPTIONS (endpoint 'cloud_flow_connection_usage');
-- ALTER is checked as CREATE is
ALTER FOREIGN TABLE flows_d ALTER COLUMN connection_id OPTIONS (ADD param_from 'fromDate');
ALTER FOREIGN TABLE flows_d OPTIONS (SET path '/smp/{x}');
\d flows_d

-- AvePoint cloud-flow runs: a path parameter, a range on a timestamptz
-- column sent as fromDate/toDate (ISO 8601, widened to whole seconds), and
-- relative nextLinks resolved against the request URL
CREATE FOREIGN TABLE flow_runs (
  flow_id    text OPTIONS (param 'flowId'),
  run_id     text OPTIONS (json_key 'id'),
  run_start  timestamptz OPTIONS (json_key 'startTime', param_from 'fromDate', param_to 'toDate'),
  run_end    timestamptz OPTIONS (json_key 'endTime'),
  duration   numeric,
  state      text,
  tenant     text OPTIONS (param 'tenant')
) SERVER avepoint
  OPTIONS (path '/smp/powerplatform/powerautomate/cloudflows/{flowId}/runs',
           rows '/runs', page_size '10');
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py config '{"nextlink_form": "relative"}'
SELECT count(*), count(*) FILTER (WHERE state = 'Failed') AS failed, sum(duration)
  FROM flow_runs
 WHERE flow_id = 'flow-0001' AND run_start >= '2024-01-01' AND run_start < '2024-02-01';
\! python3 test/mockctl.py requests
\! python3 test/mockctl.py config '{"nextlink_form": "query"}'
SELECT min(run_start), max(run_end) FROM flow_runs
 WHERE flow_id = 'flow-0003' AND run_start BETWEEN '2024-01-11 03:00:00+00' AND '2024-01-13 03:00:00.5+00';
\! python3 test/mockctl.py requests --path-substr flow-0003
\! python3 test/mockctl.py config '{"nextlink_form": "absolute"}'
SELECT explain_stable($$SELECT * FROM flow_runs
 WHERE flow_id IN ('flow-0001', 'flow-0002') AND run_start >= '2024-03-01' AND run_start <= '2024-03-02 12:30:00.25+00'$$);
-- the path parameter is required; without the range nothing else is
SELECT count(*) FROM flow_runs WHERE run_start >= '2024-01-01';
SELECT explain_stable($$SELECT * FROM flow_runs WHERE flow_id = 'flow-0001'$$);
-- a contradictory range sends nothing
\! python3 test/mockctl.py reset
SELECT count(*) FROM flow_runs WHERE flow_id = 'flow-0001'
   AND run_start > '2024-02-01' AND run_start < '2024-01-01';
\! python3 test/mockctl.py count

-- the same answers as local copies of the rows (range bounds of every
-- kind, time zones, timestamp and date columns)
CREATE TABLE local_runs AS
  SELECT * FROM flow_runs WHERE flow_id IN ('flow-0001', 'flow-0002')
     AND run_start >= '2023-12-25' AND run_start < '2024-02-10';
CREATE FOREIGN TABLE flow_runs_ts (
  flow_id    text OPTIONS (param 'flowId'),
  run_start  timestamp OPTIONS (json_key 'startTime', param_from 'fromDate', param_to 'toDate')
) SERVER avepoint
  OPTIONS (path '/smp/powerplatform/powerautomate/cloudflows/{flowId}/runs', rows '/runs');
CREATE FOREIGN TABLE flow_runs_day (
  flow_id    text OPTIONS (param 'flowId'),
  run_day    date OPTIONS (json_key 'startTime', param_from 'fromDate', param_to 'toDate', param_format 'date')
) SERVER avepoint
  OPTIONS (path '/smp/powerplatform/powerautomate/cloudflows/{flowId}/runs', rows '/runs');
CREATE FUNCTION same_runs(cond text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  f bigint; l bigint; fts bigint; lts bigint; fd bigint; ld bigint;
BEGIN
  EXECUTE format('SELECT count(*) FROM decl.flow_runs WHERE flow_id IN (''flow-0001'', ''flow-0002'') AND %s', cond) INTO f;
  EXECUTE format('SELECT count(*) FROM decl.local_runs WHERE %s', cond) INTO l;
  -- a timestamp column holds the API's UTC wall-clock time
  EXECUTE format('SELECT count(*) FROM decl.flow_runs_ts WHERE flow_id IN (''flow-0001'', ''flow-0002'') AND %s',
                 cond) INTO fts;
  EXECUTE format('SELECT count(*) FROM (SELECT run_start AT TIME ZONE ''UTC'' AS run_start FROM decl.local_runs) l WHERE %s',
                 cond) INTO lts;
  EXECUTE format('SELECT count(*) FROM decl.flow_runs_day WHERE flow_id IN (''flow-0001'', ''flow-0002'') AND %s',
                 replace(cond, 'run_start', 'run_day')) INTO fd;
  EXECUTE format('SELECT count(*) FROM (SELECT (run_start AT TIME ZONE ''UTC'')::date AS run_day FROM decl.local_runs) l WHERE %s',
                 replace(cond, 'run_start', 'run_day')) INTO ld;
  RETURN format('%s/%s %s/%s %s/%s', f, l, fts, lts, fd, ld);
END
$$;
SELECT c, same_runs(c) FROM (VALUES
  ($$run_start >= '2024-01-05' AND run_start < '2024-01-09'$$),
  ($$run_start > '2024-01-05 01:00:00+00' AND run_start <= '2024-01-09 02:00:00+00'$$),
  ($$run_start BETWEEN '2024-01-31' AND '2024-02-01'$$),
  ($$run_start = '2024-01-07 02:00:00+00'$$),
  ($$run_start IN ('2024-01-07 01:00:00+00', '2024-01-20 02:00:00+00')$$),
  ($$run_start >= '2024-01-05'::date AND run_start < '2024-01-06 01:00:00.000001+00'$$),
  ($$run_start >= '2024-01-28 23:59:59.999+00' AND run_start < '2024-02-03'$$)) v(c);
SET timezone = 'Asia/Tokyo';
SELECT c, same_runs(c) FROM (VALUES
  ($$run_start >= '2024-01-05' AND run_start < '2024-01-09'$$),
  ($$run_start >= '2024-01-05 10:00:00' AND run_start <= '2024-01-05 10:00:00'$$),
  ($$run_start >= '2024-01-05 09:00:00+09'::timestamptz AND run_start < '2024-01-06'$$)) v(c);
SET timezone = 'America/New_York';
SELECT c, same_runs(c) FROM (VALUES
  ($$run_start >= '2024-01-05' AND run_start < '2024-01-09'$$),
  ($$run_start > '2024-01-04 20:00:00' AND run_start < '2024-01-05 21:00:00'$$)) v(c);
RESET timezone;

-- joined with a local list of flows, for a window of days: one concurrent
-- fan-out of the list's keys
\! python3 test/mockctl.py reset
SELECT f.owner, count(*) AS runs, count(*) FILTER (WHERE r.state = 'Failed') AS failed
  FROM my_flows f JOIN flow_runs r ON r.flow_id = f.id
 WHERE r.run_start >= '2024-01-01' AND r.run_start < '2024-01-31'
 GROUP BY 1 ORDER BY 1;
\! python3 test/mockctl.py requests --sorted

-- Power Apps launches: nested objects and arrays, read with json_key and
-- jsonb columns; a per-week report
CREATE FOREIGN TABLE app_launches (
  app_id      text OPTIONS (param 'appId'),
  launched_at timestamptz OPTIONS (json_key 'launchTime', param_from 'fromDate', param_to 'toDate'),
  "user"      jsonb,
  device      jsonb,
  tags        jsonb,
  launch      jsonb OPTIONS (json_key '*')
) SERVER avepoint
  OPTIONS (path '/smp/powerplatform/powerapps/{appId}/launches', rows '/launches');
SELECT date_trunc('week', launched_at AT TIME ZONE 'UTC')::date AS week,
       count(*) AS launches, count(DISTINCT "user"->>'id') AS users
  FROM app_launches
 WHERE app_id = 'app-0002' AND launched_at >= '2024-01-01' AND launched_at < '2024-01-22'
 GROUP BY 1 ORDER BY 1;
SELECT launched_at, "user"->>'displayName' AS who, device->>'platform' AS platform,
       device->'browser' AS browser, tags, launch ? 'launchTime' AS whole
  FROM app_launches
 WHERE app_id = 'app-0002' AND launched_at >= '2024-01-01' AND launched_at < '2024-01-03'
 ORDER BY 1;

-- connections: a list endpoint with the provider's default paging
CREATE FOREIGN TABLE connections (
  id text, display_name text, connector text, environment jsonb, owners jsonb,
  status text, created_time timestamptz, is_shared boolean,
  tenant text OPTIONS (param 'tenant')
) SERVER avepoint
  OPTIONS (path '/smp/powerplatform/connections', rows '/connections', page_size '3');
SELECT tenant, count(*), count(*) FILTER (WHERE is_shared) AS shared,
       sum(jsonb_array_length(owners)) AS owners
  FROM connections WHERE tenant IN ('contoso', 'fabrikam') GROUP BY 1 ORDER BY 1;
SELECT id, environment->>'displayName' AS environment, owners->0->>'displayName' AS first_owner
  FROM connections ORDER BY id LIMIT 3;

-- Power BI active users, the range sent as plain dates
CREATE FOREIGN TABLE powerbi_active_users (
  day          date OPTIONS (json_key 'date', param_from 'fromDate', param_to 'toDate', param_format 'date'),
  user_principal_name text,
  activity_count int,
  workspaces   jsonb
) SERVER avepoint
  OPTIONS (path '/smp/powerplatform/powerbi/powerbiactiveusers', rows '/activeUsers');
\! python3 test/mockctl.py reset
SELECT count(*) AS user_days, count(DISTINCT user_principal_name) AS users,
       sum(activity_count) AS activity
  FROM powerbi_active_users WHERE day BETWEEN '2024-01-01' AND '2024-01-31';
\! python3 test/mockctl.py requests

-- parameter columns are the columns that say so: an echo column whose name is
-- another column's response key takes nothing from it
CREATE FOREIGN TABLE runs_by_id (
  id        text OPTIONS (param 'flowId'),
  run       text OPTIONS (json_key 'id'),
  run_start timestamptz OPTIONS (json_key 'startTime', param_from 'fromDate', param_to 'toDate')
) SERVER avepoint
  OPTIONS (path '/smp/powerplatform/powerautomate/cloudflows/{flowId}/runs', rows '/runs');
SELECT id, run, run_start FROM runs_by_id
 WHERE id = 'flow-0002' AND run_start >= '2024-01-02 00:00+00' AND run_start < '2024-01-04 00:00+00';

-- a POST declaration: the built-in consumption_by_folder, declared; values go
-- to a JSON body typed by their columns, {organizationId} comes from the
-- server, and tenantId takes the built-in parameter's GUID check and binding
CREATE FOREIGN TABLE by_folder_d (
  tenant_id        text OPTIONS (param 'tenantId'),
  start_date       timestamptz OPTIONS (param 'startDate', param_format 'epoch_ms', required 'true'),
  end_date         timestamptz OPTIONS (param 'endDate', param_format 'epoch_ms', required 'true'),
  consumable_code  text OPTIONS (param 'consumableCode', required 'true'),
  by_owner         boolean OPTIONS (param 'aggregateByOwnership'),
  folder_name      text,
  consumed_by_self numeric
) SERVER uipath
  OPTIONS (path '/lease_/api/usage/{organizationId}/tenants/consumption-by-folder',
           method 'POST', rows '/items');
\! python3 test/mockctl.py reset
SELECT d.folder_name, d.consumed_by_self, d.consumed_by_self = b.consumed_by_self AS same
  FROM by_folder_d d
  JOIN usage.consumption_by_folder b USING (tenant_id, start_date, end_date, consumable_code, folder_name)
 WHERE d.tenant_id = '22222222-2222-2222-2222-222222222222' AND d.consumable_code = 'RU'
   AND d.start_date = '2024-01-01 00:00+00' AND d.end_date = '2024-02-01 00:00+00'
   AND d.by_owner AND NOT b.aggregate_by_ownership
 ORDER BY 1;
\! python3 test/mockctl.py requests
SELECT explain_stable($$SELECT * FROM by_folder_d
 WHERE tenant_id IN ('22222222-2222-2222-2222-222222222222', '33333333-3333-3333-3333-333333333333')
   AND consumable_code = 'RU' AND start_date = '2024-01-01 00:00+00' AND end_date = '2024-02-01 00:00+00'$$);
SELECT count(*) FROM by_folder_d
 WHERE tenant_id = 'not-a-guid' AND consumable_code = 'RU'
   AND start_date = '2024-01-01 00:00+00' AND end_date = '2024-02-01 00:00+00';
SELECT count(*) FROM by_folder_d WHERE tenant_id = '22222222-2222-2222-2222-222222222222';
ALTER FOREIGN TABLE by_folder_d OPTIONS (ADD tenant_id '33333333-3333-3333-3333-333333333333');
SELECT folder_name, tenant_id FROM by_folder_d
 WHERE consumable_code = 'RU' AND start_date = '2024-01-01 00:00+00' AND end_date = '2024-02-01 00:00+00'
 ORDER BY 1;

-- an echo column's point in time is sent only if its format carries it
-- exactly: in the date format, midnight UTC; in milliseconds, whole ones
CREATE FOREIGN TABLE pbi_since (
  since  timestamptz OPTIONS (param 'fromDate', param_format 'date'),
  until  timestamptz OPTIONS (param 'toDate'),
  day    date OPTIONS (json_key 'date'),
  tenant text OPTIONS (param 'tenant')
) SERVER avepoint OPTIONS (path '/smp/powerplatform/powerbi/powerbiactiveusers', rows '/activeUsers');
\! python3 test/mockctl.py reset
SET timezone = 'Europe/Paris';
SELECT since, min(day), max(day) FROM pbi_since
 WHERE tenant = 'contoso' AND since = '2024-01-30 00:00+00' AND until = '2024-02-01 00:00:00.001+00' GROUP BY 1;
SELECT count(*) FROM pbi_since WHERE tenant = 'contoso' AND since = '2024-01-30';
SELECT count(*) FROM pbi_since WHERE tenant = 'contoso' AND since IN ('2024-01-30 00:00+00', '2024-01-30 12:00+00');
SELECT count(*) FROM pbi_since
 WHERE tenant = 'contoso' AND since = '2024-01-30 00:00+00' AND until = '2024-02-01 00:00:00.0001+00';
SET timezone = 'UTC';
SELECT since, min(day) FROM pbi_since
 WHERE tenant = 'contoso' AND since = '2024-01-30'::date AND until = '2024-02-01 00:00+00' GROUP BY 1;
EXPLAIN (COSTS OFF) SELECT * FROM pbi_since WHERE tenant = 'contoso' AND since = '2024-01-30 12:00';
\! python3 test/mockctl.py requests
-- a response column with a point parameter in the date format: a value
-- that is midnight in the session's time zone, on another date than in UTC,
-- could mean the response's date of the session's day or an instant of the
-- UTC day (west of UTC, the two days are the same)
CREATE FOREIGN TABLE pbi_day (
  day    timestamptz OPTIONS (json_key 'date', param 'fromDate', param_format 'date'),
  until  timestamptz OPTIONS (param 'toDate'),
  tenant text OPTIONS (param 'tenant')
) SERVER avepoint OPTIONS (path '/smp/powerplatform/powerbi/powerbiactiveusers', rows '/activeUsers');
\! python3 test/mockctl.py reset
SET timezone = 'Europe/Paris';
SELECT count(*) FROM pbi_day WHERE tenant = 'contoso' AND day = '2024-01-30' AND until = '2024-02-01 00:00+00';
SELECT count(*) FROM pbi_day WHERE tenant = 'contoso' AND day = '2024-01-30 00:00+00' AND until = '2024-02-01 00:00+00';
SELECT count(*) FROM pbi_day WHERE tenant = 'contoso' AND day = '2024-01-30 12:00+00' AND until = '2024-02-01 00:00+00';
SET timezone = 'America/New_York';
SELECT day, count(*) FROM pbi_day WHERE tenant = 'contoso' AND day = '2024-01-30' AND until = '2024-02-01 00:00+00' GROUP BY 1;
SET timezone = 'UTC';
SELECT day, count(*) FROM pbi_day WHERE tenant = 'contoso' AND day = '2024-01-30' AND until = '2024-02-01 00:00+00' GROUP BY 1;
\! python3 test/mockctl.py requests
RESET timezone;
DROP FOREIGN TABLE pbi_since, pbi_day;

-- JSON pointers that go through arrays and nested objects, with escapes
CREATE FOREIGN TABLE nested_rows (id text, name text)
  SERVER avepoint
  OPTIONS (path '/smp/powerplatform/environments', rows '/data/1/a~1b', next_link '/paging/next');
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault body environments '{"data": [{"a/b": [{"id": "no"}]}, {"a/b": [{"id": "e1", "name": "one"}, {"id": "e2"}], "x": [1]}], "paging": {"next": "/smp/powerplatform/environments?top=1000&skiptoken=bzoz"}, "nextLink": "ignored"}'
\! python3 test/mockctl.py fault body environments '{"data": [[], {"a/b": [{"id": "e3", "name": "three"}]}], "paging": {"next": null}}' --skip 1
SELECT * FROM nested_rows;
\! python3 test/mockctl.py requests
-- the pointer's target missing, or not an array: the shape is refused
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault body environments '{"data": [{"a/b": [{"id": "no"}]}]}'
SELECT * FROM nested_rows;
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault body environments '{"data": [{}, {"a/b": {"id": "no"}}]}'
SELECT * FROM nested_rows;
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault body environments '{"data": [{}, {"a/b": []}], "paging": {"next": 7}}'
SELECT * FROM nested_rows;
\! python3 test/mockctl.py reset
