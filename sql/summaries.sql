--
-- summaries: UiPath's consumption summaries, organization-wide and per
-- tenant.  Their response shape is not published: a row is the whole
-- response object as jsonb.
--
SET search_path = usage, public;
\d consumption_summary
\d tenant_consumption_summary

-- per tenant: tenantId goes in the path, and IN fans out along it
\! python3 test/mockctl.py reset
SELECT tenant_id, summary->>'tenantName' AS tenant,
       (summary->>'allocated')::numeric AS allocated,
       (summary->>'consumedFromTenantPool')::numeric AS from_tenant_pool,
       (summary->>'consumedFromOrgPool')::numeric AS from_org_pool
  FROM tenant_consumption_summary
 WHERE tenant_id IN ('22222222-2222-2222-2222-222222222222', '33333333-3333-3333-3333-333333333333')
   AND consumable_code = 'RU'
   AND start_date = '2024-01-01 00:00+00' AND end_date = '2024-02-01 00:00+00'
 ORDER BY 1;
\! python3 test/mockctl.py requests --sorted
SELECT explain_stable($$SELECT * FROM tenant_consumption_summary
 WHERE tenant_id IN ('22222222-2222-2222-2222-222222222222', '33333333-3333-3333-3333-333333333333')
   AND consumable_code = 'RU' AND start_date = '2024-01-01 00:00+00' AND end_date = '2024-02-01 00:00+00'$$);
SELECT explain_stable($$SELECT * FROM tenant_consumption_summary
 WHERE tenant_id = '22222222-2222-2222-2222-222222222222'
   AND consumable_code = 'RU' AND start_date = '2024-01-01 00:00+00' AND end_date = '2024-03-01 00:00+00'$$);

-- organization-wide: one object, its tenants an array to unnest
\! python3 test/mockctl.py reset
SELECT (summary->>'totalUnitsInAccount')::numeric AS total_units,
       (summary->>'consumedFromOrgWithoutTenant')::numeric AS org_without_tenant,
       t->>'tenantId' AS tenant_id, t->>'tenantName' AS tenant_name,
       (t->>'consumedFromTenantPool')::numeric AS from_tenant_pool,
       (t->>'consumedFromOrgPool')::numeric AS from_org_pool
  FROM consumption_summary s,
       jsonb_array_elements(s.summary->'tenants') t
 WHERE consumable_code = 'RU'
   AND start_date = '2024-01-01 00:00+00' AND end_date = '2024-02-01 00:00+00'
 ORDER BY tenant_id;
\! python3 test/mockctl.py requests

-- every tenant of a local list, one concurrent fan-out along the path
CREATE TABLE my_tenants (id text, name text);
INSERT INTO my_tenants VALUES ('22222222-2222-2222-2222-222222222222', 'Production'),
  ('33333333-3333-3333-3333-333333333333', 'Staging');
\! python3 test/mockctl.py reset
SELECT t.name, s.summary->>'consumedFromOrgPool' AS from_org_pool
  FROM my_tenants t
  JOIN tenant_consumption_summary s ON s.tenant_id = t.id
 WHERE s.consumable_code = 'RU'
   AND s.start_date = '2024-01-01 00:00+00' AND s.end_date = '2024-03-01 00:00+00'
 ORDER BY 1;
\! python3 test/mockctl.py requests --sorted
-- several consumables multiply the fan-out; a prepared statement under a
-- generic plan
SET plan_cache_mode = force_generic_plan;
PREPARE per_tenant(text, text[]) AS
  SELECT consumable_code, summary->>'consumedFromTenantPool' FROM tenant_consumption_summary
   WHERE tenant_id = $1 AND consumable_code = ANY ($2)
     AND start_date = '2024-01-01 00:00+00' AND end_date = '2024-02-01 00:00+00' ORDER BY 1;
EXECUTE per_tenant('22222222-2222-2222-2222-222222222222', ARRAY['RU', 'AIU']);
DEALLOCATE per_tenant;
RESET plan_cache_mode;

-- the parameters the API requires, and GUIDs
SELECT count(*) FROM tenant_consumption_summary
 WHERE consumable_code = 'RU' AND start_date = '2024-01-01 00:00+00' AND end_date = '2024-02-01 00:00+00';
SELECT count(*) FROM consumption_summary WHERE consumable_code = 'RU';
SELECT count(*) FROM tenant_consumption_summary
 WHERE tenant_id = 'production' AND consumable_code = 'RU'
   AND start_date = '2024-01-01 00:00+00' AND end_date = '2024-02-01 00:00+00';
-- start after end: nothing is asked
\! python3 test/mockctl.py reset
SELECT count(*) FROM consumption_summary
 WHERE consumable_code = 'RU' AND start_date = '2024-03-01 00:00+00' AND end_date = '2024-02-01 00:00+00';
\! python3 test/mockctl.py count
-- a tenant the API does not know is its error (404), not an empty answer
SELECT count(*) FROM tenant_consumption_summary
 WHERE tenant_id = '99999999-9999-9999-9999-999999999999' AND consumable_code = 'RU'
   AND start_date = '2024-01-01 00:00+00' AND end_date = '2024-02-01 00:00+00';
-- a response that is not an object is refused
\! python3 test/mockctl.py fault body consumption-summary '[1, 2]'
SELECT count(*) FROM consumption_summary
 WHERE consumable_code = 'RU' AND start_date = '2024-01-01 00:00+00' AND end_date = '2024-02-01 00:00+00';
\! python3 test/mockctl.py reset
