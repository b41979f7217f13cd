"""UiPath lease usage API: consumption-by-folder, daily-consumption-by-service
and the two consumption summaries, as pure functions of a Request.

    POST /lease_/api/usage/{org}/tenants/consumption-by-folder        {"items": [...]}
    POST /lease_/api/usage/{org}/tenants/daily-consumption-by-service {"items": [...]}
    POST /lease_/api/usage/{org}/tenants/consumption-summary          {..., "tenants": [...]}
    POST /lease_/api/usage/{org}/tenants/{tenantId}/consumption-summary   {...}

The numbers come from the dataset's formulas (test/MOCK.md).  The summaries'
response shape is not published by UiPath: the one here is the mock's
invention (test/MOCK.md)."""

import datetime
import json
from decimal import ROUND_HALF_UP, Decimal

from .common import (CONSUMABLES, DAY_MS, MAX_DAILY_DAYS, MAX_MS, SERVICES, ApiError, Resp,
                     error_resp, json_type_name, media_type, money, parse_json)

ENDPOINTS = ("consumption-by-folder", "daily-consumption-by-service")
FIELDS = ("tenantId", "startDate", "endDate", "consumableCode", "aggregateByOwnership")
REQUIRED = ("tenantId", "startDate", "endDate", "consumableCode")
# the summaries take exactly these fields, all required
SUMMARY_FIELDS = ("startDate", "endDate", "consumableCode")
TOTAL_UNITS_IN_ACCOUNT = 100_000                  # per consumable (the mock's choice)
ORG_WITHOUT_TENANT_PER_DAY = Decimal("12.5")      # consumedFromOrgWithoutTenant per day


def usage(req, org, endpoint, org_id, dataset):
    """The answer of `endpoint` for organization `org` (from the path); the
    mock serves organization org_id.  Authentication is checked before."""
    try:
        return _usage(req, org, endpoint, org_id, dataset)
    except ApiError as e:
        return e.resp


def _bad(status, message):
    return ApiError(error_resp("uipath", status, message))


def _check_fields(req, allowed, required):
    for name in req:
        if name not in allowed:
            raise _bad(400, "unknown field '%s'" % name)
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
            raise _bad(400, "field '%s' must be %s, got %s %s"
                       % (name, want, json_type_name(v), json.dumps(v)[:60]))
    for name in required:
        if name not in req:
            raise _bad(400, "missing required field '%s'" % name)


