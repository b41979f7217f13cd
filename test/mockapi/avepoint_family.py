"""AvePoint Graph API (EnPower): more endpoints of the Power Platform family,
as pure functions of a Request.  All GET, paged like cloudflows (avepoint.page):

    /smp/powerplatform/powerautomate/cloudflows/{flowId}/runs  {"runs": [...]}         fromDate toDate
    /smp/powerplatform/powerapps/{appId}/launches              {"launches": [...]}     fromDate toDate
    /smp/powerplatform/connections                             {"connections": [...]}
    /smp/powerplatform/powerbi/powerbiactiveusers              {"activeUsers": [...]}  fromDate toDate
    /smp/powerplatform/environments                            {"environments": [...]}

plus `top`, `tenant` and `skiptoken` everywhere.  The dated lists run from
2024-01-01 up to and including today (UTC); they are computed per request
and item by item (a sequence with len() and [k], sliced by the date range
with a binary search), never kept.  Formulas: test/MOCK.md."""

import bisect
import datetime
import re
import urllib.parse
import uuid

from .avepoint import bad_param, page, parse_params
from .common import CURSOR_PARAM, DEMO_NS, ApiError
from .datasets import PP_TENANTS, PP_USERS

FIRST_DAY = datetime.date(2024, 1, 1)      # day index 0 of every dated list
EPOCH = datetime.date(1970, 1, 1)
NS = 10 ** 9
DAY_NS = 86_400 * NS
FIRST_NS = (FIRST_DAY - EPOCH).days * DAY_NS

PLATFORMS = ("Windows", "iOS", "Android")
LAUNCH_TAGS = ("field", "pilot", "mobile")
WORKSPACES = ("Sales", "Finance", "Operations")

DATED = ("fromDate", "toDate", "top", "tenant", CURSOR_PARAM)
UNDATED = ("top", "tenant", CURSOR_PARAM)

# name -> (path regex, array key, query parameters)
ENDPOINTS = {
    "runs": (re.compile(r"^/smp/powerplatform/powerautomate/cloudflows/([^/]+)/runs$"), "runs", DATED),
    "launches": (re.compile(r"^/smp/powerplatform/powerapps/([^/]+)/launches$"), "launches", DATED),
    "connections": (re.compile(r"^/smp/powerplatform/connections$"), "connections", UNDATED),
    "activeUsers": (re.compile(r"^/smp/powerplatform/powerbi/powerbiactiveusers$"), "activeUsers",
                    DATED),
    "environments": (re.compile(r"^/smp/powerplatform/environments$"), "environments", UNDATED),
}

_DATE_RE = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})"
                      r"(?:T([0-9]{2}):([0-9]{2}):([0-9]{2})(?:\.([0-9]{1,9}))?(?:Z|\+00:00))?")


def match(path):
    """(endpoint name, percent-decoded path argument or None) of a path, or None."""
    for name, (regex, _, _) in ENDPOINTS.items():
        m = regex.match(path)
        if m:
            return name, (urllib.parse.unquote(m.group(1)) if regex.groups else None)
    return None


def parse_time(name, value):
    """fromDate/toDate: nanoseconds since the epoch.  Accepted:
    YYYY-MM-DDTHH:MM:SS[.f up to 9 digits](Z|+00:00) or YYYY-MM-DD (midnight UTC)."""
    m = _DATE_RE.fullmatch(value)
    try:
        if not m:
            raise ValueError
        y, mo, d, hh, mi, ss, frac = m.groups()
        date = datetime.date(int(y), int(mo), int(d))
        secs = 0
        if hh is not None:
            datetime.time(int(hh), int(mi), int(ss))         # range check (no leap second)
            secs = int(hh) * 3600 + int(mi) * 60 + int(ss)
        return (date - EPOCH).days * DAY_NS + secs * NS + int((frac or "").ljust(9, "0"))
    except ValueError:
        raise bad_param("'%s' must be a UTC date-time YYYY-MM-DDTHH:MM:SS[.fff]Z (or +00:00) or a "
                        "date YYYY-MM-DD, got '%s'" % (name, value[:60])) from None


def iso(ns):
    """Whole-second UTC time as the API writes it: 2024-01-01T01:00:00Z."""
    s = ns // NS
    return (datetime.datetime(1970, 1, 1) + datetime.timedelta(seconds=s)).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


def day_date(i):
    return FIRST_DAY + datetime.timedelta(days=i)


class Series:
    """n items, item k = make(k) at time_of(k) ns (non-decreasing in k)."""

    def __init__(self, n, time_of, make):
        self.n, self.time_of, self.make = n, time_of, make

    def between(self, lo_ns, hi_ns):
        """The items with lo_ns <= time <= hi_ns (None: unbounded), as a sequence."""
        ks = range(self.n)
        lo = 0 if lo_ns is None else bisect.bisect_left(ks, lo_ns, key=self.time_of)
        hi = self.n if hi_ns is None else bisect.bisect_right(ks, hi_ns, key=self.time_of)
        return _Slice(self.make, lo, max(lo, hi))


