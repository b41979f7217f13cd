#!/usr/bin/env python3
"""pg_cron for real: docs/scheduling.md's recipe, run by pg_cron, in both modes.

The recipe is the document's own text: the fenced blocks whose first line is
"-- recipe: NAME" (SQL) or "# recipe: NAME" (postgresql.conf lines).  For each
of pg_cron's two modes, one cluster of this test's own (scripts/cluster.sh:
initdb, a free port, a unix socket, its own mock API with the test dataset):

  1. createdb usage_demo, then the mode's postgresql.conf lines from the
     document (libpq mode: cron.host is this cluster's socket directory, where
     the document says Debian's), then "pg_ctl restart" as a user does it;
  2. the recipe blocks: servers (pointed at the mock), view, history (its
     first CALLs land 30 days), pg_cron, schedule;
  3. a run that succeeds: the mock patches every item (consumedBySelf 4242,
     consumedAmount 777) so that what the jobs wrote is recognisable; the two
     jobs get a fast schedule (cron.alter_job: '2 seconds' with pg_cron >= 1.5,
     else '* * * * *', the next minute); wait for a succeeded run of each;
     the view then holds 4242s, yesterday's history rows 777s;
  4. jobs paused, view and history saved; the mock answers 503 to every usage
     request; jobs resumed; wait for a failed run of each;
  5. the "unschedule" block; cron.job_run_details shows succeeded and failed
     runs of both jobs (the failure is the API's 503, not "connection
     failed"); the view and the history table are exactly as saved;
  6. scripts/cluster.sh stop: the postmaster of after the restart and the
     mock are gone (checked by PID).

The two clusters run side by side, so a minute-granularity pg_cron (1.4,
Debian bookworm) costs two minute boundaries in all.  Every wait is bounded.

Without pg_cron for the PostgreSQL under test (no pg_cron.so in pg_config
--pkglibdir; scripts/deps.sh installs postgresql-N-cron when the archive has
it) the document is still checked for its recipe blocks, and the rest is
reported as SKIP.
"""

import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fdwtest import check, main, pg_tool, pid_alive, run  # noqa: E402
from mockctl import MockClient  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(REPO, "docs", "scheduling.md")
CLUSTER_SH = os.path.join(REPO, "scripts", "cluster.sh")

SQL_RECIPES = ["servers", "view", "history", "pg_cron", "schedule", "runs", "unschedule"]
CONF_RECIPES = {"bgworker": "postgresql.conf, background workers", "libpq": "postgresql.conf, libpq"}
JOBS = ["usage-refresh-monthly-robot-units", "usage-land-daily-consumption"]

RU_PATCH = 4242      # consumedBySelf of every consumption-by-folder item during the good run
DAILY_PATCH = 777    # consumedAmount of every daily-consumption item during the good run

WAIT_RUN = 150       # s: for a run of each job (two minute boundaries at worst)
WAIT_IDLE = 60       # s: for runs in progress to end


def say(msg):
    print(msg, flush=True)


