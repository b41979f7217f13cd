"""The mock's transport: the HTTP(S) server, routing of API requests to the
vendor functions (with the fault rules applied around them), the request
log, and the control interface under /_mock/ (no auth, not logged):

  GET  /_mock/requests        the request log since the last reset
  POST /_mock/reset           clear log, faults, config overrides, tokens
  GET|POST /_mock/config      read / merge the config
  GET|POST|DELETE /_mock/faults   list / add / clear fault rules
  POST /_mock/revoke_tokens   revoke every issued OAuth2 token
  GET|POST /_mock/client_certs   list / register client certificates
  GET  /_mock/health          {"ok": true, "dataset": ..., "tls": ...}
"""

import argparse
import http
import http.server
import os
import re
import signal
import socket
import ssl
import sys
import threading
import time
import traceback
import urllib.parse

from . import avepoint, avepoint_family, certs, oauth, uipath
from .avepoint import CLOUDFLOWS_PATH, next_link
from .common import (DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET, DEFAULT_ORG_ID, DEFAULT_TOKEN,
                     MAX_BODY, Request, Resp, error_resp, mask_secret, media_type, parse_json)
from .datasets import DATASETS, describe
from .faults import apply_response_faults, echo_response, fault_response, header_faults
from .state import MockState

# --------------------------------------------------------------------------
# routing
# --------------------------------------------------------------------------

TOKEN_ROUTES = {"/identity_/connect/token": "uipath", "/connect/token": "avepoint"}
UIPATH_RE = re.compile(r"^/lease_/api/usage/([^/]+)/tenants/(%s)$" % "|".join(uipath.ENDPOINTS))
SUMMARY_RE = re.compile(r"^/lease_/api/usage/([^/]+)/tenants/(?:([^/]+)/)?consumption-summary$")


def route(path):
    """(kind, error style, allowed method, path argument) for a request path.

    kind is "token", "uipath", "summary", "cloudflows", "avepoint" (the
    family of avepoint_family.py) or None (unknown route)."""
    if path in TOKEN_ROUTES:
        return "token", "oauth", "POST", TOKEN_ROUTES[path]
    m = UIPATH_RE.match(path)
    if m:
        return "uipath", "uipath", "POST", (urllib.parse.unquote(m.group(1)), m.group(2))
    m = SUMMARY_RE.match(path)
    if m:
        tenant = urllib.parse.unquote(m.group(2)) if m.group(2) is not None else None
        return "summary", "uipath", "POST", (urllib.parse.unquote(m.group(1)), tenant)
    if path == CLOUDFLOWS_PATH:
        return "cloudflows", "avepoint", "GET", None
    m = avepoint_family.match(path)
    if m:
        return "avepoint", "avepoint", "GET", m
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
                for secret in ("client_secret", "client_assertion"):
                    if secret in shown:
                        shown[secret] = "***"
                return shown, form
            return re.sub(r"(client_(?:secret|assertion)=)[^&]*", r"\1***", text), None
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

    def _send(self, resp, truncate=False, trickle=None):
        """Write the whole response in one send (no Nagle stalls), or with
        trickle {"bytes": n, "delay_ms": d} the head and then the body n bytes
        at a time, d ms apart (Nagle off), so that the client reads it in
        pieces cut anywhere; return its status."""
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
        if trickle:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.wfile.write(head)
            self.wfile.flush()
            n, delay = trickle["bytes"], trickle.get("delay_ms", 0) / 1000.0
            for k in range(0, len(body), n):
                self.wfile.write(body[k:k + n])
                self.wfile.flush()
                if delay:
                    time.sleep(delay)
            return resp.status
        self.wfile.write(head + body)
        self.wfile.flush()
        return resp.status

    # -- API requests -----------------------------------------------------------

    def _request(self, path, query, body):
        return Request(self.command, path, query, self.headers.items(), body)

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
            if "echo_request" in action:
                resp = echo_response(style, action, self.command, path, self.headers.items(), body)
            elif "status" in action:
                resp = fault_response(style, action)
            else:
                req = self._request(path, query, body)
                resp = self._handle_route(kind, style, allowed, arg, req,
                                          bool(action.get("endless_pages")), rule is None)
                rec.update(resp.log_fields)
                form = state.get_config()["nextlink_form"]
                apply_response_faults(resp, action, query,
                                      lambda q, offset: next_link(self._origin(), q, offset,
                                                                  path, form))
            if "retry_after" in action:
                resp.headers.append(("Retry-After", str(action["retry_after"])))
            for k, v in action.get("headers", {}).items():
                resp.headers.append((k, str(v)))
            resp.headers.extend(header_faults(action))
            status = self._send(resp, truncate=bool(action.get("truncate")),
                                trickle=action.get("trickle"))
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

    def _handle_route(self, kind, style, allowed, arg, req, endless, cacheable=False):
        """The vendor's answer (test/mockapi/oauth.py, uipath.py, avepoint.py)."""
        state = self.state
        if kind is None:
            return error_resp(style, 404, "no such endpoint: %s" % req.path,
                              code="not_found" if style == "oauth" else None)
        if req.method != allowed:
            return error_resp(style, 405, "method %s not allowed (use %s)" % (req.method, allowed),
                              code="invalid_request" if style == "oauth" else None,
                              headers=[("Allow", allowed)])
        if kind == "token":
            policy = oauth.AssertionPolicy(self._origin() + req.path, state.cert_for, state.use_jti)
            return oauth.token(req, state.client_id, state.client_secret, state.issue_token, policy)
        refused = oauth.bearer_error(req, style, state.token_valid)
        if refused is not None:
            return refused
        if kind == "uipath":
            return uipath.usage(req, arg[0], arg[1], state.org_id, state.dataset)
        if kind == "summary":
            return uipath.summary(req, arg[0], arg[1], state.org_id, state.dataset)
        if kind == "avepoint":
            return avepoint_family.endpoint(req, arg[0], arg[1], state.dataset, state.get_config(),
                                            self._origin(), endless)
        config = state.get_config()
        origin = self._origin()
        if endless or not cacheable:
            return avepoint.cloudflows(req, state.dataset, config, origin, endless)
        key = (req.path, tuple(req.query), origin, config["avepoint_rows"],
               config["nextlink_style"], config["nextlink_form"])
        return state.page_cache(key, lambda: avepoint.cloudflows(req, state.dataset, config,
                                                                 origin, endless))

    def _origin(self):
        """scheme://host of the URL the client used (for nextLink)."""
        scheme = "https" if self.state.tls else "http"
        host = self.headers.get("Host")
        if not host:
            h, p = self.server.server_address[:2]
            host = ("[%s]:%d" if ":" in h else "%s:%d") % (h, p)
        return "%s://%s" % (scheme, host)

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
            "/_mock/client_certs": {"GET": lambda: {"client_certs": state.list_certs()},
                                    "POST": lambda: register_cert(state, payload_in())},
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



