-- The schema test/t_sqlsmith.py lets sqlsmith loose on (run by psql as the
-- superuser in a fresh database, with -v mock_url=... -v smith=ROLE).
--
-- sqlsmith connects as the role :smith, which may only SELECT: it lists the
-- relations it can see through information_schema.tables, so it sees exactly
-- the objects granted below, and its INSERT/UPDATE/DELETE/MERGE statements
-- fail cleanly (42501) instead of changing the fixtures.
\set ON_ERROR_STOP 1
SET client_min_messages = warning;

CREATE EXTENSION usage_fdw;
CREATE EXTENSION citext;            -- for the citext columns of section 5b
CREATE SERVER uipath FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'uipath', base_url :'mock_url',
           organization_id '11111111-1111-1111-1111-111111111111',
           max_retries '1', timeout_ms '3000', connect_timeout_ms '1000');
CREATE SERVER avepoint FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'avepoint', base_url :'mock_url', page_size '4',
           max_retries '1', timeout_ms '3000', connect_timeout_ms '1000');
CREATE USER MAPPING FOR PUBLIC SERVER uipath OPTIONS (access_token 'test-token');
CREATE USER MAPPING FOR PUBLIC SERVER avepoint OPTIONS (access_token 'test-token');

-- 1. the imported tables of both providers (most queries on the two UiPath
--    tables need their required parameters: a clean HV000 with a HINT)
CREATE SCHEMA usage;
IMPORT FOREIGN SCHEMA uipath FROM SERVER uipath INTO usage;
IMPORT FOREIGN SCHEMA avepoint FROM SERVER avepoint INTO usage;

-- 2. views that supply the required parameters
CREATE SCHEMA smith;
CREATE VIEW smith.folder_jan AS
  SELECT * FROM usage.consumption_by_folder
   WHERE tenant_id = '22222222-2222-2222-2222-222222222222' AND consumable_code = 'RU'
     AND start_date = '2024-01-01 00:00+00' AND end_date = '2024-02-01 00:00+00';
CREATE VIEW smith.folder_fanout AS          -- 2 tenants x 2 codes = 4 requests
  SELECT * FROM usage.consumption_by_folder
   WHERE tenant_id IN ('22222222-2222-2222-2222-222222222222', '33333333-3333-3333-3333-333333333333')
     AND consumable_code IN ('RU', 'AIU')
     AND start_date = '2024-03-01 00:00+00' AND end_date = '2024-03-08 00:00+00'
     AND aggregate_by_ownership;
CREATE VIEW smith.daily_week AS
  SELECT * FROM usage.daily_consumption_by_service
   WHERE tenant_id = '22222222-2222-2222-2222-222222222222' AND consumable_code = 'PLTU'
     AND date >= '2024-01-01' AND date < '2024-01-08';
CREATE VIEW smith.daily_recent AS           -- only a lower bound: up to now
  SELECT * FROM usage.daily_consumption_by_service
   WHERE tenant_id = '33333333-3333-3333-3333-333333333333' AND consumable_code = 'RU'
     AND date >= current_date - 5;
CREATE VIEW smith.flows_some AS
  SELECT * FROM usage.cloud_flow_connection_usage
   WHERE flow_id IN ('flow-0001', 'flow-0003', 'flow-0009');

-- 3. per-tenant tables (the option binds the parameter): stand-alone, as
--    partitions of a partitioned table, and as a UNION ALL view
CREATE FOREIGN TABLE smith.flows_contoso (
  flow_id text, environment_id text, connection_id text, tenant text
) SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage', tenant 'contoso');
CREATE FOREIGN TABLE smith.flows_fabrikam (
  flow_id text, environment_id text, connection_id text, tenant text
) SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage', tenant 'fabrikam');
CREATE VIEW smith.flows_union AS
  SELECT * FROM smith.flows_contoso UNION ALL SELECT * FROM smith.flows_fabrikam;

CREATE TABLE smith.flows_by_tenant (
  flow_id text, environment_id text, connection_id text, tenant text
) PARTITION BY LIST (tenant);
CREATE FOREIGN TABLE smith.flows_p_contoso PARTITION OF smith.flows_by_tenant
  FOR VALUES IN ('contoso')
  SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage', tenant 'contoso');
CREATE FOREIGN TABLE smith.flows_p_fabrikam PARTITION OF smith.flows_by_tenant
  FOR VALUES IN ('fabrikam')
  SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage', tenant 'fabrikam');

