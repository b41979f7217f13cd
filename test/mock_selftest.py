#!/usr/bin/env python3
"""Self-test of the mock vendor API (test/mock_api.py) and test/mockctl.py.

Starts the mock on a free port as a subprocess, exercises auth, validation,
data formulas, AvePoint paging, the token endpoint, every fault action, the
request log and mockctl's output, then stops the mock (always); then, without
sockets, the vendor functions of test/mockapi/ and mockctl's fault presets.  Standard
library only (urllib; http.client where a test needs one connection's view).
Prints `N passed, N failed` last and exits non-zero on any failure.

  python3 test/mock_selftest.py [-v]
"""

import base64
import datetime
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.parse
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
MOCK = os.path.join(HERE, "mock_api.py")
MOCKCTL = os.path.join(HERE, "mockctl.py")
ORG = "11111111-1111-1111-1111-111111111111"
T2 = "22222222-2222-2222-2222-222222222222"
T3 = "33333333-3333-3333-3333-333333333333"
FOLDER_PATH = "/lease_/api/usage/%s/tenants/consumption-by-folder" % ORG
DAILY_PATH = "/lease_/api/usage/%s/tenants/daily-consumption-by-service" % ORG
FLOWS_PATH = "/smp/powerplatform/connectionusage/cloudflows"
JAN1, FEB1 = 1704067200000, 1706745600000      # 2024-01-01, 2024-02-01 (UTC)
DAY = 86400000

VERBOSE = "-v" in sys.argv
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
results = {"passed": 0, "failed": 0}


# --------------------------------------------------------------------------
# harness
# --------------------------------------------------------------------------

def check(name, cond, detail=""):
    if cond:
        results["passed"] += 1
        if VERBOSE:
            print("ok    %s" % name)
    else:
        results["failed"] += 1
        print("FAIL  %s %s" % (name, detail))


