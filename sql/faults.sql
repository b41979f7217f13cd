--
-- faults: retries, Retry-After, failures that fail the statement (never a
-- partial result), cancel and statement_timeout while waiting
--
\set VERBOSITY default
SET timezone = 'UTC';
-- the setup servers retry twice (max_retries 2)
\set q 'SELECT count(*) FROM usage.consumption_by_folder WHERE tenant_id = ''22222222-2222-2222-2222-222222222222'' AND consumable_code = ''RU'' AND start_date = ''2024-01-01'' AND end_date = ''2024-01-02'''
\set cf '{"match": {"path_regex": "consumption-by-folder"}'

-- 503, then 502: retried, the query succeeds
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault status consumption-by-folder 503
\! python3 test/mockctl.py fault status consumption-by-folder 502 --skip 1
SELECT * FROM explain_stable(:'q', 'ANALYZE, BUFFERS OFF, COSTS OFF, TIMING OFF, SUMMARY OFF');
\! python3 test/mockctl.py requests
-- each retryable status: 429, 500, 504, and a dropped connection
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault status consumption-by-folder 429
\! python3 test/mockctl.py fault status consumption-by-folder 500 --skip 1
:q;
\! python3 test/mockctl.py fault status consumption-by-folder 504
\! python3 test/mockctl.py fault drop consumption-by-folder --skip 1
:q;
\! python3 test/mockctl.py requests
-- Retry-After in seconds and as an HTTP date (here in the past: at once)
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault status consumption-by-folder 429 --retry-after 1
\! python3 test/mockctl.py fault status consumption-by-folder 503 --retry-after 'Wed, 21 Oct 2015 07:28:00 GMT' --skip 1
SELECT * FROM explain_stable(:'q', 'ANALYZE, BUFFERS OFF, COSTS OFF, TIMING OFF, SUMMARY OFF');
\! python3 test/mockctl.py requests
-- a Retry-After longer than the request timeout fails at once
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault status consumption-by-folder 429 --retry-after 3600
:q;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\! python3 test/mockctl.py count
-- retries exhausted: the error says how often it tried, with the API's message
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault '{"match": {"path_regex": "consumption-by-folder"}, "times": -1, "action": {"status": 503, "body": "{\"message\": \"service unavailable, try later\"}", "content_type": "application/json"}}'
:q;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\! python3 test/mockctl.py count
-- a long HTML error page is cut to ~500 bytes
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault '{"match": {"path_regex": "consumption-by-folder"}, "action": {"status": 404, "body": "<html><body>xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx</body></html>", "content_type": "text/html"}}'
:q;
-- not retried: 400, 404, a redirect (never followed)
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault '{"match": {"path_regex": "consumption-by-folder"}, "action": {"status": 302, "headers": {"Location": "http://127.0.0.1:1/elsewhere"}}}'
:q;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\! python3 test/mockctl.py requests

-- no partial result, ever: page 3 of 4 fails after its retries
CREATE FOREIGN TABLE flows3 (flow_id text, connection_id text)
  SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage', page_size '3');
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault status cloudflows 500 --skip 2 --always
SELECT * FROM flows3;
\! python3 test/mockctl.py requests
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault status cloudflows 500 --skip 2 --always
CREATE TABLE snapshot AS SELECT * FROM flows3;
SELECT count(*) FROM pg_class WHERE relname = 'snapshot';
CREATE TABLE snapshot (flow_id text, connection_id text);
INSERT INTO snapshot VALUES ('kept', 'kept');
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault status cloudflows 500 --skip 2 --always
INSERT INTO snapshot SELECT * FROM flows3;
SELECT * FROM snapshot;
\! python3 test/mockctl.py reset
CREATE MATERIALIZED VIEW flows_mv AS SELECT * FROM flows3;
SELECT count(*) FROM flows_mv;
\! python3 test/mockctl.py fault status cloudflows 500 --skip 3 --always
REFRESH MATERIALIZED VIEW flows_mv;
SELECT count(*) FROM flows_mv;
-- a truncated body is retried, and fails the statement when it persists
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault truncate cloudflows --skip 1
SELECT count(*) FROM flows3;
\! python3 test/mockctl.py fault truncate cloudflows --always
SELECT count(*) FROM flows3;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- one failing request of a fan-out fails the whole statement
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault '{"match": {"path_regex": "cloudflows", "query": {"flowId": "flow-0003"}}, "times": -1, "action": {"status": 500}}'
SELECT count(*) FROM usage.cloud_flow_connection_usage
 WHERE flow_id IN ('flow-0001', 'flow-0002', 'flow-0003', 'flow-0004');

-- a nextLink to another origin is refused before anything is sent there
-- (terse: the detail names the mock's port)
\set VERBOSITY terse
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault next-link cloudflows 'http://evil.example:8080/smp/powerplatform/connectionusage/cloudflows?top=3'
SELECT count(*) FROM flows3;
\! python3 test/mockctl.py fault next-link cloudflows 'https://127.0.0.1/smp/powerplatform/connectionusage/cloudflows?top=3'
SELECT count(*) FROM flows3;
-- a relative nextLink is resolved against the page's URL (same origin):
-- followed, and the 404 it leads to fails the statement
\! python3 test/mockctl.py fault next-link cloudflows 'not a url'
SELECT count(*) FROM flows3;
-- a scheme-relative one names another host: refused
\! python3 test/mockctl.py fault next-link cloudflows '//evil.example/smp/powerplatform/connectionusage/cloudflows?top=3'
SELECT count(*) FROM flows3;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- a nextLink pointing at the page just read would never end
\! python3 test/mockctl.py fault next-link cloudflows "$MOCK_URL/smp/powerplatform/connectionusage/cloudflows?top=3"
SELECT count(*) FROM flows3;
\set VERBOSITY default
\! python3 test/mockctl.py requests

-- statement_timeout and cancel while waiting on a slow API
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault delay consumption-by-folder 10000
SET statement_timeout = '300ms';
:q;
-- ... and while sleeping before a retry
\! python3 test/mockctl.py fault status consumption-by-folder 503 --retry-after 20 --always
:q;
RESET statement_timeout;
\! python3 test/mockctl.py reset
-- the session keeps working
:q;
DROP MATERIALIZED VIEW flows_mv;
DROP TABLE snapshot;
DROP FOREIGN TABLE flows3;
RESET timezone;
