#!/usr/bin/env python3
"""Mock vendor usage APIs for the usage_fdw tests and demo.

One HTTP(S) server that behaves like the two upstream APIs usage_fdw talks to
(see /work/shared/API-NOTES.md and the seed documents):

  UiPath (lease usage API)
    POST /identity_/connect/token                                     OAuth2 client credentials
    POST /lease_/api/usage/{org}/tenants/consumption-by-folder        JSON body, {"items": [...]}
    POST /lease_/api/usage/{org}/tenants/daily-consumption-by-service JSON body, {"items": [...]}
  AvePoint Graph API (EnPower)
    POST /connect/token                                               OAuth2 client credentials
    GET  /smp/powerplatform/connectionusage/cloudflows                top / nextLink paging

plus an unauthenticated control interface under /_mock/ (request log, config,
fault injection, token revocation) used by the tests through test/mockctl.py.

The data are computed from formulas (documented in test/MOCK.md), so the tests
can predict every number; nothing large is kept in memory (AvePoint rows are
generated from their index, up to 1,000,000 of them).

Python 3.11 standard library only.  Run `python3 test/mock_api.py --help`.
"""

import argparse
import base64
import binascii
import datetime
import hashlib
import http
import http.server
import itertools
import json
import os
import random
import re
import secrets
import signal
import socket
import ssl
import sys
import threading
import time
import traceback
import urllib.parse
import uuid
from decimal import ROUND_HALF_UP, Decimal

# --------------------------------------------------------------------------
# constants
# --------------------------------------------------------------------------

DAY_MS = 86_400_000
MAX_MS = 253_402_300_799_999          # 9999-12-31T23:59:59.999Z: the last representable day
MAX_DAILY_DAYS = 36_600               # daily-consumption-by-service: at most ~100 years per request
MAX_BODY = 10 * 1024 * 1024           # request bodies larger than this get 413
MAX_AVEPOINT_ROWS = 1_000_000
CURSOR_PARAM = "skiptoken"            # the opaque paging parameter put into nextLink

DEFAULT_TOKEN = "test-token"
DEFAULT_CLIENT_ID = "test-client"
DEFAULT_CLIENT_SECRET = "test-secret"
DEFAULT_ORG_ID = "11111111-1111-1111-1111-111111111111"

# consumable code -> factor applied to every UiPath number
CONSUMABLES = {"RU": Decimal("1.5"), "AIU": Decimal("0.25"), "PLTU": Decimal("2")}
CONSUMABLE_NAMES = {"RU": "Robot Units", "AIU": "AI Units", "PLTU": "Platform Units"}
# daily-consumption-by-service: services in this order (service_index 0, 1, 2)
SERVICES = ("Orchestrator", "Apps", "Document Understanding")

NEXTLINK_STYLES = ("empty", "absent", "null")

# Namespace for the deterministic GUIDs of the demo dataset (uuid5, SHA-1 based).
DEMO_NS = uuid.UUID("6d6f636b-0000-4000-8000-75736167652d")


# --------------------------------------------------------------------------
# datasets
# --------------------------------------------------------------------------

class Folder:
    """One UiPath folder: `weight` drives consumption, `procs` the process count."""

    __slots__ = ("key", "name", "parent", "weight", "procs")

    def __init__(self, key, name, parent, weight, procs):
        self.key = key
        self.name = name
        self.parent = parent          # parent folder key or None for a root folder
        self.weight = Decimal(weight)
        self.procs = int(procs)


class Tenant:
    """One UiPath tenant with its folders (in response order)."""

    def __init__(self, tenant_id, name, folders):
        self.id = tenant_id
        self.name = name
        self.folders = folders
        self.by_key = {f.key: f for f in folders}

    def root_of(self, folder):
        """The root ancestor of a folder (the folder itself for a root)."""
        seen = set()
        while folder.parent is not None and folder.parent in self.by_key and folder.key not in seen:
            seen.add(folder.key)
            folder = self.by_key[folder.parent]
        return folder


class RangeSeq:
    """All AvePoint rows 0 .. n-1 (no filter)."""

    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def index(self, k):
        return k


class ListSeq:
    """Matching AvePoint rows given as a (short) list of row indexes."""

    def __init__(self, rows):
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def index(self, k):
        return self.rows[k]