def start_mock(tmp, *extra):
    port_file = os.path.join(tmp, "port.%d" % len(os.listdir(tmp)))
    proc = subprocess.Popen([sys.executable, MOCK, "--port", "0", "--port-file", port_file,
                             "--log-file", os.path.join(tmp, "mock.log")] + list(extra),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if os.path.exists(port_file):
            return proc, int(open(port_file).read())
        if proc.poll() is not None:
            raise RuntimeError("mock exited: %s" % proc.stderr.read().decode())
        time.sleep(0.02)
    proc.kill()
    raise RuntimeError("mock wrote no port file")


def stop_mock(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc.stderr:
        proc.stderr.close()


class Client:
    """urllib helpers bound to one mock."""

    def __init__(self, base):
        self.base = base

    def call(self, method, path, body=None, token="test-token", ctype=None, headers=None,
             raw=False):
        """(status, headers, parsed JSON or bytes)."""
        hdrs = dict(headers or {})
        if token is not None:
            hdrs["Authorization"] = "Bearer " + token
        data = None
        if body is not None:
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            hdrs["Content-Type"] = ctype or "application/json"
        elif ctype:
            hdrs["Content-Type"] = ctype
        url = path if path.startswith("http") else self.base + path
        req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
        try:
            with OPENER.open(req, timeout=10) as r:
                status, rh, payload = r.status, r.headers, r.read()
        except urllib.error.HTTPError as e:
            status, rh, payload = e.code, e.headers, e.read()
        if raw:
            return status, rh, payload
        try:
            return status, rh, json.loads(payload)
        except ValueError:
            return status, rh, payload

    def folder(self, body, **kw):
        return self.call("POST", FOLDER_PATH, body, **kw)

    def daily(self, body, **kw):
        return self.call("POST", DAILY_PATH, body, **kw)

    def flows(self, query="", **kw):
        return self.call("GET", FLOWS_PATH + ("?" + query if query else ""), **kw)

    def token(self, form, path="/connect/token", ctype="application/x-www-form-urlencoded"):
        return self.call("POST", path, urllib.parse.urlencode(form).encode(), token=None, ctype=ctype)

    def ctl(self, method, path, body=None):
        return self.call(method, "/_mock/" + path, body, token=None)


def mockctl(base, *args):
    env = dict(os.environ, MOCK_URL=base)
    p = subprocess.run([sys.executable, MOCKCTL] + list(args), env=env, capture_output=True,
                       text=True, timeout=20)
    return p.returncode, p.stdout, p.stderr


def month_body(**over):
    body = {"tenantId": T2, "startDate": JAN1, "endDate": FEB1, "consumableCode": "RU"}
    body.update(over)
    return body


# --------------------------------------------------------------------------
# the checks
# --------------------------------------------------------------------------

def test_auth(c):
    st, h, b = c.folder(month_body(), token=None)
    check("auth: no token -> 401", st == 401, st)
    check("auth: WWW-Authenticate: Bearer", (h.get("WWW-Authenticate") or "").startswith("Bearer"))
    check("auth: UiPath error shape", isinstance(b, dict) and "message" in b, b)
    st, h, b = c.flows(token="wrong")
    check("auth: bad token -> 401", st == 401, st)
    check("auth: AvePoint error shape", isinstance(b, dict) and set(b["error"]) == {"code", "message"}, b)
    st, _, _ = c.call("GET", FLOWS_PATH, headers={"Authorization": "Basic dGVzdA=="}, token=None)
    check("auth: non-Bearer scheme -> 401", st == 401, st)


def test_validation(c):
    def bad(body, field, want=400, fn=None):
        st, _, b = (fn or c.folder)(body)
        msg = b.get("message", "") if isinstance(b, dict) else ""
        check("validation: %s -> %d" % (field, want), st == want and field in msg, (st, b))

    bad(month_body(extra=1), "extra")
    bad(month_body(startDate=float(JAN1)), "startDate")
    bad(month_body(endDate=str(FEB1)), "endDate")
    bad(month_body(startDate=-1), "startDate")
    bad(month_body(tenantId=5), "tenantId")
    bad(month_body(aggregateByOwnership="yes"), "aggregateByOwnership")
    bad(month_body(folderKeys=["x"]), "folderKeys")                  # daily endpoint only
    bad(month_body(folderKeys="x"), "folderKeys", fn=c.daily)
    bad(month_body(folderKeys=[1]), "folderKeys", fn=c.daily)
    body = month_body()
    del body["consumableCode"]
    bad(body, "consumableCode")
    bad(month_body(startDate=FEB1, endDate=JAN1), "startDate")
    bad(month_body(consumableCode="XYZ"), "consumableCode")
    st, _, _ = c.folder([1, 2])
    check("validation: non-object body -> 400", st == 400, st)
    st, _, _ = c.folder(b"{not json")
    check("validation: malformed JSON -> 400", st == 400, st)
    st, _, _ = c.folder(month_body(), ctype="text/plain")
    check("validation: wrong Content-Type -> 415", st == 415, st)
    st, _, b = c.call("POST", FOLDER_PATH.replace(ORG, "99999999-9999-9999-9999-999999999999"),
                      month_body())
    check("validation: unknown organization -> 404", st == 404, (st, b))
    for q in ("top=0", "top=1001", "top=abc", "top=", "bogus=1", "top=3&top=4", "skiptoken=zz"):
        st, _, b = c.flows(q)
        check("validation: cloudflows %s -> 400" % q, st == 400 and "error" in b, (st, b))
    st, _, _ = c.call("GET", "/nope")
    check("routing: unknown route -> 404", st == 404, st)
    st, h, _ = c.call("GET", FOLDER_PATH)
    check("routing: wrong method -> 405 + Allow", st == 405 and h.get("Allow") == "POST", st)
    st, _, _ = c.call("POST", FLOWS_PATH, {})
    check("routing: POST cloudflows -> 405", st == 405, st)


def test_data(c):
    st, _, b = c.folder(month_body())
    got = [(i["folderName"], i["parentFolderKey"], i["consumedBySelf"], i["processCountSelf"])
           for i in b["items"]]
    a = "aaaaaaaa-0000-0000-0000-00000000000%d"
    want = [("Shared", None, 46.5, 31), ("Finance", None, 93, 62), ("Invoices", a % 2, 139.5, 93),
            ("HR", None, 186, 124), ("Onboarding", a % 4, 232.5, 155)]
    check("data: consumption-by-folder, 31 days RU", st == 200 and got == want, got)
    check("data: folder keys", [i["folderKey"] for i in b["items"]] == [a % k for k in range(1, 6)])
    st, _, b = c.folder(month_body(aggregateByOwnership=True))
    got = [(i["consumedBySelf"], i["processCountSelf"]) for i in b["items"]]
    check("data: aggregateByOwnership moves children to parents",
          got == [(46.5, 31), (232.5, 155), (0, 0), (418.5, 279), (0, 0)], got)
    st, _, b = c.folder(month_body(consumableCode="AIU", tenantId=T3, endDate=JAN1 + 3 * DAY))
    got = [(i["folderName"], i["consumedBySelf"], i["processCountSelf"]) for i in b["items"]]
    check("data: tenant 3, AIU, 3 days", got == [("Shared", 0.75, 3), ("Sandbox", 1.5, 6)], got)
    st, _, b = c.folder(month_body(tenantId="00000000-0000-0000-0000-000000000000"))
    check("data: unknown tenant -> empty items", st == 200 and b == {"items": []}, b)
    st, _, b = c.folder(month_body(startDate=JAN1 + 1, endDate=JAN1 + DAY))
    check("data: no UTC midnight in range -> 0 days", [i["consumedBySelf"] for i in b["items"]] == [0] * 5)

    st, _, b = c.daily(month_body())
    items = b["items"]
    check("data: daily rows = 31 days x 3 services", st == 200 and len(items) == 93, len(items))
    first = [(i["date"], i["service"], i["consumedAmount"]) for i in items[:6]]
    check("data: daily amounts", first == [
        ("2024-01-01", "Orchestrator", 90), ("2024-01-01", "Apps", 180),
        ("2024-01-01", "Document Understanding", 270), ("2024-01-02", "Orchestrator", 112.5),
        ("2024-01-02", "Apps", 225), ("2024-01-02", "Document Understanding", 337.5)], first)
    check("data: daily last date", items[-1]["date"] == "2024-01-31")
    st, _, b2 = c.daily(month_body(aggregateByOwnership=True))
    check("data: aggregateByOwnership leaves daily numbers", b2 == b)
    st, _, b = c.daily(month_body(endDate=JAN1 + DAY, folderKeys=[a % 2, a % 3, "unknown"]))
    got = [i["consumedAmount"] for i in b["items"]]
    check("data: daily folderKeys filter (S=5)", got == [30, 60, 90], got)
    st, _, b = c.daily(month_body(folderKeys=["unknown"]))
    check("data: daily S=0 -> no items", b == {"items": []}, b)


def test_paging(c):
    pages, rows, url = [], [], FLOWS_PATH + "?top=3"
    while url and len(pages) < 10:
        st, _, b = c.call("GET", url)
        if st != 200:
            break
        pages.append(b)
        rows.extend(b["connectionUsageCloudFlows"])
        url = b.get("nextLink")
    check("paging: 10 rows, top=3 -> 4 pages", len(pages) == 4, len(pages))
    check("paging: totalCount on every page", all(p["totalCount"] == 10 for p in pages))
    check("paging: nextLink absolute on this origin",
          all(p["nextLink"].startswith(c.base + FLOWS_PATH + "?top=3&") for p in pages[:3]),
          [p["nextLink"] for p in pages])
    check("paging: last nextLink empty", pages and pages[-1]["nextLink"] == "")
    check("paging: all rows once",
          [r["connectionId"] for r in rows] == ["conn-%05d" % i for i in range(1, 11)])
    check("paging: row formula", rows[5] == {"flowId": "flow-0003", "environmentId": "env-03",
                                             "connectionId": "conn-00006"}, rows[5:6])
    st, _, b = c.flows("flowId=flow-0002")
    check("paging: flowId filter", b["totalCount"] == 2 and
          [r["connectionId"] for r in b["connectionUsageCloudFlows"]] == ["conn-00003", "conn-00004"], b)
    st, _, b = c.flows("tenant=fab%72ikam&top=2")     # percent-encoded value
    check("paging: tenant filter, decoded", b["totalCount"] == 4 and
          [r["flowId"] for r in b["connectionUsageCloudFlows"]] == ["flow-0002", "flow-0002"]
          and "tenant=fabrikam" in b["nextLink"], b)
    st, _, b = c.flows("flowId=flow-0002&tenant=contoso")
    check("paging: flowId + other tenant -> 0", b["totalCount"] == 0, b)
    st, _, b = c.flows("tenant=contoso+x")
    check("paging: '+' decodes to space (no such tenant)", st == 200 and b["totalCount"] == 0, b)
    for style, want in (("absent", "absent"), ("null", None)):
        c.ctl("POST", "config", {"nextlink_style": style})
        st, _, b = c.flows()
        check("paging: nextlink_style %s" % style, b.get("nextLink", "absent") == want, b)
    # 100,000 rows: a page deep in the result comes back quickly
    c.ctl("POST", "config", {"avepoint_rows": 100000, "nextlink_style": "empty"})
    st, _, b = c.flows("top=1000")
    link = b["nextLink"]
    cursor = urllib.parse.parse_qs(urllib.parse.urlsplit(link).query)["skiptoken"][0]
    t0 = time.monotonic()
    st, _, b = c.flows("top=1000&tenant=fabrikam")
    n_fab = b["totalCount"]
    st, _, b = c.call("GET", link.replace("top=1000", "top=5"))
    check("paging: 100k rows, cursor page", st == 200 and b["totalCount"] == 100000 and
          b["connectionUsageCloudFlows"][0]["connectionId"] == "conn-01001", (st, cursor))
    st, _, b = c.flows("flowId=flow-50000")
    check("paging: 100k rows, last flow", b["totalCount"] == 2 and
          b["connectionUsageCloudFlows"][1]["connectionId"] == "conn-100000", b)
    check("paging: 100k rows, tenant count", n_fab == 50000, n_fab)
    check("paging: 100k rows fast", time.monotonic() - t0 < 2)
    c.ctl("POST", "reset")


def test_tokens(c):
    st, _, b = c.token({"grant_type": "client_credentials", "client_id": "test-client",
                        "client_secret": "test-secret", "scope": "enpower.data.read.all"})
    check("token: good credentials -> 200", st == 200 and b["token_type"] == "Bearer"
          and b["expires_in"] == 3600 and b["scope"] == "enpower.data.read.all", b)
    tok = b["access_token"]
    st, _, _ = c.flows(token=tok)
    check("token: issued token works", st == 200, st)
    st, _, b = c.token({"grant_type": "client_credentials", "client_id": "test-client",
                        "client_secret": "nope"}, path="/identity_/connect/token")
    check("token: bad secret -> 400 invalid_client", st == 400 and b["error"] == "invalid_client"
          and "error_description" in b, b)
    st, _, b = c.token({"grant_type": "password", "client_id": "test-client",
                        "client_secret": "test-secret"})
    check("token: bad grant -> unsupported_grant_type", st == 400 and
          b["error"] == "unsupported_grant_type", b)
    st, _, b = c.token({"grant_type": "client_credentials"}, ctype="application/json")
    check("token: wrong Content-Type -> 400", st == 400, b)
    basic = "Basic " + base64.b64encode(b"test-client:test-secret").decode()
    st, _, b = c.call("POST", "/identity_/connect/token", b"grant_type=client_credentials",
                      token=None, ctype="application/x-www-form-urlencoded",
                      headers={"Authorization": basic})
    check("token: client_secret_basic -> 200", st == 200 and b["scope"] == "", b)
    c.ctl("POST", "revoke_tokens")
    st, _, _ = c.flows(token=tok)
    check("token: revoked -> 401", st == 401, st)
    st, _, _ = c.flows()
    check("token: static token survives revoke", st == 200, st)
    c.ctl("POST", "config", {"token_ttl": 0})
    st, _, b = c.token({"grant_type": "client_credentials", "client_id": "test-client",
                        "client_secret": "test-secret"})
    st, _, _ = c.folder(month_body(), token=b["access_token"])
    check("token: expired (ttl 0) -> 401", st == 401 and b["expires_in"] == 0, st)


def raw_request(port, method, path, body=None, headers=None):
    """One request on a fresh http.client connection: (status, body) or the exception."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, r.read()
    except Exception as e:                       # noqa: BLE001 (the exception is the result)
        return e, None
    finally:
        conn.close()


def test_faults(c, port):
    auth = {"Authorization": "Bearer test-token"}

    def fault(rule):
        st, _, b = c.ctl("POST", "faults", rule)
        assert st == 200, b

    fault({"match": {"method": "GET", "path_regex": "cloudflows$"},
           "action": {"status": 429, "retry_after": "2"}})
    st, h, b = c.flows()
    check("fault: status 429 + retry_after", st == 429 and h.get("Retry-After") == "2"
          and b["error"]["code"] == "TooManyRequests", (st, b))
    st, _, _ = c.flows()
    check("fault: times defaults to 1", st == 200, st)

    fault({"match": {"query": {"top": "7"}}, "skip": 1, "times": 2,
           "action": {"status": 503, "body": "upstream down", "content_type": "text/plain",
                      "headers": {"X-Mock": "yes"}}})
    got = [c.flows("top=7", raw=True) for _ in range(4)]
    check("fault: skip 1, times 2, raw body and headers",
          [g[0] for g in got] == [200, 503, 503, 200] and got[1][2] == b"upstream down"
          and got[1][1].get("Content-Type") == "text/plain" and got[1][1].get("X-Mock") == "yes",
          [g[0] for g in got])

    fault({"match": {"body": {"consumableCode": "AIU"}}, "action": {"delay_ms": 600}})
    timing = {}

    def slow():
        t = time.monotonic()
        timing["status"] = c.folder(month_body(consumableCode="AIU"))[0]
        timing["slow"] = time.monotonic() - t
    th = threading.Thread(target=slow)
    th.start()
    time.sleep(0.1)
    t = time.monotonic()
    st, _, _ = c.folder(month_body())
    fast = time.monotonic() - t
    th.join()
    check("fault: delay_ms delays, other connections are not blocked",
          timing.get("status") == 200 and timing.get("slow", 0) >= 0.55 and fast < 0.3,
          (timing, fast))

    fault({"match": {"path_regex": "cloudflows"}, "action": {"drop": True}})
    st, _ = raw_request(port, "GET", FLOWS_PATH, headers=auth)
    check("fault: drop closes without a response", isinstance(st, http.client.RemoteDisconnected)
          or isinstance(st, ConnectionError), repr(st))

    fault({"match": {"path_regex": "cloudflows"}, "action": {"truncate": True}})
    st, _ = raw_request(port, "GET", FLOWS_PATH, headers=auth)
    check("fault: truncate -> incomplete body", isinstance(st, http.client.IncompleteRead), repr(st))

    fault({"match": {"path_regex": "cloudflows"}, "action": {"body_raw": "{\"connectionUsage"}})
    st, _, b = c.flows(raw=True)
    check("fault: body_raw", st == 200 and b == b"{\"connectionUsage", b)

    fault({"match": {"path_regex": "cloudflows"}, "action": {"content_type": "text/html"}})
    st, h, b = c.flows()
    check("fault: content_type alone", st == 200 and h.get("Content-Type") == "text/html"
          and b["totalCount"] == 10, (st, h.get("Content-Type")))

    fault({"match": {"path_regex": "cloudflows"}, "action": {"next_link": "https://evil.example/x"}})
    st, _, b = c.flows("top=100")
    check("fault: next_link", b["nextLink"] == "https://evil.example/x", b.get("nextLink"))

    fault({"match": {"path_regex": "consumption-by-folder"},
           "action": {"item_patch": {"consumedBySelf": "abc"}}})
    st, _, b = c.folder(month_body())
    check("fault: item_patch", [i["consumedBySelf"] for i in b["items"]] == ["abc"] * 5, b)

    fault({"match": {"path_regex": "daily"}, "action": {"items": {"not": "an array"}}})
    st, _, b = c.daily(month_body())
    check("fault: items", b == {"items": {"not": "an array"}}, b)

    fault({"match": {"path_regex": "connect/token"}, "action": {"status": 500}})
    st, _, b = c.token({"grant_type": "client_credentials", "client_id": "test-client",
                        "client_secret": "test-secret"})
    check("fault: on the token endpoint", st == 500 and "error" in b, (st, b))

    fault({"match": {"method": "GET"}, "times": -1, "action": {"status": 502}})
    check("fault: times -1 = forever", [c.flows()[0] for _ in range(3)] == [502] * 3)
    st, _, b = c.ctl("GET", "faults")
    fired = [(r["name"], r["fired"]) for r in b["faults"]]
    check("fault: GET lists rules with fired counts", fired == [
        ("status:429+retry_after", 1), ("status:503+headers", 2), ("delay", 1), ("drop", 1),
        ("truncate", 1), ("body_raw", 1), ("content_type", 1), ("next_link", 1),
        ("item_patch", 1), ("items", 1), ("status:500", 1), ("status:502", 3)], fired)
    c.ctl("DELETE", "faults")
    st, _, b = c.ctl("POST", "faults", {"action": {"explode": True}})
    check("fault: unknown action -> 400", st == 400 and "explode" in b["error"], b)
    c.ctl("DELETE", "faults")
    check("fault: DELETE clears", c.flows()[0] == 200 and c.ctl("GET", "faults")[2] == {"faults": []})
    st, _, b = c.ctl("GET", "requests")
    names = [r["fault"] for r in b["requests"] if r["fault"]]
    check("fault: names in the log", names[:2] == ["status:429+retry_after", "status:503+headers"],
          names)

    # paging faults: a nextLink cycle, endless pages, a padded body
    fault({"match": {"path_regex": "cloudflows"}, "times": 2, "action": {"next_link_cycle": 2}})
    st, _, b1 = c.flows("top=3")
    st, _, b2 = c.call("GET", b1["nextLink"])
    check("fault: next_link_cycle 2 leads A -> B -> A",
          "skiptoken=" in b1["nextLink"] and b2["nextLink"].endswith(FLOWS_PATH + "?top=3"),
          (b1.get("nextLink"), b2.get("nextLink")))
    fault({"match": {"path_regex": "cloudflows"}, "times": -1, "action": {"endless_pages": True}})
    url, seen, pages = FLOWS_PATH + "?top=4", set(), 0
    for _ in range(6):
        st, _, b = c.call("GET", url)
        pages += len(b["connectionUsageCloudFlows"])
        seen.add(b["nextLink"])
        url = b["nextLink"]
    check("fault: endless_pages never ends, links all distinct, rows past the end empty",
          st == 200 and len(seen) == 6 and pages == 10, (st, len(seen), pages))
    c.ctl("DELETE", "faults")
    fault({"match": {"path_regex": "cloudflows"}, "action": {"pad_to": 100000}})
    st, _, b = c.flows(raw=True)
    check("fault: pad_to makes the body exactly that long, still JSON",
          st == 200 and len(b) == 100000 and json.loads(b)["totalCount"] == 10, (st, len(b)))
    st, _, b = c.ctl("POST", "faults", {"action": {"next_link_cycle": 0}})
    check("fault: bad next_link_cycle -> 400", st == 400, b)
    c.ctl("DELETE", "faults")

    # a server that reflects the request, and oversized response headers
    fault({"match": {"path_regex": "cloudflows"}, "action": {"echo_request": "json"}})
    st, _, b = c.flows()
    check("fault: echo_request json -> 400 with the Authorization header in the message",
          st == 400 and "Bearer test-token" in b["error"]["message"], (st, b))
    fault({"match": {"path_regex": "cloudflows"}, "action": {"echo_request": "text"}})
    st, h, b = c.flows(raw=True)
    check("fault: echo_request text -> text/plain, headers as JSON",
          st == 400 and h.get("Content-Type") == "text/plain"
          and json.loads(b)["headers"]["Authorization"] == "Bearer test-token", (st, b[:200]))
    fault({"match": {"path_regex": "cloudflows"}, "action": {"big_header": 5000, "many_headers": 3}})
    st, h, b = c.flows()
    check("fault: big_header and many_headers",
          st == 200 and len(h.get("X-Big", "")) == 5000 and h.get("X-Many-00002") == "b" * 46,
          (st, len(h.get("X-Big", ""))))
    st, _, b = c.ctl("POST", "faults", {"action": {"echo_request": "xml"}})
    check("fault: bad echo_request -> 400", st == 400, b)
    c.ctl("DELETE", "faults")

    # latency_ms applies to every API response
    c.ctl("POST", "config", {"latency_ms": 200})
    t = time.monotonic()
    c.flows()
    check("config: latency_ms", time.monotonic() - t >= 0.19)
    st, _, b = c.ctl("POST", "config", {"latency_ms": -1})
    check("config: bad value -> 400", st == 400, b)
    st, _, b = c.ctl("POST", "config", {"nope": 1})
    check("config: unknown key -> 400", st == 400, b)
    c.ctl("POST", "reset")
    check("config: reset restores defaults", c.ctl("GET", "config")[2] == {
        "avepoint_rows": 10, "latency_ms": 0, "token_ttl": 3600, "nextlink_style": "empty",
        "nextlink_form": "absolute"})


def test_log_and_mockctl(c, port):
    base = c.base
    rc, out, err = mockctl(base, "reset")
    check("mockctl: reset prints nothing", rc == 0 and out == "" and err == "", (rc, out, err))
    # two requests on one keep-alive connection, one on another
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    auth = {"Authorization": "Bearer test-token"}
    for q in ("?top=2&tenant=a%26b%3Dc%20d", "?flowId=flow-0001"):
        conn.request("GET", FLOWS_PATH + q, headers=auth)
        conn.getresponse().read()
    conn.close()
    c.folder(month_body(aggregateByOwnership=True))
    c.token({"grant_type": "client_credentials", "client_id": "test-client",
             "client_secret": "test-secret"})
    st, _, b = c.ctl("GET", "requests")
    recs = b["requests"]
    check("log: records", [r["seq"] for r in recs] == [1, 2, 3, 4] and recs[0]["conn"] == recs[1]["conn"]
          and recs[2]["conn"] != recs[0]["conn"], recs)
    check("log: decoded query", recs[0]["query"] == [["top", "2"], ["tenant", "a&b=c d"]], recs[0])
    check("log: masked auth", recs[0]["auth"] == "test******" and recs[3]["auth"] is None)
    check("log: token body masked", recs[3]["body"]["client_secret"] == "***", recs[3]["body"])
    check("log: fields", set(recs[0]) >= {"seq", "conn", "method", "path", "query", "body", "auth",
                                          "status", "fault", "t"})
    rc, out, _ = mockctl(base, "requests")
    want = ("GET /smp/powerplatform/connectionusage/cloudflows?top=2&tenant=a%26b%3Dc%20d  -  -> 200\n"
            "GET /smp/powerplatform/connectionusage/cloudflows?flowId=flow-0001  -  -> 200\n"
            "POST /lease_/api/usage/{org}/tenants/consumption-by-folder  "
            '{"aggregateByOwnership":true,"consumableCode":"RU","endDate":1706745600000,'
            '"startDate":1704067200000,"tenantId":"22222222-2222-2222-2222-222222222222"}  -> 200\n')
    check("mockctl: requests format", rc == 0 and out == want, out)
    rc, out, _ = mockctl(base, "requests", "--all", "--path-substr", "token")
    check("mockctl: requests --all", out == 'POST /connect/token  {"client_id":"test-client",'
          '"client_secret":"***","grant_type":"client_credentials"}  -> 200\n', out)
    check("mockctl: count", mockctl(base, "count")[1] == "3\n")
    check("mockctl: count --path-substr", mockctl(base, "count", "--path-substr", "cloudflows")[1] == "2\n")
    check("mockctl: tokens", mockctl(base, "tokens")[1] == "1\n")
    check("mockctl: conns", mockctl(base, "conns")[1] == "2\n")
    # (these requests may overlap: only the output's form is checked here)
    rc, out, _ = mockctl(base, "gaps", "-100000")
    check("mockctl: gaps", rc == 0 and out == "3 requests, every gap >= -100000 ms\n", out)
    rc, out, _ = mockctl(base, "gaps", "100000")
    check("mockctl: gaps too short", rc == 0 and "gap before request 2" in out, out)
    rc, out, err = mockctl(base, "config", '{"avepoint_rows": 4}')
    check("mockctl: config", rc == 0 and out == "" and c.flows()[2]["totalCount"] == 4, (rc, out, err))
    rc, out, err = mockctl(base, "fault", '{"action": {"status": 500}}')
    check("mockctl: fault", rc == 0 and out == "" and c.flows()[0] == 500, (rc, err))
    rc, out, err = mockctl(base, "fault", '{"action": {"bad": 1}}')
    check("mockctl: bad fault -> exit 1 + stderr", rc == 1 and out == "" and "bad" in err, (rc, err))
    rc, out, err = mockctl(base, "revoke")
    check("mockctl: revoke", rc == 0 and out == "", err)
    rc, out, _ = mockctl(base, "requests", "--faults", "--path-substr", "cloudflows")
    check("mockctl: --faults", out.splitlines()[-1].endswith("-> 500  [fault status:500]"), out)
    rc, out, err = mockctl("http://127.0.0.1:1", "count")
    check("mockctl: unreachable mock -> exit 1", rc == 1 and out == "" and err, (rc, err))
    mockctl(base, "reset")


def test_tls(tmp):
    openssl = shutil.which("openssl")
    if not openssl:
        print("skip  TLS (no openssl)")
        return
    cert, key = os.path.join(tmp, "cert.pem"), os.path.join(tmp, "key.pem")
    r = subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                        "-subj", "/CN=localhost", "-keyout", key, "-out", cert],
                       capture_output=True, timeout=20)
    if r.returncode != 0:
        print("skip  TLS (openssl req failed)")
        return
    proc, port = start_mock(tmp, "--tls-cert", cert, "--tls-key", key)
    try:
        ctx = ssl.create_default_context(cafile=cert)
        ctx.check_hostname = False
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
        conn.request("GET", FLOWS_PATH + "?top=4", headers={"Authorization": "Bearer test-token"})
        r = conn.getresponse()
        b = json.loads(r.read())
        conn.close()
        check("tls: https works, nextLink is https",
              r.status == 200 and b["nextLink"].startswith("https://127.0.0.1:%d/" % port), b)
        # a client that never handshakes must not block others
        idle = socket.create_connection(("127.0.0.1", port))
        conn = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=5)
        conn.request("GET", "/_mock/health")
        check("tls: idle raw connection does not block", conn.getresponse().status == 200)
        conn.close()
        idle.close()
    finally:
        stop_mock(proc)


# --------------------------------------------------------------------------
# the AvePoint Power Platform family, the UiPath summaries, certificate login
# --------------------------------------------------------------------------

PP = "/smp/powerplatform"
RUNS_PATH = PP + "/powerautomate/cloudflows/%s/runs"
LAUNCHES_PATH = PP + "/powerapps/%s/launches"
CONNECTIONS_PATH = PP + "/connections"
ACTIVE_PATH = PP + "/powerbi/powerbiactiveusers"
ENVS_PATH = PP + "/environments"
SUMMARY_PATH = "/lease_/api/usage/%s/tenants/consumption-summary" % ORG
TENANT_SUMMARY_PATH = "/lease_/api/usage/%s/tenants/%%s/consumption-summary" % ORG
DEMO_NS = uuid.UUID("6d6f636b-0000-4000-8000-75736167652d")
JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
CONTOSO = ["AdeleV@contoso.com", "MeganB@contoso.com", "LeeG@contoso.com", "NestorW@contoso.com"]
FABRIKAM = ["AlexW@fabrikam.com", "DiegoS@fabrikam.com", "IsaiahL@fabrikam.com",
            "JohannaL@fabrikam.com"]


def utc_today():
    return datetime.datetime.now(datetime.timezone.utc).date()


def days_to_today():
    """Days from 2024-01-01 to today (UTC), both included."""
    return (utc_today() - datetime.date(2024, 1, 1)).days + 1


def get(c, path, **params):
    return c.call("GET", path + ("?" + urllib.parse.urlencode(params) if params else ""))


def follow(c, path, key, **params):
    """All pages from path?params: (pages, items); nextLinks resolved as URI
    references against the URL of the page that carried them."""
    url = c.base + path + ("?" + urllib.parse.urlencode(params) if params else "")
    pages, items = [], []
    while url and len(pages) < 50:
        st, _, b = c.call("GET", url)
        if st != 200:
            pages.append((st, b))
            break
        pages.append(b)
        items.extend(b[key])
        url = urllib.parse.urljoin(url, b["nextLink"]) if b.get("nextLink") else None
    return pages, items


def expected_runs(j, flow_id, first, last):
    """Runs of flow j (1-based) on the days first..last (dates), by the formula."""
    out = []
    d = first
    while d <= last:
        i = (d - datetime.date(2024, 1, 1)).days
        start = datetime.datetime(d.year, d.month, d.day) + datetime.timedelta(hours=j)
        dur = 10 * j + i % 7
        rid = "%s-run-%s" % (flow_id, d.strftime("%Y%m%d"))
        out.append({"id": rid, "objectId": str(uuid.uuid5(DEMO_NS, rid)),
                    "startTime": start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "endTime": (start + datetime.timedelta(seconds=dur)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "duration": dur, "state": "Failed" if i % 10 == 0 else "Succeeded"})
        d += datetime.timedelta(days=1)
    return out


def test_family(c):
    r = RUNS_PATH % "flow-0001"
    st, _, b = get(c, r, fromDate="2024-01-01", toDate="2024-01-31")
    check("runs: flow-0001, fromDate 2024-01-01 toDate 2024-01-31 (midnight) -> 30 runs",
          st == 200 and b["totalCount"] == 30 and len(b["runs"]) == 30 and b["nextLink"] == "", b)
    check("runs: items by the formula (Jan 1..30)",
          b.get("runs") == expected_runs(1, "flow-0001", datetime.date(2024, 1, 1),
                                         datetime.date(2024, 1, 30)), b.get("runs", [])[:2])
    st, _, b = get(c, r, fromDate="2024-01-01", toDate="2024-01-31T23:59:59Z")
    check("runs: toDate 2024-01-31T23:59:59Z -> 31 runs", b["totalCount"] == 31, b["totalCount"])
    st, _, b = get(c, r, fromDate="2024-01-01T01:00:00Z", toDate="2024-01-03T01:00:00.000Z")
    check("runs: both bounds inclusive (01:00 .. 01:00 two days later -> 3)",
          [x["id"][-8:] for x in b["runs"]] == ["20240101", "20240102", "20240103"], b)
    st, _, b = get(c, r, fromDate="2024-01-01T01:00:00.000000001Z", toDate="2024-01-03T00:59:59.999+00:00")
    check("runs: a nanosecond after / a millisecond before exclude (+00:00 accepted)",
          [x["id"][-8:] for x in b["runs"]] == ["20240102"], b)
    st, _, b = get(c, RUNS_PATH % "flow-0003", fromDate="2024-01-11", toDate="2024-01-11T23:00:00Z")
    check("runs: flow-0003 on 2024-01-11: day 10 -> Failed, 33 s, 03:00",
          b["runs"] == [{"id": "flow-0003-run-20240111",
                         "objectId": str(uuid.uuid5(DEMO_NS, "flow-0003-run-20240111")),
                         "startTime": "2024-01-11T03:00:00Z", "endTime": "2024-01-11T03:00:33Z",
                         "duration": 33, "state": "Failed"}], b)
    st, _, b = get(c, r, top="1")
    check("runs: no dates -> every day from 2024-01-01 to today", b["totalCount"] == days_to_today()
          and b["runs"][0]["startTime"] == "2024-01-01T01:00:00Z", b["totalCount"])
    st, _, b = get(c, r, fromDate=utc_today().isoformat())
    check("runs: fromDate today -> today's run only", b["totalCount"] == 1, b)
    c.ctl("POST", "config", {"avepoint_rows": 2})
    st, _, b = get(c, RUNS_PATH % "flow-0005", fromDate="2024-01-01", toDate="2024-01-10")
    check("runs: independent of avepoint_rows (flow-0005 with 2 rows)", b["totalCount"] == 9, b)
    c.ctl("POST", "reset")
    st, _, b = get(c, RUNS_PATH % "flow-0002", tenant="fabrikam", toDate="2024-01-05")
    st2, _, b2 = get(c, RUNS_PATH % "flow-0002", tenant="contoso")
    check("runs: tenant filter (flow-0002 is fabrikam's)", b["totalCount"] == 4 and st2 == 200
          and b2 == {"runs": [], "totalCount": 0, "nextLink": ""}, (b, b2))
    st, _, b = get(c, RUNS_PATH % "flow-0099")
    check("runs: unknown flow -> 200, no runs", st == 200 and b["runs"] == [] and b["totalCount"] == 0, b)
    st, _, b = get(c, RUNS_PATH % "flow%2F0001")
    check("runs: percent-encoded path segment is decoded (no such flow)", st == 200 and b["totalCount"] == 0, b)
    for q, name in ((dict(fromDate="2024-13-01"), "fromDate"), (dict(fromDate="2024-01-01T25:00:00Z"), "fromDate"),
                    (dict(toDate="2024-01-01T00:00:00"), "toDate"), (dict(toDate="2024/01/01"), "toDate"),
                    (dict(toDate="2024-01-01T00:00:00+01:00"), "toDate"), (dict(fromDate=""), "fromDate"),
                    (dict(fromDate="2024-01-01T00:00:60Z"), "fromDate"),
                    (dict(fromDate="2024-01-01T00:00:00.1234567890Z"), "fromDate"),
                    (dict(fromDate="2024-02-01", toDate="2024-01-31"), "fromDate"),
                    (dict(flowId="flow-0001"), "flowId"), (dict(top="0"), "top")):
        st, _, b = get(c, r, **q)
        check("runs: %s -> 400 naming %s" % (urllib.parse.urlencode(q), name), st == 400
              and b["error"]["code"] == "InvalidParameter" and name in b["error"]["message"], (st, b))
    st, _, b = c.call("GET", r + "?toDate=2024-01-02&toDate=2024-01-03")
    check("runs: a parameter twice -> 400", st == 400 and "toDate" in b["error"]["message"], b)
    st, h, _ = c.call("POST", r, {})
    check("runs: POST -> 405", st == 405 and h.get("Allow") == "GET", st)
    st, _, _ = c.call("GET", r, token="nope")
    check("runs: bad token -> 401", st == 401, st)

    # paging: all three nextLink forms give the same rows
    for form in ("absolute", "relative", "query"):
        c.ctl("POST", "config", {"nextlink_form": form})
        pages, items = follow(c, r, "runs", top="7", fromDate="2024-01-01", toDate="2024-01-31T12:00:00Z")
        first = pages[0]["nextLink"] if pages and isinstance(pages[0], dict) else ""
        prefix = {"absolute": c.base + r + "?top=7&fromDate=2024-01-01&toDate=2024-01-31T12%3A00%3A00Z&skiptoken=",
                  "relative": r + "?top=7&fromDate=2024-01-01&toDate=2024-01-31T12%3A00%3A00Z&skiptoken=",
                  "query": "?top=7&fromDate=2024-01-01&toDate=2024-01-31T12%3A00%3A00Z&skiptoken="}[form]
        check("runs paging, nextlink_form %s: 5 pages of 31, link form, totalCount, last ''" % form,
              len(pages) == 5 and first.startswith(prefix)
              and all(p["totalCount"] == 31 for p in pages) and pages[-1]["nextLink"] == ""
              and [x["id"] for x in items] == [x["id"] for x in expected_runs(
                  1, "flow-0001", datetime.date(2024, 1, 1), datetime.date(2024, 1, 31))],
              (len(pages), first))
        pages, items = follow(c, FLOWS_PATH, "connectionUsageCloudFlows", top="3")
        check("cloudflows paging, nextlink_form %s" % form, len(pages) == 4 and len(items) == 10
              and pages[0]["nextLink"].startswith({"absolute": c.base + FLOWS_PATH, "relative": FLOWS_PATH,
                                                   "query": "?top=3&skiptoken="}[form]), pages[0])
    st, _, b = c.ctl("POST", "config", {"nextlink_form": "opaque"})
    check("config: bad nextlink_form -> 400", st == 400 and "nextlink_form" in b["error"], b)
    c.ctl("POST", "reset")

    # app launches
    la = LAUNCHES_PATH % "app-0002"
    st, _, b = get(c, la, fromDate="2024-01-01", toDate="2024-01-02T23:59:59Z")
    adele, megan = b["launches"][0]["user"], b["launches"][1]["user"]
    check("launches: app-0002 = 2 a day at 09:15, 10:15",
          st == 200 and b["totalCount"] == 4 and [x["launchTime"] for x in b["launches"]] ==
          ["2024-01-01T09:15:00Z", "2024-01-01T10:15:00Z", "2024-01-02T09:15:00Z", "2024-01-02T10:15:00Z"], b)
    check("launches: nested user/device objects and tags arrays by the formula",
          b["launches"][0] == {"launchTime": "2024-01-01T09:15:00Z",
                               "user": {"id": str(uuid.uuid5(DEMO_NS, "user/adelev@contoso.com")),
                                        "displayName": "Adele Vance", "userPrincipalName": CONTOSO[0]},
                               "device": {"platform": "Windows", "browser": "Edge"}, "tags": []}
          and b["launches"][1]["device"] == {"platform": "iOS", "browser": None}
          and b["launches"][1]["tags"] == ["field"] and megan["userPrincipalName"] == CONTOSO[1]
          and b["launches"][3]["tags"] == ["field", "pilot"]
          and b["launches"][3]["device"] == {"platform": "Android", "browser": None}, b["launches"][:2])
    st, _, b = get(c, LAUNCHES_PATH % "app-0003", fromDate="2024-01-01T11:15:00Z", toDate="2024-01-01T11:15:00Z")
    check("launches: app-0003 (3 a day, fabrikam), exact-instant bounds -> the 11:15 one",
          b["totalCount"] == 1 and b["launches"][0]["user"]["userPrincipalName"] == FABRIKAM[2], b)
    st, _, b = get(c, LAUNCHES_PATH % "app-0003", tenant="contoso")
    st2, _, b2 = get(c, LAUNCHES_PATH % "app-0001", top="1")
    check("launches: tenant filter; app-0001 once a day up to today",
          b["totalCount"] == 0 and b2["totalCount"] == days_to_today(), (b, b2.get("totalCount")))
    st, _, b = get(c, la, fromDate="2024-01-01T00:00Z")
    check("launches: bad fromDate -> 400", st == 400 and "fromDate" in b["error"]["message"], b)
    st, _, b = get(c, LAUNCHES_PATH % "nope")
    check("launches: unknown app -> 200, none", st == 200 and b["totalCount"] == 0, b)

    # connections and environments
    pages, items = follow(c, CONNECTIONS_PATH, "connections", top="3")
    check("connections: 8 in 3 pages", len(pages) == 3 and len(items) == 8
          and [x["id"] for x in items] == ["conn-%05d" % k for k in range(1, 9)]
          and pages[0]["totalCount"] == 8, [x.get("id") for x in items])
    check("connections: item by the formula (conn-00003)", items[2] == {
        "id": "conn-00003", "displayName": "Microsoft Dataverse 3",
        "connector": "shared_commondataserviceforapps",
        "environment": {"id": "env-02", "displayName": "Fabrikam Default"},
        "owners": [{"id": str(uuid.uuid5(DEMO_NS, "user/" + FABRIKAM[2].lower())), "displayName": "Isaiah Langer"},
                   {"id": str(uuid.uuid5(DEMO_NS, "user/" + FABRIKAM[3].lower())), "displayName": "Johanna Lorenz"}],
        "status": "Connected", "createdTime": "2024-01-15T08:30:00Z", "isShared": False}, items[2:3])
    check("connections: status Error for c % 4 == 0, isShared for even c",
          [(x["status"], x["isShared"]) for x in items[3:5]] == [("Error", True), ("Connected", False)])
    st, _, b = get(c, CONNECTIONS_PATH, tenant="contoso")
    check("connections: tenant contoso -> 1, 2, 5, 6", [x["id"][-1] for x in b["connections"]]
          == ["1", "2", "5", "6"] and b["totalCount"] == 4, b)
    st, _, b = get(c, CONNECTIONS_PATH, fromDate="2024-01-01")
    check("connections: fromDate is unknown here -> 400", st == 400 and "fromDate" in b["error"]["message"], b)
    st, _, b = get(c, ENVS_PATH)
    check("environments: 4", st == 200 and [e["id"] for e in b["environments"]] ==
          ["env-01", "env-02", "env-03", "env-04"] and b["environments"][3] ==
          {"id": "env-04", "displayName": "Fabrikam Sandbox", "region": "europe", "type": "Sandbox"}
          and b["nextLink"] == "", b)
    st, _, b = get(c, ENVS_PATH, tenant="fabrikam", top="1")
    check("environments: tenant filter, paging", b["totalCount"] == 2 and b["environments"][0]["id"] == "env-02"
          and "skiptoken=" in b["nextLink"], b)

    # Power BI active users
    want = []
    for i in range(10):
        for upns in (CONTOSO, FABRIKAM):
            for u in range(4):
                if (i + u) % 3:
                    want.append(((datetime.date(2024, 1, 1) + datetime.timedelta(days=i)).isoformat(),
                                 upns[u], i % 5 + u + 1, [[], ["Sales"], ["Sales", "Finance"],
                                                          ["Sales", "Finance", "Operations"]][(u + 1) % 4]))
    pages, items = follow(c, ACTIVE_PATH, "activeUsers", top="17", fromDate="2024-01-01",
                          toDate="2024-01-10")
    got = [(x["date"], x["userPrincipalName"], x["activityCount"], x["workspaces"]) for x in items]
    check("activeUsers: 10 days by the formula, paged by 17", got == want and len(want) == 52
          and pages[0]["totalCount"] == 52 and len(pages) == 4, (len(got), got[:3]))
    check("activeUsers: displayName", items[0]["displayName"] == "Megan Bowen", items[:1])
    st, _, b = get(c, ACTIVE_PATH, fromDate="2024-01-01T00:00:01Z", toDate="2024-01-02T00:00:00Z",
                   tenant="fabrikam")
    check("activeUsers: the date's midnight is compared; tenant filter",
          [(x["date"], x["userPrincipalName"]) for x in b["activeUsers"]] ==
          [("2024-01-02", FABRIKAM[0]), ("2024-01-02", FABRIKAM[1]), ("2024-01-02", FABRIKAM[3])], b)
    st, _, b = get(c, ACTIVE_PATH, tenant="nobody")
    check("activeUsers: unknown tenant -> none", st == 200 and b["totalCount"] == 0, b)
    st, _, b = get(c, ACTIVE_PATH, top="1")
    n = days_to_today()
    check("activeUsers: up to today", b["totalCount"] == (n // 3) * 16 + [0, 4, 10][n % 3]
          and b["activeUsers"][0]["date"] == "2024-01-01", b["totalCount"])

    # fault rules on the family
    def fault(rule):
        st, _, b = c.ctl("POST", "faults", rule)
        assert st == 200, b
    fault({"match": {"path_regex": "/runs$"}, "action": {"items": [{"id": "x"}]}})
    st, _, b = get(c, r, top="2")
    check("fault: items replaces runs", b["runs"] == [{"id": "x"}] and "items" not in b, b)
    fault({"match": {"path_regex": "launches"}, "action": {"item_patch": {"tags": "oops"}}})
    st, _, b = get(c, la, top="2")
    check("fault: item_patch on launches", [x["tags"] for x in b["launches"]] == ["oops", "oops"], b)
    fault({"match": {"path_regex": "connections$"}, "action": {"next_link": 7}})
    st, _, b = get(c, CONNECTIONS_PATH)
    check("fault: next_link on connections", b["nextLink"] == 7, b)
    c.ctl("POST", "config", {"nextlink_form": "relative"})
    fault({"match": {"path_regex": "/runs$"}, "times": 2, "action": {"next_link_cycle": 2}})
    st, _, b1 = get(c, r, top="3")
    st, _, b2 = c.call("GET", b1["nextLink"])
    check("fault: next_link_cycle on runs, relative form", b1["nextLink"].startswith(r + "?top=3&skiptoken=")
          and b2["nextLink"] == r + "?top=3", (b1["nextLink"], b2["nextLink"]))
    fault({"match": {"path_regex": "environments"}, "times": -1, "action": {"endless_pages": True}})
    pages, items = follow(c, ENVS_PATH, "environments", top="3")
    check("fault: endless_pages on environments", len(pages) == 50 and len(items) == 4
          and len({p["nextLink"] for p in pages}) == 50, (len(pages), len(items)))
    c.ctl("POST", "reset")


def summary_body(**over):
    body = {"startDate": JAN1, "endDate": FEB1, "consumableCode": "RU"}
    body.update(over)
    return body


def test_summaries(c):
    t2 = TENANT_SUMMARY_PATH % T2
    st, _, b = c.call("POST", t2, summary_body())
    check("summary: tenant 2222, RU, January (the documented example)", st == 200 and b == {
        "tenantId": T2, "tenantName": "Tenant 2", "consumableCode": "RU", "startDate": JAN1,
        "endDate": FEB1, "totalUnitsInAccount": 100000, "allocated": 1000,
        "consumedFromTenantPool": 697.5, "consumedFromOrgPool": 0,
        "consumedFromOrgWithoutTenant": 387.5}, b)
    st, _, b = c.call("POST", t2, summary_body(endDate=JAN1 + 60 * DAY))
    check("summary: 60 days -> tenant pool 1000, org pool 350",
          (b["consumedFromTenantPool"], b["consumedFromOrgPool"], b["consumedFromOrgWithoutTenant"])
          == (1000, 350, 750), b)
    st, _, b = c.call("POST", TENANT_SUMMARY_PATH % T3.upper(), summary_body(consumableCode="AIU"))
    check("summary: tenant 3333 (upper case), AIU: no allocation, all from the org pool",
          st == 200 and b["tenantId"] == T3 and b["allocated"] is None and b["consumedFromTenantPool"] == 0
          and b["consumedFromOrgPool"] == 23.25, b)
    st, _, b = c.call("POST", SUMMARY_PATH, summary_body())
    check("summary: organization-wide", st == 200 and b == {
        "consumableCode": "RU", "startDate": JAN1, "endDate": FEB1, "totalUnitsInAccount": 100000,
        "consumedFromOrgWithoutTenant": 387.5, "tenants": [
            {"tenantId": T2, "tenantName": "Tenant 2", "allocated": 1000,
             "consumedFromTenantPool": 697.5, "consumedFromOrgPool": 0},
            {"tenantId": T3, "tenantName": "Tenant 3", "allocated": None,
             "consumedFromTenantPool": 0, "consumedFromOrgPool": 139.5}]}, b)
    st, _, b = c.call("POST", SUMMARY_PATH, summary_body(startDate=JAN1 + 1, endDate=JAN1 + DAY))
    check("summary: no UTC midnight in the range -> zeros", b["consumedFromOrgWithoutTenant"] == 0
          and all(t["consumedFromOrgPool"] == 0 == t["consumedFromTenantPool"] for t in b["tenants"]), b)
    for path in (SUMMARY_PATH, t2):
        which = "org" if path == SUMMARY_PATH else "tenant"
        for over, field in ((dict(tenantId=T2), "tenantId"), (dict(aggregateByOwnership=False), "aggregateByOwnership"),
                            (dict(folderKeys=[]), "folderKeys"), (dict(startDate=float(JAN1)), "startDate"),
                            (dict(endDate=str(FEB1)), "endDate"), (dict(consumableCode=1), "consumableCode"),
                            (dict(consumableCode="XYZ"), "consumableCode"),
                            (dict(startDate=FEB1, endDate=JAN1), "startDate")):
            st, _, b = c.call("POST", path, summary_body(**over))
            check("summary %s: %s -> 400 naming %s" % (which, json.dumps(over), field),
                  st == 400 and field in b.get("message", ""), (st, b))
        for field in ("startDate", "endDate", "consumableCode"):
            body = summary_body()
            del body[field]
            st, _, b = c.call("POST", path, body)
            check("summary %s: missing %s -> 400" % (which, field),
                  st == 400 and "missing" in b["message"] and field in b["message"], (st, b))
        st, _, _ = c.call("POST", path, summary_body(), ctype="text/plain")
        st2, _, _ = c.call("POST", path, [1])
        st3, _, _ = c.call("POST", path.replace(ORG, "99999999-9999-9999-9999-999999999999"), summary_body())
        check("summary %s: 415, 400 for a non-object, 404 for another organization" % which,
              (st, st2, st3) == (415, 400, 404), (st, st2, st3))
    st, _, b = c.call("POST", TENANT_SUMMARY_PATH % "44444444-4444-4444-4444-444444444444", summary_body())
    check("summary: unknown tenant -> 404 'Tenant ... not found'", st == 404
          and b["message"].startswith("Tenant ") and b["message"].endswith("not found"), (st, b))
    st, _, b = c.call("POST", TENANT_SUMMARY_PATH % T2, summary_body(), token=None)
    check("summary: no token -> 401", st == 401, st)
    c.ctl("POST", "faults", {"match": {"path_regex": "consumption-summary$"},
                             "action": {"item_patch": {"allocated": "many"}}})
    st, _, b = c.call("POST", SUMMARY_PATH, summary_body())
    check("summary: item faults act on 'tenants'", [t["allocated"] for t in b["tenants"]] == ["many", "many"], b)


def token_form(assertion, **extra):
    form = {"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER,
            "client_assertion": assertion}
    form.update(extra)
    return {k: v for k, v in form.items() if v is not None}


def test_cert_login(c, certs_dir, log_file):
    import client_cert
    a_crt, a_key = os.path.join(certs_dir, "a.crt"), os.path.join(certs_dir, "a.key")
    b_crt, b_key = os.path.join(certs_dir, "b.crt"), os.path.join(certs_dir, "b.key")
    e_crt, e_key = os.path.join(certs_dir, "e.crt"), os.path.join(certs_dir, "e.key")
    p_crt, p_key = os.path.join(certs_dir, "p.crt"), os.path.join(certs_dir, "p.key")
    x5t, kid = client_cert.thumbprints(a_crt)
    aud = c.base + "/connect/token"
    st, _, b = c.ctl("GET", "client_certs")
    check("cert: --client-cert registered cli-a with its x5t",
          b == {"client_certs": [{"client_id": "cli-a", "x5t": x5t}]}, b)
    check("cert: kid is the upper-case hex of the same SHA-1",
          base64.urlsafe_b64decode(x5t + "=").hex().upper() == kid and len(kid) == 40, kid)

    jwt = client_cert.sign_assertion(a_key, a_crt, "cli-a", aud)
    st, _, b = c.token(token_form(jwt, scope="enpower.data.read.all"))
    check("cert: a valid assertion -> token", st == 200 and b.get("token_type") == "Bearer"
          and b.get("expires_in") == 3600 and b.get("scope") == "enpower.data.read.all", b)
    st2, _, _ = c.flows(token=b.get("access_token", "x"))
    st3, _, _ = c.call("GET", ENVS_PATH, token=b.get("access_token", "x"))
    check("cert: the token works on API routes", st2 == 200 and st3 == 200, (st2, st3))
    st, _, b = c.token(token_form(jwt))
    check("cert: replayed jti -> 400 invalid_client", st == 400 and b == {
        "error": "invalid_client", "error_description": "jti already used"}, b)
    recs = [r for r in c.ctl("GET", "requests")[2]["requests"] if "token" in r["path"]]
    check("cert: log masks client_assertion, records assertion_error",
          [r["body"]["client_assertion"] for r in recs] == ["***", "***"]
          and [r.get("assertion_error") for r in recs if "token" in r["path"]] == [None, "jti already used"],
          recs)
    check("cert: the assertion appears nowhere in /_mock/requests or the log file",
          jwt.split(".")[2] not in json.dumps(recs) and jwt.split(".")[2] not in open(log_file).read())
    st, _, b = c.token(token_form(jwt, client_id="cli-a"), path="/identity_/connect/token")
    check("cert: aud is per route (the AvePoint token URL on UiPath's route -> 400)", st == 400
          and b["error"] == "invalid_client" and "aud" in b["error_description"], b)
    jwt_u = client_cert.sign_assertion(a_key, a_crt, "cli-a", c.base + "/identity_/connect/token")
    st, _, b = c.token(token_form(jwt_u, client_id="cli-a"), path="/identity_/connect/token")
    check("cert: UiPath token route with client_id = iss -> token", st == 200 and "access_token" in b, b)
    c.ctl("POST", "reset")
    st, _, b = c.token(token_form(jwt))
    check("cert: reset forgets jtis, keeps registrations", st == 200 and
          c.ctl("GET", "client_certs")[2]["client_certs"][0]["client_id"] == "cli-a", b)

    now = int(time.time())
    bad = [
        ("wrong aud", dict(aud=c.base + "/connect/token/"), "aud"),
        ("aud as an array", dict(aud=[aud]), "aud"),
        ("wrong x5t", dict(x5t=client_cert.thumbprints(b_crt)[0]), "x5t"),
        ("x5t missing", dict(x5t=None), "x5t"),
        ("wrong kid", dict(kid=kid.lower()), "kid"),
        ("expired exp", dict(iat=now - 400, nbf=now - 400, exp=now - 1), "expired"),
        ("nbf too far ahead", dict(nbf=now + 400), "nbf"),
        ("iat too far ahead", dict(iat=now + 400, exp=now + 500), "iat"),
        ("lifetime over an hour", dict(exp=now + 3601), "lifetime"),
        ("exp not an integer", dict(exp=float(now + 60)), "exp"),
        ("nbf missing", dict(nbf=None), "nbf"),
        ("wrong alg", dict(alg="RS512"), "alg"),
        ("alg none", dict(alg="none"), "alg"),
        ("wrong typ", dict(typ="JWS"), "typ"),
        ("sub != iss", dict(sub="other"), "sub"),
        ("jti missing", {}, "jti"),
    ]
    for name, over, word in bad:
        if name == "jti missing":           # sign_assertion always sets a jti
            a = client_cert.sign_jwt(a_key, {"alg": "RS256", "typ": "JWT", "x5t": x5t, "kid": kid},
                                     {"iss": "cli-a", "sub": "cli-a", "aud": aud, "iat": now,
                                      "nbf": now, "exp": now + 300})
        else:
            kw = dict(over)
            a = client_cert.sign_assertion(a_key, a_crt, "cli-a", kw.pop("aud", aud), now=now, **kw)
        st, _, b = c.token(token_form(a))
        check("cert: %s -> 400 invalid_client" % name, st == 400 and b.get("error") == "invalid_client"
              and word in b.get("error_description", ""), (st, b))
    a = client_cert.sign_assertion(b_key, a_crt, "cli-a", aud)
    st, _, b = c.token(token_form(a))
    check("cert: signed with another key -> 400 invalid_client", st == 400 and
          b["error"] == "invalid_client" and "signature" in b["error_description"], b)
    h, p, s = client_cert.sign_assertion(a_key, a_crt, "cli-a", aud).split(".")
    claims = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
    claims["scope"] = "more"
    p2 = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    st, _, b = c.token(token_form(h + "." + p2 + "." + s))
    check("cert: claims altered after signing -> 400 signature", st == 400 and "signature" in b["error_description"], b)
    a = client_cert.sign_assertion(a_key, a_crt, "nobody", aud)
    st, _, b = c.token(token_form(a))
    check("cert: unregistered client id -> 400 invalid_client", st == 400 and
          b["error"] == "invalid_client" and "nobody" in b["error_description"], b)
    a = client_cert.sign_assertion(a_key, a_crt, "cli-a", aud)
    st, _, b = c.token(token_form(a, client_id="cli-b"))
    check("cert: client_id != iss -> 400 invalid_client", st == 400 and "client_id" in b["error_description"], b)
    for name, form, code in (("not a JWT", token_form("abc.def"), "invalid_client"),
                             ("padding", token_form(a + "="), "invalid_client"),
                             ("no client_assertion_type", token_form(a, client_assertion_type=None), "invalid_request"),
                             ("wrong client_assertion_type", token_form(a, client_assertion_type="x"), "invalid_request"),
                             ("secret and assertion", token_form(a, client_secret="test-secret"), "invalid_request")):
        st, _, b = c.token(form)
        check("cert: %s -> 400 %s" % (name, code), st == 400 and b.get("error") == code, b)
    recs = [r for r in c.ctl("GET", "requests")[2]["requests"] if r.get("assertion_error")]
    check("cert: every refusal logged its check", len(recs) == len(bad) + 9 and
          all(isinstance(r["assertion_error"], str) for r in recs), len(recs))

    # an EC certificate: registered, but RS256 needs RSA
    st, _, b = c.ctl("POST", "client_certs", {"client_id": "cli-e", "certificate": open(e_crt).read()})
    a = client_cert.sign_assertion(e_key, e_crt, "cli-e", aud)
    st2, _, b2 = c.token(token_form(a))
    check("cert: an EC certificate -> 400 invalid_client (not RSA)", st == 200 and st2 == 400
          and b2["error"] == "invalid_client" and "RSA" in b2["error_description"], (b, b2))
    # an encrypted key, registered with mockctl
    rc, out, err = mockctl(c.base, "register-cert", "cli-p", p_crt)
    check("mockctl: register-cert prints the x5t", rc == 0 and out == client_cert.thumbprints(p_crt)[0] + "\n",
          (rc, out, err))
    a = client_cert.sign_assertion(p_key, p_crt, "cli-p", aud, passphrase="pass phrase")
    st, _, b = c.token(token_form(a))
    check("cert: a passphrase-protected key signs a valid assertion", st == 200, b)
    rc, out, err = mockctl(c.base, "register-cert", "cli-x", os.path.join(certs_dir, "a.key"))
    check("mockctl: register-cert with a key file -> exit 1", rc == 1 and out == "" and "certificate" in err,
          (rc, out, err))
    for spec in ({"client_id": "x", "certificate": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"},
                 {"client_id": "x"}, {"client_id": "", "certificate": open(a_crt).read()}, ["x"]):
        st, _, b = c.ctl("POST", "client_certs", spec)
        check("cert: POST client_certs %s -> 400" % json.dumps(spec)[:50], st == 400 and "error" in b, (st, b))
    # the secret grant still works, also for a client that has a certificate
    st, _, b = c.token({"grant_type": "client_credentials", "client_id": "test-client",
                        "client_secret": "test-secret"})
    check("cert: the secret grant still works", st == 200, b)


def test_cert_option(tmp):
    """--client-cert with a file that is not a certificate: the mock refuses to start."""
    key = os.path.join(tmp, "certs", "a.key")
    for spec in ("cli=" + key, "no-equals-sign"):
        p = subprocess.run([sys.executable, MOCK, "--port", "0", "--client-cert", spec],
                           capture_output=True, text=True, timeout=20)
        check("cert: --client-cert %s -> exit 2 with a message" % spec.split("=")[0],
              p.returncode == 2 and "--client-cert" in p.stderr, (p.returncode, p.stderr[-200:]))


def make_certs(tmp):
    """The client certificates of test_cert_login (None without openssl)."""
    if not shutil.which("openssl"):
        return None
    sys.path.insert(0, HERE)
    import client_cert
    d = os.path.join(tmp, "certs")
    client_cert.make_client_cert(d, "a")
    client_cert.make_client_cert(d, "b")
    client_cert.make_client_cert(d, "e", ec=True)
    client_cert.make_client_cert(d, "p", passphrase="pass phrase", days=2)
    return d


def test_units():
    """The vendor rules and mockctl's fault presets as functions: no sockets."""
    sys.path.insert(0, HERE)
    import mockctl
    from mockapi import avepoint, oauth, uipath
    from mockapi.common import Request
    from mockapi.datasets import TestDataset
    ds = TestDataset()
    json_h = {"Content-Type": "application/json"}

    def folder(**over):
        return Request("POST", FOLDER_PATH, headers=json_h, body=json.dumps(month_body(**over)).encode())

    r = uipath.usage(folder(), ORG, "consumption-by-folder", ORG, ds)
    items = r.payload["items"]
    check("unit: uipath by folder, January RU: Shared 46.5, 31 processes",
          r.status == 200 and len(items) == 5 and items[0]["consumedBySelf"] == 46.5
          and items[0]["processCountSelf"] == 31, r.payload)
    r = uipath.usage(folder(consumableCode="XX"), ORG, "consumption-by-folder", ORG, ds)
    check("unit: uipath unknown consumable: 400 in UiPath's shape",
          r.status == 400 and "unknown consumable 'XX'" in r.payload["message"], r.payload)
    r = uipath.usage(folder(), "other-org", "consumption-by-folder", ORG, ds)
    check("unit: uipath unknown organization: 404", r.status == 404, r.payload)
    r = uipath.usage(Request("POST", DAILY_PATH, headers={"content-type": "application/json"},
                             body=json.dumps(month_body(endDate=JAN1 + DAY)).encode()),
                     ORG, "daily-consumption-by-service", ORG, ds)
    check("unit: uipath daily, one day: three services (headers compare case-insensitively)",
          r.status == 200 and [i["service"] for i in r.payload["items"]]
          == ["Orchestrator", "Apps", "Document Understanding"], r.payload)

    config = {"avepoint_rows": 10, "nextlink_style": "empty"}
    r = avepoint.cloudflows(Request("GET", FLOWS_PATH, [("top", "3")]), ds, config, "http://h:1")
    b = r.payload
    check("unit: avepoint first page: 3 of 10 rows, nextLink on the given origin",
          r.status == 200 and len(b["connectionUsageCloudFlows"]) == 3 and b["totalCount"] == 10
          and b["nextLink"].startswith("http://h:1" + FLOWS_PATH + "?top=3&skiptoken="), b)
    r = avepoint.cloudflows(Request("GET", FLOWS_PATH, [("top", "0")]), ds, config, "http://h:1")
    check("unit: avepoint top 0: 400 InvalidParameter",
          r.status == 400 and r.payload["error"]["code"] == "InvalidParameter", r.payload)

    form = {"Content-Type": "application/x-www-form-urlencoded"}
    r = oauth.token(Request("POST", "/connect/token", headers=form,
                            body=b"grant_type=client_credentials&client_id=c&client_secret=s"),
                    "c", "s", lambda scope: ("tok", 60))
    check("unit: oauth token: the issued token", r.status == 200 and r.payload["access_token"] == "tok"
          and r.payload["expires_in"] == 60, r.payload)
    r = oauth.bearer_error(Request("GET", FLOWS_PATH, headers={"Authorization": "Bearer x"}),
                           "avepoint", lambda t: False)
    check("unit: oauth unknown bearer token: 401", r is not None and r.status == 401, r and r.payload)

    from mockapi import avepoint_family
    from mockapi.datasets import DemoDataset
    jan10 = datetime.date(2024, 1, 10)

    def fam(name, path, arg, query=(), dataset=ds, cfg=None):
        return avepoint_family.endpoint(Request("GET", path, list(query)), name, arg, dataset,
                                        cfg or config, "http://h:1", today=jan10)
    r = fam("runs", RUNS_PATH % "flow-0004", "flow-0004")
    check("unit: runs up to an injected today (10 days), flow 4 at 04:00",
          r.payload["totalCount"] == 10 and r.payload["runs"][-1]["startTime"] == "2024-01-10T04:00:00Z"
          and r.payload["runs"][-1]["duration"] == 40 + 9 % 7, r.payload["runs"][-1:])
    check("unit: family routes", [avepoint_family.match(p) for p in (
        RUNS_PATH % "a%20b", LAUNCHES_PATH % "x", CONNECTIONS_PATH, ACTIVE_PATH, ENVS_PATH,
        PP + "/powerapps/x/launches/y", PP + "/connections/")] == [
        ("runs", "a b"), ("launches", "x"), ("connections", None), ("activeUsers", None),
        ("environments", None), None, None])
    r = fam("activeUsers", ACTIVE_PATH, None, [("top", "1000")])
    check("unit: activeUsers, 10 days: 3-day blocks of 16 items (+4 for day 10)",
          r.payload["totalCount"] == 3 * 16 + 4 == len(r.payload["activeUsers"]), r.payload["totalCount"])
    demo = DemoDataset()
    r = fam("runs", RUNS_PATH % demo.pp_flows[24][0], demo.pp_flows[24][0], [("top", "1")], demo)
    check("unit: demo flow 25 runs at d + 25 h (the next day, 01:00); the id keeps day d",
          r.payload["runs"][0]["startTime"] == "2024-01-02T01:00:00Z"
          and r.payload["runs"][0]["id"].endswith("-run-20240101"), r.payload)
    r = fam("launches", LAUNCHES_PATH % demo.pp_apps[3][0], demo.pp_apps[3][0], [], demo)
    check("unit: demo app 4: 4 launches a day", r.payload["totalCount"] == 40, r.payload["totalCount"])
    r = fam("connections", CONNECTIONS_PATH, None, [("tenant", "fabrikam")], demo)
    check("unit: demo connections: 4 per tenant, environments of the tenant",
          r.payload["totalCount"] == 4 and {x["environment"]["displayName"] for x in r.payload["connections"]}
          <= {"Fabrikam Default", "Fabrikam Production"}, r.payload)
    r = fam("environments", ENVS_PATH, None, [("top", "2")], cfg=dict(config, nextlink_form="query"))
    check("unit: nextlink_form query", r.payload["nextLink"].startswith("?top=2&skiptoken="), r.payload)
    ns = [avepoint_family.parse_time("x", v) for v in (
        "2024-01-01", "2024-01-01T00:00:00Z", "2024-01-01T00:00:00+00:00", "2024-01-01T00:00:00.5Z")]
    check("unit: fromDate/toDate forms", ns[0] == ns[1] == ns[2] == 1704067200 * 10 ** 9
          and ns[3] == ns[0] + 500_000_000, ns)

    def summary(body, tenant=None, dataset=ds):
        return uipath.summary(Request("POST", SUMMARY_PATH, headers=json_h, body=json.dumps(body).encode()),
                              ORG, tenant, ORG, dataset)
    r = summary(summary_body(), T2, demo)
    check("unit: demo Production RU January: the folders' rounded sum 5631.16 (not 5631.15)",
          (r.payload["allocated"], r.payload["consumedFromTenantPool"], r.payload["consumedFromOrgPool"])
          == (5000, 5000, 631.16), r.payload)
    r = summary(summary_body(), None)
    check("unit: summary org-wide items_key is tenants", r.items_key == "tenants" and r.status == 200)
    r = summary(dict(summary_body(), extra=1), "nope")
    check("unit: summary body checked before the tenant", r.status == 400 and "extra" in r.payload["message"])

    # the assertion checks without openssl: a fake certificate and verifier
    from mockapi import certs as mcerts
    fake = mcerts.ClientCert("cli", "X5T", "KID", "PUB", "RSA")

    def b64j(o):
        return base64.urlsafe_b64encode(json.dumps(o).encode()).decode().rstrip("=")

    def assertion(**claims):
        body = {"iss": "cli", "sub": "cli", "aud": "http://h/connect/token", "jti": "j1",
                "iat": 1000, "nbf": 1000, "exp": 1300}
        body.update(claims)
        return "%s.%s.c2ln" % (b64j({"alg": "RS256", "typ": "JWT", "x5t": "X5T", "kid": "KID"}), b64j(body))
    seen = set()

    def tok(jwt, now=1000, verify=lambda pub, data, sig: sig == b"sig"):
        form = urllib.parse.urlencode({"grant_type": "client_credentials", "client_assertion_type": JWT_BEARER,
                                       "client_assertion": jwt}).encode()
        pol = oauth.AssertionPolicy("http://h/connect/token", {"cli": fake}.get,
                                    lambda j: not (j in seen or seen.add(j)), now=now, verify=verify)
        return oauth.token(Request("POST", "/connect/token", headers=form_h, body=form), "c", "s",
                           lambda scope: ("tok", 60), pol)
    form_h = {"Content-Type": "application/x-www-form-urlencoded"}
    r = tok(assertion())
    check("unit: assertion accepted (fake verifier), log_fields assertion_error None",
          r.status == 200 and r.payload["access_token"] == "tok" and r.log_fields == {"assertion_error": None},
          r.payload)
    r = tok(assertion(jti="j2"), now=1300)
    check("unit: exp == now -> expired", r.status == 400 and "expired" in r.payload["error_description"]
          and r.log_fields["assertion_error"] == r.payload["error_description"], r.payload)
    r = tok(assertion(jti="j3"), verify=lambda *a: False)
    check("unit: the verifier says no -> signature", r.status == 400 and "signature" in r.payload["error_description"])
    r = tok(assertion(jti="j3"))
    check("unit: a refused assertion's jti is not used up", r.status == 200, r.payload)
    r = tok(assertion(nbf=1300, jti="j4"))
    check("unit: nbf = now + 300 is still accepted (skew)", r.status == 200, r.payload)

    check("unit: mockctl preset status", json.loads(mockctl.fault_payload(
        ["status", "cloudflows", "500", "--skip", "2", "--always"])) ==
        {"match": {"path_regex": "cloudflows"}, "skip": 2, "times": -1, "action": {"status": 500}})
    check("unit: mockctl preset next-link (JSON, else text)",
          [json.loads(mockctl.fault_payload(["next-link", "x", v]))["action"]["next_link"]
           for v in ("null", "2", "", "not a url")] == [None, 2, "", "not a url"])
    check("unit: mockctl raw JSON passes through unchanged",
          mockctl.fault_payload(['{"action": {"drop": true}}']) == '{"action": {"drop": true}}')


def main():
    t0 = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="mock_selftest.")
    proc = None
    try:
        certs_dir = make_certs(tmp)
        extra = ["--client-cert", "cli-a=" + os.path.join(certs_dir, "a.crt")] if certs_dir else []
        proc, port = start_mock(tmp, *extra)
        c = Client("http://127.0.0.1:%d" % port)
        log_file = os.path.join(tmp, "mock.log")

        def cert_login():
            if certs_dir is None:
                print("skip  certificate login (no openssl)")
            else:
                test_cert_login(c, certs_dir, log_file)
                test_cert_option(tmp)
        for name, fn in (("auth", lambda: test_auth(c)), ("validation", lambda: test_validation(c)),
                         ("data", lambda: test_data(c)), ("paging", lambda: test_paging(c)),
                         ("tokens", lambda: test_tokens(c)), ("faults", lambda: test_faults(c, port)),
                         ("log", lambda: test_log_and_mockctl(c, port)), ("tls", lambda: test_tls(tmp)),
                         ("family", lambda: test_family(c)), ("summaries", lambda: test_summaries(c)),
                         ("cert login", cert_login)):
            try:
                c.ctl("POST", "reset")
                fn()
            except Exception:                     # noqa: BLE001 (count it, keep going)
                check("%s: no exception" % name, False, traceback.format_exc())
        check("mock still alive", proc.poll() is None)
        try:
            test_units()
        except Exception:                         # noqa: BLE001 (count it, keep going)
            check("units: no exception", False, traceback.format_exc())
    except Exception:                             # noqa: BLE001
        check("start the mock", False, traceback.format_exc())
    finally:
        if proc is not None:
            t = time.monotonic()
            stop_mock(proc)
            check("mock stops on SIGTERM within 2 s", proc.returncode == 0 and time.monotonic() - t < 2,
                  proc.returncode)
        shutil.rmtree(tmp, ignore_errors=True)
    if VERBOSE:
        print("elapsed %.1f s" % (time.monotonic() - t0))
    print("%d passed, %d failed" % (results["passed"], results["failed"]))
    return 1 if results["failed"] else 0


if __name__ == "__main__":
    sys.exit(main())
