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
        proc, port = start_mock(tmp)
        c = Client("http://127.0.0.1:%d" % port)
        for name, fn in (("auth", lambda: test_auth(c)), ("validation", lambda: test_validation(c)),
                         ("data", lambda: test_data(c)), ("paging", lambda: test_paging(c)),
                         ("tokens", lambda: test_tokens(c)), ("faults", lambda: test_faults(c, port)),
                         ("log", lambda: test_log_and_mockctl(c, port)), ("tls", lambda: test_tls(tmp))):
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
