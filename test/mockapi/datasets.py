"""The datasets the mock serves: "test" (the regression tests are written
against it) and "demo" (make demo).  A dataset has `tenants` (UiPath: id ->
Tenant with its folders, plus `allocations`: id -> allocated units or None,
for the consumption summaries), the AvePoint cloudflows rows:
av_limit(configured), av_row(i), av_select(total, flow_id, tenant) -> a
sequence of row indexes, and the rest of the AvePoint Power Platform family
(test/mockapi/avepoint_family.py): `pp_flows` [(flowId, tenant)],
`pp_apps` [(appId, displayName, tenant)], `pp_environments` [(item, tenant)],
`pp_connections` [(item, tenant)] and PP_USERS (the same in both datasets).
"""

import datetime
import re
import uuid
from decimal import Decimal

from .common import DEMO_NS


def demo_guid(name):
    return str(uuid.uuid5(DEMO_NS, name))


# Power Platform users, 4 per tenant (both datasets): (id, displayName, userPrincipalName)
PP_USERS = {
    tenant: [(demo_guid("user/" + upn.lower()), name, upn)
             for name, upn in ((n, "%s@%s.com" % (n.split()[0] + n.split()[1][0], tenant))
                               for n in names)]
    for tenant, names in (
        ("contoso", ("Adele Vance", "Megan Bowen", "Lee Gu", "Nestor Wilke")),
        ("fabrikam", ("Alex Wilber", "Diego Siciliani", "Isaiah Langer", "Johanna Lorenz")))
}
PP_TENANTS = ("contoso", "fabrikam")
# connection c (1-based position in the list): connector (c-1) % 4
PP_CONNECTORS = (("shared_office365", "Office 365 Outlook"),
                 ("shared_sharepointonline", "SharePoint"),
                 ("shared_commondataserviceforapps", "Microsoft Dataverse"),
                 ("shared_teams", "Microsoft Teams"))


def pp_connection(c, conn_id, tenant, env_id, env_name):
    """Connection number c (1-based) of a dataset: the formulas of test/MOCK.md."""
    users = PP_USERS[tenant]
    owners = [users[(c - 1) % 4]] + ([users[c % 4]] if c % 3 == 0 else [])
    connector, cname = PP_CONNECTORS[(c - 1) % 4]
    created = datetime.datetime(2024, 1, 1, 8, 30) + datetime.timedelta(days=7 * (c - 1))
    return {"id": conn_id, "displayName": "%s %d" % (cname, c), "connector": connector,
            "environment": {"id": env_id, "displayName": env_name},
            "owners": [{"id": u[0], "displayName": u[1]} for u in owners],
            "status": "Error" if c % 4 == 0 else "Connected",
            "createdTime": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "isShared": c % 2 == 0}


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
        self.allocations = {t2: 1000, t3: None}

        # the Power Platform family: flows 1..5 whatever avepoint_rows says
        self.pp_flows = [("flow-%04d" % j, self._tenant_of_flow(j - 1)) for j in range(1, 6)]
        self.pp_apps = [("app-0001", "Expense Tracker", "contoso"),
                        ("app-0002", "Field Inspection", "contoso"),
                        ("app-0003", "Leave Requests", "fabrikam")]
        envs = [("env-01", "Contoso Default", "unitedstates", "Default", "contoso"),
                ("env-02", "Fabrikam Default", "europe", "Default", "fabrikam"),
                ("env-03", "Contoso Production", "unitedstates", "Production", "contoso"),
                ("env-04", "Fabrikam Sandbox", "europe", "Sandbox", "fabrikam")]
        self.pp_environments = [({"id": e, "displayName": n, "region": r, "type": t}, ten)
                                for e, n, r, t, ten in envs]
        # connection c: pair p = (c-1) // 2, tenant contoso for even p, environment env-0(p+1)
        self.pp_connections = []
        for c in range(1, 9):
            p = (c - 1) // 2
            env = envs[p]
            self.pp_connections.append((pp_connection(c, "conn-%05d" % c, env[4], env[0], env[1]),
                                        env[4]))

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
        self.allocations = {"22222222-2222-2222-2222-222222222222": 5000,
                            "33333333-3333-3333-3333-333333333333": 1000,
                            "44444444-4444-4444-4444-444444444444": None}

        # the Power Platform family
        self.pp_flows = [(flow_id, tenant) for flow_id, tenant, _, _ in self.flows]
        self.pp_apps = [(guid("app/%02d" % k), name, tenant) for k, (name, tenant) in enumerate(
            (("Expense Tracker", "contoso"), ("Field Inspection", "contoso"),
             ("Leave Requests", "fabrikam"), ("Asset Checkout", "contoso")))]
        env_names = {}
        self.pp_environments = []
        for tenant, region in (("contoso", "unitedstates"), ("fabrikam", "europe")):
            for env, kind in zip(self.environments[tenant], ("Default", "Production")):
                env_names[env] = "%s %s" % (tenant.capitalize(), kind)
                self.pp_environments.append(({"id": env, "displayName": env_names[env],
                                              "region": region, "type": kind}, tenant))
        # the first 4 distinct connections of each tenant, in row order
        picked = []
        for flow_id, env, conn, tenant in self.rows:
            if conn not in [p[0] for p in picked] and sum(p[2] == tenant for p in picked) < 4:
                picked.append((conn, env, tenant))
        self.pp_connections = [(pp_connection(c, conn, tenant, env, env_names[env]), tenant)
                               for c, (conn, env, tenant) in enumerate(picked, start=1)]

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
        out.append("| j | flowId | tenant | environmentId | connections |")
        out.append("|---|---|---|---|---|")
        for j, (flow_id, tenant, env, n) in enumerate(dataset.flows, start=1):
            out.append("| %d | `%s` | %s | `%s` | %d |" % (j, flow_id, tenant, env, n))
        out.append("")
    out.append("| k | appId | displayName | tenant |")
    out.append("|---|---|---|---|")
    for k, (app_id, name, tenant) in enumerate(dataset.pp_apps, start=1):
        out.append("| %d | `%s` | %s | %s |" % (k, app_id, name, tenant))
    out.append("")
    out.append("| environment id | displayName | region | type | tenant |")
    out.append("|---|---|---|---|---|")
    for e, tenant in dataset.pp_environments:
        out.append("| `%s` | %s | %s | %s | %s |" % (e["id"], e["displayName"], e["region"],
                                                    e["type"], tenant))
    out.append("")
    out.append("| c | connection id | tenant | environment | connector | owners | status | isShared |")
    out.append("|---|---|---|---|---|---|---|---|")
    for c, (item, tenant) in enumerate(dataset.pp_connections, start=1):
        out.append("| %d | `%s` | %s | %s | %s | %s | %s | %s |" % (
            c, item["id"], tenant, item["environment"]["displayName"], item["connector"],
            ", ".join(o["displayName"] for o in item["owners"]), item["status"],
            "true" if item["isShared"] else "false"))
    return "\n".join(out)
