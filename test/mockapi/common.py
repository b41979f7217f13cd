"""Constants, JSON helpers and the request/response values of the mock.

A vendor endpoint is a pure function from a Request to a Resp: no sockets,
no shared state beyond what it is given (test/mockapi/uipath.py,
avepoint.py, oauth.py).  test/mockapi/server.py turns HTTP into Requests
and Resps into HTTP.
"""

import base64
import binascii
import http
import json
import re
import uuid
from decimal import ROUND_HALF_UP, Decimal

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
# how a nextLink is written: "absolute" http(s)://host/path?query, "relative"
# /path?query (a path-absolute reference), "query" ?query (resolve against the request URL)
NEXTLINK_FORMS = ("absolute", "relative", "query")

# Namespace for the deterministic GUIDs of the demo dataset (uuid5, SHA-1 based).
DEMO_NS = uuid.UUID("6d6f636b-0000-4000-8000-75736167652d")



class Request:
    """One API request as the vendor functions see it: method, path, query
    (a list of (name, value) pairs, in order), headers (names compare
    case-insensitively; the first of repeated headers counts) and the body
    (bytes)."""

    def __init__(self, method, path, query=(), headers=None, body=b""):
        self.method = method
        self.path = path
        self.query = list(query)
        self._headers = {}
        for name, value in (headers.items() if isinstance(headers, dict) else headers or ()):
            self._headers.setdefault(name.lower(), value)
        self.body = body

    def header(self, name):
        """A header's value, or None."""
        return self._headers.get(name.lower())


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
    set; `items_key` names the array of items in `payload` (for item faults);
    `log_fields` are added to the request's log record (e.g. assertion_error).
    """

    def __init__(self, status, payload=None, raw=None, content_type="application/json",
                 headers=None, items_key=None, log_fields=None):
        self.status = status
        self.payload = payload
        self.raw = raw
        self.content_type = content_type
        self.headers = list(headers or [])
        self.items_key = items_key
        self.log_fields = dict(log_fields or {})

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
