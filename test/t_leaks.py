#!/usr/bin/env python3
"""Resource safety: 2,000 failing FDW queries in one backend leak neither
file descriptors nor memory, and never crash it.

One psql session (one backend) runs a generated script (fixed seed) of
about 2,550 checked statements: 2,000 failing FDW queries of mixed kinds
(330 of them inside PL/pgSQL), interleaved with ~850 successful ones.  The kinds (servers have max_retries 0):

  HV000  HTTP 500 (AvePoint and UiPath), a malformed JSON body, a nextLink
         to another origin, a fan-out IN over 8 flows where one fails while
         the others are in flight
  HV00N  a truncated body (the connection breaks mid-response)
  22P02  a value that does not convert (integer column, patched numeric)
  57014  statement_timeout while the mock delays its answer
  28000  the OAuth2 token endpoint refuses the client secret

Some failures happen inside PL/pgSQL `BEGIN ... EXCEPTION WHEN OTHERS`
blocks (subtransaction aborts with transfers in flight), after
`SAVEPOINT` (ROLLBACK TO, then a successful query in the same transaction),
or while an open cursor still has a page prefetch in flight.

The backend's VmRSS (/proc/PID/status), its open file descriptors
(/proc/PID/fd) and the size of its memory contexts are read after a warm-up
(~200 failing queries, every kind at least once) and at the end; the fd
count must not grow (+2 allowed), RSS must grow by less than 8 MB, the
memory contexts by less than 2 MB.  JIT is off in the session: LLVM's own
memory would blur the measurement (see build_script).  Every
statement must end with the expected SQLSTATE / result, the server log must
show no "terminated by signal" and pg_backend_pid() must be unchanged.

Environment (scripts/test.sh, or scripts/cluster.sh's env.sh): PGHOST,
PGPORT, PGUSER, MOCK_URL; USAGE_FDW_PGLOG (server log; else $PGHOST/postgres.log).
Uses the shared mock: resets it at the start and at the end.
"""

import collections
import os
import random
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fdwtest import ServerLog, check, database, main, mock, pg_tool, scratch_dir  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DB = "usage_fdw_t_leaks"
SEED = 20240101
N_FAIL = 2000
N_WARM_FAIL = 200
FD_SLACK = 2
# sockets: the backend's own plus libcurl's cache of kept-alive connections,
# which holds up to one per connection a scan had in flight (max_concurrency 8
# in this workload, plus the token endpoint's); how many of them are open at
# a given moment depends on timing, so they are bounded, not compared
SOCKET_BOUND = 16
RSS_BOUND_KB = 8 * 1024
CTX_BOUND = 2 * 1024 * 1024          # memory contexts: bytes


# --- the workload -----------------------------------------------------------------

T2 = "22222222-2222-2222-2222-222222222222"
CBF = ("SELECT count(*) FROM consumption_by_folder WHERE tenant_id = '%s' AND consumable_code = '%%s' "
       "AND start_date = '2024-01-01 00:00+00' AND end_date = '2024-02-01 00:00+00'" % T2)
DAILY = ("SELECT count(*), sum(consumed_amount) FROM daily_consumption_by_service WHERE tenant_id = '%s' "
         "AND consumable_code = '%%s' AND date BETWEEN '2024-01-01' AND '2024-01-03'" % T2)


def flows_in(*ns):
    return ("SELECT count(*) FROM flows WHERE flow_id IN (%s)"
            % ", ".join("'flow-%04d'" % n for n in ns))


def dq(sql):
    """A dollar-quoted SQL literal (for try_q)."""
    assert "$q$" not in sql
    return "$q$" + sql + "$q$"


