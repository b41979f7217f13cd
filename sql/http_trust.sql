--
-- http_trust: what a throttling or hostile API cannot make the FDW do --
-- retry at once, page forever, break the error message's encoding, wrap a
-- counter, or slip a non-JSON response through
--
\set VERBOSITY default
SET timezone = 'UTC';
\set q 'SELECT count(*) FROM usage.consumption_by_folder WHERE tenant_id = ''22222222-2222-2222-2222-222222222222'' AND consumable_code = ''RU'' AND start_date = ''2024-01-01'' AND end_date = ''2024-01-02'''

-- 1. Backoff: a 429 / 503 without Retry-After is not retried at once (the
-- first retry waits 0.1-0.2 s; only a generous lower bound is checked)
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault status consumption-by-folder 429
\! python3 test/mockctl.py fault status consumption-by-folder 503 --skip 1
:q;
\! python3 test/mockctl.py gaps 90
-- an unparsable Retry-After, or one of 0 s, gets the backoff too
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault status consumption-by-folder 503 --retry-after soon
\! python3 test/mockctl.py fault status consumption-by-folder 429 --retry-after 0 --skip 1
:q;
\! python3 test/mockctl.py gaps 90
-- a Retry-After beyond the cap (60 s) fails at once, naming the value
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault status consumption-by-folder 429 --retry-after 99999999999999999999999
:q;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\! python3 test/mockctl.py fault status consumption-by-folder 503 --retry-after 'Fri, 31 Dec 9999 23:59:59 GMT'
:q;
\! python3 test/mockctl.py fault status consumption-by-folder 503 --retry-after 61
:q;
\! python3 test/mockctl.py count

-- 2. Paging ends
CREATE FOREIGN TABLE flows3 (flow_id text, connection_id text)
  SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage', page_size '3');
-- a nextLink cycle A -> B -> A: refused before A is requested again
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault '{"match": {"path_regex": "cloudflows"}, "times": -1, "action": {"next_link_cycle": 2}}'
SELECT count(*) FROM flows3;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\! python3 test/mockctl.py requests
-- a longer cycle A -> B -> C -> D -> A
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault '{"match": {"path_regex": "cloudflows"}, "skip": 3, "action": {"next_link_cycle": 1}}'
\! python3 test/mockctl.py fault endless-pages cloudflows --always
SELECT count(*) FROM flows3;
\! python3 test/mockctl.py count
-- an endless run of distinct nextLinks stops at max_pages
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault endless-pages cloudflows --always
ALTER FOREIGN TABLE flows3 OPTIONS (ADD max_pages '50');
SELECT count(*) FROM flows3;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\! python3 test/mockctl.py count
-- max_pages is a limit per request, inclusive: 10 rows are 4 pages of 3
\! python3 test/mockctl.py reset
ALTER FOREIGN TABLE flows3 OPTIONS (SET max_pages '4');
SELECT count(*) FROM flows3;
ALTER FOREIGN TABLE flows3 OPTIONS (SET max_pages '3');
SELECT count(*) FROM flows3;
-- the server's max_pages applies when the table has none
ALTER FOREIGN TABLE flows3 OPTIONS (DROP max_pages);
ALTER SERVER avepoint OPTIONS (ADD max_pages '1');
SELECT count(*) FROM flows3;
SELECT count(*) FROM usage.cloud_flow_connection_usage;
ALTER SERVER avepoint OPTIONS (DROP max_pages);
-- bounds
ALTER FOREIGN TABLE flows3 OPTIONS (ADD max_pages '0');
ALTER FOREIGN TABLE flows3 OPTIONS (ADD max_pages '1000001');
ALTER SERVER avepoint OPTIONS (ADD max_pages 'many');
-- a nextLink that is not a string, null or absent is an error
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault next-link cloudflows '{"href": "/next"}'
SELECT count(*) FROM flows3;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\! python3 test/mockctl.py fault next-link cloudflows 2
SELECT count(*) FROM flows3;
\! python3 test/mockctl.py fault next-link cloudflows '["a"]'
SELECT count(*) FROM flows3;
\! python3 test/mockctl.py fault next-link cloudflows true
SELECT count(*) FROM flows3;
-- "" and null end paging
\! python3 test/mockctl.py fault next-link cloudflows ''
SELECT count(*) FROM flows3;
\! python3 test/mockctl.py fault next-link cloudflows null
SELECT count(*) FROM flows3;

