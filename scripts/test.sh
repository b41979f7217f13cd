#!/usr/bin/env bash
# "make test": from a fresh clone, install what is missing, build, install, run
# every test against a throwaway cluster and the mock API, stop what was started,
# and exit non-zero on any failure.
#
#   1. scripts/deps.sh                      missing Debian packages
#   2. make -j2 && make install             the extension
#   3. scripts/cluster.sh start DIR         cluster + mock API (test dataset)
#   4. make installcheck                    pg_regress: sql/*.sql vs expected/*.out
#   5. test/t_*.py (sorted)                 fault / load / behaviour tests
#   6. test/mock_selftest.py (if present)   the mock API's own checks
#
# The last line is "make test: N passed, M failed".
#
# Environment knobs:
#   USAGE_FDW_KEEP=1              keep the temporary directory even on success
#   USAGE_FDW_REGRESS_TIMEOUT=s   limit for make installcheck (default 1200)
#   USAGE_FDW_PYTEST_TIMEOUT=s    limit for each python test (default 900)
#   PG_CONFIG=path                the PostgreSQL to build and test against
#                                 (default: the installed one; scripts/pgconfig.sh)
#   USAGE_FDW_REGRESS="a b"       only these pg_regress suites (development;
#                                 "none" runs none)
#   USAGE_FDW_PYTESTS="t_x t_y"   only these python tests (development; "none"
#                                 runs none; mock_selftest is one of them)
set -uo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$REPO" || exit 1

T0=$(date +%s)
REGRESS_TIMEOUT=${USAGE_FDW_REGRESS_TIMEOUT:-1200}
PYTEST_TIMEOUT=${USAGE_FDW_PYTEST_TIMEOUT:-900}

say() { echo "=== $*"; }
elapsed() { echo $(($(date +%s) - T0)); }

PASSED=0
FAILED=0
FAILED_NAMES=()
TMPDIR_TEST=""
CLUSTER_STARTED=0

# On exit (success, failure or interrupt): stop the cluster and the mock, keep
# the logs unless all passed, and print the summary as the very last line.
SUMMARY=""
finish() {
	local rc=$?
	trap - EXIT INT TERM
	if ((CLUSTER_STARTED)) && [[ -n "$TMPDIR_TEST" ]]; then
		bash "$REPO/scripts/cluster.sh" stop "$TMPDIR_TEST" || true
	fi
	if [[ -n "$TMPDIR_TEST" && -d "$TMPDIR_TEST" ]]; then
		if ((rc == 0)) && [[ -z "${USAGE_FDW_KEEP:-}" ]]; then
			rm -rf "$TMPDIR_TEST"
		else
			# the cluster is stopped: keep the logs, not the data directory
			rm -rf "$TMPDIR_TEST/data"
			echo "make test: cluster and mock logs kept in $TMPDIR_TEST" \
				"(postgres.log, mock.log, mock.out)"
		fi
	fi
	echo "elapsed: $(elapsed) s"
	if [[ -z "$SUMMARY" ]]; then
		((rc == 0)) || FAILED=$((FAILED + 1))
		SUMMARY="make test: $PASSED passed, $FAILED failed"
	fi
	echo "$SUMMARY"
	exit "$rc"
}
trap finish EXIT
trap 'echo "make test: interrupted" >&2; exit 130' INT
trap 'echo "make test: terminated" >&2; exit 143' TERM

die() {
	echo "make test: $*" >&2
	SUMMARY="make test: $PASSED passed, $((FAILED + 1)) failed"
	exit 1
}

# A command with a time limit, when coreutils' timeout is there.
with_timeout() {
	local secs=$1
	shift
	if command -v timeout >/dev/null 2>&1; then
		timeout --foreground -k 10 "$secs" "$@"
	else
		"$@"
	fi
}

# One "make test" at a time on a machine: "make install" writes into the
# PostgreSQL installation that every test cluster here loads the module from.
if command -v flock >/dev/null 2>&1; then
	exec 9>"${TMPDIR:-/tmp}/usage_fdw_make_test.lock"
	flock 9
fi

# --- 1. packages ------------------------------------------------------------
say "dependencies"
bash "$REPO/scripts/deps.sh" || die "installing dependencies failed"

# shellcheck source=scripts/pgconfig.sh
. "$REPO/scripts/pgconfig.sh"
pgconfig_resolve || die "pg_config not found"
PGBIN=$("$PG_CONFIG" --bindir) || die "$PG_CONFIG --bindir failed"
echo "PG_CONFIG=$PG_CONFIG ($("$PG_CONFIG" --version))"
export PATH="$PGBIN:$PATH"
# Debian's python3 (installed by deps.sh) starts ~10x faster than a pyenv
# shim; the regress suites start mockctl.py dozens of times.
if [ -x /usr/bin/python3 ]; then
  export PATH="$PGBIN:/usr/bin:$PATH"
fi

# --- 2. build + install -----------------------------------------------------
say "build"
make -j2 || die "build failed"

say "install"
PKGLIBDIR=$("$PG_CONFIG" --pkglibdir)
SHAREDIR=$("$PG_CONFIG" --sharedir)
if [[ $(id -u) -ne 0 && ! ( -w "$PKGLIBDIR" && -w "$SHAREDIR/extension" ) ]]; then
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		sudo -n make install PG_CONFIG="$PG_CONFIG" || die "make install failed"
	else
		die "cannot write to $PKGLIBDIR: run 'sudo make install' first, or run as root"
	fi
else
	make install || die "make install failed"
fi