# the mock's fault rules (fixed for the whole run); see test/MOCK.md
FAULTS = [
    {"name": "av500", "match": {"path_regex": "cloudflows", "query": {"flowId": "flow-0001"}},
     "times": -1, "action": {"status": 500}},
    {"name": "badjson", "match": {"path_regex": "cloudflows", "query": {"flowId": "flow-0002"}},
     "times": -1, "action": {"body_raw": '{"connectionUsageCloudFlows": [{"flowId": "flow-0002", "envi'}},
    {"name": "evil_next", "match": {"path_regex": "cloudflows", "query": {"flowId": "flow-0003"}},
     "times": -1, "action": {"next_link": "http://evil.example:8080/smp/powerplatform/connectionusage/cloudflows?top=3"}},
    {"name": "slow3s", "match": {"path_regex": "cloudflows", "query": {"flowId": "flow-0004"}},
     "times": -1, "action": {"delay_ms": 3000}},
    {"name": "slow30ms", "match": {"path_regex": "cloudflows", "query": {"flowId": "flow-0009"}},
     "times": -1, "action": {"delay_ms": 30}},
    {"name": "ui500", "match": {"path_regex": "consumption-by-folder", "body": {"consumableCode": "AIU"}},
     "times": -1, "action": {"status": 500}},
    {"name": "truncate", "match": {"path_regex": "consumption-by-folder", "body": {"consumableCode": "PLTU"}},
     "times": -1, "action": {"truncate": True}},
    {"name": "badnum", "match": {"path_regex": "daily-consumption", "body": {"consumableCode": "AIU"}},
     "times": -1, "action": {"item_patch": {"consumedAmount": "lots"}}},
]

# single statements: (sql, expected SQLSTATE, expected output or None)
OK = "00000"
SUCCESS = {
    "s_flows_paged": ("SELECT count(*) FROM flows", OK, "10"),
    "s_cbf": (CBF % "RU", OK, "5"),
    "s_daily": (DAILY % "RU", OK, "9|2025.0"),
    "s_fanout8": (flows_in(5, 6, 7, 8, 9, 10, 11, 12), OK, "2"),
    "s_limit": ("SELECT flow_id FROM flows LIMIT 1", OK, "flow-0001"),
    "s_oauth": (CBF.replace("FROM consumption_by_folder", "FROM oa_ok.consumption_by_folder") % "RU", OK, "5"),
}
FAILING = {
    "f_av500": (flows_in(1), "HV000"),
    "f_badjson": (flows_in(2), "HV000"),
    "f_evil_next": (flows_in(3), "HV000"),
    "f_int": ("SELECT sum(connection_id) FROM flows_int", "22P02"),
    "f_ui500": (CBF % "AIU", "HV000"),
    "f_truncate": (CBF % "PLTU", "HV00N"),
    "f_badnum": (DAILY % "AIU", "22P02"),
    "f_token": (CBF.replace("FROM consumption_by_folder", "FROM oa_bad.consumption_by_folder") % "RU", "28000"),
    "f_fanout8": (flows_in(9, 10, 11, 12, 5, 6, 1, 7), "HV000"),
}


