/* usage_fdw--1.1.sql */

-- complain if script is sourced in psql, rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION usage_fdw" to load this file. \quit

CREATE FUNCTION usage_fdw_handler()
RETURNS fdw_handler
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FUNCTION usage_fdw_validator(text[], oid)
RETURNS void
AS 'MODULE_PATHNAME'
LANGUAGE C STRICT;

CREATE FOREIGN DATA WRAPPER usage_fdw
  HANDLER usage_fdw_handler
  VALIDATOR usage_fdw_validator;

COMMENT ON FOREIGN DATA WRAPPER usage_fdw
  IS 'vendor usage APIs (UiPath consumption, AvePoint Power Platform) as foreign tables';

-- Checks that need two catalog objects at once (a table's endpoint against
-- its server's provider), and the column comments of imported tables.  The
-- function is C and runs only as an event trigger: nothing is SQL-callable.
CREATE FUNCTION usage_fdw_ddl_command_end()
RETURNS event_trigger
AS 'MODULE_PATHNAME'
LANGUAGE C;

CREATE EVENT TRIGGER usage_fdw_ddl_command_end ON ddl_command_end
  WHEN TAG IN ('CREATE FOREIGN TABLE', 'ALTER FOREIGN TABLE',
               'ALTER SERVER', 'IMPORT FOREIGN SCHEMA')
  EXECUTE FUNCTION usage_fdw_ddl_command_end();

-- The loaded library's version (a WARNING when this database's extension
-- objects are at another version: run ALTER EXTENSION usage_fdw UPDATE).
CREATE FUNCTION usage_fdw_version()
RETURNS text
AS 'MODULE_PATHNAME'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION usage_fdw_version()
  IS 'version of the loaded usage_fdw library';
