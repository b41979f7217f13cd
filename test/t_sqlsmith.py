#!/usr/bin/env python3
"""Random queries: Debian's sqlsmith against the FDW's tables, with faults.

sqlsmith generates random SQL from the catalog of the database it connects to.
This stage gives it a dedicated database (test/sqlsmith_setup.sql): the
imported foreign tables of both providers, views that supply the required
parameters (by constants and by joins with local tables), per-tenant foreign
tables as partitions of a partitioned table and as members of UNION ALL views,
small local tables with NULLs and duplicates, and the shapes of the
differential stage (t_differential.py): citext and char(n) columns, views with
a fence (MATERIALIZED CTE, OFFSET 0, a window) over a foreign table, and a view
whose required parameters come from two relations.  It runs as a role that may
only read (and UPDATE, which the FDW refuses and triggers turn into no-ops on
the local tables), so it can neither change the fixtures nor call superuser
functions.  While it runs, the mock injects a few faults (503 and 500 that
persist beyond the retries, malformed JSON, a short delay, values that do not
convert).

sqlsmith runs SMITH_CHUNKS times SMITH_PER_CHUNK queries (16 x 500), with the
fixed seeds SMITH_SEED, SMITH_SEED+1, ..., with --exclude-catalog, under
coreutils' timeout (SMITH_TIMEOUT seconds for all runs).  Short runs keep the
query stream the same from run to run: sqlsmith steers its generator by the
outcomes so far, and a single outcome that varies (now(), lastval(), an OID)
would change every later query of a long run.  For the same reason the faults
are "sticky" (decided per request, not by arrival order).  sqlsmith sets
statement_timeout = 1s on its own connection, so no query hangs; errors are its
normal business (most random queries are refused by the parser).  The database
sets log_error_verbosity = verbose so that every error in the server log
carries its SQLSTATE; only log lines written after the stage started are read.

The stage fails on:
  - a backend crash: "terminated by signal", "server process ... was
    terminated / exited with exit code", "terminating any other active server
    processes", a PANIC, or sqlsmith losing its connection;
  - an internal error: SQLSTATE XX000/XX001/XX002, or a message such as
    "could not devise a query plan", "cache lookup failed", "unrecognized node
    type", "variable not found in subplan target list", "failed to build any",
    "no relation entry", "invalid memory alloc request", "unexpected ...";
except for the few PostgreSQL bugs of its own that sqlsmith is known to hit,
listed by name in KNOWN_PG_BUGS (they are printed when they occur).

It prints the query count, the time, a histogram of the SQLSTATEs in the
server log, and every internal error with the statement that raised it.

Environment (scripts/test.sh, or scripts/cluster.sh's env.sh): PGHOST, PGPORT,
PGUSER, MOCK_URL; USAGE_FDW_PGLOG (server log).  Knobs: SMITH_CHUNKS,
SMITH_PER_CHUNK, SMITH_SEED, SMITH_TIMEOUT; for debugging SMITH_DUMP=FILE
(sqlsmith's output with every query) and SMITH_DEBUG=1 (the mock's requests).
Uses the shared mock: resets it at the start and at the end.  Needs Debian's
sqlsmith (scripts/deps.sh installs it).
"""

import collections
import contextlib
import json
import os
import re
import shutil
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fdwtest import ServerLog, check, database, drop_database, main, mock, pg_tool, require, run  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
DB = "usage_fdw_t_sqlsmith"
ROLE = "usage_fdw_smith"
CHUNKS = int(os.environ.get("SMITH_CHUNKS", "16"))
PER_CHUNK = int(os.environ.get("SMITH_PER_CHUNK", "500"))
QUERIES = CHUNKS * PER_CHUNK
SEED = int(os.environ.get("SMITH_SEED", "20240107"))
TIMEOUT = int(os.environ.get("SMITH_TIMEOUT", "150"))
MIN_SHARE = 0.95            # sqlsmith must get through this share of QUERIES