class TenantParitySeq:
    """Test dataset, filtered by tenant: flows j with j % 2 == parity.

    Rows come in blocks of four (flows 2m and 2m+1, two rows each): the k-th
    matching row is 4*(k//2) + 2*parity + k%2, computed in O(1).
    """

    def __init__(self, total, parity):
        self.parity = parity
        full, rem = divmod(total, 4)
        self.n = 2 * full + min(2, max(0, rem - 2 * parity))

    def __len__(self):
        return self.n

    def index(self, k):
        return 4 * (k // 2) + 2 * self.parity + k % 2


class TestDataset:
    """The small, predictable dataset the regression tests are written against."""

    name = "test"
    default_avepoint_rows = 10

    def __init__(self):
        t2 = "22222222-2222-2222-2222-222222222222"
        t3 = "33333333-3333-3333-3333-333333333333"

        def key(prefix, k):
            return "%s-0000-0000-0000-%012d" % (prefix, k)

        # (name, parent index or None); k = position + 1 is both weight and process weight
        spec2 = [("Shared", None), ("Finance", None), ("Invoices", 2), ("HR", None), ("Onboarding", 4)]
        spec3 = [("Shared", None), ("Sandbox", None)]
        self.tenants = {}
        for tid, tname, prefix, spec in ((t2, "Tenant 2", "aaaaaaaa", spec2),
                                         (t3, "Tenant 3", "bbbbbbbb", spec3)):
            folders = []
            for k, (fname, parent) in enumerate(spec, start=1):
                folders.append(Folder(key(prefix, k), fname,
                                      key(prefix, parent) if parent else None, k, k))
            self.tenants[tid] = Tenant(tid, tname, folders)

    # AvePoint rows: row i belongs to flow j = i // 2 (two connections per flow)
    @staticmethod
    def _tenant_of_flow(j):
        return "contoso" if j % 2 == 0 else "fabrikam"

    def av_limit(self, configured):
        return configured

    def av_row(self, i):
        j = i // 2
        return {"flowId": "flow-%04d" % (j + 1),
                "environmentId": "env-%02d" % (j % 3 + 1),
                "connectionId": "conn-%05d" % (i + 1)}

    def av_select(self, total, flow_id, tenant):
        """The rows matching the filters, as a sequence of row indexes (O(1))."""
        if flow_id is not None:
            m = re.fullmatch(r"flow-([0-9]{4,})", flow_id)
            if not m or "flow-%04d" % int(m.group(1)) != flow_id or int(m.group(1)) < 1:
                return ListSeq([])
            j = int(m.group(1)) - 1
            rows = [i for i in (2 * j, 2 * j + 1) if i < total]
            if tenant is not None and self._tenant_of_flow(j) != tenant:
                rows = []
            return ListSeq(rows)
        if tenant is not None:
            if tenant == "contoso":
                return TenantParitySeq(total, 0)
            if tenant == "fabrikam":
                return TenantParitySeq(total, 1)
            return ListSeq([])
        return RangeSeq(total)


class DemoDataset:
    """Realistic-looking data for `make demo` (GUIDs, business folder names)."""

    name = "demo"

    def __init__(self):
        def guid(name):
            return str(uuid.uuid5(DEMO_NS, name))

        # (name, parent name or None, consumption weight, processes per day)
        production = [
            ("Shared", None, "6.5", 4),
            ("Finance", None, "14", 6),
            ("Accounts Payable", "Finance", "9.25", 5),
            ("Invoice Processing", "Accounts Payable", "22.4", 12),
            ("Accounts Receivable", "Finance", "6", 3),
            ("HR", None, "5", 2),
            ("Onboarding", "HR", "4.5", 3),
            ("Payroll", "HR", "3.2", 2),
            ("IT Operations", None, "24", 9),
            ("Service Desk", "IT Operations", "8.75", 7),
            ("Procurement", None, "7", 3),
            ("Customer Service", None, "10.5", 8),
        ]
        staging = [
            ("Shared", None, "1.5", 1),
            ("Finance", None, "3", 2),
            ("Accounts Payable", "Finance", "2.25", 2),
            ("Invoice Processing", "Accounts Payable", "4", 3),
            ("HR", None, "1", 1),
            ("Onboarding", "HR", "1.75", 1),
            ("IT Operations", None, "2.5", 2),
            ("Release Validation", "IT Operations", "3.5", 2),
        ]
        development = [
            ("Shared", None, "0.75", 1),
            ("Sandbox", None, "2.5", 3),
            ("CoE Lab", None, "1.25", 2),
            ("Document Understanding POC", "CoE Lab", "2", 1),
            ("Finance", None, "0.5", 1),
            ("IT Operations", None, "1", 1),
        ]
        self.tenants = {}
        for tid, tname, spec in (
                ("22222222-2222-2222-2222-222222222222", "Production", production),
                ("33333333-3333-3333-3333-333333333333", "Staging", staging),
                ("44444444-4444-4444-4444-444444444444", "Development", development)):
            keys = {fname: guid("uipath/%s/%s" % (tid, fname)) for fname, _, _, _ in spec}
            folders = [Folder(keys[fname], fname, keys[parent] if parent else None, w, p)
                       for fname, parent, w, p in spec]
            self.tenants[tid] = Tenant(tid, tname, folders)

        # AvePoint: 25 flows, 60 connection rows, 4 environments (2 per tenant)
        self.environments = {
            "contoso": [guid("env/contoso/Default"), guid("env/contoso/Production")],
            "fabrikam": [guid("env/fabrikam/Default"), guid("env/fabrikam/Production")],
        }
        conns_per_flow = [3, 2, 2, 4, 1, 3, 2, 2, 3, 1, 2, 4, 2, 3, 2, 1, 3, 2, 2, 4, 2, 3, 1, 3, 3]
        pool = {t: [guid("conn/%s/%02d" % (t, n)) for n in range(20)] for t in self.environments}
        self.rows = []                      # (flowId, environmentId, connectionId, tenant)
        self.flows = []                     # (flowId, tenant, environmentId, number of rows)
        for f, nconn in enumerate(conns_per_flow):
            tenant = "fabrikam" if f % 3 == 2 else "contoso"
            # alternate between the tenant's two environments
            env = self.environments[tenant][(f // 3 + (0 if tenant == "fabrikam" else f)) % 2]
            flow_id = guid("flow/%02d" % f)
            self.flows.append((flow_id, tenant, env, nconn))
            for c in range(nconn):
                # connections are shared between flows, but never repeated within one
                conn = pool[tenant][(f + 5 * c) % 20]
                self.rows.append((flow_id, env, conn, tenant))
        self.default_avepoint_rows = len(self.rows)

    def av_limit(self, configured):
        return min(configured, len(self.rows))

    def av_row(self, i):
        flow_id, env, conn, _ = self.rows[i]
        return {"flowId": flow_id, "environmentId": env, "connectionId": conn}

    def av_select(self, total, flow_id, tenant):
        total = min(total, len(self.rows))
        return ListSeq([i for i in range(total)
                        if (flow_id is None or self.rows[i][0] == flow_id)
                        and (tenant is None or self.rows[i][3] == tenant)])


DATASETS = {"test": TestDataset, "demo": DemoDataset}


# --------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------

def json_bytes(obj):
    """Compact JSON as the vendors send it (UTF-8; \\u escapes only if a string
    holds something UTF-8 cannot carry, such as a lone surrogate)."""
    try:
        return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return json.dumps(obj, separators=(",", ":")).encode("ascii")


def reject_constant(name):
    raise ValueError("invalid JSON constant %s" % name)


def parse_json(data):
    """Strict JSON parse of request bytes (no NaN/Infinity)."""
    return json.loads(data.decode("utf-8"), parse_constant=reject_constant)


def money(value):
    """Round a Decimal to 2 decimals; an int when integral, else a float (JSON number)."""
    q = value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)
    if q == q.to_integral_value():
        return int(q)
    return float(q)


def mask_secret(text):
    """Keep the first 4 characters of a credential, mask the rest."""
    return text[:4] + "*" * max(0, len(text) - 4)


def media_type(value):
    """'application/json; charset=utf-8' -> 'application/json'."""
    return (value or "").split(";", 1)[0].strip().lower()


def json_type_name(value):
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def json_equal(a, b):
    """JSON equality: unlike Python's ==, true != 1 and "1" != 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def encode_cursor(offset):
    """Opaque paging cursor (urlsafe base64, no padding) for a row offset."""
    return base64.urlsafe_b64encode(b"o:%d" % offset).decode("ascii").rstrip("=")


def decode_cursor(token):
    """Row offset of a cursor, or None when it is not one of ours."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
    except (binascii.Error, ValueError):
        return None
    m = re.fullmatch(rb"o:([0-9]{1,9})", raw)
    return int(m.group(1)) if m else None


class Resp:
    """A response before it is sent: faults may still change it.

    `payload` is a JSON value (serialized at send time) unless `raw` (bytes) is
    set; `items_key` names the array of items in `payload` (for item faults).
    """

    def __init__(self, status, payload=None, raw=None, content_type="application/json",
                 headers=None, items_key=None):
        self.status = status
        self.payload = payload
        self.raw = raw
        self.content_type = content_type
        self.headers = list(headers or [])
        self.items_key = items_key

    def body(self):
        if self.raw is not None:
            return self.raw
        if self.payload is None:
            return b""
        return json_bytes(self.payload)


class ApiError(Exception):
    """Raised by request handlers to answer with an error response."""

    def __init__(self, resp):
        super().__init__(resp.status)
        self.resp = resp


def error_resp(style, status, message, code=None, headers=None):
    """An error in the vendor's own shape.

    style: "uipath"   -> {"message": ...}
           "avepoint" -> {"error": {"code": ..., "message": ...}}
           "oauth"    -> {"error": code, "error_description": ...}
    """
    if style == "uipath":
        payload = {"message": message}
    elif style == "oauth":
        payload = {"error": code or "invalid_request", "error_description": message}
    else:
        if code is None:
            try:
                code = http.HTTPStatus(status).phrase.replace(" ", "").replace("-", "")
            except ValueError:
                code = "Error%d" % status
        payload = {"error": {"code": code, "message": message}}
    return Resp(status, payload, headers=headers)


# --------------------------------------------------------------------------
# fault rules
# --------------------------------------------------------------------------

RULE_KEYS = {"match", "skip", "times", "action", "name", "p", "seed", "sticky"}
MATCH_KEYS = {"method", "path_regex", "query", "body"}
ACTION_KEYS = {"status", "body", "content_type", "headers", "retry_after", "delay_ms", "drop",
               "truncate", "body_raw", "body_b64", "next_link", "item_patch", "items",
               "next_link_cycle", "endless_pages", "pad_to"}
MAX_PAD_TO = 256 * 1024 * 1024


class FaultRule:
    """One injected fault: which requests it matches and what it does to them."""

    def __init__(self, rule_id, spec):
        if not isinstance(spec, dict):
            raise ValueError("a fault rule must be a JSON object")
        unknown = sorted(set(spec) - RULE_KEYS)
        if unknown:
            raise ValueError("unknown fault rule key '%s' (valid: %s)"
                             % (unknown[0], ", ".join(sorted(RULE_KEYS))))
        self.id = rule_id
        self.spec = spec
        match = spec.get("match", {})
        if not isinstance(match, dict):
            raise ValueError("'match' must be an object")
        unknown = sorted(set(match) - MATCH_KEYS)
        if unknown:
            raise ValueError("unknown match key '%s' (valid: %s)"
                             % (unknown[0], ", ".join(sorted(MATCH_KEYS))))
        self.method = match.get("method")
        if self.method is not None and not isinstance(self.method, str):
            raise ValueError("match.method must be a string")
        try:
            self.path_re = re.compile(match["path_regex"]) if "path_regex" in match else None
        except (re.error, TypeError) as e:
            raise ValueError("match.path_regex: %s" % e) from None
        self.query = match.get("query", {})
        if not isinstance(self.query, dict):
            raise ValueError("match.query must be an object")
        self.body = match.get("body", {})
        if not isinstance(self.body, dict):
            raise ValueError("match.body must be an object")
        self.skip = spec.get("skip", 0)
        self.times = spec.get("times", 1)
        for name in ("skip", "times"):
            v = spec.get(name, 0)
            if isinstance(v, bool) or not isinstance(v, int) or v < (-1 if name == "times" else 0):
                raise ValueError("'%s' must be an integer%s" % (name, " (-1 = forever)" if name == "times" else " >= 0"))
        action = spec.get("action")
        if not isinstance(action, dict) or not action:
            raise ValueError("'action' must be a non-empty object")
        unknown = sorted(set(action) - ACTION_KEYS)
        if unknown:
            raise ValueError("unknown action '%s' (valid: %s)"
                             % (unknown[0], ", ".join(sorted(ACTION_KEYS))))
        self.action = action
        self._check_action(action)
        # optional probability: the rule acts on a fraction p of the requests
        # it would otherwise act on, decided by a generator seeded with `seed`
        # (default: the rule's id) so that runs are reproducible
        self.p = spec.get("p")
        if self.p is not None and (isinstance(self.p, bool) or not isinstance(self.p, (int, float))
                                   or not 0 <= self.p <= 1):
            raise ValueError("'p' must be a number 0..1")
        self.seed = spec.get("seed", rule_id)
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, str)):
            raise ValueError("'seed' must be an integer or a string")
        self.sticky = spec.get("sticky", False)
        if not isinstance(self.sticky, bool):
            raise ValueError("'sticky' must be a boolean")
        if self.sticky and self.p is None:
            raise ValueError("'sticky' needs 'p'")
        self.rng = random.Random("%s/%s" % (type(self.seed).__name__, self.seed))
        self.name = spec.get("name") or self._auto_name(action)
        if not isinstance(self.name, str):
            raise ValueError("'name' must be a string")
        self.matched = 0          # matching requests seen
        self.fired = 0            # times the action was applied

    @staticmethod
    def _check_action(a):
        if "status" in a:
            s = a["status"]
            if isinstance(s, bool) or not isinstance(s, int) or not 200 <= s <= 599:
                raise ValueError("action.status must be an integer 200..599")
        if "body" in a and "status" not in a:
            raise ValueError("action.body needs action.status (use body_raw to replace a 200 body)")
        for name in ("body", "body_raw", "body_b64", "content_type"):
            if name in a and not isinstance(a[name], str):
                raise ValueError("action.%s must be a string" % name)
        if "body_b64" in a:
            try:
                base64.b64decode(a["body_b64"], validate=True)
            except ValueError:
                raise ValueError("action.body_b64 must be base64")
        if "retry_after" in a:
            if isinstance(a["retry_after"], bool) or not isinstance(a["retry_after"], (str, int)):
                raise ValueError("action.retry_after must be a string")
        if "headers" in a:
            h = a["headers"]
            if not isinstance(h, dict) or not all(isinstance(k, str) and isinstance(v, (str, int))
                                                  and not isinstance(v, bool) for k, v in h.items()):
                raise ValueError("action.headers must be an object of strings")
            for k, v in h.items():
                if re.search(r"[\r\n:]", k) or re.search(r"[\r\n]", str(v)):
                    raise ValueError("action.headers: bad header %r" % k)
        if "delay_ms" in a:
            d = a["delay_ms"]
            if isinstance(d, bool) or not isinstance(d, (int, float)) or not 0 <= d <= 600_000:
                raise ValueError("action.delay_ms must be a number 0..600000")
        for name in ("drop", "truncate"):
            if name in a and not isinstance(a[name], bool):
                raise ValueError("action.%s must be a boolean" % name)
        if "item_patch" in a and not isinstance(a["item_patch"], dict):
            raise ValueError("action.item_patch must be an object")
        if "next_link_cycle" in a:
            k = a["next_link_cycle"]
            if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= 1000:
                raise ValueError("action.next_link_cycle must be an integer 1..1000")
        if "endless_pages" in a and not isinstance(a["endless_pages"], bool):
            raise ValueError("action.endless_pages must be a boolean")
        if "pad_to" in a:
            n = a["pad_to"]
            if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_PAD_TO:
                raise ValueError("action.pad_to must be an integer 0..%d" % MAX_PAD_TO)

    @staticmethod
    def _auto_name(a):
        parts = []
        if "status" in a:
            parts.append("status:%d" % a["status"])
        if "retry_after" in a:
            parts.append("retry_after")
        if "headers" in a:
            parts.append("headers")
        if "delay_ms" in a:
            parts.append("delay")
        for name in ("drop", "truncate"):
            if a.get(name):
                parts.append(name)
        for name in ("body_raw", "body_b64", "content_type", "next_link", "item_patch", "items",
                     "next_link_cycle", "endless_pages", "pad_to"):
            if name in a and not (name == "content_type" and "status" in a):
                parts.append(name)
        return "+".join(parts) or "noop"

    def draw(self, method, path, query, body):
        """Does the rule act on this request (`p`)?  Without `sticky`, the next
        number of the rule's own seeded generator decides; with it, a hash of
        the seed and the request, so the same request (a retry) always gets
        the same answer.  Called under the state lock."""
        if self.p is None:
            return True
        if not self.sticky:
            return self.rng.random() < self.p
        key = json.dumps([str(self.seed), method.upper(), path, [list(q) for q in query], body],
                         sort_keys=True, separators=(",", ":"), default=str)
        h = hashlib.sha256(key.encode("utf-8", "backslashreplace")).digest()
        return int.from_bytes(h[:8], "big") / 2.0 ** 64 < self.p

    def matches(self, method, path, query, body):
        if self.method is not None and self.method.upper() != method.upper():
            return False
        if self.path_re is not None and not self.path_re.search(path):
            return False
        for name, want in self.query.items():
            want = want if isinstance(want, str) else json.dumps(want)
            if not any(n == name and v == want for n, v in query):
                return False
        if self.body:
            if not isinstance(body, dict):
                return False
            for name, want in self.body.items():
                if name not in body or not json_equal(body[name], want):
                    return False
        return True

    def describe(self):
        out = dict(self.spec)
        out.setdefault("match", {})
        out["skip"] = self.skip
        out["times"] = self.times
        if self.p is not None:
            out["seed"] = self.seed
        out.update({"id": self.id, "name": self.name, "matched": self.matched, "fired": self.fired})
        return out


