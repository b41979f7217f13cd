-- demo/setup.sql: what a user would set up to report on vendor usage.
--
-- Run by "make demo" (scripts/demo.sh) as
--   psql -X -v ON_ERROR_STOP=1 -v mock_url=http://127.0.0.1:PORT -d usage_demo -f demo/setup.sql
--
-- The story, in order: the two servers and their tables; local budgets and
-- owners per folder and a chargeback rate; a materialized view that the
-- monthly chargeback report reads (refreshed nightly); a history table filled
-- incrementally, one day at a time.  The view and the history table are those
-- of docs/scheduling.md (the same text; test/t_demo.py checks that), which
-- also schedules them with pg_cron.
--
-- Against the real services: demo/connect-real-apis.sql (make demo prints it).

CREATE EXTENSION usage_fdw;

-- UiPath Automation Cloud: the usage API of one organization.
CREATE SERVER uipath FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'uipath',
           base_url :'mock_url',
           organization_id '11111111-1111-1111-1111-111111111111');

-- AvePoint Graph API (EnPower, Power Platform connection usage).
CREATE SERVER avepoint FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'avepoint',
           base_url :'mock_url');

-- Secrets live only in user mappings.
CREATE USER MAPPING FOR CURRENT_USER SERVER uipath
  OPTIONS (access_token 'test-token');
CREATE USER MAPPING FOR CURRENT_USER SERVER avepoint
  OPTIONS (access_token 'test-token');

-- The standard foreign tables (SPEC.md section 3):
--   usage.consumption_by_folder, usage.daily_consumption_by_service,
--   usage.cloud_flow_connection_usage
CREATE SCHEMA usage;
IMPORT FOREIGN SCHEMA uipath FROM SERVER uipath INTO usage;
IMPORT FOREIGN SCHEMA avepoint FROM SERVER avepoint INTO usage;

-- Local data to join with: monthly robot-unit budgets per UiPath folder ...
CREATE TABLE folder_budget (
  folder_name    text PRIMARY KEY,
  monthly_budget numeric NOT NULL,
  owner          text
);
-- (folder names as in the demo data of test/mock_api.py; a budget covers the
-- folder's own consumption in all tenants)
INSERT INTO folder_budget (folder_name, monthly_budget, owner) VALUES
  ('Finance',             900, 'finance-ops@contoso.example'),
  ('Invoice Processing', 1200, 'ap-automation@contoso.example'),
  ('HR',                  300, 'hr-systems@contoso.example'),
  ('IT Operations',      1500, 'it-automation@contoso.example'),
  ('Customer Service',    600, 'cx-automation@contoso.example'),
  ('Procurement',         400, 'procurement@contoso.example'),
  ('Shared',              350, 'coe@contoso.example'),
  ('Legal',               200, 'legal-ops@contoso.example');

-- ... and who owns which Power Automate cloud flow.
CREATE TABLE flow_owner (
  flow_id     text PRIMARY KEY,
  owner_email text NOT NULL
);
INSERT INTO flow_owner (flow_id, owner_email) VALUES
  ('a928e785-2b02-5616-9c43-b3df0e998c7d', 'alice@contoso.example'),
  ('9166e78d-20bd-569b-9fab-a9efd8543f10', 'bob@contoso.example'),
  ('d522adf1-a64c-519d-8efa-1ae94a51e431', 'alice@contoso.example'),
  ('ad4ab402-3cd7-5e26-b32d-d6c3f0da5ad9', 'carol@fabrikam.example'),
  ('00000000-0000-0000-0000-00000000dead', 'dave@contoso.example');  -- a flow that no longer exists

-- What one robot unit costs the folder's owner (an internal rate, invented
-- for the demo).
CREATE TABLE chargeback_rate (
  consumable_code text PRIMARY KEY,
  rate_per_unit   numeric NOT NULL,
  currency        text NOT NULL
);
INSERT INTO chargeback_rate VALUES ('RU', 0.85, 'EUR');

ANALYZE folder_budget, flow_owner, chargeback_rate;

