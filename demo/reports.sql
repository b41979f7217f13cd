-- demo/reports.sql: example reports over the usage_fdw foreign tables.
-- Run by "make demo" after demo/setup.sql; run it yourself with
--   psql -X -d usage_demo -f demo/reports.sql
--
-- Every query names the request parameters its endpoint needs (SPEC.md 4):
--   consumption_by_folder:        tenant_id, consumable_code, start_date, end_date
--   daily_consumption_by_service: tenant_id, consumable_code, a lower bound on date
--   cloud_flow_connection_usage:  nothing (all flows, all tenants)
-- Month and day boundaries are UTC, as the API counts them.

\set QUIET on
\pset footer off
\pset null '(null)'

\echo
\echo '=== (a) Robot units by folder, last full month, per tenant ==='
\echo
SELECT CASE c.tenant_id
         WHEN '22222222-2222-2222-2222-222222222222' THEN 'Production'
         WHEN '33333333-3333-3333-3333-333333333333' THEN 'Staging'
       END                                  AS tenant,
       to_char(c.start_date AT TIME ZONE 'UTC', 'YYYY-MM') AS month,
       c.folder_name                        AS folder,
       c.consumed_by_self                   AS robot_units,
       c.process_count_self                 AS processes
  FROM usage.consumption_by_folder AS c
 WHERE c.tenant_id IN ('22222222-2222-2222-2222-222222222222',
                       '33333333-3333-3333-3333-333333333333')
   AND c.consumable_code = 'RU'
   AND c.start_date = date_trunc('month', date_trunc('month', now(), 'UTC') - interval '1 day', 'UTC')
   AND c.end_date   = date_trunc('month', now(), 'UTC')
 ORDER BY tenant, robot_units DESC, folder;

\echo
\echo '=== (b) Daily consumption by service, last 7 days, Production tenant ==='
\echo
SELECT d.date,
       d.service,
       sum(d.consumed_amount) FILTER (WHERE d.consumable_code = 'RU')   AS robot_units,
       sum(d.consumed_amount) FILTER (WHERE d.consumable_code = 'AIU')  AS ai_units,
       sum(d.consumed_amount) FILTER (WHERE d.consumable_code = 'PLTU') AS platform_units
  FROM usage.daily_consumption_by_service AS d
 WHERE d.tenant_id = '22222222-2222-2222-2222-222222222222'
   AND d.consumable_code IN ('RU', 'AIU', 'PLTU')
   AND d.date >= current_date - 7
   AND d.date <  current_date
 GROUP BY d.date, d.service
 ORDER BY d.date, d.service;

\echo
\echo '=== (c) Budget vs actual robot units, last full month (both tenants) ==='
\echo
WITH actual AS (
  SELECT c.folder_name, sum(c.consumed_by_self) AS robot_units
    FROM usage.consumption_by_folder AS c
   WHERE c.tenant_id IN ('22222222-2222-2222-2222-222222222222',
                         '33333333-3333-3333-3333-333333333333')
     AND c.consumable_code = 'RU'
     AND c.start_date = date_trunc('month', date_trunc('month', now(), 'UTC') - interval '1 day', 'UTC')
     AND c.end_date   = date_trunc('month', now(), 'UTC')
   GROUP BY c.folder_name
)
SELECT b.folder_name                                   AS folder,
       b.owner,
       b.monthly_budget                                AS budget,
       round(coalesce(a.robot_units, 0), 2)            AS actual,
       round(100 * coalesce(a.robot_units, 0) / nullif(b.monthly_budget, 0), 1) AS pct_used,
       CASE WHEN coalesce(a.robot_units, 0) > b.monthly_budget
            THEN 'OVER BUDGET' ELSE 'ok' END           AS status
  FROM folder_budget AS b
  LEFT JOIN actual AS a USING (folder_name)
 ORDER BY pct_used DESC NULLS LAST, folder;

\echo
\echo '=== (d1) AvePoint: cloud-flow connections per environment ==='
\echo
SELECT u.tenant,
       u.environment_id,
       count(*)                     AS connections,
       count(DISTINCT u.flow_id)    AS flows,
       count(DISTINCT u.connection_id) AS distinct_connections
  FROM usage.cloud_flow_connection_usage AS u
 WHERE u.tenant IN ('contoso', 'fabrikam')
 GROUP BY u.tenant, u.environment_id
 ORDER BY u.tenant, connections DESC, u.environment_id;

\echo
\echo '=== (d2) AvePoint: connections of the flows we know the owner of ==='
\echo '    (joined on flow_id: the planner either asks for each flow (flowId=...)'
\echo '     or fetches all flows once; 0 connections: the flow is gone or unused)'
\echo
SELECT o.owner_email,
       o.flow_id,
       count(u.connection_id)       AS connections,
       string_agg(DISTINCT u.environment_id, ', ') AS environments
  FROM flow_owner AS o
  LEFT JOIN usage.cloud_flow_connection_usage AS u ON u.flow_id = o.flow_id
 GROUP BY o.owner_email, o.flow_id
 ORDER BY o.owner_email, o.flow_id;

\echo
\echo '=== (e) Materialized view usage.monthly_robot_units (refreshed now) ==='
\echo
REFRESH MATERIALIZED VIEW usage.monthly_robot_units;
SELECT tenant_name,
       month,
       count(*)          AS folders,
       sum(robot_units)  AS robot_units,
       sum(processes)    AS processes
  FROM usage.monthly_robot_units
 GROUP BY tenant_name, month
 ORDER BY tenant_name;
