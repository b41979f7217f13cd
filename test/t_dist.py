#!/usr/bin/env python3
"""The release archive: "make dist" builds it, and its tests run from it.

In a scratch directory the test

  1. runs "make dist DIST_DIR=..." in the tree: one archive,
     usage_fdw-VERSION.zip (VERSION: META.json's), every entry under
     usage_fdw-VERSION/; it holds what building and testing need (the
     Makefile's DATA scripts, the sources of every object, each REGRESS
     suite's sql/ and expected/ files, the mock, the test scripts, META.json,
     CHANGELOG.md, README.md, LICENSE) and none of .ci/, .git or build
     output; from a git work tree, exactly the committed files that are not
     export-ignore;
  2. unpacks it (with the files' modes) and builds it there with PGXS, with
     no compiler warning;
  3. installs that build into a staging directory (DESTDIR): the library,
     the control file and every script; the scripts and the control file are
     the ones installed in the server under test, and the library has every C
     function that any of the scripts names (the 1.0 script's too, which the
     objects of an un-updated 1.0 install call);
  4. runs the archive's own tests against the server and the mock under test
     (PGHOST/PGPORT, MOCK_URL, as in make test): thirteen of its pg_regress
     suites (about 10 s of the 60 that all take; SUITES below) from the
     unpacked tree in a database of their own, and its test/t_meta.py;
  5. runs "make dist" again in the unpacked tree, which has no .git: the same
     files come out.

The archive's tests run against the library installed for make test (built
from the working tree, the same sources as the archive when the tree is
committed): this test does not install over it.

Prints its checks and ends with "N passed, N failed".
"""

import json
import os
import re
import shutil
import sys
import zipfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fdwtest import check, drop_database, main, require, reset_mock_quietly, run, scratch_dir  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DB = "usage_fdw_t_dist"
SUITES = "setup options endpoints types paging pushdown explain import join declared summaries recipes upgrade"
PG_CONFIG = os.environ.get("PG_CONFIG") or "pg_config"
BUILD_OPTS = ["PG_CONFIG=" + PG_CONFIG, "with_llvm=no"]
MAKE = ["make", "--no-print-directory"]


def pg_config(flag):
    return run([PG_CONFIG, flag]).stdout.strip()


def make_variable(tree, name):
    r = run(MAKE + ["-s", "-C", tree, "-f", "Makefile", "-f", "-", "print-var", "PG_CONFIG=" + PG_CONFIG],
            input="print-var:\n\t@echo '$(%s)'\n" % name)
    return r.stdout.split() if r.returncode == 0 else None


def tail(text, n=30):
    return "\n".join(text.strip().splitlines()[-n:])


def in_git_tree():
    r = run(["git", "-C", ROOT, "rev-parse", "--show-toplevel"]) if shutil.which("git") else None
    return r is not None and r.returncode == 0 and os.path.realpath(r.stdout.strip()) == os.path.realpath(ROOT)


def committed_files():
    """HEAD's files without the export-ignore ones (what git archive writes)."""
    files = run(["git", "-C", ROOT, "ls-tree", "-r", "--name-only", "-z", "HEAD"]).stdout.split("\0")
    files = [f for f in files if f]
    # a file is left out when it or one of its directories ("dir/") is export-ignore
    dirs = {f[:i + 1] for f in files for i, c in enumerate(f) if c == "/"}
    paths = files + sorted(dirs)
    attrs = run(["git", "-C", ROOT, "check-attr", "-z", "export-ignore", "--"] + paths).stdout.split("\0")
    ignored = {attrs[i] for i in range(0, len(attrs) - 2, 3) if attrs[i + 2] == "set"}
    return {f for f in files
            if f not in ignored and not any(f.startswith(d) for d in ignored if d.endswith("/"))}


def file_entries(path, prefix):
    with zipfile.ZipFile(path) as z:
        return {n[len(prefix):] for n in z.namelist() if not n.endswith("/")}


def unpack(path, dest):
    """Unpack like unzip: with the modes the archive records."""
    with zipfile.ZipFile(path) as z:
        for info in z.infolist():
            target = z.extract(info, dest)
            mode = (info.external_attr >> 16) & 0o777
            if mode and not info.is_dir():
                os.chmod(target, mode)


