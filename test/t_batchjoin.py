#!/usr/bin/env python3
"""The batched key join at speed: a join of 40 local flow ids with the
AvePoint table, against 0.3 s of API latency, runs its requests concurrently.

  - the plan is the batched join (Custom Scan (UsageBatchedJoin));
  - the rows are right (two connections per flow in the mock's dataset, with
    avepoint_rows 80: flow-0001 .. flow-0040);
  - one request per distinct key: 40 requests, each flowId once;
  - it finishes in well under half the one-at-a-time time (40 x 0.3 s =
    12 s: the bound is 6 s, generous; expected about 5 waves x 0.3 s);
  - never more than max_concurrency requests in flight, computed from the
    mock's request log (arrival t and completion t_end of every request):
    8 (the default) for the standard table, 3 for a table with the option
    max_concurrency '3' (14 waves, 4.2 s: the bound there is 75%, 9 s);
  - the same join with usage_fdw.enable_batched_join off is a nested loop
    and gives the same rows (run without latency, to keep the test short);
  - while it waits for the API, the backend shows the wait event
    UsageFdwHttp in pg_stat_activity (PostgreSQL 17+; "Extension" before);
  - memory: 300 outer rows of 1 MiB each under batch_size 10000 and
    work_mem 4MB: a batch stops taking outer rows at work_mem, so the
    backend's peak RSS (VmHWM) grows by far less than the 300 MiB a batch of
    all of them would hold (bound: 64 MiB, generous; the nested loop needs
    about 32 MiB for the same query).

Environment (scripts/test.sh, or scripts/cluster.sh's env.sh): PGHOST,
PGPORT, PGUSER, MOCK_URL.  Uses the shared mock: resets it at the start and
at the end.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fdwtest import check, database, main, mock, psql_script  # noqa: E402

DB = "usage_fdw_t_batchjoin"
NKEYS = 40
LATENCY_MS = 300
ONE_AT_A_TIME_S = NKEYS * LATENCY_MS / 1000.0

SETUP = r"""
\set ON_ERROR_STOP 1
CREATE EXTENSION usage_fdw;
CREATE SERVER avepoint FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'avepoint', base_url :'mock_url', max_retries '2');
CREATE USER MAPPING FOR CURRENT_USER SERVER avepoint OPTIONS (access_token 'test-token');
IMPORT FOREIGN SCHEMA avepoint FROM SERVER avepoint INTO public;
CREATE FOREIGN TABLE flows_c3 (flow_id text, environment_id text, connection_id text)
  SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage', max_concurrency '3');
CREATE TABLE local_flows (id text PRIMARY KEY);
INSERT INTO local_flows SELECT 'flow-' || lpad(g::text, 4, '0') FROM generate_series(1, %d) g;
ANALYZE local_flows;
""" % NKEYS

QUERY = ("SELECT l.id, u.connection_id FROM local_flows l"
         " JOIN %s u ON u.flow_id = l.id ORDER BY 1, 2")


def psql(sql, timeout=120):
    return psql_script(DB, sql, timeout=timeout)


def max_in_flight(requests):
    """The most requests the mock was serving at one moment."""
    events = []
    for r in requests:
        if r.get("t") is None or r.get("t_end") is None:
            continue
        events.append((r["t"], 1))
        events.append((r["t_end"], -1))
    # at equal times, a completion before an arrival
    events.sort(key=lambda e: (e[0], e[1]))
    cur = best = 0
    for _, d in events:
        cur += d
        best = max(best, cur)
    return best


def expected_rows():
    rows = []
    for j in range(NKEYS):
        for i in (2 * j, 2 * j + 1):
            rows.append("flow-%04d|conn-%05d" % (j + 1, i + 1))
    return rows


def batched_run(table, conc, share):
    mock.reset()
    mock.config({"avepoint_rows": 2 * NKEYS, "latency_ms": LATENCY_MS})
    r = psql("EXPLAIN (COSTS OFF) " + QUERY % table + ";")
    check("%s: the plan is the batched join" % table,
          r.returncode == 0 and "UsageBatchedJoin" in r.stdout, r.stdout + r.stderr)
    mock.reset()
    mock.config({"avepoint_rows": 2 * NKEYS, "latency_ms": LATENCY_MS})
    t0 = time.monotonic()
    r = psql(QUERY % table + ";")
    elapsed = time.monotonic() - t0
    rows = r.stdout.split()
    check("%s: the join returns the %d rows of %d flows" % (table, 2 * NKEYS, NKEYS),
          r.returncode == 0 and rows == expected_rows(), r.stderr + "\n" + "\n".join(rows[:10]))
    reqs = mock.requests()
    api = [q for q in reqs if "/cloudflows" in q.get("path", "")]
    flow_ids = sorted(v for q in api for k, v in q.get("query", []) if k == "flowId")
    check("%s: one request per distinct key (%d requests, each flowId once)" % (table, NKEYS),
          len(api) == NKEYS and flow_ids == ["flow-%04d" % (j + 1) for j in range(NKEYS)],
          "%d requests: %s" % (len(api), flow_ids[:50]))
    bound = ONE_AT_A_TIME_S * share
    waves = -(-NKEYS // conc)
    print("%s: %.2f s for %d keys at %d ms (one at a time: %.1f s; %d waves of %d: %.1f s)"
          % (table, elapsed, NKEYS, LATENCY_MS, ONE_AT_A_TIME_S, waves, conc,
             waves * LATENCY_MS / 1000.0), flush=True)
    check("%s: %.2f s, well under %s the one-at-a-time %.1f s (bound %.1f s)"
          % (table, elapsed, "half" if share == 0.5 else "%d%% of" % (share * 100),
             ONE_AT_A_TIME_S, bound), elapsed < bound)
    peak = max_in_flight(api)
    print("%s: at most %d requests in flight" % (table, peak), flush=True)
    check("%s: never more than max_concurrency %d requests in flight (saw %d)" % (table, conc, peak),
          1 < peak <= conc)


MEMORY_SETUP = r"""
CREATE FOREIGN TABLE IF NOT EXISTS flows_b10k (flow_id text, connection_id text)
  SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage', batch_size '10000');
