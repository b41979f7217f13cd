--
-- origins: who may point a server where (SPEC section 2).  A role that is
-- not a superuser, granted USAGE on the wrapper, may name only the vendors'
-- documented https origins (and those a superuser lists in
-- usage_fdw.allowed_origins) in base_url and token_url, and may not set
-- ca_file or proxy; a superuser may set anything.
--
\set VERBOSITY default
\getenv mock_url MOCK_URL
CREATE ROLE regress_usage_owner;
GRANT USAGE ON FOREIGN DATA WRAPPER usage_fdw TO regress_usage_owner;
CREATE SCHEMA orig AUTHORIZATION regress_usage_owner;
SET ROLE regress_usage_owner;

-- the documented origins, with a path, another letter case, the default port
CREATE SERVER o_ui FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'uipath', organization_id '11111111-1111-1111-1111-111111111111');
CREATE SERVER o_ui2 FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'uipath', organization_id '11111111-1111-1111-1111-111111111111',
           base_url 'https://Cloud.UiPath.com:443/', token_url 'https://cloud.uipath.com/identity_/connect/token');
CREATE SERVER o_gov FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'uipath', organization_id '11111111-1111-1111-1111-111111111111',
           base_url 'https://govcloud.uipath.us');
CREATE SERVER o_ded FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'uipath', organization_id '11111111-1111-1111-1111-111111111111',
           base_url 'https://contoso.dedicated.uipath.com');
CREATE SERVER o_ap FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'avepoint', base_url 'https://graph-de.avepointonlineservices.com',
           token_url 'https://identity.avepointonlineservices.com/connect/token');

-- anything else is refused: an internal address, plain http, another port,
-- a look-alike host, user info before another host, the other provider's
-- origin, an API origin as a token endpoint
CREATE SERVER o_bad FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'avepoint', base_url 'http://169.254.169.254/latest/meta-data');
CREATE SERVER o_bad FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'avepoint', base_url 'http://graph-us.avepointonlineservices.com');
CREATE SERVER o_bad FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'avepoint', base_url 'https://graph-us.avepointonlineservices.com:8443');
CREATE SERVER o_bad FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'avepoint', base_url 'https://graph-us.avepointonlineservices.com.evil.example');
CREATE SERVER o_bad FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'avepoint', base_url 'https://graph-us.avepointonlineservices.com@127.0.0.1/');
CREATE SERVER o_bad FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'avepoint', base_url 'https://cloud.uipath.com');
CREATE SERVER o_bad FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'uipath', organization_id '11111111-1111-1111-1111-111111111111',
           base_url 'https://a.b.dedicated.uipath.com');
CREATE SERVER o_bad FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'avepoint', token_url 'https://graph-us.avepointonlineservices.com/connect/token');
CREATE SERVER o_bad FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'uipath', organization_id '11111111-1111-1111-1111-111111111111',
           token_url 'http://127.0.0.1:1/identity_/connect/token');
-- ca_file and proxy: not at all
CREATE SERVER o_bad FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'avepoint', ca_file '/etc/ssl/private/server.key');
CREATE SERVER o_bad FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'avepoint', proxy 'http://127.0.0.1:3128');
-- ALTER SERVER by the owner: the same checks
ALTER SERVER o_ap OPTIONS (SET base_url 'http://127.0.0.1:8080');
ALTER SERVER o_ap OPTIONS (ADD proxy 'http://127.0.0.1:3128');
ALTER SERVER o_ap OPTIONS (ADD page_size '10');
-- base_url is not a table option
CREATE FOREIGN TABLE orig.t (flow_id text) SERVER o_ap
  OPTIONS (endpoint 'cloud_flow_connection_usage', base_url 'http://127.0.0.1:8080');
-- the setting is a superuser's
SET usage_fdw.allowed_origins = 'http://127.0.0.1:8080';
RESET ROLE;
SET usage_fdw.allowed_origins = 'http://127.0.0.1:8080/path';
SET usage_fdw.allowed_origins = 'ftp://127.0.0.1';
SET usage_fdw.allowed_origins = 'http://127.0.0.1:8080, https://usage-proxy.internal.example';
SET ROLE regress_usage_owner;
CREATE SERVER o_listed FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'avepoint', base_url 'http://127.0.0.1:8080/api',
           token_url 'https://USAGE-PROXY.internal.example:443/connect/token');
CREATE SERVER o_bad FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'avepoint', base_url 'http://127.0.0.1:8081');
CREATE SERVER o_bad FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'avepoint', base_url 'https://127.0.0.1:8080');
CREATE SERVER o_bad FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'avepoint', base_url 'http://localhost:8080');
RESET ROLE;

-- a superuser may set anything, also on the role's server; the role then
-- cannot alter that server any more
ALTER SERVER o_ap OPTIONS (ADD proxy 'http://127.0.0.1:3128', ADD ca_file '/etc/ssl/certs/ca-certificates.crt');
SET ROLE regress_usage_owner;
ALTER SERVER o_ap OPTIONS (SET page_size '20');
RESET ROLE;

-- an origin a superuser allowed works end to end for the role
SET usage_fdw.allowed_origins = :'mock_url';
SET ROLE regress_usage_owner;
CREATE SERVER o_mock FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'avepoint', base_url :'mock_url', token_url :'mock_url');
CREATE USER MAPPING FOR CURRENT_USER SERVER o_mock OPTIONS (access_token 'test-token');
CREATE FOREIGN TABLE orig.flows (flow_id text) SERVER o_mock
  OPTIONS (endpoint 'cloud_flow_connection_usage');
SELECT count(*) FROM orig.flows;
RESET ROLE;
RESET usage_fdw.allowed_origins;

SELECT srvname, srvowner::regrole FROM pg_foreign_server
 WHERE srvowner = 'regress_usage_owner'::regrole ORDER BY 1;
DROP SCHEMA orig CASCADE;
DROP OWNED BY regress_usage_owner;
DROP ROLE regress_usage_owner;
