#!/usr/bin/env bash
# "make dist": the release archive, usage_fdw-VERSION.zip, whose files are all
# in one top-level directory usage_fdw-VERSION/ (VERSION: META.json's, the
# semantic version of usage_fdw.control's default_version: 1.1 -> 1.1.0).
#
#   bash scripts/dist.sh [OUTDIR]        default: the top of the tree
#
# What goes in:
#   - in a git work tree, the last commit (git archive HEAD): uncommitted
#     changes are not in the archive (a warning says so);
#   - elsewhere (an unpacked archive, a copy without .git), the files of the
#     tree as they are, with python3's zipfile.
# Either way without what .gitattributes marks export-ignore (.ci/, which is
# this repository's CI) and, for a tree without git, without build products
# and test output (*.o, *.so, *.bc, results/, regression.*, log/,
# tmp_check/, __pycache__/, .demo/, .test/, earlier archives).  Everything
# "make", "make install" and "make test" need is in the archive.
#
# It refuses to build an archive when META.json's version is not the control
# file's (test/t_meta.py checks the rest of the release's metadata).  The last
# line of its output is the archive's path.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
OUTDIR=${1:-$REPO}
mkdir -p "$OUTDIR"
OUTDIR=$(cd "$OUTDIR" && pwd)

die() {
	echo "dist: $*" >&2
	exit 1
}

command -v python3 >/dev/null 2>&1 || die "python3 is needed (scripts/deps.sh installs it)"

ctl=$(sed -n "s/^default_version *= *'\([^']*\)'.*/\1/p" "$REPO/usage_fdw.control")
[[ -n "$ctl" ]] || die "no default_version in usage_fdw.control"
meta=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["version"])' "$REPO/META.json") ||
	die "META.json has no version"
want=$ctl
[[ "$want" =~ ^[0-9]+\.[0-9]+$ ]] && want="$want.0"
[[ "$meta" == "$want" ]] ||
	die "META.json's version is $meta, usage_fdw.control's default_version $ctl (want $want in META.json)"

NAME="usage_fdw-$meta"
OUT="$OUTDIR/$NAME.zip"
rm -f "$OUT"

if git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1 &&
	[[ "$(git -C "$REPO" rev-parse --show-toplevel)" == "$REPO" ]]; then
	if [[ -n "$(git -C "$REPO" status --porcelain --untracked-files=no)" ]]; then
		echo "dist: warning: uncommitted changes are not in the archive (it is HEAD, $(git -C "$REPO" rev-parse --short HEAD))" >&2
	fi
	git -C "$REPO" archive --format=zip --prefix="$NAME/" -o "$OUT" HEAD
else
	python3 - "$REPO" "$NAME" "$OUT" <<'EOF'
import fnmatch
import os
import sys
import zipfile

repo, name, out = sys.argv[1:4]

# export-ignore patterns of .gitattributes (simple ones: a path, a dir/, a glob)
ignored = []
attrs = os.path.join(repo, ".gitattributes")
if os.path.exists(attrs):
    for line in open(attrs, encoding="utf-8"):
        parts = line.split()
        if len(parts) >= 2 and not parts[0].startswith("#") and "export-ignore" in parts[1:]:
            ignored.append(parts[0].lstrip("/"))
build_dirs = {"results", "log", "tmp_check", "__pycache__", ".demo", ".test", ".git"}
build_files = ("*.o", "*.so", "*.bc", "*.pyc", "regression.diffs", "regression.out", "usage_fdw-*.zip")


def skip(rel, is_dir):
    for pat in ignored:
        p = pat.rstrip("/")
        if rel == p or rel.startswith(p + "/") or (not pat.endswith("/") and fnmatch.fnmatch(rel, p)):
            return True
    base = os.path.basename(rel)
    if is_dir:
        return base in build_dirs
    return any(fnmatch.fnmatch(base, p) for p in build_files)


entries = []
for top, dirs, files in os.walk(repo):
    reltop = os.path.relpath(top, repo)
    reltop = "" if reltop == "." else reltop + "/"
    dirs[:] = sorted(d for d in dirs if not skip(reltop + d, True))
    for f in sorted(files):
        if not skip(reltop + f, False):
            entries.append(reltop + f)
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    for rel in entries:
        z.write(os.path.join(repo, rel), name + "/" + rel)
EOF
fi
echo "dist: $(python3 -c 'import sys, zipfile; print(len(zipfile.ZipFile(sys.argv[1]).namelist()))' "$OUT") entries" >&2
echo "$OUT"