# --------------------------------------------------------------------------
# server state: config, request log, faults, issued tokens
# --------------------------------------------------------------------------

class MockState:
    """Everything the handlers share; all access goes through `self.lock`."""

    def __init__(self, args, dataset):
        self.lock = threading.Lock()
        self.dataset = dataset
        self.static_tokens = set(args.token or [DEFAULT_TOKEN])
        self.client_id = args.client_id
        self.client_secret = args.client_secret
        self.org_id = args.org_id
        self.tls = bool(args.tls_cert)
        self.defaults = {"avepoint_rows": dataset.default_avepoint_rows, "latency_ms": 0,
                         "token_ttl": 3600, "nextlink_style": "empty"}
        self.config = dict(self.defaults)
        self.log = []
        self.seq = 0
        self.faults = []
        self.fault_ids = itertools.count(1)
        self.issued = {}            # access token -> (expiry, monotonic seconds; scope)
        self.conn_ids = itertools.count(1)
        self.log_file = open(args.log_file, "a", encoding="utf-8") if args.log_file else None
        self.log_file_lock = threading.Lock()

    # -- file log (one JSON object per line) --------------------------------

    def file_log(self, obj):
        if self.log_file is None:
            return
        line = json.dumps(obj, separators=(",", ":"), default=str)
        with self.log_file_lock:
            try:
                self.log_file.write(line + "\n")
                self.log_file.flush()
            except (OSError, ValueError):
                pass

    # -- config ---------------------------------------------------------------

    def set_config(self, changes):
        """Validate then merge; raises ValueError naming the bad key."""
        if not isinstance(changes, dict):
            raise ValueError("config must be a JSON object")
        new = {}
        for key, value in changes.items():
            if key not in self.defaults:
                raise ValueError("unknown config key '%s' (valid: %s)"
                                 % (key, ", ".join(sorted(self.defaults))))
            if key == "nextlink_style":
                if value not in NEXTLINK_STYLES:
                    raise ValueError("nextlink_style must be one of: %s" % ", ".join(NEXTLINK_STYLES))
            else:
                limit = MAX_AVEPOINT_ROWS if key == "avepoint_rows" else 10 ** 9
                if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= limit:
                    raise ValueError("%s must be an integer 0..%d" % (key, limit))
            new[key] = value
        with self.lock:
            self.config.update(new)
            return dict(self.config)

    def get_config(self):
        with self.lock:
            return dict(self.config)

    def reset(self):
        with self.lock:
            self.log = []
            self.seq = 0
            self.faults = []
            self.fault_ids = itertools.count(1)
            self.config = dict(self.defaults)
            self.issued = {}

    # -- tokens ---------------------------------------------------------------

    def issue_token(self, scope):
        token = secrets.token_urlsafe(32)
        with self.lock:
            ttl = self.config["token_ttl"]
            self.issued[token] = (time.monotonic() + ttl, scope)
        return token, ttl

    def token_valid(self, token):
        if token in self.static_tokens:
            return True
        with self.lock:
            entry = self.issued.get(token)
            if entry is None:
                return False
            if time.monotonic() >= entry[0]:
                del self.issued[token]
                return False
            return True

    def revoke_tokens(self):
        with self.lock:
            n = len(self.issued)
            self.issued = {}
            return n

    # -- request log ----------------------------------------------------------

    def new_record(self, conn, method, path, query, body, auth):
        with self.lock:
            self.seq += 1
            rec = {"seq": self.seq, "conn": conn, "method": method, "path": path,
                   "query": [[n, v] for n, v in query], "body": body, "auth": auth,
                   "status": None, "fault": None, "t": round(time.monotonic(), 6),
                   "t_end": None}
            self.log.append(rec)
            return rec

    def finish_record(self, rec, status):
        with self.lock:
            rec["status"] = status
            rec["t_end"] = round(time.monotonic(), 6)
        self.file_log(rec)

    def requests(self):
        with self.lock:
            return [dict(r) for r in self.log]

    # -- faults ---------------------------------------------------------------

    def add_faults(self, specs):
        if isinstance(specs, dict):
            specs = [specs]
        if not isinstance(specs, list) or not specs:
            raise ValueError("expected a fault rule object or a non-empty array of them")
        with self.lock:
            rules = [FaultRule(next(self.fault_ids), s) for s in specs]
            self.faults.extend(rules)
            return [r.id for r in rules]

    def clear_faults(self):
        with self.lock:
            self.faults = []

    def list_faults(self):
        with self.lock:
            return [r.describe() for r in self.faults]

    def pick_fault(self, method, path, query, body):
        """Count the request against every matching rule; return the first rule
        that applies (its `skip` matches are over, it has `times` left and, with
        `p`, its draw says yes)."""
        chosen = None
        with self.lock:
            for rule in self.faults:
                if not rule.matches(method, path, query, body):
                    continue
                rule.matched += 1
                if chosen is None and rule.matched > rule.skip and (rule.times < 0 or rule.fired < rule.times) \
                        and rule.draw(method, path, query, body):
                    rule.fired += 1
                    chosen = rule
        return chosen


