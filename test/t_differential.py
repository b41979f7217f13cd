#!/usr/bin/env python3
"""Differential testing: every generated query runs twice, over the foreign
tables and over local tables that hold exactly the rows the mock returns,
and the two answers must agree.

The mock's data is a pure function of the request (test/MOCK.md), so the
local copy is computed by calling the mock's own vendor functions
(mockapi.uipath.usage, mockapi.avepoint.cloudflows, mockapi.avepoint_family
for the runs; no sockets) for every
parameter value the grammar below can use, and stored as the FDW shows it:
for each echo column (SPEC §3) one copy of the rows per value the request
carried, with the column holding that value, plus, for an echo column that
reads a default when the request does not carry it (avepoint tenant and
daily folder_key: NULL; aggregate_by_ownership: false), the copy of the
request without it.  Two schemas: f (foreign tables) and l (their local
copies); the helper tables with NULLs and duplicates (tenants, codes,
periods, flow_owner, flow_tenants, folders) are in public, shared.

A query is written once with a placeholder per relation; the foreign text
names f.T; the local text names l.T, or, where the query does not test an
echo column of that relation (a WHERE/ON/IN/EXISTS test anywhere in the
query, also above a fence; projecting the column or using it in an
aggregate's FILTER is not a test), a subquery of l.T restricted to the copy
of the request that does not carry it (e.g. tenant IS NULL).  A test of an
echo column that the FDW cannot send must be refused (SPEC §3); the local
side then answers as if the value had been sent, so a foreign answer that
neither is refused nor matches that is a difference.

Both texts are printed for every failure.  The grammar (families below)
covers: filters with =, IN lists with NULL, = ANY(array), OR of equalities,
row IN ((a, b), ...), IS NOT DISTINCT FROM, and tests the FDW cannot send
(<>, LIKE, IS NULL, functions, mixed ORs); joins in every direction (inner,
left, right, full; semi via EXISTS / IN; anti via NOT EXISTS / NOT IN) with
local tables holding NULLs and duplicates, on response and on echo columns;
two-relation parameter supply (tenants CROSS JOIN codes JOIN folder ON both);
fences (WITH ... AS MATERIALIZED, OFFSET 0, a window subquery) with tests
above them; aggregates with FILTER and HAVING; LIMIT without ORDER BY (compared by
count); generic plans (PREPARE, SET
plan_cache_mode = force_generic_plan, EXECUTE); partitioned tables whose
partitions are per-tenant foreign tables (table option bindings) and a
UNION ALL view of per-tenant tables; citext and char(n) columns (flow_id
citext / char(40); tenant citext; consumable_code char(4)).  Values are all
well-formed (no bad GUIDs: those error on purpose on the foreign side only,
which regress suites test), all dates lie in the copied window, and
nothing can error on one side only by evaluation order.

Declared endpoints (SPEC §3b).  Each cloud-flow relation has a declared
twin (f.dflows, f.dflows_ci, f.dflows_ch, f.dflows_contoso/_fabrikam, the
partitioned f.dflows_p and the view f.dflows_u: path, rows, param options
instead of endpoint) with the same local copy (l.flows, ...): the families
decl_* are the families of the cloud-flow shapes (filters, joins, semi/anti,
fences, aggregates, generic plans) with every cloud-flow relation replaced
by its twin and the same expectations.  The family runs reads declared
cloud-flow runs ({flowId} in the path, fromDate/toDate from a range column)
through three declarations: run_start timestamptz, run_start timestamp
(the API's UTC wall-clock time) and run_day date (param_format 'date': the
UTC date), and the first two again with param_format 'date' (runs_tzd,
runs_tsd: same copies), each under a session time zone (whole, half, three-quarter hour
offsets, +14, -11, three DST changes), with range tests of every kind (>=,
>, <=, <, BETWEEN [SYMMETRIC], =, IN, = ANY, redundant bounds, ORs) written
as date, timestamp and timestamptz literals, with offsets, and expressions,
now and then a lower bound far below the runs (-infinity, epoch, year 1);
flow_id by = / IN / ... or from flow_owner (joins in every direction, the
range in ON or WHERE, semi/anti joins), the range from a join (periods),
and generic plans executed under two time zones.  The copies (l.runs,
l.runs_ts, l.runs_day) hold every run up to RUN_COPY_TO and every range
the grammar writes is bounded above inside RUN_FIRST .. RUN_LAST, so a
range cannot reach runs the copies lack.

Outcome of one query (foreign F, local L):
  - refused: F fails with SQLSTATE class HV and a HINT, and EXPLAIN of the
    query fails the same way (a plan-time refusal, SPEC §3/§4);
  - equal: both succeed with the same rows (a sorted multiset; a list when
    the query has an ORDER BY over all its output columns), or both fail
    with the same SQLSTATE;
  - failure: anything else -- different rows, F fails otherwise (an
    execution-time HV000 is an HTTP error of a request the FDW should not
    have sent, XX000 is an internal error, a lost connection a crash), or L
    fails and F does not, or both fail differently.
Refused queries whose every test the SPEC says the FDW sends (so that it
should have answered) are counted and listed by message, for information.

Checks: first that the FDW answers every plain request of the domain (= on
each parameter) with exactly the rows of its local copy (so that a
difference below is the query's, not the copy's); then one per family (no
failure among its queries) and one overall.  A failure prints the family, query
number and seed (rerun one with DIFF_ONLY=family#n), both SQL texts and both
results (truncated), and all failures go to
$USAGE_FDW_TEST_DIR/t_differential.failures (kept by make test on failure).

Seeds are fixed (DIFF_SEED, default 20260113): query n of family F is
generated by random.Random("F#n#SEED"), so the queries are the same in every
run and each one is reproducible alone.  DIFF_SCALE (default 1.0) scales
the per-family counts; DIFF_BUDGET (s, default 150) stops early -- with a
printed note -- on a machine far slower than expected.

DIFF_QUERIES=FILE runs hand-written queries instead of the grammar (family
"file"), one a line, a relation written @table@ or, when the query tests
echo columns of it, @table:col,col@ (e.g. "SELECT * FROM @flows:tenant@ u
WHERE u.tenant = 'contoso'"; a declared twin by its own name, @dflows:tenant@,
reads its built-in's copy, @runs_tzd@ l.runs'): to reproduce and minimise a difference.

Environment (scripts/test.sh): PGHOST, PGPORT, PGUSER, MOCK_URL.  Uses the
shared mock (reset at the start and the end); talks to the server with
test/pgwire.py (one connection per side, no psql per query).
"""

import json
import os
import random
import sys
import time
from datetime import date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from fdwtest import check, database, main, mock, require  # noqa: E402
from mockapi import avepoint, avepoint_family, uipath  # noqa: E402
from mockapi.common import DEFAULT_ORG_ID, Request, json_bytes  # noqa: E402
from mockapi.datasets import TestDataset  # noqa: E402
import pgwire  # noqa: E402

DB = "usage_fdw_t_differential"
SEED = int(os.environ.get("DIFF_SEED", "20260113"))
SCALE = float(os.environ.get("DIFF_SCALE", "1.0"))
BUDGET = float(os.environ.get("DIFF_BUDGET", "150"))
ONLY = os.environ.get("DIFF_ONLY")
QUERY_FILE = os.environ.get("DIFF_QUERIES")
SHOW_PER_FAMILY = 3            # failures printed in full per family (all go to the file)

# --- the parameter domain (every value the grammar can send) ---------------

T2 = "22222222-2222-2222-2222-222222222222"
T3 = "33333333-3333-3333-3333-333333333333"
T4 = "44444444-4444-4444-4444-444444444444"      # unknown to the mock: no rows
UI_TENANTS = [T2, T3, T4]
CODES = ["RU", "AIU", "PLTU"]
STARTS = ["2024-01-01", "2024-02-01"]
ENDS = ["2024-01-03", "2024-02-01", "2024-03-01"]
AV_TENANTS = ["contoso", "fabrikam", "other"]
AV_ROWS = 10
FK = ["aaaaaaaa-0000-0000-0000-000000000001", "aaaaaaaa-0000-0000-0000-000000000002",
      "aaaaaaaa-0000-0000-0000-000000000003", "bbbbbbbb-0000-0000-0000-000000000002",
      "AAAAAAAA-0000-0000-0000-000000000002", "cccccccc-0000-0000-0000-000000000009"]
DAY0 = datetime(2024, 1, 1, tzinfo=timezone.utc)
NDAYS = 6                        # daily rows are copied for 2024-01-01 .. 2024-01-06
DAYS = [(DAY0 + timedelta(days=i)).strftime("%Y-%m-%d") for i in range(NDAYS)]


# declared cloud-flow runs (SPEC §3b; test/MOCK.md "Power Platform family": flow j runs
# daily at j hours UTC from 2024-01-01 on).  Every run_start range the grammar
# writes lies in RUN_FIRST .. RUN_LAST (UTC days, +-14 h for a literal read in
# a session time zone or written with an offset), and its upper end is always
# bounded; the copies hold every run up to RUN_COPY_TO (none exist before
# 2024-01-01), so a range cannot reach rows the copies lack.
RUN_FLOWS = ["flow-0001", "flow-0002", "flow-0003", "flow-0004", "flow-0005"]     # the flows with runs
RUN_ODD = ["flow-0009", "FLOW-0002", "flow-0003 "]                              # no runs
RUN_FIRST = date(2023, 12, 20)
RUN_LAST = date(2024, 4, 10)
RUN_COPY_TO = "2024-04-12"
RUNS_PATH = "/smp/powerplatform/powerautomate/cloudflows/%s/runs"
# session time zones: whole, half and three-quarter hours on both sides of UTC, and DST changes in
# the window (New York 2024-03-10, Berlin 2024-03-31, Chatham 2024-04-07), whose instants run_instant
# favours
RUN_TZS = ["UTC", "Asia/Tokyo", "America/New_York", "Asia/Kathmandu", "Pacific/Chatham", "America/St_Johns",
           "Pacific/Pago_Pago", "Pacific/Kiritimati", "Europe/Berlin"]


def ms(day):
    return int(datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=timezone.utc).timestamp() * 1000)


def lit(v):
    if v is None:
        return "NULL"
    if isinstance(v, bool):
        return "true" if v else "false"
    return "'" + str(v).replace("'", "''") + "'"


def call_uipath(endpoint, body):
    """The mock's answer (items, values as the JSON text the FDW reads)."""
    r = uipath.usage(Request("POST", "/lease_/api/usage/%s/tenants/%s" % (DEFAULT_ORG_ID, endpoint),
                             headers={"Content-Type": "application/json"},
                             body=json.dumps(body).encode()), DEFAULT_ORG_ID, endpoint, DEFAULT_ORG_ID, DATASET)
    assert r.status == 200, (endpoint, body, r.status, r.payload)
    return json.loads(json_bytes(r.payload), parse_float=str, parse_int=str)["items"]


def call_avepoint(tenant):
    query = [("top", "1000")] + ([("tenant", tenant)] if tenant is not None else [])
    r = avepoint.cloudflows(Request("GET", avepoint.CLOUDFLOWS_PATH, query), DATASET,
                            {"avepoint_rows": AV_ROWS, "nextlink_style": "empty"}, "http://mock")
    assert r.status == 200 and not r.payload.get("nextLink"), (tenant, r.status)
    return r.payload["connectionUsageCloudFlows"]


def call_runs(flow, tenant):
    """The runs of one flow up to RUN_COPY_TO, as the mock answers them."""
    query = [("toDate", RUN_COPY_TO), ("top", "1000")] + ([("tenant", tenant)] if tenant is not None else [])
    r = avepoint_family.endpoint(Request("GET", RUNS_PATH % flow, query), "runs", flow, DATASET,
                                 {"nextlink_style": "empty"}, "http://mock")
    assert r.status == 200 and not r.payload.get("nextLink"), (flow, tenant, r.status)
    return r.payload["runs"]


DATASET = TestDataset()