-- 3. API error text is made valid before it reaches the client: invalid
-- UTF-8 becomes '?', and a character the client's encoding lacks too
\! python3 test/mockctl.py reset
SET client_encoding = 'LATIN1';
-- {"message": "quota \xff\xfe exceeded, café"}
\! python3 test/mockctl.py fault '{"match": {"path_regex": "consumption-by-folder"}, "action": {"status": 400, "body_b64": "eyJtZXNzYWdlIjogInF1b3RhIP/+IGV4Y2VlZGVkLCBjYWbDqSJ9"}}'
:q;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- <html>\xc3\x28 maintenance €</html> as a 200 text/html
\! python3 test/mockctl.py fault '{"match": {"path_regex": "consumption-by-folder"}, "action": {"content_type": "text/html; charset=\u00e9t\u00e9", "body_b64": "PGh0bWw+wyggbWFpbnRlbmFuY2Ug4oKsPC9odG1sPg=="}}'
:q;
-- a valid message with a character LATIN1 lacks
\! python3 test/mockctl.py fault '{"match": {"path_regex": "consumption-by-folder"}, "action": {"status": 400, "body": "{\"message\": \"quota of 5 \u20ac exceeded\"}"}}'
:q;
RESET client_encoding;
-- in a LATIN1 database: what LATIN1 cannot hold becomes '?', the rest is
-- converted (the client here reads UTF-8)
\set regress_db :DBNAME
CREATE DATABASE usage_fdw_latin1 ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0;
\c usage_fdw_latin1
SET client_encoding = 'UTF8';
\getenv mock_url MOCK_URL
CREATE EXTENSION usage_fdw;
CREATE SERVER uipath FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'uipath', base_url :'mock_url',
           organization_id '11111111-1111-1111-1111-111111111111', max_retries '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER uipath OPTIONS (access_token 'test-token');
CREATE SCHEMA usage;
IMPORT FOREIGN SCHEMA uipath LIMIT TO (consumption_by_folder) FROM SERVER uipath INTO usage;
\! python3 test/mockctl.py fault '{"match": {"path_regex": "consumption-by-folder"}, "action": {"status": 400, "body": "{\"message\": \"caf\u00e9 \u20ac exceeded\"}"}}'
:q;
-- an escaped character LATIN1 lacks: the message is shown as the raw body
\! python3 test/mockctl.py fault '{"match": {"path_regex": "consumption-by-folder"}, "action": {"status": 400, "body": "{\"message\": \"caf\u00e9 \\u20ac exceeded\"}"}}'
:q;
\c :regress_db
DROP DATABASE usage_fdw_latin1;

-- 4. Response size: exactly 64 MiB is accepted, one byte more is refused
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault pad-to consumption-by-folder 67108864
:q;
\! python3 test/mockctl.py fault pad-to consumption-by-folder 67108865
:q;
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- 5. totalCount summed over a fan-out saturates instead of wrapping around
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault body cloudflows '{"connectionUsageCloudFlows": [], "totalCount": 9223372036854775807}' --always
SELECT * FROM explain_stable($q$SELECT * FROM usage.cloud_flow_connection_usage WHERE flow_id IN ('flow-0001', 'flow-0002')$q$,
                             'ANALYZE, BUFFERS OFF, COSTS OFF, TIMING OFF, SUMMARY OFF');

-- 7. Content-Type: media type in any case, +json suffixes, charset utf-8
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault content-type consumption-by-folder Application/JSON
:q;
\! python3 test/mockctl.py fault content-type consumption-by-folder 'application/vnd.uipath.usage+json; version=2'
:q;
\! python3 test/mockctl.py fault content-type consumption-by-folder 'application/json; charset="UTF-8"'
:q;
\! python3 test/mockctl.py fault content-type consumption-by-folder 'application/json;charset=utf-8;q=1'
:q;
-- refused, each with the response as context
\! python3 test/mockctl.py fault content-type consumption-by-folder 'text/html; profile=json'
:q;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\! python3 test/mockctl.py fault content-type consumption-by-folder application/jsonl
:q;
\! python3 test/mockctl.py fault content-type consumption-by-folder 'application/json; charset=iso-8859-1'
:q;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\! python3 test/mockctl.py reset

DROP FOREIGN TABLE flows3;
RESET timezone;