-- UiPath per tenant: tenant_id and consumable_code bound by the table; the
-- dates still come from the query (or from the view below)
CREATE TABLE smith.folder_by_tenant (
  tenant_id text, start_date timestamptz, end_date timestamptz, consumable_code text,
  aggregate_by_ownership boolean, folder_key text, folder_name text,
  parent_folder_key text, consumed_by_self numeric, process_count_self bigint
) PARTITION BY LIST (tenant_id);
CREATE FOREIGN TABLE smith.folder_p_2222 PARTITION OF smith.folder_by_tenant
  FOR VALUES IN ('22222222-2222-2222-2222-222222222222')
  SERVER uipath OPTIONS (endpoint 'consumption_by_folder',
                         tenant_id '22222222-2222-2222-2222-222222222222', consumable_code 'RU');
CREATE FOREIGN TABLE smith.folder_p_3333 PARTITION OF smith.folder_by_tenant
  FOR VALUES IN ('33333333-3333-3333-3333-333333333333')
  SERVER uipath OPTIONS (endpoint 'consumption_by_folder',
                         tenant_id '33333333-3333-3333-3333-333333333333', consumable_code 'RU');
CREATE VIEW smith.folder_by_tenant_feb AS
  SELECT * FROM smith.folder_by_tenant
   WHERE start_date = '2024-02-01 00:00+00' AND end_date = '2024-03-01 00:00+00';

CREATE FOREIGN TABLE smith.daily_2222_aiu (
  tenant_id text, consumable_code text, aggregate_by_ownership boolean, folder_key text,
  date date, service text, consumed_amount numeric
) SERVER uipath OPTIONS (endpoint 'daily_consumption_by_service',
                         tenant_id '22222222-2222-2222-2222-222222222222', consumable_code 'AIU');
CREATE VIEW smith.daily_union AS
  SELECT * FROM smith.daily_2222_aiu WHERE date >= '2024-02-01' AND date < '2024-02-04'
  UNION ALL
  SELECT * FROM usage.daily_consumption_by_service
   WHERE tenant_id = '33333333-3333-3333-3333-333333333333' AND consumable_code = 'AIU'
     AND date >= '2024-02-01' AND date < '2024-02-04';

-- 4. small local tables with NULLs and duplicates that joins can use
CREATE TABLE smith.tenants (id text, name text, active boolean);
INSERT INTO smith.tenants VALUES
  ('22222222-2222-2222-2222-222222222222', 'prod', true),
  ('33333333-3333-3333-3333-333333333333', 'staging', true),
  ('22222222-2222-2222-2222-222222222222', 'prod again', false),
  ('44444444-4444-4444-4444-444444444444', 'unknown', NULL),
  (NULL, 'nobody', false);
CREATE TABLE smith.codes (code text, price numeric);
INSERT INTO smith.codes VALUES ('RU', 1.5), ('AIU', 0.25), ('RU', 2), (NULL, 0), ('PLTU', NULL);
CREATE TABLE smith.periods (start_date timestamptz, end_date timestamptz, label text);
INSERT INTO smith.periods VALUES
  ('2024-01-01 00:00+00', '2024-02-01 00:00+00', 'jan'),
  ('2024-01-01 00:00+00', '2024-02-01 00:00+00', 'jan dup'),
  ('2024-02-01 00:00+00', '2024-01-01 00:00+00', 'reversed'),
  (NULL, '2024-03-01 00:00+00', 'open'),
  ('2024-06-01 00:00+00', '2024-06-02 00:00+00', 'one day');
CREATE TABLE smith.flow_owner (flow_id text, owner text, budget numeric);
INSERT INTO smith.flow_owner VALUES
  ('flow-0001', 'ann', 10), ('flow-0002', 'bob', NULL), ('flow-0002', 'bob', 5),
  ('flow-0009', 'eve', 1), (NULL, 'nobody', 0), ('flow-0005', NULL, 3);
CREATE TABLE smith.flow_tenants (tenant text, region text);
INSERT INTO smith.flow_tenants VALUES
  ('contoso', 'eu'), ('fabrikam', 'us'), ('contoso', 'us'), (NULL, NULL), ('other', 'eu');