def local_rows():
    """INSERTs of the local copies (schema l)."""
    out = []
    # avepoint: the unfiltered request (tenant NULL) and one copy per tenant
    flows = []
    for t in [None] + AV_TENANTS:
        for it in call_avepoint(t):
            flows.append("(%s, %s, %s, %s)" % (lit(it["flowId"]), lit(it["environmentId"]),
                                                lit(it["connectionId"]), lit(t)))
    for tbl in ("flows", "flows_ci", "flows_ch"):
        out.append("INSERT INTO l.%s VALUES %s;" % (tbl, ", ".join(flows)))
    for t in ("contoso", "fabrikam"):
        rows = ", ".join("(%s, %s, %s, %s)" % (lit(it["flowId"]), lit(it["environmentId"]),
                                               lit(it["connectionId"]), lit(t)) for it in call_avepoint(t))
        out.append("INSERT INTO l.flows_%s VALUES %s;" % (t, rows))
        out.append("INSERT INTO l.flows_p VALUES %s;" % rows)
    # consumption by folder: every tenant x start x end x code x aggregate
    folder, folder_p = [], []
    for tid in UI_TENANTS:
        for s in STARTS:
            for e in ENDS:
                if s > e:
                    continue            # SPEC §4: not sent, no rows
                for code in CODES:
                    for agg in (False, True):
                        body = {"tenantId": tid, "startDate": ms(s), "endDate": ms(e),
                                "consumableCode": code}
                        if agg:
                            body["aggregateByOwnership"] = True
                        for it in call_uipath("consumption-by-folder", body):
                            row = "(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)" % (
                                lit(tid), lit(s + " 00:00+00"), lit(e + " 00:00+00"), lit(code), lit(agg),
                                lit(it["folderKey"]), lit(it["folderName"]), lit(it["parentFolderKey"]),
                                it["consumedBySelf"], it["processCountSelf"])
                            folder.append(row)
                            if tid in (T2, T3):
                                folder_p.append(row)
    out.append("INSERT INTO l.folder VALUES %s;" % ", ".join(folder))
    out.append("INSERT INTO l.folder_ch VALUES %s;" % ", ".join(folder))
    out.append("INSERT INTO l.folder_p VALUES %s;" % ", ".join(folder_p))
    # daily: tenant x code x aggregate x folder key (or none), days of the window
    daily = []
    for tid in UI_TENANTS:
        for code in CODES:
            for agg in (False, True):
                for fk in [None] + FK:
                    body = {"tenantId": tid, "consumableCode": code, "startDate": ms(DAYS[0]),
                            "endDate": ms(DAYS[0]) + NDAYS * 86400000}
                    if agg:
                        body["aggregateByOwnership"] = True
                    if fk is not None:
                        body["folderKeys"] = [fk]
                    for it in call_uipath("daily-consumption-by-service", body):
                        daily.append("(%s, %s, %s, %s, %s, %s, %s)" % (
                            lit(tid), lit(code), lit(agg), lit(fk), lit(it["date"]), lit(it["service"]),
                            it["consumedAmount"]))
    out.append("INSERT INTO l.daily VALUES %s;" % ", ".join(daily))
    # declared runs: per flow, the request without tenant (NULL) and one per tenant; as the FDW reads
    # them: timestamptz the instant, timestamp the UTC wall-clock time, date the UTC date
    runs, runs_ts, runs_day = [], [], []
    for t in [None] + AV_TENANTS:
        for flow in RUN_FLOWS + RUN_ODD:
            for it in call_runs(flow, t):
                st, en = it["startTime"], it["endTime"]
                assert st.endswith("Z") and en.endswith("Z"), it
                tail = (lit(it["duration"]), lit(it["state"]), lit(t))
                runs.append("(%s, %s, %s, %s, %s, %s, %s)" % ((lit(flow), lit(it["id"]), lit(st), lit(en)) + tail))
                runs_ts.append("(%s, %s, %s, %s, %s, %s, %s)" % (
                    (lit(flow), lit(it["id"]), lit(st[:-1]), lit(en[:-1])) + tail))
                runs_day.append("(%s, %s, %s, %s, %s, %s)" % ((lit(flow), lit(it["id"]), lit(st[:10])) + tail))
    out.append("INSERT INTO l.runs VALUES %s;" % ", ".join(runs))
    out.append("INSERT INTO l.runs_ts VALUES %s;" % ", ".join(runs_ts))
    out.append("INSERT INTO l.runs_day VALUES %s;" % ", ".join(runs_day))
    return "\n".join(out)


FLOW_COLS = "flow_id %s, environment_id text, connection_id text, tenant %s"
# the cloud-flow endpoint declared in the table's options (SPEC §3b): the built-in's twin
DFLOW_COLS = ("flow_id %s OPTIONS (param 'flowId', json_key 'flowId'), environment_id text, connection_id text,"
              " tenant %s OPTIONS (param 'tenant')")
DFLOW_OPTS = "path '/smp/powerplatform/connectionusage/cloudflows', rows '/connectionUsageCloudFlows'"
# cloud-flow runs, declared with a timestamptz, a timestamp and a date (param_format 'date') range column
RUN_RANGE = "OPTIONS (json_key 'startTime', param_from 'fromDate', param_to 'toDate'%s)"
RUN_COLS = ("flow_id text%s, run_id text%s, %s %s%s, run_end %s%s, duration numeric, state text, tenant text%s")
RUNS_COLS = RUN_COLS % (" OPTIONS (param 'flowId')", " OPTIONS (json_key 'id')", "run_start", "timestamptz",
                        " " + RUN_RANGE % "", "timestamptz", " OPTIONS (json_key 'endTime')",
                        " OPTIONS (param 'tenant')")
RUNS_TS_COLS = RUNS_COLS.replace("timestamptz", "timestamp")
RUNS_DAY_COLS = ("flow_id text OPTIONS (param 'flowId'), run_id text OPTIONS (json_key 'id'), run_day date "
                 + RUN_RANGE % ", param_format 'date'"
                 + ", duration numeric, state text, tenant text OPTIONS (param 'tenant')")
RUN_OPTS = "path '/smp/powerplatform/powerautomate/cloudflows/{flowId}/runs', rows '/runs'"
FOLDER_COLS = ("tenant_id text, start_date timestamptz, end_date timestamptz, consumable_code %s,"
               " aggregate_by_ownership boolean, folder_key text, folder_name text,"
               " parent_folder_key text, consumed_by_self numeric, process_count_self bigint")
DAILY_COLS = ("tenant_id text, consumable_code text, aggregate_by_ownership boolean, folder_key text,"
              " date date, service text, consumed_amount numeric")

SETUP = r"""
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE EXTENSION citext;
CREATE EXTENSION usage_fdw;
CREATE SERVER uipath FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'uipath', base_url :'mock_url', organization_id '%(org)s', max_retries '1');
CREATE SERVER avepoint FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'avepoint', base_url :'mock_url', page_size '4', max_retries '1');
CREATE USER MAPPING FOR CURRENT_USER SERVER uipath OPTIONS (access_token 'test-token');
CREATE USER MAPPING FOR CURRENT_USER SERVER avepoint OPTIONS (access_token 'test-token');
CREATE SCHEMA f;
CREATE SCHEMA l;

-- foreign side
CREATE FOREIGN TABLE f.flows (%(flow_text)s) SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage');
CREATE FOREIGN TABLE f.flows_ci (%(flow_ci)s) SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage');
CREATE FOREIGN TABLE f.flows_ch (%(flow_ch)s) SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage');
CREATE FOREIGN TABLE f.flows_contoso (%(flow_text)s)
  SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage', tenant 'contoso');
CREATE FOREIGN TABLE f.flows_fabrikam (%(flow_text)s)
  SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage', tenant 'fabrikam');
CREATE VIEW f.flows_u AS SELECT * FROM f.flows_contoso UNION ALL SELECT * FROM f.flows_fabrikam;
CREATE TABLE f.flows_p (%(flow_text)s) PARTITION BY LIST (tenant);
CREATE FOREIGN TABLE f.flows_p_contoso PARTITION OF f.flows_p FOR VALUES IN ('contoso')
  SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage', tenant 'contoso');
CREATE FOREIGN TABLE f.flows_p_fabrikam PARTITION OF f.flows_p FOR VALUES IN ('fabrikam')
  SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage', tenant 'fabrikam');
CREATE FOREIGN TABLE f.folder (%(folder_text)s) SERVER uipath OPTIONS (endpoint 'consumption_by_folder');
CREATE FOREIGN TABLE f.folder_ch (%(folder_ch)s) SERVER uipath OPTIONS (endpoint 'consumption_by_folder');
CREATE TABLE f.folder_p (%(folder_text)s) PARTITION BY LIST (tenant_id);
CREATE FOREIGN TABLE f.folder_p_2 PARTITION OF f.folder_p FOR VALUES IN ('%(t2)s')
  SERVER uipath OPTIONS (endpoint 'consumption_by_folder', tenant_id '%(t2)s');
CREATE FOREIGN TABLE f.folder_p_3 PARTITION OF f.folder_p FOR VALUES IN ('%(t3)s')
  SERVER uipath OPTIONS (endpoint 'consumption_by_folder', tenant_id '%(t3)s');
CREATE FOREIGN TABLE f.daily (%(daily)s) SERVER uipath OPTIONS (endpoint 'daily_consumption_by_service');

-- declared twins of the cloud-flow tables (path, rows, param: SPEC §3b); their
-- local copies are the built-in tables' (l.flows, ...)
CREATE FOREIGN TABLE f.dflows (%(dflow_text)s) SERVER avepoint OPTIONS (%(dopts)s);
CREATE FOREIGN TABLE f.dflows_ci (%(dflow_ci)s) SERVER avepoint OPTIONS (%(dopts)s);
CREATE FOREIGN TABLE f.dflows_ch (%(dflow_ch)s) SERVER avepoint OPTIONS (%(dopts)s);
CREATE FOREIGN TABLE f.dflows_contoso (%(dflow_text)s) SERVER avepoint OPTIONS (%(dopts)s, tenant 'contoso');
CREATE FOREIGN TABLE f.dflows_fabrikam (%(dflow_text)s) SERVER avepoint OPTIONS (%(dopts)s, tenant 'fabrikam');
CREATE VIEW f.dflows_u AS SELECT * FROM f.dflows_contoso UNION ALL SELECT * FROM f.dflows_fabrikam;
CREATE TABLE f.dflows_p (%(flow_text)s) PARTITION BY LIST (tenant);
CREATE FOREIGN TABLE f.dflows_p_contoso (%(dflow_text)s) SERVER avepoint OPTIONS (%(dopts)s, tenant 'contoso');
CREATE FOREIGN TABLE f.dflows_p_fabrikam (%(dflow_text)s) SERVER avepoint OPTIONS (%(dopts)s, tenant 'fabrikam');
ALTER TABLE f.dflows_p ATTACH PARTITION f.dflows_p_contoso FOR VALUES IN ('contoso');
ALTER TABLE f.dflows_p ATTACH PARTITION f.dflows_p_fabrikam FOR VALUES IN ('fabrikam');
-- declared cloud-flow runs (a path parameter, a range column); pages of 10, 25, 60 runs
CREATE FOREIGN TABLE f.runs (%(runs)s) SERVER avepoint OPTIONS (%(ropts)s, page_size '10');
CREATE FOREIGN TABLE f.runs_ts (%(runs_ts)s) SERVER avepoint OPTIONS (%(ropts)s, page_size '25');
CREATE FOREIGN TABLE f.runs_day (%(runs_day)s) SERVER avepoint OPTIONS (%(ropts)s, page_size '60');
-- timestamptz and timestamp ranges sent as plain dates (param_format 'date'): copies l.runs, l.runs_ts
CREATE FOREIGN TABLE f.runs_tzd (%(runs_tzd)s) SERVER avepoint OPTIONS (%(ropts)s, page_size '30');
CREATE FOREIGN TABLE f.runs_tsd (%(runs_tsd)s) SERVER avepoint OPTIONS (%(ropts)s, page_size '30');

-- local side: the same shapes, filled below
CREATE TABLE l.flows (%(flow_text)s);
CREATE TABLE l.flows_ci (%(flow_ci)s);
CREATE TABLE l.flows_ch (%(flow_ch)s);
CREATE TABLE l.flows_contoso (%(flow_text)s);
CREATE TABLE l.flows_fabrikam (%(flow_text)s);
CREATE VIEW l.flows_u AS SELECT * FROM l.flows_contoso UNION ALL SELECT * FROM l.flows_fabrikam;
CREATE TABLE l.flows_p (%(flow_text)s);
CREATE TABLE l.folder (%(folder_text)s);
CREATE TABLE l.folder_ch (%(folder_ch)s);
CREATE TABLE l.folder_p (%(folder_text)s);
CREATE TABLE l.daily (%(daily)s);
CREATE TABLE l.runs (%(l_runs)s);
CREATE TABLE l.runs_ts (%(l_runs_ts)s);
CREATE TABLE l.runs_day (%(l_runs_day)s);

-- helper tables (both sides), with NULLs and duplicates; every value is in
-- the domain the local copies cover
CREATE TABLE tenants (id text, name text);
INSERT INTO tenants VALUES ('%(t2)s', 'prod'), ('%(t3)s', 'staging'), ('%(t2)s', 'prod again'),
  ('%(t4)s', 'unknown'), (NULL, 'nobody');
CREATE TABLE codes (code text, price numeric);
INSERT INTO codes VALUES ('RU', 1.5), ('AIU', 0.25), ('RU', 2), (NULL, 0), ('PLTU', NULL);
CREATE TABLE periods (start_date timestamptz, end_date timestamptz, label text);
INSERT INTO periods VALUES ('2024-01-01 00:00+00', '2024-02-01 00:00+00', 'jan'),
  ('2024-01-01 00:00+00', '2024-02-01 00:00+00', 'jan dup'),
  ('2024-02-01 00:00+00', '2024-01-03 00:00+00', 'reversed'),
  (NULL, '2024-03-01 00:00+00', 'open'), ('2024-02-01 00:00+00', '2024-03-01 00:00+00', 'feb'),
  ('2024-01-01 00:00+00', '2024-01-03 00:00+00', 'two days');
CREATE TABLE flow_owner (flow_id text, owner text);
INSERT INTO flow_owner VALUES ('flow-0001', 'ann'), ('flow-0002', 'bob'), ('flow-0002', 'bob2'),
  ('flow-0009', 'eve'), (NULL, 'nobody'), ('flow-0005', NULL), ('FLOW-0003', 'carl');
CREATE TABLE flow_tenants (tenant text, region text);
INSERT INTO flow_tenants VALUES ('contoso', 'eu'), ('fabrikam', 'us'), ('contoso', 'us'),
  (NULL, NULL), ('other', 'eu'), ('Contoso', 'xx');
CREATE TABLE folders (folder_key text, owner text);
INSERT INTO folders VALUES ('%(fk1)s', 'ops'), ('%(fk2)s', 'fin'), ('%(fk3)s', 'fin'), ('%(fk3)s', 'fin2'),
  ('%(fkb2)s', 'dev'), (NULL, NULL), ('%(fkA2)s', 'FIN');
""" % {"org": DEFAULT_ORG_ID, "t2": T2, "t3": T3, "t4": T4,
       "flow_text": FLOW_COLS % ("text", "text"), "flow_ci": FLOW_COLS % ("citext", "citext"),
       "flow_ch": FLOW_COLS % ("char(40)", "text"),
       "dflow_text": DFLOW_COLS % ("text", "text"), "dflow_ci": DFLOW_COLS % ("citext", "citext"),
       "dflow_ch": DFLOW_COLS % ("char(40)", "text"), "dopts": DFLOW_OPTS,
       "runs": RUNS_COLS, "runs_ts": RUNS_TS_COLS, "runs_day": RUNS_DAY_COLS, "ropts": RUN_OPTS,
       "runs_tzd": RUNS_COLS.replace("'toDate')", "'toDate', param_format 'date')"),
       "runs_tsd": RUNS_TS_COLS.replace("'toDate')", "'toDate', param_format 'date')"),
       "l_runs": RUN_COLS % ("", "", "run_start", "timestamptz", "", "timestamptz", "", ""),
       "l_runs_ts": RUN_COLS % ("", "", "run_start", "timestamp", "", "timestamp", "", ""),
       "l_runs_day": "flow_id text, run_id text, run_day date, duration numeric, state text, tenant text",
       "folder_text": FOLDER_COLS % "text", "folder_ch": FOLDER_COLS % "char(4)", "daily": DAILY_COLS,
       "fk1": FK[0], "fk2": FK[1], "fk3": FK[2], "fkb2": FK[3], "fkA2": FK[4]}

