"""AvePoint Graph API (EnPower): cloud flow connection usage, as a pure
function of a Request.

    GET /smp/powerplatform/connectionusage/cloudflows?flowId=&tenant=&top=&skiptoken=

Paged by `top` and an opaque cursor in nextLink (CURSOR_PARAM)."""

import re
import urllib.parse

from .common import CURSOR_PARAM, ApiError, Resp, decode_cursor, encode_cursor, error_resp

CLOUDFLOWS_PATH = "/smp/powerplatform/connectionusage/cloudflows"
PARAMS = ("flowId", "top", "tenant", CURSOR_PARAM)


def next_link(origin, query, offset):
    """Absolute URL of the next page on `origin` ("scheme://host[:port]", the
    one the client used) (offset None: the request's own URL without a cursor)."""
    pairs = [(n, v) for n, v in query if n != CURSOR_PARAM]
    if offset is not None:
        pairs.append((CURSOR_PARAM, encode_cursor(offset)))
    qs = urllib.parse.urlencode(pairs, quote_via=urllib.parse.quote)
    return "%s%s?%s" % (origin, CLOUDFLOWS_PATH, qs)


def _bad(message, code="InvalidParameter"):
    return ApiError(error_resp("avepoint", 400, message, code=code))


def _params(query):
    """(top, cursor offset, the parameters as a dict) of a valid query."""
    seen = set()
    for name, _ in query:
        if name not in PARAMS:
            raise _bad("unknown query parameter '%s'" % name)
        if name in seen:
            raise _bad("query parameter '%s' given more than once" % name)
        seen.add(name)
    params = dict(query)
    top = 100
    if "top" in params:
        v = params["top"]
        if not re.fullmatch(r"[0-9]{1,7}", v) or not 1 <= int(v) <= 1000:
            raise _bad("'top' must be an integer from 1 to 1000, got '%s'" % v[:40])
        top = int(v)
    offset = 0
    if CURSOR_PARAM in params:
        offset = decode_cursor(params[CURSOR_PARAM])
        if offset is None:
            raise _bad("invalid '%s'" % CURSOR_PARAM)
    return top, offset, params


def cloudflows(req, dataset, config, origin, endless=False):
    """One page of rows.  config: the mock's config (avepoint_rows,
    nextlink_style); origin: for nextLink; endless: the endless_pages fault
    (always one more page, empty past the end).  Authentication is checked
    before."""
    try:
        return _cloudflows(req.query, dataset, config, origin, endless)
    except ApiError as e:
        return e.resp


def _cloudflows(query, dataset, config, origin, endless):
    top, offset, params = _params(query)
    total = dataset.av_limit(config["avepoint_rows"])
    rows = dataset.av_select(total, params.get("flowId"), params.get("tenant"))
    n = len(rows)
    if offset > n and not endless:
        raise _bad("'%s' is past the end of the result" % CURSOR_PARAM)
    stop = min(n, offset + top)
    page = [dataset.av_row(rows.index(k)) for k in range(offset, stop)]
    payload = {"connectionUsageCloudFlows": page, "totalCount": n}
    if endless:
        # fault endless_pages: always one more page (empty past the end)
        payload["nextLink"] = next_link(origin, query, max(stop, offset + top))
    elif stop < n:
        payload["nextLink"] = next_link(origin, query, stop)
    else:
        style = config["nextlink_style"]
        if style == "empty":
            payload["nextLink"] = ""
        elif style == "null":
            payload["nextLink"] = None
    return Resp(200, payload, items_key="connectionUsageCloudFlows")
