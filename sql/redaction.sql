--
-- redaction: a server that reflects the request into its error must not
-- bring the user mapping's secrets, nor the bearer token, into a message
-- (repro Q6 of issue 13).  The mock's echo-request fault answers 400 with
-- the request's Authorization header and body in its error message (json),
-- or with the headers and body as one JSON document (text).
--
\set VERBOSITY default
\getenv mock_url MOCK_URL
\set tok_url :mock_url '/connect/token'
CREATE SCHEMA red;
CREATE ROLE regress_usage_reader;
GRANT USAGE ON SCHEMA red TO regress_usage_reader;
-- true when any part of the error (message, detail, hint, context) of the
-- query holds one of the strings
CREATE FUNCTION red.error_shows(query text, secrets text[]) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
  m text; d text; h text; c text; s text;
BEGIN
  EXECUTE query;
  RETURN 'no error';
EXCEPTION WHEN others THEN
  GET STACKED DIAGNOSTICS m = MESSAGE_TEXT, d = PG_EXCEPTION_DETAIL,
                          h = PG_EXCEPTION_HINT, c = PG_EXCEPTION_CONTEXT;
  FOREACH s IN ARRAY secrets LOOP
    IF strpos(concat_ws(' ', m, d, h, c), s) > 0 THEN
      RETURN 'shows ' || s;
    END IF;
  END LOOP;
  RETURN 'redacted: ' || (strpos(d, '[redacted]') > 0)::text;
END
$$;
GRANT EXECUTE ON FUNCTION red.error_shows(text, text[]) TO regress_usage_reader;

-- client credentials: the token endpoint reflects the form (client_secret
-- URL-encoded), to every role that may use the PUBLIC mapping
CREATE SERVER red_oauth FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'avepoint', base_url :'mock_url', token_url :'tok_url', max_retries '0');
CREATE USER MAPPING FOR PUBLIC SERVER red_oauth
  OPTIONS (client_id 'test-client', client_secret 'S3cr3t/of the+owner&"x"');
CREATE FOREIGN TABLE red.oauth_flows (flow_id text) SERVER red_oauth
  OPTIONS (endpoint 'cloud_flow_connection_usage');
GRANT USAGE ON FOREIGN SERVER red_oauth TO regress_usage_reader;
GRANT SELECT ON red.oauth_flows TO regress_usage_reader;
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault echo-request connect/token json --always
SET ROLE regress_usage_reader;
SELECT * FROM red.oauth_flows;
SELECT red.error_shows('SELECT * FROM red.oauth_flows',
       ARRAY['S3cr3t', 'S3cr3t%2Fof%20the%2Bowner', 'S3cr3t%2fof', 'S3cr3t%2Fof+the']);
RESET ROLE;
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault echo-request connect/token text --always
SELECT * FROM red.oauth_flows;
SELECT red.error_shows('SELECT * FROM red.oauth_flows', ARRAY['S3cr3t', 'of%20the', 'of the']);

-- the token it obtained (with the mock's own client): the API reflects the
-- Authorization header
ALTER USER MAPPING FOR PUBLIC SERVER red_oauth OPTIONS (SET client_secret 'test-secret');
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault echo-request cloudflows json --always
SELECT * FROM red.oauth_flows;
SELECT red.error_shows('SELECT * FROM red.oauth_flows', ARRAY['Bearer tok', 'Bearer ey', 'test-secret']);
\! python3 test/mockctl.py tokens

-- a static access_token, reflected as the API's message and JSON-escaped
CREATE SERVER red_static FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'avepoint', base_url :'mock_url', max_retries '0');
CREATE USER MAPPING FOR PUBLIC SERVER red_static
  OPTIONS (access_token 'hs-secret-token-0123456789/"quoted"');
CREATE FOREIGN TABLE red.static_flows (flow_id text) SERVER red_static
  OPTIONS (endpoint 'cloud_flow_connection_usage');
SELECT * FROM red.static_flows;
SELECT red.error_shows('SELECT * FROM red.static_flows', ARRAY['hs-secret-token', '0123456789']);
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault echo-request cloudflows text --always
SELECT * FROM red.static_flows;
SELECT red.error_shows('SELECT * FROM red.static_flows', ARRAY['hs-secret-token', '0123456789']);
-- ... also when the echo is a 200 of another content type
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault '{"match": {"path_regex": "cloudflows"}, "times": -1, "action": {"echo_request": "text", "status": 200}}'
SELECT * FROM red.static_flows;
SELECT red.error_shows('SELECT * FROM red.static_flows', ARRAY['hs-secret-token', '0123456789']);
\! python3 test/mockctl.py reset

-- a secret beyond ASCII, reflected with \u escapes: as Python's json and
-- JavaScript write it (lower-case hex), and as .NET does (upper-case hex,
-- and + < > escaped too); the emoji as a surrogate pair
ALTER USER MAPPING FOR PUBLIC SERVER red_static
  OPTIONS (SET access_token 'tök-secret+plus<0123>é😀');
\! python3 test/mockctl.py fault '{"match": {"path_regex": "cloudflows"}, "times": -1, "action": {"status": 400, "content_type": "text/plain", "body": "token t\\u00f6k-secret+plus<0123>\\u00e9\\ud83d\\ude00 is not valid"}}'
SELECT * FROM red.static_flows;
SELECT red.error_shows('SELECT * FROM red.static_flows', ARRAY['secret', 'plus']);
\! python3 test/mockctl.py reset
\! python3 test/mockctl.py fault '{"match": {"path_regex": "cloudflows"}, "times": -1, "action": {"status": 400, "content_type": "text/plain", "body": "token t\\u00F6k-secret\\u002Bplus\\u003C0123\\u003E\\u00E9\\uD83D\\uDE00 is not valid"}}'
SELECT * FROM red.static_flows;
SELECT red.error_shows('SELECT * FROM red.static_flows', ARRAY['secret', 'plus']);
\! python3 test/mockctl.py reset

DROP SCHEMA red CASCADE;
DROP SERVER red_oauth, red_static CASCADE;
DROP OWNED BY regress_usage_reader;
DROP ROLE regress_usage_reader;
