"""A minimal PostgreSQL client over the frontend/backend protocol (v3), for
tests that run thousands of statements and need each one's rows, SQLSTATE
and HINT: starting psql per statement would cost more than the statement.

Standard library only.  It speaks the simple query protocol over the unix
socket of $PGHOST (or TCP when PGHOST is a host name), with trust
authentication only (the test clusters of scripts/cluster.sh use trust):

    c = Connection(dbname="db")            # PGHOST, PGPORT, PGUSER
    r = c.query("SELECT 1, NULL")          # Result
    r.rows == [("1", None)], r.error is None
    r = c.query("SELECT 1/0")
    r.error.sqlstate == "22012", r.error.hint, r.error.message

Values are returned as text (None for NULL), as psql would print them with
the session's settings.  One statement per query() call: with several, the
rows of the last result that has rows are kept.  A lost connection raises
ConnectionLost.
"""

import os
import socket
import struct


class ConnectionLost(Exception):
    """The server closed the connection (or never answered)."""


class PgError:
    """An ErrorResponse: the fields by their protocol code."""

    def __init__(self, fields):
        self.fields = fields
        self.severity = fields.get("V") or fields.get("S")
        self.sqlstate = fields.get("C", "?????")
        self.message = fields.get("M", "")
        self.detail = fields.get("D")
        self.hint = fields.get("H")

    def __str__(self):
        s = "%s %s: %s" % (self.severity, self.sqlstate, self.message)
        if self.detail:
            s += "\nDETAIL: " + self.detail
        if self.hint:
            s += "\nHINT: " + self.hint
        return s


class Result:
    def __init__(self):
        self.columns = []
        self.rows = []
        self.error = None
        self.status = None


class Connection:
    def __init__(self, dbname, user=None, host=None, port=None, params=None, timeout=120):
        host = host or os.environ.get("PGHOST", "/tmp")
        port = int(port or os.environ.get("PGPORT", "5432"))
        user = user or os.environ.get("PGUSER") or os.environ.get("USER", "postgres")
        if host.startswith("/"):
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(os.path.join(host, ".s.PGSQL.%d" % port))
        else:
            self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b""
        startup = {"user": user, "database": dbname, "client_encoding": "UTF8"}
        startup.update(params or {})
        body = struct.pack("!i", 196608) + b"".join(
            k.encode() + b"\0" + v.encode() + b"\0" for k, v in startup.items()) + b"\0"
        self.sock.sendall(struct.pack("!i", len(body) + 4) + body)
        err = None
        while True:
            t, payload = self._read()
            if t == b"R":
                code = struct.unpack("!i", payload[:4])[0]
                if code != 0:
                    raise RuntimeError("pgwire: authentication method %d is not supported (trust only)" % code)
            elif t == b"E":
                err = PgError(self._fields(payload))
            elif t == b"Z":
                break
        if err is not None:
            raise RuntimeError("pgwire: connection refused: %s" % err)

    def close(self):
        try:
            self.sock.sendall(b"X" + struct.pack("!i", 4))
        except OSError:
            pass
        self.sock.close()

    def _recv(self, n):
        while len(self.buf) < n:
            try:
                chunk = self.sock.recv(65536)
            except (socket.timeout, OSError) as e:
                raise ConnectionLost(str(e)) from None
            if not chunk:
                raise ConnectionLost("the server closed the connection")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def _read(self):
        head = self._recv(5)
        t, n = head[:1], struct.unpack("!i", head[1:])[0]
        return t, self._recv(n - 4)

    @staticmethod
    def _fields(payload):
        fields = {}
        for part in payload.split(b"\0"):
            if part:
                fields[chr(part[0])] = part[1:].decode("utf-8", "replace")
        return fields

    def query(self, sql):
        """Run one statement (simple query protocol); a Result."""
        data = sql.encode("utf-8") + b"\0"
        try:
            self.sock.sendall(b"Q" + struct.pack("!i", len(data) + 4) + data)
        except OSError as e:
            raise ConnectionLost(str(e)) from None
        res = Result()
        cur = None
        while True:
            t, p = self._read()
            if t == b"T":
                n = struct.unpack("!h", p[:2])[0]
                cols, off = [], 2
                for _ in range(n):
                    end = p.index(b"\0", off)
                    cols.append(p[off:end].decode("utf-8", "replace"))
                    off = end + 1 + 18
                cur = (cols, [])
            elif t == b"D":
                n = struct.unpack("!h", p[:2])[0]
                off, row = 2, []
                for _ in range(n):
                    ln = struct.unpack("!i", p[off:off + 4])[0]
                    off += 4
                    if ln < 0:
                        row.append(None)
                    else:
                        row.append(p[off:off + ln].decode("utf-8", "replace"))
                        off += ln
                cur[1].append(tuple(row))
            elif t == b"C":
                res.status = p.rstrip(b"\0").decode()
                if cur is not None:
                    res.columns, res.rows = cur
                    cur = None
            elif t == b"E":
                res.error = PgError(self._fields(p))
            elif t == b"Z":
                return res
            # N (notice), S (parameter status), I (empty query), A: ignored
