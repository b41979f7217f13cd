#!/usr/bin/env python3
"""make demo / make demo-stop, as a user goes through them.

In a demo directory of its own (USAGE_FDW_DEMO_DIR; never the repository's
.demo/, which may be a user's running demo):

  1. scripts/demo.sh start: exits 0 and tells the story (budgets and owners,
     the monthly chargeback, the history table landed again, the batched join
     in EXPLAIN, the four commands for the real APIs); those four commands are
     accepted by the demo's servers and user mappings (run in a copy made for
     it, so the demo keeps talking to the mock);
  2. the demo's view and history procedure are docs/scheduling.md's (the
     recipe's blocks, run in a scratch database, define the same);
  3. a restart as a user does it (pg_cron added to postgresql.conf when it is
     installed, then "pg_ctl restart"): the demo answers again, the mock is
     still reachable; then "demo.sh restart";
  4. demo.sh stop: every postmaster that ran and the mock are gone (by PID),
     then the directory;
  5. again, with the server stopped by hand in between: demo.sh stop still
     stops the mock and cleans up.
"""

import os
import re
import shlex
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fdwtest import check, main, pg_tool, pid_alive, require, run  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO_SH = os.path.join(REPO, "scripts", "demo.sh")
CLUSTER_SH = os.path.join(REPO, "scripts", "cluster.sh")
DOC = os.path.join(REPO, "docs", "scheduling.md")
DB = "usage_demo"

STORY = [
    "=== 1. Budgets and owners",
    "=== 2. The monthly chargeback",
    "OVER BUDGET",
    "=== 3. The history table",
    "rows_of_the_day_landed_again",
    "=== 4. The batched join",
    "Custom Scan (UsageBatchedJoin)",
    "=== 5. The same tables on the real APIs",
    "ALTER SERVER uipath",
    "ALTER USER MAPPING FOR CURRENT_USER SERVER uipath",
    "ALTER SERVER avepoint",
    "ALTER USER MAPPING FOR CURRENT_USER SERVER avepoint",
    "Stop it with:  make demo-stop",
]


