-- demo/reports.sql: the demo's story, over the usage_fdw foreign tables and
-- the local tables of demo/setup.sql.  Run by "make demo" after setup.sql;
-- run it yourself with
--   psql -X -d usage_demo -f demo/reports.sql
--
--   1. budgets and owners           local tables: who pays for which folder
--   2. the monthly chargeback       the materialized view, refreshed as the
--                                   nightly job does, against the budgets
--   3. the history table            landed again as the nightly job does:
--                                   what that adds, and the last 7 days
--   4. the batched join in EXPLAIN  local flow owners joined with the AvePoint
--                                   API: one request per distinct flow
--   (make demo then prints demo/connect-real-apis.sql: the four commands that
--   point the same tables at the real APIs)
--
-- Every query on a foreign table names the request parameters its endpoint
-- needs (README, "The tables").  Months and days are UTC, as the API counts.

\set QUIET on
\pset footer off
\pset null '(null)'

\echo
\echo '=== 1. Budgets and owners (local table folder_budget) ==='
\echo '    Robot units (RU) each UiPath folder may use per month, and who pays.'
\echo
SELECT b.folder_name AS folder, b.owner, b.monthly_budget AS budget_ru,
       round(b.monthly_budget * r.rate_per_unit, 2) || ' ' || r.currency AS budget_value
  FROM folder_budget AS b
 CROSS JOIN chargeback_rate AS r
 WHERE r.consumable_code = 'RU'
 ORDER BY b.owner;

\echo
\echo '=== 2. The monthly chargeback: last full month, both tenants ==='
\echo '    REFRESH MATERIALIZED VIEW CONCURRENTLY usage.monthly_robot_units'
\echo '    (the nightly job of docs/scheduling.md; reports read the view, not the API)'
\echo
REFRESH MATERIALIZED VIEW CONCURRENTLY usage.monthly_robot_units;
SELECT to_char(max(v.month), 'YYYY-MM')               AS month,
       coalesce(b.owner, '(no owner: add to folder_budget)') AS owner,
       v.folder_name                                   AS folder,
       round(sum(v.robot_units), 2)                    AS robot_units,
       round(sum(v.robot_units) * r.rate_per_unit, 2)  AS charge_eur,
       b.monthly_budget                                AS budget_ru,
       round(100 * sum(v.robot_units) / nullif(b.monthly_budget, 0), 1) AS pct_used,
       CASE WHEN b.monthly_budget IS NULL THEN 'no budget'
            WHEN sum(v.robot_units) > b.monthly_budget THEN 'OVER BUDGET'
            ELSE 'ok' END                              AS status
  FROM usage.monthly_robot_units AS v
  LEFT JOIN folder_budget AS b USING (folder_name)
 CROSS JOIN chargeback_rate AS r
 WHERE r.consumable_code = 'RU'
 GROUP BY b.owner, v.folder_name, b.monthly_budget, r.rate_per_unit
 ORDER BY b.owner NULLS LAST, charge_eur DESC;

\echo
\echo '    Per owner: what to charge'
\echo
SELECT coalesce(b.owner, '(no owner)')                 AS owner,
       count(DISTINCT v.folder_name)                   AS folders,
       round(sum(v.robot_units), 2)                    AS robot_units,
       round(sum(v.robot_units) * r.rate_per_unit, 2) || ' ' || r.currency AS charge
  FROM usage.monthly_robot_units AS v
  LEFT JOIN folder_budget AS b USING (folder_name)
 CROSS JOIN chargeback_rate AS r
 WHERE r.consumable_code = 'RU'
 GROUP BY b.owner, r.rate_per_unit, r.currency
 ORDER BY sum(v.robot_units) DESC;

\echo
\echo '=== 3. The history table usage_history.daily_consumption ==='
\echo '    setup.sql landed the last 30 days; the nightly job lands again:'
\echo '    CALL usage_history.land_daily_consumption()'
\echo '    (from the newest day already landed up to yesterday: re-runs replace, never double)'
\echo
CREATE TEMP TABLE before_landing AS
  SELECT count(*) AS row_count, max(day) AS last_day FROM usage_history.daily_consumption;
CALL usage_history.land_daily_consumption();
SELECT b.row_count                                     AS rows_before,
       count(*)                                        AS rows_after,
       count(*) FILTER (WHERE h.day = b.last_day)      AS rows_of_the_day_landed_again,
       min(h.day)                                      AS first_day,
       max(h.day)                                      AS last_day
  FROM usage_history.daily_consumption AS h
 CROSS JOIN before_landing AS b
 GROUP BY b.row_count, b.last_day;

\echo
\echo '    Production, last 7 days, from the history table (no API call)'
\echo
SELECT h.day,
       h.service,
       sum(h.consumed_amount) FILTER (WHERE h.consumable_code = 'RU')   AS robot_units,
       sum(h.consumed_amount) FILTER (WHERE h.consumable_code = 'AIU')  AS ai_units,
       sum(h.consumed_amount) FILTER (WHERE h.consumable_code = 'PLTU') AS platform_units
  FROM usage_history.daily_consumption AS h
 WHERE h.tenant_id = '22222222-2222-2222-2222-222222222222'
   AND h.day >= (now() AT TIME ZONE 'UTC')::date - 7
 GROUP BY h.day, h.service
 ORDER BY h.day, h.service;

\echo
\echo '=== 4. The batched join: local flow owners x the AvePoint API ==='
\echo '    EXPLAIN: the flow_ids of flow_owner are sent in batches, one request per'
\echo '    distinct flow (flowId=...), concurrently, instead of one per outer row'
\echo
EXPLAIN (COSTS OFF)
SELECT o.owner_email, o.flow_id, u.connection_id, u.environment_id
  FROM flow_owner AS o
  JOIN usage.cloud_flow_connection_usage AS u ON u.flow_id = o.flow_id;

\echo
\echo '    The result: connections of the flows we know the owner of'
\echo '    (0 connections: the flow is gone or unused)'
\echo
SELECT o.owner_email,
       o.flow_id,
       count(u.connection_id)                          AS connections,
       string_agg(DISTINCT u.environment_id, ', ')     AS environments
  FROM flow_owner AS o
  LEFT JOIN usage.cloud_flow_connection_usage AS u ON u.flow_id = o.flow_id
 GROUP BY o.owner_email, o.flow_id
 ORDER BY o.owner_email, o.flow_id;

\echo
\echo '    All cloud-flow connections per AvePoint tenant and environment'
\echo
SELECT u.tenant,
       u.environment_id,
       count(*)                                        AS connections,
       count(DISTINCT u.flow_id)                       AS flows
  FROM usage.cloud_flow_connection_usage AS u
 WHERE u.tenant IN ('contoso', 'fabrikam')
 GROUP BY u.tenant, u.environment_id
 ORDER BY u.tenant, connections DESC, u.environment_id;
