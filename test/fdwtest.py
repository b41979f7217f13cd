"""Shared helpers of the integration tests (test/t_*.py).

Each test counts its checks with check(), runs PostgreSQL client programs
found by pg_tool(), talks to the mock's control interface with mock(), and
ends with finish(), which prints the "N passed, N failed" line that
scripts/test.sh adds up and exits non-zero on any failure.
"""

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request

PASSED = 0
FAILED = 0


def check(name, ok, detail=""):
    """Record one check; print it; return ok."""
    global PASSED, FAILED
    if ok:
        PASSED += 1
        print("ok    %s" % name, flush=True)
    else:
        FAILED += 1
        print("FAIL  %s%s" % (name, ("\n      " + str(detail).replace("\n", "\n      ")) if detail else ""),
              flush=True)
    return ok


def finish():
    """Print the closing line and exit with the result."""
    print("%d passed, %d failed" % (PASSED, FAILED), flush=True)
    sys.exit(1 if FAILED else 0)


def pg_tool(name):
    """A PostgreSQL client program: from the bindir of $PG_CONFIG when set (the
    version scripts/test.sh built and started), else from PATH, else from
    pg_config --bindir."""
    pg_config = os.environ.get("PG_CONFIG")
    if not pg_config:
        found = shutil.which(name)
        if found:
            return found
        pg_config = "pg_config"
    bindir = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                            check=True).stdout.strip()
    return os.path.join(bindir, name)


def run(cmd, timeout=60, **kw):
    """Run a command, capturing its output as text."""
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)


def mock(method, path, payload=None):
    """One call to the shared mock's control interface (MOCK_URL); its JSON answer."""
    base = os.environ["MOCK_URL"].rstrip("/")
    data = json.dumps(payload).encode() if payload is not None else None
    req = urllib.request.Request(base + path, data=data, method=method,
                                 headers={"Content-Type": "application/json"} if data else {})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=30) as r:
            return json.loads(r.read())
    except urllib.error.HTTPError as e:
        raise RuntimeError("mock %s %s: HTTP %d: %s" % (method, path, e.code,
                                                       e.read().decode("utf-8", "replace"))) from None


def server_log_path():
    """The cluster's server log (scripts/cluster.sh exports USAGE_FDW_PGLOG)."""
    p = os.environ.get("USAGE_FDW_PGLOG")
    if p:
        return p
    return os.path.join(os.environ.get("PGHOST", ""), "postgres.log")


def drop_database(db):
    """Drop a test's database; warn, never fail, from a finally block."""
    r = run([pg_tool("dropdb"), "--if-exists", "--force", db])
    if r.returncode != 0:
        print("warning: dropdb %s failed: %s" % (db, r.stderr.strip()), flush=True)


def reset_mock_quietly():
    """Reset the shared mock; warn, never fail, from a finally block."""
    try:
        mock("POST", "/_mock/reset")
    except Exception as e:
        print("warning: could not reset the mock: %s" % e, flush=True)