# table -> {echo column: the condition that picks the copy of the request
# that does not carry it}; required echo columns (always sent, or refused)
# and bound ones need none
ECHO_DEFAULT = {
    "flows": {"tenant": "tenant IS NULL"},
    "flows_ci": {"tenant": "tenant IS NULL"},
    "flows_ch": {"tenant": "tenant IS NULL"},
    "folder": {"aggregate_by_ownership": "aggregate_by_ownership = false"},
    "folder_ch": {"aggregate_by_ownership": "aggregate_by_ownership = false"},
    "folder_p": {"aggregate_by_ownership": "aggregate_by_ownership = false"},
    "daily": {"aggregate_by_ownership": "aggregate_by_ownership = false", "folder_key": "folder_key IS NULL"},
    "runs": {"tenant": "tenant IS NULL"},
    "runs_ts": {"tenant": "tenant IS NULL"},
    "runs_day": {"tenant": "tenant IS NULL"},
}


# --- queries -----------------------------------------------------------------

class Q:
    """A generated query: template text with @0@, @1@, ... for relations;
    rels: [table, set of tested columns]; answerable: False when the SPEC
    says the FDW must refuse it; ordered: compare as lists."""

    def __init__(self):
        self.rels = []
        self.foreign = {}        # relation index -> foreign table, when not the local one's name
        self.answerable = True
        self.ordered = False
        self.pre = []            # statements run before (both sides), e.g. PREPARE
        self.post = []           # and after
        self.sql = ""
        self.compared = []       # statements of pre compared too (besides sql)

    def rel(self, table):
        self.rels.append([table, set()])
        return "@%d@" % (len(self.rels) - 1)

    def test(self, idx, col, carried=True):
        self.rels[idx][1].add(col)
        if not carried:
            self.answerable = False

    def render(self, side, text):
        for i, (table, tested) in enumerate(self.rels):
            if side == "f":
                r = "f." + self.foreign.get(i, table)
            else:
                conds = [c for col, c in sorted(ECHO_DEFAULT.get(table, {}).items()) if col not in tested]
                r = ("(SELECT * FROM l.%s WHERE %s)" % (table, " AND ".join(conds))) if conds else "l." + table
            text = text.replace("@%d@" % i, r)
        return text

    def steps(self, side):
        """[(sql, compared)]: the statements to run, and which are compared."""
        return ([(self.render(side, s), s in self.compared) for s in self.pre]
                + [(self.render(side, self.sql), True)]
                + [(self.render(side, s), False) for s in self.post])

    def texts(self, side):
        return [sql for sql, _ in self.steps(side)]

    def foreign_tables(self):
        return [self.foreign.get(i, t) for i, (t, _) in enumerate(self.rels)]


def pick(rng, seq, k=None):
    if k is None:
        return rng.choice(seq)
    return rng.sample(seq, k)


FLOW_IDS = ["flow-0001", "flow-0002", "flow-0003", "flow-0004", "flow-0005", "flow-0009"]
FLOW_ODD = ["FLOW-0002", "Flow-0003", "flow-0004 ", "flow-1"]
ENVS = ["env-01", "env-02", "env-03"]
TENANT_ODD = ["CONTOSO", "Fabrikam"]


def values(rng, pool, odd=(), n=None, odd_p=0.2):
    n = n or rng.choice([1, 2, 2, 3])
    vals = []
    for _ in range(n):
        vals.append(rng.choice(list(odd)) if odd and rng.random() < odd_p else rng.choice(pool))
    return vals


def eq_test(rng, col, vals, null_ok=True, kind=None):
    """A test of col against vals the FDW can send: =, IN, ANY, OR,
    IS NOT DISTINCT FROM.  Returns (sql, kind)."""
    kind = kind or rng.choice(["eq", "in", "any", "anylit", "or", "isnotdistinct"])
    v = vals
    if kind == "eq":
        return "%s = %s" % (col, lit(v[0])), kind
    if kind == "in":
        items = [lit(x) for x in v] + (["NULL"] if null_ok and rng.random() < 0.25 else [])
        return "%s IN (%s)" % (col, ", ".join(items)), kind
    if kind == "any":
        items = [lit(x) for x in v] + (["NULL"] if null_ok and rng.random() < 0.25 else [])
        return "%s = ANY (ARRAY[%s])" % (col, ", ".join(items)), kind
    if kind == "anylit":
        return "%s = ANY ('{%s}')" % (col, ",".join('"%s"' % x for x in v)), kind
    if kind == "or":
        return "(" + " OR ".join("%s = %s" % (col, lit(x)) for x in v) + ")", kind
    return "%s IS NOT DISTINCT FROM %s" % (col, lit(v[0])), kind


def unsendable_test(rng, col, val):
    """A test of col that no request can carry."""
    return rng.choice(["%s <> %s" % (col, lit(val)), "%s LIKE %s" % (col, lit(str(val)[:3] + "%")),
                       "%s IS NULL" % col, "%s IS NOT NULL" % col, "upper(%s) = upper(%s)" % (col, lit(val)),
                       "NOT (%s = %s)" % (col, lit(val)), "coalesce(%s, 'x') = %s" % (col, lit(val))])


FLOW_TABLES = ["flows", "flows", "flows_ci", "flows_ch", "flows_contoso", "flows_p", "flows_u"]
BOUND_TENANT = {"flows_contoso", "flows_p", "flows_u"}


def flow_where(rng, q, i, a, allow_tenant=True):
    """Conjuncts on flow relation #i (alias a)."""
    table = q.rels[i][0]
    odd_p = 0.5 if table in ("flows_ci", "flows_ch") else 0.2
    conj = []
    for _ in range(rng.choice([0, 1, 1, 2, 3])):
        what = rng.random()
        if what < 0.35:
            conj.append(eq_test(rng, a + ".flow_id", values(rng, FLOW_IDS, FLOW_ODD, odd_p=odd_p))[0])
        elif what < 0.7 and allow_tenant:
            if rng.random() < 0.8:
                s, _ = eq_test(rng, a + ".tenant", values(rng, AV_TENANTS, TENANT_ODD, odd_p=odd_p))
                q.test(i, "tenant", carried=table != "flows_ci")
            else:
                s = unsendable_test(rng, a + ".tenant", pick(rng, AV_TENANTS))
                q.test(i, "tenant", carried=table in BOUND_TENANT)
            conj.append(s)
        elif what < 0.8:
            second = "tenant" if allow_tenant and rng.random() < 0.5 else "environment_id"
            pool = AV_TENANTS if second == "tenant" else ENVS
            pairs = [(pick(rng, FLOW_IDS), pick(rng, pool)) for _ in range(rng.choice([1, 2, 3]))]
            if second == "tenant":
                q.test(i, "tenant", carried=table != "flows_ci")
            conj.append("(%s.flow_id, %s.%s) IN (%s)" % (a, a, second, ", ".join(
                "(%s, %s)" % (lit(x), lit(y)) for x, y in pairs)))
        elif what < 0.9:
            conj.append(eq_test(rng, a + ".environment_id", values(rng, ENVS))[0])
        else:
            conj.append(rng.choice(["%s.flow_id <> %s" % (a, lit(pick(rng, FLOW_IDS))),
                                    "%s.connection_id LIKE 'conn-0000%%'" % a,
                                    "%s.flow_id >= %s" % (a, lit(pick(rng, FLOW_IDS)))]))
    return conj


FLOW_OUT = ["flow_id", "environment_id", "connection_id", "tenant"]


def g_flows(rng):
    """Filters on one AvePoint relation."""
    q = Q()
    r = q.rel(pick(rng, FLOW_TABLES))
    conj = flow_where(rng, q, 0, "u")
    cols = sorted(pick(rng, FLOW_OUT, rng.randint(1, 4)), key=FLOW_OUT.index)
    sel = ", ".join("u." + c for c in cols)
    q.sql = "SELECT %s FROM %s u%s" % (sel, r, (" WHERE " + " AND ".join(conj)) if conj else "")
    x = rng.random()
    if x < 0.25:
        q.sql += " ORDER BY %s LIMIT %d" % (", ".join("%d" % (k + 1) for k in range(len(cols))), rng.randint(1, 6))
        q.ordered = True
    elif x < 0.35:                          # LIMIT without ORDER BY (paging stops early): the count
        q.sql = "SELECT count(*) FROM (%s LIMIT %d) s" % (q.sql, rng.randint(1, 7))
    return q


