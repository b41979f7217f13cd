--
-- setup: the extension, one server per provider pointing at the mock API,
-- user mappings and the standard tables.  Later suites build on these.
--
\getenv mock_url MOCK_URL
CREATE EXTENSION usage_fdw;
\dx usage_fdw

CREATE SERVER uipath FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'uipath', base_url :'mock_url',
           organization_id '11111111-1111-1111-1111-111111111111',
           max_retries '2');
CREATE SERVER avepoint FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'avepoint', base_url :'mock_url', max_retries '2');
CREATE USER MAPPING FOR CURRENT_USER SERVER uipath OPTIONS (access_token 'test-token');
CREATE USER MAPPING FOR CURRENT_USER SERVER avepoint OPTIONS (access_token 'test-token');

CREATE SCHEMA usage;
IMPORT FOREIGN SCHEMA uipath FROM SERVER uipath INTO usage;
IMPORT FOREIGN SCHEMA avepoint FROM SERVER avepoint INTO usage;
SELECT foreign_table_schema, foreign_table_name, foreign_server_name
  FROM information_schema.foreign_tables ORDER BY 2;

-- a helper for the suites: the mock's view of what was requested
\! python3 test/mockctl.py reset
