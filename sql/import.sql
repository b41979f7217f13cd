--
-- import: IMPORT FOREIGN SCHEMA creates the standard tables, column by column
--
CREATE SCHEMA imp;
IMPORT FOREIGN SCHEMA uipath LIMIT TO (daily_consumption_by_service) FROM SERVER uipath INTO imp;
\det+ imp.*
IMPORT FOREIGN SCHEMA uipath EXCEPT (daily_consumption_by_service, nosuch) FROM SERVER uipath INTO imp;
IMPORT FOREIGN SCHEMA avepoint FROM SERVER avepoint INTO imp;
-- column by column, with what each column is
SELECT c.relname, a.attnum, a.attname, format_type(a.atttypid, a.atttypmod) AS type,
       col_description(c.oid, a.attnum) AS comment
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
 WHERE c.relnamespace = 'imp'::regnamespace AND a.attnum > 0
 ORDER BY 1, 2;
SELECT relname, obj_description(oid, 'pg_class') FROM pg_class
 WHERE relnamespace = 'imp'::regnamespace ORDER BY 1;
-- errors: unknown remote schema, other provider, existing tables
IMPORT FOREIGN SCHEMA nosuch FROM SERVER uipath INTO imp;
IMPORT FOREIGN SCHEMA avepoint FROM SERVER uipath INTO imp;
IMPORT FOREIGN SCHEMA uipath FROM SERVER avepoint INTO imp;
IMPORT FOREIGN SCHEMA avepoint FROM SERVER avepoint INTO imp;
-- an imported table works
SELECT count(*) FROM imp.cloud_flow_connection_usage WHERE flow_id = 'flow-0001';
DROP SCHEMA imp CASCADE;
