#!/usr/bin/env python3
"""TLS: certificate verification, the ca_file server option, hostname checks.

A throwaway CA signs two server certificates: one for localhost
(subjectAltName DNS:localhost, IP:127.0.0.1) and one for another name only
(DNS:wronghost).  Two extra mock APIs serve HTTPS with them, on free ports.
In a database of its own the test creates an avepoint server pointing at
https://localhost:PORT and checks that

  - without ca_file the query fails with SQLSTATE HV00N, a message about the
    certificate, and the mock saw no request (the handshake failed);
  - with ca_file = the CA the 10 rows of the test dataset come back, also
    paged over TLS (page_size 3: 4 requests, nextLink https://...), and by
    IP address (the certificate's IP:127.0.0.1);
  - the certificate for another name fails even with ca_file (hostname
    verification), again with no request reaching the mock;
  - a ca_file that does not exist is an error, not a silent fallback.

Environment (scripts/test.sh, or scripts/cluster.sh's env.sh): PGHOST, PGPORT,
PGUSER; the extension installed.  Needs openssl.  Prints its checks and ends
with "N passed, N failed"; exits non-zero on any failure.
"""

import contextlib
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fdwtest import check, database, main, pg_tool, require, run, scratch_dir  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
MOCK = os.path.join(HERE, "mock_api.py")
MOCKCTL = os.path.join(HERE, "mockctl.py")
DB = "usage_fdw_t_tls"
ENDPOINT = "cloud_flow_connection_usage"


PSQL = pg_tool("psql")


def psql(sql, db=DB):
    """Run SQL in a new session (verbose errors: 'ERROR:  SQLSTATE: message').
    Returns (ok, stdout, sqlstate or None, error text)."""
    r = subprocess.run([PSQL, "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-v", "VERBOSITY=verbose",
                        "-d", db],
                       input="\\set VERBOSITY verbose\n" + sql, capture_output=True, text=True,
                       timeout=60)
    m = re.search(r"^ERROR:\s+([0-9A-Z]{5}): (.*)$", r.stderr, re.M)
    return r.returncode == 0, r.stdout, (m.group(1) if m else None), r.stderr.strip()


def first_error(err):
    """The ERROR and DETAIL lines of psql's verbose error output."""
    return " / ".join(l.strip() for l in err.splitlines() if l.startswith(("ERROR:", "DETAIL:")))


# --- certificates ---------------------------------------------------------------

