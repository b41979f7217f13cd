--
-- types: any column type through its input function, NULLs, json_key,
-- json_key '*', parameter echo, conversion errors
--
\set VERBOSITY default
CREATE FOREIGN TABLE typed_folders (
  tenant   uuid OPTIONS (json_key 'tenantId'),   -- parameter column under another name
  start_date timestamptz,
  end_date   timestamptz,
  code     varchar(5) OPTIONS (json_key 'consumableCode'),
  folder   uuid OPTIONS (json_key 'folderKey'),
  parent   uuid OPTIONS (json_key 'parentFolderKey'),
  consumed double precision OPTIONS (json_key 'consumedBySelf'),
  processes int OPTIONS (json_key 'processCountSelf'),
  "folderName" text,                             -- exact match of the key
  folder_name_short varchar(10) OPTIONS (json_key 'folderName'),
  missing  text,                                 -- no such key: NULL
  item     jsonb OPTIONS (json_key '*'),
  item_text text OPTIONS (json_key '*')
) SERVER uipath OPTIONS (endpoint 'consumption_by_folder');

SELECT tenant, code, folder, parent, consumed, processes, "folderName",
       folder_name_short, missing, item, item_text
  FROM typed_folders
 WHERE tenant = '22222222-2222-2222-2222-222222222222' AND code = 'RU'
   AND start_date = '2024-01-01 00:00:00+00' AND end_date = '2024-01-02 00:00:00+00'
 ORDER BY processes;
SELECT pg_typeof(tenant), pg_typeof(consumed), pg_typeof(item) FROM typed_folders
 WHERE tenant = '22222222-2222-2222-2222-222222222222' AND code = 'RU'
   AND start_date = '2024-01-01 00:00:00+00' AND end_date = '2024-01-02 00:00:00+00'
 LIMIT 1;

-- a date column read as timestamptz, and the folder key as uuid
CREATE FOREIGN TABLE typed_daily (
  tenant_id text, consumable_code text,
  date timestamptz, service text, consumed_amount numeric(10,1)
) SERVER uipath OPTIONS (endpoint 'daily_consumption_by_service');
SET timezone = 'UTC';
SELECT date, service, consumed_amount FROM typed_daily
 WHERE tenant_id = '33333333-3333-3333-3333-333333333333' AND consumable_code = 'AIU'
   AND date >= '2024-01-01' AND date < '2024-01-02'
 ORDER BY 1, 2;
RESET timezone;

-- a value that does not convert names the table, column, endpoint and value
CREATE FOREIGN TABLE bad_types (
  tenant_id text, start_date timestamptz, end_date timestamptz, consumable_code text,
  folder_name int
) SERVER uipath OPTIONS (endpoint 'consumption_by_folder');
SELECT * FROM bad_types
 WHERE tenant_id = '22222222-2222-2222-2222-222222222222' AND consumable_code = 'RU'
   AND start_date = '2024-01-01 00:00:00+00' AND end_date = '2024-01-02 00:00:00+00';
-- json_key '*' needs a json, jsonb or text column
CREATE FOREIGN TABLE bad_star (x int OPTIONS (json_key '*'))
  SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage');
SELECT * FROM bad_star;

-- table options bind parameters; the echo shows them
CREATE FOREIGN TABLE prod_ru (
  tenant_id text, consumable_code text, aggregate_by_ownership boolean,
  start_date timestamptz, end_date timestamptz, folder_name text, consumed_by_self numeric
) SERVER uipath OPTIONS (endpoint 'consumption_by_folder',
  tenant_id '22222222-2222-2222-2222-222222222222', consumable_code 'RU',
  aggregate_by_ownership 'true');
\! python3 test/mockctl.py reset
SELECT * FROM prod_ru
 WHERE start_date = '2024-01-01 00:00:00+00' AND end_date = '2024-01-03 00:00:00+00'
   AND folder_name = 'HR';
-- a binding fixes the parameter: a WHERE clause outside it sends nothing
SELECT folder_name, consumed_by_self, consumable_code FROM prod_ru
 WHERE start_date = '2024-01-01 00:00:00+00' AND end_date = '2024-01-03 00:00:00+00'
   AND consumable_code = 'PLTU' AND folder_name = 'HR';
\! python3 test/mockctl.py requests

DROP FOREIGN TABLE typed_folders, typed_daily, bad_types, bad_star, prod_ru;
