--
-- auth: missing credentials, static tokens, OAuth2 client credentials with a
-- per-backend token cache, refresh on 401, token endpoint refusals
--
\set VERBOSITY default
\getenv mock_url MOCK_URL
SET timezone = 'UTC';
\set q 'SELECT count(*) FROM ou.consumption_by_folder WHERE tenant_id = ''22222222-2222-2222-2222-222222222222'' AND consumable_code = ''RU'' AND start_date = ''2024-01-01'' AND end_date = ''2024-01-02'''

CREATE SERVER oauth FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'uipath', base_url :'mock_url',
           organization_id '11111111-1111-1111-1111-111111111111', max_retries '1');
CREATE SCHEMA ou;
IMPORT FOREIGN SCHEMA uipath LIMIT TO (consumption_by_folder) FROM SERVER oauth INTO ou;

-- no user mapping: SQLSTATE 28000 with a hint
:q;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- a user mapping without credentials
CREATE USER MAPPING FOR CURRENT_USER SERVER oauth;
:q;
-- a wrong static token: the API's 401 is 28000, no retry
ALTER USER MAPPING FOR CURRENT_USER SERVER oauth OPTIONS (ADD access_token 'wrong-token');
\! python3 test/mockctl.py reset
:q;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\! python3 test/mockctl.py count

-- client credentials: one token request, then the cached token
ALTER USER MAPPING FOR CURRENT_USER SERVER oauth
  OPTIONS (DROP access_token, ADD client_id 'test-client', ADD client_secret 'test-secret');
\! python3 test/mockctl.py reset
:q;
:q;
\! python3 test/mockctl.py requests --all
\! python3 test/mockctl.py tokens
-- the token request as the mock saw it (the secret is masked by the mock's log)
\! python3 test/mockctl.py requests --all --path-substr connect/token
-- a revoked token: 401, a new token, the request retried once, success
\! python3 test/mockctl.py revoke
\! python3 test/mockctl.py reset
:q;
\! python3 test/mockctl.py requests --all
-- the token endpoint keeps refusing the new token's use: 28000, not a loop
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py revoke
\! python3 test/mockctl.py fault '{"match": {"path_regex": "consumption-by-folder"}, "times": -1, "action": {"status": 401, "body": "{\"message\": \"token rejected\"}", "content_type": "application/json"}}'
:q;
\! python3 test/mockctl.py requests --all
\! python3 test/mockctl.py reset
-- a short-lived token is renewed before it expires
\! python3 test/mockctl.py config '{"token_ttl": 1}'
\! python3 test/mockctl.py revoke
:q;
SELECT pg_sleep(1.2);
:q;
\! python3 test/mockctl.py tokens
\! python3 test/mockctl.py reset
-- a huge expires_in does not overflow into "always expired": one token
-- serves the following queries (the token endpoint hands out the static
-- test-token, so only the caching is tested)
\! python3 test/mockctl.py fault body connect/token '{"access_token": "test-token", "token_type": "Bearer", "expires_in": 1e30}' --always
\! python3 test/mockctl.py revoke
:q;
SELECT pg_sleep(1.1);
:q;
:q;
\! python3 test/mockctl.py tokens
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault status consumption-by-folder 401
\! python3 test/mockctl.py fault body connect/token '{"access_token": "test-token", "token_type": "Bearer", "expires_in": 9223372036854775807}' --always
:q;
:q;
:q;
\! python3 test/mockctl.py tokens
\! python3 test/mockctl.py reset
-- the scope option is sent when set
ALTER SERVER oauth OPTIONS (ADD scope 'usage.read other.scope');
\! python3 test/mockctl.py revoke
:q;
\! python3 test/mockctl.py requests --all --path-substr connect/token
ALTER SERVER oauth OPTIONS (DROP scope);

-- refusals of the token endpoint: SQLSTATE 28000 with its error and description
ALTER USER MAPPING FOR CURRENT_USER SERVER oauth OPTIONS (SET client_secret 'not-the-secret');
:q;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- the secret is nowhere in the message, nor in EXPLAIN
ALTER USER MAPPING FOR CURRENT_USER SERVER oauth OPTIONS (SET client_secret 'test-secret');
EXPLAIN (VERBOSE, COSTS OFF) :q;
-- a token endpoint that is down: a connection error after retries
ALTER SERVER oauth OPTIONS (ADD token_url 'http://127.0.0.1:1/connect/token', connect_timeout_ms '1000');
\! python3 test/mockctl.py revoke
:q;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- a token endpoint answering without a token
ALTER SERVER oauth OPTIONS (SET token_url :'mock_url');
\! python3 test/mockctl.py fault '{"match": {"path_regex": "^/$"}, "action": {"status": 200, "body": "{\"token_type\": \"Bearer\"}", "content_type": "application/json"}}'
:q;
\! python3 test/mockctl.py reset

-- the user mapping of the current user wins over PUBLIC, and PUBLIC works
DROP USER MAPPING FOR CURRENT_USER SERVER oauth;
CREATE USER MAPPING FOR PUBLIC SERVER oauth OPTIONS (access_token 'test-token');
ALTER SERVER oauth OPTIONS (DROP token_url, DROP connect_timeout_ms);
:q;
DROP SCHEMA ou CASCADE;
DROP SERVER oauth CASCADE;
RESET timezone;
