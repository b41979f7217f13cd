#!/usr/bin/env bash
# "make demo" / "make demo-stop".
#
#   bash scripts/demo.sh start    install what is missing, build, install, start a
#                                 throwaway cluster + the mock API (demo data) in
#                                 .demo/, create database usage_demo, run
#                                 demo/setup.sql and demo/reports.sql, print the
#                                 reports, the four commands that point the same
#                                 tables at the real APIs, and how to connect
#   bash scripts/demo.sh restart  restart the demo's postgres with the settings of
#                                 its postgresql.conf (e.g. pg_cron added to
#                                 shared_preload_libraries); the mock keeps running
#   bash scripts/demo.sh stop     stop the cluster and the mock, whatever happened
#                                 in between (a "pg_ctl restart" of its own, a
#                                 server already stopped): by the PIDs they have
#                                 now, checked gone; only then remove .demo/
#
# USAGE_FDW_DEMO_DIR=dir puts the demo somewhere else than .demo/ (the tests do).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/pgconfig.sh
. "$REPO/scripts/pgconfig.sh"   # PG_CONFIG: which PostgreSQL to use
cd "$REPO"
DEMO_DIR=${USAGE_FDW_DEMO_DIR:-$REPO/.demo}
DB=usage_demo

log() { echo "demo: $*" >&2; }

# Stop the cluster and the mock (scripts/cluster.sh stop: the postmaster that
# the data directory names now, the mock by its PID, both checked gone); only
# when that worked, remove the demo's directory.
stop_demo() {
	[[ -d "$DEMO_DIR" ]] || return 0
	if ! bash "$REPO/scripts/cluster.sh" stop "$DEMO_DIR"; then
		log "could not stop everything; $DEMO_DIR is left in place (run 'make demo-stop' again)"
		return 1
	fi
	rm -rf "$DEMO_DIR"
}

# Where the data directory is (DEMO_DIR/data, or a private directory under /tmp).
data_dir() {
	local run=$DEMO_DIR
	[[ -s "$DEMO_DIR/run_dir" ]] && run=$(<"$DEMO_DIR/run_dir")
	echo "$run/data"
}

restart_demo() {
	[[ -s "$DEMO_DIR/env.sh" ]] || { log "no demo is running (make demo)"; exit 1; }
	pgconfig_resolve
	bash "$REPO/scripts/cluster.sh" restart "$DEMO_DIR"
	# shellcheck source=/dev/null
	. "$DEMO_DIR/env.sh"
	log "restarted: postgres (pid $(<"$DEMO_DIR/postgres.pid")) with $(data_dir)/postgresql.conf;" \
		"the mock API is still at $MOCK_URL"
}

# On failure: stop what was started (no process is left behind), keep the logs.
on_error() {
	local rc=$?
	trap - EXIT
	if ((rc != 0)); then
		bash "$REPO/scripts/cluster.sh" stop "$DEMO_DIR" >/dev/null 2>&1 || true
		log "failed (exit status $rc); the cluster and mock API are stopped."
		if [[ -d "$DEMO_DIR" ]]; then
			log "logs: $DEMO_DIR/postgres.log, $DEMO_DIR/mock.log (make demo-stop removes them)"
		fi
	fi
	exit "$rc"
}

start_demo() {
	bash "$REPO/scripts/deps.sh"
	local pgbin
	pgconfig_resolve
	pgbin=$("$PG_CONFIG" --bindir)
	export PATH="$pgbin:$PATH"

	log "building"
	make -s -j2
	if [[ $(id -u) -ne 0 && ! -w "$("$PG_CONFIG" --pkglibdir)" ]]; then
		sudo -n make -s install PG_CONFIG="$PG_CONFIG"
	else
		make -s install
	fi

	stop_demo
	trap on_error EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM
	bash "$REPO/scripts/cluster.sh" start "$DEMO_DIR" --dataset demo
	# shellcheck source=/dev/null
	. "$DEMO_DIR/env.sh"
	export PGHOST PGPORT PGUSER MOCK_URL
	unset PGDATABASE PGSERVICE PGOPTIONS

	createdb "$DB"
	log "running demo/setup.sql"
	psql -X -q -v ON_ERROR_STOP=1 -v mock_url="$MOCK_URL" -d "$DB" -f demo/setup.sql \
		>"$DEMO_DIR/setup.out" 2>&1 || {
		cat "$DEMO_DIR/setup.out" >&2
		exit 1
	}
	log "running demo/reports.sql"
	echo
	psql -X -v ON_ERROR_STOP=1 -v mock_url="$MOCK_URL" -d "$DB" -f demo/reports.sql
	trap - EXIT INT TERM

	echo
	echo "=== 5. The same tables on the real APIs: four commands (demo/connect-real-apis.sql) ==="
	echo
	sed -e '1,2d' demo/connect-real-apis.sql
	cat <<EOF

============================================================================
The demo cluster and the mock API are running.

  Connect:   psql -h $PGHOST -p $PGPORT -U $PGUSER $DB
  Try:       \\d usage.*
             SELECT * FROM usage.monthly_robot_units;
             SELECT * FROM usage_history.daily_consumption ORDER BY day DESC LIMIT 20;
  Mock API:  $MOCK_URL  (MOCK_URL=$MOCK_URL python3 test/mockctl.py requests)
  Logs:      $DEMO_DIR/postgres.log, $DEMO_DIR/mock.log
  Schedule:  docs/scheduling.md (pg_cron: add its lines to
             $(data_dir)/postgresql.conf, then: bash scripts/demo.sh restart)

Stop it with:  make demo-stop
============================================================================
EOF
}

case "${1:-}" in
start) start_demo ;;
restart) restart_demo ;;
stop)
	stop_demo
	echo "demo: stopped"
	;;
*)
	echo "usage: $0 start|restart|stop" >&2
	exit 2
	;;
esac
