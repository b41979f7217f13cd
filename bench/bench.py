#!/usr/bin/python3
"""The usage_fdw benchmark ("make bench" runs it through scripts/bench.sh).

It expects a running cluster with usage_fdw installed and the mock API
(scripts/cluster.sh start DIR), reached through PGHOST, PGPORT, PGUSER and
MOCK_URL.  It creates the database usage_bench with the extension, servers
pointing at the mock and the standard tables, runs each measurement a few
times (--runs, default 3), and prints one table of medians followed by what
each figure means and the targets.

Timings come from the server itself wherever possible: "Execution Time" and
the "HTTP ..." counters of EXPLAIN (ANALYZE, FORMAT JSON).  Peak memory is
VmHWM of the backend that ran the query (each measurement runs in a fresh
backend, read from /proc/self/status by that backend).  Cancel delays are
measured from the moment pg_cancel_backend() runs in a second session to the
moment the first session's client receives the error.

Nothing here asserts a timing: the exit status is non-zero only when a step
fails (a query errors, the mock cannot be reached, ...).

Python 3 standard library only.
"""

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.dont_write_bytecode = True        # no __pycache__ in test/
sys.path.insert(0, os.path.join(REPO, "test"))
import mockctl  # noqa: E402  (test/mockctl.py: the mock's control API)

DB = "usage_bench"
ORG = "11111111-1111-1111-1111-111111111111"
T2 = "22222222-2222-2222-2222-222222222222"
T3 = "33333333-3333-3333-3333-333333333333"
APPNAME = "usage_fdw_bench_victim"
MARK = "@@usage_fdw_bench@@"
PSQL_TIMEOUT = 180

# (a) and (c): AvePoint rows; (b) fan-out width and latency
STREAM_ROWS = 100_000
FAN_OUT = 64
FAN_LATENCY_MS = 50
PAGE_LATENCY_MS = 20
CONSUMER_SLEEP_MS = 15
NL_OUTER = 50
# (g) the natural join against the = ANY form
JOIN_KEYS = 200
JOIN_LATENCY_MS = 50
NO_BATCH = "SET usage_fdw.enable_batched_join = off;"
# (h) the same endpoint, built in and declared
DECLARED_ROWS = 1_000_000
# (i) the pages of h1 (page_size 1000), fetched by us and read by jsonb
FLOOR_PAGE_SIZE = 1000
FLOWS_PATH = "/smp/powerplatform/connectionusage/cloudflows"
FLOOR_COLUMNS = '"flowId" text, "environmentId" text, "connectionId" text'

# figures one group leaves for a later one of the same run (h1's median for i)
SAME_RUN = {}


class BenchError(Exception):
    pass


# ---------------------------------------------------------------------------
# psql and the mock
# ---------------------------------------------------------------------------