class _Slice:
    def __init__(self, make, lo, hi):
        self.make, self.lo, self.hi = make, lo, hi

    def __len__(self):
        return self.hi - self.lo

    def __getitem__(self, k):
        return self.make(self.lo + k)


def run_series(flow_id, j, ndays):
    """Flow number j (1-based): one run a day, day i at 2024-01-01 + i days + j hours."""
    def time_of(i):
        return FIRST_NS + i * DAY_NS + j * 3600 * NS

    def make(i):
        start = time_of(i)
        duration = 10 * j + i % 7
        run_id = "%s-run-%s" % (flow_id, day_date(i).strftime("%Y%m%d"))
        return {"id": run_id, "objectId": str(uuid.uuid5(DEMO_NS, run_id)),
                "startTime": iso(start), "endTime": iso(start + duration * NS),
                "duration": duration, "state": "Failed" if i % 10 == 0 else "Succeeded"}
    return Series(ndays, time_of, make)


def launch_series(k, tenant, ndays):
    """App number k (1-based): k launches a day, launch n of day i at
    2024-01-01 + i days + (9 + n) hours + 15 minutes."""
    users = PP_USERS[tenant]

    def time_of(m):
        i, n = divmod(m, k)
        return FIRST_NS + i * DAY_NS + ((9 + n) * 3600 + 900) * NS

    def make(m):
        i, n = divmod(m, k)
        u = (i + n) % 4
        platform = PLATFORMS[(i + n) % 3]
        uid, name, upn = users[u]
        return {"launchTime": iso(time_of(m)),
                "user": {"id": uid, "displayName": name, "userPrincipalName": upn},
                "device": {"platform": platform,
                           "browser": "Edge" if platform == "Windows" else None},
                "tags": list(LAUNCH_TAGS[:u])}
    return Series(ndays * k, time_of, make)


def active_user_series(tenants, ndays):
    """Per day i (ascending), per tenant (in order), per user u (0..3): an item
    when (i + u) % 3 != 0.  The pattern repeats every 3 days, so the k-th item
    is found in O(1)."""
    per_day = [[(t, u) for t in tenants for u in range(4) if (r + u) % 3 != 0] for r in range(3)]
    block = sum(len(p) for p in per_day)

    def locate(m):
        b, rest = divmod(m, block)
        for r in range(3):
            if rest < len(per_day[r]):
                return 3 * b + r, per_day[r][rest]
            rest -= len(per_day[r])
        raise IndexError(m)

    def time_of(m):
        return FIRST_NS + locate(m)[0] * DAY_NS

    def make(m):
        i, (tenant, u) = locate(m)
        _, name, upn = PP_USERS[tenant][u]
        return {"date": day_date(i).isoformat(), "userPrincipalName": upn, "displayName": name,
                "activityCount": i % 5 + u + 1, "workspaces": list(WORKSPACES[:(u + 1) % 4])}
    n = (ndays // 3) * block + sum(len(per_day[r]) for r in range(ndays % 3))
    return Series(n, time_of, make)


def endpoint(req, name, arg, dataset, config, origin, endless=False, today=None):
    """One page of endpoint `name` (from match()); arg: its path argument
    (flowId, appId); today: the last day of the dated lists (default: the
    current UTC date).  Authentication is checked before."""
    try:
        return _endpoint(req, name, arg, dataset, config, origin, endless, today)
    except ApiError as e:
        return e.resp


def _endpoint(req, name, arg, dataset, config, origin, endless, today):
    _, key, allowed = ENDPOINTS[name]
    top, offset, params = parse_params(req.query, allowed)
    lo = hi = None
    if "fromDate" in params:
        lo = parse_time("fromDate", params["fromDate"])
    if "toDate" in params:
        hi = parse_time("toDate", params["toDate"])
    if lo is not None and hi is not None and lo > hi:
        raise bad_param("'fromDate' must not be after 'toDate'")
    tenant = params.get("tenant")
    if today is None:
        today = datetime.datetime.now(datetime.timezone.utc).date()
    ndays = max(0, (today - FIRST_DAY).days + 1)

    if name == "runs":
        items = []
        for j, (flow_id, flow_tenant) in enumerate(dataset.pp_flows, start=1):
            if flow_id == arg and tenant in (None, flow_tenant):
                items = run_series(flow_id, j, ndays).between(lo, hi)
    elif name == "launches":
        items = []
        for k, (app_id, _, app_tenant) in enumerate(dataset.pp_apps, start=1):
            if app_id == arg and tenant in (None, app_tenant):
                items = launch_series(k, app_tenant, ndays).between(lo, hi)
    elif name == "activeUsers":
        tenants = [t for t in PP_TENANTS if tenant in (None, t)]
        items = active_user_series(tenants, ndays).between(lo, hi) if tenants else []
    else:
        rows = dataset.pp_connections if name == "connections" else dataset.pp_environments
        items = [dict(item) for item, t in rows if tenant in (None, t)]
    return page(req.query, req.path, top, offset, items, key, config, origin, endless)
