/* usage_fdw--1.0--1.1.sql */

-- complain if script is sourced in psql, rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION usage_fdw UPDATE TO '1.1'" to load this file. \quit

-- 1.1 adds the version function.  The functions, the wrapper and the event
-- trigger of 1.0 stay as they are: the 1.1 library still has every C entry
-- point they name.

-- The loaded library's version (a WARNING when this database's extension
-- objects are at another version: run ALTER EXTENSION usage_fdw UPDATE).
CREATE FUNCTION usage_fdw_version()
RETURNS text
AS 'MODULE_PATHNAME'
LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION usage_fdw_version()
  IS 'version of the loaded usage_fdw library';
