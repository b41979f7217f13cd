--
-- upgrade: CREATE EXTENSION usage_fdw VERSION '1.0', servers, user mappings,
-- foreign tables and a view made at 1.0, then ALTER EXTENSION usage_fdw
-- UPDATE: the objects keep working with the new library, and the extension's
-- members are then those of a fresh install of the default version,
-- definition for definition.  In databases of its own: the other suites'
-- database has the extension at the default version already.
--
\getenv mock_url MOCK_URL
\set regress_db :DBNAME

-- usage_fdw's member objects, each with what defines it and its comment
SELECT $q$
SELECT pg_describe_object(d.classid, d.objid, d.objsubid) AS object,
       CASE d.classid
         WHEN 'pg_proc'::regclass THEN
           (SELECT format('%s returns %s, language %s, symbol %s in %s, strict %s, volatility %s, parallel %s, security definer %s, acl %s',
                          p.oid::regprocedure, p.prorettype::regtype, l.lanname, p.prosrc, p.probin,
                          p.proisstrict, p.provolatile, p.proparallel, p.prosecdef, p.proacl)
              FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang WHERE p.oid = d.objid)
         WHEN 'pg_foreign_data_wrapper'::regclass THEN
           (SELECT format('handler %s, validator %s, options %s, acl %s',
                          w.fdwhandler::regproc, w.fdwvalidator::regproc, w.fdwoptions, w.fdwacl)
              FROM pg_foreign_data_wrapper w WHERE w.oid = d.objid)
         WHEN 'pg_event_trigger'::regclass THEN
           (SELECT format('on %s, tags %s, function %s, enabled %s',
                          t.evtevent, t.evttags, t.evtfoid::regproc, t.evtenabled)
              FROM pg_event_trigger t WHERE t.oid = d.objid)
         ELSE 'an object of an unexpected kind'
       END AS definition,
       obj_description(d.objid, d.classid::regclass::text::name) AS comment
  FROM pg_depend d
 WHERE d.refclassid = 'pg_extension'::regclass
   AND d.refobjid = (SELECT oid FROM pg_extension WHERE extname = 'usage_fdw')
   AND d.deptype = 'e'
$q$ AS members_query \gset
-- and the extension's own row
SELECT $q$
SELECT extname, extversion, extnamespace::regnamespace AS schema, extrelocatable,
       extconfig, extcondition, obj_description(oid, 'pg_extension') AS comment
  FROM pg_extension WHERE extname = 'usage_fdw'
$q$ AS extension_query \gset

-- the versions installed with the library, and the update paths between them
SELECT version, superuser, relocatable, schema, requires
  FROM pg_available_extension_versions WHERE name = 'usage_fdw' ORDER BY version;
SELECT source, target, path
  FROM pg_extension_update_paths('usage_fdw') WHERE path IS NOT NULL ORDER BY 1, 2;

--
-- 1. version 1.0 and objects made with it
--
SET client_min_messages TO warning;
DROP DATABASE IF EXISTS regression_usage_fdw_upgraded;
RESET client_min_messages;
CREATE DATABASE regression_usage_fdw_upgraded TEMPLATE template0;
ALTER DATABASE regression_usage_fdw_upgraded SET lc_messages TO 'C';
\c regression_usage_fdw_upgraded
CREATE EXTENSION usage_fdw VERSION '1.0';
:extension_query;
\x on
:members_query ORDER BY 1;
\x off
-- 1.0 has no version function
SELECT to_regprocedure('usage_fdw_version()') IS NULL AS no_version_function;

CREATE SERVER uipath FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'uipath', base_url :'mock_url',
           organization_id '11111111-1111-1111-1111-111111111111',
           max_retries '2');
CREATE SERVER avepoint FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'avepoint', base_url :'mock_url', max_retries '2');
CREATE USER MAPPING FOR CURRENT_USER SERVER uipath OPTIONS (access_token 'test-token');
CREATE USER MAPPING FOR CURRENT_USER SERVER avepoint OPTIONS (access_token 'test-token');
CREATE SCHEMA usage;
IMPORT FOREIGN SCHEMA uipath FROM SERVER uipath INTO usage;
IMPORT FOREIGN SCHEMA avepoint FROM SERVER avepoint INTO usage;
-- a table written by hand, and a view over it
CREATE FOREIGN TABLE usage.flows (
  flow_id text, connection_id text, tenant text
) SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage');
CREATE VIEW usage.connections_per_flow AS
  SELECT flow_id, count(*) AS connections FROM usage.flows GROUP BY flow_id;
