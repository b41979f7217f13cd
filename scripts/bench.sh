#!/usr/bin/env bash
# "make bench": the benchmark of usage_fdw (not part of "make test").
#
#   1. scripts/deps.sh                  missing Debian packages
#   2. make -j2 && make install         the extension
#   3. scripts/cluster.sh start DIR     a throwaway cluster + the mock API in a
#                                       temporary directory
#   4. bench/bench.py                   creates database usage_bench, measures,
#                                       prints one table of medians
#   5. scripts/cluster.sh stop DIR      always (trap), also on failure or ^C
#
# Exit status: non-zero only when a step fails; timings are reported, never
# asserted.  Takes a few minutes at most.
#
# Environment knobs:
#   BENCH_RUNS=n          runs per measurement, the median is shown (default 3)
#   BENCH_ONLY=abcdefghi  groups to run (a streaming, b fan-out, c LIMIT,
#                         d nested loop, e cancel, f JSON parsing, g natural join,
#                         h declared endpoint, i the jsonb floor)
#   USAGE_FDW_KEEP=1      keep the temporary directory (logs) even on success
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/pgconfig.sh
. "$REPO/scripts/pgconfig.sh"   # PG_CONFIG: which PostgreSQL to use
cd "$REPO" || exit 1

say() { echo "=== $*" >&2; }

BENCH_DIR=""
CLUSTER_STARTED=0

# Stop the cluster and the mock (by the PIDs cluster.sh recorded) whatever
# happens; keep the logs when something failed.
finish() {
	local rc=$?
	trap - EXIT INT TERM
	if ((CLUSTER_STARTED)) && [[ -n "$BENCH_DIR" ]]; then
		bash "$REPO/scripts/cluster.sh" stop "$BENCH_DIR" || true
	fi
	if [[ -n "$BENCH_DIR" && -d "$BENCH_DIR" ]]; then
		if ((rc == 0)) && [[ -z "${USAGE_FDW_KEEP:-}" ]]; then
			rm -rf "$BENCH_DIR"
		else
			rm -rf "$BENCH_DIR/data"
			echo "make bench: logs kept in $BENCH_DIR (postgres.log, mock.log, mock.out)" >&2
		fi
	fi
	if ((rc != 0)); then
		echo "make bench: failed (exit status $rc)" >&2
	fi
	exit "$rc"
}
trap finish EXIT
trap 'echo "make bench: interrupted" >&2; exit 130' INT
trap 'echo "make bench: terminated" >&2; exit 143' TERM

die() {
	echo "make bench: $*" >&2
	exit 1
}

# One "make test" or "make bench" at a time on a machine: "make install" writes
# into the PostgreSQL installation that every cluster here loads the module
# from (the same lock as scripts/test.sh).
if command -v flock >/dev/null 2>&1; then
	exec 9>"${TMPDIR:-/tmp}/usage_fdw_make_test.lock"
	flock 9
fi

# --- 1. packages ------------------------------------------------------------
say "dependencies"
bash "$REPO/scripts/deps.sh" || die "installing dependencies failed"

pgconfig_resolve || die "pg_config not found"
PGBIN=$("$PG_CONFIG" --bindir) || die "$PG_CONFIG --bindir failed"
# Debian's python3 first (it runs the mock and the driver); then PostgreSQL's tools
export PATH="$PGBIN:/usr/bin:$PATH"
PYTHON=/usr/bin/python3
[[ -x "$PYTHON" ]] || PYTHON=$(command -v python3) || die "python3 not found"

# --- 2. build + install -----------------------------------------------------
say "build"
make -s -j2 || die "build failed"

say "install"
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
SHAREDIR=$("$PG_CONFIG" --sharedir)
if [[ $(id -u) -ne 0 && ! (-w "$PKGLIBDIR" && -w "$SHAREDIR/extension") ]]; then
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo -n make -s install PG_CONFIG="$PG_CONFIG" || die "make install failed"
	else
		die "cannot write to $PKGLIBDIR: run 'sudo make install' first, or run as root"
	fi
else
	make -s install || die "make install failed"
fi

# --- 3. cluster + mock ------------------------------------------------------
say "cluster"
BENCH_DIR=$(mktemp -d /tmp/usage_fdw_bench.XXXXXX) || die "mktemp failed"
CLUSTER_STARTED=1
bash "$REPO/scripts/cluster.sh" start "$BENCH_DIR" --dataset test ||
	die "could not start the cluster and the mock API"
# shellcheck source=/dev/null
. "$BENCH_DIR/env.sh"
export PGHOST PGPORT PGUSER MOCK_URL
unset PGDATABASE PGSERVICE PGOPTIONS PGPASSWORD PGAPPNAME

# --- 4. the benchmark -------------------------------------------------------
say "benchmark (BENCH_RUNS=${BENCH_RUNS:-3})"
"$PYTHON" -u "$REPO/bench/bench.py" --runs "${BENCH_RUNS:-3}" --only "${BENCH_ONLY:-abcdefghi}"