class Script:
    """The generated psql script and what each marker expects."""

    def __init__(self):
        self.lines = []
        self.expect = []            # (marker index, kind, expected SQLSTATE, expected output)
        self.fails = 0              # failing FDW queries so far
        self.by_kind = collections.Counter()

    def stmt(self, kind, sql, state, out=None, fails=None):
        idx = len(self.expect)
        self.lines.append(sql.rstrip(";") + ";")
        self.lines.append("\\echo @@ %d :SQLSTATE" % idx)
        self.expect.append((idx, kind, state, out))
        self.fails += (state != OK) if fails is None else fails
        self.by_kind[kind] += 1

    def raw(self, *lines):
        self.lines.extend(lines)

    def item(self, kind):
        """One workload item of a kind (one or more statements)."""
        if kind in SUCCESS:
            self.stmt(kind, *SUCCESS[kind])
        elif kind in FAILING:
            self.stmt(kind, *FAILING[kind])
        elif kind == "f_timeout":
            self.raw("SET statement_timeout = '150ms';")
            self.stmt(kind, flows_in(4), "57014")
            self.raw("RESET statement_timeout;")
        elif kind == "p_fanout":
            # the fan-out fails inside a PL/pgSQL exception block (subtransaction abort)
            self.stmt(kind, "SELECT try_q(%s)" % dq(FAILING["f_fanout8"][0]), OK, "HV000", fails=1)
        elif kind == "p_mixed":
            # three subtransactions in one statement: fail, succeed, fail
            self.stmt(kind, "SELECT try_q(%s), try_q(%s), try_q(%s)"
                      % (dq(FAILING["f_truncate"][0]), dq(SUCCESS["s_fanout8"][0]), dq(FAILING["f_token"][0])),
                      OK, "HV00N|ok:2|28000", fails=2)
        elif kind == "p_loop":
            # a loop of subtransactions in one function call: badjson, ok, 500, ok
            self.stmt(kind, "SELECT string_agg(try_q(q), ',' ORDER BY i) FROM (VALUES (1, %s), (2, %s), (3, %s), (4, %s)) v(i, q)"
                      % (dq(FAILING["f_badjson"][0]), dq(SUCCESS["s_cbf"][0]), dq(FAILING["f_ui500"][0]),
                         dq(SUCCESS["s_flows_paged"][0])),
                      OK, "HV000,ok:5,HV000,ok:10", fails=2)
        elif kind == "x_savepoint":
            # SAVEPOINT, a failing fan-out, ROLLBACK TO, then success in the same transaction
            self.raw("BEGIN;", "SAVEPOINT s;")
            self.stmt(kind, FAILING["f_fanout8"][0], "HV000")
            self.raw("ROLLBACK TO SAVEPOINT s;")
            self.stmt(kind + "_after", SUCCESS["s_fanout8"][0], OK, "2")
            self.raw("COMMIT;")
        elif kind == "x_cursor":
            # an open cursor (page 2 prefetched or in flight) when the transaction aborts
            self.raw("BEGIN;", "DECLARE c CURSOR FOR SELECT connection_id FROM flows;")
            self.stmt(kind + "_fetch", "FETCH 1 FROM c", OK, "conn-00001")
            self.stmt(kind, FAILING["f_av500"][0], "HV000")
            self.raw("ROLLBACK;")
        elif kind == "x_cursor_ok":
            # a cursor closed after one row of a paged scan
            self.raw("BEGIN;", "DECLARE c CURSOR FOR SELECT connection_id FROM flows;")
            self.stmt(kind, "FETCH 4 FROM c", OK, "conn-00001\nconn-00002\nconn-00003\nconn-00004")
            self.raw("CLOSE c;", "COMMIT;")
        else:
            raise ValueError(kind)

    def measure(self, label, outdir):
        """Bring the connection cache to its usual state (a successful 8-way
        fan-out), then snapshot /proc and the memory contexts."""
        self.stmt("s_fanout8", *SUCCESS["s_fanout8"])
        self.raw("\\! cat /proc/$BACKEND_PID/status > '%s/%s.status'" % (outdir, label),
                 "\\! ls -l /proc/$BACKEND_PID/fd > '%s/%s.fd' 2>&1" % (outdir, label))
        self.stmt("m_ctx_" + label, "SELECT name, sum(total_bytes) FROM pg_backend_memory_contexts "
                  "GROUP BY name ORDER BY name", OK, None)


# weights of the kinds after the warm-up (all kinds also appear in the warm-up)
MIX = {
    "f_av500": 12, "f_badjson": 12, "f_evil_next": 10, "f_int": 10, "f_ui500": 10, "f_truncate": 8,
    "f_badnum": 8, "f_token": 10, "f_fanout8": 6, "f_timeout": 2,
    "p_fanout": 6, "p_mixed": 3, "p_loop": 3, "x_savepoint": 3, "x_cursor": 3,
    "s_flows_paged": 6, "s_cbf": 6, "s_daily": 5, "s_fanout8": 4, "s_limit": 4, "s_oauth": 4,
    "x_cursor_ok": 2,
}


