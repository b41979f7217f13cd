#!/usr/bin/env python3
"""Docs that run: the SQL blocks of README.md and docs/*.md, against the mock.

Every fenced block whose info string starts with `sql` must say what it is:

    ```sql runnable        run by this test
    ```sql illustration    shown only (real credentials, pg_cron, another host, ...)

A plain ```sql block (or any other word after `sql`) fails the test.  The
expected output of a runnable block is the ```text block that follows it
directly (only blank lines between); a runnable block without one must run
without an ERROR, and its output is not compared.

Each file runs in a database of its own (created, then dropped), all its
runnable blocks in order in one psql session, as

    psql -X -q -v mock_url=<mock URL> -d <db>  < the blocks

with stdout and stderr into one stream (as pg_regress reads it), PGTZ=UTC.
What is compared is psql's aligned output as a user sees it with -q: query
results with their "(N rows)" footer, NOTICE/WARNING/ERROR/DETAIL/HINT lines
without psql's "psql:file:line:" prefix, no command tags.  Normalised on both
sides, and nothing else: trailing blanks of each line, blank lines at the start
and end of a block's output, the mock's port (127.0.0.1:<its port> reads
127.0.0.1:PORT), and EXPLAIN ANALYZE's "actual rows=N.00" of PostgreSQL 18 and
later (read as "actual rows=N", as 15 and 17 print it).

Which database a file runs in:

- default (docs/*.md): a new, empty database; :mock_url is the mock that
  make test started (the `test` dataset, $MOCK_URL).  Such a file's first
  runnable block creates what it needs.
- a file holding the line `<!-- t_docs: demo -->` (README.md): a copy of the
  demo database.  This test starts its own mock with the `demo` dataset and
  runs demo/setup.sql and demo/reports.sql in the new database as `make demo`
  does, so the file's blocks are checked as written in the database `make demo`
  leaves.

It prints one check per runnable block and per file, and at the end
"t_docs: ran N runnable blocks (M outputs compared) in F files; I illustrations".

Environment (scripts/test.sh): PGHOST, PGPORT, PGUSER, MOCK_URL.
T_DOCS_FILES="README.md docs/x.md" runs only those files.
"""

import difflib
import glob
import os
import re
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fdwtest import check, drop_database, main, pg_tool, reset_mock_quietly, run  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_MARK = "<!-- t_docs: demo -->"
FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})\s*([^`]*?)\s*$")
MARKER = "@@t_docs end of block %d@@"

STATS = {"ran": 0, "compared": 0, "files": 0, "illustrations": 0}


class Block:
    def __init__(self, line, info, text):
        self.line = line          # 1-based line of the opening fence
        self.info = info          # the info string
        self.text = text
        self.expected = None      # the following ```text block, or None
        self.expected_line = None


def parse(path):
    """The fenced blocks of a Markdown file, in order: [Block]; a ```text block
    right after a ```sql runnable one becomes its .expected."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    blocks = []
    i = 0
    last_end = None   # index of the line after the previous block's closing fence
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, info = m.group(2), m.group(3)
        start = i
        body = []
        i += 1
        while i < len(lines):
            c = FENCE.match(lines[i])
            if c and c.group(2)[0] == fence[0] and len(c.group(2)) >= len(fence) and c.group(3) == "":
                break
            body.append(lines[i])
            i += 1
        b = Block(start + 1, info, "\n".join(body))
        prev = blocks[-1] if blocks else None
        between = lines[last_end:start] if last_end is not None else ["x"]
        if (info == "text" and prev is not None and prev.info.split()[:2] == ["sql", "runnable"]
                and prev.expected is None and all(s.strip() == "" for s in between)):
            prev.expected = b.text
            prev.expected_line = b.line
        blocks.append(b)
        i += 1
        last_end = i
    return blocks


ROWS_FRACTION = re.compile(r"(actual rows=[0-9]+)\.00\b")


def normalise(text, port):
    # PostgreSQL 18 prints EXPLAIN ANALYZE's "actual rows=11.00"; 15 and 17 "rows=11"
    out = [ROWS_FRACTION.sub(r"\1", ln.rstrip()) for ln in text.replace("\r\n", "\n").split("\n")]
    if port:
        out = [ln.replace("127.0.0.1:%s" % port, "127.0.0.1:PORT") for ln in out]
    while out and out[0] == "":
        out.pop(0)
    while out and out[-1] == "":
        out.pop()
    return out


class DemoMock:
    """A mock API with the demo dataset, started and stopped by this test (by PID)."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="t_docs_mock.")
        self.proc = None
        self.url = None

    def start(self):
        port_file = os.path.join(self.dir, "port")
        self.log = open(os.path.join(self.dir, "mock.out"), "w")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(REPO, "test", "mock_api.py"), "--port", "0",
             "--port-file", port_file, "--dataset", "demo"],
            stdout=self.log, stderr=subprocess.STDOUT)
        for _ in range(200):
            if os.path.exists(port_file):
                with open(port_file) as f:
                    port = f.read().strip()
                if port:
                    self.url = "http://127.0.0.1:%s" % port
                    return self.url
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        raise RuntimeError("the demo mock did not start (see %s)" % self.log.name)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc is not None:
            self.log.close()
        subprocess.run(["rm", "-rf", self.dir])