CREATE TABLE smith.folders (folder_key text, owner text, days date);
INSERT INTO smith.folders VALUES
  ('aaaaaaaa-0000-0000-0000-000000000002', 'fin', '2024-01-01'),
  ('aaaaaaaa-0000-0000-0000-000000000003', 'fin', '2024-01-02'),
  ('aaaaaaaa-0000-0000-0000-000000000003', 'fin', NULL),
  ('bbbbbbbb-0000-0000-0000-000000000002', 'dev', '2024-02-02'),
  (NULL, NULL, '2024-01-05');
ANALYZE smith.tenants, smith.codes, smith.periods, smith.flow_owner, smith.flow_tenants, smith.folders;

-- 5. views whose required parameters come from a join with a local table
--    (sqlsmith then adds third relations around them)
CREATE VIEW smith.folder_per_tenant AS
  SELECT t.name, t.active, c.*
    FROM usage.consumption_by_folder c JOIN smith.tenants t ON c.tenant_id = t.id
   WHERE c.consumable_code = 'RU'
     AND c.start_date = '2024-01-01 00:00+00' AND c.end_date = '2024-01-03 00:00+00';
CREATE VIEW smith.folder_per_period AS
  SELECT p.label, c.*
    FROM usage.consumption_by_folder c
    JOIN smith.periods p ON c.start_date = p.start_date AND c.end_date = p.end_date
   WHERE c.tenant_id = '33333333-3333-3333-3333-333333333333' AND c.consumable_code = 'AIU';
CREATE VIEW smith.daily_per_code AS
  SELECT k.price, d.*
    FROM usage.daily_consumption_by_service d JOIN smith.codes k ON d.consumable_code = k.code
   WHERE d.tenant_id = '22222222-2222-2222-2222-222222222222' AND d.date >= '2024-03-01' AND d.date <= '2024-03-02';
CREATE VIEW smith.usage_per_owner AS
  SELECT o.owner, o.budget, u.*
    FROM smith.flow_owner o LEFT JOIN usage.cloud_flow_connection_usage u ON u.flow_id = o.flow_id;
CREATE VIEW smith.flows_of_tenants AS
  SELECT * FROM usage.cloud_flow_connection_usage u
   WHERE u.tenant IN (SELECT tenant FROM smith.flow_tenants);

-- 5b. the shapes of the differential stage (test/t_differential.py):
--     columns whose = is not equality of the text sent (citext, char(n)),
--     fences over foreign tables with tests above them, and required
--     parameters supplied by two relations at once
CREATE FOREIGN TABLE smith.flows_ci (
  flow_id citext, environment_id text, connection_id text, tenant citext
) SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage');
CREATE FOREIGN TABLE smith.flows_ch (
  flow_id char(40), environment_id text, connection_id text, tenant text
) SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage');
CREATE FOREIGN TABLE smith.folder_code_ch (
  tenant_id text, start_date timestamptz, end_date timestamptz, consumable_code char(4),
  aggregate_by_ownership boolean, folder_key text, folder_name text,
  parent_folder_key text, consumed_by_self numeric, process_count_self bigint
) SERVER uipath OPTIONS (endpoint 'consumption_by_folder',
                         tenant_id '22222222-2222-2222-2222-222222222222');
CREATE TABLE smith.owners_ci (flow_id citext, owner text);
INSERT INTO smith.owners_ci VALUES ('FLOW-0001', 'ann'), ('flow-0002', 'bob'), ('Flow-0002', 'bob'),
  (NULL, 'nobody'), ('flow-0004', NULL);
ANALYZE smith.owners_ci;
CREATE VIEW smith.flows_fenced AS              -- tests on tenant above it are refused
  WITH x AS MATERIALIZED (SELECT * FROM usage.cloud_flow_connection_usage
                           WHERE flow_id IN ('flow-0001', 'flow-0002', 'flow-0004'))
  SELECT * FROM x;
CREATE VIEW smith.folder_offset0 AS
  SELECT * FROM (SELECT * FROM usage.consumption_by_folder
                  WHERE tenant_id = '33333333-3333-3333-3333-333333333333' AND consumable_code = 'RU'
                    AND start_date = '2024-01-01 00:00+00' AND end_date = '2024-01-03 00:00+00'
                 OFFSET 0) s;
CREATE VIEW smith.flows_windowed AS
  SELECT u.*, count(*) OVER (PARTITION BY u.tenant) AS n_in_tenant
    FROM usage.cloud_flow_connection_usage u WHERE u.tenant IN ('contoso', 'fabrikam');
