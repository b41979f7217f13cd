"""AvePoint Graph API (EnPower): cloud flow connection usage, as a pure
function of a Request, and the paging every AvePoint list endpoint shares.

    GET /smp/powerplatform/connectionusage/cloudflows?flowId=&tenant=&top=&skiptoken=

Paged by `top` and an opaque cursor in nextLink (CURSOR_PARAM).  The other
endpoints of the family (runs, launches, connections, ...) are in
avepoint_family.py and page through `page()` below."""

import re
import urllib.parse

from .common import CURSOR_PARAM, ApiError, Resp, decode_cursor, encode_cursor, error_resp

CLOUDFLOWS_PATH = "/smp/powerplatform/connectionusage/cloudflows"
PARAMS = ("flowId", "top", "tenant", CURSOR_PARAM)


def next_link(origin, query, offset, path=CLOUDFLOWS_PATH, form="absolute"):
    """The link to the page at a row offset (offset None: the request's own
    URL without a cursor), in the configured form: "absolute"
    (origin + path + query; origin "scheme://host[:port]" as the client
    addressed it), "relative" (path + query) or "query" ("?" + query).
    `path` is the request's path as received (still percent-encoded)."""
    pairs = [(n, v) for n, v in query if n != CURSOR_PARAM]
    if offset is not None:
        pairs.append((CURSOR_PARAM, encode_cursor(offset)))
    qs = urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote)
    if form == "query":
        return "?" + qs
    if form == "relative":
        return "%s?%s" % (path, qs)
    return "%s%s?%s" % (origin, path, qs)


def bad_param(message, code="InvalidParameter"):
    return ApiError(error_resp("avepoint", 400, message, code=code))


def parse_params(query, allowed):
    """(top, cursor offset, the parameters as a dict) of a valid query: only
    `allowed` names, each at most once, `top` 1..1000 (default 100), a
    cursor of ours."""
    seen = set()
    for name, _ in query:
        if name not in allowed:
            raise bad_param("unknown query parameter '%s'" % name)
        if name in seen:
            raise bad_param("query parameter '%s' given more than once" % name)
        seen.add(name)
    params = dict(query)
    top = 100
    if "top" in params:
        v = params["top"]
        if not re.fullmatch(r"[0-9]{1,7}", v) or not 1 <= int(v) <= 1000:
            raise bad_param("'top' must be an integer from 1 to 1000, got '%s'" % v[:40])
        top = int(v)
    offset = 0
    if CURSOR_PARAM in params:
        offset = decode_cursor(params[CURSOR_PARAM])
        if offset is None:
            raise bad_param("invalid '%s'" % CURSOR_PARAM)
    return top, offset, params


def page(query, path, top, offset, items, key, config, origin, endless):
    """One page of a list endpoint: {key: [...], "totalCount": n, "nextLink": ...}.

    items: the matching items, a sequence (len() and items[k], computed on
    demand); config: nextlink_style (the last page) and nextlink_form;
    endless: the endless_pages fault (always one more page, empty past the end)."""
    n = len(items)
    if offset > n and not endless:
        raise bad_param("'%s' is past the end of the result" % CURSOR_PARAM)
    stop = min(n, offset + top)
    payload = {key: [items[k] for k in range(offset, stop)], "totalCount": n}
    form = config.get("nextlink_form", "absolute")
    if endless:
        payload["nextLink"] = next_link(origin, query, max(stop, offset + top), path, form)
    elif stop < n:
        payload["nextLink"] = next_link(origin, query, stop, path, form)
    else:
        style = config.get("nextlink_style", "empty")
        if style == "empty":
            payload["nextLink"] = ""
        elif style == "null":
            payload["nextLink"] = None
    return Resp(200, payload, items_key=key)


class _Rows:
    """The matching cloudflows rows as a sequence of row objects."""

    def __init__(self, dataset, rows):
        self.dataset = dataset
        self.rows = rows

    def __len__(self):
        return len(self.rows)

    def __getitem__(self, k):
        return self.dataset.av_row(self.rows.index(k))


def cloudflows(req, dataset, config, origin, endless=False):
    """One page of rows.  config: the mock's config (avepoint_rows,
    nextlink_style, nextlink_form); origin: for nextLink; endless: the
    endless_pages fault (always one more page, empty past the end).
    Authentication is checked before."""
    try:
        top, offset, params = parse_params(req.query, PARAMS)
        total = dataset.av_limit(config["avepoint_rows"])
        rows = dataset.av_select(total, params.get("flowId"), params.get("tenant"))
        return page(req.query, CLOUDFLOWS_PATH, top, offset, _Rows(dataset, rows),
                    "connectionUsageCloudFlows", config, origin, endless)
    except ApiError as e:
        return e.resp
