#!/usr/bin/env python3
"""The release's metadata: META.json against the PGXN Meta Spec, and one
version everywhere.

PGXN's own validator (a Perl module) is not at hand, so this test checks
META.json against the rules of the PGXN Meta Spec v1.0.0 itself:

  - the required fields: name, abstract, maintainer, license, version,
    provides, meta-spec (with its version);
  - formats: name and provided extension names are "terms" (two characters
    or more, no space, control character, / or \\); versions are semantic
    versions (MAJOR.MINOR.PATCH, optional -prerelease and +build); license is
    one of the spec's names (or a list of them, or a map of names to URLs);
    release_status is stable, testing or unstable; tags are 1 to 256
    characters without control characters, / or \\; prereqs are phases
    (configure, build, test, runtime, develop) of relations (requires,
    recommends, suggests, conflicts) of names to version ranges ("0", or
    comma-separated semantic versions with <, <=, >, >=, ==, !=); resources'
    URLs have a scheme and a host; meta-spec is version 1.0.0 at
    https://pgxn.org/spec/1.0.0/; any other key starts with x_.

and that the versions agree: META.json's version, its provides version, the
control file's default_version (1.1 is the semantic version 1.1.0), the
version the Makefile compiles into the library, the newest CHANGELOG.md
entry, and usage_fdw_version() in a database (when a server is at hand:
PGHOST/PGPORT, as in make test).  It also checks the files they name: the
provided file and docfile exist, DATA in the Makefile lists exactly the
usage_fdw--*.sql scripts of the tree, an install script for the default
version exists, every earlier version of the changelog has an upgrade path
to it, and the PostgreSQL prerequisite is the floor src/compat.h enforces.

So that a validator that accepts everything cannot pass, broken copies of
META.json (one fault each) must each be refused, with the error expected.

Prints its checks and ends with "N passed, N failed".
"""

import copy
import json
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from fdwtest import check, database, main, psql_script, require, run  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
DB = "usage_fdw_t_meta"

SPEC_VERSION = "1.0.0"
SPEC_URLS = ("https://pgxn.org/spec/1.0.0/", "http://pgxn.org/spec/1.0.0/")
LICENSES = {
    "agpl_3", "apache_1_1", "apache_2_0", "artistic_1", "artistic_2", "bsd",
    "freebsd", "gfdl_1_2", "gfdl_1_3", "gpl_1", "gpl_2", "gpl_3", "lgpl_2_1",
    "lgpl_3_0", "mit", "mozilla_1_0", "mozilla_1_1", "openssl", "perl_5",
    "postgresql", "qpl_1_0", "ssleay", "sun", "zlib", "open_source",
    "restricted", "unrestricted", "unknown",
}
PHASES = {"configure", "build", "test", "runtime", "develop"}
RELATIONS = {"requires", "recommends", "suggests", "conflicts"}
RELEASE_STATUS = {"stable", "testing", "unstable"}

SEMVER = re.compile(
    r"^(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)"
    r"(?:-[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?(?:\+[0-9A-Za-z-]+(?:\.[0-9A-Za-z-]+)*)?$")
RANGE_OP = re.compile(r"^(<=|>=|==|!=|<|>)?\s*(.*)$")


# ---------------------------------------------------------------------------
# The validator: validate(meta) -> list of "path: problem" strings
# ---------------------------------------------------------------------------