# Faults are "sticky" (decided by a hash of the request, test/MOCK.md) or aimed
# at one request: the same request gets the same answer in every run, whatever
# the order of the requests, so that the outcome of each query, and with it the
# queries sqlsmith generates next (it steers by past outcomes), repeat from run
# to run.  The sticky ones hit the two routes whose requests carry only values
# from the fixtures, not the daily route, whose open-ended ranges end "now"
# (except one fixed PLTU range).  A sticky 5xx persists beyond the retries: the
# query fails with HV000.
API = {"path_regex": "^/smp/|/consumption-by-folder$"}
FAULTS = [
    {"name": "503", "match": API, "times": -1, "p": 0.05, "seed": 11, "sticky": True,
     "action": {"status": 503}},
    {"name": "500", "match": API, "times": -1, "p": 0.03, "seed": 12, "sticky": True,
     "action": {"status": 500}},
    # flows_some's fan-out: one of its three requests (flow-0003) gets a malformed body
    {"name": "bad_json", "match": {"path_regex": "^/smp/", "query": {"flowId": "flow-0003"}}, "times": -1,
     "action": {"body_raw": '{"connectionUsageCloudFlows": [{"flowId": "x", "environ'}},
    {"name": "delay_50ms", "match": API, "times": -1, "p": 0.15, "seed": 14, "sticky": True,
     "action": {"delay_ms": 50}},
    # folder_fanout's fan-out: one of its four requests (tenant 3333..., AIU) has a bad number
    {"name": "bad_number", "match": {"path_regex": "/consumption-by-folder$",
                                     "body": {"tenantId": "33333333-3333-3333-3333-333333333333",
                                              "consumableCode": "AIU", "aggregateByOwnership": True}},
     "times": -1, "action": {"item_patch": {"consumedBySelf": "n/a"}}},
    {"name": "daily_pltu_bad_number", "match": {"path_regex": "/daily-consumption-by-service$",
                                                 "body": {"consumableCode": "PLTU"}},
     "times": -1, "p": 0.3, "seed": 16, "sticky": True, "action": {"item_patch": {"consumedAmount": "n/a"}}},
]

# Internal errors of PostgreSQL itself that random SQL is known to reach; they
# say nothing about the FDW.  name: (regex on the message, why it is ignored)
KNOWN_PG_BUGS = {
    "typmodout-called-directly": (
        r"^invalid (INTERVAL|TIME|TIMESTAMP|NUMERIC|BIT|VARCHAR|CHAR)\w* typmod",
        "sqlsmith calls a type's typmod output function with a random integer; the function "
        "elog()s (XX000) on a value no column can have: SELECT intervaltypmodout(47)"),
    "unknown-to-text-coercion": (
        r"^failed to find conversion function from unknown to ",
        "a CASE over expressions cast to type unknown has no coercion (elog XX000 in "
        "coerce_type): SELECT CASE WHEN false THEN nullif(NULL::unknown, NULL::unknown)::unknown "
        "ELSE NULL::unknown END"),
}

# What makes a log record an internal error (besides SQLSTATE class XX).
INTERNAL_PATTERNS = [
    r"could not devise a query plan", r"cache lookup failed", r"unrecognized node type",
    r"variable not found in subplan target list", r"failed to build any", r"no relation entry",
    r"invalid memory alloc request", r"unexpected", r"unrecognized join type",
    r"plan should not reference subplan", r"wrong varno", r"bogus var",
    r"could not find pathkey item", r"too late to create a new PlaceHolderInfo",
    r"failed to assign all NestLoopParams", r"unrecognized token", r"tuple concurrently",
    r"could not find (plan|attribute|param)", r"TRAP: ",
]
# Classes of clean, user-facing errors: a message pattern above alone does not
# make them internal (an FDW's "unexpected end of JSON" is a clean HV000).
CLEAN_CLASSES = ("HV", "22", "57", "0A", "42", "28", "08", "53", "54", "55", "25")
CRASH_PATTERNS = [
    r"terminated by signal", r"server process \(PID \d+\) was terminated",
    r"server process \(PID \d+\) exited with exit code", r"terminating any other active server processes",
    r"all server processes terminated; reinitializing", r"database system was not properly shut down",
    r"\bPANIC:  ",
]

RECORD_START = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(\.\d+)? \S+ \[(\d+)\] ")
ERROR_LINE = re.compile(r"\b(ERROR|FATAL|PANIC):  (?:([0-9A-Z]{5}): )?(.*)$")


