#!/usr/bin/env python3
"""Command-line control of the mock vendor API (test/mock_api.py) for the tests.

pg_regress scripts run it through psql's `\\!`, so everything it prints is
stable and deterministic (no ports, timestamps, tokens or connection ids) and
can sit in expected/*.out files.  The mock's base URL comes from $MOCK_URL
(e.g. http://127.0.0.1:5555).  A mock serving HTTPS (https://...) with a
certificate from a private CA needs that CA: MOCK_CA_FILE=ca.pem (PEM bundle).

  mockctl.py reset                  clear log, faults, config overrides, tokens
  mockctl.py config JSON            merge JSON into the mock's config
  mockctl.py fault JSON             add a fault rule (or an array of rules)
  mockctl.py fault PRESET PATH_REGEX [VALUE] [--skip N] [--times N | --always]
                                    add the rule a named preset builds (below)
  mockctl.py revoke                 revoke every issued OAuth2 token
  mockctl.py register-cert CLIENT_ID CERT_PEM_FILE
                                    register a client certificate for the JWT
                                    client assertion (certificate login);
                                    prints its x5t thumbprint
  mockctl.py requests [--path-substr S] [--all] [--sorted] [--faults]
                                    one line per request since the last reset:
                                    METHOD /path?query  BODY  -> STATUS
  mockctl.py count [--path-substr S]   number of API requests since reset
  mockctl.py tokens                 number of token requests since reset
  mockctl.py conns                  distinct connections used by API requests
  mockctl.py gaps MIN_MS [--path-substr S]
                                    checks that each API request came at least
                                    MIN_MS after the previous one had been
                                    answered (retries are spaced); prints
                                    "N requests, every gap >= MIN_MS ms" or
                                    the first gap that is shorter

Fault presets: each builds one rule {"match": {"path_regex": PATH_REGEX},
"skip": N, "times": N, "action": {...}} ("skip"/"times" only when given;
--always is "times": -1, every matching request from then on):

  status PATH CODE [--retry-after V]  {"status": CODE[, "retry_after": "V"]}
  drop PATH                           {"drop": true}      close without answering
  truncate PATH                       {"truncate": true}  cut the body short
  delay PATH MS                       {"delay_ms": MS}
  body PATH TEXT                      {"body_raw": "TEXT"}  a 200 with this body
  content-type PATH TYPE              {"content_type": "TYPE"}
  items PATH JSON                     {"items": JSON}     the page's item list
  next-link PATH VALUE                {"next_link": VALUE}  VALUE as JSON when
                                      it parses (true, null, 2, ["a"]), else
                                      the string itself (a URL, "")
  endless-pages PATH                  {"endless_pages": true}
  pad-to PATH BYTES                   {"pad_to": BYTES}
  echo-request PATH MODE              {"echo_request": MODE}  a 400 reflecting
                                      the request: MODE json (Authorization and
                                      body in the vendor's error message) or
                                      text (headers and body, JSON-escaped)
  big-header PATH BYTES               {"big_header": BYTES}  one header line
  many-headers PATH COUNT             {"many_headers": COUNT}  60-byte headers

e.g. `mockctl.py fault status cloudflows 500 --skip 2 --always`.

reset/config/fault/revoke print nothing on success (register-cert prints the
x5t); any failure prints a message on stderr and exits with status 1.
"""

import argparse
import json
import os
import ssl
import sys
import urllib.error
import urllib.parse
import urllib.request

TOKEN_PATHS = ("/identity_/connect/token", "/connect/token")


def opener(ca_file=None):
    """Talk to the mock directly, whatever http_proxy/https_proxy say; for
    https, trust ca_file or $MOCK_CA_FILE when set (else the system store)."""
    handlers = [urllib.request.ProxyHandler({})]
    ca_file = ca_file or os.environ.get("MOCK_CA_FILE")
    if ca_file:
        handlers.append(urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=ca_file)))
    return urllib.request.build_opener(*handlers)


class CtlError(RuntimeError):
    pass