def date_lit(rng, day):
    """The same instant written in one of several ways."""
    return lit(rng.choice([day + " 00:00+00", day + "T00:00:00Z", day + " 01:00+01"]))


def folder_where(rng, q, i, a, skip=()):
    """Conjuncts on a consumption_by_folder relation #i: the required
    parameters (one left out now and then), aggregate tests, response filters."""
    table = q.rels[i][0]
    conj = []
    miss = pick(rng, ["tenant_id", "dates", "consumable_code"]) if rng.random() < 0.05 else None
    if table != "folder_p" and miss != "tenant_id" and "tenant_id" not in skip:
        conj.append(eq_test(rng, a + ".tenant_id", values(rng, UI_TENANTS))[0])
        q.test(i, "tenant_id")
    elif table == "folder_p" and rng.random() < 0.4:
        conj.append(eq_test(rng, a + ".tenant_id", values(rng, UI_TENANTS))[0])
        q.test(i, "tenant_id")
    if miss != "dates" and "dates" not in skip:
        if rng.random() < 0.3:
            pairs = [(pick(rng, STARTS), pick(rng, ENDS)) for _ in range(rng.choice([1, 2]))]
            conj.append("(%s.start_date, %s.end_date) IN (%s)" % (a, a, ", ".join(
                "(%s, %s)" % (date_lit(rng, s), date_lit(rng, e)) for s, e in pairs)))
        else:
            for col, pool in (("start_date", STARTS), ("end_date", ENDS)):
                vs = values(rng, pool, n=rng.choice([1, 1, 2]))
                kind = rng.choice(["eq", "in", "or", "isnotdistinct"])
                if kind == "eq" or kind == "isnotdistinct":
                    op = "=" if kind == "eq" else "IS NOT DISTINCT FROM"
                    conj.append("%s.%s %s %s" % (a, col, op, date_lit(rng, vs[0])))
                elif kind == "in":
                    conj.append("%s.%s IN (%s)" % (a, col, ", ".join(date_lit(rng, v) for v in vs)))
                else:
                    conj.append("(" + " OR ".join("%s.%s = %s" % (a, col, date_lit(rng, v)) for v in vs) + ")")
        q.test(i, "start_date")
        q.test(i, "end_date")
    if miss != "consumable_code" and "consumable_code" not in skip:
        conj.append(eq_test(rng, a + ".consumable_code", values(rng, CODES))[0])
        q.test(i, "consumable_code", carried=table != "folder_ch")
    if miss:
        q.answerable = False
    x = rng.random()
    if x < 0.3:
        conj.append(rng.choice(["%s.aggregate_by_ownership" % a, "%s.aggregate_by_ownership = true" % a,
                                "%s.aggregate_by_ownership = false" % a, "%s.aggregate_by_ownership IS TRUE" % a,
                                "%s.aggregate_by_ownership IN (true, false)" % a]))
        q.test(i, "aggregate_by_ownership")
    elif x < 0.35:
        conj.append(rng.choice(["NOT %s.aggregate_by_ownership" % a, "%s.aggregate_by_ownership IS NOT TRUE" % a]))
        q.test(i, "aggregate_by_ownership", carried=False)
    if rng.random() < 0.3:
        conj.append(rng.choice(["%s.folder_name IN ('Shared', 'HR', 'Sandbox')" % a,
                                "%s.consumed_by_self > 10" % a, "%s.parent_folder_key IS NULL" % a,
                                "%s.folder_key = %s" % (a, lit(pick(rng, FK[:4])))]))
    return conj


FOLDER_OUT = ["tenant_id", "start_date", "end_date", "consumable_code", "aggregate_by_ownership",
              "folder_key", "folder_name", "consumed_by_self", "process_count_self"]


def g_folder(rng):
    """Filters on consumption_by_folder (plain, char(4) code, partitioned by tenant)."""
    q = Q()
    r = q.rel(pick(rng, ["folder", "folder", "folder_ch", "folder_p"]))
    conj = folder_where(rng, q, 0, "u")
    cols = sorted(pick(rng, FOLDER_OUT, rng.randint(2, 5)), key=FOLDER_OUT.index)
    q.sql = "SELECT %s FROM %s u%s" % (", ".join("u." + c for c in cols), r,
                                       (" WHERE " + " AND ".join(conj)) if conj else "")
    return q


def daily_where(rng, q, i, a, skip=()):
    conj = []
    if "tenant_id" not in skip:
        conj.append(eq_test(rng, a + ".tenant_id", values(rng, UI_TENANTS))[0])
        q.test(i, "tenant_id")
    if "consumable_code" not in skip:
        conj.append(eq_test(rng, a + ".consumable_code", values(rng, CODES))[0])
        q.test(i, "consumable_code")
    lo = rng.randrange(NDAYS)
    hi = rng.randrange(lo, NDAYS)
    conj.append(rng.choice(["%s.date >= %s AND %s.date <= %s" % (a, lit(DAYS[lo]), a, lit(DAYS[hi])),
                            "%s.date BETWEEN %s AND %s" % (a, lit(DAYS[lo]), lit(DAYS[hi])),
                            "%s.date > %s AND %s.date < %s" % (a, lit(DAYS[lo]), a, lit(DAYS[hi])),
                            "%s.date = %s" % (a, lit(DAYS[hi]))]))
    if "folder_key" not in skip and rng.random() < 0.4:
        if rng.random() < 0.85:
            conj.append(eq_test(rng, a + ".folder_key", values(rng, FK))[0])
            q.test(i, "folder_key")
        else:
            conj.append(unsendable_test(rng, a + ".folder_key", pick(rng, FK)))
            q.test(i, "folder_key", carried=False)
    if rng.random() < 0.25:
        conj.append(pick(rng, ["%s.aggregate_by_ownership" % a, "%s.aggregate_by_ownership = false" % a]))
        q.test(i, "aggregate_by_ownership")
    if rng.random() < 0.3:
        conj.append(pick(rng, ["%s.service = 'Apps'" % a, "%s.consumed_amount > 20" % a]))
    return conj


def g_daily(rng):
    """Filters on daily_consumption_by_service."""
    q = Q()
    r = q.rel("daily")
    conj = daily_where(rng, q, 0, "u")
    cols = ["u.tenant_id", "u.consumable_code", "u.aggregate_by_ownership", "u.folder_key", "u.date",
            "u.service", "u.consumed_amount"]
    q.sql = "SELECT %s FROM %s u WHERE %s" % (", ".join(pick(rng, cols, rng.randint(2, 7))), r, " AND ".join(conj))
    return q


JOINS = ["JOIN", "LEFT JOIN", "RIGHT JOIN", "FULL JOIN"]


def g_join_flows(rng):
    """A local table (flow_owner, flow_tenants) joined with an AvePoint
    relation, in every direction, on flow_id and/or tenant."""
    q = Q()
    table = pick(rng, FLOW_TABLES)
    r = q.rel(table)
    jt = pick(rng, JOINS)
    local_first = rng.random() < 0.6
    on_tenant = rng.random() < 0.5
    if on_tenant:
        loc, la, key = "flow_tenants", "t", "tenant"
    else:
        loc, la, key = "flow_owner", "o", "flow_id"
    cast = "::citext" if table == "flows_ci" and rng.random() < 0.5 else ""
    on = "u.%s = %s.%s%s" % (key, la, key, cast)
    if on_tenant:
        # the join supplies the parameter only where the local side drives it
        preserved_foreign = (jt == "FULL JOIN" or (jt == "LEFT JOIN" and not local_first)
                             or (jt == "RIGHT JOIN" and local_first))
        q.test(0, "tenant", carried=table != "flows_ci" and (table in BOUND_TENANT or not preserved_foreign))
    where = flow_where(rng, q, 0, "u", allow_tenant=True) if rng.random() < 0.5 else []
    if rng.random() < 0.3:
        where.append(rng.choice(["%s.%s IS NOT NULL" % (la, key), "%s.%s IS NULL" % (la, key)]))
    first, second = ("%s %s" % (loc, la), "%s u" % r) if local_first else ("%s u" % r, "%s %s" % (loc, la))
    other = "region" if on_tenant else "owner"
    q.sql = "SELECT %s.%s, %s.%s, u.flow_id, u.connection_id, u.tenant FROM %s %s %s ON %s%s" % (
        la, key, la, other, first, jt, second, on, (" WHERE " + " AND ".join(where)) if where else "")
    return q


def g_semi_anti(rng):
    """Semi and anti joins (EXISTS, IN, NOT EXISTS, NOT IN) between a local
    table and a foreign relation, the foreign one outside or inside."""
    q = Q()
    table = pick(rng, FLOW_TABLES + ["folder"])
    r = q.rel(table)
    neg = rng.random() < 0.45
    form = pick(rng, ["exists", "in"])
    if table == "folder":
        conj = folder_where(rng, q, 0, "u", skip=("tenant_id",))
        if rng.random() < 0.5:              # the local table supplies tenant_id (semi/anti)
            q.test(0, "tenant_id", carried=not neg)
            sub = ("EXISTS (SELECT 1 FROM tenants t WHERE t.id = u.tenant_id)" if form == "exists"
                   else "u.tenant_id IN (SELECT id FROM tenants)")
            if neg:
                sub = "NOT " + sub
            q.sql = "SELECT u.tenant_id, u.folder_name, u.consumed_by_self FROM %s u WHERE %s" % (
                r, " AND ".join(conj + [sub]))
        else:                               # the foreign relation inside the subquery
            conj.append(eq_test(rng, "u.tenant_id", values(rng, UI_TENANTS))[0])
            q.test(0, "tenant_id")
            if form == "exists":
                sub = "EXISTS (SELECT 1 FROM %s u WHERE u.tenant_id = t.id AND %s)" % (r, " AND ".join(conj))
            else:
                sub = "t.id IN (SELECT u.tenant_id FROM %s u WHERE %s)" % (r, " AND ".join(conj))
            q.sql = "SELECT t.id, t.name FROM tenants t WHERE %s%s" % ("NOT " if neg else "", sub)
        return q
    key, loc, lk = pick(rng, [("flow_id", "flow_owner", "flow_id"), ("tenant", "flow_tenants", "tenant")])
    conj = flow_where(rng, q, 0, "u", allow_tenant=key != "tenant")
    if rng.random() < 0.5:                  # foreign outside: the local table may supply the key
        if key == "tenant":
            q.test(0, "tenant", carried=(table in BOUND_TENANT) or (not neg and table != "flows_ci"))
        sub = ("EXISTS (SELECT 1 FROM %s x WHERE x.%s = u.%s)" % (loc, lk, key) if form == "exists"
               else "u.%s IN (SELECT %s FROM %s)" % (key, lk, loc))
        q.sql = "SELECT u.flow_id, u.connection_id FROM %s u WHERE %s" % (
            r, " AND ".join(conj + [("NOT " if neg else "") + sub]))
    else:                                   # foreign inside
        if key == "tenant":
            q.test(0, "tenant", carried=(table in BOUND_TENANT) or table != "flows_ci")
        inner = " AND ".join(conj) if conj else "true"
        sub = ("EXISTS (SELECT 1 FROM %s u WHERE u.%s = x.%s AND %s)" % (r, key, lk, inner) if form == "exists"
               else "x.%s IN (SELECT u.%s FROM %s u WHERE %s)" % (lk, key, r, inner))
        q.sql = "SELECT x.* FROM %s x WHERE %s%s" % (loc, "NOT " if neg else "", sub)
    return q