# --- the document ---------------------------------------------------------------

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})\s*([^`]*?)\s*$")


def recipe_blocks(path):
    """{name: (info, text)} of the fenced blocks whose first line is a recipe mark."""
    with open(path, encoding="utf-8") as f:
        lines = f.read().split("\n")
    out = {}
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, info = m.group(1), m.group(2)
        body = []
        i += 1
        while i < len(lines):
            c = FENCE.match(lines[i])
            if c and c.group(1)[0] == fence[0] and len(c.group(1)) >= len(fence) and c.group(2) == "":
                break
            body.append(lines[i])
            i += 1
        i += 1
        if body:
            mark = re.match(r"^\s*(?:--|#)\s*recipe:\s*(.+?)\s*$", body[0])
            if mark:
                # the name, without a remark in parentheses
                out[mark.group(1).split(" (")[0].strip()] = (info, "\n".join(body) + "\n")
    return out


def conf_settings(text):
    """[(name, value text)] of postgresql.conf lines (comments dropped)."""
    out = []
    for line in text.split("\n"):
        line = re.sub(r"\s+#.*$", "", line).strip()
        if not line or line.startswith("#"):
            continue
        name, _, value = line.partition("=")
        out.append((name.strip(), value.strip()))
    return out


def sql_name(name):
    """The recipe's names, as a pg_cron job's: SQL literals for an IN list."""
    return ", ".join("'%s'" % j for j in name)


# --- processes ------------------------------------------------------------------

def postmaster_pid(datadir):
    try:
        with open(os.path.join(datadir, "postmaster.pid"), encoding="utf-8") as f:
            return int(f.readline().strip())
    except (OSError, ValueError):
        return None


def pg_config_path():
    return os.environ.get("PG_CONFIG") or shutil.which("pg_config") or "pg_config"


def pg_config(flag):
    return run([pg_config_path(), flag]).stdout.strip()


# --- one cluster, one mode ------------------------------------------------------

class Mode:
    def __init__(self, name, conf_text, tmp):
        self.name = name
        self.conf_text = conf_text
        self.dir = os.path.join(tmp, name)
        self.env = {}
        self.started = False
        self.db = None
        self.mock = None
        self.pids = {}
        self.seconds = False
        self.t_fault = None
        self.saved = None
        self.checks = 0
        self.failed = 0
        self.finished = False     # went through to the last check

    def ok(self, what, cond, detail=""):
        self.checks += 1
        if not cond:
            self.failed += 1
        return check("%s: %s" % (self.name, what), cond, detail)

    # psql against this cluster
    def psql(self, sql, db=None, timeout=120, variables=None):
        cmd = [pg_tool("psql"), "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1",
               "-h", self.env["PGHOST"], "-p", self.env["PGPORT"], "-U", self.env["PGUSER"],
               "-d", db or self.db]
        for k, v in (variables or {}).items():
            cmd += ["-v", "%s=%s" % (k, v)]
        return run(cmd + ["-f", "-"], input=sql, timeout=timeout)

    def q(self, sql):
        r = self.psql(sql)
        if r.returncode != 0:
            raise RuntimeError("%s: %s: %s" % (self.name, sql.strip()[:80], r.stderr.strip()))
        return r.stdout.strip()

    def as_pg(self, cmd):
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--"] + cmd
        return run(cmd, timeout=120, cwd="/")

    def start(self, conf, blocks):
        os.makedirs(self.dir)
        self.started = True
        r = run(["bash", CLUSTER_SH, "start", self.dir, "--dataset", "test"], timeout=180)
        if not self.ok("cluster and mock started", r.returncode == 0, r.stderr[-2000:]):
            return False
        with open(os.path.join(self.dir, "env.sh"), encoding="utf-8") as f:
            for line in f:
                if line.startswith("export "):
                    k, _, v = line[len("export "):].strip().partition("=")
                    self.env[k] = shlex.split(v)[0] if v else ""
        self.mock = MockClient(base=self.env["MOCK_URL"])
        self.db = dict(conf).get("cron.database_name", "'postgres'").strip("'")
        r = run([pg_tool("createdb"), "-h", self.env["PGHOST"], "-p", self.env["PGPORT"],
                 "-U", self.env["PGUSER"], self.db])
        if not self.ok("createdb %s" % self.db, r.returncode == 0, r.stderr):
            return False

        # the document's lines; in libpq mode the socket directory is this cluster's
        datadir = os.path.join(self.env["PGHOST"], "data")
        lines = ["", "# --- t_cron: docs/scheduling.md, %s ---" % self.name]
        for k, v in conf:
            if k == "cron.host":
                v = "'%s'" % self.env["PGHOST"]
            lines.append("%s = %s" % (k, v))
        with open(os.path.join(datadir, "postgresql.conf"), "a", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")

        # restarted as a user does it: pg_ctl restart, with the cluster's own log
        before = postmaster_pid(datadir)
        r = self.as_pg([os.path.join(pg_config("--bindir"), "pg_ctl"), "restart", "-D", datadir,
                        "-l", self.env["USAGE_FDW_PGLOG"], "-m", "fast", "-w", "-t", "60", "-s"])
        after = postmaster_pid(datadir)
        self.pids["postgres"] = after
        if not self.ok("pg_ctl restart with pg_cron preloaded",
                       r.returncode == 0 and after is not None and after != before,
                       "rc %d, postmaster %s -> %s\n%s%s" % (r.returncode, before, after, r.stdout, r.stderr)):
            return False
        try:
            with open(os.path.join(self.dir, "mock.pid"), encoding="utf-8") as f:
                self.pids["mock"] = int(f.read().strip())
        except (OSError, ValueError):
            pass

        mode = self.q("SHOW cron.use_background_workers")
        want = "on" if self.name == "bgworker" else "off"
        if not self.ok("cron.use_background_workers is %s" % want, mode == want, mode):
            return False

        # the recipe, as written, in the document's order
        script = "".join(blocks[n][1] for n in ["servers", "view", "history", "pg_cron", "schedule"])
        r = self.psql(script, variables={"mock_url": self.env["MOCK_URL"]})
        if not self.ok("recipe blocks servers, view, history, pg_cron, schedule run",
                       r.returncode == 0, r.stderr):
            return False
        jobs = self.q("SELECT jobname || ' ' || nodename FROM cron.job WHERE jobname IN (%s) ORDER BY 1"
                      % sql_name(JOBS)).split("\n")
        self.ok("both jobs scheduled", [j.split(" ")[0] for j in jobs] == sorted(JOBS), jobs)
        if self.name == "libpq":
            self.ok("jobs connect to the socket directory (cron.host)",
                    all(j.split(" ", 1)[1] == self.env["PGHOST"] for j in jobs), jobs)
        version = self.q("SELECT extversion FROM pg_extension WHERE extname = 'pg_cron'")
        m = re.match(r"(\d+)\.(\d+)", version)
        self.seconds = bool(m) and (int(m.group(1)), int(m.group(2))) >= (1, 5)
        say("%s: pg_cron %s: schedule '%s'" % (self.name, version, self.fast_schedule()))
        return True

    def fast_schedule(self):
        return "2 seconds" if self.seconds else "* * * * *"

    def alter(self, **kw):
        args = ", ".join("%s := %s" % (k, v) for k, v in kw.items())
        self.q("SELECT count(cron.alter_job(jobid, %s)) FROM cron.job WHERE jobname IN (%s)"
               % (args, sql_name(JOBS)))

    def runs(self, status, since):
        """Jobs (names) with a run of this status that started at or after `since`."""
        out = self.q("SELECT DISTINCT j.jobname FROM cron.job_run_details r JOIN cron.job j USING (jobid) "
                     "WHERE r.status = '%s' AND r.start_time >= '%s' AND j.jobname IN (%s)"
                     % (status, since, sql_name(JOBS)))
        return set(out.split("\n")) - {""}

    def busy(self):
        return int(self.q("SELECT count(*) FROM cron.job_run_details "
                          "WHERE status IN ('starting', 'running') AND start_time > now() - interval '10 minutes'"))

    def now(self):
        return self.q("SELECT now()")

    def view_rows(self):
        return self.q("SELECT tenant_id, month, folder_key, folder_name, robot_units, processes "
                      "FROM usage.monthly_robot_units ORDER BY tenant_id, month, folder_key")

    def history_rows(self):
        return self.q("SELECT tenant_id, consumable_code, day, service, consumed_amount, landed_at "
                      "FROM usage_history.daily_consumption ORDER BY 1, 2, 3, 4")

    def stop(self):
        if not self.started:
            return
        r = run(["bash", CLUSTER_SH, "stop", self.dir], timeout=120)
        if self.pids:
            left = [n for n, p in self.pids.items()
                    if p and pid_alive(p, "postgres" if n == "postgres" else "mock_api")]
            self.ok("cluster.sh stop stops the restarted postmaster and the mock (by PID)",
                    r.returncode == 0 and not left,
                    "rc %d, still running: %s %s\n%s" % (r.returncode, left, self.pids, r.stderr))


def wait_for(modes, what, cond, timeout):
    """Poll cond(mode) for every mode until all are true or timeout; the modes still false."""
    t_end = time.monotonic() + timeout
    pending = list(modes)
    while pending and time.monotonic() < t_end:
        pending = [m for m in pending if not cond(m)]
        if pending:
            time.sleep(0.5)
    for m in pending:
        say("%s: gave up waiting %d s for %s" % (m.name, timeout, what))
    return pending


# --- the test -------------------------------------------------------------------

def test():
    blocks = recipe_blocks(DOC)
    missing = [n for n in SQL_RECIPES if n not in blocks] + \
              [v for v in CONF_RECIPES.values() if v not in blocks]
    check("docs/scheduling.md has every recipe block", not missing, "missing: %s" % missing)
    wrong = [n for n in SQL_RECIPES if n in blocks and blocks[n][0].split()[:1] != ["sql"]]
    check("the recipe's SQL blocks are sql blocks (runnable or illustration)", not wrong, wrong)
    if missing:
        return

    pkglib = pg_config("--pkglibdir")
    control = os.path.join(pg_config("--sharedir"), "extension", "pg_cron.control")
    if not (os.path.exists(os.path.join(pkglib, "pg_cron.so")) and os.path.exists(control)):
        say("SKIP t_cron: pg_cron is not installed for %s (no pg_cron.so in %s): "
            "scripts/deps.sh installs postgresql-N-cron when the Debian archive has it"
            % (pg_config("--version"), pkglib))
        return

    t0 = time.monotonic()
    tmp = tempfile.mkdtemp(prefix="usage_fdw_cron.")
    modes = []
    try:
        for name, recipe in CONF_RECIPES.items():
            m = Mode(name, blocks[recipe][1], tmp)
            modes.append(m)
            if not m.start(conf_settings(blocks[recipe][1]), blocks):
                return
        say("set up in %.0f s" % (time.monotonic() - t0))

        # 1. a run that succeeds, with recognisable numbers
        for m in modes:
            m.mock.clear_faults()
            m.mock.add_faults([
                {"match": {"path_regex": "consumption-by-folder"}, "times": -1,
                 "action": {"item_patch": {"consumedBySelf": RU_PATCH}}},
                {"match": {"path_regex": "daily-consumption-by-service"}, "times": -1,
                 "action": {"item_patch": {"consumedAmount": DAILY_PATCH}}},
            ])
        if not all(m.seconds for m in modes) and time.gmtime().tm_sec >= 56:
            time.sleep(61 - time.gmtime().tm_sec)   # not just before a minute boundary
        for m in modes:
            m.t_start = m.now()
            m.alter(schedule="'%s'" % m.fast_schedule())
        late = wait_for(modes, "a succeeded run of each job",
                        lambda m: m.runs("succeeded", m.t_start) == set(JOBS), WAIT_RUN)
        for m in modes:
            if not m.ok("a scheduled run of each job succeeded", m not in late,
                        m.q("SELECT jobid, status, return_message FROM cron.job_run_details ORDER BY runid")):
                return

        # 2. pause, save what the good run left
        for m in modes:
            m.alter(active="false")
        wait_for(modes, "the runs in progress to end", lambda m: m.busy() == 0, WAIT_IDLE)
        for m in modes:
            ru = m.q("SELECT count(*) || ' ' || count(*) FILTER (WHERE robot_units = %d) "
                     "FROM usage.monthly_robot_units" % RU_PATCH).split()
            m.ok("the job refreshed the view (%s rows, all from this run)" % ru[0],
                 int(ru[0]) > 0 and ru[0] == ru[1], ru)
            hist = m.q("SELECT count(*) || ' ' || count(DISTINCT day) || ' ' || "
                       "count(*) FILTER (WHERE day = (now() AT TIME ZONE 'UTC')::date - 1 "
                       "AND consumed_amount = %d) FROM usage_history.daily_consumption"
                       % DAILY_PATCH).split()
            m.ok("the job landed yesterday's rows (%s of %s rows, %s days)" % (hist[2], hist[0], hist[1]),
                 hist[1] == "30" and int(hist[2]) == 18, hist)
            m.saved = (m.view_rows(), m.history_rows())

        # 3. the API fails: a run that fails
        for m in modes:
            m.mock.clear_faults()
            m.mock.add_faults([{"match": {"path_regex": "^/lease_/api/usage/"}, "times": -1,
                                "action": {"status": 503}}])
            m.t_fault = m.now()
            m.alter(active="true")
        late = wait_for(modes, "a failed run of each job",
                        lambda m: m.runs("failed", m.t_fault) == set(JOBS), WAIT_RUN)
        for m in modes:
            m.ok("a scheduled run of each job failed once the API answered 503", m not in late,
                 m.q("SELECT jobid, status, return_message FROM cron.job_run_details ORDER BY runid"))

        # 4. what the document's "runs" block shows, then its "unschedule" block
        for m in modes:
            m.alter(active="false")
        wait_for(modes, "the runs in progress to end", lambda m: m.busy() == 0, WAIT_IDLE)
        for m in modes:
            r = m.psql(blocks["runs"][1])
            m.ok("recipe block runs lists succeeded and failed runs of both jobs",
                 r.returncode == 0 and all(("%s|succeeded" % j) in r.stdout and ("%s|failed" % j) in r.stdout
                                           for j in JOBS), r.stdout + r.stderr)
            say("%s: cron.job_run_details:\n  %s" % (m.name, m.q(
                "SELECT string_agg(format('%s %s %s %s', j.jobname, r.status, "
                "to_char(r.start_time, 'HH24:MI:SS'), split_part(r.return_message, E'\\n', 1)), "
                "E'\\n  ' ORDER BY r.runid) FROM cron.job_run_details r JOIN cron.job j USING (jobid)")))
            r = m.psql(blocks["unschedule"][1])
            m.ok("recipe block unschedule runs", r.returncode == 0, r.stderr)
        for m in modes:
            msgs = m.q("SELECT DISTINCT r.return_message FROM cron.job_run_details r "
                       "WHERE r.status = 'failed' AND r.start_time >= '%s'" % m.t_fault)
            m.ok("the failures are the API's 503 (not a connection failure)",
                 "503" in msgs and "connection failed" not in msgs, msgs)
            left = m.q("SELECT count(*) FROM cron.job WHERE jobname IN (%s)" % sql_name(JOBS))
            m.ok("unschedule removed the jobs", left == "0", left)
            view, hist = m.view_rows(), m.history_rows()
            m.ok("the view keeps its previous contents", view == m.saved[0] and view != "",
                 "before:\n%s\nafter:\n%s" % (m.saved[0], view))
            m.ok("the history table lost nothing (%d rows, same contents)" % len(hist.split("\n")),
                 hist == m.saved[1], "before: %d rows, after: %d rows"
                 % (len(m.saved[1].split("\n")), len(hist.split("\n"))))
            m.finished = True
    finally:
        for m in modes:
            try:
                m.stop()
            except Exception as e:  # noqa: BLE001 - never leave a cluster behind silently
                check("%s: stop" % m.name, False, e)
        shutil.rmtree(tmp, ignore_errors=True)
        for m in modes:
            say("t_cron: mode %s (cron.use_background_workers = %s): %s (%d checks, %d failed)"
                % (m.name, "on" if m.name == "bgworker" else "off",
                   "passed" if m.finished and not m.failed else "FAILED", m.checks, m.failed))
        say("t_cron: %.0f s" % (time.monotonic() - t0))


if __name__ == "__main__":
    main(test)