# --------------------------------------------------------------------------
# routing
# --------------------------------------------------------------------------

TOKEN_ROUTES = {"/identity_/connect/token": "uipath", "/connect/token": "avepoint"}
UIPATH_RE = re.compile(r"^/lease_/api/usage/([^/]+)/tenants/"
                       r"(consumption-by-folder|daily-consumption-by-service)$")
CLOUDFLOWS_PATH = "/smp/powerplatform/connectionusage/cloudflows"


def route(path):
    """(kind, error style, allowed method, path argument) for a request path.

    kind is "token", "uipath", "cloudflows" or None (unknown route)."""
    if path in TOKEN_ROUTES:
        return "token", "oauth", "POST", TOKEN_ROUTES[path]
    m = UIPATH_RE.match(path)
    if m:
        return "uipath", "uipath", "POST", (urllib.parse.unquote(m.group(1)), m.group(2))
    if path == CLOUDFLOWS_PATH:
        return "cloudflows", "avepoint", "GET", None
    style = "uipath" if path.startswith(("/lease_", "/identity_")) else "avepoint"
    return None, style, None, None


class BadRequestBody(Exception):
    """The request body could not be read (bad framing or too large)."""

    def __init__(self, status, message):
        super().__init__(message)
        self.status = status
        self.message = message