class MockClient:
    """The client of the mock's control interface (/_mock/...), for mockctl
    and for the Python tests (fdwtest.mock): base URL `base` (default: $MOCK_URL
    when called), HTTPS trusting `ca_file` (default: $MOCK_CA_FILE)."""

    def __init__(self, base=None, ca_file=None):
        self.base = base
        self.ca_file = ca_file

    def __call__(self, method, path, payload=None):
        """One request; the JSON answer.  payload: a str (sent as is) or
        an object (sent as JSON).  Raises CtlError."""
        base = (self.base or os.environ.get("MOCK_URL", "")).rstrip("/")
        if not base:
            raise CtlError("MOCK_URL is not set")
        data = None
        headers = {}
        if payload is not None:
            data = payload.encode("utf-8") if isinstance(payload, str) else json.dumps(payload).encode()
            headers["Content-Type"] = "application/json"
        req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
        try:
            with opener(self.ca_file).open(req, timeout=30) as resp:
                return json.loads(resp.read().decode("utf-8"))
        except urllib.error.HTTPError as e:
            detail = e.read().decode("utf-8", "replace")
            try:
                detail = json.loads(detail).get("error", detail)
            except (ValueError, AttributeError):
                pass
            raise CtlError("%s %s: HTTP %d: %s" % (method, path, e.code, detail)) from None
        except (urllib.error.URLError, OSError, ValueError) as e:
            raise CtlError("%s %s: %s" % (method, path, e)) from None

    def reset(self):
        return self("POST", "/_mock/reset")

    def config(self, changes):
        return self("POST", "/_mock/config", changes)

    def add_faults(self, rules):
        return self("POST", "/_mock/faults", rules)

    def clear_faults(self):
        return self("DELETE", "/_mock/faults")

    def faults(self):
        return self("GET", "/_mock/faults")["faults"]

    def requests(self):
        return self("GET", "/_mock/requests")["requests"]

    def register_cert(self, client_id, pem_text):
        """Register a client certificate (PEM text); returns its x5t."""
        return self("POST", "/_mock/client_certs",
                    {"client_id": client_id, "certificate": pem_text})["x5t"]

    def client_certs(self):
        return self("GET", "/_mock/client_certs")["client_certs"]


call = MockClient()


def check_json(text, what):
    try:
        json.loads(text)
    except ValueError as e:
        raise CtlError("%s: not valid JSON: %s" % (what, e)) from None
    return text


def _json_or_text(text):
    try:
        return json.loads(text)
    except ValueError:
        return text


def _json_value(text):
    try:
        return json.loads(text)
    except ValueError as e:
        raise CtlError("not valid JSON: %s" % e) from None


# name -> (value argument or None, function from the value to the action)
FAULT_PRESETS = {
    "status": ("CODE", lambda v: {"status": int(v)}),
    "drop": (None, lambda v: {"drop": True}),
    "truncate": (None, lambda v: {"truncate": True}),
    "delay": ("MS", lambda v: {"delay_ms": int(v)}),
    "body": ("TEXT", lambda v: {"body_raw": v}),
    "content-type": ("TYPE", lambda v: {"content_type": v}),
    "items": ("JSON", lambda v: {"items": _json_value(v)}),
    "next-link": ("VALUE", lambda v: {"next_link": _json_or_text(v)}),
    "endless-pages": (None, lambda v: {"endless_pages": True}),
    "pad-to": ("BYTES", lambda v: {"pad_to": int(v)}),
    "echo-request": ("MODE", lambda v: {"echo_request": v}),
    "big-header": ("BYTES", lambda v: {"big_header": int(v)}),
    "many-headers": ("COUNT", lambda v: {"many_headers": int(v)}),
}


class _ArgParser(argparse.ArgumentParser):
    def error(self, message):
        raise CtlError("%s: %s" % (self.prog, message))


def fault_preset(args):
    """The fault rule (a dict) that `fault PRESET PATH_REGEX [VALUE] [options]` means."""
    if not args or args[0] not in FAULT_PRESETS:
        raise CtlError("fault: not JSON and not a preset: %r (presets: %s)"
                       % (args[0] if args else "", ", ".join(sorted(FAULT_PRESETS))))
    name = args[0]
    value_name, build = FAULT_PRESETS[name]
    p = _ArgParser(prog="fault " + name, add_help=False)
    p.add_argument("path_regex")
    if value_name:
        p.add_argument("value", metavar=value_name)
    p.add_argument("--skip", type=int)
    g = p.add_mutually_exclusive_group()
    g.add_argument("--times", type=int)
    g.add_argument("--always", action="store_const", dest="times", const=-1)
    if name == "status":
        p.add_argument("--retry-after")
    a = p.parse_args(args[1:])
    try:
        action = build(a.value if value_name else None)
    except ValueError as e:
        raise CtlError("fault %s: %s" % (name, e)) from None
    if getattr(a, "retry_after", None) is not None:
        action["retry_after"] = a.retry_after
    rule = {"match": {"path_regex": a.path_regex}}
    if a.skip is not None:
        rule["skip"] = a.skip
    if a.times is not None:
        rule["times"] = a.times
    rule["action"] = action
    return rule


def fault_payload(args):
    """The body of POST /_mock/faults: raw JSON as given, or a preset's rule."""
    if len(args) == 1 and args[0].lstrip()[:1] in ("{", "["):
        return check_json(args[0], "fault")
    return json.dumps(fault_preset(args))


def is_token_request(rec):
    return rec["path"] in TOKEN_PATHS


def api_requests(path_substr=None, include_tokens=False):
    """The logged requests (seq order), with the organization id for display."""
    data = call("GET", "/_mock/requests")
    recs = sorted(data["requests"], key=lambda r: r["seq"])
    if not include_tokens:
        recs = [r for r in recs if not is_token_request(r)]
    if path_substr:
        recs = [r for r in recs if path_substr in r["path"]]
    return data.get("org_id"), recs


