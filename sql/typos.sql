--
-- typos: a mistake that the API would answer with zero rows, or a column
-- that would be NULL in every row, is an error or a warning instead
--
\set VERBOSITY default
\set jan 'start_date = ''2024-01-01 00:00+00'' AND end_date = ''2024-02-01 00:00+00'''

-- organization_id is a GUID: checked at CREATE and ALTER SERVER
CREATE SERVER typo_s FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'uipath', organization_id 'my-org');
CREATE SERVER typo_s FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'uipath', organization_id '1111111-1111-1111-1111-111111111111');
CREATE SERVER typo_s FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'uipath', organization_id '{11111111-1111-1111-1111-111111111111}');
CREATE SERVER typo_s FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'uipath', organization_id 'ABCDEF01-1111-1111-1111-11111111111a');
ALTER SERVER typo_s OPTIONS (SET organization_id '11111111-1111-1111-1111-11111111111g');
-- so is a tenant_id binding, of a server or a table
ALTER SERVER typo_s OPTIONS (ADD tenant_id 'production');
CREATE FOREIGN TABLE typo_t (folder_name text) SERVER typo_s
  OPTIONS (endpoint 'consumption_by_folder', tenant_id '2222');
DROP SERVER typo_s;

-- tenant_id values in WHERE: checked at execution, before anything is sent
\! python3 test/mockctl.py reset
SELECT count(*) FROM usage.consumption_by_folder
 WHERE tenant_id = '2222222-2222-2222-2222-222222222222' AND consumable_code = 'RU' AND :jan;
SELECT count(*) FROM usage.consumption_by_folder
 WHERE tenant_id IN ('22222222-2222-2222-2222-222222222222', 'staging') AND consumable_code = 'RU' AND :jan;
PREPARE typo_p(text) AS SELECT count(*) FROM usage.daily_consumption_by_service
 WHERE tenant_id = $1 AND consumable_code = 'RU' AND date >= '2024-01-01' AND date < '2024-01-03';
EXECUTE typo_p('22222222-2222-2222-2222-22222222222');
\! python3 test/mockctl.py count
-- a GUID in either case is fine (an unknown one: no rows)
EXECUTE typo_p('22222222-2222-2222-2222-222222222222');
SELECT count(*) FROM usage.consumption_by_folder
 WHERE tenant_id = upper('22222222-aaaa-2222-2222-222222222222') AND consumable_code = 'RU' AND :jan;
DEALLOCATE typo_p;
-- from a join: each outer key is checked
CREATE TABLE typo_tenants (id text);
INSERT INTO typo_tenants VALUES ('22222222-2222-2222-2222-222222222222'), ('33333333-3333-3333-3333-33333333333x');
SELECT count(*) FROM typo_tenants t JOIN usage.consumption_by_folder c ON c.tenant_id = t.id
 WHERE c.consumable_code = 'RU' AND c.start_date = '2024-01-01 00:00+00' AND c.end_date = '2024-02-01 00:00+00';
DROP TABLE typo_tenants;

-- a column that reads a key its endpoint neither returns nor takes: WARNING
CREATE FOREIGN TABLE typo_cols (
  folder_nme   text,                                  -- misspelt
  folder_key   text,                                  -- camelCase of the name
  "folderName" text,                                  -- the key itself
  parent       text OPTIONS (json_key 'parentFolderKey'),
  consumed     numeric OPTIONS (json_key 'consumedBySelfs'),  -- misspelt key
  tenant       text OPTIONS (json_key 'tenantId'),     -- a parameter
  item         jsonb OPTIONS (json_key '*')            -- the whole item
) SERVER uipath OPTIONS (endpoint 'consumption_by_folder');
ALTER FOREIGN TABLE typo_cols RENAME COLUMN folder_nme TO folder_name;
ALTER FOREIGN TABLE typo_cols ALTER COLUMN consumed OPTIONS (SET json_key 'consumedBySelf');
ALTER FOREIGN TABLE typo_cols ADD COLUMN flowid text;
DROP FOREIGN TABLE typo_cols;

-- IMPORT FOREIGN SCHEMA: unknown options are refused, bindings bind every table
CREATE SCHEMA typo_imp;
IMPORT FOREIGN SCHEMA uipath FROM SERVER uipath INTO typo_imp OPTIONS (tenantid '22222222-2222-2222-2222-222222222222');
IMPORT FOREIGN SCHEMA uipath FROM SERVER uipath INTO typo_imp OPTIONS (tenant 'contoso');
IMPORT FOREIGN SCHEMA avepoint FROM SERVER avepoint INTO typo_imp OPTIONS (page_size '10');
IMPORT FOREIGN SCHEMA uipath FROM SERVER uipath INTO typo_imp OPTIONS (tenant_id 'production');
IMPORT FOREIGN SCHEMA uipath FROM SERVER uipath INTO typo_imp
  OPTIONS (tenant_id '22222222-2222-2222-2222-222222222222', consumable_code 'RU');
IMPORT FOREIGN SCHEMA avepoint FROM SERVER avepoint INTO typo_imp OPTIONS (tenant 'contoso');
SELECT c.relname, t.ftoptions FROM pg_foreign_table t JOIN pg_class c ON c.oid = t.ftrelid
 WHERE c.relnamespace = 'typo_imp'::regnamespace ORDER BY 1;
SELECT count(*) FROM typo_imp.consumption_by_folder WHERE :jan;
SELECT count(*), min(tenant), max(tenant) FROM typo_imp.cloud_flow_connection_usage;
DROP SCHEMA typo_imp CASCADE;