SET work_mem = '4MB';
SET enable_hashjoin = off;
SET enable_mergejoin = off;
SELECT 'pid', pg_backend_pid();
"""
MEMORY_QUERY = r"""
EXPLAIN (COSTS OFF)
WITH k AS MATERIALIZED (SELECT 'nf-' || g AS id, repeat(md5(g::text), 32768) AS pad
                          FROM generate_series(1, 300) g)
SELECT count(*), sum(length(k.pad)) FROM k LEFT JOIN flows_b10k u ON u.flow_id = k.id;
WITH k AS MATERIALIZED (SELECT 'nf-' || g AS id, repeat(md5(g::text), 32768) AS pad
                          FROM generate_series(1, 300) g)
SELECT 'result', count(*), sum(length(k.pad)) FROM k LEFT JOIN flows_b10k u ON u.flow_id = k.id;
SELECT 'done', 1;
"""
MEMORY_BOUND_KB = 64 * 1024


def vm_hwm_kb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def read_until(proc, prefix, seen):
    """Lines of psql's output up to the one that starts with prefix."""
    while True:
        line = proc.stdout.readline()
        if not line:
            return None
        seen.append(line)
        if line.startswith(prefix):
            return line.strip()


def memory_run():
    """The batch of 300 rows of 1 MiB stays within about work_mem: the
    backend's VmHWM, read from /proc while psql keeps it alive."""
    import subprocess
    from fdwtest import pg_tool
    mock.reset()
    proc = subprocess.Popen([pg_tool("psql"), "-X", "-At", "-d", DB, "-f", "-"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    seen = []
    try:
        proc.stdin.write(MEMORY_SETUP)
        proc.stdin.flush()
        line = read_until(proc, "pid|", seen)
        pid = int(line.split("|")[1]) if line else None
        before = vm_hwm_kb(pid) if pid else None
        proc.stdin.write(MEMORY_QUERY)
        proc.stdin.flush()
        read_until(proc, "done|", seen)
        after = vm_hwm_kb(pid) if pid else None
    finally:
        proc.stdin.close()
        proc.wait(timeout=60)
    out = "".join(seen)
    check("memory: 300 outer rows of 1 MiB under batch_size 10000: the batched join, right result",
          "UsageBatchedJoin" in out and "result|300|314572800" in out, out[-1500:])
    grew = (after - before) if before is not None and after is not None else None
    print("memory: backend VmHWM %s kB -> %s kB (work_mem 4MB)" % (before, after), flush=True)
    check("memory: the backend's peak RSS grew by %s kB, under %d kB (a batch stops at work_mem)"
          % (grew, MEMORY_BOUND_KB), grew is not None and grew < MEMORY_BOUND_KB)


def wait_event_run():
    """pg_stat_activity names what a backend waiting on the API waits on."""
    import subprocess
    from fdwtest import pg_tool
    mock.reset()
    mock.config({"avepoint_rows": 2 * NKEYS, "latency_ms": LATENCY_MS})
    proc = subprocess.Popen([pg_tool("psql"), "-X", "-At", "-d", DB, "-c",
                             "/* wait-event-probe */ " + QUERY % "cloud_flow_connection_usage"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    seen = set()
    try:
        for _ in range(20):
            time.sleep(0.1)
            r = psql("SELECT wait_event_type || ':' || wait_event FROM pg_stat_activity"
                     " WHERE query LIKE '/* wait-event-probe */%' AND pid <> pg_backend_pid();")
            seen.update(l for l in r.stdout.split() if l)
    finally:
        proc.communicate(timeout=120)
    version = int(psql("SHOW server_version_num;").stdout.strip() or 0)
    want = "Extension:UsageFdwHttp" if version >= 170000 else "Extension:Extension"
    check("while it waits for the API, pg_stat_activity shows %s" % want, want in seen,
          "seen: %s" % sorted(seen))


def test():
    mock.reset()
    with database(DB, SETUP, setup="setup: server, user mapping, tables, %d local flows" % NKEYS):
        batched_run("cloud_flow_connection_usage", 8, 0.5)
        batched_run("flows_c3", 3, 0.75)

        # the nested loop gives the same rows (no latency: it is one at a time)
        mock.reset()
        mock.config({"avepoint_rows": 2 * NKEYS})
        r = psql("SET usage_fdw.enable_batched_join = off;\nEXPLAIN (COSTS OFF) "
                 + QUERY % "cloud_flow_connection_usage" + ";\n"
                 + QUERY % "cloud_flow_connection_usage" + ";")
        out = r.stdout.split("\n")
        check("batched join off: a nested loop with the same rows",
              r.returncode == 0 and "Nested Loop" in r.stdout
              and [l for l in out if l.startswith("flow-")] == expected_rows(),
              r.stdout[-2000:] + r.stderr)

        wait_event_run()
        memory_run()


if __name__ == "__main__":
    main(test)