def show_value(text):
    """Percent-encode only non-printables, '&', '=', '%' and space."""
    out = []
    for ch in text:
        if ch in "&=% " or not ch.isprintable():
            out.append(urllib.parse.quote(ch, safe="", errors="backslashreplace"))
        else:
            out.append(ch)
    return "".join(out)


def format_request(rec, org_id, with_fault=False):
    path = rec["path"]
    if org_id:
        path = path.replace(org_id, "{org}")
    if rec["query"]:
        path += "?" + "&".join("%s=%s" % (show_value(n), show_value(v)) for n, v in rec["query"])
    body = "-" if rec["body"] is None else json.dumps(rec["body"], sort_keys=True,
                                                        separators=(",", ":"))
    status = "-" if rec["status"] is None else str(rec["status"])
    line = "%s %s  %s  -> %s" % (rec["method"], path, body, status)
    if with_fault and rec.get("fault"):
        line += "  [fault %s]" % rec["fault"]
    return line


def check_gaps(recs, min_ms):
    """From the end of each response to the arrival of the next request: a
    stable line when every gap is >= min_ms, else the first short one."""
    for k in range(1, len(recs)):
        prev, cur = recs[k - 1], recs[k]
        end = prev["t_end"] if prev["t_end"] is not None else prev["t"]
        gap_ms = (cur["t"] - end) * 1000.0
        if gap_ms < min_ms:
            return "%d requests, gap before request %d is %.1f ms < %g ms" % (
                len(recs), k + 1, gap_ms, min_ms)
    return "%d requests, every gap >= %g ms" % (len(recs), min_ms)


def main(argv=None):
    p = argparse.ArgumentParser(prog="mockctl.py", description="Control the usage_fdw mock API ($MOCK_URL).")
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("reset", help="clear log, faults, config overrides and issued tokens")
    sp = sub.add_parser("config", help="merge a JSON object into the config")
    sp.add_argument("json")
    sp = sub.add_parser("fault", help="add a fault rule (JSON object or array, or PRESET PATH_REGEX ...)")
    sp.add_argument("spec", nargs=argparse.REMAINDER)
    sub.add_parser("revoke", help="revoke all issued OAuth2 tokens")
    sp = sub.add_parser("register-cert", help="register a client certificate; prints its x5t")
    sp.add_argument("client_id")
    sp.add_argument("cert_file")
    sp = sub.add_parser("requests", help="list requests since the last reset")
    sp.add_argument("--path-substr", help="only requests whose path contains this")
    sp.add_argument("--all", action="store_true", help="include token requests")
    sp.add_argument("--sorted", action="store_true",
                    help="sort the lines (for concurrent requests, whose order varies)")
    sp.add_argument("--faults", action="store_true", help="append the injected fault's name")
    sp = sub.add_parser("count", help="number of API requests since the last reset")
    sp.add_argument("--path-substr")
    sub.add_parser("tokens", help="number of token requests since the last reset")
    sub.add_parser("conns", help="distinct connections used by API requests since the last reset")
    sp = sub.add_parser("gaps", help="check that requests are at least MIN_MS apart")
    sp.add_argument("min_ms", type=float)
    sp.add_argument("--path-substr")
    args = p.parse_args(argv)

    # deterministic output whatever the caller's locale
    sys.stdout.reconfigure(encoding="utf-8", errors="backslashreplace")
    try:
        if args.cmd == "reset":
            call("POST", "/_mock/reset")
        elif args.cmd == "config":
            call("POST", "/_mock/config", check_json(args.json, "config"))
        elif args.cmd == "fault":
            call("POST", "/_mock/faults", fault_payload(args.spec))
        elif args.cmd == "revoke":
            call("POST", "/_mock/revoke_tokens")
        elif args.cmd == "register-cert":
            try:
                with open(args.cert_file, encoding="utf-8") as f:
                    pem = f.read()
            except (OSError, UnicodeDecodeError) as e:
                raise CtlError("register-cert: %s" % e) from None
            print(call.register_cert(args.client_id, pem))
        elif args.cmd == "requests":
            org_id, recs = api_requests(args.path_substr, include_tokens=args.all)
            lines = [format_request(r, org_id, args.faults) for r in recs]
            if args.sorted:
                lines.sort()
            for line in lines:
                print(line)
        elif args.cmd == "count":
            print(len(api_requests(args.path_substr)[1]))
        elif args.cmd == "tokens":
            data = call("GET", "/_mock/requests")
            print(sum(1 for r in data["requests"] if is_token_request(r)))
        elif args.cmd == "conns":
            print(len({r["conn"] for r in api_requests()[1]}))
        elif args.cmd == "gaps":
            print(check_gaps(api_requests(args.path_substr)[1], args.min_ms))
    except CtlError as e:
        sys.stdout.flush()
        print("mockctl: %s" % e, file=sys.stderr)
        return 1
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