def g_join_uipath(rng):
    """UiPath tables with their required parameters from local tables: one
    relation (tenants, codes, periods, folders) or two (tenants CROSS JOIN
    codes), with inner and outer joins."""
    q = Q()
    if rng.random() < 0.7:
        table = pick(rng, ["folder", "folder", "folder_p", "folder_ch"])
        r = q.rel(table)
        shape = pick(rng, ["tenants", "codes", "periods", "two", "two", "two_where"])
        jt = pick(rng, ["JOIN", "JOIN", "LEFT JOIN", "RIGHT JOIN", "FULL JOIN"])
        outer_ok = jt not in ("RIGHT JOIN", "FULL JOIN")
        if shape == "tenants":
            conj = folder_where(rng, q, 0, "u", skip=("tenant_id",))
            q.test(0, "tenant_id", carried=outer_ok)
            src, on = "tenants t", "u.tenant_id = t.id"
            head = "t.name, "
        elif shape == "codes":
            conj = folder_where(rng, q, 0, "u", skip=("consumable_code",))
            q.test(0, "consumable_code", carried=outer_ok and table != "folder_ch")
            src, on = "codes c", "u.consumable_code = c.code"
            head = "c.price, "
        elif shape == "periods":
            conj = folder_where(rng, q, 0, "u", skip=("dates",))
            q.test(0, "start_date", carried=outer_ok)
            q.test(0, "end_date")
            src, on = "periods p", "u.start_date = p.start_date AND u.end_date = p.end_date"
            head = "p.label, "
        else:
            conj = folder_where(rng, q, 0, "u", skip=("tenant_id", "consumable_code"))
            q.test(0, "tenant_id", carried=outer_ok)
            q.test(0, "consumable_code", carried=outer_ok and table != "folder_ch")
            src = "tenants t CROSS JOIN codes c" if shape == "two" else "tenants t, codes c"
            on = "u.tenant_id = t.id AND u.consumable_code = c.code"
            head = "t.name, c.price, "
        if shape == "two_where":
            where = conj + [on]
            q.sql = "SELECT %su.folder_name, u.consumed_by_self, u.aggregate_by_ownership FROM %s, %s u WHERE %s" % (
                head, src, r, " AND ".join(where))
            q.answerable = q.answerable and True
        else:
            if not outer_ok:
                q.answerable = False
            where = (" WHERE " + " AND ".join(conj)) if conj else ""
            if jt == "LEFT JOIN" and rng.random() < 0.5:   # the filters in ON keep the outer rows
                on = " AND ".join([on] + conj)
                where = ""
            q.sql = "SELECT %su.tenant_id, u.folder_name, u.consumed_by_self FROM %s %s %s u ON %s%s" % (
                head, "(" + src + ")" if "," in src else src, jt, r, on, where)
    else:
        r = q.rel("daily")
        shape = pick(rng, ["tenants", "two", "folders"])
        if shape == "tenants":
            conj = daily_where(rng, q, 0, "d", skip=("tenant_id",))
            q.test(0, "tenant_id")
            q.sql = "SELECT t.name, d.date, d.service, d.consumed_amount FROM tenants t JOIN %s d ON d.tenant_id = t.id WHERE %s" % (
                r, " AND ".join(conj))
        elif shape == "two":
            conj = daily_where(rng, q, 0, "d", skip=("tenant_id", "consumable_code"))
            q.test(0, "tenant_id")
            q.test(0, "consumable_code")
            q.sql = ("SELECT t.name, c.price, d.date, d.service, d.consumed_amount FROM tenants t CROSS JOIN codes c"
                     " JOIN %s d ON d.tenant_id = t.id AND d.consumable_code = c.code WHERE %s" % (r, " AND ".join(conj)))
        else:
            conj = daily_where(rng, q, 0, "d", skip=("folder_key",))
            q.test(0, "folder_key")
            jt = pick(rng, ["JOIN", "LEFT JOIN"])
            q.sql = "SELECT k.owner, d.folder_key, d.date, d.service, d.consumed_amount FROM folders k %s %s d ON d.folder_key = k.folder_key AND %s" % (
                jt, r, " AND ".join(conj))
    return q


def g_fences(rng):
    """A fence (MATERIALIZED CTE, OFFSET 0, a window subquery) over a foreign
    relation, with tests above it (on response and echo columns)."""
    q = Q()
    kind = pick(rng, ["cte", "offset", "window"])
    if rng.random() < 0.6:
        table = pick(rng, FLOW_TABLES)
        r = q.rel(table)
        inner = flow_where(rng, q, 0, "u", allow_tenant=rng.random() < 0.5)
        outer = []
        for _ in range(rng.choice([1, 1, 2])):
            if rng.random() < 0.5:
                outer.append(eq_test(rng, "x.tenant", values(rng, AV_TENANTS))[0])
                q.test(0, "tenant", carried=table in BOUND_TENANT)
            else:
                outer.append(eq_test(rng, "x.flow_id", values(rng, FLOW_IDS))[0])
        cols = "u.flow_id, u.connection_id, u.tenant"
        body_where = (" WHERE " + " AND ".join(inner)) if inner else ""
        order = "u.connection_id"
        part = pick(rng, ["u.flow_id", "u.tenant"])
    else:
        table = pick(rng, ["folder", "folder_p"])
        r = q.rel(table)
        inner = folder_where(rng, q, 0, "u")
        outer = []
        x = rng.random()
        if x < 0.5:
            outer.append(pick(rng, ["x.aggregate_by_ownership", "x.aggregate_by_ownership = false",
                                    "x.aggregate_by_ownership = true"]))
            q.test(0, "aggregate_by_ownership", carried=False)
        elif x < 0.75:
            outer.append(eq_test(rng, "x.tenant_id", values(rng, UI_TENANTS))[0])
            q.test(0, "tenant_id", carried="tenant_id" in q.rels[0][1] or table == "folder_p")
        else:
            outer.append("x.folder_name <> 'HR'")
        cols = "u.tenant_id, u.folder_key, u.folder_name, u.aggregate_by_ownership, u.consumed_by_self"
        body_where = (" WHERE " + " AND ".join(inner)) if inner else ""
        order = "u.folder_key"
        part = pick(rng, ["u.tenant_id", "u.aggregate_by_ownership"])
    if kind == "cte":
        q.sql = "WITH x AS MATERIALIZED (SELECT %s FROM %s u%s) SELECT * FROM x WHERE %s" % (
            cols, r, body_where, " AND ".join(outer))
    elif kind == "offset":
        q.sql = "SELECT * FROM (SELECT %s FROM %s u%s OFFSET 0) x WHERE %s" % (cols, r, body_where, " AND ".join(outer))
    else:
        q.sql = ("SELECT * FROM (SELECT %s, count(*) OVER (PARTITION BY %s) AS n FROM %s u%s) x WHERE %s" % (
            cols, part, r, body_where, " AND ".join(outer)))
    return q


def g_aggregates(rng):
    """GROUP BY with FILTER and HAVING over foreign relations."""
    q = Q()
    if rng.random() < 0.5:
        table = pick(rng, FLOW_TABLES)
        r = q.rel(table)
        conj = flow_where(rng, q, 0, "u")
        g = pick(rng, ["u.flow_id", "u.environment_id", "u.tenant"])
        aggs = pick(rng, ["count(*)", "count(*) FILTER (WHERE u.environment_id = 'env-01')",
                          "count(u.tenant) FILTER (WHERE u.tenant = 'contoso')",
                          "min(u.connection_id) FILTER (WHERE u.flow_id <> 'flow-0001')",
                          "string_agg(u.connection_id, ',' ORDER BY u.connection_id)",
                          "count(DISTINCT u.flow_id)"], rng.randint(1, 3))
        having = ""
        if rng.random() < 0.3:
            if g == "u.tenant":
                having = " HAVING u.tenant = %s" % lit(pick(rng, AV_TENANTS))
                q.test(0, "tenant", carried=table in BOUND_TENANT or table != "flows_ci")
            else:
                having = " HAVING count(*) > 1"
    else:
        table = pick(rng, ["folder", "folder_p", "daily"])
        r = q.rel(table)
        if table == "daily":
            conj = daily_where(rng, q, 0, "u")
            g = pick(rng, ["u.service", "u.date", "u.tenant_id", "u.folder_key"])
            aggs = pick(rng, ["sum(u.consumed_amount)", "count(*) FILTER (WHERE u.service = 'Apps')",
                              "max(u.consumed_amount) FILTER (WHERE u.date > '2024-01-02')",
                              "sum(u.consumed_amount) FILTER (WHERE u.folder_key IS NULL)"], rng.randint(1, 3))
        else:
            conj = folder_where(rng, q, 0, "u")
            g = pick(rng, ["u.tenant_id", "u.consumable_code", "u.folder_name", "u.aggregate_by_ownership"])
            aggs = pick(rng, ["sum(u.consumed_by_self)", "count(*) FILTER (WHERE u.parent_folder_key IS NULL)",
                              "sum(u.process_count_self) FILTER (WHERE u.aggregate_by_ownership)",
                              "avg(u.consumed_by_self) FILTER (WHERE u.folder_name <> 'Shared')",
                              "count(*)"], rng.randint(1, 3))
        having = " HAVING count(*) > 2" if rng.random() < 0.2 else ""
    q.sql = "SELECT %s, %s FROM %s u%s GROUP BY %s%s" % (
        g, ", ".join(aggs), r, (" WHERE " + " AND ".join(conj)) if conj else "", g, having)
    return q


def g_generic(rng):
    """PREPARE with parameters for the pushed values, a forced generic plan,
    EXECUTE (twice, with other values)."""
    q = Q()
    shape = pick(rng, ["flows", "flows_any", "folder", "folder_join", "daily"])
    if shape.startswith("flows"):
        table = pick(rng, FLOW_TABLES)
        r = q.rel(table)
        if shape == "flows":
            q.pre = ["PREPARE dq(text, text) AS SELECT u.flow_id, u.connection_id, u.tenant FROM %s u"
                     " WHERE u.tenant = $1 AND u.flow_id >= $2" % r]
            args = ["(%s, %s)" % (lit(pick(rng, AV_TENANTS)), lit(pick(rng, FLOW_IDS))) for _ in range(2)]
        else:
            q.pre = ["PREPARE dq(text[], text) AS SELECT u.flow_id, u.connection_id, u.tenant FROM %s u"
                     " WHERE u.flow_id = ANY ($1) AND u.tenant IS NOT DISTINCT FROM $2" % r]
            args = ["('{%s}', %s)" % (",".join(values(rng, FLOW_IDS, FLOW_ODD)), lit(pick(rng, AV_TENANTS)))
                    for _ in range(2)]
        q.test(0, "tenant", carried=table != "flows_ci")
    elif shape == "folder":
        table = pick(rng, ["folder", "folder_p"])
        r = q.rel(table)
        q.pre = ["PREPARE dq(text, timestamptz, timestamptz, text, boolean) AS SELECT u.tenant_id, u.start_date,"
                 " u.folder_name, u.consumed_by_self, u.aggregate_by_ownership FROM %s u WHERE u.tenant_id = $1"
                 " AND u.start_date = $2 AND u.end_date = $3 AND u.consumable_code = $4"
                 " AND u.aggregate_by_ownership = $5" % r]
        args = ["(%s, %s, %s, %s, %s)" % (lit(pick(rng, UI_TENANTS)), date_lit(rng, pick(rng, STARTS)),
                                          date_lit(rng, pick(rng, ENDS)), lit(pick(rng, CODES)),
                                          lit(rng.random() < 0.5)) for _ in range(2)]
        for c in ("tenant_id", "start_date", "end_date", "consumable_code", "aggregate_by_ownership"):
            q.test(0, c)
    elif shape == "folder_join":
        r = q.rel("folder")
        q.pre = ["PREPARE dq(timestamptz, timestamptz, text) AS SELECT t.name, u.folder_name, u.consumed_by_self"
                 " FROM tenants t JOIN %s u ON u.tenant_id = t.id WHERE u.start_date = $1 AND u.end_date = $2"
                 " AND u.consumable_code = $3" % r]
        args = ["(%s, %s, %s)" % (date_lit(rng, pick(rng, STARTS)), date_lit(rng, pick(rng, ENDS)),
                                  lit(pick(rng, CODES))) for _ in range(2)]
        for c in ("tenant_id", "start_date", "end_date", "consumable_code"):
            q.test(0, c)
    else:
        r = q.rel("daily")
        q.pre = ["PREPARE dq(text[], text, date, date) AS SELECT u.tenant_id, u.date, u.service, u.consumed_amount"
                 " FROM %s u WHERE u.tenant_id = ANY ($1) AND u.consumable_code = $2 AND u.date >= $3 AND u.date < $4" % r]
        args = []
        for _ in range(2):
            lo = rng.randrange(NDAYS)
            hi = rng.randrange(lo, NDAYS)
            args.append("('{%s}', %s, %s, %s)" % (",".join(values(rng, UI_TENANTS)), lit(pick(rng, CODES)),
                                                  lit(DAYS[lo]), lit(DAYS[hi])))
        q.test(0, "tenant_id")
        q.test(0, "consumable_code")
    q.pre += ["SET plan_cache_mode = force_generic_plan", "EXECUTE dq%s" % args[0]]
    q.compared = [q.pre[-1]]
    q.sql = "EXECUTE dq%s" % args[1]
    q.post = ["DEALLOCATE dq", "RESET plan_cache_mode"]
    return q


