--
-- ddl_security: the DDL checks run only as an event trigger; nothing a role
-- can call writes comments on objects it does not own, and servers are
-- recognised by their handler function, not by names
--
\set VERBOSITY default
-- the extension's functions: the handler, the validator, the trigger, the version
SELECT p.proname, pg_get_function_result(p.oid) AS result, l.lanname
  FROM pg_proc p JOIN pg_depend d ON d.objid = p.oid AND d.classid = 'pg_proc'::regclass
  JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'usage_fdw'
  JOIN pg_language l ON l.oid = p.prolang
 ORDER BY 1;
SELECT evtname, evtevent, evtfoid::regproc, evttags FROM pg_event_trigger
 WHERE evtname LIKE 'usage_fdw%';

-- the old SQL-callable check is gone
CREATE ROLE regress_usage_nobody;
CREATE TABLE someone_elses_table (a int);
COMMENT ON TABLE someone_elses_table IS 'the owner''s comment';
SET ROLE regress_usage_nobody;
SELECT count(*) AS sql_callable_check_functions FROM pg_proc WHERE proname = 'usage_fdw_check_object';
-- the trigger function cannot be called, by anyone
SELECT usage_fdw_ddl_command_end();
RESET ROLE;
SELECT usage_fdw_ddl_command_end();
SELECT obj_description('someone_elses_table'::regclass, 'pg_class');

-- the event trigger still comments imported tables ...
CREATE SCHEMA ddl_sec;
IMPORT FOREIGN SCHEMA uipath LIMIT TO (consumption_by_folder) FROM SERVER uipath INTO ddl_sec;
SELECT obj_description('ddl_sec.consumption_by_folder'::regclass, 'pg_class') IS NOT NULL AS table_comment,
       count(col_description('ddl_sec.consumption_by_folder'::regclass, attnum)) AS column_comments,
       count(*) AS columns
  FROM pg_attribute
 WHERE attrelid = 'ddl_sec.consumption_by_folder'::regclass AND attnum > 0;
-- ... also for a role that is not a superuser, in its own schema
GRANT USAGE ON FOREIGN SERVER uipath TO regress_usage_nobody;
CREATE SCHEMA ddl_nobody AUTHORIZATION regress_usage_nobody;
SET ROLE regress_usage_nobody;
IMPORT FOREIGN SCHEMA uipath LIMIT TO (daily_consumption_by_service) FROM SERVER uipath INTO ddl_nobody;
SELECT count(col_description('ddl_nobody.daily_consumption_by_service'::regclass, attnum)) AS column_comments
  FROM pg_attribute
 WHERE attrelid = 'ddl_nobody.daily_consumption_by_service'::regclass AND attnum > 0;
RESET ROLE;
DROP SCHEMA ddl_nobody CASCADE;
REVOKE USAGE ON FOREIGN SERVER uipath FROM regress_usage_nobody;
-- ... and still rejects an endpoint of the other provider
CREATE FOREIGN TABLE ddl_sec.wrong (flow_id text)
  SERVER uipath OPTIONS (endpoint 'cloud_flow_connection_usage');
CREATE FOREIGN TABLE ddl_sec.flows (flow_id text)
  SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage');
ALTER FOREIGN TABLE ddl_sec.flows OPTIONS (SET endpoint 'consumption_by_folder');
-- (a server's provider changing under its tables: expected/options.out)

-- a foreign-data wrapper whose handler is merely named usage_fdw_handler is
-- not ours: its servers and tables are left alone (the handler here is a
-- C function of this library with another symbol; it is never called)
CREATE SCHEMA lookalike;
CREATE FUNCTION lookalike.usage_fdw_handler() RETURNS fdw_handler
  AS 'usage_fdw', 'usage_fdw_validator' LANGUAGE C STRICT;
CREATE FOREIGN DATA WRAPPER lookalike_fdw HANDLER lookalike.usage_fdw_handler;
CREATE SERVER lookalike_srv FOREIGN DATA WRAPPER lookalike_fdw OPTIONS (provider 'avepoint');
CREATE FOREIGN TABLE lookalike.t (a int)
  SERVER lookalike_srv OPTIONS (endpoint 'consumption_by_folder');
ALTER SERVER lookalike_srv OPTIONS (SET provider 'uipath');
SELECT relname FROM pg_class WHERE relnamespace = 'lookalike'::regnamespace AND relkind = 'f';

DROP SCHEMA lookalike CASCADE;
DROP SCHEMA ddl_sec CASCADE;
DROP TABLE someone_elses_table;
DROP ROLE regress_usage_nobody;