class Validator:
    def __init__(self):
        self.errors = []

    def err(self, path, msg):
        self.errors.append("%s: %s" % (path or "/", msg))

    # values
    def string(self, path, v):
        if not isinstance(v, str) or v == "":
            self.err(path, "not a non-empty string")
            return False
        return True

    def term(self, path, v):
        if not self.string(path, v):
            return False
        if len(v) < 2 or re.search(r"[\s\x00-\x1f\x7f/\\]", v):
            self.err(path, "%r is not a valid term" % v)
            return False
        return True

    def tag(self, path, v):
        if not self.string(path, v):
            return False
        if len(v) > 256 or re.search(r"[\x00-\x1f\x7f/\\]", v):
            self.err(path, "%r is not a valid tag" % v)
            return False
        return True

    def version(self, path, v):
        if not isinstance(v, str) or not SEMVER.match(v):
            self.err(path, "%r is not a valid semantic version" % (v,))
            return False
        return True

    def version_range(self, path, v):
        if isinstance(v, (int, float)) and v == 0:
            return True
        if not isinstance(v, str) or v.strip() == "":
            self.err(path, "%r is not a version range" % (v,))
            return False
        ok = True
        for part in re.split(r",\s*", v):
            if part == "0":
                continue
            m = RANGE_OP.match(part)
            if not m or not SEMVER.match(m.group(2)):
                self.err(path, "%r is not a valid version range" % part)
                ok = False
        return ok

    def url(self, path, v):
        if not isinstance(v, str) or not re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://[^/?#\s]+", v):
            self.err(path, "%r is not a valid URL" % (v,))
            return False
        return True

    def custom_key(self, path, key):
        if not re.match(r"^x_", key, re.I):
            self.err(path, "unknown key %r (custom keys begin with x_)" % key)
            return False
        return True

    def string_list(self, path, v, each):
        """A list of values, or one value standing for a list of one."""
        if isinstance(v, list):
            if not v:
                self.err(path, "empty list")
            for i, x in enumerate(v):
                each("%s[%d]" % (path, i), x)
        else:
            each(path, v)

    def mapping(self, path, v):
        if not isinstance(v, dict):
            self.err(path, "not a map")
            return False
        return True

    # fields
    def license(self, path, v):
        if isinstance(v, dict):
            if not v:
                self.err(path, "empty map")
            for name, u in v.items():
                self.string(path + "/" + name, name)
                self.url(path + "/" + name, u)
            return

        def one(p, x):
            if x not in LICENSES:
                self.err(p, "%r is an unknown license" % (x,))
        self.string_list(path, v, one)

    def provides(self, path, v):
        if not self.mapping(path, v):
            return
        if not v:
            self.err(path, "provides nothing")
        for name, ext in v.items():
            p = path + "/" + name
            self.term(p, name)
            if not self.mapping(p, ext):
                continue
            for req in ("file", "version"):
                if req not in ext:
                    self.err(p + "/" + req, "required field missing")
            for k, x in ext.items():
                if k in ("file", "docfile", "abstract"):
                    self.string(p + "/" + k, x)
                elif k == "version":
                    self.version(p + "/" + k, x)
                else:
                    self.custom_key(p + "/" + k, k)

    def prereqs(self, path, v):
        if not self.mapping(path, v):
            return
        for phase, rels in v.items():
            p = path + "/" + phase
            if phase not in PHASES and not re.match(r"^x_", phase, re.I):
                self.err(p, "unknown prereq phase %r" % phase)
            if not self.mapping(p, rels):
                continue
            for rel, terms in rels.items():
                q = p + "/" + rel
                if rel not in RELATIONS and not re.match(r"^x_", rel, re.I):
                    self.err(q, "unknown prereq relation %r" % rel)
                if not self.mapping(q, terms):
                    continue
                for name, rng in terms.items():
                    self.term(q + "/" + name, name)
                    self.version_range(q + "/" + name, rng)

    def resources(self, path, v):
        if not self.mapping(path, v):
            return
        for k, x in v.items():
            p = path + "/" + k
            if k == "homepage":
                self.url(p, x)
            elif k == "license":
                self.string_list(p, x, self.url)
            elif k in ("bugtracker", "repository"):
                if not self.mapping(p, x):
                    continue
                for kk, xx in x.items():
                    if kk in ("web", "url"):
                        self.url(p + "/" + kk, xx)
                    elif k == "bugtracker" and kk == "mailto":
                        if not isinstance(xx, str) or "@" not in xx:
                            self.err(p + "/" + kk, "%r is not an email address" % (xx,))
                    elif k == "repository" and kk == "type":
                        if self.string(p + "/" + kk, xx) and xx != xx.lower():
                            self.err(p + "/" + kk, "%r is not lower case" % xx)
                    else:
                        self.custom_key(p + "/" + kk, kk)
            else:
                self.custom_key(p, k)

    def meta_spec(self, path, v):
        if not self.mapping(path, v):
            return
        if "version" not in v:
            self.err(path + "/version", "required field missing")
        for k, x in v.items():
            if k == "version":
                if x != SPEC_VERSION:
                    self.err(path + "/version", "%r is not a known spec version (%s)" % (x, SPEC_VERSION))
            elif k == "url":
                if self.url(path + "/url", x) and x not in SPEC_URLS:
                    self.err(path + "/url", "%r is not the URL of spec %s" % (x, SPEC_VERSION))
            else:
                self.custom_key(path + "/" + k, k)

    def no_index(self, path, v):
        if not self.mapping(path, v):
            return
        for k, x in v.items():
            if k in ("file", "directory"):
                self.string_list(path + "/" + k, x, self.string)
            else:
                self.custom_key(path + "/" + k, k)

    def validate(self, meta):
        if not isinstance(meta, dict):
            self.err("/", "META.json is not a JSON object")
            return self.errors
        for req in ("name", "abstract", "maintainer", "license", "version", "provides", "meta-spec"):
            if req not in meta:
                self.err("/" + req, "required field missing")
        fields = {
            "name": self.term,
            "abstract": self.string,
            "description": self.string,
            "generated_by": self.string,
            "version": self.version,
            "maintainer": lambda p, v: self.string_list(p, v, self.string),
            "license": self.license,
            "provides": self.provides,
            "prereqs": self.prereqs,
            "resources": self.resources,
            "meta-spec": self.meta_spec,
            "no_index": self.no_index,
            "tags": lambda p, v: self.string_list(p, v, self.tag),
            "release_status": lambda p, v: (v in RELEASE_STATUS) or self.err(
                p, "%r is not stable, testing or unstable" % (v,)),
        }
        for k, v in meta.items():
            if k in fields:
                fields[k]("/" + k, v)
            else:
                self.custom_key("/" + k, k)
        return self.errors


