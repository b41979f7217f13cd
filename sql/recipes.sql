--
-- recipes: the README's recipes for declared endpoints, the consumption
-- summaries and certificate login, run as written against the mock.  Where
-- their numbers depend on today's date, the recipe runs as a subquery and
-- what stays true on every day is shown.
--
\getenv mock_url MOCK_URL

-- README "Declared endpoints": runs of my flows over the last 30 complete days
CREATE FOREIGN TABLE usage.flow_runs (
  flow_id   text OPTIONS (param 'flowId'),                  -- {flowId} in the path (echo)
  run_id    text OPTIONS (json_key 'id'),
  run_start timestamptz OPTIONS (json_key 'startTime', param_from 'fromDate', param_to 'toDate'),
  run_end   timestamptz OPTIONS (json_key 'endTime'),
  duration  numeric,
  state     text,
  tenant    text OPTIONS (param 'tenant')                   -- ?tenant= (echo)
) SERVER avepoint
  OPTIONS (path '/smp/powerplatform/powerautomate/cloudflows/{flowId}/runs', rows '/runs');
CREATE TABLE my_flows (id text PRIMARY KEY, owner text);
INSERT INTO my_flows VALUES ('flow-0002', 'ana'), ('flow-0004', 'ben'), ('flow-0005', 'ana');
\! python3 test/mockctl.py reset
SELECT f.owner, count(DISTINCT r.flow_id) AS flows, count(*) AS runs,
       count(*) FILTER (WHERE r.state = 'Failed') AS failed
  FROM my_flows f JOIN usage.flow_runs r ON r.flow_id = f.id
 WHERE r.run_start >= current_date - 30 AND r.run_start < current_date
 GROUP BY 1 ORDER BY 1;
-- one request per flow (a page each), all in one concurrent fan-out
\! python3 test/mockctl.py count

-- README: Power Apps launches per app per week, the last four complete weeks
CREATE FOREIGN TABLE usage.app_launches (
  app_id      text OPTIONS (param 'appId'),
  launched_at timestamptz OPTIONS (json_key 'launchTime', param_from 'fromDate', param_to 'toDate'),
  "user"      jsonb,                   -- {"id", "displayName", "userPrincipalName"}
  device      jsonb                    -- {"platform", "browser"}
) SERVER avepoint
  OPTIONS (path '/smp/powerplatform/powerapps/{appId}/launches', rows '/launches');
CREATE TABLE my_apps (id text PRIMARY KEY, name text);
INSERT INTO my_apps VALUES ('app-0001', 'Expenses'), ('app-0002', 'Field visits');
SELECT name, count(*) AS weeks, min(launches), max(launches),
       bool_and(extract(isodow FROM week) = 1) AS mondays
  FROM (
SELECT a.name, date_trunc('week', l.launched_at)::date AS week, count(*) AS launches
  FROM my_apps a JOIN usage.app_launches l ON l.app_id = a.id
 WHERE l.launched_at >= date_trunc('week', current_date) - interval '4 weeks'
   AND l.launched_at <  date_trunc('week', current_date)
 GROUP BY 1, 2 ORDER BY 1, 2
  ) recipe GROUP BY 1 ORDER BY 1;

-- README: Power BI active users, the range sent as plain dates
CREATE FOREIGN TABLE usage.powerbi_active_users (
  day                 date OPTIONS (json_key 'date', param_from 'fromDate', param_to 'toDate',
                                    param_format 'date'),
  user_principal_name text,
  activity_count      int,
  tenant              text OPTIONS (param 'tenant')
) SERVER avepoint
  OPTIONS (path '/smp/powerplatform/powerbi/powerbiactiveusers', rows '/activeUsers');
SELECT user_principal_name, active_days, activities > 0 AS active
  FROM (
SELECT user_principal_name, count(*) AS active_days, sum(activity_count) AS activities
  FROM usage.powerbi_active_users
 WHERE tenant = 'contoso' AND day >= current_date - 30 AND day < current_date
 GROUP BY 1 ORDER BY 1
  ) recipe ORDER BY 1;

-- README "The consumption summaries": the per-tenant summary for last month,
-- across all tenants
CREATE TABLE my_tenants (id text PRIMARY KEY, name text);
INSERT INTO my_tenants VALUES ('22222222-2222-2222-2222-222222222222', 'Production'),
                              ('33333333-3333-3333-3333-333333333333', 'Staging');
\! python3 test/mockctl.py reset
SELECT name, allocated, from_tenant_pool + from_org_pool > 0 AS consumed
  FROM (
SELECT t.name,
       (s.summary->>'allocated')::numeric              AS allocated,
       (s.summary->>'consumedFromTenantPool')::numeric AS from_tenant_pool,
       (s.summary->>'consumedFromOrgPool')::numeric    AS from_org_pool
  FROM my_tenants t
  JOIN usage.tenant_consumption_summary s ON s.tenant_id = t.id
 WHERE s.consumable_code = 'RU'
   AND s.start_date = date_trunc('month', now() AT TIME ZONE 'UTC' - interval '1 month') AT TIME ZONE 'UTC'
   AND s.end_date   = date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
 ORDER BY 1
  ) recipe ORDER BY 1;
-- the requests ask for whole UTC months
\! python3 -c "import json,os,urllib.request,datetime as d; r=json.load(urllib.request.urlopen(os.environ['MOCK_URL']+'/_mock/requests'))['requests']; b=[x['body'] for x in r]; f=lambda ms: d.datetime.fromtimestamp(ms/1000, d.timezone.utc); print(len(b), all(f(x['startDate']).day == 1 and f(x['endDate']).day == 1 and f(x['startDate']).hour == 0 and f(x['endDate']).hour == 0 and (f(x['endDate']) - f(x['startDate'])).days in (28, 29, 30, 31) for x in b))"
SELECT count(*) AS tenants
  FROM usage.consumption_summary s, jsonb_array_elements(s.summary->'tenants') t
 WHERE s.consumable_code = 'RU'
   AND s.start_date = '2024-01-01 00:00+00' AND s.end_date = '2024-02-01 00:00+00';

-- README "Log in with a certificate": from openssl req to the first query
\setenv RECIPE `echo "${USAGE_FDW_TEST_DIR:-/tmp}/recipe"`
\! mkdir -p "$RECIPE" && cd "$RECIPE" && openssl req -x509 -newkey rsa:2048 -nodes -days 365 -subj "/CN=usage_fdw" -addext "keyUsage=critical,digitalSignature" -keyout usage_fdw.key -out usage_fdw.crt 2>/dev/null && ls
-- (registering usage_fdw.crt with the application, here with the mock)
\! python3 test/mockctl.py register-cert recipe-app "$RECIPE/usage_fdw.crt" >/dev/null
\set cert `cat "$RECIPE/usage_fdw.crt"`
\set key `cat "$RECIPE/usage_fdw.key"`
\set token_url :mock_url '/connect/token'
CREATE SERVER avepoint_cert FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'avepoint', base_url :'mock_url', token_url :'token_url');
CREATE SCHEMA usage_cert;
IMPORT FOREIGN SCHEMA avepoint FROM SERVER avepoint_cert INTO usage_cert;
CREATE USER MAPPING FOR CURRENT_USER SERVER avepoint_cert
  OPTIONS (client_id 'recipe-app', client_certificate :'cert', client_key :'key');
\! python3 test/mockctl.py reset
SELECT count(*) FROM usage_cert.cloud_flow_connection_usage;
\! python3 test/mockctl.py tokens
DROP SCHEMA usage_cert CASCADE;
DROP SERVER avepoint_cert CASCADE;