def build_script(outdir):
    rng = random.Random(SEED)
    kinds, weights = zip(*sorted(MIX.items()))
    if not any(k.startswith(("f_", "p_", "x_")) for k in kinds):
        raise ValueError("MIX has no failing kind")
    s = Script()
    s.raw("\\set VERBOSITY terse",
          # JIT off: with page_size 3 the planner thinks an unfiltered scan costs
          # millions and JIT-compiles it; LLVM's own memory growth would blur
          # what this test measures (the FDW's)
          "SET jit = off;",
          "SELECT pg_backend_pid() AS bpid \\gset",
          "\\setenv BACKEND_PID :bpid",
          "\\echo @@ pid :bpid")
    # warm-up: every kind once, then random ones up to N_WARM_FAIL failures
    for k in kinds:
        s.item(k)
    while s.fails < N_WARM_FAIL:
        s.item(rng.choices(kinds, weights)[0])
    s.measure("warm", outdir)
    warm_fails = s.fails
    while s.fails < N_FAIL:
        k = rng.choices(kinds, weights)[0]
        if s.fails + 2 > N_FAIL and k in ("p_mixed", "p_loop"):
            continue
        s.item(k)
    s.measure("end", outdir)
    s.raw("\\echo @@ pidend :bpid", "SELECT pg_backend_pid() AS bpid2 \\gset", "\\echo @@ pid2 :bpid2")
    return s, warm_fails


SETUP = r"""
\set ON_ERROR_STOP 1
CREATE EXTENSION usage_fdw;
CREATE SERVER av FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'avepoint', base_url :'mock_url', max_retries '0', page_size '3');
CREATE SERVER ui FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'uipath', base_url :'mock_url', organization_id '11111111-1111-1111-1111-111111111111',
           max_retries '0');
CREATE SERVER ui_oauth_bad FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'uipath', base_url :'mock_url', organization_id '11111111-1111-1111-1111-111111111111',
           max_retries '0');
CREATE SERVER ui_oauth_ok FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'uipath', base_url :'mock_url', organization_id '11111111-1111-1111-1111-111111111111',
           max_retries '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER av OPTIONS (access_token 'test-token');
CREATE USER MAPPING FOR CURRENT_USER SERVER ui OPTIONS (access_token 'test-token');
CREATE USER MAPPING FOR CURRENT_USER SERVER ui_oauth_bad
  OPTIONS (client_id 'test-client', client_secret 'not-the-secret');
CREATE USER MAPPING FOR CURRENT_USER SERVER ui_oauth_ok
  OPTIONS (client_id 'test-client', client_secret 'test-secret');
CREATE FOREIGN TABLE flows (flow_id text, environment_id text, connection_id text, tenant text)
  SERVER av OPTIONS (endpoint 'cloud_flow_connection_usage');
CREATE FOREIGN TABLE flows_int (flow_id text, connection_id integer)
  SERVER av OPTIONS (endpoint 'cloud_flow_connection_usage');
IMPORT FOREIGN SCHEMA uipath FROM SERVER ui INTO public;
CREATE SCHEMA oa_bad;
IMPORT FOREIGN SCHEMA uipath LIMIT TO (consumption_by_folder) FROM SERVER ui_oauth_bad INTO oa_bad;
CREATE SCHEMA oa_ok;
IMPORT FOREIGN SCHEMA uipath LIMIT TO (consumption_by_folder) FROM SERVER ui_oauth_ok INTO oa_ok;
CREATE FUNCTION try_q(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
  n bigint;
  st text;
BEGIN
  EXECUTE q INTO n;
  RETURN 'ok:' || n;
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE;
  RETURN st;
END
$$;
"""


def parse_output(text):
    """[(marker words, output lines before it)]"""
    out, buf = [], []
    for line in text.splitlines():
        if line.startswith("@@ "):
            out.append((line[3:].split(), buf))
            buf = []
        else:
            buf.append(line)
    return out


def read_status(path):
    kb = {}
    with open(path, encoding="ascii") as f:
        for line in f:
            m = re.match(r"(\w+):\s+(\d+) kB", line)
            if m:
                kb[m.group(1)] = int(m.group(2))
    return kb


def read_fds(path):
    """{fd: target} from `ls -l /proc/PID/fd`."""
    fds = {}
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            m = re.search(r" (\d+) -> (.*)$", line.rstrip("\n"))
            if m:
                fds[int(m.group(1))] = m.group(2)
    return fds