def psql_env():
    env = dict(os.environ)
    for k in ("PGDATABASE", "PGSERVICE", "PGOPTIONS", "PSQLRC"):
        env.pop(k, None)
    env["PGTZ"] = "UTC"
    env["PAGER"] = "cat"
    return env


def run_file(rel, demo_mock):
    path = os.path.join(REPO, rel)
    blocks = parse(path)
    sql_blocks = [b for b in blocks if b.info.split()[:1] == ["sql"]]
    bad = [b for b in sql_blocks if b.info.split() not in (["sql", "runnable"], ["sql", "illustration"])]
    check("%s: every sql block is marked runnable or illustration" % rel, not bad,
          "\n".join("line %d: ```%s" % (b.line, b.info) for b in bad))
    runnable = [b for b in sql_blocks if b.info.split() == ["sql", "runnable"]]
    STATS["illustrations"] += sum(1 for b in sql_blocks if b.info.split() == ["sql", "illustration"])
    STATS["files"] += 1
    if not runnable:
        return

    with open(path, encoding="utf-8") as f:
        demo = DEMO_MARK in f.read()
    if demo:
        mock_url = demo_mock.url or demo_mock.start()
    else:
        mock_url = os.environ["MOCK_URL"]
    port = mock_url.rsplit(":", 1)[1]
    db = "t_docs_" + re.sub(r"[^a-z0-9]+", "_", rel.lower()).strip("_")
    env = psql_env()
    reset_mock_quietly()
    run([pg_tool("dropdb"), "--if-exists", "--force", db], env=env)
    r = run([pg_tool("createdb"), db], env=env)
    if not check("%s: createdb %s" % (rel, db), r.returncode == 0, r.stderr):
        return
    try:
        if demo:
            # what scripts/demo.sh does
            r = run([pg_tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-v", "mock_url=" + mock_url,
                     "-d", db, "-f", os.path.join(REPO, "demo", "setup.sql")], env=env, cwd=REPO, timeout=300)
            if not check("%s: demo/setup.sql ran (the demo database)" % rel, r.returncode == 0,
                         r.stdout + r.stderr):
                return
            r = run([pg_tool("psql"), "-X", "-v", "ON_ERROR_STOP=1", "-v", "mock_url=" + mock_url,
                     "-d", db, "-f", os.path.join(REPO, "demo", "reports.sql")], env=env, cwd=REPO, timeout=300)
            if not check("%s: demo/reports.sql ran (as make demo runs it)" % rel, r.returncode == 0,
                         r.stdout[-2000:] + r.stderr):
                return
        script = []
        for n, b in enumerate(runnable):
            script.append(b.text)
            script.append("\\echo '%s'" % (MARKER % n))
        with tempfile.TemporaryFile(mode="w+", encoding="utf-8") as out:
            p = subprocess.run([pg_tool("psql"), "-X", "-q", "-v", "mock_url=" + mock_url, "-d", db],
                               input="\n".join(script) + "\n", stdout=out, stderr=subprocess.STDOUT,
                               text=True, env=env, cwd=REPO, timeout=600)
            out.seek(0)
            output = out.read()
        parts = []
        rest = output
        for n in range(len(runnable)):
            mark = MARKER % n
            k = rest.find(mark + "\n")
            if k < 0:
                parts.append(None)
                continue
            parts.append(rest[:k])
            rest = rest[k + len(mark) + 1:]
        for n, b in enumerate(runnable):
            STATS["ran"] += 1
            got = parts[n]
            name = "%s: block at line %d" % (rel, b.line)
            if got is None:
                check(name + " ran", False, "psql stopped before its end (exit status %d); output:\n%s"
                      % (p.returncode, rest[-3000:]))
                continue
            if b.expected is None:
                errors = [ln for ln in got.split("\n") if re.match(r"^(psql:.*?: )?(ERROR|FATAL|PANIC):", ln)
                          or ln.startswith("psql: error")]
                check(name + " ran without error", not errors, got.strip())
                continue
            STATS["compared"] += 1
            want = normalise(b.expected, port)
            have = normalise(got, port)
            diff = list(difflib.unified_diff(want, have, "%s:%d (shown)" % (rel, b.expected_line),
                                             "psql output", lineterm=""))
            check(name + " output as shown (line %d)" % b.expected_line, not diff, "\n".join(diff))
    finally:
        drop_database(db)
        reset_mock_quietly()


def files():
    only = os.environ.get("T_DOCS_FILES")
    if only:
        return only.split()
    found = ["README.md"] + sorted(os.path.relpath(p, REPO) for p in glob.glob(os.path.join(REPO, "docs", "*.md")))
    return [f for f in found if os.path.exists(os.path.join(REPO, f))]


def test():
    demo_mock = DemoMock()
    try:
        for rel in files():
            run_file(rel, demo_mock)
    finally:
        demo_mock.stop()
        print("t_docs: ran %d runnable blocks (%d outputs compared) in %d files; %d illustrations"
              % (STATS["ran"], STATS["compared"], STATS["files"], STATS["illustrations"]), flush=True)


if __name__ == "__main__":
    main(test)
