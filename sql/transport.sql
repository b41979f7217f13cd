--
-- transport: a transport error names the host; a host that does not
-- resolve is not retried; oversized response headers are a clear error
--
\set VERBOSITY default
\getenv mock_url MOCK_URL
-- a name that does not resolve: one attempt, HV00N, the host named
CREATE SERVER tr_nohost FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'avepoint', base_url 'http://no-such-host.invalid', max_retries '3');
CREATE USER MAPPING FOR CURRENT_USER SERVER tr_nohost OPTIONS (access_token 'x');
CREATE FOREIGN TABLE tr_nohost_flows (flow_id text) SERVER tr_nohost
  OPTIONS (endpoint 'cloud_flow_connection_usage');
SELECT count(*) FROM tr_nohost_flows WHERE flow_id = 'f?secret=1';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- a connection refused: retried, then the host named too
ALTER SERVER tr_nohost OPTIONS (SET base_url 'http://127.0.0.1:1', SET max_retries '1');
SELECT count(*) FROM tr_nohost_flows;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
DROP SERVER tr_nohost CASCADE;

-- response headers: one line of 1 MiB, 20,000 headers (1.2 MB): HV000,
-- not retried
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault big-header cloudflows 1048576 --always
SELECT count(*) FROM usage.cloud_flow_connection_usage;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\! python3 test/mockctl.py count
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault many-headers cloudflows 20000 --always
SELECT count(*) FROM usage.cloud_flow_connection_usage;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\! python3 test/mockctl.py count
-- below the limit (64 kB in all): fine
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault big-header cloudflows 60000 --always
SELECT count(*) FROM usage.cloud_flow_connection_usage;
\! python3 test/mockctl.py reset
