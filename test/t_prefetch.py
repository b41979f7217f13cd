#!/usr/bin/env python3
"""The next page requested ahead (src/fetch.c request_ahead): what a user relies on.

Once a page of a nextLink endpoint has all come, and its body ends with
"nextLink": "<url>", that page is requested while this one is parsed; the
parse then says what the next page really is, and the request is kept only
if it is that page.  Checked, against the AvePoint cloud flows endpoint in
pages of 3 items:

- every page is requested once, and the rows are those of one page, in the
  same order (a plain scan, a cursor read a row at a time, relative links);
- the pages after the first are the ones sent ahead (DEBUG1 says so);
- the checks of a nextLink hold before a page is requested ahead: no request
  past max_pages, none to a page already read, none to another origin;
- a page whose body is broken before a nextLink at its end fails the
  statement (its request ahead is dropped), and the session goes on;
- a LIMIT that stops while a page is requested ahead, in a subquery run
  again for each outer row, gives the right answer every time.

Environment (scripts/test.sh): PGHOST, PGPORT, PGUSER, MOCK_URL.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fdwtest import check, database, main, mock, psql_script  # noqa: E402
import pgwire  # noqa: E402

DB = "usage_fdw_t_prefetch"
PATH_RE = "cloudflows"
PAGE_PATH = "/smp/powerplatform/connectionusage/cloudflows"

SETUP = """
SET client_min_messages = warning;
CREATE EXTENSION usage_fdw;
CREATE SERVER avepoint FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'avepoint', base_url :'mock_url', max_retries '0');
CREATE USER MAPPING FOR CURRENT_USER SERVER avepoint OPTIONS (access_token 'test-token');
CREATE FOREIGN TABLE flows3 (flow_id text, connection_id text)
  SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage', page_size '3');
CREATE FOREIGN TABLE flows_all (flow_id text, connection_id text)
  SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage', page_size '1000');
CREATE FOREIGN TABLE flows3_max2 (flow_id text, connection_id text)
  SERVER avepoint OPTIONS (endpoint 'cloud_flow_connection_usage', page_size '3',
                           max_pages '2');
"""

ROWS = "SELECT flow_id, connection_id FROM %s"


def q(conn, sql):
    r = conn.query(sql)
    return r.rows, r.error


def page_requests():
    """The mock's requests of the cloud flows endpoint: (skiptoken or None) each."""
    out = []
    for r in mock.requests():
        if PATH_RE not in r.get("path", ""):
            continue
        token = [v for n, v in r.get("query", []) if n == "skiptoken"]
        out.append(token[0] if token else None)
    return out


def debug_gets(sql):
    """Run sql with DEBUG1 on; the request lines of usage_fdw and psql's result."""
    r = psql_script(DB, "SET client_min_messages = debug1;\n" + sql + "\n")
    lines = [ln for ln in r.stderr.splitlines() if "usage_fdw: GET" in ln]
    return lines, r


def test_plain(conn):
    mock.reset()
    whole, err = q(conn, ROWS % "flows_all")
    check("one page of 1000 holds the dataset's flows", err is None and len(whole) > 6,
          err or len(whole))
    mock.reset()
    paged, err = q(conn, ROWS % "flows3")
    pages = page_requests()
    npages = (len(whole) + 2) // 3 if whole else 0
    check("pages of 3 give the rows of one page, in the same order",
          err is None and paged == whole, err or (len(paged), len(whole)))
    check("each page is requested once (%d pages)" % npages,
          len(pages) == npages and len(set(pages)) == npages, pages)

    mock.reset()
    lines, r = debug_gets("SELECT count(*) FROM flows3;")
    ahead = [ln for ln in lines if ln.endswith("(ahead)")]
    check("the pages after the first are requested ahead (DEBUG1)",
          r.returncode == 0 and len(lines) == npages and len(ahead) == npages - 1
          and not lines[0].endswith("(ahead)"), r.stderr[-2000:])

    # a cursor read one row at a time: the same rows, in order
    mock.reset()
    got = []
    errs = []
    for sql in ("BEGIN", "DECLARE c NO SCROLL CURSOR FOR " + ROWS % "flows3"):
        errs.append(q(conn, sql)[1])
    for _ in range(len(whole) + 1):
        rows, e = q(conn, "FETCH 1 FROM c")
        errs.append(e)
        if not rows:
            break
        got += rows
    q(conn, "COMMIT")
    errs = [e for e in errs if e]
    check("a cursor fetching one row at a time returns the same rows in order",
          not errs and got == whole, errs or (len(got), len(whole)))
    check("... each page requested once", len(page_requests()) == npages, page_requests())

    # relative nextLinks are resolved the same way ahead
    for form in ("relative", "query"):
        mock.reset()
        mock.config({"nextlink_form": form})
        lines, r = debug_gets("SELECT count(*) FROM flows3;")
        ahead = [ln for ln in lines if ln.endswith("(ahead)")]
        out = r.stdout.strip().splitlines()
        check("%s nextLinks: the pages after the first requested ahead, the count right" % form,
              r.returncode == 0 and out == [str(len(whole))] and len(ahead) == npages - 1
              and len(page_requests()) == npages, (out, len(ahead), r.stderr[-1500:]))
    mock.reset()
    return whole, npages


