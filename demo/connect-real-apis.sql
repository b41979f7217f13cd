-- demo/connect-real-apis.sql: point the demo's tables at the real APIs.
--
-- Four commands: the servers leave the mock, the user mappings trade the
-- mock's token for your applications' client credentials.  The foreign
-- tables, the materialized view, the history table and the reports stay as
-- they are.  Replace the placeholders first (README, "Connect the real APIs",
-- says where each value comes from), then put your tenants' GUIDs where the
-- demo has 22222222-... and 33333333-... (the view and the procedure of
-- demo/setup.sql: CREATE OR REPLACE them).

-- 1. UiPath: the real host (base_url's default, https://cloud.uipath.com),
--    your organization's id (a GUID), the scopes of your external application
ALTER SERVER uipath
  OPTIONS (DROP base_url, SET organization_id '00000000-0000-0000-0000-000000000000',
           ADD scope 'your scopes');

-- 2. UiPath: the external application's client id and secret
ALTER USER MAPPING FOR CURRENT_USER SERVER uipath
  OPTIONS (DROP access_token, ADD client_id 'your-app-id', ADD client_secret 'your-app-secret');

-- 3. AvePoint: the API host of your region (graph-us is the default; the
--    token endpoint stays https://identity.avepointonlineservices.com)
ALTER SERVER avepoint
  OPTIONS (SET base_url 'https://graph-us.avepointonlineservices.com');

-- 4. AvePoint: the app's client id and secret
ALTER USER MAPPING FOR CURRENT_USER SERVER avepoint
  OPTIONS (DROP access_token, ADD client_id 'your-app-id', ADD client_secret 'your-app-secret');