def validate(meta):
    return Validator().validate(meta)


# ---------------------------------------------------------------------------
# What the tree says
# ---------------------------------------------------------------------------

def read(name):
    with open(os.path.join(ROOT, name), encoding="utf-8") as f:
        return f.read()


def control_version():
    m = re.search(r"^default_version\s*=\s*'([^']*)'", read("usage_fdw.control"), re.M)
    return m.group(1) if m else None


def as_semver(v):
    """The extension's version as a semantic version: 1.1 -> 1.1.0."""
    if v and re.match(r"^\d+\.\d+$", v):
        return v + ".0"
    return v


def changelog_versions():
    """The versions of CHANGELOG.md's entries, newest first ("Unreleased" left out)."""
    return [m.group(1) for m in re.finditer(r"^## \[([^\]]+)\]", read("CHANGELOG.md"), re.M)
            if m.group(1).lower() != "unreleased"]


def make_variable(name):
    """A variable of the Makefile as make (with PGXS) sees it; None when make fails."""
    snippet = "print-var:\n\t@echo '$(%s)'\n" % name
    r = run(["make", "--no-print-directory", "-s", "-C", ROOT, "-f", "Makefile", "-f", "-",
             "print-var"], input=snippet)
    if r.returncode != 0:
        print("      (make: %s)" % r.stderr.strip())
        return None
    return r.stdout.strip()


def script_versions():
    """Install scripts {version} and upgrade scripts {(from, to)} in the tree."""
    installs, upgrades = set(), set()
    for f in os.listdir(ROOT):
        m = re.match(r"^usage_fdw--([^-]+)--([^-]+)\.sql$", f)
        if m:
            upgrades.add((m.group(1), m.group(2)))
            continue
        m = re.match(r"^usage_fdw--([^-]+)\.sql$", f)
        if m:
            installs.add(m.group(1))
    return installs, upgrades


def reaches(start, goal, upgrades):
    seen, todo = {start}, [start]
    while todo:
        v = todo.pop()
        if v == goal:
            return True
        for a, b in upgrades:
            if a == v and b not in seen:
                seen.add(b)
                todo.append(b)
    return False


