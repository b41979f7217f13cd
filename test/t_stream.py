#!/usr/bin/env python3
"""Bodies read as they arrive (src/fetch.c, src/http.c): what a user relies on.

A UiPath answer of 25,567 days x 3 services (5.3 MB, one body) is
read while it downloads, paused while the reader is behind.  Checked:

- a cursor that stops mid-body for longer than timeout_ms still returns
  every row (time paused does not count), and the same rows as one scan;
- a connection that breaks mid-body, after rows were returned, fails the
  statement with HV00N and is not retried (the rows would come twice);
  a small body cut short is still retried and read whole;
- LIMIT over a big body stops early and leaves the session usable;
- the backend's peak RSS grows by a bounded amount over a big body (a
  generous sanity bound: make bench f1 measures it);
- a JSON error near the end of a big body, after rows were returned, is
  the same error as in a small body.

Environment (scripts/test.sh): PGHOST, PGPORT, PGUSER, MOCK_URL.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fdwtest import check, database, main, mock  # noqa: E402
import pgwire  # noqa: E402

DB = "usage_fdw_t_stream"
ORG = "11111111-1111-1111-1111-111111111111"
T2 = "22222222-2222-2222-2222-222222222222"
PATH_RE = "consumption-by-service"

SETUP = """
SET client_min_messages = warning;
CREATE EXTENSION usage_fdw;
CREATE SERVER uipath FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'uipath', base_url :'mock_url', organization_id '%s',
           timeout_ms '1500', max_retries '2');
CREATE USER MAPPING FOR CURRENT_USER SERVER uipath OPTIONS (access_token 'test-token');
CREATE SCHEMA usage;
IMPORT FOREIGN SCHEMA uipath FROM SERVER uipath INTO usage;
""" % ORG

WHERE = ("tenant_id = '%s' AND consumable_code = 'RU' AND date >= '1970-01-01'"
         " AND date < '2040-01-01'" % T2)
BIG = "FROM usage.daily_consumption_by_service WHERE " + WHERE
SMALL = ("FROM usage.daily_consumption_by_service WHERE tenant_id = '%s' AND consumable_code = 'RU'"
         " AND date >= '2024-01-01' AND date < '2024-01-08'" % T2)
BAD_ITEM = '{"date": "2024-01-01", "service": "x", "consumedAmount": 1}'
SUMMARY = "SELECT count(*), count(DISTINCT date), sum(consumed_amount)::text "


def q(conn, sql):
    r = conn.query(sql)
    return r.rows, r.error


def requests_to(path_re):
    return [r for r in mock.requests() if path_re in r.get("path", "")]


def hwm_kb(conn):
    rows, err = q(conn, "SELECT substring(pg_read_file('/proc/self/status') FROM 'VmHWM:\\s*([0-9]+)')")
    return int(rows[0][0]) if not err and rows and rows[0][0] else None


def test():
    with database(DB, SETUP, setup="setup: a UiPath server with timeout_ms 1500"):
        conn = pgwire.Connection(dbname=DB)
        mock.reset()
        whole, err = q(conn, SUMMARY + BIG)
        check("one scan of the big body", err is None and whole and int(whole[0][0]) > 70000,
              err or whole)

        # a cursor paused mid-body for twice timeout_ms
        mock.reset()
        _, err = q(conn, "BEGIN")
        _, err2 = q(conn, "DECLARE c NO SCROLL CURSOR FOR SELECT date, service, consumed_amount " + BIG)
        first, err3 = q(conn, "FETCH 1000 FROM c")
        _, err4 = q(conn, "SELECT pg_sleep(3)")
        rest, err5 = q(conn, "FETCH ALL FROM c")
        q(conn, "COMMIT")
        errs = [e for e in (err, err2, err3, err4, err5) if e]
        got = (first or []) + (rest or [])
        n = len(got)
        check("a cursor paused 3 s mid-body (timeout_ms 1500) returns every row",
              not errs and whole and n == int(whole[0][0]),
              "errors: %s; %d rows, %s expected" % (errs, n, whole and whole[0][0]))
        check("... in one request", len(requests_to(PATH_RE)) == 1,
              "%d requests" % len(requests_to(PATH_RE)))

        # the connection breaks mid-body after rows are out: an error, no retry
        mock.reset()
        mock.add_faults([{"match": {"path_regex": PATH_RE}, "times": 1, "action": {"truncate": True}}])
        rows, err = q(conn, SUMMARY + BIG)
        check("a big body cut short mid-way fails (HV00N, the connection)",
              err is not None and err.sqlstate == "HV00N", err or rows)
        check("... and is not tried again (its rows were being read)",
              len(requests_to(PATH_RE)) == 1, "%d requests" % len(requests_to(PATH_RE)))
        mock.reset()
        mock.add_faults([{"match": {"path_regex": PATH_RE}, "times": 1, "action": {"truncate": True}}])
        rows, err = q(conn, SUMMARY + SMALL)
        check("a small body cut short is tried again and read whole",
              err is None and rows and int(rows[0][0]) == 21 and len(requests_to(PATH_RE)) == 2,
              "%s; %d requests" % (err or rows, len(requests_to(PATH_RE))))

        # LIMIT stops early; the session goes on
        mock.reset()
        rows, err = q(conn, "SELECT date " + BIG + " LIMIT 5")
        check("LIMIT 5 over the big body", err is None and len(rows) == 5, err or rows)
        rows, err = q(conn, "SELECT count(*) " + SMALL)
        check("... and the session goes on", err is None and rows == [("21",)], err or rows)

        # JSON damaged near the end of a big body: the error of a small one
        mock.reset()
        items = ",".join('{"date": "2024-01-%02d", "service": "s%d", "consumedAmount": %d}'
                         % (1 + i % 28, i, i) for i in range(12000))
        mock.add_faults([{"match": {"path_regex": PATH_RE}, "times": 1,
                          "action": {"body_raw": '{"items": [%s,%s} ]}' % (items, BAD_ITEM)}}])
        rows, big_err = q(conn, "SELECT count(*) " + BIG)
        mock.reset()
        mock.add_faults([{"match": {"path_regex": PATH_RE}, "times": 1,
                          "action": {"body_raw": '{"items": [%s} ]}' % BAD_ITEM}}])
        rows, small_err = q(conn, "SELECT count(*) " + BIG)
        check("a JSON error near the end of a big body is the error of a small one",
              big_err is not None and small_err is not None and big_err.sqlstate == "HV000"
              and (big_err.message, big_err.detail) == (small_err.message, small_err.detail),
              "big: %s\nsmall: %s" % (big_err, small_err))

        # memory: a fresh backend, warmed by a small scan, then the big body
        mock.reset()
        fresh = pgwire.Connection(dbname=DB)
        q(fresh, "SELECT count(*) " + SMALL)
        before = hwm_kb(fresh)
        rows, err = q(fresh, "SELECT count(*), sum(consumed_amount) " + BIG)
        after = hwm_kb(fresh)
        grew = (after - before) / 1024.0 if before and after else None
        check("peak RSS over the 5.3 MB body grows by less than 12 MB (grew %s MB)"
              % ("%.1f" % grew if grew is not None else "?"),
              err is None and grew is not None and grew < 12, err or (before, after))
        fresh.close()
        conn.close()


if __name__ == "__main__":
    main(test)