def _body(request, org, org_id, allowed, required):
    """The checks every endpoint makes, in order: organization (404),
    Content-Type (415), a JSON object (400), its fields (400), startDate <=
    endDate, a known consumableCode.  -> (body, factor, first day, end day)."""
    if org.lower() != org_id.lower():
        raise _bad(404, "organization '%s' not found" % org)
    if media_type(request.header("Content-Type")) != "application/json":
        raise _bad(415, "Content-Type must be application/json")
    try:
        req = parse_json(request.body)
    except ValueError as e:
        raise _bad(400, "request body is not valid JSON: %s" % e) from None
    if not isinstance(req, dict):
        raise _bad(400, "request body must be a JSON object")
    _check_fields(req, allowed, required)
    start, end = req["startDate"], req["endDate"]
    if start > end:
        raise _bad(400, "field 'startDate' must not be after 'endDate'")
    code = req["consumableCode"]
    if code not in CONSUMABLES:
        raise _bad(400, "field 'consumableCode': unknown consumable '%s' (known: %s)"
                   % (code, ", ".join(CONSUMABLES)))
    # the days of the request: UTC midnights d with startDate <= d < endDate
    first_day = -(-start // DAY_MS)
    end_day = -(-end // DAY_MS)
    return req, CONSUMABLES[code], first_day, end_day


def _usage(request, org, endpoint, org_id, dataset):
    daily = endpoint == "daily-consumption-by-service"
    req, factor, first_day, end_day = _body(request, org, org_id,
                                            FIELDS + (("folderKeys",) if daily else ()), REQUIRED)
    ndays = max(0, end_day - first_day)
    tenant = find_tenant(dataset, req["tenantId"])
    if tenant is None:
        return Resp(200, {"items": []}, items_key="items")

    if not daily:
        return Resp(200, {"items": by_folder(tenant, factor, ndays,
                                             req.get("aggregateByOwnership", False))},
                    items_key="items")
    if ndays > MAX_DAILY_DAYS:
        raise _bad(400, "the range from 'startDate' to 'endDate' spans %d days (at most %d)"
                   % (ndays, MAX_DAILY_DAYS))
    if "folderKeys" in req:
        wanted = {k.lower() for k in req["folderKeys"]}
        weight = sum((f.weight for f in tenant.folders if f.key.lower() in wanted), Decimal(0))
    else:
        weight = sum((f.weight for f in tenant.folders), Decimal(0))
    return Resp(200, {"items": daily_items(first_day, end_day, factor, weight)}, items_key="items")


def daily_items(first_day, end_day, factor, weight):
    """consumedAmount = (day % 10 + 1) * factor * weight * (service index + 1)."""
    items = []
    if weight:
        epoch = datetime.date(1970, 1, 1)
        for day in range(first_day, end_day):
            date = (epoch + datetime.timedelta(days=day)).isoformat()
            base = (day % 10 + 1) * factor * weight
            for index, service in enumerate(SERVICES):
                items.append({"date": date, "service": service,
                              "consumedAmount": money(base * (index + 1))})
    return items


def find_tenant(dataset, tenant_id):
    tenants = dataset.tenants
    if tenant_id in tenants:
        return tenants[tenant_id]
    for tid, tenant in tenants.items():       # GUIDs compare case-insensitively
        if tid.lower() == tenant_id.lower():
            return tenant
    return None


def by_folder(tenant, factor, ndays, aggregate):
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


def summary(req, org, tenant_id, org_id, dataset):
    """POST .../tenants/consumption-summary (tenant_id None: organization-wide)
    or .../tenants/{tenant_id}/consumption-summary.  Authentication is
    checked before."""
    try:
        return _summary(req, org, tenant_id, org_id, dataset)
    except ApiError as e:
        return e.resp


def tenant_consumption(tenant, factor, ndays):
    """C: the sum of the tenant's consumedBySelf (each rounded as by-folder
    rounds it) over the range."""
    cent = Decimal("0.01")
    return sum(((f.weight * factor * ndays).quantize(cent, rounding=ROUND_HALF_UP)
                for f in tenant.folders), Decimal(0))


def tenant_summary(dataset, tenant, factor, ndays):
    """allocated: fixed per tenant (None: no allocation); the tenant pool pays
    up to the allocation, the organization pool the rest."""
    consumed = tenant_consumption(tenant, factor, ndays)
    allocated = dataset.allocations.get(tenant.id)
    from_tenant = min(consumed, Decimal(allocated or 0))
    return {"tenantId": tenant.id, "tenantName": tenant.name, "allocated": allocated,
            "consumedFromTenantPool": money(from_tenant),
            "consumedFromOrgPool": money(consumed - from_tenant)}


def _summary(request, org, tenant_id, org_id, dataset):
    req, factor, first_day, end_day = _body(request, org, org_id, SUMMARY_FIELDS, SUMMARY_FIELDS)
    ndays = max(0, end_day - first_day)
    head = {"consumableCode": req["consumableCode"], "startDate": req["startDate"],
            "endDate": req["endDate"], "totalUnitsInAccount": TOTAL_UNITS_IN_ACCOUNT}
    without_tenant = money(ORG_WITHOUT_TENANT_PER_DAY * ndays)
    if tenant_id is None:
        head["consumedFromOrgWithoutTenant"] = without_tenant
        head["tenants"] = [tenant_summary(dataset, t, factor, ndays)
                           for t in dataset.tenants.values()]
        return Resp(200, head, items_key="tenants")
    tenant = find_tenant(dataset, tenant_id)
    if tenant is None:
        raise _bad(404, "Tenant '%s' not found" % tenant_id)
    row = tenant_summary(dataset, tenant, factor, ndays)
    out = {"tenantId": row["tenantId"], "tenantName": row["tenantName"]}
    out.update(head)
    out.update({"allocated": row["allocated"], "consumedFromTenantPool": row["consumedFromTenantPool"],
                "consumedFromOrgPool": row["consumedFromOrgPool"],
                "consumedFromOrgWithoutTenant": without_tenant})
    return Resp(200, out)
