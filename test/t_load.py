#!/usr/bin/env python3
"""A small load test: pgbench clients run FDW queries while ~5% of the API
requests fail in mixed ways; errors are caught and counted, never crashes.

The shared mock gets probabilistic fault rules (test/MOCK.md, "p"; seeded, so
runs are reproducible) on every API request, about 5% in total:

  503                          retried by the FDW, cured        -> no error
  500, sticky (same request,   persists beyond max_retries 2    -> HV000
    same answer)
  malformed JSON body                                           -> HV000
  truncated body               retried, cured (HV00N if it repeats)
  300 ms delay                                                  -> no error
  a numeric field "n/a"        does not convert                 -> 22P02

pgbench (-c 6 -j 2 -t 150, fixed --random-seed) runs a script calling
load_q(), a PL/pgSQL function that runs one of three FDW queries with random
parameters (consumption_by_folder for a random tenant of the test dataset and
month; daily_consumption_by_service over a random range; an IN list of random
flows) and records the outcome in load_log: '00000' and the row count, the
SQLSTATE of any error (EXCEPTION WHEN OTHERS, GET STACKED DIAGNOSTICS), or
'WRONG' when a query succeeded with another row count than the dataset's.
pgbench itself therefore sees no failures.

Checks: all transactions processed, no crash in the server log, every
SQLSTATE in the expected set, no wrong result, errors > 0 and < 20% of the
queries.  Prints a report table.

Environment (scripts/test.sh, or scripts/cluster.sh's env.sh): PGHOST,
PGPORT, PGUSER, MOCK_URL; USAGE_FDW_PGLOG (server log; else $PGHOST/postgres.log).
Uses the shared mock: resets it at the start and at the end.
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fdwtest import ServerLog, check, database, main, mock, pg_tool, run, scratch_dir  # noqa: E402

DB = "usage_fdw_t_load"
CLIENTS, THREADS, TRANSACTIONS = 6, 2, 150
PGBENCH_SEED = 4242
EXPECTED_STATES = {"HV000", "HV00N", "22P02"}
MAX_ERROR_SHARE = 0.20


API = {"path_regex": "^/(lease_|smp)/"}            # every API route, not the token endpoints
FAULTS = [
    {"name": "503_cured", "match": API, "times": -1, "p": 0.015, "seed": 1,
     "action": {"status": 503}},
    {"name": "500_sticky", "match": API, "times": -1, "p": 0.008, "seed": 2, "sticky": True,
     "action": {"status": 500}},
    {"name": "bad_json", "match": API, "times": -1, "p": 0.008, "seed": 3,
     "action": {"body_raw": '{"items": [{"folderKey": "x", "consumedBy'}},
    {"name": "truncated", "match": API, "times": -1, "p": 0.006, "seed": 4,
     "action": {"truncate": True}},
    {"name": "delay_300ms", "match": API, "times": -1, "p": 0.008, "seed": 5,
     "action": {"delay_ms": 300}},
    {"name": "bad_number", "match": {"path_regex": "^/lease_/"}, "times": -1, "p": 0.005, "seed": 6,
     "action": {"item_patch": {"consumedBySelf": "n/a", "consumedAmount": "n/a"}}},
]

SETUP = r"""
\set ON_ERROR_STOP 1
CREATE EXTENSION usage_fdw;
CREATE SERVER uipath FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'uipath', base_url :'mock_url',
           organization_id '11111111-1111-1111-1111-111111111111', max_retries '2');
CREATE SERVER avepoint FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'avepoint', base_url :'mock_url', max_retries '2');
CREATE USER MAPPING FOR CURRENT_USER SERVER uipath OPTIONS (access_token 'test-token');
CREATE USER MAPPING FOR CURRENT_USER SERVER avepoint OPTIONS (access_token 'test-token');
IMPORT FOREIGN SCHEMA uipath FROM SERVER uipath INTO public;
IMPORT FOREIGN SCHEMA avepoint FROM SERVER avepoint INTO public;

CREATE TABLE load_log (
  id bigserial PRIMARY KEY,
  kind text NOT NULL,
  sqlstate text NOT NULL,       -- '00000', the error's SQLSTATE, or 'WRONG'
  nrows bigint,
  message text
);

-- One FDW query chosen by kind with the given random numbers; the outcome goes to load_log.
CREATE FUNCTION load_q(kind int, tenant int, month int, code int, start int, len int,
                       f1 int, f2 int, f3 int) RETURNS void
