#!/usr/bin/env bash
# A throwaway PostgreSQL cluster plus the mock vendor API, for tests and the demo.
#
#   bash scripts/cluster.sh start DIR [--dataset test|demo]
#   bash scripts/cluster.sh stop DIR
#
# start: initdb into DIR/data, start postgres listening only on a unix socket in
# DIR (on a free port number), start test/mock_api.py on a free 127.0.0.1 port,
# and write DIR/env.sh exporting PGHOST, PGPORT, PGUSER, MOCK_URL, and the
# paths of the server log (USAGE_FDW_PGLOG) and the mock's log (USAGE_FDW_MOCK_LOG).
# PIDs go to DIR/postgres.pid and DIR/mock.pid; logs to DIR/postgres.log and
# DIR/mock.log.  If anything fails, what was started is stopped again and the
# script exits non-zero showing the end of the logs.
#
# stop: stop postgres (pg_ctl stop -m fast, SIGKILL after 10 s) and the mock
# (SIGTERM, SIGKILL after 5 s), by PID.  The postmaster is the one that the
# data directory's postmaster.pid names now (so a cluster restarted since
# start, e.g. with "pg_ctl restart", is stopped too), else DIR/postgres.pid.
# Idempotent; never fails when nothing runs; fails (and removes nothing) when
# a process it should stop is still there.  DIR itself is left in place (the
# caller removes it).
#
# restart: pg_ctl restart of the cluster (the settings in its postgresql.conf,
# e.g. shared_preload_libraries added since start), the same log; the mock
# keeps running; DIR/postgres.pid names the new postmaster.
#
# PostgreSQL refuses to run as root: when we are root the cluster runs as the
# "postgres" system user.  When the postgres user cannot reach DIR, or DIR is
# too long for a unix socket path, the data directory and the socket live in a
# private directory under /tmp instead (recorded in DIR/run_dir, removed by stop).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/pgconfig.sh
. "$REPO/scripts/pgconfig.sh"   # PG_CONFIG: which PostgreSQL's initdb/pg_ctl/psql
PG_USER_OS=postgres          # OS user that runs the cluster when we are root
PG_SUPERUSER=postgres        # database superuser created by initdb

usage() {
	echo "usage: $0 start DIR [--dataset test|demo] | stop DIR | restart DIR" >&2
	exit 2
}

log() { echo "cluster: $*" >&2; }

# --- helpers ------------------------------------------------------------------

bindir() {
	local d
	pgconfig_resolve || { log "pg_config not found (run scripts/deps.sh, or set PG_CONFIG)"; return 1; }
	d=$("$PG_CONFIG" --bindir 2>/dev/null) || { log "$PG_CONFIG --bindir failed"; return 1; }
	[[ -x "$d/initdb" && -x "$d/pg_ctl" ]] || { log "no initdb/pg_ctl in $d"; return 1; }
	echo "$d"
}

is_root() { [[ $(id -u) -eq 0 ]]; }

# Run a command as the user that owns the cluster, from a directory it can read.
as_pg() {
	if is_root; then
		(cd / && runuser -u "$PG_USER_OS" -- "$@")
	else
		(cd / && "$@")
	fi
}

# Is PID alive, and is its command line matching PATTERN (guards against reuse)?
pid_alive() {
	local pid=$1 pattern=${2:-}
	[[ "$pid" =~ ^[0-9]+$ ]] || return 1
	kill -0 "$pid" 2>/dev/null || return 1
	if [[ -n "$pattern" && -r /proc/$pid/cmdline ]]; then
		local cmd
		cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null || true)
		# a zombie has an empty command line: treat as gone
		[[ -n "$cmd" ]] || return 1
		[[ "$cmd" == *"$pattern"* ]] || return 1
	fi
	return 0
}

# The PID of the postmaster running in data directory $1 (first line of its
# postmaster.pid, alive, and its working directory is that data directory, as
# a postmaster's is: a stale file whose PID now belongs to another process is
# not taken); non-zero when there is none.
postmaster_of() {
	local data=$1 pid
	[[ -s "$data/postmaster.pid" ]] || return 1
	pid=$(head -n 1 "$data/postmaster.pid" 2>/dev/null || true)
	pid_alive "$pid" postgres || return 1
	runs_in "$pid" "$data" || return 1
	echo "$pid"
}