def test():
    log = ServerLog()
    with scratch_dir("usage_fdw_t_leaks.", keep_env="USAGE_FDW_KEEP") as tmp:
        mock.reset()
        mock.add_faults(FAULTS)
        with database(DB, SETUP, setup="setup: servers (max_retries 0), user mappings, tables, try_q()"):
            workload(tmp, log)


def workload(tmp, log):
    """Run the script in one session; check its statements, the backend's
    resources and the server log."""
    psql = [pg_tool("psql"), "-X", "-q", "-At", "-d", DB, "-v", "mock_url=" + os.environ["MOCK_URL"]]
    script, warm_fails = build_script(tmp)
    path = os.path.join(tmp, "leaks.sql")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(script.lines) + "\n")
    print("script: %d statements, %d failing FDW queries (%d in the warm-up), %d markers"
          % (sum(1 for l in script.lines if not l.startswith("\\")), script.fails, warm_fails,
             len(script.expect)), flush=True)
    t0 = time.monotonic()
    with open(os.path.join(tmp, "out.txt"), "w") as out, open(os.path.join(tmp, "err.txt"), "w") as err:
        r = subprocess.run(psql + ["-f", path], stdout=out, stderr=err, timeout=110)
    elapsed = time.monotonic() - t0
    with open(os.path.join(tmp, "out.txt"), encoding="utf-8", errors="replace") as f:
        markers = parse_output(f.read())
    with open(os.path.join(tmp, "err.txt"), encoding="utf-8", errors="replace") as f:
        errtext = f.read()
    print("psql ran the script in %.1f s (exit status %d)" % (elapsed, r.returncode), flush=True)
    check("psql finished normally", r.returncode == 0, errtext[-2000:])

    # the backend: same pid at the start and the end
    pids = {m[0][0]: m[0][1] for m in markers if m[0][0] in ("pid", "pidend", "pid2")}
    check("pg_backend_pid() unchanged at the end (%s -> %s)" % (pids.get("pid"), pids.get("pid2")),
          pids.get("pid") is not None and pids.get("pid") == pids.get("pid2") == pids.get("pidend"), pids)

    # every statement: expected SQLSTATE and result
    results = [m for m in markers if m[0][0].isdigit()]
    check("every statement reported (%d of %d)" % (len(results), len(script.expect)),
          len(results) == len(script.expect))
    bad = []
    states = collections.Counter()
    ctx = {}
    for (words, lines), (idx, kind, want_state, want_out) in zip(results, script.expect):
        got_state = words[1] if len(words) > 1 else "?"
        got_out = "\n".join(lines)
        states[(kind, got_state)] += 1
        if kind.startswith("m_ctx_"):
            ctx[kind[6:]] = {l.rsplit("|", 1)[0]: int(l.rsplit("|", 1)[1]) for l in lines if "|" in l}
        if int(words[0]) != idx or got_state != want_state or (want_out is not None and got_out != want_out):
            bad.append("#%s %s: want %s %r, got %s %r" % (idx, kind, want_state, want_out, got_state, got_out))
    check("every statement ended with its expected SQLSTATE and result", not bad,
          "\n".join(bad[:15]) + ("\n... %d more" % (len(bad) - 15) if len(bad) > 15 else ""))
    print("statements by kind and SQLSTATE:")
    items = ["%-18s %s %5d" % (k, st, n) for (k, st), n in sorted(states.items()) if not k.startswith("m_")]
    for i in range(0, len(items), 3):
        print("  " + "   ".join(items[i:i + 3]))
    sys.stdout.flush()
    top = sum(n for (k, st), n in states.items() if st != OK)
    sub = sum(FAILING_IN_PLPGSQL.get(k, 0) * n for (k, st), n in states.items() if st == OK)
    print("failing FDW queries: %d at top level + %d inside PL/pgSQL exception blocks = %d"
          % (top, sub, top + sub), flush=True)
    check("at least %d failing FDW queries ran" % N_FAIL, top + sub >= N_FAIL, top + sub)

    # resources
    warm = read_status(os.path.join(tmp, "warm.status"))
    end = read_status(os.path.join(tmp, "end.status"))
    fd_warm = read_fds(os.path.join(tmp, "warm.fd"))
    fd_end = read_fds(os.path.join(tmp, "end.fd"))
    print("backend VmRSS: %d kB after warm-up, %d kB at the end (%+d kB); RssAnon %d -> %d kB"
          % (warm.get("VmRSS", -1), end.get("VmRSS", -1), end.get("VmRSS", 0) - warm.get("VmRSS", 0),
             warm.get("RssAnon", -1), end.get("RssAnon", -1)), flush=True)
    print("backend open fds: %d after warm-up, %d at the end" % (len(fd_warm), len(fd_end)), flush=True)
    ctx_warm, ctx_end = sum(ctx.get("warm", {}).values()), sum(ctx.get("end", {}).values())
    print("backend memory contexts: %d bytes after warm-up, %d at the end (%+d)"
          % (ctx_warm, ctx_end, ctx_end - ctx_warm), flush=True)
    check("fd snapshots taken", len(fd_warm) > 0 and len(fd_end) > 0)
    fd_detail = "warm-up:\n  %s\nend:\n  %s" % (
        "\n  ".join("%d -> %s" % kv for kv in sorted(fd_warm.items())),
        "\n  ".join("%d -> %s" % kv for kv in sorted(fd_end.items())))
    files_warm = [t for t in fd_warm.values() if not t.startswith("socket:")]
    files_end = [t for t in fd_end.values() if not t.startswith("socket:")]
    sockets_end = len(fd_end) - len(files_end)
    check("open fds other than sockets did not grow (%d -> %d, +%d allowed)"
          % (len(files_warm), len(files_end), FD_SLACK),
          len(files_end) <= len(files_warm) + FD_SLACK, fd_detail)
    check("open sockets stay within the connection cache's bound (%d -> %d, at most %d)"
          % (len(fd_warm) - len(files_warm), sockets_end, SOCKET_BOUND),
          sockets_end <= SOCKET_BOUND, fd_detail)
    grow = end.get("VmRSS", 1 << 30) - warm.get("VmRSS", 0)
    check("VmRSS grew by less than %d kB (%+d kB)" % (RSS_BOUND_KB, grow), grow < RSS_BOUND_KB,
          "warm %s\nend %s" % (warm, end))
    grew = sorted(((ctx.get("end", {}).get(k, 0) - ctx.get("warm", {}).get(k, 0), k)
                   for k in set(ctx.get("warm", {})) | set(ctx.get("end", {}))), reverse=True)[:5]
    check("memory contexts grew by less than %d bytes (%+d)" % (CTX_BOUND, ctx_end - ctx_warm),
          ctx_warm > 0 and ctx_end - ctx_warm < CTX_BOUND,
          "largest growth: " + ", ".join("%s %+d" % (k, d) for d, k in grew))

    # the mock saw the traffic, and the server log shows no crash
    reqs = mock.requests()
    faults = {f["name"]: f["fired"] for f in mock.faults()}
    print("mock: %d requests; faults fired: %s" % (len(reqs), ", ".join("%s=%d" % kv for kv in faults.items())),
          flush=True)
    check("every fault rule fired", all(faults.get(f["name"], 0) > 0 for f in FAULTS), faults)
    if not log.found:
        check("server log found (%s)" % log.path, False)
    else:
        new_log = log.new_text()
        crashes = [l for l in new_log.splitlines()
                   if "terminated by signal" in l or "was terminated" in l or "PANIC" in l]
        check("server log: no backend terminated by a signal (%s)" % log.path, not crashes,
              "\n".join(crashes[:10]))


# failing FDW queries inside PL/pgSQL per successful statement of these kinds
FAILING_IN_PLPGSQL = {"p_fanout": 1, "p_mixed": 2, "p_loop": 2}

if __name__ == "__main__":
    main(test)
