--
-- certlogin: the client-credentials grant with a JWT client assertion signed
-- by the client's certificate key (RS256), against the mock's token endpoint,
-- which verifies the signature, the header, the claims and that no jti is
-- used twice.
--
\getenv mock_url MOCK_URL
-- certificates made as a user would, with openssl req (test/client_cert.py)
\setenv CERTS `echo "${USAGE_FDW_TEST_DIR:-/tmp}/certs"`
\! mkdir -p "$CERTS" && for n in app other; do python3 test/client_cert.py "$CERTS" $n >/dev/null; done
\! python3 test/client_cert.py "$CERTS" locked --passphrase 'open sesame' >/dev/null
\! python3 test/client_cert.py "$CERTS" elliptic --ec >/dev/null
\! python3 test/mockctl.py register-cert cert-app "$CERTS/app.crt" >/dev/null
\! python3 test/mockctl.py register-cert cert-locked "$CERTS/locked.crt" >/dev/null
\set cert `cat "$CERTS/app.crt"`
\set key `cat "$CERTS/app.key"`
\set other_cert `cat "$CERTS/other.crt"`
\set other_key `cat "$CERTS/other.key"`
\set locked_cert `cat "$CERTS/locked.crt"`
\set locked_key `cat "$CERTS/locked.key"`
\set ec_cert `cat "$CERTS/elliptic.crt"`
\set ec_key `cat "$CERTS/elliptic.key"`

\set token_url :mock_url '/connect/token'
CREATE SERVER cert_ap FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'avepoint', base_url :'mock_url', token_url :'token_url',
           max_retries '0');
CREATE FOREIGN TABLE cert_flows (flow_id text, connection_id text) SERVER cert_ap
  OPTIONS (endpoint 'cloud_flow_connection_usage');

-- the key is checked against the certificate when the mapping is made
\set VERBOSITY default
CREATE USER MAPPING FOR CURRENT_USER SERVER cert_ap
  OPTIONS (client_id 'cert-app', client_certificate :'cert', client_key :'other_key');
CREATE USER MAPPING FOR CURRENT_USER SERVER cert_ap
  OPTIONS (client_id 'cert-app', client_certificate 'not a certificate', client_key :'key');
CREATE USER MAPPING FOR CURRENT_USER SERVER cert_ap
  OPTIONS (client_id 'cert-app', client_certificate :'cert', client_key 'not a key');
CREATE USER MAPPING FOR CURRENT_USER SERVER cert_ap
  OPTIONS (client_id 'cert-app', client_certificate :'locked_cert', client_key :'locked_key');
CREATE USER MAPPING FOR CURRENT_USER SERVER cert_ap
  OPTIONS (client_id 'cert-app', client_certificate :'locked_cert', client_key :'locked_key',
           client_key_passphrase 'wrong');
CREATE USER MAPPING FOR CURRENT_USER SERVER cert_ap
  OPTIONS (client_id 'cert-app', client_certificate :'ec_cert', client_key :'ec_key');
CREATE USER MAPPING FOR CURRENT_USER SERVER cert_ap
  OPTIONS (client_certificate :'cert', client_key :'key');
CREATE USER MAPPING FOR CURRENT_USER SERVER cert_ap
  OPTIONS (client_id 'cert-app', client_secret 's', client_certificate :'cert', client_key :'key');
CREATE USER MAPPING FOR CURRENT_USER SERVER cert_ap
  OPTIONS (client_id 'cert-app', client_key_passphrase 'x');
-- secrets belong in user mappings only
ALTER SERVER cert_ap OPTIONS (ADD client_key 'x');
ALTER SERVER cert_ap OPTIONS (ADD "Client_Key" 'x');
-- a statement that these checks refuse is logged without its text (no
-- STATEMENT line) when it may hold a secret, so no key of the failures
-- above is in the server log; other statements are logged as usual
\! grep -c -E 'PRIVATE KEY|STATEMENT:  ALTER SERVER cert_ap' "${USAGE_FDW_PGLOG:-/dev/null}"
ALTER SERVER cert_ap OPTIONS (ADD page_size '5000');
\! grep -c -E 'STATEMENT:  ALTER SERVER cert_ap OPTIONS \(ADD page_size' "${USAGE_FDW_PGLOG:-/dev/null}"

-- the login that works: one token request, then the cached token
CREATE USER MAPPING FOR CURRENT_USER SERVER cert_ap
  OPTIONS (client_id 'cert-app', client_certificate :'cert', client_key :'key');
\! python3 test/mockctl.py reset
SELECT count(*) FROM cert_flows;
SELECT count(*) FROM cert_flows WHERE flow_id = 'flow-0001';
\! python3 test/mockctl.py tokens
\! python3 test/mockctl.py requests --all
-- what the token endpoint got: no client secret, an assertion it accepted
\! python3 -c "import json,os,urllib.request; r=[x for x in json.load(urllib.request.urlopen(os.environ['MOCK_URL']+'/_mock/requests'))['requests'] if x['path'].endswith('/token')]; print(sorted(r[0]['body'].items()), r[0].get('assertion_error'))"
-- a revoked token: a new one, with a new assertion (a jti used twice would be refused)
\! python3 test/mockctl.py revoke
SELECT count(*) FROM cert_flows WHERE flow_id = 'flow-0002';
\! python3 test/mockctl.py tokens
\! python3 -c "import json,os,urllib.request; r=[x for x in json.load(urllib.request.urlopen(os.environ['MOCK_URL']+'/_mock/requests'))['requests'] if x['path'].endswith('/token')]; print([x['status'] for x in r], [x.get('assertion_error') for x in r])"

-- the same assertion twice: the token endpoint refuses the replay, which is
-- why each token request above signed a new one
\! python3 test/replay_assertion.py "$MOCK_URL/connect/token" "$CERTS/app.key" "$CERTS/app.crt" cert-app

-- an encrypted key with its passphrase
ALTER USER MAPPING FOR CURRENT_USER SERVER cert_ap
  OPTIONS (SET client_id 'cert-locked', SET client_certificate :'locked_cert',
           SET client_key :'locked_key', ADD client_key_passphrase 'open sesame');
\! python3 test/mockctl.py reset
SELECT count(*) FROM cert_flows WHERE flow_id = 'flow-0003';
\! python3 test/mockctl.py tokens

-- a certificate the application does not know: the token endpoint refuses
ALTER USER MAPPING FOR CURRENT_USER SERVER cert_ap
  OPTIONS (SET client_id 'cert-other', SET client_certificate :'other_cert',
           SET client_key :'other_key', DROP client_key_passphrase);
SELECT count(*) FROM cert_flows WHERE flow_id = 'flow-0003';
\echo SQLSTATE :LAST_ERROR_SQLSTATE

-- an endpoint that reflects the request: the assertion never reaches a message
\! python3 test/mockctl.py fault echo-request connect/token json
SELECT count(*) FROM cert_flows WHERE flow_id = 'flow-0004';
\! python3 test/mockctl.py reset

-- nor the server log, at any level
ALTER USER MAPPING FOR CURRENT_USER SERVER cert_ap
  OPTIONS (SET client_id 'cert-app', SET client_certificate :'cert', SET client_key :'key');
SET log_min_messages = debug5;
SELECT count(*) FROM cert_flows WHERE flow_id = 'flow-0005';
RESET log_min_messages;
\! grep -c -E 'eyJhbGciOiJSUzI1Ni|client_assertion=[^[]' "${USAGE_FDW_PGLOG:-/dev/null}"

DROP SERVER cert_ap CASCADE;
