--
-- endpoints: each endpoint end to end, rows checked against the mock's data,
-- requests checked in the mock's log
--
\set VERBOSITY default
\! python3 test/mockctl.py reset

-- AvePoint: all flows (10 rows in the test dataset)
SELECT * FROM usage.cloud_flow_connection_usage ORDER BY connection_id;
-- one flow; flowId is a response field, so flow_id comes from the response
SELECT * FROM usage.cloud_flow_connection_usage WHERE flow_id = 'flow-0003';
-- tenant is a request parameter echoed into every row
SELECT * FROM usage.cloud_flow_connection_usage WHERE tenant = 'fabrikam' ORDER BY connection_id;
\! python3 test/mockctl.py requests

-- UiPath consumption by folder: 31 days of RU for tenant 2222...
\! python3 test/mockctl.py reset
SELECT folder_name, folder_key, parent_folder_key, consumed_by_self, process_count_self,
       tenant_id, start_date, end_date, consumable_code, aggregate_by_ownership
  FROM usage.consumption_by_folder
 WHERE tenant_id = '22222222-2222-2222-2222-222222222222'
   AND consumable_code = 'RU'
   AND start_date = '2024-01-01 00:00:00+00' AND end_date = '2024-02-01 00:00:00+00';
-- aggregateByOwnership moves the children's consumption to their parents
SELECT folder_name, consumed_by_self, process_count_self, aggregate_by_ownership
  FROM usage.consumption_by_folder
 WHERE tenant_id = '22222222-2222-2222-2222-222222222222'
   AND consumable_code = 'AIU' AND aggregate_by_ownership
   AND start_date = '2024-01-01 00:00:00+00' AND end_date = '2024-01-08 00:00:00+00';
-- a tenant the API does not know: no rows, no error
SELECT count(*) FROM usage.consumption_by_folder
 WHERE tenant_id = '99999999-9999-9999-9999-999999999999' AND consumable_code = 'RU'
   AND start_date = '2024-01-01 00:00:00+00' AND end_date = '2024-02-01 00:00:00+00';
\! python3 test/mockctl.py requests

-- UiPath daily consumption by service
\! python3 test/mockctl.py reset
SELECT date, service, consumed_amount, tenant_id, consumable_code, aggregate_by_ownership, folder_key
  FROM usage.daily_consumption_by_service
 WHERE tenant_id = '33333333-3333-3333-3333-333333333333' AND consumable_code = 'PLTU'
   AND date BETWEEN '2024-03-09' AND '2024-03-11'
 ORDER BY date, service;
-- folder_key becomes folderKeys = [key] and is echoed
SELECT date, service, consumed_amount, folder_key
  FROM usage.daily_consumption_by_service
 WHERE tenant_id = '22222222-2222-2222-2222-222222222222' AND consumable_code = 'RU'
   AND folder_key = 'aaaaaaaa-0000-0000-0000-000000000003'
   AND date = '2024-01-01'
 ORDER BY service;
\! python3 test/mockctl.py requests

-- an API error is an error, with the API's own message
SELECT count(*) FROM usage.consumption_by_folder
 WHERE tenant_id = '22222222-2222-2222-2222-222222222222' AND consumable_code = 'XX'
   AND start_date = '2024-01-01 00:00:00+00' AND end_date = '2024-02-01 00:00:00+00';

-- a local table joined with a usage table, and a materialized view
CREATE TABLE folder_budget (folder_name text PRIMARY KEY, budget numeric);
INSERT INTO folder_budget VALUES ('Finance', 100), ('HR', 150), ('Shared', 10);
SELECT b.folder_name, b.budget, c.consumed_by_self,
       c.consumed_by_self > b.budget AS over_budget
  FROM folder_budget b
  JOIN usage.consumption_by_folder c USING (folder_name)
 WHERE c.tenant_id = '22222222-2222-2222-2222-222222222222' AND c.consumable_code = 'RU'
   AND c.start_date = '2024-01-01 00:00:00+00' AND c.end_date = '2024-02-01 00:00:00+00'
 ORDER BY 1;
CREATE MATERIALIZED VIEW robot_units AS
  SELECT tenant_id, folder_name, consumed_by_self
    FROM usage.consumption_by_folder
   WHERE tenant_id IN ('22222222-2222-2222-2222-222222222222', '33333333-3333-3333-3333-333333333333')
     AND consumable_code = 'RU'
     AND start_date = '2024-01-01 00:00:00+00' AND end_date = '2024-02-01 00:00:00+00';
SELECT tenant_id, sum(consumed_by_self) FROM robot_units GROUP BY 1 ORDER BY 1;
REFRESH MATERIALIZED VIEW robot_units;
SELECT count(*) FROM robot_units;
DROP MATERIALIZED VIEW robot_units;
DROP TABLE folder_budget;
