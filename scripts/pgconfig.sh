# Which PostgreSQL the scripts build, install, start and test against.
# Sourced (not run) by deps.sh, test.sh, cluster.sh, demo.sh and bench.sh so
# that they all agree.
#
#   . scripts/pgconfig.sh
#   pgconfig_resolve || exit 1      # sets and exports PG_CONFIG
#
# The choice, first match wins:
#   1. $PG_CONFIG when set (e.g. make test PG_CONFIG=/usr/lib/postgresql/17/bin/pg_config)
#   2. pg_config on PATH, when it belongs to an installed server (its
#      pgxs.mk exists): on Debian that is postgresql-common's wrapper
#   3. the newest /usr/lib/postgresql/N/bin/pg_config
# The chosen path is exported as PG_CONFIG, which the Makefile (PGXS), the
# pg_regress run, cluster.sh and test/fdwtest.py then use.

# Print the pg_config to use; non-zero when there is none.
pgconfig_find() {
	if [[ -n "${PG_CONFIG:-}" ]]; then
		# a bare name ("pg_config") is looked up on PATH
		if [[ "$PG_CONFIG" != */* ]]; then
			command -v "$PG_CONFIG" 2>/dev/null || return 1
			return 0
		fi
		[[ -x "$PG_CONFIG" ]] || return 1
		echo "$PG_CONFIG"
		return 0
	fi
	local p pgxs
	if p=$(command -v pg_config 2>/dev/null); then
		pgxs=$("$p" --pgxs 2>/dev/null || true)
		if [[ -n "$pgxs" && -f "$pgxs" ]]; then
			echo "$p"
			return 0
		fi
	fi
	p=$(ls -1d /usr/lib/postgresql/[0-9]*/bin/pg_config 2>/dev/null | sort -t/ -k5,5n | tail -n 1)
	[[ -n "$p" ]] || return 1
	echo "$p"
}

# Set and export PG_CONFIG to an absolute path, or explain why not.
pgconfig_resolve() {
	local p
	if ! p=$(pgconfig_find); then
		if [[ -n "${PG_CONFIG:-}" ]]; then
			echo "PG_CONFIG=$PG_CONFIG: no such program" >&2
		else
			echo "no pg_config found (run scripts/deps.sh, or set PG_CONFIG)" >&2
		fi
		return 1
	fi
	PG_CONFIG=$p
	export PG_CONFIG
}

# The major version of a pg_config ("15", "19"), from its --version
# ("PostgreSQL 19rc1 (Debian ...)", "PostgreSQL 15.20 (...)").
pgconfig_major() {
	local v
	v=$("$1" --version 2>/dev/null) || return 1
	[[ "$v" =~ PostgreSQL\ ([0-9]+) ]] || return 1
	echo "${BASH_REMATCH[1]}"
}