def register_cert(state, spec):
    """POST /_mock/client_certs {"client_id", "certificate": PEM text}: ValueError
    (a 400) when the body is wrong or openssl cannot read the certificate."""
    if not isinstance(spec, dict) or set(spec) != {"client_id", "certificate"}:
        raise ValueError('expected {"client_id": "...", "certificate": "<PEM>"}')
    if not isinstance(spec["client_id"], str) or not spec["client_id"]:
        raise ValueError("client_id must be a non-empty string")
    cert = certs.load_certificate(spec["client_id"], spec["certificate"])   # CertError: ValueError
    state.register_cert(cert)
    return {"ok": True, "x5t": cert.x5t}


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
    p.add_argument("--client-cert", action="append", default=[], metavar="CLIENT_ID=PEMFILE",
                   help="register a client certificate for the JWT client assertion (repeatable)")
    p.add_argument("--log-file", help="append every request (JSON lines) and errors here")
    p.add_argument("--tls-cert", help="PEM certificate: serve HTTPS")
    p.add_argument("--tls-key", help="PEM private key for --tls-cert")
    p.add_argument("--describe", action="store_true", help="print the dataset as markdown and exit")
    args = p.parse_args(argv)
    if bool(args.tls_cert) != bool(args.tls_key):
        p.error("--tls-cert and --tls-key go together")
    args.token = [DEFAULT_TOKEN] + (args.token or [])
    args.client_certs = []
    for spec in args.client_cert:
        client_id, sep, pem_file = spec.partition("=")
        if not sep or not client_id or not pem_file:
            p.error("--client-cert wants CLIENT_ID=PEMFILE, got %r" % spec)
        try:
            with open(pem_file, encoding="utf-8") as f:
                args.client_certs.append(certs.load_certificate(client_id, f.read()))
        except (OSError, UnicodeDecodeError, certs.CertError) as e:
            p.error("--client-cert %s: %s" % (spec, e))
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
    for cert in args.client_certs:
        state.register_cert(cert)
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