SELECT foreign_table_schema, foreign_table_name, foreign_server_name
  FROM information_schema.foreign_tables ORDER BY 2;

-- the queries, at 1.0 (the SQL objects of 1.0, the library of the default
-- version: the one installed)
\! python3 test/mockctl.py reset
SELECT * FROM usage.connections_per_flow ORDER BY flow_id;
SELECT count(*) AS connections, count(DISTINCT flow_id) AS flows
  FROM usage.cloud_flow_connection_usage WHERE tenant = 'fabrikam';
SELECT folder_name, consumed_by_self
  FROM usage.consumption_by_folder
 WHERE tenant_id = '22222222-2222-2222-2222-222222222222'
   AND consumable_code = 'RU'
   AND start_date = '2024-01-01 00:00:00+00' AND end_date = '2024-02-01 00:00:00+00'
 ORDER BY folder_name;
\! python3 test/mockctl.py count

-- the new library with the 1.0 objects: its version function, called through
-- a definition of its own, says that they differ
CREATE FUNCTION pg_temp.library_version() RETURNS text
  AS '$libdir/usage_fdw', 'usage_fdw_version' LANGUAGE C;
SELECT pg_temp.library_version();

--
-- 2. ALTER EXTENSION usage_fdw UPDATE
--
ALTER EXTENSION usage_fdw UPDATE;
:extension_query;
SELECT usage_fdw_version();
SELECT usage_fdw_version() = extversion AS library_matches_extension
  FROM pg_extension WHERE extname = 'usage_fdw';
SELECT pg_temp.library_version();

-- the objects made at 1.0 answer as before
\! python3 test/mockctl.py reset
SELECT * FROM usage.connections_per_flow ORDER BY flow_id;
SELECT count(*) AS connections, count(DISTINCT flow_id) AS flows
  FROM usage.cloud_flow_connection_usage WHERE tenant = 'fabrikam';
SELECT folder_name, consumed_by_self
  FROM usage.consumption_by_folder
 WHERE tenant_id = '22222222-2222-2222-2222-222222222222'
   AND consumable_code = 'RU'
   AND start_date = '2024-01-01 00:00:00+00' AND end_date = '2024-02-01 00:00:00+00'
 ORDER BY folder_name;
\! python3 test/mockctl.py count
-- the validator and the event trigger of 1.0 still check
CREATE SERVER wrong FOREIGN DATA WRAPPER usage_fdw OPTIONS (provider 'foo');
CREATE FOREIGN TABLE usage.wrong (flow_id text)
  SERVER uipath OPTIONS (endpoint 'cloud_flow_connection_usage');
-- IMPORT FOREIGN SCHEMA after the update
CREATE SCHEMA usage_again;
IMPORT FOREIGN SCHEMA avepoint FROM SERVER avepoint INTO usage_again;
SELECT count(*) AS connections FROM usage_again.cloud_flow_connection_usage;

-- the members after the update
\x on
:members_query ORDER BY 1;
\x off
SELECT md5(string_agg(format('%s | %s | %s', object, definition, comment), E'\n' ORDER BY object))
       AS members_upgraded
  FROM (:members_query) m \gset

--
-- 3. a fresh install of the default version: the same members, the same
-- definitions
--
SET client_min_messages TO warning;
DROP DATABASE IF EXISTS regression_usage_fdw_fresh;
RESET client_min_messages;
CREATE DATABASE regression_usage_fdw_fresh TEMPLATE template0;
ALTER DATABASE regression_usage_fdw_fresh SET lc_messages TO 'C';
\c regression_usage_fdw_fresh
CREATE EXTENSION usage_fdw;
:extension_query;
SELECT usage_fdw_version();
\x on
:members_query ORDER BY 1;
\x off
SELECT md5(string_agg(format('%s | %s | %s', object, definition, comment), E'\n' ORDER BY object))
       AS members_fresh
  FROM (:members_query) m \gset
SELECT :'members_upgraded' = :'members_fresh' AS same_members;

\c :regress_db
DROP DATABASE regression_usage_fdw_upgraded;
DROP DATABASE regression_usage_fdw_fresh;
\! python3 test/mockctl.py reset