def make_pki(d):
    """A CA and two server certificates signed by it; returns their paths."""
    openssl = shutil.which("openssl")
    if not openssl:
        raise RuntimeError("openssl not found (scripts/deps.sh installs it)")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    ca_key, ca_pem = os.path.join(d, "ca.key"), os.path.join(d, "ca.pem")
    r = run([openssl, "req", "-x509", *ec, "-keyout", ca_key, "-out", ca_pem, "-days", "2",
             "-subj", "/CN=usage_fdw throwaway test CA",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign"])
    if r.returncode != 0:
        raise RuntimeError("openssl req (CA) failed: %s" % r.stderr)
    certs = {}
    for name, san in (("localhost", "DNS:localhost,IP:127.0.0.1"), ("wronghost", "DNS:wronghost")):
        key = os.path.join(d, name + ".key")
        csr = os.path.join(d, name + ".csr")
        pem = os.path.join(d, name + ".pem")
        ext = os.path.join(d, name + ".ext")
        with open(ext, "w", encoding="ascii") as f:
            f.write("basicConstraints=CA:FALSE\n"
                    "keyUsage=critical,digitalSignature,keyEncipherment\n"
                    "extendedKeyUsage=serverAuth\n"
                    "subjectAltName=%s\n" % san)
        r = run([openssl, "req", "-new", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=" + name])
        if r.returncode != 0:
            raise RuntimeError("openssl req (%s) failed: %s" % (name, r.stderr))
        r = run([openssl, "x509", "-req", "-in", csr, "-CA", ca_pem, "-CAkey", ca_key,
                 "-set_serial", str(int.from_bytes(os.urandom(8), "big")), "-days", "2",
                 "-extfile", ext, "-out", pem])
        if r.returncode != 0:
            raise RuntimeError("openssl x509 (%s) failed: %s" % (name, r.stderr))
        certs[name] = (pem, key)
    # the backend runs as the postgres user: it must be able to read the CA
    os.chmod(d, 0o755)
    os.chmod(ca_pem, 0o644)
    return ca_pem, certs


# --- TLS mocks ------------------------------------------------------------------

class Mock:
    def __init__(self, d, name, cert, key):
        self.port_file = os.path.join(d, name + ".port")
        self.log_file = os.path.join(d, name + ".log")
        self.out = open(os.path.join(d, name + ".out"), "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-u", MOCK, "--port", "0", "--port-file", self.port_file,
             "--log-file", self.log_file, "--tls-cert", cert, "--tls-key", key],
            stdin=subprocess.DEVNULL, stdout=self.out, stderr=subprocess.STDOUT)
        self.port = None
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("mock %s exited during start-up (see %s)" % (name, self.out.name))
            try:
                with open(self.port_file, encoding="ascii") as f:
                    self.port = int(f.read().strip())
                break
            except (OSError, ValueError):
                time.sleep(0.05)
        if self.port is None:
            raise RuntimeError("mock %s wrote no port file in 15 s" % name)

    def log_events(self):
        """The mock's log file: (request records, handshake/connection errors)."""
        reqs, errors = [], []
        with open(self.log_file, encoding="utf-8") as f:
            for line in f:
                rec = json.loads(line)
                if "seq" in rec:
                    reqs.append(rec)
                elif rec.get("event") == "connection_error":
                    errors.append(rec)
        return reqs, errors

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.out.close()


def mockctl(mock, ca_pem, *args):
    env = dict(os.environ, MOCK_URL="https://localhost:%d" % mock.port, MOCK_CA_FILE=ca_pem)
    r = run([sys.executable, MOCKCTL, *args], env=env)
    if r.returncode != 0:
        raise RuntimeError("mockctl %s: %s" % (" ".join(args), r.stderr.strip()))
    return r.stdout


# --- the test -------------------------------------------------------------------

def sql_literal(s):
    return "'" + s.replace("'", "''") + "'"


def test():
    with scratch_dir("usage_fdw_t_tls.") as tmp, contextlib.ExitStack() as cleanup:
        ca_pem, certs = make_pki(tmp)
        good = Mock(tmp, "mock_localhost", *certs["localhost"])
        cleanup.callback(good.stop)
        wrong = Mock(tmp, "mock_wronghost", *certs["wronghost"])
        cleanup.callback(wrong.stop)
        print("TLS mocks: localhost cert on port %d, wronghost cert on port %d; CA %s"
              % (good.port, wrong.port, ca_pem), flush=True)

        # the mock itself, through mockctl with the CA: https works
        health = json.loads(urllib.request.build_opener(
            urllib.request.ProxyHandler({}),
            urllib.request.HTTPSHandler(context=ssl.create_default_context(cafile=ca_pem)))
            .open("https://localhost:%d/_mock/health" % good.port, timeout=10).read())
        check("the mock serves HTTPS with the localhost certificate", health.get("tls") is True, health)
        mockctl(good, ca_pem, "reset")

        # this test's own mocks: the shared one is not used (nor reset)
        cleanup.enter_context(database(DB, created=None, reset_mock=False))
        ok, out, st, err = psql("""
CREATE EXTENSION usage_fdw;
CREATE SERVER tls FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'avepoint', base_url 'https://localhost:%d', max_retries '1',
           connect_timeout_ms '5000', timeout_ms '10000');
CREATE USER MAPPING FOR CURRENT_USER SERVER tls OPTIONS (access_token 'test-token');
CREATE FOREIGN TABLE flows (flow_id text, environment_id text, connection_id text, tenant text)
  SERVER tls OPTIONS (endpoint '%s');
CREATE FOREIGN TABLE flows3 (flow_id text, connection_id text)
  SERVER tls OPTIONS (endpoint '%s', page_size '3');
""" % (good.port, ENDPOINT, ENDPOINT))
        require("setup: extension, server https://localhost:%d, user mapping, tables" % good.port, ok, err)

        # 1. no ca_file: the system store does not know our CA
        ok, out, st, err = psql("SELECT count(*) FROM flows;")
        check("without ca_file: the query fails", not ok, out)
        print("      error: %s" % first_error(err), flush=True)
        check("without ca_file: SQLSTATE HV00N", st == "HV00N", err)
        check("without ca_file: the message is about the certificate",
              re.search(r"certificate", err, re.I) is not None, err)
        check("without ca_file: the HINT names ca_file", "ca_file" in err, err)
        reqs = int(mockctl(good, ca_pem, "count"))
        check("without ca_file: no API request reached the mock (mockctl count = %d)" % reqs, reqs == 0)
        logged, hs_errors = good.log_events()
        check("without ca_file: the mock's log shows %d failed handshake(s) and no request"
              % len(hs_errors), len(hs_errors) >= 1 and not logged,
              "requests: %s\nerrors: %s" % (logged, hs_errors))

        # 2. ca_file = our CA: the whole dataset, and paging over TLS
        ok, out, st, err = psql("ALTER SERVER tls OPTIONS (ADD ca_file %s);" % sql_literal(ca_pem))
        check("ALTER SERVER ... OPTIONS (ADD ca_file '<ca.pem>')", ok, err)
        mockctl(good, ca_pem, "reset")
        ok, out, st, err = psql("SELECT flow_id, environment_id, connection_id FROM flows ORDER BY connection_id;")
        rows = out.split()
        want = ["flow-%04d|env-%02d|conn-%05d" % (i // 2 + 1, (i // 2) % 3 + 1, i + 1) for i in range(10)]
        check("with ca_file: the 10 rows of the test dataset", ok and rows == want, err or out)
        n = int(mockctl(good, ca_pem, "count"))
        check("with ca_file: one request (page_size 1000), got %d" % n, n == 1)

        mockctl(good, ca_pem, "reset")
        ok, out, st, err = psql("SELECT string_agg(connection_id, ',' ORDER BY connection_id) FROM flows3;")
        check("with ca_file, page_size 3: all 10 rows", ok and out.strip() == ",".join(
            "conn-%05d" % i for i in range(1, 11)), err or out)
        lines = mockctl(good, ca_pem, "requests").splitlines()
        want_lines = 4
        check("paging over TLS: %d requests (top=3, then 3 nextLinks), all 200" % len(lines),
              len(lines) == want_lines and all(l.endswith("-> 200") for l in lines)
              and all("top=3" in l for l in lines) and sum("skiptoken=" in l for l in lines) == 3,
              "\n".join(lines))
        conns = int(mockctl(good, ca_pem, "conns"))
        check("paging over TLS: the pages reuse one TLS connection (%d)" % conns, conns == 1)

        # by IP address: the certificate's IP:127.0.0.1
        ok, out, st, err = psql("ALTER SERVER tls OPTIONS (SET base_url 'https://127.0.0.1:%d');\n"
                                "SELECT count(*) FROM flows3;" % good.port)
        check("base_url https://127.0.0.1:PORT (IP subjectAltName): 10 rows",
              ok and out.strip() == "10", err or out)
        ok, out, st, err = psql("SELECT count(*) FROM flows WHERE flow_id IN ('flow-0001', 'flow-0002', 'flow-0003');")
        check("fan-out over TLS (3 requests): 6 rows", ok and out.strip() == "6", err or out)

        # 3. a certificate for another name: hostname verification fails
        ok, out, st, err = psql("ALTER SERVER tls OPTIONS (SET base_url 'https://localhost:%d');\n"
                                "SELECT count(*) FROM flows;" % wrong.port)
        check("wronghost certificate, with ca_file: the query fails", not ok, out)
        print("      error: %s" % first_error(err), flush=True)
        check("wronghost certificate: SQLSTATE HV00N", st == "HV00N", err)
        check("wronghost certificate: the message is about the certificate / host name",
              re.search(r"certificate|host ?name", err, re.I) is not None, err)
        ok, out, st, err = psql("ALTER SERVER tls OPTIONS (SET base_url 'https://127.0.0.1:%d');\n"
                                "SELECT count(*) FROM flows;" % wrong.port)
        check("wronghost certificate by IP address: fails with HV00N", not ok and st == "HV00N", err)
        # libcurl checks the host name once the handshake is done, then closes
        # the connection: the mock may log no handshake error, but no request
        logged, hs_errors = wrong.log_events()
        check("wronghost: the mock's log shows no request (%d handshake error(s) logged)" % len(hs_errors),
              not logged, "requests: %s\nerrors: %s" % (logged, hs_errors))

        # 4. a ca_file that does not exist
        ok, out, st, err = psql("ALTER SERVER tls OPTIONS (SET base_url 'https://localhost:%d', "
                                "SET ca_file '/nonexistent/usage_fdw/ca.pem');\n"
                                "SELECT count(*) FROM flows;" % good.port)
        check("a ca_file that does not exist: an error (%s)" % st,
              not ok and st is not None and st.startswith("HV"), err)

        # back to the good setup: the session-independent state is fine
        ok, out, st, err = psql("ALTER SERVER tls OPTIONS (SET ca_file %s);\n"
                                "SELECT count(*) FROM flows;" % sql_literal(ca_pem))
        check("ca_file restored: 10 rows again", ok and out.strip() == "10", err or out)


if __name__ == "__main__":
    main(test)