def psql(sql, db=DB, variables=None, user=None):
    cmd = [pg_tool("psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db]
    if user:
        cmd += ["-U", user]
    for k, v in (variables or {}).items():
        cmd += ["-v", "%s=%s" % (k, v)]
    r = run(cmd + ["-f", "-"], input=sql)
    if r.returncode != 0:
        raise RuntimeError("psql failed: %s" % r.stderr.strip())
    return [l.split("|") for l in r.stdout.splitlines() if l]


def log_records(text):
    """The server log split into records (a line with the prefix and its continuations)."""
    recs = []
    for line in text.splitlines():
        if RECORD_START.match(line) or not recs:
            recs.append([line])
        else:
            recs[-1].append(line)
    return recs


def analyse_log(text):
    """SQLSTATE histogram, crashes, internal errors (with statements), known bugs."""
    states = {}
    crashes, internal, known = [], [], []
    recs = log_records(text)
    last_error = {}                              # pid -> the pending error entry
    for rec in recs:
        head = rec[0]
        m = RECORD_START.match(head)
        pid = m.group(2) if m else "?"
        body = head[m.end():] if m else head
        if any(re.search(p, body) for p in CRASH_PATTERNS):
            crashes.append(body)
        if body.startswith("DETAIL:  Failed process was running: ") and crashes:
            crashes[-1] += "\n    " + "\n    ".join([body[len("DETAIL:  "):]] + rec[1:])
        if body.startswith("STATEMENT:  ") and pid in last_error:
            last_error.pop(pid)["statement"] = "\n".join([body[len("STATEMENT:  "):]] + rec[1:])
            continue
        em = ERROR_LINE.match(body) if body.split(":", 1)[0] in ("ERROR", "FATAL", "PANIC") else None
        if not em:
            continue
        level, state, msg = em.group(1), em.group(2) or "?????", em.group(3)
        states[state] = states.get(state, 0) + 1
        is_internal = state.startswith("XX") or (
            state[:2] not in CLEAN_CLASSES and any(re.search(p, msg) for p in INTERNAL_PATTERNS))
        if not is_internal:
            last_error.pop(pid, None)
            continue
        entry = {"state": state, "message": msg, "statement": None, "bug": None}
        for name, (pat, _) in KNOWN_PG_BUGS.items():
            if re.search(pat, msg):
                entry["bug"] = name
        (known if entry["bug"] else internal).append(entry)
        last_error[pid] = entry
    return states, crashes, internal, known


@contextlib.contextmanager
def login_role(name):
    """A login role for the test's lifetime (dropped afterwards; warn, never fail)."""
    psql("DROP ROLE IF EXISTS %s; CREATE ROLE %s LOGIN;" % (name, name), db="postgres")
    try:
        yield name
    finally:
        try:
            psql("DROP ROLE IF EXISTS %s;" % name, db="postgres")
        except Exception as e:
            print("warning: could not drop role %s: %s" % (name, e), flush=True)


def test():
    t_start = time.monotonic()
    log = ServerLog()
    smith = shutil.which("sqlsmith")
    require("sqlsmith is installed (scripts/deps.sh)", smith is not None, "sqlsmith not on PATH")
    mock.reset()
    drop_database(DB)           # a leftover database may hold objects of the role
    with login_role(ROLE), database(DB):
        psql("ALTER DATABASE %s SET log_error_verbosity = verbose;" % DB, db="postgres")
        psql(open(os.path.join(HERE, "sqlsmith_setup.sql"), encoding="utf-8").read(),
             variables={"mock_url": os.environ["MOCK_URL"], "smith": ROLE})
        # the fixtures work, without faults, as the role sqlsmith uses
        rows = psql("SELECT (SELECT count(*) FROM smith.folder_jan), (SELECT count(*) FROM smith.flows_union),"
                    " (SELECT count(*) FROM smith.flows_by_tenant), (SELECT count(*) FROM smith.daily_week),"
                    " (SELECT count(*) FROM smith.folder_per_tenant);", user=ROLE)
        check("fixtures: views and per-tenant tables answer as %s (%s)" % (ROLE, rows),
              rows == [["5", "10", "10", "21", "12"]], rows)

        mock.reset()
        mock.add_faults(FAULTS)
        conninfo = "host=%s port=%s dbname=%s user=%s application_name=sqlsmith" % (
            os.environ["PGHOST"], os.environ["PGPORT"], DB, ROLE)
        # CHUNKS runs of sqlsmith, each from its own seed (SEED, SEED+1, ...):
        # sqlsmith steers its generator by the outcomes so far, so one outcome
        # that differs from run to run (a query on now(), an OID) changes every
        # later query; short runs keep the query stream the same run after run.
        secs = 0.0
        done, rcs, outs = 0, [], []
        deadline = time.monotonic() + TIMEOUT
        for i in range(CHUNKS):
            left = int(deadline - time.monotonic())
            if left < 5:
                outs.append("out of time (SMITH_TIMEOUT %d s) before chunk %d" % (TIMEOUT, i + 1))
                break
            cmd = ["timeout", "-k", "10", str(left), smith, "--target=" + conninfo,
                   "--seed=%d" % (SEED + i), "--max-queries=%d" % PER_CHUNK, "--exclude-catalog", "--verbose"]
            if os.environ.get("SMITH_DUMP"):         # debugging: every query to this file
                cmd.append("--dump-all-queries")
            if i == 0:
                print("running %d x: %s" % (CHUNKS, " ".join(cmd[4:])), flush=True)
            t0 = time.monotonic()
            r = run(cmd, timeout=left + 30)
            secs += time.monotonic() - t0
            out = r.stdout + r.stderr
            outs.append(out)
            rcs.append(r.returncode)
            counts = [int(x) for x in re.findall(r"^queries: (\d+)", out, re.M)]
            done += max(counts) if counts else 0
        out = "\n".join(outs)
        if os.environ.get("SMITH_DUMP"):
            with open(os.environ["SMITH_DUMP"], "w", encoding="utf-8") as f:
                f.write(out)
        # progress: one character per query ('.' ok, 'e' error, 't' timeout,
        # 'S' syntax error, 'c' connection lost)
        progress = "".join(re.findall(r"^[.etscS]+$", out, re.M))
        broken = re.findall(r"^.*(server closed the connection|connection to server|"
                            r"terminating connection because of crash).*$", out, re.M)
        if "c" in progress:
            broken.insert(0, "%d queries lost the connection ('c' in sqlsmith's progress)"
                          % progress.count("c"))

        reqs = mock.requests()
        faults = mock.faults()
        mock.clear_faults()
        alive = run([pg_tool("psql"), "-X", "-At", "-d", DB, "-c", "SELECT 1"])

        text = log.new_text()
        states, crashes, internal, known = analyse_log(text)

        # the report
        print()
        print("  sqlsmith report (%d runs of --max-queries %d, seeds %d..%d)" % (
            CHUNKS, PER_CHUNK, SEED, SEED + CHUNKS - 1))
        print("  %-32s %d in %.1f s" % ("queries executed", done, secs))
        api = [q for q in reqs if "connect/token" not in q["path"]]
        per_req = collections.Counter(json.dumps([q["method"], q["path"], q["query"], q["body"]], sort_keys=True)
                                      for q in api)
        print("  %-32s %d (%d distinct), %d answered by a fault" % (
            "mock: API requests", len(api), len(per_req), sum(1 for q in api if q.get("fault"))))
        if os.environ.get("SMITH_DEBUG"):
            for k, n in sorted(per_req.items()):
                print("    %4d x %s" % (n, k))
        print("  %-32s %s" % ("mock: faults injected",
                              ", ".join("%s %d" % (f["name"], f["fired"]) for f in faults)))
        print("  %-32s %d" % ("errors in the server log", sum(states.values())))
        for s in sorted(states, key=lambda s: (-states[s], s)):
            print("  %-32s %d" % ("  " + s, states[s]))
        print("  %-32s %d ok, %d errors, %d timeouts" % ("sqlsmith's own count", progress.count("."),
                                                         progress.count("e") + progress.count("S"),
                                                         progress.count("t")))
        for name in sorted({e["bug"] for e in known}):
            print("  known PostgreSQL bug, ignored: %s (%d): %s" % (
                name, sum(1 for e in known if e["bug"] == name), KNOWN_PG_BUGS[name][1]))
        # each distinct internal error once, with the shortest statement that raised it
        distinct = {}
        for e in internal:
            distinct.setdefault((e["state"], e["message"]), []).append(e["statement"] or "(not logged)")
        for (state, msg), stmts in sorted(distinct.items()):
            print("  INTERNAL ERROR %s: %s (%d times); shortest statement:\n    %s" % (
                state, msg, len(stmts), min(stmts, key=len).replace("\n", "\n    ")))
        for c in crashes:
            print("  CRASH: %s" % c)
        print(flush=True)

        check("sqlsmith ran >= %d queries (%d; exit status %s)" % (int(QUERIES * MIN_SHARE), done,
                                                                  ",".join(sorted(set(map(str, rcs))))),
              done >= int(QUERIES * MIN_SHARE) and set(rcs) <= {0}, out[-2000:])
        check("sqlsmith kept its connection", not broken, "\n".join(broken[:5]))
        check("no crash in the server log", log.found and not crashes,
              "\n".join(crashes[:10]) or "server log %s not found" % log.path)
        check("no internal error in the server log (%d, %d distinct)" % (len(internal), len(distinct)),
              not internal, "\n".join("%s: %s" % d for d in sorted(distinct)))
        check("every error in the server log has a SQLSTATE (log_error_verbosity = verbose)",
              "?????" not in states, states.get("?????"))
        check("the FDW was exercised: the mock saw >= 100 API requests (%d)" % len(reqs), len(reqs) >= 100)
        check("faults were injected (%d)" % sum(f["fired"] for f in faults),
              sum(f["fired"] for f in faults) > 0)
        check("the server still accepts connections", alive.returncode == 0 and alive.stdout.strip() == "1",
              alive.stderr)
        print("stage time: %.1f s" % (time.monotonic() - t_start), flush=True)


if __name__ == "__main__":
    main(test)
