#!/usr/bin/env python3
"""Concurrent foreign partitions: PostgreSQL's asynchronous Append.

Four foreign partitions of one partitioned table, one per tenant (table
option `tenant`), each answering after 0.6 s of API latency.  With the
asynchronous Append (async_capable, the default) their requests are in
flight at the same time, so the query answers in about one latency, not
four; with async_capable 'false' on the tables it takes about four.  The
rows are the same both ways (exact counts per partition), also for a
UNION ALL of the tables, a filtered query (local quals applied in the
asynchronous path), a LIMIT, and a rescan (a correlated subquery).  The
bounds on time are generous sanity bounds; make bench measures precisely.

Environment (scripts/test.sh, or scripts/cluster.sh's env.sh): PGHOST,
PGPORT, PGUSER, MOCK_URL.  Uses the shared mock: resets it at the start and
at the end.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fdwtest import check, database, main, pg_tool, run, mock  # noqa: E402

DB = "usage_fdw_t_async"
LATENCY_MS = 600
TENANTS = ("contoso", "fabrikam", "northwind", "tailspin")

SETUP = """
SET client_min_messages = warning;
CREATE EXTENSION usage_fdw;
CREATE SERVER avepoint FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'avepoint', base_url :'mock_url', max_retries '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER avepoint OPTIONS (access_token 'test-token');
CREATE TABLE flows (flow_id text, environment_id text, connection_id text, tenant text)
  PARTITION BY LIST (tenant);
%(parts)s
CREATE TABLE tenants (name text);
INSERT INTO tenants VALUES ('contoso'), ('fabrikam');
"""


def psql(sql, timeout=60):
    """Run SQL in the test database; (returncode, stdout, stderr, seconds)."""
    t0 = time.monotonic()
    r = run([pg_tool("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", DB, "-c", sql],
            timeout=timeout)
    return r.returncode, r.stdout.strip(), r.stderr.strip(), time.monotonic() - t0


def timed(name, sql, expect, max_s=None, min_s=None):
    """Run a query; check its output and, loosely, its time."""
    rc, out, err, secs = psql(sql)
    check("%s: rows" % name, rc == 0 and out == expect, "rc=%d out=%r err=%s" % (rc, out, err))
    if max_s is not None:
        check("%s: %.2f s < %.1f s" % (name, secs, max_s), secs < max_s)
    if min_s is not None:
        check("%s: %.2f s >= %.1f s" % (name, secs, min_s), secs >= min_s)
    return secs


def test():
    parts = "\n".join(
        "CREATE FOREIGN TABLE flows_%s PARTITION OF flows FOR VALUES IN ('%s')\n"
        "  SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage', tenant '%s');" % (t, t, t)
        for t in TENANTS)
    with database(DB, SETUP % {"parts": parts}, created="createdb",
                  setup="setup: four foreign partitions, one per tenant"):
        scans()


def scans():
    mock.reset()
    mock.config({"latency_ms": LATENCY_MS})

    rc, out, err, _ = psql("EXPLAIN (COSTS OFF) SELECT count(*) FROM flows")
    check("EXPLAIN shows Async Foreign Scan for every partition",
          rc == 0 and out.count("Async Foreign Scan") == 4, out + err)

    expect = "contoso|6\nfabrikam|4"
    one = timed("four partitions, async", "SELECT tenant, count(*) FROM flows GROUP BY 1 ORDER BY 1",
                expect, max_s=4 * LATENCY_MS / 1000 * 0.6)
    timed("UNION ALL of the four tables, async",
          "SELECT count(*) FROM (%s) s" % " UNION ALL ".join("SELECT * FROM flows_%s" % t for t in TENANTS),
          "10", max_s=4 * LATENCY_MS / 1000 * 0.6)
    timed("a filter on a response column is applied on the asynchronous path",
          "SELECT count(*) FROM flows WHERE flow_id IN ('flow-0001', 'flow-0002')", "4",
          max_s=4 * LATENCY_MS / 1000 * 0.6)
    timed("LIMIT over the asynchronous Append", "SELECT count(*) FROM (SELECT * FROM flows LIMIT 3) s", "3")
    timed("rescans (a correlated subquery per tenant)",
          "SELECT t.name, (SELECT count(*) FROM flows f WHERE f.tenant = t.name) FROM tenants t ORDER BY 1",
          expect)

    rc, out, err, _ = psql("\n".join("ALTER FOREIGN TABLE flows_%s OPTIONS (ADD async_capable 'false');" % t
                                     for t in TENANTS))
    check("async_capable 'false' on the tables", rc == 0, err)
    rc, out, err, _ = psql("EXPLAIN (COSTS OFF) SELECT count(*) FROM flows")
    check("EXPLAIN shows synchronous scans", rc == 0 and "Async" not in out, out + err)
    four = timed("four partitions, one after another", "SELECT tenant, count(*) FROM flows GROUP BY 1 ORDER BY 1",
                 expect, min_s=4 * LATENCY_MS / 1000 * 0.9)
    print("four partitions at %d ms latency: %.2f s async, %.2f s one after another" % (LATENCY_MS, one, four),
          flush=True)


if __name__ == "__main__":
    main(test)
