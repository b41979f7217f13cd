--
-- search_path: nothing the extension runs or writes depends on the caller's
-- search_path.  A role that may write a schema which a superuser puts first
-- in search_path (repro Q5 of issue 13) plants an operator "=" on (oid, oid)
-- and a domain "text" that both log to an evidence table when they run.
--
\set VERBOSITY default
CREATE ROLE mallory;
CREATE SCHEMA mallory AUTHORIZATION mallory;
CREATE SCHEMA sp;
CREATE TABLE sp.evidence (who text);
GRANT USAGE ON SCHEMA sp TO mallory;
GRANT INSERT ON sp.evidence TO mallory;
SET ROLE mallory;
-- the event trigger's SPI query compared oids with an unqualified "="
CREATE FUNCTION mallory.eq(oid, oid) RETURNS boolean LANGUAGE sql AS
$$ INSERT INTO sp.evidence SELECT 'operator ran as ' || current_user; SELECT $1 OPERATOR(pg_catalog.=) $2 $$;
CREATE OPERATOR mallory.= (LEFTARG = oid, RIGHTARG = oid, FUNCTION = mallory.eq);
-- IMPORT FOREIGN SCHEMA wrote "text" / "timestamptz" unqualified
CREATE FUNCTION mallory.spy(pg_catalog.text) RETURNS boolean LANGUAGE sql AS
$$ INSERT INTO sp.evidence SELECT 'domain check ran as ' || current_user; SELECT true $$;
CREATE DOMAIN mallory.text AS pg_catalog.text CHECK (mallory.spy(VALUE));
RESET ROLE;

-- the superuser, with mallory's schema first: IMPORT, CREATE and ALTER
-- FOREIGN TABLE, ALTER SERVER (each runs the event trigger)
SET search_path = mallory, pg_catalog;
CREATE SCHEMA sp_imp;
IMPORT FOREIGN SCHEMA avepoint FROM SERVER avepoint INTO sp_imp;
IMPORT FOREIGN SCHEMA uipath FROM SERVER uipath INTO sp_imp;
CREATE FOREIGN TABLE sp_imp.flows (flow_id pg_catalog.text)
  SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage');
ALTER FOREIGN TABLE sp_imp.flows OPTIONS (ADD page_size '10');
ALTER SERVER avepoint OPTIONS (ADD max_concurrency '8');
ALTER SERVER avepoint OPTIONS (DROP max_concurrency);
RESET search_path;

-- later, any reader
SELECT count(*) FROM sp_imp.cloud_flow_connection_usage;
SELECT count(*) FROM sp_imp.flows;
-- nothing of mallory's ran
SELECT who, count(*) FROM sp.evidence GROUP BY 1 ORDER BY 1;
-- every imported column has a type of pg_catalog
SELECT c.relname, count(*) AS columns,
       count(*) FILTER (WHERE t.typnamespace = 'pg_catalog'::regnamespace) AS pg_catalog_types
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0
  JOIN pg_type t ON t.oid = a.atttypid
 WHERE c.relnamespace = 'sp_imp'::regnamespace
 GROUP BY 1 ORDER BY 1;
\d sp_imp.cloud_flow_connection_usage

DROP SCHEMA sp_imp CASCADE;
DROP SCHEMA sp CASCADE;
DROP SCHEMA mallory CASCADE;
DROP ROLE mallory;
