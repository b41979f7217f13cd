--
-- options: every option validated at CREATE/ALTER time
--
\set VERBOSITY default
-- the wrapper takes no options
ALTER FOREIGN DATA WRAPPER usage_fdw OPTIONS (ADD provider 'uipath');

-- servers: provider required and checked
CREATE SERVER s FOREIGN DATA WRAPPER usage_fdw;
CREATE SERVER s FOREIGN DATA WRAPPER usage_fdw OPTIONS (provider 'foo');
CREATE SERVER s FOREIGN DATA WRAPPER usage_fdw OPTIONS (provider 'uipath');
CREATE SERVER s FOREIGN DATA WRAPPER usage_fdw OPTIONS (provider 'avepoint', bogus 'x');
-- integers: syntax and range
CREATE SERVER s FOREIGN DATA WRAPPER usage_fdw OPTIONS (provider 'avepoint', page_size 'ten');
CREATE SERVER s FOREIGN DATA WRAPPER usage_fdw OPTIONS (provider 'avepoint', page_size '5000');
CREATE SERVER s FOREIGN DATA WRAPPER usage_fdw OPTIONS (provider 'avepoint', page_size '0');
CREATE SERVER s FOREIGN DATA WRAPPER usage_fdw OPTIONS (provider 'avepoint', max_concurrency '65');
CREATE SERVER s FOREIGN DATA WRAPPER usage_fdw OPTIONS (provider 'avepoint', timeout_ms '-1');
CREATE SERVER s FOREIGN DATA WRAPPER usage_fdw OPTIONS (provider 'avepoint', connect_timeout_ms '1.5');
CREATE SERVER s FOREIGN DATA WRAPPER usage_fdw OPTIONS (provider 'avepoint', max_retries '101');
-- URLs
CREATE SERVER s FOREIGN DATA WRAPPER usage_fdw OPTIONS (provider 'avepoint', base_url 'ftp://example.com');
CREATE SERVER s FOREIGN DATA WRAPPER usage_fdw OPTIONS (provider 'avepoint', token_url 'example.com/token');
-- booleans and empty strings
CREATE SERVER s FOREIGN DATA WRAPPER usage_fdw OPTIONS (provider 'uipath', organization_id '11111111-1111-1111-1111-111111111111', aggregate_by_ownership 'maybe');
CREATE SERVER s FOREIGN DATA WRAPPER usage_fdw OPTIONS (provider 'uipath', organization_id '');
-- parameter defaults of the other provider
CREATE SERVER s FOREIGN DATA WRAPPER usage_fdw OPTIONS (provider 'avepoint', tenant_id 't');
CREATE SERVER s FOREIGN DATA WRAPPER usage_fdw OPTIONS (provider 'uipath', organization_id '11111111-1111-1111-1111-111111111111', tenant 't');
-- secrets only in user mappings
CREATE SERVER s FOREIGN DATA WRAPPER usage_fdw OPTIONS (provider 'avepoint', access_token 'x');
CREATE SERVER s FOREIGN DATA WRAPPER usage_fdw OPTIONS (provider 'avepoint', client_secret 'x');
CREATE SERVER s FOREIGN DATA WRAPPER usage_fdw OPTIONS (provider 'avepoint', client_id 'x');
-- all valid options at once
CREATE SERVER s FOREIGN DATA WRAPPER usage_fdw OPTIONS (
  provider 'uipath', base_url 'https://cloud.uipath.com/', organization_id '11111111-1111-1111-1111-111111111111',
  token_url 'https://cloud.uipath.com/identity_/connect/token', scope 's',
  page_size '10', max_concurrency '4', timeout_ms '1000', connect_timeout_ms '500',
  max_retries '0', ca_file '/etc/ssl/certs/ca-certificates.crt', proxy 'http://proxy:3128',
  tenant_id '22222222-2222-2222-2222-222222222222', consumable_code 'RU', aggregate_by_ownership 'true');
-- ALTER re-validates the complete list
ALTER SERVER s OPTIONS (DROP organization_id);
ALTER SERVER s OPTIONS (SET page_size '1001');
ALTER SERVER s OPTIONS (SET provider 'avepoint');
ALTER SERVER s OPTIONS (SET page_size '1000');

-- user mappings
CREATE USER MAPPING FOR PUBLIC SERVER s OPTIONS (password 'x');
CREATE USER MAPPING FOR PUBLIC SERVER s OPTIONS (client_id 'x');
CREATE USER MAPPING FOR PUBLIC SERVER s OPTIONS (client_secret 'x');
CREATE USER MAPPING FOR PUBLIC SERVER s OPTIONS (access_token 'x', client_id 'y', client_secret 'z');
CREATE USER MAPPING FOR PUBLIC SERVER s OPTIONS (access_token '');
CREATE USER MAPPING FOR PUBLIC SERVER s OPTIONS (client_id 'y', client_secret 'z');
ALTER USER MAPPING FOR PUBLIC SERVER s OPTIONS (DROP client_secret);
DROP USER MAPPING FOR PUBLIC SERVER s;

-- foreign tables: endpoint required, known, of the server's provider
CREATE FOREIGN TABLE ft (a text) SERVER s;
CREATE FOREIGN TABLE ft (a text) SERVER s OPTIONS (endpoint 'nope');
CREATE FOREIGN TABLE ft (a text) SERVER s OPTIONS (endpoint 'cloud_flow_connection_usage');
CREATE FOREIGN TABLE ft (a text) SERVER avepoint OPTIONS (endpoint 'consumption_by_folder');
CREATE FOREIGN TABLE ft (a text) SERVER uipath OPTIONS (endpoint 'daily_consumption_by_service', base_url 'http://x');
CREATE FOREIGN TABLE ft (a text) SERVER uipath OPTIONS (endpoint 'daily_consumption_by_service', access_token 'x');
CREATE FOREIGN TABLE ft (a text) SERVER uipath OPTIONS (endpoint 'daily_consumption_by_service', tenant 'x');
CREATE FOREIGN TABLE ft (a text) SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage', consumable_code 'x');
CREATE FOREIGN TABLE ft (a text) SERVER uipath
  OPTIONS (endpoint 'daily_consumption_by_service', tenant_id '22222222-2222-2222-2222-222222222222', consumable_code 'RU',
           aggregate_by_ownership 'off', page_size '5', max_concurrency '2');
ALTER FOREIGN TABLE ft OPTIONS (DROP endpoint);
ALTER FOREIGN TABLE ft OPTIONS (SET endpoint 'cloud_flow_connection_usage');
ALTER FOREIGN TABLE ft OPTIONS (SET endpoint 'consumption_by_folder');
-- the server's provider must keep fitting its tables
ALTER SERVER uipath OPTIONS (SET provider 'avepoint');
CREATE SERVER ap2 FOREIGN DATA WRAPPER usage_fdw OPTIONS (provider 'avepoint');
CREATE FOREIGN TABLE ap2_flows (flow_id text) SERVER ap2 OPTIONS (endpoint 'cloud_flow_connection_usage');
ALTER SERVER ap2 OPTIONS (SET provider 'uipath', ADD organization_id '11111111-1111-1111-1111-111111111111');
DROP SERVER ap2 CASCADE;
-- columns
ALTER FOREIGN TABLE ft ALTER COLUMN a OPTIONS (ADD json_key '');
ALTER FOREIGN TABLE ft ALTER COLUMN a OPTIONS (ADD key 'x');
ALTER FOREIGN TABLE ft ALTER COLUMN a OPTIONS (ADD json_key 'folderName');
DROP FOREIGN TABLE ft;
DROP SERVER s;
