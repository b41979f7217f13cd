--
-- trust3: exact answers for every column type and join shape (issue 13):
-- equality only where it is equality of the text sent, the forms that fix a
-- value, parameters from several relations, tests above a fence
--
SET timezone = 'UTC';
SELECT flow_id AS f1 FROM usage.cloud_flow_connection_usage WHERE tenant = 'contoso'
 ORDER BY 1 LIMIT 1 \gset
SELECT flow_id AS f2 FROM usage.cloud_flow_connection_usage WHERE tenant = 'fabrikam'
 ORDER BY 1 LIMIT 1 \gset
SELECT count(*) AS f1_rows FROM usage.cloud_flow_connection_usage WHERE flow_id = :'f1' \gset
SELECT :f1_rows > 0 AS f1_has_rows;

-- 1. citext, char(n), a nondeterministic collation: "=" is not equality of
-- the text sent, so it is not pushed; a response column is filtered locally
CREATE EXTENSION IF NOT EXISTS citext;
CREATE FOREIGN TABLE t3_ci (flow_id citext, connection_id text, tenant text)
  SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage');
\! python3 test/mockctl.py reset
SELECT count(*) = :f1_rows AS citext_exact FROM t3_ci WHERE flow_id = upper(:'f1')::citext;
SELECT count(*) = :f1_rows AS citext_in FROM t3_ci WHERE flow_id IN (upper(:'f1')::citext, 'nope');
-- (citext = text is text's case-sensitive "=": no row)
SELECT count(*) AS citext_as_text FROM t3_ci WHERE flow_id = upper(:'f1')::text;
-- no flowId was sent
\! python3 test/mockctl.py requests
-- its cast to text is filtered locally too (a superset is always right)
\! python3 test/mockctl.py reset
SELECT count(*) = :f1_rows AS text_cast FROM t3_ci WHERE flow_id::text = :'f1';
\! python3 test/mockctl.py requests
CREATE FOREIGN TABLE t3_char (flow_id char(40), connection_id text)
  SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage');
\! python3 test/mockctl.py reset
SELECT count(*) = :f1_rows AS char_exact FROM t3_char WHERE flow_id = :'f1'::char(40);
\! python3 test/mockctl.py requests
CREATE COLLATION IF NOT EXISTS t3_nocase (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE FOREIGN TABLE t3_coll (flow_id text COLLATE t3_nocase, connection_id text)
  SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage');
SELECT count(*) = :f1_rows AS nondeterministic_exact FROM t3_coll WHERE flow_id = upper(:'f1');
-- an echo column whose "=" is not text equality cannot be known: refused
CREATE FOREIGN TABLE t3_ci_echo (flow_id text, tenant citext)
  SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage');
SELECT count(*) FROM t3_ci_echo WHERE tenant = 'CONTOSO';
CREATE FOREIGN TABLE t3_char_echo (flow_id text, tenant char(12))
  SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage');
SELECT count(*) FROM t3_char_echo WHERE tenant = 'contoso';
-- uuid and integer types keep their pushdown
CREATE FOREIGN TABLE t3_uuid (tenant_id uuid, start_date timestamptz, end_date timestamptz,
                              consumable_code text, folder_name text)
  SERVER uipath OPTIONS (endpoint 'consumption_by_folder');
\! python3 test/mockctl.py reset
SELECT count(*) > 0 AS uuid_rows FROM t3_uuid
 WHERE tenant_id = '22222222-2222-2222-2222-222222222222' AND consumable_code = 'RU'
   AND start_date = '2024-01-01 00:00+00' AND end_date = '2024-01-02 00:00+00';
\! python3 test/mockctl.py requests

-- 2. forms that fix a value
SELECT count(*) AS contoso FROM usage.cloud_flow_connection_usage WHERE tenant = 'contoso' \gset
\! python3 test/mockctl.py reset
SELECT count(*) = :contoso AS not_distinct
  FROM usage.cloud_flow_connection_usage WHERE tenant IS NOT DISTINCT FROM 'contoso';
\! python3 test/mockctl.py requests
SELECT count(*) FROM usage.cloud_flow_connection_usage WHERE tenant IS NOT DISTINCT FROM NULL;
-- a parameter: an echo column's rows are never NULL there, so NULL asks for nothing
PREPARE t3_nd(text) AS
SELECT count(*) FROM usage.cloud_flow_connection_usage WHERE tenant IS NOT DISTINCT FROM $1;
SET plan_cache_mode = force_generic_plan;
EXECUTE t3_nd('contoso');
EXECUTE t3_nd(NULL);
RESET plan_cache_mode;
DEALLOCATE t3_nd;
-- a response column may hold NULL: with a parameter, it is checked locally
PREPARE t3_nd2(text) AS
SELECT count(*) FROM usage.cloud_flow_connection_usage WHERE flow_id IS NOT DISTINCT FROM $1;
SET plan_cache_mode = force_generic_plan;
EXECUTE t3_nd2(:'f1');
RESET plan_cache_mode;
DEALLOCATE t3_nd2;
SELECT count(*) FROM usage.cloud_flow_connection_usage WHERE tenant IS DISTINCT FROM 'contoso';
\! python3 test/mockctl.py reset
SELECT tenant, flow_id = :'f1' AS is_f1, count(*) FROM usage.cloud_flow_connection_usage
 WHERE (tenant, flow_id) IN (('contoso', :'f1'), ('fabrikam', :'f2'))
 GROUP BY 1, 2 ORDER BY 1, 2;
-- a superset: both tenants times both flows, each row checked locally
\! python3 test/mockctl.py requests --sorted
SELECT tenant, count(*) FROM usage.cloud_flow_connection_usage
 WHERE (tenant = 'contoso' AND flow_id = :'f1') OR tenant = 'fabrikam' GROUP BY 1 ORDER BY 1;
SELECT count(*) FROM usage.cloud_flow_connection_usage
 WHERE (tenant = 'contoso' AND flow_id = :'f1') OR flow_id = :'f2';
SELECT (SELECT count(*) FROM usage.consumption_by_folder
         WHERE tenant_id = '22222222-2222-2222-2222-222222222222' AND consumable_code = 'RU'
           AND start_date = '2024-01-01 00:00+00' AND end_date = '2024-01-02 00:00+00'
           AND aggregate_by_ownership IS NOT DISTINCT FROM true)
     = (SELECT count(*) FROM usage.consumption_by_folder
         WHERE tenant_id = '22222222-2222-2222-2222-222222222222' AND consumable_code = 'RU'
           AND start_date = '2024-01-01 00:00+00' AND end_date = '2024-01-02 00:00+00'
           AND aggregate_by_ownership) AS bool_not_distinct;

-- 3. parameters from two relations
CREATE TABLE t3_tenants (id text, name text);
INSERT INTO t3_tenants VALUES ('22222222-2222-2222-2222-222222222222', 'Production'),
                              ('33333333-3333-3333-3333-333333333333', 'Staging');
CREATE TABLE t3_periods (s timestamptz, e timestamptz);
INSERT INTO t3_periods VALUES ('2024-01-01 00:00+00', '2024-01-02 00:00+00'),
                              ('2024-01-02 00:00+00', '2024-01-03 00:00+00');
CREATE TABLE t3_tn (name text);
INSERT INTO t3_tn VALUES ('contoso'), ('fabrikam');
CREATE TABLE t3_flows AS SELECT DISTINCT flow_id AS id FROM usage.cloud_flow_connection_usage;
ANALYZE t3_tenants, t3_periods, t3_tn, t3_flows;
CREATE TEMP TABLE t3_ref AS
SELECT t.name, codes.code, count(*) AS n, sum(c.consumed_by_self) AS s
  FROM t3_tenants t CROSS JOIN (VALUES ('RU'), ('AIU')) AS codes(code)
  CROSS JOIN LATERAL (SELECT * FROM usage.consumption_by_folder c
                       WHERE c.tenant_id = t.id AND c.consumable_code = codes.code
                         AND c.start_date = '2024-01-01 00:00+00'
                         AND c.end_date = '2024-01-02 00:00+00') c
 GROUP BY 1, 2;
SELECT count(*) FROM t3_ref;
(SELECT t.name, codes.code, count(*) AS n, sum(c.consumed_by_self) AS s
   FROM t3_tenants t CROSS JOIN (VALUES ('RU'), ('AIU')) AS codes(code)
   JOIN usage.consumption_by_folder c ON c.tenant_id = t.id AND c.consumable_code = codes.code
  WHERE c.start_date = '2024-01-01 00:00+00' AND c.end_date = '2024-01-02 00:00+00'
  GROUP BY 1, 2)
EXCEPT ALL SELECT * FROM t3_ref;
SELECT t.name, p.s FROM t3_tenants t CROSS JOIN t3_periods p
 WHERE EXISTS (SELECT 1 FROM usage.consumption_by_folder c
                WHERE c.tenant_id = t.id AND c.start_date = p.s AND c.end_date = p.e
                  AND c.consumable_code = 'RU')
 ORDER BY 1, 2;
SELECT count(*) = (SELECT count(*) FROM usage.cloud_flow_connection_usage WHERE tenant IN ('contoso', 'fabrikam'))
       AS exists_two_relations
  FROM t3_flows k CROSS JOIN t3_tn
 WHERE EXISTS (SELECT 1 FROM usage.cloud_flow_connection_usage u
                WHERE u.flow_id = k.id AND u.tenant = t3_tn.name);
SELECT count(*) FROM t3_flows k CROSS JOIN t3_tn
 WHERE EXISTS (SELECT 1 FROM usage.cloud_flow_connection_usage u
                WHERE u.flow_id = k.id AND u.tenant = t3_tn.name);
-- a semi-join whose values come from two relations: PostgreSQL joins the
-- two first only when it must, so the scan cannot take both; refused with a
-- HINT, and the inner join it suggests gives the rows
SELECT count(*) FROM (SELECT DISTINCT t.name, p.s FROM t3_tenants t CROSS JOIN t3_periods p
  JOIN usage.consumption_by_folder c ON c.tenant_id = t.id AND c.start_date = p.s
   AND c.end_date = p.e AND c.consumable_code = 'RU') d;
SELECT count(*) = (SELECT count(*) FROM usage.cloud_flow_connection_usage WHERE tenant IN ('contoso', 'fabrikam'))
       AS join_two_relations
  FROM t3_flows k CROSS JOIN t3_tn
  JOIN usage.cloud_flow_connection_usage u ON u.flow_id = k.id AND u.tenant = t3_tn.name;
SELECT count(*) FROM t3_flows k CROSS JOIN t3_tn
 WHERE NOT EXISTS (SELECT 1 FROM usage.cloud_flow_connection_usage u
                    WHERE u.flow_id = k.id AND u.tenant = t3_tn.name);
-- under a generic plan
PREPARE t3_two(text) AS
SELECT t.name, codes.code, count(*) FROM t3_tenants t CROSS JOIN (VALUES ('RU'), ('AIU')) AS codes(code)
  JOIN usage.consumption_by_folder c ON c.tenant_id = t.id AND c.consumable_code = codes.code
 WHERE c.start_date = $1::timestamptz AND c.end_date = $1::timestamptz + interval '1 day'
 GROUP BY 1, 2 ORDER BY 1, 2;
SET plan_cache_mode = force_generic_plan;
EXECUTE t3_two('2024-01-01 00:00+00');
RESET plan_cache_mode;
DEALLOCATE t3_two;

-- 4. tests above a fence: refused when no request carries the parameter
WITH x AS MATERIALIZED (SELECT * FROM usage.cloud_flow_connection_usage)
SELECT count(*) FROM x WHERE tenant = 'contoso';
SELECT count(*) FROM (SELECT * FROM usage.cloud_flow_connection_usage OFFSET 0) s
 WHERE s.tenant = 'contoso';
SELECT count(*) FROM (SELECT *, row_number() OVER () AS rn FROM usage.cloud_flow_connection_usage) s
 WHERE s.tenant = 'contoso';
SELECT count(*) FILTER (WHERE tenant = 'contoso') AS contoso, count(*) AS all_rows
  FROM usage.cloud_flow_connection_usage;
SELECT count(*) FROM (SELECT * FROM usage.cloud_flow_connection_usage OFFSET 0) s
  JOIN t3_tn ON s.tenant = t3_tn.name;
SELECT count(*) FROM t3_tn WHERE name NOT IN (SELECT tenant FROM usage.cloud_flow_connection_usage);
SELECT count(*) FROM t3_tn
 WHERE name = (SELECT tenant FROM usage.cloud_flow_connection_usage ORDER BY flow_id LIMIT 1);
SELECT count(*) FILTER (WHERE folder_key = 'x')
  FROM usage.daily_consumption_by_service
 WHERE tenant_id = '22222222-2222-2222-2222-222222222222' AND consumable_code = 'RU'
   AND date = '2024-01-01';
-- in PL/pgSQL, a test of a fetched value is beyond any plan: the value reads
-- NULL, as documented
DO $$
DECLARE r record; n int := 0;
BEGIN
  FOR r IN SELECT * FROM usage.cloud_flow_connection_usage LOOP
    IF r.tenant IS NULL THEN n := n + 1; END IF;
  END LOOP;
  RAISE NOTICE 'rows whose tenant reads NULL: %', n > 0;
END $$;
-- not tests: the column only reaches the output (NULL, documented)
SELECT tenant, count(*) > 0 AS some FROM (SELECT * FROM usage.cloud_flow_connection_usage OFFSET 0) s
 GROUP BY 1;
-- the same shapes when the scan sends the parameter
WITH x AS MATERIALIZED (SELECT * FROM usage.cloud_flow_connection_usage WHERE tenant IN ('contoso', 'fabrikam'))
SELECT count(*) = :contoso AS cte_ok FROM x WHERE tenant = 'contoso';
SELECT count(*) FILTER (WHERE tenant = 'contoso') = :contoso AS filter_ok
  FROM usage.cloud_flow_connection_usage WHERE tenant IN ('contoso', 'fabrikam');
SELECT count(*) = (SELECT count(*) FROM usage.cloud_flow_connection_usage WHERE tenant IN ('contoso', 'fabrikam')) AS join_ok
  FROM (SELECT * FROM usage.cloud_flow_connection_usage WHERE tenant IN ('contoso', 'fabrikam') OFFSET 0) s
  JOIN t3_tn ON s.tenant = t3_tn.name;
-- a bound table sends it too
CREATE FOREIGN TABLE t3_bound (flow_id text, tenant text)
  SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage', tenant 'contoso');
SELECT count(*) = :contoso AS bound_ok FROM (SELECT * FROM t3_bound OFFSET 0) s WHERE tenant = 'contoso';

DROP FOREIGN TABLE t3_ci, t3_char, t3_coll, t3_ci_echo, t3_char_echo, t3_uuid, t3_bound;
DROP TABLE t3_tenants, t3_periods, t3_tn, t3_flows;
DROP COLLATION t3_nocase;