# Is the working directory of PID $1 the directory $2 (true when it cannot be
# read)?  A postmaster's is its data directory, also once that was removed.
runs_in() {
	local pid=$1 data=$2 cwd real
	cwd=$(readlink "/proc/$pid/cwd" 2>/dev/null) || return 0
	real=$(cd "$data" 2>/dev/null && pwd -P) || real=$data
	[[ "${cwd% (deleted)}" == "$real" ]]
}

# PIDs whose parent is $1 (from /proc, so no procps needed).
children_of() {
	local parent=$1 f stat rest
	local -a fields
	for f in /proc/[0-9]*/stat; do
		stat=$(<"$f") 2>/dev/null || continue
		rest=${stat##*) }
		read -r -a fields <<<"$rest"
		if [[ "${fields[1]:-}" == "$parent" ]]; then
			f=${f#/proc/}
			echo "${f%/stat}"
		fi
	done 2>/dev/null
}

# After a process has exited it may linger a moment as a zombie until init reaps
# it (tools such as pgrep still list it): give that up to 3 s, best effort.
wait_reaped() {
	local pid=$1 i
	[[ "$pid" =~ ^[0-9]+$ ]] || return 0
	for ((i = 0; i < 30; i++)); do
		[[ -e /proc/$pid ]] || return 0
		sleep 0.1
	done
	return 0
}

# Wait up to $2 seconds (tenths resolution) for PID $1 to be gone.
wait_gone() {
	local pid=$1 secs=$2 pattern=${3:-} i
	for ((i = 0; i < secs * 10; i++)); do
		pid_alive "$pid" "$pattern" || return 0
		sleep 0.1
	done
	! pid_alive "$pid" "$pattern"
}

free_port() {
	python3 - <<'EOF'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

tail_log() {
	local f=$1
	if [[ -s "$f" ]]; then
		echo "----- last lines of $f -----" >&2
		tail -n 40 "$f" >&2
		echo "-----" >&2
	fi
}

# --- stop ---------------------------------------------------------------------

do_stop() {
	local dir=$1
	[[ -d "$dir" ]] || return 0
	dir=$(cd "$dir" && pwd)
	local run=$dir bin pid kids k
	local -a reap=()
	[[ -s "$dir/run_dir" ]] && run=$(<"$dir/run_dir")

	local left=0
	# postgres: the postmaster the data directory names now (it changes with a
	# restart), else the one that start recorded
	pid=""
	if ! pid=$(postmaster_of "$run/data"); then
		pid=""
		[[ -s "$dir/postgres.pid" ]] && pid=$(<"$dir/postgres.pid")
		# a PID of before a restart may belong to another server by now
		pid_alive "$pid" postgres && ! runs_in "$pid" "$run/data" && pid=""
	fi
	if pid_alive "$pid" postgres; then
		if bin=$(bindir 2>/dev/null) && [[ -d "$run/data" ]]; then
			as_pg "$bin/pg_ctl" stop -D "$run/data" -m fast -w -t 10 >/dev/null 2>&1 || true
		else
			kill -TERM "$pid" 2>/dev/null || true
		fi
		if ! wait_gone "$pid" 10 postgres; then
			log "postgres (pid $pid) did not stop in 10 s: killing it"
			kids=$(children_of "$pid")
			kill -KILL "$pid" 2>/dev/null || true
			for k in $kids; do kill -KILL "$k" 2>/dev/null || true; done
			wait_gone "$pid" 5 postgres || { log "postgres pid $pid still alive"; left=1; }
		fi
		reap+=("$pid")
	fi
	# a postmaster still running in the data directory (whatever started it)
	if pid=$(postmaster_of "$run/data"); then
		log "postgres (pid $pid) still runs in $run/data"
		left=1
	fi

	# mock API
	pid=""
	[[ -s "$dir/mock.pid" ]] && pid=$(<"$dir/mock.pid")
	if pid_alive "$pid" mock_api; then
		kill -TERM "$pid" 2>/dev/null || true
		if ! wait_gone "$pid" 5 mock_api; then
			log "mock API (pid $pid) did not stop in 5 s: killing it"
			kill -KILL "$pid" 2>/dev/null || true
			wait_gone "$pid" 5 mock_api || { log "mock pid $pid still alive"; left=1; }
		fi
		reap+=("$pid")
	fi

	for pid in "${reap[@]}"; do wait_reaped "$pid"; done
	if ((left)); then
		log "not everything stopped: $dir (and its data directory) left in place"
		return 1
	fi

	# A private runtime directory under /tmp: keep its log, then remove it.
	if [[ "$run" != "$dir" && -d "$run" ]]; then
		if [[ -f "$run/postgres.log" ]]; then
			rm -f "$dir/postgres.log"
			cp "$run/postgres.log" "$dir/postgres.log" 2>/dev/null || true
		fi
		rm -rf "$run"
		rm -f "$dir/run_dir"
	fi
	return 0
}

# --- restart ------------------------------------------------------------------

do_restart() {
	local dir=$1 run bin pid port
	[[ -s "$dir/env.sh" ]] || { log "$dir holds no started cluster"; exit 1; }
	dir=$(cd "$dir" && pwd)
	run=$dir
	[[ -s "$dir/run_dir" ]] && run=$(<"$dir/run_dir")
	bin=$(bindir) || exit 1
	if ! as_pg "$bin/pg_ctl" restart -D "$run/data" -l "$run/postgres.log" -m fast -w -t 60 -s \
		>"$run/pg_ctl.log" 2>&1; then
		cat "$run/pg_ctl.log" >&2 || true
		tail_log "$run/postgres.log"
		log "pg_ctl restart failed"
		exit 1
	fi
	pid=$(postmaster_of "$run/data") || { log "no postmaster after restart"; exit 1; }
	echo "$pid" >"$dir/postgres.pid"
	port=$(<"$dir/postgres.port")
	if ! as_pg "$bin/psql" -X -q -h "$run" -p "$port" -U "$PG_SUPERUSER" -d postgres -c 'select 1' >/dev/null 2>"$run/psql_check.log"; then
		cat "$run/psql_check.log" >&2 || true
		log "cannot connect to the restarted cluster"
		exit 1
	fi
	log "postgres restarted (pid $pid)"
}

# --- start --------------------------------------------------------------------

STARTED_DIR=""
start_failed() {
	local msg=$1
	log "start failed: $msg"
	if [[ -n "$STARTED_DIR" ]]; then
		local run=$STARTED_DIR
		[[ -s "$STARTED_DIR/run_dir" ]] && run=$(<"$STARTED_DIR/run_dir")
		if [[ -s "$run/postgres.log" ]]; then
			tail_log "$run/postgres.log"
		else
			tail_log "$run/initdb.log"
		fi
		tail_log "$STARTED_DIR/mock.out"
		tail_log "$STARTED_DIR/mock.log"
		do_stop "$STARTED_DIR" || true
		log "logs are in $STARTED_DIR"
	fi
	exit 1
}

do_start() {
	local dir=$1 dataset=$2
	local bin
	bin=$(bindir) || exit 1
	if is_root && ! id -u "$PG_USER_OS" >/dev/null 2>&1; then
		log "running as root, but there is no '$PG_USER_OS' user to run PostgreSQL (run scripts/deps.sh)"
		exit 1
	fi
	if [[ ! -f "$REPO/test/mock_api.py" ]]; then
		log "$REPO/test/mock_api.py not found"
		exit 1
	fi

	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if [[ -e "$dir/data" || -e "$dir/env.sh" || -e "$dir/run_dir" ]]; then
		log "$dir already holds a cluster: run '$0 stop $dir' and remove it first"
		exit 1
	fi
	STARTED_DIR=$dir
	trap 'start_failed "interrupted"' INT TERM

	# Where the data directory and the socket live.
	local run=$dir
	if is_root; then
		chown "$PG_USER_OS": "$dir"
		chmod 0755 "$dir"
	fi
	# sun_path holds 107 bytes: DIR + "/.s.PGSQL.NNNNN" must fit.
	if ((${#dir} > 90)) || ! as_pg test -w "$dir" -a -x "$dir" 2>/dev/null; then
		run=$(mktemp -d /tmp/usage_fdw_run.XXXXXX)
		is_root && chown "$PG_USER_OS": "$run"
		chmod 0755 "$run"
		echo "$run" >"$dir/run_dir"
		ln -sfn "$run/postgres.log" "$dir/postgres.log"
		log "using $run for the data directory and socket (the postgres user cannot use $dir directly)"
	fi

	# initdb
	if ! as_pg "$bin/initdb" -D "$run/data" -A trust -U "$PG_SUPERUSER" -E UTF8 --locale=C --no-sync \
		>"$run/initdb.log" 2>&1; then
		start_failed "initdb failed"
	fi

	local port
	port=$(free_port) || start_failed "could not find a free port"
	cat >>"$run/data/postgresql.conf" <<EOF

# --- usage_fdw throwaway cluster (scripts/cluster.sh) ---
listen_addresses = ''
port = $port
unix_socket_directories = '$run'
fsync = off
synchronous_commit = off
full_page_writes = off
log_min_messages = warning
logging_collector = off
EOF
	if ! as_pg "$bin/pg_ctl" start -D "$run/data" -l "$run/postgres.log" -w -t 60 -s >"$run/pg_ctl.log" 2>&1; then
		cat "$run/pg_ctl.log" >&2 || true
		start_failed "pg_ctl start failed"
	fi
	local pgpid
	pgpid=$(head -n 1 "$run/data/postmaster.pid" 2>/dev/null || true)
	[[ "$pgpid" =~ ^[0-9]+$ ]] || start_failed "no postmaster.pid after start"
	echo "$pgpid" >"$dir/postgres.pid"
	echo "$port" >"$dir/postgres.port"

	# mock API
	rm -f "$dir/mock.port"
	local -a mock_cmd=(python3 -u "$REPO/test/mock_api.py" --port 0 --port-file "$dir/mock.port"
		--log-file "$dir/mock.log")
	[[ -n "$dataset" ]] && mock_cmd+=(--dataset "$dataset")
	"${mock_cmd[@]}" </dev/null >"$dir/mock.out" 2>&1 &
	local mockpid=$!
	echo "$mockpid" >"$dir/mock.pid"
	local i mockport=""
	for ((i = 0; i < 150; i++)); do
		if [[ -s "$dir/mock.port" ]]; then
			mockport=$(<"$dir/mock.port")
			mockport=${mockport//[[:space:]]/}
			[[ "$mockport" =~ ^[0-9]+$ ]] && break
			mockport=""
		fi
		kill -0 "$mockpid" 2>/dev/null || start_failed "the mock API exited during start-up"
		sleep 0.1
	done
	[[ -n "$mockport" ]] || start_failed "the mock API wrote no port file within 15 s"

	# A quick connection check, so that callers get a working cluster or an error.
	if ! as_pg "$bin/psql" -X -q -h "$run" -p "$port" -U "$PG_SUPERUSER" -d postgres -c 'select 1' >/dev/null 2>"$run/psql_check.log"; then
		cat "$run/psql_check.log" >&2 || true
		start_failed "cannot connect to the new cluster"
	fi

	local tmp="$dir/env.sh.tmp"
	{
		echo "# written by scripts/cluster.sh: source it to talk to this cluster and mock API"
		printf 'export PGHOST=%q\n' "$run"
		printf 'export PGPORT=%q\n' "$port"
		printf 'export PGUSER=%q\n' "$PG_SUPERUSER"
		printf 'export MOCK_URL=%q\n' "http://127.0.0.1:$mockport"
		printf 'export USAGE_FDW_PGLOG=%q\n' "$run/postgres.log"
		printf 'export USAGE_FDW_MOCK_LOG=%q\n' "$dir/mock.log"
	} >"$tmp"
	mv "$tmp" "$dir/env.sh"
	trap - INT TERM
	log "postgres (pid $pgpid) on socket $run port $port; mock API (pid $mockpid, dataset ${dataset:-default}) at http://127.0.0.1:$mockport"
}

# --- main ---------------------------------------------------------------------

[[ $# -ge 2 ]] || usage
cmd=$1
dir=$2
shift 2
case "$cmd" in
start)
	dataset=""
	while [[ $# -gt 0 ]]; do
		case "$1" in
		--dataset)
			[[ $# -ge 2 ]] || usage
			dataset=$2
			shift 2
			;;
		--dataset=*)
			dataset=${1#--dataset=}
			shift
			;;
		*) usage ;;
		esac
	done
	do_start "$dir" "$dataset"
	;;
stop)
	[[ $# -eq 0 ]] || usage
	do_stop "$dir"
	;;
restart)
	[[ $# -eq 0 ]] || usage
	do_restart "$dir"
	;;
*) usage ;;
esac