LANGUAGE plpgsql SET jit = off AS $$
DECLARE
  t text := (ARRAY['22222222-2222-2222-2222-222222222222',
                   '33333333-3333-3333-3333-333333333333'])[tenant + 1];
  c text := (ARRAY['RU', 'AIU', 'PLTU'])[code + 1];
  m timestamptz := (date '2023-01-01' + make_interval(months => month))::timestamp AT TIME ZONE 'UTC';
  d date := date '2024-01-01' + start;
  k text := (ARRAY['folder', 'daily', 'flows'])[kind];
  n bigint;
  total numeric;
  want bigint;
  st text;
  msg text;
BEGIN
  IF kind = 1 THEN
    SELECT count(*), sum(consumed_by_self) INTO n, total FROM consumption_by_folder
     WHERE tenant_id = t AND consumable_code = c
       AND start_date = m AND end_date = m + interval '1 month';
    want := CASE tenant WHEN 0 THEN 5 ELSE 2 END;
  ELSIF kind = 2 THEN
    SELECT count(*), sum(consumed_amount) INTO n, total FROM daily_consumption_by_service
     WHERE tenant_id = t AND consumable_code = c AND date >= d AND date < d + len;
    want := 3 * len;
  ELSE
    SELECT count(connection_id) INTO n FROM cloud_flow_connection_usage
     WHERE flow_id IN (format('flow-%s', lpad(f1::text, 4, '0')),
                       format('flow-%s', lpad(f2::text, 4, '0')),
                       format('flow-%s', lpad(f3::text, 4, '0')));
    -- flows 1..5 have two rows each, higher ones none
    SELECT 2 * count(DISTINCT f) INTO want FROM unnest(ARRAY[f1, f2, f3]) f WHERE f <= 5;
  END IF;
  INSERT INTO load_log (kind, sqlstate, nrows)
  VALUES (k, CASE WHEN n = want THEN '00000' ELSE 'WRONG' END, n);
EXCEPTION WHEN OTHERS THEN
  GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT;
  INSERT INTO load_log (kind, sqlstate, message) VALUES (k, st, msg);