# --- declared cloud-flow runs: ranges on run_start / run_day ---------------------

RUN_COL = {"runs": ("run_start", "timestamptz"), "runs_ts": ("run_start", "timestamp"),
           "runs_day": ("run_day", "date")}
RUN_OUT = {"runs": ["flow_id", "run_id", "run_start", "run_end", "duration", "state", "tenant"],
           "runs_ts": ["flow_id", "run_id", "run_start", "run_end", "duration", "state", "tenant"],
           "runs_day": ["flow_id", "run_id", "run_day", "duration", "state", "tenant"]}
RUNS_DATE_FORMAT = {"runs": "runs_tzd", "runs_ts": "runs_tsd"}      # same copies, ranges sent as dates
UTC = timezone.utc
RUN_T0 = datetime(RUN_FIRST.year, RUN_FIRST.month, RUN_FIRST.day, tzinfo=UTC)
RUN_T1 = datetime(RUN_LAST.year, RUN_LAST.month, RUN_LAST.day, 23, 59, 59, tzinfo=UTC)
DST_CHANGES = [datetime(2024, 3, 10, 7, tzinfo=UTC), datetime(2024, 3, 31, 1, tzinfo=UTC),
               datetime(2024, 4, 6, 14, tzinfo=UTC)]
# lower bounds far below the first run (2024-01-01), of each type
FAR_LOW = ["'-infinity'", "'-infinity'::timestamptz", "'-infinity'::timestamp", "'-infinity'::date", "'epoch'",
           "'1970-01-01'", "'1900-01-01'::date", "'0001-01-01 00:00:00+00'", "'0999-12-31 23:00:00'::timestamp"]
OFFSETS = [0, 0, 9 * 60, -5 * 60, 5 * 60 + 45, 13 * 60 + 45, -(3 * 60 + 30), -11 * 60, 14 * 60]


def run_instant(rng):
    """A UTC instant in the window: a run's start (flow j at day + j h), just
    before or after one, a UTC midnight, or anywhere."""
    day = RUN_T0 + timedelta(days=rng.randrange((RUN_LAST - RUN_FIRST).days + 1))
    x = rng.random()
    if x < 0.1:                                         # around a DST change
        return pick(rng, DST_CHANGES) + timedelta(minutes=30 * rng.randint(-6, 6))
    if x < 0.35:
        return day + timedelta(hours=rng.randint(1, 5))
    if x < 0.55:
        d = pick(rng, [timedelta(microseconds=1), timedelta(milliseconds=1), timedelta(milliseconds=500),
                       timedelta(seconds=1), timedelta(seconds=59), timedelta(minutes=30)])
        return day + timedelta(hours=rng.randint(1, 5)) + (d if rng.random() < 0.5 else -d)
    if x < 0.7:
        return day
    return day + timedelta(seconds=rng.randrange(86400), microseconds=rng.choice([0, 0, rng.randrange(10 ** 6)]))


def fmt_wall(dt, sep=" "):
    s = dt.strftime("%Y-%m-%d" + sep + "%H:%M:%S")
    return s + (".%06d" % dt.microsecond if dt.microsecond else "")


def time_lit(rng, t, tz):
    """The instant t (UTC) written as a literal of one of the ways a user
    writes a time: with an offset (untyped or timestamptz), the session's
    wall-clock time or the UTC one (untyped or timestamp), a date (untyped or
    date: t's day there), an expression (date + interval, timestamptz -
    interval, stable ones of now() and current_date), now and then a typed
    NULL instead (no rows).  Which instant a literal means depends on its type, the
    column's and the session's time zone: only the local side knows."""
    form = rng.random()
    cast = rng.random()
    if form < 0.3:                                      # an explicit offset
        off = pick(rng, OFFSETS)
        wall = (t + timedelta(minutes=off)).replace(tzinfo=None)
        if off == 0 and rng.random() < 0.5:
            text = fmt_wall(wall, "T") + "Z"
        else:
            text = fmt_wall(wall) + "%s%02d%s" % ("+" if off >= 0 else "-", abs(off) // 60,
                                                  ":%02d" % (abs(off) % 60) if off % 60 else "")
        return lit(text) + ("" if cast < 0.5 else "::timestamptz" if cast < 0.8 else "::timestamp")
    if form < 0.65:                                     # wall-clock time, the session's or UTC
        wall = t.astimezone(ZoneInfo(tz)) if rng.random() < 0.6 else t
        text = fmt_wall(wall.replace(tzinfo=None))
        return lit(text) + ("" if cast < 0.4 else "::timestamp" if cast < 0.8 else "::timestamptz")
    if form < 0.9:                                      # a date
        wall = t.astimezone(ZoneInfo(tz)) if rng.random() < 0.5 else t
        text = wall.strftime("%Y-%m-%d")
        return (lit(text) if cast < 0.4 else lit(text) + "::date" if cast < 0.6 else "date " + lit(text)
                if cast < 0.8 else lit(text) + "::timestamptz")
    x = rng.random()
    if x < 0.05:
        return pick(rng, ["NULL::timestamptz", "NULL::timestamp", "NULL::date"])
    if x < 0.35:                                        # expressions (stable or immutable)
        return "(date %s + interval '%d minutes')" % (lit(t.strftime("%Y-%m-%d")), t.hour * 60 + t.minute)
    if x < 0.55:                                        # stable ones (now(), current_date) that land on t
        if rng.random() < 0.5:
            return "(current_date - (current_date - date %s))" % lit(t.strftime("%Y-%m-%d"))
        return "(now() - (now() - timestamptz %s))" % lit(fmt_wall(t.replace(tzinfo=None)) + "+00")
    name, d = pick(rng, [("1 microsecond", timedelta(microseconds=1)), ("1 second", timedelta(seconds=1)),
                         ("1 hour", timedelta(hours=1))])
    sign = pick(rng, ["+", "-"])
    base = t - d if sign == "+" else t + d
    return "(timestamptz %s %s interval %s)" % (lit(fmt_wall(base.replace(tzinfo=None)) + "+00"), sign, lit(name))


def run_range(rng, col, ctype, tz):
    """A test on the range column col whose every row lies in the window
    (bounded above, bounds in the window): lo/hi bounds of every kind,
    BETWEEN, =, IN, = ANY, ORs of those."""
    def later(t):
        w = pick(rng, [timedelta(0), timedelta(minutes=30), timedelta(hours=1), timedelta(hours=5),
                       timedelta(days=1), timedelta(days=2), timedelta(days=7), timedelta(days=20),
                       timedelta(days=45)]) + timedelta(seconds=rng.choice([0, 0, rng.randrange(86400)]))
        if rng.random() < 0.05:
            w = -w                                      # a contradictory range: no request, no rows
        return min(max(t + w, RUN_T0), RUN_T1)

    kind = pick(rng, ["lohi", "lohi", "lohi", "between", "between", "hi", "eq", "in", "any", "multi", "or"])
    a = run_instant(rng)
    b = later(a)
    if kind == "lohi":
        low = pick(rng, FAR_LOW) if rng.random() < 0.08 else time_lit(rng, a, tz)
        return "%s %s %s AND %s %s %s" % (col, pick(rng, [">=", ">"]), low,
                                          col, pick(rng, ["<=", "<"]), time_lit(rng, b, tz))
    if kind == "between":
        return "%s BETWEEN %s%s AND %s" % (col, "SYMMETRIC " if rng.random() < 0.1 else "",
                                           time_lit(rng, a, tz), time_lit(rng, b, tz))
    if kind == "hi":                                    # open below: the runs begin 2024-01-01
        return "%s %s %s" % (col, pick(rng, ["<=", "<"]), time_lit(rng, b, tz))
    if kind == "eq":
        return "%s = %s" % (col, time_lit(rng, a, tz))
    if kind in ("in", "any"):
        items = [time_lit(rng, run_instant(rng), tz) for _ in range(rng.randint(1, 4))]
        if rng.random() < 0.2:
            items.append("NULL")
        if kind == "in":
            return "%s IN (%s)" % (col, ", ".join(items))
        untyped = all(x == "NULL" or (x.startswith("'") and x.endswith("'")) for x in items)
        return "%s = ANY (ARRAY[%s]%s)" % (col, ", ".join(items), "::%s[]" % ctype if untyped else "")
    if kind == "multi":                                 # redundant bounds, in any order
        c = later(a)
        far = pick(rng, FAR_LOW) if rng.random() < 0.15 else time_lit(rng, run_instant(rng), tz)
        parts = ["%s >= %s" % (col, time_lit(rng, a, tz)), "%s > %s" % (col, far),
                 "%s < %s" % (col, time_lit(rng, b, tz)), "%s <= %s" % (col, time_lit(rng, c, tz))]
        rng.shuffle(parts)
        return " AND ".join(parts)
    c = run_instant(rng)
    return "(%s BETWEEN %s AND %s OR %s = %s)" % (col, time_lit(rng, a, tz), time_lit(rng, b, tz), col,
                                                   time_lit(rng, c, tz))


def run_where(rng, q, i, a, tz, flow=True):
    """Conjuncts on runs relation #i (alias a): the range, flow_id by =/IN/...
    (unless a join gives it), now and then tenant and response filters."""
    table = q.rels[i][0]
    col = "%s.%s" % (a, RUN_COL[table][0])
    conj = [run_range(rng, col, RUN_COL[table][1], tz)]
    if flow:
        conj.append(eq_test(rng, a + ".flow_id", values(rng, RUN_FLOWS, RUN_ODD))[0])
    x = rng.random()
    if x < 0.15:
        conj.append(eq_test(rng, a + ".tenant", values(rng, AV_TENANTS, TENANT_ODD))[0])
        q.test(i, "tenant")
    elif x < 0.2:
        conj.append(unsendable_test(rng, a + ".tenant", pick(rng, AV_TENANTS)))
        q.test(i, "tenant", carried=False)
    elif x < 0.25 and flow:
        pairs = [(pick(rng, RUN_FLOWS), pick(rng, AV_TENANTS)) for _ in range(rng.choice([1, 2, 3]))]
        conj.append("(%s.flow_id, %s.tenant) IN (%s)" % (a, a, ", ".join("(%s, %s)" % (lit(f), lit(t))
                                                                          for f, t in pairs)))
        q.test(i, "tenant")
    if rng.random() < 0.2:
        conj.append(pick(rng, ["%s.state = 'Failed'" % a, "%s.duration > 30" % a,
                               "%s.run_id LIKE '%%-run-202401%%'" % a, "%s.duration BETWEEN 20 AND 40" % a]))
    rng.shuffle(conj)
    return conj


