--
-- paging: AvePoint's top + nextLink, over several pages
--
\set VERBOSITY default
CREATE FOREIGN TABLE flows3 (flow_id text, environment_id text, connection_id text, tenant text)
  SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage', page_size '3');
\! python3 test/mockctl.py reset
-- 10 rows in pages of 3: four requests, each following nextLink
SELECT * FROM flows3;
\! python3 test/mockctl.py requests
-- the last page may also end with nextLink absent or null
\! python3 test/mockctl.py config '{"nextlink_style": "absent"}'
SELECT count(*) FROM flows3;
\! python3 test/mockctl.py config '{"nextlink_style": "null"}'
SELECT count(*) FROM flows3;
\! python3 test/mockctl.py reset
-- a filter travels on every page
SELECT count(*), min(connection_id), max(connection_id) FROM flows3 WHERE tenant = 'fabrikam';
\! python3 test/mockctl.py requests
-- LIMIT stops paging: one page read, at most one fetched ahead
\! python3 test/mockctl.py reset
SELECT connection_id FROM flows3 LIMIT 2;
\! test "$(python3 test/mockctl.py count)" -le 2 && echo "at most 2 requests"
\! python3 test/mockctl.py reset
-- rows 4 and 5 are on page 2: pages 1 and 2 read, page 3 at most fetched ahead
SELECT connection_id FROM flows3 OFFSET 3 LIMIT 2;
\! test "$(python3 test/mockctl.py count)" -le 3 && echo "at most 3 requests"
-- a big dataset in pages of 1000
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py config '{"avepoint_rows": 25000}'
SELECT count(*), count(DISTINCT flow_id), max(connection_id) FROM usage.cloud_flow_connection_usage;
\! python3 test/mockctl.py count
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py config '{"avepoint_rows": 100000}'
SELECT connection_id FROM usage.cloud_flow_connection_usage LIMIT 5;
\! test "$(python3 test/mockctl.py count)" -le 2 && echo "at most 2 requests"
\! python3 test/mockctl.py reset
DROP FOREIGN TABLE flows3;
