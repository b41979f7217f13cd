--
-- setup: the extension, one server per provider pointing at the mock API,
-- user mappings and the standard tables.  Later suites build on these.
--
\getenv mock_url MOCK_URL
CREATE EXTENSION usage_fdw;
-- (a catalog query: psql's \dx shows other columns from PostgreSQL 18 on)
SELECT e.extname, e.extversion, e.extnamespace::regnamespace AS schema,
       obj_description(e.oid, 'pg_extension') AS description
  FROM pg_extension e WHERE e.extname = 'usage_fdw';

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
SELECT foreign_table_schema, foreign_table_name, foreign_server_name
  FROM information_schema.foreign_tables ORDER BY 2;

-- a helper for the suites: the mock's view of what was requested
\! python3 test/mockctl.py reset

-- a helper for the suites: EXPLAIN whose output reads the same on every
-- PostgreSQL version (15 to 19; callers pass BUFFERS OFF with ANALYZE, as 18
-- shows buffers by default).  It only rewrites how a line is spelled, never
-- drops a line a suite checks:
--   - 18 prints "actual rows=10.00" (15: "actual rows=10"), and
--     "Disabled: false" lines (a line 15 never prints);
--   - a join clause checked again in a parameterized scan's Filter is printed
--     "(r.flow_id = flow_id)" by 15 and, for the same plan, sometimes
--     "(flow_id = r.flow_id)" by 17 on: an equality of a qualified (outer)
--     column and a bare (the scan's own) column is written scan side first;
--   - 19 names subplans "SubPlan expr_1", 15 to 18 "SubPlan 1".
CREATE FUNCTION explain_stable(query text, options text DEFAULT 'COSTS OFF')
RETURNS TABLE ("QUERY PLAN" text) LANGUAGE plpgsql AS $$
DECLARE
  line text;
BEGIN
  FOR line IN EXECUTE format('EXPLAIN (%s) %s', options, query) LOOP
    -- one row per line in text format, one row in all for JSON and YAML
    line := regexp_replace(line, '((actual rows=|"?Actual Rows"?: )[0-9]+)\.00', '\1', 'g');
    line := regexp_replace(line, '^ *"?Disabled"?: false,?\n', '', 'gn');
    line := regexp_replace(line,
      '\(([a-z_][a-z0-9_]*\.[a-z_][a-z0-9_]*) = ([a-z_][a-z0-9_]*)\)', '(\2 = \1)', 'g');
    line := regexp_replace(line, 'SubPlan expr_([0-9]+)', 'SubPlan \1', 'g');
    "QUERY PLAN" := line;
    RETURN NEXT;
  END LOOP;
END
$$;
