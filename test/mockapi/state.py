"""The mock's shared state: config, request log, fault rules, issued tokens,
client certificates and the client assertions' jtis seen."""

import itertools
import json
import secrets
import threading
import time

from .common import Resp, DEFAULT_TOKEN, MAX_AVEPOINT_ROWS, NEXTLINK_FORMS, NEXTLINK_STYLES
from .faults import FaultRule


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
                         "token_ttl": 3600, "nextlink_style": "empty",
                         "nextlink_form": "absolute"}
        self.config = dict(self.defaults)
        self.log = []
        self.seq = 0
        self.faults = []
        self.fault_ids = itertools.count(1)
        self.issued = {}            # access token -> (expiry, monotonic seconds; scope)
        self.jtis = set()           # client assertion jtis seen (cleared by reset)
        self.client_certs = {}      # client id -> certs.ClientCert (kept by reset)
        self.conn_ids = itertools.count(1)
        self.log_file = open(args.log_file, "a", encoding="utf-8") if args.log_file else None
        self.log_file_lock = threading.Lock()
        self.pages = {}             # rendered cloudflows pages (page_cache)
        self.pages_bytes = 0

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
            elif key == "nextlink_form":
                if value not in NEXTLINK_FORMS:
                    raise ValueError("nextlink_form must be one of: %s" % ", ".join(NEXTLINK_FORMS))
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
            self.jtis = set()

    # -- rendered pages ---------------------------------------------------------

    PAGES_MAX_BYTES = 256 * 1024 * 1024

    def page_cache(self, key, render):
        """The bytes of a successful page, rendered once per key (the request,
        the origin and the config it depends on): the Python mock would
        otherwise take longer to build a big page than the FDW to read it,
        and the benchmark would measure the mock.  Other answers are not
        kept.  Returns a Resp."""
        with self.lock:
            raw = self.pages.get(key)
        if raw is not None:
            return Resp(200, raw=raw, items_key=None)
        resp = render()
        if resp.status == 200 and resp.raw is None:
            resp.raw = resp.body()
            with self.lock:
                if self.pages_bytes + len(resp.raw) > self.PAGES_MAX_BYTES:
                    self.pages = {}
                    self.pages_bytes = 0
                self.pages[key] = resp.raw
                self.pages_bytes += len(resp.raw)
            resp = Resp(200, raw=resp.raw)
        return resp

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

    def use_jti(self, jti):
        """True the first time a client assertion's jti is seen (until a reset)."""
        with self.lock:
            if jti in self.jtis:
                return False
            self.jtis.add(jti)
            return True

    # -- client certificates (not cleared by reset) ------------------------------

    def register_cert(self, cert):
        with self.lock:
            self.client_certs[cert.client_id] = cert

    def cert_for(self, client_id):
        with self.lock:
            return self.client_certs.get(client_id)

    def list_certs(self):
        with self.lock:
            return [{"client_id": c.client_id, "x5t": c.x5t} for c in self.client_certs.values()]

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