END
$$;
"""

PGBENCH_SCRIPT = r"""
\set kind random(1, 3)
\set tenant random(0, 1)
\set month random(0, 23)
\set code random(0, 2)
\set start random(0, 365)
\set len random(1, 31)
\set f1 random(1, 8)
\set f2 random(1, 8)
\set f3 random(1, 8)
SELECT load_q(:kind, :tenant, :month, :code, :start, :len, :f1, :f2, :f3);
"""


def psql(sql):
    r = run([pg_tool("psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", DB, "-F", "|",
             "-v", "mock_url=" + os.environ["MOCK_URL"], "-f", "-"], input=sql)
    if r.returncode != 0:
        raise RuntimeError("psql failed: %s" % r.stderr.strip())
    return [l.split("|") for l in r.stdout.splitlines() if l]


def test():
    log = ServerLog()
    with scratch_dir("usage_fdw_t_load.") as tmp:
        mock.reset()
        with database(DB, SETUP):
            check("setup: servers (max_retries 2), tables, load_log, load_q()", True)
            load(tmp, log)


def load(tmp, log):
    """pgbench with faults; the report; the checks of the outcomes."""
    # a dry run of each kind without faults: the function works
    rows = psql("SELECT load_q(1, 0, 0, 0, 0, 1, 1, 2, 9); SELECT load_q(2, 1, 0, 1, 10, 3, 1, 1, 1);"
                "SELECT load_q(3, 0, 0, 2, 0, 1, 1, 1, 7);"
                "SELECT kind, sqlstate, nrows FROM load_log ORDER BY id; TRUNCATE load_log;")
    check("dry run without faults: folder 5 rows, daily 9 rows, flows 2 rows",
          rows == [["folder", "00000", "5"], ["daily", "00000", "9"], ["flows", "00000", "2"]], rows)

    mock.reset()
    mock.add_faults(FAULTS)
    script = os.path.join(tmp, "load.pgbench")
    with open(script, "w", encoding="ascii") as f:
        f.write(PGBENCH_SCRIPT)
    cmd = [pg_tool("pgbench"), "-n", "-c", str(CLIENTS), "-j", str(THREADS), "-t", str(TRANSACTIONS),
           "--random-seed=%d" % PGBENCH_SEED, "-f", script, DB]
    print("running: %s" % " ".join(cmd[1:]), flush=True)
    r = run(cmd, timeout=100)
    out = r.stdout + r.stderr
    m = re.search(r"number of transactions actually processed: (\d+)/(\d+)", out)
    done, planned = (int(m.group(1)), int(m.group(2))) if m else (None, None)
    mf = re.search(r"number of failed transactions: (\d+)", out)
    pgbench_failed = int(mf.group(1)) if mf else None
    mt = re.search(r"tps = ([0-9.]+)", out)
    check("pgbench exited 0", r.returncode == 0, out[-3000:])
    check("pgbench processed all transactions (%s/%s)" % (done, planned),
          done is not None and done == planned == CLIENTS * TRANSACTIONS, out[-3000:])
    check("pgbench saw no failed transaction (%s)" % pgbench_failed, pgbench_failed in (None, 0), out[-3000:])

    # the outcomes
    by_state = psql("SELECT sqlstate, count(*) FROM load_log GROUP BY 1 ORDER BY 1;")
    by_kind = psql("SELECT kind, count(*), count(*) FILTER (WHERE sqlstate <> '00000') "
                   "FROM load_log GROUP BY 1 ORDER BY 1;")
    samples = psql("SELECT DISTINCT ON (sqlstate) sqlstate, left(message, 160) FROM load_log "
                   "WHERE sqlstate <> '00000' ORDER BY sqlstate, id;")
    counts = {s: int(n) for s, n in by_state}
    queries = sum(counts.values())
    ok = counts.get("00000", 0)
    errors = {s: n for s, n in counts.items() if s not in ("00000", "WRONG")}
    nerr = sum(errors.values())
    wrong = counts.get("WRONG", 0)

    reqs = mock.requests()
    faults = mock.faults()
    fired = sum(f["fired"] for f in faults)
    crashes = [l for l in log.new_text().splitlines() if "terminated by signal" in l]

    # the report
    print()
    print("  load report (pgbench -c %d -j %d -t %d)" % (CLIENTS, THREADS, TRANSACTIONS))
    print("  %-34s %s" % ("transactions processed", "%s/%s" % (done, planned)))
    if mt:
        print("  %-34s %s" % ("tps (information only)", mt.group(1)))
    print("  %-34s %d" % ("queries recorded", queries))
    for kind, n, e in by_kind:
        print("  %-34s %s (%s errors)" % ("  " + kind, n, e))
    print("  %-34s %d" % ("successful queries", ok))
    print("  %-34s %d (%.1f%%)" % ("errors", nerr, 100.0 * nerr / queries if queries else 0))
    for cls in sorted({s[:2] for s in errors}):
        print("  %-34s %d" % ("  class " + cls, sum(n for s, n in errors.items() if s[:2] == cls)))
        for s in sorted(x for x in errors if x[:2] == cls):
            print("  %-34s %d" % ("    " + s, errors[s]))
    print("  %-34s %d" % ("wrong results", wrong))
    print("  %-34s %d" % ("crashes (terminated by signal)", len(crashes)))
    print("  %-34s %d" % ("mock: API requests", sum(1 for q in reqs if "connect/token" not in q["path"])))
    print("  %-34s %d (%.1f%% of requests)" % ("mock: faults injected", fired,
                                              100.0 * fired / len(reqs) if reqs else 0))
    for f in faults:
        print("  %-34s %d" % ("  " + f["name"], f["fired"]))
    for s, msg in samples:
        print("  e.g. %s: %s" % (s, msg))
    print(flush=True)

    check("every query recorded (%d of %d)" % (queries, CLIENTS * TRANSACTIONS),
          queries == CLIENTS * TRANSACTIONS, counts)
    check("no crash in the server log (%s)" % log.path, log.found and not crashes,
          "\n".join(crashes[:10]) or "server log not found")
    check("every SQLSTATE is an expected one (%s)" % ", ".join(sorted(EXPECTED_STATES)),
          set(errors) <= EXPECTED_STATES, errors)
    check("no query succeeded with a wrong row count", wrong == 0,
          psql("SELECT kind, nrows FROM load_log WHERE sqlstate = 'WRONG' LIMIT 10;"))
    check("errors > 0 (%d)" % nerr, nerr > 0)
    check("errors < %d%% of the queries (%.1f%%)" % (MAX_ERROR_SHARE * 100, 100.0 * nerr / max(queries, 1)),
          nerr < MAX_ERROR_SHARE * queries)
    check("faults hit %.1f%% of the requests (3..8%% expected)" % (100.0 * fired / max(len(reqs), 1)),
          0.03 <= fired / max(len(reqs), 1) <= 0.08)
    mock.clear_faults()
    rows = psql("SELECT load_q(1, 1, 5, 0, 0, 1, 1, 1, 1); "
                "SELECT sqlstate, nrows FROM load_log ORDER BY id DESC LIMIT 1;")
    check("without faults again, a query succeeds", rows == [["00000", "2"]], rows)


if __name__ == "__main__":
    main(test)