# --- 3. cluster + mock ------------------------------------------------------
say "cluster"
TMPDIR_TEST=$(mktemp -d /tmp/usage_fdw_test.XXXXXX) || die "mktemp failed"
CLUSTER_STARTED=1
bash "$REPO/scripts/cluster.sh" start "$TMPDIR_TEST" --dataset test ||
	die "could not start the test cluster and mock API"
# shellcheck source=/dev/null
. "$TMPDIR_TEST/env.sh"
export PGHOST PGPORT PGUSER MOCK_URL
export USAGE_FDW_TEST_DIR="$TMPDIR_TEST"
unset PGDATABASE PGSERVICE PGOPTIONS PGPASSWORD
echo "PGHOST=$PGHOST PGPORT=$PGPORT PGUSER=$PGUSER MOCK_URL=$MOCK_URL"

# --- 4. pg_regress ----------------------------------------------------------
say "pg_regress (make installcheck)"
rm -f regression.diffs regression.out
REGRESS_LOG="$TMPDIR_TEST/installcheck.log"
regress_args=()
if [[ -n "${USAGE_FDW_REGRESS:-}" ]]; then
	regress_args=("REGRESS=${USAGE_FDW_REGRESS/none/}")
fi
if [[ "${USAGE_FDW_REGRESS:-}" == none ]]; then
	echo "All 0 tests passed (USAGE_FDW_REGRESS=none)" >"$REGRESS_LOG"
	regress_rc=0
else
	with_timeout "$REGRESS_TIMEOUT" make installcheck "${regress_args[@]}" 2>&1 | tee "$REGRESS_LOG"
	regress_rc=${PIPESTATUS[0]}
fi

summary=$(grep -E '(All [0-9]+ tests passed|[0-9]+ of [0-9]+ tests failed)' "$REGRESS_LOG" | tail -n 1)
if [[ "$summary" =~ All\ ([0-9]+)\ tests\ passed ]]; then
	PASSED=$((PASSED + BASH_REMATCH[1]))
	if ((regress_rc != 0)); then
		FAILED=$((FAILED + 1))
		FAILED_NAMES+=("pg_regress (exit status $regress_rc)")
	fi
elif [[ "$summary" =~ ([0-9]+)\ of\ ([0-9]+)\ tests\ failed ]]; then
	nfail=${BASH_REMATCH[1]}
	ntotal=${BASH_REMATCH[2]}
	PASSED=$((PASSED + ntotal - nfail))
	FAILED=$((FAILED + nfail))
	# names of the failed suites, from pg_regress's own lines:
	# "test NAME ... FAILED" up to 15, "not ok N - NAME  12 ms" from 16 on
	while IFS= read -r name; do
		FAILED_NAMES+=("pg_regress: $name")
	done < <(sed -nE -e 's/^[[:space:]]*(test[[:space:]]+)?([A-Za-z0-9_.-]+)[[:space:]]+\.\.\.[[:space:]]+FAILED.*/\2/p' \
		-e 's/^not ok[[:space:]]+[0-9]+[[:space:]]+[-+][[:space:]]+([A-Za-z0-9_.-]+).*/\1/p' "$REGRESS_LOG")
else
	FAILED=$((FAILED + 1))
	FAILED_NAMES+=("pg_regress (no result line; exit status $regress_rc)")
fi
if [[ -s regression.diffs ]]; then
	echo "----- regression.diffs (first 400 lines; whole file: $REPO/regression.diffs) -----"
	head -n 400 regression.diffs
	echo "-----"
fi

# --- 5/6. python tests ------------------------------------------------------
run_py_test() {
	local t=$1 out rc last p f
	say "$t"
	out="$TMPDIR_TEST/$(basename "$t" .py).out"
	with_timeout "$PYTEST_TIMEOUT" python3 -u "$t" 2>&1 | tee "$out"
	rc=${PIPESTATUS[0]}
	last=$(grep -E '^[[:space:]]*[0-9]+ passed, [0-9]+ failed' "$out" | tail -n 1)
	if [[ "$last" =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
		p=${BASH_REMATCH[1]}
		f=${BASH_REMATCH[2]}
		PASSED=$((PASSED + p))
		FAILED=$((FAILED + f))
		if ((f > 0)); then
			FAILED_NAMES+=("$t ($f failed)")
		elif ((rc != 0)); then
			FAILED=$((FAILED + 1))
			FAILED_NAMES+=("$t (exit status $rc)")
		fi
	else
		FAILED=$((FAILED + 1))
		if ((rc == 124 || rc == 137)); then
			FAILED_NAMES+=("$t (timed out after $PYTEST_TIMEOUT s)")
		else
			FAILED_NAMES+=("$t (no 'N passed, N failed' line; exit status $rc)")
		fi
	fi
}

shopt -s nullglob
py_tests=(test/t_*.py)
shopt -u nullglob
if ((${#py_tests[@]} > 0)); then
	mapfile -t py_tests < <(printf '%s\n' "${py_tests[@]}" | LC_ALL=C sort)
fi
if [[ -f test/mock_selftest.py ]]; then
	py_tests+=(test/mock_selftest.py)
fi
for t in "${py_tests[@]}"; do
	if [[ -n "${USAGE_FDW_PYTESTS:-}" && " $USAGE_FDW_PYTESTS " != *" $(basename "$t" .py) "* ]]; then
		continue
	fi
	run_py_test "$t"
done

# --- summary ----------------------------------------------------------------
echo
if ((FAILED > 0)); then
	echo "Failures:"
	for n in "${FAILED_NAMES[@]}"; do echo "  - $n"; done
	echo "Logs: $TMPDIR_TEST/postgres.log (server), $TMPDIR_TEST/mock.log (mock API)"
fi
SUMMARY="make test: $PASSED passed, $FAILED failed"
((FAILED == 0))