CREATE VIEW smith.folder_two_relations AS       -- tenant_id and consumable_code from two tables
  SELECT t.name, k.price, c.*
    FROM smith.tenants t CROSS JOIN smith.codes k
    JOIN usage.consumption_by_folder c ON c.tenant_id = t.id AND c.consumable_code = k.code
   WHERE c.start_date = '2024-02-01 00:00+00' AND c.end_date = '2024-03-01 00:00+00';

-- The local tables stay as they are: sqlsmith's UPDATE and MERGE become no-ops
-- (UPDATE is granted, below, because SELECT ... FOR UPDATE needs it).
CREATE FUNCTION smith_keep_rows() RETURNS trigger LANGUAGE plpgsql AS
$$BEGIN RETURN NULL; END$$;
CREATE TRIGGER keep BEFORE UPDATE ON smith.tenants FOR EACH ROW EXECUTE FUNCTION smith_keep_rows();
CREATE TRIGGER keep BEFORE UPDATE ON smith.codes FOR EACH ROW EXECUTE FUNCTION smith_keep_rows();
CREATE TRIGGER keep BEFORE UPDATE ON smith.periods FOR EACH ROW EXECUTE FUNCTION smith_keep_rows();
CREATE TRIGGER keep BEFORE UPDATE ON smith.flow_owner FOR EACH ROW EXECUTE FUNCTION smith_keep_rows();
CREATE TRIGGER keep BEFORE UPDATE ON smith.flow_tenants FOR EACH ROW EXECUTE FUNCTION smith_keep_rows();
CREATE TRIGGER keep BEFORE UPDATE ON smith.folders FOR EACH ROW EXECUTE FUNCTION smith_keep_rows();
CREATE TRIGGER keep BEFORE UPDATE ON smith.owners_ci FOR EACH ROW EXECUTE FUNCTION smith_keep_rows();
REVOKE ALL ON FUNCTION smith_keep_rows() FROM PUBLIC;

-- 5c. declared endpoints (path instead of endpoint): the cloud-flow endpoint
--     declared, flow runs with a range parameter and a path parameter, and a
--     view and a join that supply it
CREATE FOREIGN TABLE smith.flows_declared (
  flow_id text OPTIONS (param 'flowId', json_key 'flowId'), environment_id text,
  connection_id text, tenant text OPTIONS (param 'tenant'))
  SERVER avepoint OPTIONS (path '/smp/powerplatform/connectionusage/cloudflows',
                           rows '/connectionUsageCloudFlows');
CREATE FOREIGN TABLE smith.flow_runs (
  flow_id text OPTIONS (param 'flowId'), run_id text OPTIONS (json_key 'id'),
  run_start timestamptz OPTIONS (json_key 'startTime', param_from 'fromDate', param_to 'toDate'),
  run_end timestamptz OPTIONS (json_key 'endTime'), duration numeric, state text,
  tenant text OPTIONS (param 'tenant'))
  SERVER avepoint OPTIONS (path '/smp/powerplatform/powerautomate/cloudflows/{flowId}/runs',
                           rows '/runs', page_size '7');
CREATE VIEW smith.runs_jan AS
  SELECT * FROM smith.flow_runs
   WHERE flow_id IN ('flow-0001', 'flow-0003') AND run_start >= '2024-01-01' AND run_start < '2024-02-01';
CREATE VIEW smith.runs_of_owned AS
  SELECT o.*, r.run_id, r.run_start, r.state FROM smith.flow_owner o
    JOIN smith.flow_runs r ON r.flow_id = o.flow_id
   WHERE r.run_start BETWEEN '2024-02-01' AND '2024-02-10';
CREATE FOREIGN TABLE smith.tenant_summary (
  tenant_id text, start_date timestamptz, end_date timestamptz, consumable_code text,
  summary jsonb OPTIONS (json_key '*'))
  SERVER uipath OPTIONS (endpoint 'tenant_consumption_summary');

-- 6. what sqlsmith may see and do: SELECT (and UPDATE, for FOR UPDATE: the
--    FDW refuses writes, the triggers above keep the local rows); INSERT,
--    DELETE and TRUNCATE fail with 42501.
GRANT USAGE ON SCHEMA usage, smith TO :"smith";
GRANT SELECT, UPDATE ON ALL TABLES IN SCHEMA usage TO :"smith";
GRANT SELECT, UPDATE ON ALL TABLES IN SCHEMA smith TO :"smith";
GRANT USAGE ON FOREIGN SERVER uipath, avepoint TO :"smith";
