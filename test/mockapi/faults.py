"""Fault rules: which requests a rule matches (FaultRule) and what it does to
the response (fault_response, apply_response_faults).  The transport
(server.py) applies delay, drop, truncate, retry_after and headers, which
touch the connection rather than the response value."""

import base64
import hashlib
import json
import random
import re

from .common import CURSOR_PARAM, Resp, decode_cursor, error_resp, json_equal

RULE_KEYS = {"match", "skip", "times", "action", "name", "p", "seed", "sticky"}
MATCH_KEYS = {"method", "path_regex", "query", "body"}
ACTION_KEYS = {"status", "body", "content_type", "headers", "retry_after", "delay_ms", "drop",
               "truncate", "body_raw", "body_b64", "next_link", "item_patch", "items",
               "next_link_cycle", "endless_pages", "pad_to", "echo_request", "big_header",
               "many_headers", "trickle"}
MAX_PAD_TO = 256 * 1024 * 1024
MAX_HEADER_PAD = 16 * 1024 * 1024


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
        if "echo_request" in a and a["echo_request"] not in ("json", "text"):
            raise ValueError("action.echo_request must be \"json\" or \"text\"")
        for name in ("big_header", "many_headers"):
            n = a.get(name, 0)
            if isinstance(n, bool) or not isinstance(n, int) or not 0 <= n <= MAX_HEADER_PAD:
                raise ValueError("action.%s must be an integer 0..%d" % (name, MAX_HEADER_PAD))
        if "trickle" in a:
            t = a["trickle"]
            if (not isinstance(t, dict) or set(t) - {"bytes", "delay_ms"} or "bytes" not in t
                    or any(isinstance(v, bool) or not isinstance(v, int) for v in t.values())
                    or not 1 <= t["bytes"] <= 1 << 20 or not 0 <= t.get("delay_ms", 0) <= 1000):
                raise ValueError("action.trickle must be {\"bytes\": 1..1048576, \"delay_ms\": 0..1000}")
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
        for name in ("echo_request", "big_header", "many_headers", "trickle"):
            if name in a:
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


def fault_response(style, action):
    """The response of a rule with a "status": its body, or an error in the
    vendor's shape (style: "uipath", "avepoint", "oauth")."""
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


def echo_response(style, action, method, path, headers, body):
    """A server that reflects the request into its error (action
    "echo_request", HTTP "status" or 400): "json" puts the Authorization
    header and the body into the vendor's error message; "text" answers
    text/plain holding the request's Authorization and Content-Type headers
    and its body as one JSON document (so secrets appear JSON-escaped, and
    the form body URL-encoded)."""
    st = action.get("status", 400)
    hdrs = dict(headers)
    text = body.decode("utf-8", "replace")
    if action["echo_request"] == "json":
        msg = "rejected %s %s with authorization %s and body %s" % (
            method, path, hdrs.get("Authorization", "-"), text)
        return error_resp(style, st, msg, code="invalid_request" if style == "oauth" else None)
    shown = {k: v for k, v in hdrs.items() if k.lower() in ("authorization", "content-type")}
    raw = json.dumps({"request": "%s %s" % (method, path), "headers": shown, "body": text})
    return Resp(st, raw=raw.encode("utf-8"), content_type="text/plain")


def header_faults(action):
    """The extra response headers of "big_header" (one header line of that
    many bytes) and "many_headers" (that many headers of 60 bytes)."""
    out = []
    if action.get("big_header"):
        out.append(("X-Big", "a" * action["big_header"]))
    for i in range(action.get("many_headers", 0)):
        out.append(("X-Many-%05d" % i, "b" * 46))
    return out


def apply_response_faults(resp, action, query, next_link):
    """Actions that alter a successful response (they leave errors alone).
    next_link(query, offset): the URL of the page at a row offset."""
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
            resp.payload["nextLink"] = next_link(query, nxt if nxt else None)
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