def c_functions(sql):
    """The C symbols the CREATE FUNCTION statements of a script name."""
    names = set()
    for m in re.finditer(r"CREATE\s+FUNCTION\s+([a-z_][a-z0-9_]*)\s*\((.*?);", sql, re.S | re.I):
        body = m.group(2)
        if "MODULE_PATHNAME" not in body:
            continue
        sym = re.search(r"AS\s+'MODULE_PATHNAME'\s*,\s*'([^']+)'", body)
        names.add(sym.group(1) if sym else m.group(1))
    return names


def test():
    with scratch_dir("usage_fdw_t_dist.", keep_env="USAGE_FDW_KEEP") as tmp:
        # 1. make dist
        out1 = os.path.join(tmp, "dist1")
        r = run(MAKE + ["-C", ROOT, "dist", "DIST_DIR=" + out1], timeout=120)
        require("make dist", r.returncode == 0, tail(r.stdout + r.stderr))
        made = os.listdir(out1)
        with open(os.path.join(ROOT, "META.json"), encoding="utf-8") as f:
            version = json.load(f)["version"]
        name = "usage_fdw-%s" % version
        require("make dist wrote one archive, %s.zip" % name, made == [name + ".zip"], made)
        archive = os.path.join(out1, name + ".zip")
        with zipfile.ZipFile(archive) as z:
            names = z.namelist()
            bad = z.testzip()
        check("the archive reads back (CRCs)", bad is None, bad)
        check("every entry is under %s/" % name, all(n.startswith(name + "/") for n in names),
              [n for n in names if not n.startswith(name + "/")][:10])
        files = file_entries(archive, name + "/")

        need = {"Makefile", "usage_fdw.control", "META.json", "CHANGELOG.md", "README.md", "LICENSE",
                "scripts/test.sh", "scripts/cluster.sh", "scripts/deps.sh", "scripts/pgconfig.sh",
                "scripts/installcheck.sh", "scripts/dist.sh", "test/fdwtest.py", "test/mockctl.py",
                "test/mock_api.py", "test/t_meta.py", "test/t_dist.py"}
        data = make_variable(ROOT, "DATA") or []
        objs = make_variable(ROOT, "OBJS") or []
        regress = make_variable(ROOT, "REGRESS") or []
        require("the Makefile's DATA, OBJS and REGRESS", data and objs and regress)
        need |= set(data)
        need |= {o[:-2] + ".c" for o in objs}
        need |= {"sql/%s.sql" % s for s in regress} | {"expected/%s.out" % s for s in regress}
        need |= {"test/" + f for f in os.listdir(HERE) if re.match(r"^t_.*\.py$", f)}
        need |= {"test/mockapi/" + f for f in os.listdir(os.path.join(HERE, "mockapi")) if f.endswith(".py")}
        missing = sorted(need - files)
        check("the archive holds what building and testing need (%d files)" % len(need), not missing, missing)
        junk = sorted(f for f in files
                      if f.startswith((".ci/", ".git/", "results/")) or f == ".gitattributes"
                      or re.search(r"(\.o|\.so|\.bc|\.pyc|regression\.(diffs|out))$", f))
        check("and no CI scripts, git data or build output", not junk, junk)
        if in_git_tree():
            want = committed_files()
            check("from git: exactly the committed files that are not export-ignore (%d)" % len(want),
                  files == want, "only in the archive: %s\nonly committed: %s"
                  % (sorted(files - want)[:20], sorted(want - files)[:20]))
        else:
            print("skip  the archive against git's files (no git work tree)")

        # 2. unpack and build
        src = os.path.join(tmp, "src")
        unpack(archive, src)
        tree = os.path.join(src, name)
        check("scripts keep their modes", os.access(os.path.join(tree, "scripts", "test.sh"), os.R_OK))
        r = run(MAKE + ["-C", tree, "-j2"] + BUILD_OPTS, timeout=600)
        require("make in the unpacked archive", r.returncode == 0, tail(r.stdout + r.stderr))
        warnings = [ln for ln in (r.stdout + r.stderr).splitlines()
                    if re.match(r"^[^\s]+\.[ch]:\d+:\d+: warning:", ln)]
        check("no compiler warnings", not warnings, "\n".join(warnings[:20]))

        # 3. a staged install of that build
        stage = os.path.join(tmp, "stage")
        r = run(MAKE + ["-C", tree, "install", "DESTDIR=" + stage] + BUILD_OPTS, timeout=300)
        require("make install DESTDIR=... from the unpacked archive", r.returncode == 0,
                tail(r.stdout + r.stderr))
        pkglibdir, sharedir = pg_config("--pkglibdir"), pg_config("--sharedir")
        staged_ext = stage + os.path.join(sharedir, "extension")
        staged_lib = stage + os.path.join(pkglibdir, "usage_fdw.so")
        check("the library is installed", os.path.isfile(staged_lib))
        differ, absent = [], []
        for f in ["usage_fdw.control"] + data:
            mine = os.path.join(staged_ext, f)
            if not os.path.isfile(mine):
                absent.append(f)
                continue
            theirs = os.path.join(sharedir, "extension", f)
            if not os.path.isfile(theirs) or open(mine, "rb").read() != open(theirs, "rb").read():
                differ.append(f)
        check("the control file and %d scripts are installed" % len(data), not absent, absent)
        check("and are the ones the server under test has", not differ, differ)
        if os.path.isfile(staged_lib):
            with open(staged_lib, "rb") as f:
                lib = f.read()
            for script in data:
                with open(os.path.join(tree, script), encoding="utf-8") as f:
                    funcs = sorted(c_functions(f.read()))
                lacking = [fn for fn in funcs if (b"\0pg_finfo_" + fn.encode() + b"\0") not in lib]
                check("the library has the C functions of %s (%s)" % (script, ", ".join(funcs)),
                      funcs and not lacking, "missing: %s" % lacking)

        # 4. the archive's tests against the server and mock under test
        if not os.environ.get("MOCK_URL") or not (os.environ.get("PGPORT") or os.environ.get("PGHOST")):
            print("skip  the archive's tests (no MOCK_URL, PGHOST/PGPORT: run under make test)")
            return
        try:
            r = run(MAKE + ["-C", tree, "installcheck", "REGRESS=" + SUITES, "CONTRIB_TESTDB=" + DB]
                    + BUILD_OPTS, timeout=600)
            m = re.search(r"All (\d+) tests passed", r.stdout)
            diffs = os.path.join(tree, "regression.diffs")
            detail = tail(r.stdout + r.stderr)
            if os.path.exists(diffs):
                with open(diffs, encoding="utf-8", errors="replace") as f:
                    detail += "\n" + "\n".join(f.read().splitlines()[:80])
            check("the archive's pg_regress suites pass (%s)" % SUITES,
                  r.returncode == 0 and m is not None and int(m.group(1)) == len(SUITES.split()), detail)
        finally:
            drop_database(DB)
            reset_mock_quietly()
        r = run([sys.executable, "-u", os.path.join(tree, "test", "t_meta.py")], timeout=300)
        last = (r.stdout.strip().splitlines() or [""])[-1]
        check("the archive's test/t_meta.py passes (%s)" % last,
              r.returncode == 0 and re.match(r"^\d+ passed, 0 failed$", last), tail(r.stdout + r.stderr))

        # 5. make dist from the unpacked archive (no .git): the same files
        out2 = os.path.join(tmp, "dist2")
        r = run(MAKE + ["-C", tree, "dist", "DIST_DIR=" + out2], timeout=120)
        again = os.path.join(out2, name + ".zip")
        ok = r.returncode == 0 and os.path.isfile(again)
        check("make dist in the unpacked archive (no .git)", ok, tail(r.stdout + r.stderr))
        if ok:
            files2 = file_entries(again, name + "/")
            check("it holds the same files as the first archive", files2 == files,
                  "only in the second: %s\nonly in the first: %s"
                  % (sorted(files2 - files)[:20], sorted(files - files2)[:20]))


if __name__ == "__main__":
    main(test)