def psql(script, db=DB, timeout=PSQL_TIMEOUT):
    """Run a script with psql (unaligned, tuples only); its stdout."""
    cmd = ["psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db]
    try:
        r = subprocess.run(cmd, input=script, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise BenchError("psql timed out after %d s running:\n%s" % (timeout, script.strip()))
    if r.returncode != 0:
        raise BenchError("psql failed (exit status %d):\n%s\nwhile running:\n%s"
                         % (r.returncode, r.stderr.strip(), script.strip()))
    return r.stdout


def sql_literal(s):
    return "'" + s.replace("'", "''") + "'"


def mock_reset(**config):
    """Clear the mock's log, faults and config, then apply config."""
    mockctl.call("POST", "/_mock/reset")
    if config:
        mockctl.call("POST", "/_mock/config", config)


def mock_fault(rule):
    mockctl.call("POST", "/_mock/faults", rule)


def mock_requests(path_substr=None):
    return mockctl.api_requests(path_substr)[1]


def foreign_scans(node, acc=None):
    if acc is None:
        acc = []
    if node.get("Node Type") == "Foreign Scan":
        acc.append(node)
    for child in node.get("Plans", []):
        foreign_scans(child, acc)
    return acc


def plan_shape(node):
    """Node types of a plan, outermost first (for the notes)."""
    names = [node["Node Type"]]
    for child in node.get("Plans", []):
        names.extend(plan_shape(child))
    return names


def explain(query, pre="", foreign=True):
    """EXPLAIN (ANALYZE, FORMAT JSON) in a fresh backend, then its VmHWM.

    Returns a dict: ms (Execution Time), the HTTP counters summed over the
    foreign scans, loops of the first foreign scan, the plan, hwm_kb.
    foreign=False: a plan without a foreign scan (loops 1, counters 0).
    """
    script = "%s\nEXPLAIN (ANALYZE, FORMAT JSON) %s;\n\\echo %s\n" \
             "SELECT substring(pg_read_file('/proc/self/status') FROM 'VmHWM:\\s*([0-9]+)');\n" \
             % (pre, query, MARK)
    out = psql(script)
    if MARK not in out:
        raise BenchError("unexpected psql output:\n" + out)
    plan_text, hwm_text = out.split(MARK, 1)
    try:
        plan = json.loads(plan_text)[0]
    except (ValueError, IndexError) as e:
        raise BenchError("cannot parse EXPLAIN output (%s):\n%s" % (e, plan_text))
    scans = foreign_scans(plan["Plan"])
    if not scans and foreign:
        raise BenchError("no Foreign Scan in the plan of: " + query)
    res = {
        "ms": plan["Execution Time"],
        "plan": plan["Plan"],
        "loops": scans[0].get("Actual Loops", 1) if scans else 1,
        "hwm_kb": int(hwm_text.strip()) if hwm_text.strip().isdigit() else None,
    }
    for key, name in (("requests", "HTTP Requests"), ("retries", "HTTP Retries"),
                      ("pages", "HTTP Pages"), ("rows", "HTTP Rows"),
                      ("bytes", "HTTP Response Bytes"), ("wait_ms", "HTTP Wait Time")):
        res[key] = sum(s.get(name, 0) for s in scans)
    return res


def median_of(runs, fn):
    """Run fn() runs times; the list of its results."""
    return [fn() for _ in range(runs)]


def med(results, key):
    return statistics.median(r[key] for r in results)


# ---------------------------------------------------------------------------
# set-up
# ---------------------------------------------------------------------------

def setup(mock_url):
    exists = psql("SELECT 1 FROM pg_database WHERE datname = %s;" % sql_literal(DB), db="postgres")
    if exists.strip():
        psql("DROP DATABASE %s;" % DB, db="postgres")
    psql("CREATE DATABASE %s;" % DB, db="postgres")
    url = sql_literal(mock_url)
    tenants = [T2, T3] + ["bbbbbbbb-0000-4000-8000-%012d" % i for i in range(1, NL_OUTER - 1)]
    psql("""
CREATE EXTENSION usage_fdw;
CREATE SERVER uipath FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'uipath', base_url %(url)s, organization_id '%(org)s');
CREATE SERVER avepoint FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'avepoint', base_url %(url)s);
CREATE USER MAPPING FOR CURRENT_USER SERVER uipath OPTIONS (access_token 'test-token');
CREATE USER MAPPING FOR CURRENT_USER SERVER avepoint OPTIONS (access_token 'test-token');
CREATE SCHEMA usage;
IMPORT FOREIGN SCHEMA uipath FROM SERVER uipath INTO usage;
IMPORT FOREIGN SCHEMA avepoint FROM SERVER avepoint INTO usage;
-- (b) one table per max_concurrency (a table option overriding the server's)
CREATE FOREIGN TABLE fan_c1 (tenant_id text, start_date timestamptz, end_date timestamptz,
  consumable_code text, folder_key text)
  SERVER uipath OPTIONS (endpoint 'consumption_by_folder', max_concurrency '1');
CREATE FOREIGN TABLE fan_c8 (tenant_id text, start_date timestamptz, end_date timestamptz,
  consumable_code text, folder_key text)
  SERVER uipath OPTIONS (endpoint 'consumption_by_folder', max_concurrency '8');
CREATE FOREIGN TABLE fan_c64 (tenant_id text, start_date timestamptz, end_date timestamptz,
  consumable_code text, folder_key text)
  SERVER uipath OPTIONS (endpoint 'consumption_by_folder', max_concurrency '64');
-- (d) local tables to join with
CREATE TABLE bench_tenants (tenant_id text PRIMARY KEY);
INSERT INTO bench_tenants SELECT unnest(ARRAY[%(tenants)s]);
CREATE TABLE bench_flows (flow_id text PRIMARY KEY);
INSERT INTO bench_flows SELECT 'flow-' || lpad(g::text, 4, '0') FROM generate_series(1, %(nl)d) g;
-- (g) the keys of the natural join
CREATE TABLE bench_join_flows (id text PRIMARY KEY);
INSERT INTO bench_join_flows SELECT 'flow-' || lpad(g::text, 4, '0') FROM generate_series(1, %(jk)d) g;
ANALYZE bench_tenants, bench_flows, bench_join_flows;
-- (h) the built-in cloud-flow endpoint, declared in the table's options
CREATE FOREIGN TABLE decl_flows (
  flow_id text OPTIONS (param 'flowId', json_key 'flowId'),
  environment_id text, connection_id text,
  tenant text OPTIONS (param 'tenant'))
  SERVER avepoint OPTIONS (path '/smp/powerplatform/connectionusage/cloudflows',
                           rows '/connectionUsageCloudFlows');
""" % {"url": url, "org": ORG, "nl": NL_OUTER, "jk": JOIN_KEYS,
       "tenants": ", ".join(sql_literal(t) for t in tenants)})


# ---------------------------------------------------------------------------
# the measurements; each returns a list of table rows (id, what, value, note)
# ---------------------------------------------------------------------------

def fmt_s(ms):
    return "%.3f s" % (ms / 1000.0) if ms >= 1000 else "%.1f ms" % ms


def fmt_mb(kb):
    return "n/a" if kb is None else "%.1f MB" % (kb / 1024.0)


def bench_stream(runs):
    rows = []
    q = "SELECT count(*) FROM usage.cloud_flow_connection_usage"

    # idle reference: a backend that ran a 2-row scan
    mock_reset(avepoint_rows=STREAM_ROWS)
    ref = explain(q + " WHERE flow_id = 'flow-0001'")

    def run(latency, query):
        mock_reset(avepoint_rows=STREAM_ROWS, latency_ms=latency)
        r = explain(query)
        if r["rows"] != STREAM_ROWS:
            raise BenchError("expected %d rows, got %d" % (STREAM_ROWS, r["rows"]))
        return r

    r0 = median_of(runs, lambda: run(0, q))
    t0 = med(r0, "ms")
    pages = med(r0, "pages")
    rows.append(("a1", "stream {:,} AvePoint rows, page_size 1000, latency 0 ms".format(STREAM_ROWS),
                 fmt_s(t0),
                 "{:,.0f} rows/s; %d requests; HTTP wait %s; peak RSS %s (after a 2-row scan: %s)"
                 .format(STREAM_ROWS / (t0 / 1000.0)) % (pages, fmt_s(med(r0, "wait_ms")),
                    fmt_mb(med(r0, "hwm_kb")), fmt_mb(ref["hwm_kb"]))))

    r20 = median_of(runs, lambda: run(PAGE_LATENCY_MS, q))
    t20 = med(r20, "ms")
    rows.append(("a2", "same, latency %d ms per page" % PAGE_LATENCY_MS, fmt_s(t20),
                 "{:,.0f} rows/s; a1 + %d pages x %d ms = %s; peak RSS %s"
                 .format(STREAM_ROWS / (t20 / 1000.0)) % (pages, PAGE_LATENCY_MS,
                    fmt_s(t0 + pages * PAGE_LATENCY_MS), fmt_mb(med(r20, "hwm_kb")))))

    # a consumer that spends CONSUMER_SLEEP_MS on the last row of every page
    slow = (q + " WHERE CASE WHEN connection_id LIKE '%%000' THEN pg_sleep(%g) IS NOT NULL"
            " ELSE true END" % (CONSUMER_SLEEP_MS / 1000.0))
    rs = median_of(runs, lambda: run(PAGE_LATENCY_MS, slow))
    ts = med(rs, "ms")
    consumer_ms = pages * CONSUMER_SLEEP_MS
    hidden = min(consumer_ms, max(0.0, t20 + consumer_ms - ts))
    rows.append(("a3", "same, consumer busy %d ms per page" % CONSUMER_SLEEP_MS, fmt_s(ts),
                 "without fetching ahead: a2 + %s = %s; "
                 "%s of the consumer's %s overlapped the fetches (HTTP wait %s)"
                 % (fmt_s(consumer_ms), fmt_s(t20 + consumer_ms), fmt_s(hidden),
                    fmt_s(consumer_ms), fmt_s(med(rs, "wait_ms")))))
    return rows


def bench_fanout(runs):
    rows = []
    values = ", ".join(sql_literal("bbbbbbbb-0000-4000-8000-%012d" % i) for i in range(1, FAN_OUT + 1))
    base = None
    for conc in (1, 8, 64):
        q = ("SELECT count(*) FROM fan_c%d WHERE tenant_id = ANY (ARRAY[%s])"
             " AND consumable_code = 'RU' AND start_date = '2024-01-01' AND end_date = '2024-02-01'"
             % (conc, values))

        def run():
            mock_reset(latency_ms=FAN_LATENCY_MS)
            r = explain(q)
            n = len(mock_requests())
            if r["requests"] != FAN_OUT or n != FAN_OUT:
                raise BenchError("expected %d requests, EXPLAIN says %d, the mock saw %d"
                                 % (FAN_OUT, r["requests"], n))
            r["conns"] = len({x["conn"] for x in mock_requests()})
            return r

        rs = median_of(runs, run)
        t = med(rs, "ms")
        if base is None:
            base = t
        ideal = -(-FAN_OUT // conc) * FAN_LATENCY_MS
        rows.append(("b%d" % (len(rows) + 1),
                     "fan-out of %d requests, latency %d ms, max_concurrency %d"
                     % (FAN_OUT, FAN_LATENCY_MS, conc),
                     fmt_s(t),
                     "speed-up x%.1f over max_concurrency 1 (ideal x%d); bound: %d x %d ms = %s; "
                     "%d connection(s)"
                     % (base / t, min(conc, FAN_OUT), -(-FAN_OUT // conc), FAN_LATENCY_MS,
                        fmt_s(ideal), statistics.median(r["conns"] for r in rs))))
    return rows


def bench_limit(runs):
    rows = []
    q = "SELECT connection_id FROM usage.cloud_flow_connection_usage LIMIT 5"
    for i, latency in enumerate((0, PAGE_LATENCY_MS)):
        def run():
            mock_reset(avepoint_rows=STREAM_ROWS, latency_ms=latency)
            r = explain(q)
            r["mock"] = len(mock_requests())
            return r

        rs = median_of(runs, run)
        rows.append(("c%d" % (i + 1),
                     "LIMIT 5 over {:,} rows (100 pages), latency %d ms".format(STREAM_ROWS) % latency,
                     fmt_s(med(rs, "ms")),
                     "%d requests seen by the mock (most in any run: %d): the page read + the one fetched ahead"
                     % (med(rs, "mock"), max(r["mock"] for r in rs))))
    return rows


def bench_nestloop(runs):
    rows = []
    q = ("SELECT count(*) FROM bench_tenants t JOIN usage.consumption_by_folder c"
         " ON c.tenant_id = t.tenant_id WHERE c.consumable_code = 'RU'"
         " AND c.start_date = '2024-01-01' AND c.end_date = '2024-02-01'")
    for i, latency in enumerate((0, PAGE_LATENCY_MS)):
        def run():
            mock_reset(latency_ms=latency)
            r = explain(q, pre=NO_BATCH)
            if "Nested Loop" not in plan_shape(r["plan"]) or r["loops"] != NL_OUTER:
                raise BenchError("expected a nested loop with %d loops, got %s (loops %s)"
                                 % (NL_OUTER, " > ".join(plan_shape(r["plan"])), r["loops"]))
            r["mock"] = len(mock_requests())
            return r

        rs = median_of(runs, run)
        t = med(rs, "ms")
        rows.append(("d%d" % (i + 1),
                     "parameterized nested loop, %d outer rows, latency %d ms" % (NL_OUTER, latency),
                     fmt_s(t),
                     "%d loops, %d requests (one per outer row, in turn): %.1f ms per outer row"
                     % (rs[0]["loops"], med(rs, "mock"), t / NL_OUTER)))

    # the same join shape where the parameter is optional: what the planner picks
    q2 = ("SELECT count(*) FROM bench_flows f JOIN usage.cloud_flow_connection_usage u"
          " ON u.flow_id = f.flow_id")

    def run2():
        mock_reset(avepoint_rows=STREAM_ROWS, latency_ms=PAGE_LATENCY_MS)
        r = explain(q2)
        r["mock"] = len(mock_requests())
        return r

    rs = median_of(runs, run2)
    shape = [n for n in plan_shape(rs[0]["plan"])
             if n in ("Nested Loop", "Hash Join", "Merge Join", "Custom Scan")]
    rows.append(("d3", "same join on AvePoint flow_id ({:,} rows), latency %d ms".format(STREAM_ROWS)
                 % PAGE_LATENCY_MS,
                 fmt_s(med(rs, "ms")),
                 "planner's choice: %s, %d requests (a nested loop would need %d)"
                 % (shape[0] if shape else "?", med(rs, "mock"), NL_OUTER)))

    # the same join, with the keys handed over as one array: a fan-out
    q3 = q2 + " WHERE u.flow_id = ANY (ARRAY(SELECT flow_id FROM bench_flows))"

    def run3():
        mock_reset(avepoint_rows=STREAM_ROWS, latency_ms=PAGE_LATENCY_MS)
        r = explain(q3)
        r["mock"] = len(mock_requests())
        return r

    rs = median_of(runs, run3)
    rows.append(("d4", "same, plus u.flow_id = ANY (ARRAY(SELECT ...)), latency %d ms"
                 % PAGE_LATENCY_MS,
                 fmt_s(med(rs, "ms")),
                 "one fan-out of %d requests, 8 at a time (max_concurrency default)"
                 % med(rs, "mock")))
    return rows


def bench_join(runs):
    """The natural join of JOIN_KEYS local flow ids with the AvePoint table
    (the batched key join), next to the same keys as = ANY (ARRAY(SELECT ...))
    (one fan-out)."""
    rows = []
    join_q = ("SELECT count(*) FROM bench_join_flows l"
              " JOIN usage.cloud_flow_connection_usage u ON u.flow_id = l.id")
    any_q = ("SELECT count(*) FROM usage.cloud_flow_connection_usage u"
             " WHERE u.flow_id = ANY (ARRAY(SELECT id FROM bench_join_flows))")

    def run(query, pre="", want=None):
        def once():
            mock_reset(avepoint_rows=2 * JOIN_KEYS, latency_ms=JOIN_LATENCY_MS)
            r = explain(query, pre=pre)
            r["mock"] = len(mock_requests())
            shape = plan_shape(r["plan"])
            if want and want not in shape:
                raise BenchError("expected a %s, got %s" % (want, " > ".join(shape)))
            if r["mock"] != JOIN_KEYS:
                raise BenchError("expected %d requests, the mock saw %d" % (JOIN_KEYS, r["mock"]))
            return r
        return median_of(runs, once)

    rj = run(join_q, want="Custom Scan")
    ra = run(any_q)
    tj, ta = med(rj, "ms"), med(ra, "ms")
    rows.append(("g1", "natural join of %d local keys, latency %d ms (batched key join)"
                 % (JOIN_KEYS, JOIN_LATENCY_MS), fmt_s(tj),
                 "%d requests, %.2fx the = ANY form (g2), target within 2x; one request per"
                 " outer row in turn would take at least %d x %d ms = %s"
                 % (med(rj, "mock"), tj / ta, JOIN_KEYS, JOIN_LATENCY_MS,
                    fmt_s(JOIN_KEYS * JOIN_LATENCY_MS))))
    rows.append(("g2", "same keys as u.flow_id = ANY (ARRAY(SELECT ...))", fmt_s(ta),
                 "one fan-out of %d requests, 8 at a time (max_concurrency default)"
                 % med(ra, "mock")))
    return rows


def cancel_once(query, ready):
    """Start query in its own session; once ready() holds, cancel it from a
    second session.  Seconds from pg_cancel_backend() to the client's error."""
    env = dict(os.environ, PGAPPNAME=APPNAME)
    proc = subprocess.Popen(["psql", "-X", "-q", "-At", "-d", DB, "-c", query],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    seen = {}

    def reader():
        for line in proc.stderr:
            if "ERROR" in line and "t" not in seen:
                seen["t"] = time.time()
                seen["msg"] = line.strip()

    th = threading.Thread(target=reader, daemon=True)
    th.start()
    try:
        deadline = time.time() + 20
        while not ready():
            if proc.poll() is not None:
                raise BenchError("the query ended before it could be cancelled: %s"
                                 % seen.get("msg", "no error"))
            if time.time() > deadline:
                raise BenchError("the query did not reach the state to cancel in 20 s")
            time.sleep(0.02)
        time.sleep(0.3)         # well inside the wait
        out = psql("SELECT extract(epoch FROM clock_timestamp()), pg_cancel_backend(pid)"
                   " FROM pg_stat_activity WHERE application_name = %s AND pid <> pg_backend_pid();"
                   % sql_literal(APPNAME)).strip()
        if not out or "|" not in out:
            raise BenchError("no backend to cancel (application_name %s)" % APPNAME)
        t_cancel = float(out.splitlines()[0].split("|")[0])
        proc.wait(timeout=30)
        th.join(timeout=5)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if "canceling statement due to user request" not in seen.get("msg", ""):
        raise BenchError("expected a cancel error, got: %s" % seen.get("msg", "no error"))
    return seen["t"] - t_cancel


def timeout_once(query, timeout_ms):
    """Run query under statement_timeout; psql's \\timing of the failing query."""
    out = subprocess.run(["psql", "-X", "-q", "-d", DB],
                         input="SET statement_timeout = %d;\n\\timing on\n%s;\n" % (timeout_ms, query),
                         capture_output=True, text=True, timeout=60)
    if "canceling statement due to statement timeout" not in out.stderr:
        raise BenchError("expected a statement timeout, got: %s" % out.stderr.strip())
    times = re.findall(r"Time: ([0-9.]+) ms", out.stdout)
    if not times:
        raise BenchError("no \\timing output: %s" % out.stdout)
    return float(times[-1]) / 1000.0


def bench_cancel(runs):
    rows = []
    q = ("SELECT count(*) FROM usage.consumption_by_folder WHERE tenant_id = '%s'"
         " AND consumable_code = 'RU' AND start_date = '2024-01-01' AND end_date = '2024-01-02'" % T2)
    slow = {"match": {"path_regex": "consumption-by-folder"}, "times": -1,
            "action": {"delay_ms": 10000}}
    retry = {"match": {"path_regex": "consumption-by-folder"}, "times": -1,
             "action": {"status": 503, "retry_after": "20"}}

    def arrived():
        return len(mock_requests("consumption-by-folder")) >= 1

    def answered_503():
        return any(r["status"] == 503 for r in mock_requests("consumption-by-folder"))

    cases = (
        ("e1", "cancel while the API takes 10 s to answer", slow, "cancel", arrived),
        ("e2", "cancel while sleeping before a retry (Retry-After: 20)", retry, "cancel",
         answered_503),
        ("e3", "statement_timeout 200 ms, the API takes 10 s", slow, "timeout", None),
        ("e4", "statement_timeout 200 ms, sleeping before a retry", retry,
         "timeout", None),
    )
    for cid, what, fault, kind, ready in cases:
        delays = []
        for _ in range(runs):
            mock_reset()
            mock_fault(fault)
            if kind == "cancel":
                delays.append(cancel_once(q, ready))
            else:
                delays.append(timeout_once(q, 200) - 0.2)
        d = statistics.median(delays)
        rows.append((cid, what, "%.0f ms" % (d * 1000),
                     "%s; worst of %d runs %.0f ms; target < 500 ms"
                     % ("from pg_cancel_backend() to the error" if kind == "cancel"
                        else "error after 200 ms + this", runs, max(delays) * 1000)))
    mock_reset()
    return rows


def idle_hwm_kb():
    """VmHWM of a fresh backend that ran SELECT 1, read as explain() reads it."""
    out = psql("SELECT 1;\n\\echo %s\n"
               "SELECT substring(pg_read_file('/proc/self/status') FROM 'VmHWM:\\s*([0-9]+)');\n"
               % MARK)
    if MARK not in out:
        raise BenchError("unexpected psql output:\n" + out)
    hwm = out.split(MARK, 1)[1].strip()
    if not hwm.isdigit():
        raise BenchError("no VmHWM in: " + out)
    return int(hwm)


def bench_json(runs):
    # 1970-01-01 .. 2039-12-31: 25,567 days x 3 services (the mock allows 36,600 days)
    q = ("SELECT count(*) FROM usage.daily_consumption_by_service WHERE tenant_id = '%s'"
         " AND consumable_code = 'RU' AND date >= '1970-01-01' AND date < '2040-01-01'" % T2)

    def run():
        mock_reset()
        r = explain(q)
        if r["requests"] != 1:
            raise BenchError("expected 1 request, got %d" % r["requests"])
        r["cpu_ms"] = max(r["ms"] - r["wait_ms"], 0.001)
        return r

    rs = median_of(runs, run)
    idle = statistics.median(median_of(runs, idle_hwm_kb))
    # a backend that read one small answer of the same table: the libraries
    # (libcurl, OpenSSL), caches and plan of a first scan, not the body
    small = q.replace("date >= '1970-01-01' AND date < '2040-01-01'",
                      "date >= '2024-01-01' AND date < '2024-01-08'")
    warm = statistics.median([explain(small)["hwm_kb"] for _ in range(runs)])
    cpu = med(rs, "cpu_ms")
    n = med(rs, "rows")
    size = med(rs, "bytes")
    hwm = med(rs, "hwm_kb")
    return [("f1", "parse one UiPath response: {:,} items, {:.1f} MB".format(n, size / 1e6),
             "%.0f ms" % cpu,
             "{:,.0f} items/s, {:.1f} MB/s".format(n / (cpu / 1000.0), size / 1e6 / (cpu / 1000.0))
             + " (execution %s minus HTTP wait %s); peak RSS %s, idle backend (SELECT 1) %s:"
             " +%.1f MB over an idle backend (target <= +8 MB); +%.1f MB over a backend that"
             " read a 21-item answer (%s)"
             % (fmt_s(med(rs, "ms")), fmt_s(med(rs, "wait_ms")), fmt_mb(hwm), fmt_mb(idle),
                (hwm - idle) / 1024.0, (hwm - warm) / 1024.0, fmt_mb(warm)))]


# ---------------------------------------------------------------------------
# output
# ---------------------------------------------------------------------------

def bench_declared(runs):
    """h1-h2: one scan of DECLARED_ROWS rows through the built-in table and
    through its declaration, alternately, so that both see the same machine."""
    queries = {"builtin": "SELECT count(*) FROM usage.cloud_flow_connection_usage",
               "declared": "SELECT count(*) FROM decl_flows"}
    results = {"builtin": [], "declared": []}
    mock_reset(avepoint_rows=DECLARED_ROWS)
    # one untimed scan each first: the mock renders each page once and then
    # serves its bytes (see MockState.page_cache), so that the runs time the
    # FDW rather than the Python mock building 1,000 pages
    for q in queries.values():
        explain(q)
    for _ in range(runs):
        for name, q in queries.items():
            r = explain(q)
            if r["rows"] != DECLARED_ROWS:
                raise BenchError("%s: expected %d rows, got %d" % (name, DECLARED_ROWS, r["rows"]))
            results[name].append(r)
    tb = med(results["builtin"], "ms")
    td = med(results["declared"], "ms")
    SAME_RUN["h1"] = {"ms": tb, "bytes": med(results["builtin"], "bytes"),
                      "wait_ms": med(results["builtin"], "wait_ms")}
    return [("h1", "stream {:,} AvePoint rows, built-in table".format(DECLARED_ROWS), fmt_s(tb),
             "{:,.0f} rows/s; peak RSS %s".format(DECLARED_ROWS / (tb / 1000.0))
             % fmt_mb(med(results["builtin"], "hwm_kb"))),
            ("h2", "same rows through a declared endpoint (path, rows)", fmt_s(td),
             "{:,.0f} rows/s; %.3f x h1; peak RSS %s".format(DECLARED_ROWS / (td / 1000.0))
             % (td / tb, fmt_mb(med(results["declared"], "hwm_kb"))))]


def fetch_pages():
    """The pages h1 streams (DECLARED_ROWS rows, FLOOR_PAGE_SIZE a page),
    fetched once from the mock, following each absolute nextLink until it is
    "": the raw bytes of every page, and the number of rows."""
    mock_reset(avepoint_rows=DECLARED_ROWS)
    url = os.environ["MOCK_URL"].rstrip("/") + FLOWS_PATH + "?top=%d" % FLOOR_PAGE_SIZE
    most = -(-DECLARED_ROWS // FLOOR_PAGE_SIZE)
    op = mockctl.opener()
    pages, nrows = [], 0
    while url:
        if len(pages) >= most:
            raise BenchError("more than %d pages from the mock (nextLink %s)" % (most, url))
        req = urllib.request.Request(url, headers={"Authorization": "Bearer test-token"})
        with op.open(req, timeout=60) as resp:
            body = resp.read()
        try:
            page = json.loads(body)
            nrows += len(page["connectionUsageCloudFlows"])
            url = page["nextLink"]
        except (ValueError, KeyError, TypeError) as e:
            raise BenchError("page %d: unexpected answer (%s): %r" % (len(pages) + 1, e, body[:200]))
        pages.append(body)
    if nrows != DECLARED_ROWS:
        raise BenchError("expected %d rows in the pages, got %d" % (DECLARED_ROWS, nrows))
    return pages


def plan_rows(node, node_type):
    """Rows a plan's nodes of node_type returned in all (rows per loop x loops)."""
    n = 0
    if node.get("Node Type") == node_type:
        n += round(node.get("Actual Rows", 0) * node.get("Actual Loops", 1))
    for child in node.get("Plans", []):
        n += plan_rows(child, node_type)
    return n


def bench_floor(runs):
    """i1-i2: h1's pages, fetched once by us into files, through PostgreSQL's
    own jsonb: the floor that a faster parser in the FDW is measured against."""
    pages = fetch_pages()
    size = sum(len(b) for b in pages)
    # the server (the postgres user when we run as root) reads the files
    tmp = tempfile.mkdtemp(prefix="usage_fdw_floor.", dir="/tmp")
    try:
        os.chmod(tmp, 0o755)
        for k, body in enumerate(pages, 1):
            path = os.path.join(tmp, "page-%04d.json" % k)
            with open(path, "wb") as f:
                f.write(body)
            os.chmod(path, 0o644)
        psql("""
DROP TABLE IF EXISTS bench_json_pages;
CREATE TABLE bench_json_pages (n int PRIMARY KEY, path text NOT NULL);
INSERT INTO bench_json_pages
  SELECT g, %s || '/page-' || lpad(g::text, 4, '0') || '.json' FROM generate_series(1, %d) g;
ANALYZE bench_json_pages;
""" % (sql_literal(tmp), len(pages)))
        q_rec = ("SELECT count(*) FROM (SELECT x.* FROM"
                 " (SELECT pg_read_file(path)::jsonb AS page FROM bench_json_pages) p,"
                 " jsonb_to_recordset(p.page->'connectionUsageCloudFlows') AS x(%s)) s"
                 % FLOOR_COLUMNS)
        q_parse = ("SELECT count(*) FROM bench_json_pages"
                   " WHERE pg_read_file(path)::jsonb IS NOT NULL")
        q_read = "SELECT count(*) FROM bench_json_pages WHERE pg_read_file(path) IS NOT NULL"

        def local(query, node_type, want):
            r = explain(query, foreign=False)
            got = plan_rows(r["plan"], node_type)
            if got != want:
                raise BenchError("expected %d rows from the %s, got %d: %s"
                                 % (want, node_type, got, query))
            return r

        rec, parse, read = [], [], []
        for _ in range(runs):
            rec.append(local(q_rec, "Function Scan", DECLARED_ROWS))
            parse.append(local(q_parse, "Seq Scan", len(pages)))
            read.append(local(q_read, "Seq Scan", len(pages)))
        # the FDW's time: h1 of this run, else one built-in scan now
        if "h1" in SAME_RUN:
            fdw, fdw_from = SAME_RUN["h1"], "h1"
        else:
            mock_reset(avepoint_rows=DECLARED_ROWS)
            r = explain("SELECT count(*) FROM usage.cloud_flow_connection_usage")
            if r["rows"] != DECLARED_ROWS:
                raise BenchError("expected %d rows, got %d" % (DECLARED_ROWS, r["rows"]))
            fdw, fdw_from = r, "one built-in scan in i"
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    psql("DROP TABLE IF EXISTS bench_json_pages;")
    t1, t2, t0 = med(rec, "ms"), med(parse, "ms"), med(read, "ms")
    return [("i1", "jsonb floor: the same {:,} pages from files through jsonb_to_recordset"
             .format(len(pages)), fmt_s(t1),
             "{:,.0f} rows/s; FDW/floor %.2f (%s %s, of it HTTP wait %s / i1 %s; target <= 0.50,"
             " the FDW 2x faster); %.1f MB of JSON (the FDW's HTTP Response Bytes: %.1f MB);"
             " peak RSS %s"
             .format(DECLARED_ROWS / (t1 / 1000.0))
             % (fdw["ms"] / t1, fdw_from, fmt_s(fdw["ms"]), fmt_s(fdw["wait_ms"]), fmt_s(t1),
                size / 1e6, fdw["bytes"] / 1e6, fmt_mb(med(rec, "hwm_kb")))),
            ("i2", "same files, pg_read_file + ::jsonb only (no recordset)", fmt_s(t2),
             "{:,.0f} rows/s, {:.1f} MB/s; %.0f%% of i1, so recordset + tuples %s;"
             " pg_read_file alone %s".format(DECLARED_ROWS / (t2 / 1000.0), size / 1e6 / (t2 / 1000.0))
             % (100.0 * t2 / t1, fmt_s(max(t1 - t2, 0.0)), fmt_s(t0)))]


EXPLANATION = """\
What the figures mean (medians of %(runs)d runs; the mock API runs on the same machine):

  a1-a3  One scan of the AvePoint endpoint, 100 pages of 1000 rows (top/nextLink).  Time is
         the server's Execution Time; peak RSS is the backend's VmHWM, which stays flat
         because only the page being returned is held in memory.  Pages depend on each
         other's nextLink, so latency adds up per page (a2 ~ a1 + pages x latency).  The
         next page is requested as soon as the current one is parsed, so work the executor
         does on the rows of page N overlaps the fetch of page N+1: in a3 the consumer's
         sleep is hidden, up to the latency.  Target: at most one page fetched ahead.
  b1-b3  64 requests of one scan (tenant_id = ANY(64 values)) against 50 ms of latency:
         requests run max_concurrency at a time.  Target: close to linear speed-up.
  c1-c2  LIMIT stops paging: the page read plus at most one fetched ahead (<= 2 requests);
         the prefetched page is abandoned, not waited for.
  d1-d4  With the batched key join off (usage_fdw.enable_batched_join), a join clause on a
         parameter column becomes a parameterized scan: one request per outer row,
         sequential, so the cost is outer rows x latency.  d1-d2 use UiPath's required
         tenant_id (batched join off: the nested loop is then the only plan).  d3 shows what
         the planner picks (batched join on) when the parameter is optional (AvePoint flow_id), from its
         estimate of 25,000 rows per unfiltered request; d4 hands the keys over as one
         array instead, so they become a concurrent fan-out.
  e1-e4  Query cancel and statement_timeout are served while waiting on the network and
         while sleeping before a retry.  Target: < 500 ms.
  f1     Parsing and converting one large body, read as it arrives (the execution time
         not spent waiting on HTTP: parse, type input functions, tuples).  Its peak RSS
         is set against that of a fresh backend that only ran SELECT 1, read the same
         way, and against one that read a small answer of the same table (the
         libraries and caches a first scan loads, without the body).  Target: within
         +8 MiB of the idle backend.
  g1-g2  The natural join of 200 local flow ids with the AvePoint table (50 ms latency): the
         batched key join reads the outer rows in batches (batch_size 100) and fetches
         the distinct keys of each batch as one concurrent fan-out, like the = ANY form
         (g2) does in one, instead of one request per outer row, one after another (the
         parameterized nested loop, d1-d2).  Target: g1 within 2x of g2.
  h1-h2  The same scan of 1,000,000 rows (1,000 pages) through the built-in
         cloud_flow_connection_usage and through a foreign table that declares the same
         endpoint in its options; runs alternate.  A declaration becomes the same endpoint
         description as a built-in entry, so the two take the same code path.
         Target: h2 within 5%% of h1.
  i1-i2  The floor h1 is measured against: the same 1,000 pages (the raw bytes, fetched
         once from the mock by the benchmark and put in files) read by PostgreSQL's own
         pg_read_file(path)::jsonb and turned into the same rows by jsonb_to_recordset,
         without HTTP or the FDW.  i2 stops after the ::jsonb cast (reading + parsing),
         so i1 - i2 is what forming the rows costs; "pg_read_file alone" is the reading.
         FDW/floor is h1's median over i1's, both from this run (without group h, one
         built-in scan measured in group i).  h1 includes waiting on the mock (written in
         Python, on the same machine) to produce the pages; its HTTP wait is shown.
         Target: FDW/floor <= 0.50, the FDW's 1M-row scan at least 2x faster than the
         jsonb floor.
"""


def print_table(rows):
    headers = ("#", "benchmark", "median", "details")
    widths = [max(len(str(r[i])) for r in rows + [headers]) for i in range(3)]
    line = "  ".join(h.ljust(widths[i]) if i < 3 else h for i, h in enumerate(headers))
    print(line)
    print("  ".join("-" * w for w in widths) + "  " + "-" * 60)
    for r in rows:
        print("  ".join(str(r[i]).ljust(widths[i]) if i < 2 else str(r[i]).rjust(widths[i])
                        for i in range(3)) + "  " + str(r[3]))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=int(os.environ.get("BENCH_RUNS", "3")),
                    help="runs per measurement (median); default 3 or $BENCH_RUNS")
    ap.add_argument("--only", default="abcdefghi",
                    help="which groups to run, e.g. 'ae' (default: all)")
    args = ap.parse_args()
    mock_url = os.environ.get("MOCK_URL")
    if not mock_url or not os.environ.get("PGHOST"):
        print("bench: PGHOST and MOCK_URL must be set (scripts/bench.sh does that)", file=sys.stderr)
        return 2
    runs = max(1, args.runs)

    t_start = time.time()
    setup(mock_url)
    groups = (("a", "streaming", bench_stream), ("b", "fan-out", bench_fanout),
              ("c", "LIMIT", bench_limit), ("d", "nested loop", bench_nestloop),
              ("e", "cancel", bench_cancel), ("f", "JSON parsing", bench_json),
              ("g", "natural join", bench_join), ("h", "declared endpoint", bench_declared),
              ("i", "JSON floor", bench_floor))
    rows = []
    failed = []
    for key, name, fn in groups:
        if key not in args.only:
            continue
        t0 = time.time()
        print("bench: %s ..." % name, file=sys.stderr, flush=True)
        try:
            rows.extend(fn(runs))
        except (BenchError, mockctl.CtlError, subprocess.SubprocessError, OSError) as e:
            failed.append(name)
            lines = str(e).splitlines() or ["?"]
            rows.append((key + "?", name, "ERROR",
                         next((ln for ln in lines if "ERROR" in ln), lines[0])))
            print("bench: %s failed:\n%s" % (name, e), file=sys.stderr)
        print("bench: %s done in %.1f s" % (name, time.time() - t0), file=sys.stderr, flush=True)
    try:
        mock_reset()
    except mockctl.CtlError:
        pass

    print()
    print("usage_fdw benchmark (%d runs each, %.0f s in all)" % (runs, time.time() - t_start))
    print()
    print_table(rows)
    print()
    print(EXPLANATION % {"runs": runs})
    if failed:
        print("bench: FAILED steps: %s" % ", ".join(failed))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