def refused(sql, what, needle, nahead=0):
    """Run sql (DEBUG1 on): it must fail with HV000 naming needle, with
    nahead pages requested ahead; the mock's log of pages requested."""
    lines, r = debug_gets(sql)
    ahead = [ln for ln in lines if ln.endswith("(ahead)")]
    check("%s: the scan fails (HV000, %s)" % (what, needle),
          r.returncode != 0 and "HV000" in r.stderr and needle in r.stderr, r.stderr[-1500:])
    check("... and %d pages requested ahead" % nahead, len(ahead) == nahead, ahead)
    return page_requests()


def test_checks(conn):
    # max_pages: page 3 is never requested
    mock.reset()
    pages = refused("\\set VERBOSITY verbose\nSELECT count(*) FROM flows3_max2;",
                    "max_pages 2", "max_pages", nahead=1)
    check("... after exactly 2 requests (page 3 is not requested ahead)",
          len(pages) == 2, pages)

    # a nextLink to the page just read: no request ahead to it
    mock.reset()
    mock.add_faults([{"match": {"path_regex": PATH_RE}, "times": -1,
                      "action": {"next_link": os.environ["MOCK_URL"] + PAGE_PATH + "?top=3"}}])
    pages = refused("\\set VERBOSITY verbose\nSELECT count(*) FROM flows3;",
                    "a nextLink back to the page read", "already read")
    check("... after one request", len(pages) == 1, pages)

    # to another origin: refused before anything is sent
    mock.reset()
    other = os.environ["MOCK_URL"].replace("127.0.0.1", "localhost") + PAGE_PATH + "?top=3&skiptoken=3"
    mock.add_faults([{"match": {"path_regex": PATH_RE}, "times": 1,
                      "action": {"next_link": other}}])
    pages = refused("\\set VERBOSITY verbose\nSELECT count(*) FROM flows3;",
                    "a nextLink to another origin", "another origin")
    check("... after one request", len(pages) == 1, pages)


def test_broken(conn, whole, npages):
    # a body broken before a nextLink that names page 2 at its end
    mock.reset()
    link = os.environ["MOCK_URL"] + PAGE_PATH + "?top=3&skiptoken=3"
    body = ('{"value": [{"flowId": "f1", "connectionId": "c1"},, {"flowId": "f2"}],'
            ' "nextLink": "%s"}' % link)
    mock.add_faults([{"match": {"path_regex": PATH_RE}, "times": 1, "action": {"body_raw": body}}])
    rows, err = q(conn, ROWS % "flows3")
    check("a page broken before the nextLink at its end fails the statement (HV000)",
          err is not None and err.sqlstate == "HV000" and not rows, err or rows)
    mock.reset()
    rows, err = q(conn, ROWS % "flows3")
    check("... and the session goes on: the same rows as before",
          err is None and rows == whole and len(page_requests()) == npages,
          err or (len(rows), page_requests()))

    # LIMIT in a subquery run again for each outer row
    mock.reset()
    sql = ("SELECT v.x, (SELECT count(*) FROM (SELECT * FROM flows3 LIMIT 4 + v.x) s) "
           "FROM generate_series(1, 3) v(x) ORDER BY 1")
    rows, err = q(conn, sql)
    want = [(str(x), str(min(4 + x, len(whole)))) for x in (1, 2, 3)]
    check("LIMIT in a subquery run 3 times, pages requested ahead: right each time",
          err is None and rows == want, err or rows)
    rows, err = q(conn, "SELECT count(*) FROM flows3")
    check("... and a whole scan after it", err is None and rows == [(str(len(whole)),)],
          err or rows)


def test():
    with database(DB, SETUP, setup="setup: an AvePoint server, cloud flows in pages of 3"):
        conn = pgwire.Connection(dbname=DB)
        whole, npages = test_plain(conn)
        test_checks(conn)
        test_broken(conn, whole, npages)
        conn.close()


if __name__ == "__main__":
    main(test)