def agreement(meta, ctl, changelog_newest, compiled):
    """Where the versions disagree: a list of sentences (empty when they agree)."""
    want = as_semver(ctl)
    problems = []
    if meta.get("version") != want:
        problems.append("META.json version %r, control %r (%r)" % (meta.get("version"), ctl, want))
    pv = meta.get("provides", {}).get("usage_fdw", {}).get("version")
    if pv != want:
        problems.append("provides version %r, control %r" % (pv, ctl))
    if changelog_newest != ctl:
        problems.append("newest CHANGELOG entry %r, control %r" % (changelog_newest, ctl))
    if compiled is not None and compiled != ctl:
        problems.append("compiled version %r, control %r" % (compiled, ctl))
    return problems


# ---------------------------------------------------------------------------

def test():
    with open(os.path.join(ROOT, "META.json"), encoding="utf-8") as f:
        text = f.read()
    try:
        meta = json.loads(text)
    except ValueError as e:
        require("META.json is JSON", False, e)
    check("META.json is JSON", True)

    errors = validate(meta)
    check("META.json is valid under the PGXN Meta Spec %s" % SPEC_VERSION, not errors, "\n".join(errors))

    # the validator refuses broken copies, each for its own fault
    def broken(change, expect):
        m = copy.deepcopy(meta)
        change(m)
        errs = validate(m)
        ok = any(expect in e for e in errs)
        check("the validator refuses a META.json with %s" % expect_names[expect], ok,
              "errors: %s" % ("\n".join(errs) or "none"))

    expect_names = {}

    def case(label, change, expect):
        expect_names[expect] = label
        broken(change, expect)

    case("no name", lambda m: m.pop("name"), "/name: required field missing")
    case("no provides", lambda m: m.pop("provides"), "/provides: required field missing")
    case("a version that is not semantic ('1.1')",
         lambda m: m.__setitem__("version", "1.1"), "/version: '1.1' is not a valid semantic version")
    case("a license name of another spelling ('PostgreSQL')",
         lambda m: m.__setitem__("license", "PostgreSQL"), "'PostgreSQL' is an unknown license")
    case("an unknown top-level key",
         lambda m: m.__setitem__("homepage", "https://example.org/"), "unknown key 'homepage'")
    case("a name with a space", lambda m: m.__setitem__("name", "usage fdw"), "is not a valid term")
    case("a provided extension without file",
         lambda m: m["provides"]["usage_fdw"].pop("file"), "/provides/usage_fdw/file: required field missing")
    case("a prereq phase that does not exist",
         lambda m: m["prereqs"].__setitem__("install", {"requires": {"PostgreSQL": "15.0.0"}}),
         "unknown prereq phase 'install'")
    case("a prereq relation that does not exist",
         lambda m: m["prereqs"]["runtime"].__setitem__("needs", {"PostgreSQL": "15.0.0"}),
         "unknown prereq relation 'needs'")
    case("a prereq version that is not semantic ('>= 15')",
         lambda m: m["prereqs"]["runtime"]["requires"].__setitem__("PostgreSQL", ">= 15"),
         "'>= 15' is not a valid version range")
    case("meta-spec version 2",
         lambda m: m["meta-spec"].__setitem__("version", "2"), "'2' is not a known spec version")
    case("a release status that does not exist",
         lambda m: m.__setitem__("release_status", "final"), "'final' is not stable, testing or unstable")
    case("a tag with a slash",
         lambda m: m.__setitem__("tags", ["a/b"]), "'a/b' is not a valid tag")
    case("a resource URL without a host",
         lambda m: m.__setitem__("resources", {"homepage": "usage_fdw"}), "'usage_fdw' is not a valid URL")

    # one version everywhere
    ctl = control_version()
    require("usage_fdw.control has a default_version", bool(ctl))
    versions = changelog_versions()
    check("CHANGELOG.md has entries", bool(versions), "no '## [VERSION]' headings")
    newest = versions[0] if versions else None
    compiled = make_variable("EXTVERSION")
    check("the Makefile compiles in the control file's version (EXTVERSION %r)" % compiled,
          compiled == ctl, "EXTVERSION %r, default_version %r" % (compiled, ctl))
    problems = agreement(meta, ctl, newest, compiled)
    check("one version everywhere: META.json %s, provides %s, control %s, CHANGELOG %s, compiled %s"
          % (meta.get("version"), meta.get("provides", {}).get("usage_fdw", {}).get("version"),
             ctl, newest, compiled), not problems, "\n".join(problems))
    # ... and the comparison can fail
    bumped = copy.deepcopy(meta)
    bumped["version"] = "9.9.0"
    check("the agreement check refuses a META.json of another version",
          bool(agreement(bumped, ctl, newest, compiled)))
    check("the agreement check refuses a newer CHANGELOG entry",
          bool(agreement(meta, ctl, "9.9", compiled)))

    # the files META.json and the control file name
    ext = meta.get("provides", {}).get("usage_fdw", {})
    for k in ("file", "docfile"):
        if k in ext:
            check("provides %s %s exists" % (k, ext[k]), os.path.isfile(os.path.join(ROOT, ext[k])))
    installs, upgrades = script_versions()
    check("an install script for the default version (usage_fdw--%s.sql)" % ctl, ctl in installs,
          "install scripts: %s" % sorted(installs))
    check("provides file is the default version's install script",
          ext.get("file") == "usage_fdw--%s.sql" % ctl, ext.get("file"))
    data = make_variable("DATA")
    listed = set(data.split()) if data is not None else set()
    on_disk = {f for f in os.listdir(ROOT) if re.match(r"^usage_fdw--.*\.sql$", f)}
    check("DATA lists exactly the usage_fdw--*.sql scripts of the tree", listed == on_disk,
          "DATA only: %s; tree only: %s" % (sorted(listed - on_disk), sorted(on_disk - listed)))
    for v in versions[1:]:
        check("an upgrade path from %s to %s" % (v, ctl), reaches(v, ctl, upgrades),
              "upgrade scripts: %s" % sorted(upgrades))
        check("an install script for %s (CREATE EXTENSION ... VERSION '%s')" % (v, v), v in installs)

    # the PostgreSQL prerequisite is the floor src/compat.h enforces
    m = re.search(r"#if PG_VERSION_NUM < (\d+)0000\s*\n#error", read("src/compat.h"))
    floor = m.group(1) if m else None
    req = meta.get("prereqs", {}).get("runtime", {}).get("requires", {}).get("PostgreSQL")
    check("prereqs: runtime requires PostgreSQL %s, the floor of src/compat.h (%s)" % (req, floor),
          floor is not None and req == "%s.0.0" % floor)

    # the installed library (make test's cluster)
    if os.environ.get("PGPORT") or os.environ.get("PGHOST"):
        with database(DB, "CREATE EXTENSION usage_fdw;\n", setup="CREATE EXTENSION usage_fdw"):
            r = psql_script(DB, "SELECT usage_fdw_version(), extversion FROM pg_extension"
                                " WHERE extname = 'usage_fdw';\n")
            got = r.stdout.strip().split("|")
            check("usage_fdw_version() and extversion in a new database are %s" % ctl,
                  r.returncode == 0 and got == [ctl, ctl], (r.stdout + r.stderr).strip())
            check("usage_fdw_version() warns of nothing when they agree", "WARNING" not in r.stderr,
                  r.stderr.strip())
            # PostgreSQL 18 on: the library's magic block names it and its version
            r = psql_script(DB, "SELECT current_setting('server_version_num')::int >= 180000;\n")
            if r.stdout.strip() == "t":
                r = psql_script(DB, "SELECT usage_fdw_version() IS NOT NULL;\n"
                                    "SELECT module_name || ' ' || version FROM pg_get_loaded_modules()"
                                    " WHERE file_name = 'usage_fdw.so';\n")
                check("pg_get_loaded_modules() names usage_fdw %s" % ctl,
                      r.returncode == 0 and r.stdout.split("\n")[1:2] == ["usage_fdw " + ctl],
                      (r.stdout + r.stderr).strip())
            else:
                print("skip  pg_get_loaded_modules() (PostgreSQL 18 on)")
    else:
        print("skip  usage_fdw_version() in a database (no PGHOST/PGPORT)")


if __name__ == "__main__":
    main(test)
