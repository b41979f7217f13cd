"""Shared helpers of the integration tests (test/t_*.py).

A test is a function run by main(), inside a `with database(...)`:

    def test():
        with database(DB, SETUP, setup="setup: ..."):
            mock.reset()
            ...
            check("name", ok, detail)

    if __name__ == "__main__":
        main(test)

check() counts and prints one check; database() creates the test's
database (dropping a leftover first; a failed createdb or setup is a failed
check and ends the test), runs the setup script, and always drops it and
resets the shared mock afterwards; mock is the one client of the mock's
control interface (mockctl.MockClient on $MOCK_URL); pg_tool() finds the
PostgreSQL client programs; main() turns an unexpected exception into a
failed check "no unexpected exception", lets a timeout's SIGTERM still run
the clean-ups, and prints the "N passed, N failed" line that
scripts/test.sh adds up (exit status 1 on any failure).
"""

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import traceback

from mockctl import MockClient

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


# the shared mock ($MOCK_URL): mock(method, path[, payload]) -> JSON answer,
# or mock.reset(), mock.config({...}), mock.add_faults([...]), mock.requests(), ...
mock = MockClient()


def server_log_path():
    """The cluster's server log (scripts/cluster.sh exports USAGE_FDW_PGLOG)."""
    p = os.environ.get("USAGE_FDW_PGLOG")
    if p:
        return p
    return os.path.join(os.environ.get("PGHOST", ""), "postgres.log")


class ServerLog:
    """The server log from now on: .path, .found (it exists now), .new_text()."""

    def __init__(self):
        self.path = server_log_path()
        self.offset = os.path.getsize(self.path) if os.path.exists(self.path) else None
        self.found = self.offset is not None

    def new_text(self):
        """What the server wrote to its log since this object was made ("" if no log)."""
        if self.offset is None or not os.path.exists(self.path):
            return ""
        with open(self.path, encoding="utf-8", errors="replace") as f:
            f.seek(self.offset)
            return f.read()


class Abort(Exception):
    """Ends a test quietly: the failure has been recorded by check()."""


def require(name, ok, detail=""):
    """check(); on failure, end the test (the clean-ups still run)."""
    if not check(name, ok, detail):
        raise Abort(name)
    return ok


def psql_script(db, sql, variables=None, user=None, timeout=60, extra=()):
    """Run a script with psql -f - (ON_ERROR_STOP, -v mock_url=$MOCK_URL and
    each of variables); the CompletedProcess."""
    cmd = [pg_tool("psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", db, *extra]
    if user:
        cmd += ["-U", user]
    if "MOCK_URL" in os.environ:
        cmd += ["-v", "mock_url=" + os.environ["MOCK_URL"]]
    for k, v in (variables or {}).items():
        cmd += ["-v", "%s=%s" % (k, v)]
    return run(cmd + ["-f", "-"], input=sql, timeout=timeout)


@contextlib.contextmanager
def database(name, setup_sql=None, *, created="createdb %s", setup=None, variables=None,
             reset_mock=True):
    """Create database `name` (dropping a leftover first) and run setup_sql in it
    (psql_script: :'mock_url' and `variables` are set); yield; always drop it
    and, with reset_mock, reset the shared mock.

    created: the name of the check that createdb worked ("%s": the database),
    or None for no check (a failure raises RuntimeError).  setup: the name of
    the check that setup_sql ran, or None for no check (a failure raises
    RuntimeError).  A failed check ends the test (Abort)."""
    made = False
    try:
        run([pg_tool("dropdb"), "--if-exists", "--force", name])
        r = run([pg_tool("createdb"), name])
        if created is None:
            if r.returncode != 0:
                raise RuntimeError("createdb failed: %s" % r.stderr)
        else:
            require(created.replace("%s", name), r.returncode == 0, r.stderr)
        made = True
        if setup_sql is not None:
            r = psql_script(name, setup_sql, variables)
            if setup is None:
                if r.returncode != 0:
                    raise RuntimeError("psql failed: %s" % r.stderr.strip())
            else:
                require(setup, r.returncode == 0, r.stderr)
        yield name
    finally:
        if made:
            drop_database(name)
        if reset_mock:
            reset_mock_quietly()


@contextlib.contextmanager
def scratch_dir(prefix, keep_env=None):
    """A temporary directory, removed afterwards (kept, and named, when the
    environment variable keep_env is set)."""
    tmp = tempfile.mkdtemp(prefix=prefix)
    try:
        yield tmp
    finally:
        if keep_env and os.environ.get(keep_env):
            print("kept %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main(test):
    """Run test(): an exception other than Abort is a failed check "no
    unexpected exception"; a SIGTERM (a timeout) exits through the clean-ups.
    Then finish()."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    try:
        test()
    except Abort:
        pass
    except Exception:  # noqa: BLE001 - report, then fail
        check("no unexpected exception", False, traceback.format_exc())
    finish()


def drop_database(db):
    """Drop a test's database; warn, never fail, from a finally block."""
    r = run([pg_tool("dropdb"), "--if-exists", "--force", db])
    if r.returncode != 0:
        print("warning: dropdb %s failed: %s" % (db, r.stderr.strip()), flush=True)


def pid_alive(pid, pattern):
    """Is process pid running, with pattern in its command line (so that a
    PID used again by another program does not count)?"""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            cmd = f.read().replace(b"\0", b" ").decode("utf-8", "replace")
    except OSError:
        return False
    return bool(cmd) and pattern in cmd


def reset_mock_quietly():
    """Reset the shared mock; warn, never fail, from a finally block."""
    try:
        mock("POST", "/_mock/reset")
    except Exception as e:
        print("warning: could not reset the mock: %s" % e, flush=True)