def g_runs(rng):
    """Declared cloud-flow runs (timestamptz, timestamp and date range
    columns) under a session time zone: one relation filtered, joined with
    flow_owner (every direction; the range in ON or WHERE), semi/anti joins,
    the range from a join (periods), aggregates, and generic plans whose
    time zone changes between two executions."""
    q = Q()
    table = pick(rng, ["runs", "runs", "runs_ts", "runs_day"])
    col = RUN_COL[table][0]
    ctype = RUN_COL[table][1]
    r = q.rel(table)
    if table != "runs_day" and rng.random() < 0.3:     # the same column with param_format 'date'
        q.foreign[0] = RUNS_DATE_FORMAT[table]
    tz = pick(rng, RUN_TZS)
    q.pre = ["SET timezone = %s" % lit(tz)]
    shape = pick(rng, ["filter"] * 4 + ["agg", "join", "join", "semi", "periods", "generic"])
    out = RUN_OUT[table]
    if shape in ("filter", "agg"):
        conj = run_where(rng, q, 0, "r", tz)
        where = " WHERE " + " AND ".join(conj)
        if shape == "agg":
            g = pick(rng, ["r.flow_id", "r.state", "r.tenant", "r.%s::date" % col, "date_trunc('week', r.%s)" % col])
            aggs = pick(rng, ["count(*)", "sum(r.duration)", "min(r.%s)" % col, "max(r.%s)" % col,
                              "count(*) FILTER (WHERE r.state = 'Failed')", "string_agg(r.run_id, ',' ORDER BY r.run_id)"],
                        rng.randint(1, 3))
            q.sql = "SELECT %s, %s FROM %s r%s GROUP BY 1" % (g, ", ".join(aggs), r, where)
            if rng.random() < 0.2:
                q.sql += " HAVING count(*) > 2"
            return q
        cols = sorted(pick(rng, out, rng.randint(1, len(out))), key=out.index)
        q.sql = "SELECT %s FROM %s r%s" % (", ".join("r." + c for c in cols), r, where)
        x = rng.random()
        if x < 0.2:
            q.sql += " ORDER BY %s LIMIT %d" % (", ".join(str(k + 1) for k in range(len(cols))), rng.randint(1, 30))
            q.ordered = True
        elif x < 0.3:
            q.sql = "SELECT count(*) FROM (%s LIMIT %d) s" % (q.sql, rng.randint(1, 40))
        return q
    if shape == "join":
        jt = pick(rng, JOINS)
        local_first = rng.random() < 0.65
        given = rng.random() < 0.2                      # flow_id also by a constant test
        conj = run_where(rng, q, 0, "r", tz, flow=given)
        preserved_foreign = (jt == "FULL JOIN" or (jt == "LEFT JOIN" and not local_first)
                             or (jt == "RIGHT JOIN" and local_first))
        if preserved_foreign and not given:
            q.answerable = False                        # flow_id (in the path) cannot come from the join
        on = "r.flow_id = o.flow_id"
        # the tests in ON keep the outer rows (only where the runs are not preserved: a FULL JOIN keeps
        # every run whatever ON says, so its tests stay in WHERE and bound the runs)
        nullable_foreign = (jt == "LEFT JOIN" and local_first) or (jt == "RIGHT JOIN" and not local_first)
        if nullable_foreign and rng.random() < 0.5:
            on = " AND ".join([on] + conj)
            conj = []
        if rng.random() < 0.2:
            conj.append(pick(rng, ["o.owner IS NOT NULL", "o.flow_id IN ('flow-0001', 'flow-0002', 'flow-0009')"]))
        first, second = ("flow_owner o", "%s r" % r) if local_first else ("%s r" % r, "flow_owner o")
        q.sql = "SELECT o.owner, o.flow_id, r.run_id, r.%s, r.tenant FROM %s %s %s ON %s%s" % (
            col, first, jt, second, on, (" WHERE " + " AND ".join(conj)) if conj else "")
        return q
    if shape == "semi":
        neg = rng.random() < 0.35
        form = pick(rng, ["exists", "in"])
        if rng.random() < 0.5:                          # the runs outside: flow_owner may supply flow_id
            given = rng.random() < 0.2
            conj = run_where(rng, q, 0, "r", tz, flow=given)
            if neg and not given:
                q.answerable = False
            sub = ("EXISTS (SELECT 1 FROM flow_owner o WHERE o.flow_id = r.flow_id)" if form == "exists"
                   else "r.flow_id IN (SELECT flow_id FROM flow_owner)")
            q.sql = "SELECT r.flow_id, r.run_id, r.%s FROM %s r WHERE %s" % (
                col, r, " AND ".join(conj + [("NOT " if neg else "") + sub]))
        else:                                           # the runs inside
            conj = run_where(rng, q, 0, "r", tz, flow=False)
            if form == "exists":
                sub = "EXISTS (SELECT 1 FROM %s r WHERE r.flow_id = o.flow_id AND %s)" % (r, " AND ".join(conj))
            else:
                sub = "o.flow_id IN (SELECT r.flow_id FROM %s r WHERE %s)" % (r, " AND ".join(conj))
                if neg:
                    q.answerable = False                # a hashed subplan: no flow_id to send
            q.sql = "SELECT o.* FROM flow_owner o WHERE %s%s" % ("NOT " if neg else "", sub)
        return q
    if shape == "periods":                              # the range from a join: periods.end_date <= 2024-03-01
        conj = []
        lo = pick(rng, [">=", ">"])
        hi = pick(rng, ["<", "<="])
        pcol = pick(rng, ["p.start_date", "p.start_date::date", "p.start_date AT TIME ZONE 'UTC'"])
        on = "r.flow_id = o.flow_id AND r.%s %s %s AND r.%s %s p.end_date" % (col, lo, pcol, col, hi)
        if rng.random() < 0.3:
            conj.append(eq_test(rng, "r.tenant", values(rng, AV_TENANTS))[0])
            q.test(0, "tenant")
        if rng.random() < 0.7:                          # and a constant upper bound the requests carry
            conj.append("r.%s %s %s" % (col, pick(rng, ["<", "<="]), time_lit(rng, run_instant(rng), tz)))
        q.sql = ("SELECT o.owner, p.label, r.run_id, r.%s FROM flow_owner o CROSS JOIN periods p JOIN %s r ON %s%s"
                 % (col, r, on, (" WHERE " + " AND ".join(conj)) if conj else ""))
        return q
    # generic: PREPARE under one time zone, EXECUTE under it and under another
    types = [pick(rng, ["timestamptz", "timestamp", "date"]) for _ in range(2)]
    any_flow = rng.random() < 0.4
    q.pre.append("PREPARE dq(%s, %s, %s) AS SELECT r.flow_id, r.run_id, r.%s, r.duration FROM %s r"
                 " WHERE r.flow_id %s AND r.%s %s $2 AND r.%s %s $3" % (
                     "text[]" if any_flow else "text", types[0], types[1], col, r,
                     "= ANY ($1)" if any_flow else "= $1", col, pick(rng, [">=", ">"]), col, pick(rng, ["<", "<="])))
    args = []
    for _ in range(2):
        a = run_instant(rng)
        b = a + timedelta(hours=rng.choice([1, 5, 24, 72, 240]))
        b = min(b, RUN_T1)
        fl = "'{%s}'" % ",".join(values(rng, RUN_FLOWS, RUN_ODD)) if any_flow else lit(pick(rng, RUN_FLOWS))
        # the arguments as untyped literals (each read as its parameter's type)
        args.append("(%s, %s, %s)" % (fl, lit(fmt_wall(a.replace(tzinfo=None)) + "+00"),
                                      lit(fmt_wall(b.replace(tzinfo=None)) + "+00")))
    tz2 = pick(rng, RUN_TZS)
    q.pre += ["SET plan_cache_mode = force_generic_plan", "EXECUTE dq%s" % args[0], "SET timezone = %s" % lit(tz2)]
    q.compared = [q.pre[-2]]
    q.sql = "EXECUTE dq%s" % args[1]
    q.post = ["DEALLOCATE dq", "RESET plan_cache_mode"]
    return q


# the declared twin of each built-in cloud-flow relation (same rows, same local copy)
DECLARED = {"flows": "dflows", "flows_ci": "dflows_ci", "flows_ch": "dflows_ch", "flows_contoso": "dflows_contoso",
            "flows_fabrikam": "dflows_fabrikam", "flows_p": "dflows_p", "flows_u": "dflows_u"}
LOCAL_OF = {d: t for t, d in list(DECLARED.items()) + list(RUNS_DATE_FORMAT.items())}


def declared(gen):
    """Family gen over the declared twins: gen's queries with each cloud-flow
    relation replaced by its declared twin, and gen's expectations (SPEC
    §3b: a declaration works as the built-in table does); a query without a
    cloud-flow relation is drawn again (from the same generator)."""
    def g(rng):
        while True:
            q = gen(rng)
            twins = [i for i, (t, _) in enumerate(q.rels) if t in DECLARED]
            if twins:
                for i in twins:
                    q.foreign[i] = DECLARED[q.rels[i][0]]
                return q
    return g


def file_query(line):
    """A Q from a hand-written line (DIFF_QUERIES)."""
    q = Q()
    parts = line.split("@")
    out = []
    for k, part in enumerate(parts):
        if k % 2 == 0:
            out.append(part)
            continue
        table, _, cols = part.partition(":")
        out.append(q.rel(LOCAL_OF.get(table, table)))
        if table in LOCAL_OF:
            q.foreign[len(q.rels) - 1] = table
        for c in filter(None, cols.split(",")):
            q.test(len(q.rels) - 1, c)
    q.sql = "".join(out)
    q.ordered = " ORDER BY " in line.upper()
    return q


def copy_checks():
    """(foreign SQL, local SQL) of every plain request of the domain (only
    = on each parameter, as every version of the FDW sends): the copies must
    hold what the FDW returns for them."""
    out = []
    for t in ("flows", "flows_ci", "flows_ch"):
        out.append(("SELECT * FROM f.%s" % t, "SELECT * FROM l.%s WHERE tenant IS NULL" % t))
    for ten in AV_TENANTS:
        w = " WHERE tenant = %s" % lit(ten)
        out += [("SELECT * FROM f.%s%s" % (t, w), "SELECT * FROM l.%s%s" % (t, w)) for t in ("flows", "flows_ch")]
    for t in ("flows_contoso", "flows_fabrikam", "flows_p", "flows_u"):
        out.append(("SELECT * FROM f.%s" % t, "SELECT * FROM l.%s" % t))
    out += [(fsql.replace(" FROM f.flows", " FROM f.dflows"), lsql) for fsql, lsql in out]     # the declared twins
    # runs: every flow of the grammar, without tenant and with each, all the copy holds (session time zone UTC)
    upto = {"runs": "run_start <= '%s 00:00+00'" % RUN_COPY_TO, "runs_ts": "run_start <= '%s 00:00'" % RUN_COPY_TO,
            "runs_day": "run_day < '%s'" % RUN_COPY_TO}
    for t, cond in upto.items():
        for flow in RUN_FLOWS + RUN_ODD:
            w = " WHERE flow_id = %s AND %s" % (lit(flow), cond)
            out.append(("SELECT * FROM f.%s%s" % (t, w), "SELECT * FROM l.%s%s AND tenant IS NULL" % (t, w)))
            for ten in AV_TENANTS:
                w2 = w + " AND tenant = %s" % lit(ten)
                out.append(("SELECT * FROM f.%s%s" % (t, w2), "SELECT * FROM l.%s%s" % (t, w2)))
            if t in RUNS_DATE_FORMAT:
                out.append(("SELECT * FROM f.%s%s" % (RUNS_DATE_FORMAT[t], w),
                            "SELECT * FROM l.%s%s AND tenant IS NULL" % (t, w)))
    for tid in UI_TENANTS:
        for st in STARTS:
            for en in ENDS:
                for code in CODES:
                    for agg in (False, True):
                        w = (" WHERE tenant_id = %s AND start_date = %s AND end_date = %s AND consumable_code = %s"
                             " AND aggregate_by_ownership = %s" % (lit(tid), lit(st + " 00:00+00"),
                                                                  lit(en + " 00:00+00"), lit(code), lit(agg)))
                        for t in ("folder", "folder_p") if tid != T4 else ("folder",):
                            out.append(("SELECT * FROM f.%s%s" % (t, w), "SELECT * FROM l.%s%s" % (t, w)))
        for code in CODES:
            for agg in (False, True):
                for fk in [None] + FK:
                    w = (" WHERE tenant_id = %s AND consumable_code = %s AND date >= %s AND date <= %s"
                         " AND aggregate_by_ownership = %s" % (lit(tid), lit(code), lit(DAYS[0]), lit(DAYS[-1]),
                                                              lit(agg)))
                    if fk is None:
                        out.append(("SELECT * FROM f.daily" + w, "SELECT * FROM l.daily%s AND folder_key IS NULL" % w))
                    else:
                        w += " AND folder_key = %s" % lit(fk)
                        out.append(("SELECT * FROM f.daily" + w, "SELECT * FROM l.daily" + w))
    return out


