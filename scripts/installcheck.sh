#!/usr/bin/env bash
# "make installcheck" against a PostgreSQL that is already running (PGHOST,
# PGPORT, PGUSER as for psql; the extension installed there): the pg_regress
# suites need the mock vendor API, and its address in MOCK_URL.
#
#   bash scripts/installcheck.sh COMMAND [ARG...]
#
# With MOCK_URL set (scripts/test.sh, or a mock started by hand) it just runs
# COMMAND.  Otherwise it starts test/mock_api.py (test dataset) on a free
# 127.0.0.1 port, runs COMMAND with MOCK_URL exported, and stops the mock by its
# PID afterwards, whatever COMMAND's exit status, and on an interrupt.  The
# mock's logs are removed when COMMAND succeeds, kept (and named) when it fails.
#
# The server's backends send their requests to MOCK_URL, so the server must run
# on this machine.  The Makefile runs "$(MAKE) installcheck" through this script
# when MOCK_URL is not set; the inner make sees MOCK_URL and runs PGXS's own
# installcheck (pg_regress).
# shellcheck disable=SC2317  # (stop_mock and finish run from traps)
set -uo pipefail

if [[ $# -eq 0 ]]; then
	echo "usage: $0 COMMAND [ARG...]" >&2
	exit 2
fi
if [[ -n "${MOCK_URL:-}" ]]; then
	exec "$@"
fi
# (an empty MOCK_URL= on make's command line would hide ours from the inner make)
if [[ -n "${USAGE_FDW_INSTALLCHECK_MOCK:-}" ]]; then
	echo "installcheck: MOCK_URL is empty inside the mock's run: leave it off make's command line" >&2
	exit 2
fi

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
log() { echo "installcheck: $*" >&2; }

DIR=$(mktemp -d "${TMPDIR:-/tmp}/usage_fdw_installcheck.XXXXXX") || {
	log "mktemp failed"
	exit 1
}
MOCK_PID=""

# Stop the mock (our own child, so its PID cannot have been reused before we
# reap it): SIGTERM, SIGKILL after 5 s.
stop_mock() {
	local i
	[[ -n "$MOCK_PID" ]] || return 0
	if kill -0 "$MOCK_PID" 2>/dev/null; then
		kill -TERM "$MOCK_PID" 2>/dev/null || true
		for ((i = 0; i < 50; i++)); do
			kill -0 "$MOCK_PID" 2>/dev/null || break
			# a zombie answers kill -0 until it is reaped: look at its state
			[[ "$(awk '{print $3}' "/proc/$MOCK_PID/stat" 2>/dev/null)" == Z ]] && break
			sleep 0.1
		done
		if kill -0 "$MOCK_PID" 2>/dev/null &&
			[[ "$(awk '{print $3}' "/proc/$MOCK_PID/stat" 2>/dev/null)" != Z ]]; then
			log "the mock API (pid $MOCK_PID) did not stop in 5 s: killing it"
			kill -KILL "$MOCK_PID" 2>/dev/null || true
		fi
	fi
	wait "$MOCK_PID" 2>/dev/null
	MOCK_PID=""
}

show_logs() {
	local f
	for f in "$DIR/mock.out" "$DIR/mock.log"; do
		if [[ -s "$f" ]]; then
			echo "----- last lines of $f -----" >&2
			tail -n 20 "$f" >&2
		fi
	done
}

RC=1
finish() {
	trap - EXIT INT TERM
	stop_mock
	if ((RC == 0)); then
		rm -rf "$DIR"
	else
		log "mock API logs kept in $DIR (mock.log, mock.out)"
	fi
	exit "$RC"
}
trap finish EXIT
# a background job of a script ignores SIGINT: stop the mock ourselves
trap 'RC=130; exit' INT
trap 'RC=143; exit' TERM

python3 -u "$REPO/test/mock_api.py" --host 127.0.0.1 --port 0 --port-file "$DIR/mock.port" \
	--log-file "$DIR/mock.log" --dataset test </dev/null >"$DIR/mock.out" 2>&1 &
MOCK_PID=$!

port=""
for ((i = 0; i < 150; i++)); do
	if [[ -s "$DIR/mock.port" ]]; then
		port=$(<"$DIR/mock.port")
		port=${port//[[:space:]]/}
		[[ "$port" =~ ^[0-9]+$ ]] && break
		port=""
	fi
	if ! kill -0 "$MOCK_PID" 2>/dev/null; then
		log "the mock API exited during start-up"
		show_logs
		exit
	fi
	sleep 0.1
done
if [[ -z "$port" ]]; then
	log "the mock API wrote no port file within 15 s"
	show_logs
	exit
fi

export MOCK_URL="http://127.0.0.1:$port"
export USAGE_FDW_INSTALLCHECK_MOCK=$MOCK_PID
log "mock API (pid $MOCK_PID) at $MOCK_URL"
"$@"
RC=$?
exit