-- Robot units per folder for the last full calendar month (UTC), both
-- production and staging tenants: what the monthly chargeback report reads.
-- One request per tenant (tenant_id IN fans out); the month's bounds are
-- computed when the view is refreshed, so a nightly refresh always holds the
-- previous month, and a failed refresh keeps the previous contents:
--   REFRESH MATERIALIZED VIEW CONCURRENTLY usage.monthly_robot_units;
-- (docs/scheduling.md, "A materialized view, refreshed without blocking readers")
CREATE MATERIALIZED VIEW IF NOT EXISTS usage.monthly_robot_units AS
SELECT c.tenant_id,
       CASE c.tenant_id
         WHEN '22222222-2222-2222-2222-222222222222' THEN 'Production'
         WHEN '33333333-3333-3333-3333-333333333333' THEN 'Staging'
       END                              AS tenant_name,
       (c.start_date AT TIME ZONE 'UTC')::date AS month,
       c.folder_key,
       c.folder_name,
       c.consumed_by_self               AS robot_units,
       c.process_count_self             AS processes
  FROM usage.consumption_by_folder AS c
 WHERE c.tenant_id IN ('22222222-2222-2222-2222-222222222222',
                       '33333333-3333-3333-3333-333333333333')
   AND c.consumable_code = 'RU'
   -- first instant of the previous month, and of this month, in UTC
   AND c.start_date = date_trunc('month', date_trunc('month', now(), 'UTC') - interval '1 day', 'UTC')
   AND c.end_date   = date_trunc('month', now(), 'UTC')
WITH DATA;

-- REFRESH ... CONCURRENTLY needs a unique index on plain columns
CREATE UNIQUE INDEX IF NOT EXISTS monthly_robot_units_key
    ON usage.monthly_robot_units (tenant_id, month, folder_key);

COMMENT ON MATERIALIZED VIEW usage.monthly_robot_units IS
  'UiPath robot units (RU) per folder for the last full month; refresh nightly: '
  'REFRESH MATERIALIZED VIEW CONCURRENTLY usage.monthly_robot_units';

-- History: each UTC day's consumption per tenant, consumable and service,
-- landed in an ordinary table keyed on what identifies a row.  A materialized
-- view holds only its last refresh and pg_dump saves none of its rows; this
-- table accumulates, and loses nothing when the API is down.
-- (docs/scheduling.md, "A history table, landed incrementally")
CREATE SCHEMA IF NOT EXISTS usage_history;

CREATE TABLE IF NOT EXISTS usage_history.daily_consumption (
  tenant_id       text        NOT NULL,
  consumable_code text        NOT NULL,
  day             date        NOT NULL,      -- a UTC day, as the API counts them
  service         text        NOT NULL,
  consumed_amount numeric     NOT NULL,
  landed_at       timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (tenant_id, consumable_code, day, service)   -- the natural key
);

-- Lands the days from the newest one already landed (landed again: the API
-- may still have corrected it) up to yesterday, UTC; 30 days on the first
-- call.  The nightly job is "CALL usage_history.land_daily_consumption()".
CREATE OR REPLACE PROCEDURE usage_history.land_daily_consumption()
LANGUAGE sql AS $$
INSERT INTO usage_history.daily_consumption AS h
       (tenant_id, consumable_code, day, service, consumed_amount)
SELECT d.tenant_id, d.consumable_code, d.date, d.service, d.consumed_amount
  FROM usage.daily_consumption_by_service AS d
 WHERE d.tenant_id IN ('22222222-2222-2222-2222-222222222222',
                       '33333333-3333-3333-3333-333333333333')
   AND d.consumable_code IN ('RU', 'AIU', 'PLTU')
   -- from the newest day landed (30 days back when there is none) ...
   AND d.date >= (SELECT coalesce(max(day), (now() AT TIME ZONE 'UTC')::date - 30)
                    FROM usage_history.daily_consumption)
   -- ... up to yesterday (UTC)
   AND d.date <  (now() AT TIME ZONE 'UTC')::date
ON CONFLICT (tenant_id, consumable_code, day, service) DO UPDATE
   SET consumed_amount = EXCLUDED.consumed_amount, landed_at = now()
 WHERE h.consumed_amount IS DISTINCT FROM EXCLUDED.consumed_amount
$$;

-- The first landing: the last 30 days.  demo/reports.sql lands again, as the
-- nightly job would, and shows what that adds.
CALL usage_history.land_daily_consumption();