FAMILIES = [                        # name, generator, queries at DIFF_SCALE 1
    ("flows", g_flows, 800),
    ("folder", g_folder, 450),
    ("daily", g_daily, 300),
    ("join_flows", g_join_flows, 600),
    ("semi_anti", g_semi_anti, 500),
    ("join_uipath", g_join_uipath, 550),
    ("fences", g_fences, 450),
    ("aggregates", g_aggregates, 350),
    ("generic", g_generic, 300),
    # the same shapes over the declared twins of the cloud-flow relations
    ("decl_flows", declared(g_flows), 400),
    ("decl_join_flows", declared(g_join_flows), 300),
    ("decl_semi_anti", declared(g_semi_anti), 250),
    ("decl_fences", declared(g_fences), 200),
    ("decl_aggregates", declared(g_aggregates), 150),
    ("decl_generic", declared(g_generic), 150),
    ("runs", g_runs, 900),
]


# --- running and comparing -----------------------------------------------------

def sort_key(row):
    return tuple((v is None, v or "") for v in row)


def fmt_result(res, limit=8):
    if res is None:
        return "(not run)"
    if res.error is not None:
        return "ERROR " + str(res.error).replace("\n", " | ")
    rows = res.rows[:limit]
    s = "%d rows%s" % (len(res.rows), ":" if rows else "")
    for r in rows:
        s += "\n  " + " | ".join("NULL" if v is None else v for v in r)
    if len(res.rows) > limit:
        s += "\n  ..."
    return s


class Side:
    def __init__(self, name):
        self.name = name
        self.conn = None
        self.connect()

    def connect(self):
        for _ in range(100):
            try:
                self.conn = pgwire.Connection(DB, params={"application_name": "t_differential_" + self.name,
                                                          "TimeZone": "UTC", "DateStyle": "ISO",
                                                          "statement_timeout": "20s"})
                return
            except (OSError, RuntimeError):
                time.sleep(0.2)
        raise RuntimeError("cannot connect to %s" % DB)

    def run(self, steps):
        """Run the steps [(sql, compared)] up to the first error; the list of
        (step index, Result) of the compared steps and of a failed one.  A
        lost connection is an error with SQLSTATE 'LOST!' (and a reconnect)."""
        out = []
        k = -1
        try:
            for k, (sql, compared) in enumerate(steps):
                res = self.conn.query(sql)
                if compared or res.error is not None:
                    out.append((k, res))
                if res.error is not None:
                    break
            if any(sql.startswith("PREPARE") for sql, _ in steps):
                self.conn.query("DEALLOCATE ALL")
                self.conn.query("RESET plan_cache_mode")
            if any(sql.startswith("SET timezone") for sql, _ in steps):
                self.conn.query("RESET timezone")
        except pgwire.ConnectionLost as e:
            res = pgwire.Result()
            res.error = pgwire.PgError({"S": "LOST", "C": "LOST!", "M": "connection lost: %s" % e})
            out.append((k, res))
            time.sleep(1)
            self.connect()
        return out


def compare(q, fside, fsteps, fres, lres):
    """(verdict, why, foreign Result, local Result) of one query."""
    for n in range(max(len(fres), len(lres))):
        fk, fr = fres[n] if n < len(fres) else (None, None)
        lk, lr = lres[n] if n < len(lres) else (None, None)
        if fr is None or lr is None:
            return "fail", "one side ran fewer statements", fr, lr
        if fr.error is not None:
            st = fr.error.sqlstate
            if st.startswith("HV") and fr.error.hint:
                # a plan-time refusal: EXPLAIN of the same statement is refused the same way
                ex = fsteps[:fk] + [("EXPLAIN (COSTS OFF) " + fsteps[fk][0], True)]
                er = fside.run(ex)[-1][1]
                if er.error is not None and er.error.sqlstate == st and er.error.message == fr.error.message:
                    return "refused", "", fr, lr
                return "fail", "HV error with a HINT at execution time, not at plan time", fr, lr
            if lr.error is not None and lr.error.sqlstate == st:
                return "equal", "both failed with %s" % st, fr, lr
            return "fail", "the foreign side failed (%s)" % st, fr, lr
        if lr.error is not None:
            return "fail", "the local side failed (%s), the foreign side did not" % lr.error.sqlstate, fr, lr
        if fk != lk:
            return "fail", "different statements", fr, lr
        if fr.columns != lr.columns:
            return "fail", "different columns", fr, lr
        a, b = fr.rows, lr.rows
        if not q.ordered:
            a, b = sorted(a, key=sort_key), sorted(b, key=sort_key)
        if a != b:
            return "fail", "different rows", fr, lr
    return "equal", "", fres[-1][1] if fres else None, lres[-1][1] if lres else None


def run_query(q, fside, lside):
    fsteps, lsteps = q.steps("f"), q.steps("l")
    return compare(q, fside, fsteps, fside.run(fsteps), lside.run(lsteps))


def first_line(s):
    return s.split("\n", 1)[0]


def test():
    t0 = time.monotonic()
    mock.reset()
    with database(DB, SETUP, setup="setup: foreign tables, local copies' tables, helper tables"):
        fside, lside = Side("foreign"), Side("local")
        ins = local_rows()
        errors = [str(r.error) for r in (lside.conn.query(stmt) for stmt in ins.split("\n")) if r.error]
        require("local copies inserted", not errors, "\n".join(errors))
        lside.conn.query("ANALYZE")
        # the copies and the foreign tables agree on every plain request of the domain
        bad, pairs = [], copy_checks()
        for fsql, lsql in pairs:
            fr, lr = fside.conn.query(fsql), lside.conn.query(lsql)
            if fr.error or lr.error or sorted(fr.rows, key=sort_key) != sorted(lr.rows, key=sort_key):
                bad.append("%s\n  foreign: %s\n  local:   %s" % (fsql, fmt_result(fr, 3), fmt_result(lr, 3)))
        check("local copies: the FDW answers the %d plain requests of the domain with their rows (%d differ)"
              % (len(pairs), len(bad)), not bad, "\n".join(bad[:5]))
        print("setup and local copies: %.1f s" % (time.monotonic() - t0), flush=True)

        fail_path = os.path.join(os.environ.get("USAGE_FDW_TEST_DIR", "/tmp"), "t_differential.failures")
        failf = open(fail_path, "w", encoding="utf-8")
        totals = {"queries": 0, "refused": 0, "equal": 0, "fail": 0, "both_failed": 0, "refused_answerable": 0}
        refusal_msgs = {}
        classes = {}            # (family, tables, why) -> [count, shortest report]
        slow = []               # the slowest queries: (seconds, id)
        both_failed = {}        # "SQLSTATE message" -> count
        t_run = time.monotonic()
        out_of_time = None
        families = FAMILIES
        if QUERY_FILE:
            with open(QUERY_FILE, encoding="utf-8") as f:
                lines = [l.strip() for l in f if l.strip() and not l.startswith("#")]
            families = [("file", lambda rng, _it=iter(lines): file_query(next(_it)), len(lines))]
        for fam, gen, n in families:
            n = n if QUERY_FILE else max(1, int(n * SCALE))
            stats = {"queries": 0, "refused": 0, "equal": 0, "fail": 0}
            shown = 0
            fails = []
            t_fam = time.monotonic()
            for i in range(n):
                qid = "%s#%d" % (fam, i)
                if ONLY and ONLY != qid:
                    continue
                if time.monotonic() - t_run > BUDGET:
                    out_of_time = qid
                    break
                q = gen(random.Random("%s#%d" % (qid, SEED)))
                t_q = time.monotonic()
                verdict, why, fr, lr = run_query(q, fside, lside)
                slow.append((time.monotonic() - t_q, qid))
                slow.sort(reverse=True)
                del slow[3:]
                stats["queries"] += 1
                stats[verdict] += 1
                if QUERY_FILE:
                    print("%s: %s %s\n  %s\n  foreign: %s\n  local:   %s" % (
                        qid, verdict, why, "\n  ".join(q.texts("f")), fmt_result(fr, 4).replace("\n", "\n    "),
                        fmt_result(lr, 4).replace("\n", "\n    ")), flush=True)
                if verdict == "equal" and why:
                    totals["both_failed"] += 1
                    k = "%s %s" % (lr.error.sqlstate, first_line(lr.error.message))
                    both_failed[k] = both_failed.get(k, 0) + 1
                if verdict == "refused":
                    key = first_line(fr.error.message)
                    refusal_msgs.setdefault(key, [0, 0, None])
                    refusal_msgs[key][0] += 1
                    if q.answerable:
                        totals["refused_answerable"] += 1
                        refusal_msgs[key][1] += 1
                        if refusal_msgs[key][2] is None or len(q.sql) < len(refusal_msgs[key][2]):
                            refusal_msgs[key][2] = "\n".join(q.texts("f"))
                if verdict == "fail":
                    report = ("FAILED %s (DIFF_SEED=%d DIFF_ONLY='%s'): %s\n  foreign SQL:\n    %s\n"
                              "  local SQL:\n    %s\n  foreign: %s\n  local:   %s\n" % (
                                  qid, SEED, qid, why, "\n    ".join(q.texts("f")), "\n    ".join(q.texts("l")),
                                  fmt_result(fr).replace("\n", "\n    "), fmt_result(lr).replace("\n", "\n    ")))
                    failf.write(report + "\n")
                    sig = (fam, ", ".join(sorted(set(q.foreign_tables()))), why)
                    c = classes.setdefault(sig, [0, None])
                    c[0] += 1
                    if c[1] is None or len(report) < len(c[1]):
                        c[1] = report
                    fails.append(report)
                    if shown < SHOW_PER_FAMILY:
                        print(report, flush=True)
                        shown += 1
            for k in stats:
                totals[k] += stats[k]
            check("family %s: %d queries, %d refused, %d equal, %d differ (%.1f s)" % (
                fam, stats["queries"], stats["refused"], stats["equal"], stats["fail"], time.monotonic() - t_fam),
                stats["fail"] == 0, "%d differences (first ones above; all in %s)" % (stats["fail"], fail_path)
                if stats["fail"] else "")
            if out_of_time:
                break
        failf.close()
        secs = time.monotonic() - t_run
        print()
        print("  differential report (DIFF_SEED=%d, DIFF_SCALE=%s)" % (SEED, SCALE))
        print("  %-34s %d in %.1f s" % ("queries", totals["queries"], secs))
        print("  %-34s %d" % ("refused (HV with HINT, plan time)", totals["refused"]))
        print("  %-34s %d (%d of them: both sides failed alike)" % ("compared equal", totals["equal"],
                                                                     totals["both_failed"]))
        for k, n in sorted(both_failed.items(), key=lambda kv: -kv[1]):
            print("    %5d both failed: %s" % (n, k))
        print("  %-34s %d" % ("differences", totals["fail"]))
        print("  %-34s %d (SPEC says these are answerable; information only)" % (
            "refused but answerable", totals["refused_answerable"]))
        for msg, (n, na, example) in sorted(refusal_msgs.items(), key=lambda kv: -kv[1][0]):
            print("    %5d refused (%d answerable): %s" % (n, na, msg))
            if example:
                print("          e.g. " + example.replace("\n", "\n               "))
        print("  %-34s %s" % ("slowest queries", ", ".join("%s %.2f s" % (i, t) for t, i in slow)))
        if classes:
            print("  differences by family, tables and kind (the shortest of each):")
            for (fam, tables, why), (n, report) in sorted(classes.items()):
                print("    %4d  %s on %s: %s" % (n, fam, tables, why))
                print("          " + report.replace("\n", "\n          "))
        if out_of_time:
            print("  NOTE: stopped at %s after DIFF_BUDGET %.0f s: the later queries were not run" % (
                out_of_time, BUDGET))
        print("  time: %.1f s in all" % (time.monotonic() - t0), flush=True)
        check("differential: %d queries, no difference (%d refused, %d equal)" % (
            totals["queries"], totals["refused"], totals["equal"]), totals["fail"] == 0,
            "%d differences; all in %s" % (totals["fail"], fail_path))
        fside.conn.close()
        lside.conn.close()


if __name__ == "__main__":
    main(test)