class Demo:
    def __init__(self, tmp):
        self.dir = os.path.join(tmp, "demo")
        self.env = dict(os.environ, USAGE_FDW_DEMO_DIR=self.dir)
        self.pg = {}
        self.postmasters = set()
        self.mock_pid = None

    def sh(self, cmd, timeout=600):
        return run(["bash", DEMO_SH, cmd], timeout=timeout, env=self.env, cwd=REPO)

    def read_env(self):
        with open(os.path.join(self.dir, "env.sh"), encoding="utf-8") as f:
            for line in f:
                if line.startswith("export "):
                    k, _, v = line[len("export "):].strip().partition("=")
                    self.pg[k] = shlex.split(v)[0] if v else ""
        with open(os.path.join(self.dir, "mock.pid"), encoding="utf-8") as f:
            self.mock_pid = int(f.read().strip())
        self.note_postmaster()

    def datadir(self):
        return os.path.join(self.pg["PGHOST"], "data")

    def note_postmaster(self):
        try:
            with open(os.path.join(self.datadir(), "postmaster.pid"), encoding="utf-8") as f:
                pid = int(f.readline().strip())
        except (OSError, ValueError):
            return None
        self.postmasters.add(pid)
        return pid

    def psql(self, sql, db=DB, variables=None):
        cmd = [pg_tool("psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-h", self.pg["PGHOST"],
               "-p", self.pg["PGPORT"], "-U", self.pg["PGUSER"], "-d", db]
        for k, v in (variables or {}).items():
            cmd += ["-v", "%s=%s" % (k, v)]
        return run(cmd + ["-f", "-"], input=sql, timeout=120)

    def as_pg(self, cmd):
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        return run(cmd, timeout=120, cwd="/")

    def pg_ctl(self, *args):
        bindir = run([os.environ.get("PG_CONFIG") or shutil.which("pg_config") or "pg_config",
                      "--bindir"]).stdout.strip()
        return self.as_pg([os.path.join(bindir, "pg_ctl"), *args, "-D", self.datadir()])

    def left(self):
        """What still runs of what this demo started."""
        out = ["postgres %d" % p for p in sorted(self.postmasters) if pid_alive(p, "postgres")]
        if self.mock_pid and pid_alive(self.mock_pid, "mock_api"):
            out.append("mock %d" % self.mock_pid)
        return out

    def cleanup(self):
        if os.path.isdir(self.dir):
            run(["bash", CLUSTER_SH, "stop", self.dir], timeout=120)


def recipe_blocks():
    with open(DOC, encoding="utf-8") as f:
        text = f.read()
    out = {}
    for m in re.finditer(r"^```sql (?:runnable|illustration)\n(.*?)^```\s*$", text, re.S | re.M):
        first = m.group(1).split("\n", 1)[0]
        mark = re.match(r"--\s*recipe:\s*(\S+)", first)
        if mark:
            out[mark.group(1)] = m.group(1)
    return out


def pg_cron_installed():
    pgc = os.environ.get("PG_CONFIG") or shutil.which("pg_config") or "pg_config"
    lib = run([pgc, "--pkglibdir"]).stdout.strip()
    return os.path.exists(os.path.join(lib, "pg_cron.so"))


DEFINITIONS = """
SELECT 'view: ' || pg_get_viewdef('usage.monthly_robot_units'::regclass)
UNION ALL
SELECT 'index: ' || regexp_replace(indexdef, ' ON \\S+ ', ' ')
  FROM pg_indexes WHERE schemaname = 'usage' AND tablename = 'monthly_robot_units'
UNION ALL
SELECT 'procedure: ' || prosrc FROM pg_proc WHERE proname = 'land_daily_consumption'
UNION ALL
SELECT 'table: ' || string_agg(attname || ' ' || format_type(atttypid, atttypmod) ||
                                CASE WHEN attnotnull THEN ' not null' ELSE '' END, ', ' ORDER BY attnum)
  FROM pg_attribute WHERE attrelid = 'usage_history.daily_consumption'::regclass AND attnum > 0
UNION ALL
SELECT 'key: ' || pg_get_constraintdef(oid) FROM pg_constraint
 WHERE conrelid = 'usage_history.daily_consumption'::regclass AND contype = 'p';
"""


def test():
    tmp = tempfile.mkdtemp(prefix="usage_fdw_demo.")
    demo = Demo(tmp)
    try:
        # 1. make demo
        r = demo.sh("start")
        out = r.stdout + r.stderr
        require("demo.sh start", r.returncode == 0, out[-3000:])
        missing = [s for s in STORY if s not in out]
        check("the demo tells the story (%d markers)" % len(STORY), not missing,
              "missing: %s\n%s" % (missing, out[-3000:]))
        demo.read_env()

        # the four commands are accepted (in a copy, so the demo keeps the mock)
        with open(os.path.join(REPO, "demo", "connect-real-apis.sql"), encoding="utf-8") as f:
            four = f.read()
        check("demo/connect-real-apis.sql holds four commands",
              len(re.findall(r"^ALTER (SERVER|USER MAPPING)", four, re.M)) == 4, four)
        r = demo.psql("CREATE DATABASE demo_copy TEMPLATE %s" % DB, db="postgres")
        require("a copy of the demo database", r.returncode == 0, r.stderr)
        r = demo.psql(four + "\nSELECT srvname || ' ' || array_to_string(srvoptions, ',') "
                      "FROM pg_foreign_server ORDER BY 1;", db="demo_copy")
        check("the four commands are accepted", r.returncode == 0 and "base_url=https://graph-us" in r.stdout
              and "scope=" in r.stdout, r.stdout + r.stderr)
        demo.psql("DROP DATABASE demo_copy", db="postgres")

        # 2. the demo's definitions are the document's
        blocks = recipe_blocks()
        r = demo.psql("CREATE DATABASE doc_recipe", db="postgres")
        require("a scratch database", r.returncode == 0, r.stderr)
        r = demo.psql("".join(blocks[n] + "\n" for n in ("servers", "view", "history")), db="doc_recipe",
                      variables={"mock_url": demo.pg["MOCK_URL"]})
        if check("docs/scheduling.md's recipe runs against the demo's mock", r.returncode == 0, r.stderr):
            a, b = demo.psql(DEFINITIONS), demo.psql(DEFINITIONS, db="doc_recipe")
            check("the demo's view, index, history table and procedure are docs/scheduling.md's",
                  a.returncode == 0 and a.stdout == b.stdout and a.stdout.count("\n") >= 5,
                  "demo:\n%s%s\ndocument:\n%s%s" % (a.stdout, a.stderr, b.stdout, b.stderr))
        demo.psql("DROP DATABASE doc_recipe", db="postgres")

        # 3. a restart as a user does it, e.g. for pg_cron
        before = demo.note_postmaster()
        cron = pg_cron_installed()
        if cron:
            with open(os.path.join(demo.datadir(), "postgresql.conf"), "a", encoding="utf-8") as f:
                f.write("\n# t_demo: docs/scheduling.md\nshared_preload_libraries = 'pg_cron'\n"
                        "cron.database_name = 'usage_demo'\ncron.use_background_workers = on\n"
                        "max_worker_processes = 16\n")
        r = demo.pg_ctl("restart", "-l", demo.pg["USAGE_FDW_PGLOG"], "-m", "fast", "-w", "-t", "60", "-s")
        after = demo.note_postmaster()
        require("pg_ctl restart of the demo cluster%s" % (" with pg_cron preloaded" if cron else ""),
                r.returncode == 0 and after not in (None, before), r.stdout + r.stderr)
        r = demo.psql("\\set QUIET on\n" + open(os.path.join(REPO, "demo", "reports.sql"),
                                                encoding="utf-8").read())
        check("after the restart the reports run again (the mock is still reachable)",
              r.returncode == 0 and "UsageBatchedJoin" in r.stdout, r.stderr)
        if cron:
            r = demo.psql("CREATE EXTENSION pg_cron; SELECT count(*) FROM cron.job;")
            check("pg_cron works in the restarted demo", r.returncode == 0, r.stderr)
        r = demo.sh("restart", timeout=120)
        again = demo.note_postmaster()
        check("demo.sh restart", r.returncode == 0 and again not in (None, after)
              and demo.psql("SELECT 1").returncode == 0, r.stdout + r.stderr)

        # 4. make demo-stop
        r = demo.sh("stop", timeout=120)
        check("demo.sh stop after restarts: stopped (%d postmasters, the mock), directory removed"
              % len(demo.postmasters),
              r.returncode == 0 and "demo: stopped" in r.stdout and not demo.left()
              and not os.path.exists(demo.dir),
              "rc %d, still running: %s, directory %s\n%s%s"
              % (r.returncode, demo.left(), "left" if os.path.exists(demo.dir) else "removed",
                 r.stdout, r.stderr))

        # 5. the server stopped by hand in between
        demo.postmasters, demo.mock_pid = set(), None
        r = demo.sh("start")
        require("demo.sh start again", r.returncode == 0, (r.stdout + r.stderr)[-3000:])
        demo.read_env()
        r = demo.pg_ctl("stop", "-m", "fast", "-w", "-s")
        check("pg_ctl stop by hand", r.returncode == 0, r.stderr)
        r = demo.sh("stop", timeout=120)
        check("demo.sh stop after a manual pg_ctl stop: the mock stopped, directory removed",
              r.returncode == 0 and not demo.left() and not os.path.exists(demo.dir),
              "rc %d, still running: %s\n%s%s" % (r.returncode, demo.left(), r.stdout, r.stderr))
    finally:
        demo.cleanup()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main(test)