# --------------------------------------------------------------------------
# the request handler
# --------------------------------------------------------------------------

class Handler(http.server.BaseHTTPRequestHandler):
    """Serves one TCP connection (keep-alive: possibly many requests)."""

    protocol_version = "HTTP/1.1"
    server_version = "usage-fdw-mock/1.0"
    sys_version = ""

    def setup(self):
        self.state = self.server.state
        self.conn_id = next(self.state.conn_ids)
        try:
            self.request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        if isinstance(self.request, ssl.SSLSocket):
            # handshake here, in the connection's own thread, not in accept()
            self.request.settimeout(10)
            self.request.do_handshake()
            self.request.settimeout(None)
        super().setup()

    # the default handler logs every request to stderr: keep stderr quiet
    def log_message(self, format, *args):  # noqa: A002 (signature of the base class)
        pass

    def log_error(self, format, *args):  # noqa: A002
        self.state.file_log({"event": "http_error", "conn": self.conn_id,
                             "message": format % args})

    def _dispatch(self):
        split = urllib.parse.urlsplit(self.path)
        path = split.path or "/"
        if path == "/_mock" or path.startswith("/_mock/"):
            self._control(path)
        else:
            self._api(path, split.query)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _dispatch

    # -- reading --------------------------------------------------------------

    def _read_body(self):
        """The request body as bytes (Content-Length or chunked)."""
        te = self.headers.get("Transfer-Encoding")
        if te is not None:
            if te.strip().lower() != "chunked":
                raise BadRequestBody(501, "unsupported Transfer-Encoding")
            chunks, total = [], 0
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise ConnectionError("client closed the connection in a chunked body")
                try:
                    size = int(line.split(b";", 1)[0].strip(), 16)
                except ValueError:
                    raise BadRequestBody(400, "bad chunk size") from None
                if size == 0:
                    while self.rfile.readline(65537).strip():    # trailers
                        pass
                    return b"".join(chunks)
                total += size
                if total > MAX_BODY:
                    raise BadRequestBody(413, "request body too large")
                chunks.append(self._read_exact(size))
                self.rfile.readline(3)
        cl = self.headers.get("Content-Length")
        if cl is None:
            return b""
        if not cl.strip().isdigit():
            raise BadRequestBody(400, "bad Content-Length")
        n = int(cl)
        if n > MAX_BODY:
            raise BadRequestBody(413, "request body too large")
        return self._read_exact(n)

    def _read_exact(self, n):
        data = self.rfile.read(n)
        if len(data) != n:
            raise ConnectionError("client closed the connection in the request body")
        return data

    def _body_views(self, kind, body):
        """(what the request log shows, what fault rules match against)."""
        if not body:
            return None, None
        text = body.decode("utf-8", "replace")
        if kind == "token":
            if media_type(self.headers.get("Content-Type")) == "application/x-www-form-urlencoded":
                form = dict(urllib.parse.parse_qsl(text, keep_blank_values=True))
                shown = dict(form)
                if "client_secret" in shown:
                    shown["client_secret"] = "***"
                return shown, form
            return re.sub(r"(client_secret=)[^&]*", r"\1***", text), None
        try:
            parsed = parse_json(body)
        except ValueError:
            return text, None
        return parsed, parsed

    def _masked_auth(self):
        h = self.headers.get("Authorization")
        if h is None:
            return None
        scheme, sep, cred = h.strip().partition(" ")
        if sep and scheme.lower() == "bearer":
            return mask_secret(cred.strip())
        if sep:
            return scheme + " " + mask_secret(cred.strip())
        return mask_secret(h.strip())

    # -- writing --------------------------------------------------------------

    def _send(self, resp, truncate=False):
        """Write the whole response in one send (no Nagle stalls); return its status."""
        body = resp.body()
        try:
            phrase = http.HTTPStatus(resp.status).phrase
        except ValueError:
            phrase = "Unknown"
        lines = ["HTTP/1.1 %d %s" % (resp.status, phrase),
                 "Server: " + self.server_version,
                 "Date: " + self.date_time_string(),
                 "Content-Type: " + resp.content_type,
                 "Content-Length: %d" % len(body)]
        lines.extend("%s: %s" % (k, v) for k, v in resp.headers)
        if self.close_connection:
            lines.append("Connection: close")
        elif self.request_version == "HTTP/1.0":
            lines.append("Connection: keep-alive")
        head = ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1", "replace")
        if self.command == "HEAD":
            body = b""
        if truncate:
            # full Content-Length announced, half the body sent, then the connection closes
            body = body[:len(body) // 2]
            self.close_connection = True
        self.wfile.write(head + body)
        self.wfile.flush()
        return resp.status

    # -- API requests -----------------------------------------------------------

    def _api(self, path, query_raw):
        state = self.state
        query = urllib.parse.parse_qsl(query_raw, keep_blank_values=True)
        kind, style, allowed, arg = route(path)
        body = b""
        read_error = None
        try:
            body = self._read_body()
        except BadRequestBody as e:
            read_error = e
            self.close_connection = True
        except (ConnectionError, OSError):
            self.close_connection = True
            return
        shown, matchable = self._body_views(kind, body)
        rec = state.new_record(self.conn_id, self.command, path, query, shown, self._masked_auth())
        status = None
        try:
            if read_error is not None:
                status = self._send(error_resp(style, read_error.status, read_error.message))
                return
            rule = state.pick_fault(self.command, path, query, matchable)
            action = rule.action if rule else {}
            if rule:
                rec["fault"] = rule.name
            delay_ms = state.get_config()["latency_ms"] + action.get("delay_ms", 0)
            if delay_ms > 0:
                time.sleep(delay_ms / 1000.0)       # only this connection's thread waits
            if action.get("drop"):
                # close without a response (the client sees an empty reply)
                self.close_connection = True
                try:
                    self.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                return
            if "status" in action:
                resp = self._fault_response(style, action)
            else:
                self.endless_pages = bool(action.get("endless_pages"))
                resp = self._handle_route(kind, style, allowed, arg, path, query, body)
                self._apply_response_faults(resp, action, query)
            if "retry_after" in action:
                resp.headers.append(("Retry-After", str(action["retry_after"])))
            for k, v in action.get("headers", {}).items():
                resp.headers.append((k, str(v)))
            status = self._send(resp, truncate=bool(action.get("truncate")))
        except (ConnectionError, ssl.SSLError, socket.timeout):
            self.close_connection = True
        except Exception:                            # a bug in the mock: 500, logged
            tb = traceback.format_exc()
            state.file_log({"event": "handler_error", "seq": rec["seq"], "traceback": tb})
            sys.stderr.write(tb)
            try:
                status = self._send(error_resp(style, 500, "internal mock error"))
            except Exception:
                self.close_connection = True
        finally:
            state.finish_record(rec, status)

    def _fault_response(self, style, action):
        st = action["status"]
        ctype = action.get("content_type", "application/json")
        if "body" in action:
            return Resp(st, raw=action["body"].encode("utf-8"), content_type=ctype)
        if "body_b64" in action:
            # raw bytes, e.g. an error body that is not valid UTF-8
            return Resp(st, raw=base64.b64decode(action["body_b64"]), content_type=ctype)
        if st in (204, 304):
            return Resp(st, raw=b"", content_type=ctype)
        resp = error_resp(style, st, "injected fault: HTTP %d" % st,
                          code="temporarily_unavailable" if style == "oauth" else None)
        resp.content_type = ctype
        return resp

    def _apply_response_faults(self, resp, action, query):
        """Actions that alter a successful response (they leave errors alone)."""
        if not 200 <= resp.status < 300:
            return
        if resp.raw is None and isinstance(resp.payload, dict):
            key = resp.items_key
            if "items" in action and key:
                resp.payload[key] = action["items"]
            if "item_patch" in action and key and isinstance(resp.payload.get(key), list):
                for item in resp.payload[key]:
                    if isinstance(item, dict):
                        item.update(action["item_patch"])
            if "next_link" in action:
                resp.payload["nextLink"] = action["next_link"]
            if "next_link_cycle" in action:
                # page at cursor offset o links to offset (o + 1) % k; offset 0
                # is the request without a cursor, so the k-th link is the first URL
                offset = 0
                for name, value in query:
                    if name == CURSOR_PARAM:
                        offset = decode_cursor(value) or 0
                nxt = (offset + 1) % action["next_link_cycle"]
                resp.payload["nextLink"] = self._next_link(query, nxt if nxt else None)
        if "body_raw" in action:
            resp.raw = action["body_raw"].encode("utf-8")
        if "body_b64" in action:
            # raw bytes, for bodies that are not valid UTF-8
            resp.raw = base64.b64decode(action["body_b64"])
        if "content_type" in action:
            resp.content_type = action["content_type"]
        if "pad_to" in action:
            # exactly pad_to bytes: JSON whitespace before the last byte
            body = resp.body()
            missing = action["pad_to"] - len(body)
            if missing > 0 and body:
                resp.raw = body[:-1] + b" " * missing + body[-1:]

    def _handle_route(self, kind, style, allowed, arg, path, query, body):
        try:
            if kind is None:
                return error_resp(style, 404, "no such endpoint: %s" % path,
                                  code="not_found" if style == "oauth" else None)
            if self.command != allowed:
                return error_resp(style, 405, "method %s not allowed (use %s)" % (self.command, allowed),
                                  code="invalid_request" if style == "oauth" else None,
                                  headers=[("Allow", allowed)])
            if kind == "token":
                return self._token(body)
            self._check_auth(style)
            if kind == "uipath":
                return self._uipath(arg[0], arg[1], body)
            return self._cloudflows(query)
        except ApiError as e:
            return e.resp

    def _check_auth(self, style):
        h = self.headers.get("Authorization")
        if h is None:
            raise ApiError(error_resp(style, 401, "missing bearer token",
                                      headers=[("WWW-Authenticate", "Bearer")]))
        scheme, _, token = h.strip().partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(error_resp(style, 401, "Authorization must be 'Bearer <token>'",
                                      headers=[("WWW-Authenticate", "Bearer")]))
        if not self.state.token_valid(token):
            raise ApiError(error_resp(style, 401, "invalid or expired access token",
                                      headers=[("WWW-Authenticate", 'Bearer error="invalid_token"')]))

    # -- OAuth2 token endpoint --------------------------------------------------

    def _token(self, body):
        state = self.state

        def oauth_error(code, message):
            return ApiError(Resp(400, {"error": code, "error_description": message},
                                 headers=[("Cache-Control", "no-store")]))

        if media_type(self.headers.get("Content-Type")) != "application/x-www-form-urlencoded":
            raise oauth_error("invalid_request", "Content-Type must be application/x-www-form-urlencoded")
        pairs = urllib.parse.parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)
        names = [n for n, _ in pairs]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise oauth_error("invalid_request", "parameter '%s' repeated" % dup[0])
        form = dict(pairs)
        if form.get("grant_type") != "client_credentials":
            raise oauth_error("unsupported_grant_type", "grant_type must be client_credentials")
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        h = self.headers.get("Authorization")
        if h and h.strip().lower().startswith("basic "):
            # client_secret_basic (RFC 6749 2.3.1): form-urlencoded id and secret
            try:
                raw = base64.b64decode(h.strip()[6:].strip(), validate=True).decode("utf-8")
                bid, _, bsecret = raw.partition(":")
            except (binascii.Error, ValueError):
                raise oauth_error("invalid_client", "malformed Basic credentials") from None
            if client_id is not None or client_secret is not None:
                raise oauth_error("invalid_request", "client credentials sent twice (Basic and form)")
            client_id, client_secret = urllib.parse.unquote_plus(bid), urllib.parse.unquote_plus(bsecret)
        if client_id != state.client_id or client_secret != state.client_secret:
            raise oauth_error("invalid_client", "unknown client or wrong client secret")
        scope = form.get("scope", "")
        token, ttl = state.issue_token(scope)
        return Resp(200, {"access_token": token, "expires_in": ttl, "token_type": "Bearer",
                          "scope": scope},
                    headers=[("Cache-Control", "no-store"), ("Pragma", "no-cache")])

    # -- UiPath usage endpoints -------------------------------------------------

    UIPATH_FIELDS = ("tenantId", "startDate", "endDate", "consumableCode", "aggregateByOwnership")
    UIPATH_REQUIRED = ("tenantId", "startDate", "endDate", "consumableCode")

    def _uipath(self, org, endpoint, body):
        def bad(status, message):
            return ApiError(error_resp("uipath", status, message))

        if org.lower() != self.state.org_id.lower():
            raise bad(404, "organization '%s' not found" % org)
        if media_type(self.headers.get("Content-Type")) != "application/json":
            raise bad(415, "Content-Type must be application/json")
        try:
            req = parse_json(body)
        except ValueError as e:
            raise bad(400, "request body is not valid JSON: %s" % e) from None
        if not isinstance(req, dict):
            raise bad(400, "request body must be a JSON object")

        daily = endpoint == "daily-consumption-by-service"
        allowed = self.UIPATH_FIELDS + (("folderKeys",) if daily else ())
        for name in req:
            if name not in allowed:
                raise bad(400, "unknown field '%s'" % name)
        for name in allowed:
            if name not in req:
                continue
            v = req[name]
            if name in ("tenantId", "consumableCode"):
                ok, want = isinstance(v, str), "a string"
            elif name in ("startDate", "endDate"):
                ok = type(v) is int and 0 <= v <= MAX_MS
                want = "an integer 0..%d (unix milliseconds)" % MAX_MS
            elif name == "aggregateByOwnership":
                ok, want = isinstance(v, bool), "a boolean"
            else:
                ok = isinstance(v, list) and all(isinstance(x, str) for x in v)
                want = "an array of strings"
            if not ok:
                raise bad(400, "field '%s' must be %s, got %s %s"
                          % (name, want, json_type_name(v), json.dumps(v)[:60]))
        for name in self.UIPATH_REQUIRED:
            if name not in req:
                raise bad(400, "missing required field '%s'" % name)
        start, end = req["startDate"], req["endDate"]
        if start > end:
            raise bad(400, "field 'startDate' must not be after 'endDate'")
        code = req["consumableCode"]
        if code not in CONSUMABLES:
            raise bad(400, "field 'consumableCode': unknown consumable '%s' (known: %s)"
                      % (code, ", ".join(CONSUMABLES)))
        factor = CONSUMABLES[code]
        # the days of the request: UTC midnights d with startDate <= d < endDate
        first_day = -(-start // DAY_MS)
        end_day = -(-end // DAY_MS)
        ndays = max(0, end_day - first_day)
        tenant = self._find_tenant(req["tenantId"])
        if tenant is None:
            return Resp(200, {"items": []}, items_key="items")

        if not daily:
            return Resp(200, {"items": self._by_folder(tenant, factor, ndays,
                                                       req.get("aggregateByOwnership", False))},
                        items_key="items")
        if ndays > MAX_DAILY_DAYS:
            raise bad(400, "the range from 'startDate' to 'endDate' spans %d days (at most %d)"
                      % (ndays, MAX_DAILY_DAYS))
        if "folderKeys" in req:
            wanted = {k.lower() for k in req["folderKeys"]}
            weight = sum((f.weight for f in tenant.folders if f.key.lower() in wanted), Decimal(0))
        else:
            weight = sum((f.weight for f in tenant.folders), Decimal(0))
        items = []
        if weight:
            epoch = datetime.date(1970, 1, 1)
            for day in range(first_day, end_day):
                date = (epoch + datetime.timedelta(days=day)).isoformat()
                base = (day % 10 + 1) * factor * weight
                for index, service in enumerate(SERVICES):
                    items.append({"date": date, "service": service,
                                  "consumedAmount": money(base * (index + 1))})
        return Resp(200, {"items": items}, items_key="items")

    def _find_tenant(self, tenant_id):
        tenants = self.state.dataset.tenants
        if tenant_id in tenants:
            return tenants[tenant_id]
        for tid, tenant in tenants.items():       # GUIDs compare case-insensitively
            if tid.lower() == tenant_id.lower():
                return tenant
        return None

    @staticmethod
    def _by_folder(tenant, factor, ndays, aggregate):
        """consumedBySelf = weight * factor * days, processCountSelf = procs * days;
        aggregated: every non-root folder's numbers move to its root folder."""
        consumed = {f.key: f.weight * factor * ndays for f in tenant.folders}
        procs = {f.key: f.procs * ndays for f in tenant.folders}
        if aggregate:
            for f in tenant.folders:
                root = tenant.root_of(f)
                if root is not f:
                    consumed[root.key] += consumed[f.key]
                    procs[root.key] += procs[f.key]
                    consumed[f.key] = Decimal(0)
                    procs[f.key] = 0
        return [{"folderKey": f.key, "folderName": f.name, "parentFolderKey": f.parent,
                 "consumedBySelf": money(consumed[f.key]), "processCountSelf": procs[f.key]}
                for f in tenant.folders]

    # -- AvePoint cloud flow connection usage -------------------------------------

    def _cloudflows(self, query):
        def bad(message, code="InvalidParameter"):
            return ApiError(error_resp("avepoint", 400, message, code=code))

        seen = set()
        for name, _ in query:
            if name not in ("flowId", "top", "tenant", CURSOR_PARAM):
                raise bad("unknown query parameter '%s'" % name)
            if name in seen:
                raise bad("query parameter '%s' given more than once" % name)
            seen.add(name)
        params = dict(query)
        top = 100
        if "top" in params:
            v = params["top"]
            if not re.fullmatch(r"[0-9]{1,7}", v) or not 1 <= int(v) <= 1000:
                raise bad("'top' must be an integer from 1 to 1000, got '%s'" % v[:40])
            top = int(v)
        offset = 0
        if CURSOR_PARAM in params:
            offset = decode_cursor(params[CURSOR_PARAM])
            if offset is None:
                raise bad("invalid '%s'" % CURSOR_PARAM)

        state = self.state
        config = state.get_config()
        dataset = state.dataset
        total = dataset.av_limit(config["avepoint_rows"])
        rows = dataset.av_select(total, params.get("flowId"), params.get("tenant"))
        n = len(rows)
        endless = getattr(self, "endless_pages", False)
        if offset > n and not endless:
            raise bad("'%s' is past the end of the result" % CURSOR_PARAM)
        stop = min(n, offset + top)
        page = [dataset.av_row(rows.index(k)) for k in range(offset, stop)]
        payload = {"connectionUsageCloudFlows": page, "totalCount": n}
        if endless:
            # fault endless_pages: always one more page (empty past the end)
            payload["nextLink"] = self._next_link(query, max(stop, offset + top))
        elif stop < n:
            payload["nextLink"] = self._next_link(query, stop)
        else:
            style = config["nextlink_style"]
            if style == "empty":
                payload["nextLink"] = ""
            elif style == "null":
                payload["nextLink"] = None
        return Resp(200, payload, items_key="connectionUsageCloudFlows")

    def _next_link(self, query, offset):
        """Absolute URL of the next page on the origin the client used
        (offset None: the request's own URL without a cursor)."""
        scheme = "https" if self.state.tls else "http"
        host = self.headers.get("Host")
        if not host:
            h, p = self.server.server_address[:2]
            host = ("[%s]:%d" if ":" in h else "%s:%d") % (h, p)
        pairs = [(n, v) for n, v in query if n != CURSOR_PARAM]
        if offset is not None:
            pairs.append((CURSOR_PARAM, encode_cursor(offset)))
        qs = urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote)
        return "%s://%s%s?%s" % (scheme, host, CLOUDFLOWS_PATH, qs)

    # -- control interface (/_mock/*: no auth, not logged) ------------------------

    def _control(self, path):
        state = self.state
        method = self.command
        try:
            body = self._read_body()
        except BadRequestBody as e:
            self.close_connection = True
            self._send(Resp(e.status, {"error": e.message}))
            return
        except (ConnectionError, OSError):
            self.close_connection = True
            return

        def payload_in():
            if not body.strip():
                raise ValueError("expected a JSON body")
            return parse_json(body)

        routes = {
            "/_mock/requests": {"GET": lambda: {"org_id": state.org_id, "requests": state.requests()}},
            "/_mock/reset": {"POST": lambda: (state.reset(), {"ok": True})[1]},
            "/_mock/config": {"GET": state.get_config,
                              "POST": lambda: state.set_config(payload_in())},
            "/_mock/faults": {"GET": lambda: {"faults": state.list_faults()},
                              "POST": lambda: {"ids": state.add_faults(payload_in())},
                              "DELETE": lambda: (state.clear_faults(), {"ok": True})[1]},
            "/_mock/revoke_tokens": {"POST": lambda: {"revoked": state.revoke_tokens()}},
            "/_mock/health": {"GET": lambda: {"ok": True, "dataset": state.dataset.name,
                                              "tls": state.tls}},
        }
        try:
            methods = routes.get(path)
            if methods is None:
                resp = Resp(404, {"error": "no such control endpoint: %s" % path})
            elif method not in methods:
                resp = Resp(405, {"error": "method %s not allowed" % method},
                            headers=[("Allow", ", ".join(methods))])
            else:
                resp = Resp(200, methods[method]())
        except ValueError as e:
            resp = Resp(400, {"error": str(e)})
        except Exception:
            tb = traceback.format_exc()
            state.file_log({"event": "control_error", "path": path, "traceback": tb})
            sys.stderr.write(tb)
            resp = Resp(500, {"error": "internal mock error"})
        try:
            self._send(resp)
        except (ConnectionError, OSError):
            self.close_connection = True


# --------------------------------------------------------------------------
# the server
# --------------------------------------------------------------------------

class MockServer(http.server.ThreadingHTTPServer):
    """Thread per connection, daemon threads, optional TLS."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128
    allow_reuse_address = True

    def __init__(self, address, handler, state, ssl_context=None):
        self.state = state
        self.ssl_context = ssl_context
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)

    def server_bind(self):
        # HTTPServer.server_bind does a reverse DNS lookup (getfqdn): skip it
        http.server.socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.ssl_context is not None:
            # the handshake happens in the connection's thread (Handler.setup)
            sock = self.ssl_context.wrap_socket(sock, server_side=True,
                                                do_handshake_on_connect=False)
        return sock, addr

    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        self.state.file_log({"event": "connection_error", "error": repr(exc)})


def describe(dataset):
    """Markdown tables of a dataset (used to write test/MOCK.md)."""
    out = []
    for tenant in dataset.tenants.values():
        out.append("Tenant `%s` (%s)\n" % (tenant.id, tenant.name))
        out.append("| folderKey | folderName | parent | weight | processes/day |")
        out.append("|---|---|---|---|---|")
        for f in tenant.folders:
            parent = tenant.by_key[f.parent].name if f.parent else "(root)"
            out.append("| `%s` | %s | %s | %s | %d |" % (f.key, f.name, parent, f.weight, f.procs))
        out.append("")
    if isinstance(dataset, DemoDataset):
        out.append("| flowId | tenant | environmentId | connections |")
        out.append("|---|---|---|---|")
        for flow_id, tenant, env, n in dataset.flows:
            out.append("| `%s` | %s | `%s` | %d |" % (flow_id, tenant, env, n))
    return "\n".join(out)


def parse_args(argv):
    p = argparse.ArgumentParser(description="Mock UiPath + AvePoint usage APIs for usage_fdw tests.")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port to bind; 0 = a free port (default)")
    p.add_argument("--port-file", help="write the bound port here (atomically) once listening")
    p.add_argument("--dataset", choices=sorted(DATASETS), default="test")
    p.add_argument("--token", action="append",
                   help="an extra static bearer token (repeatable; %s is always valid)" % DEFAULT_TOKEN)
    p.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    p.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET)
    p.add_argument("--org-id", default=DEFAULT_ORG_ID, help="the UiPath organization id")
    p.add_argument("--log-file", help="append every request (JSON lines) and errors here")
    p.add_argument("--tls-cert", help="PEM certificate: serve HTTPS")
    p.add_argument("--tls-key", help="PEM private key for --tls-cert")
    p.add_argument("--describe", action="store_true", help="print the dataset as markdown and exit")
    args = p.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    args.token = [DEFAULT_TOKEN] + (args.token or [])
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    dataset = DATASETS[args.dataset]()
    if args.describe:
        print(describe(dataset))
        return 0
    ssl_context = None
    if args.tls_cert:
        ssl_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ssl_context.load_cert_chain(args.tls_cert, args.tls_key)
    state = MockState(args, dataset)
    server = MockServer((args.host, args.port), Handler, state, ssl_context)
    port = server.server_address[1]

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              name="serve_forever", daemon=True)
    thread.start()
    if args.port_file:
        tmp = "%s.tmp.%d" % (args.port_file, os.getpid())
        with open(tmp, "w", encoding="ascii") as f:
            f.write("%d\n" % port)
        os.replace(tmp, args.port_file)
    scheme = "https" if ssl_context else "http"
    state.file_log({"event": "start", "pid": os.getpid(), "port": port, "dataset": dataset.name,
                    "tls": bool(ssl_context)})
    sys.stderr.write("mock_api: listening on %s://%s:%d (dataset %s, pid %d)\n"
                     % (scheme, args.host, port, dataset.name, os.getpid()))
    sys.stderr.flush()
    try:
        while not stop.wait(0.2) and thread.is_alive():
            pass
    finally:
        server.shutdown()
        server.server_close()
        state.file_log({"event": "stop"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
