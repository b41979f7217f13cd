#!/usr/bin/env bash
# "make test-matrix": run "make test" against each supported PostgreSQL
# version, each in a Debian chroot with that version's own packages.
#
#   bash scripts/matrix.sh [VERSION...]        default: 17 18 19
#
#   17   Debian trixie        postgresql-17
#   18   Debian sid           postgresql-18
#   19   Debian sid + experimental, only the PostgreSQL 19 packages and libpq
#        from experimental (pinned; "-t experimental" would pull a perl that
#        conflicts with sid's)
# (15 is the host's own bookworm PostgreSQL: plain "make test" tests it.)
#
# For each version:
#   1. the chroot: made once with debootstrap (minbase) and kept in the cache
#      directory, outside the repository; it is made again when its recipe
#      changed or it is older than USAGE_FDW_MATRIX_MAX_AGE days
#   2. a copy of the repository's files in the chroot's /usr/src/usage_fdw:
#      by default the working tree as it is (tracked and untracked files that
#      .gitignore does not exclude, uncommitted edits included); with
#      USAGE_FDW_MATRIX_SOURCE=HEAD the committed tree (git archive HEAD).
#      A copy, not a bind mount: the build writes objects and pg_regress
#      results into the tree, as root, and each version needs its own.
#   3. inside the chroot: scripts/deps.sh (installs postgresql-N, its dev
#      package and the test dependencies; nothing once the chroot has them),
#      then "make test" with PG_CONFIG=/usr/lib/postgresql/N/bin/pg_config
#   4. one line: version, passed/failed counts, compiler warnings, seconds
#
# Isolation and clean-up: every step that runs in a chroot runs in its own
# mount and PID namespace (unshare).  /proc, /sys, /dev (a tmpfs with the
# usual device nodes), /dev/pts (a new devpts instance) and a tmpfs /dev/shm
# are mounted in that namespace only while the step runs, and unmounted when
# it ends; the host never sees these mounts.  When the step ends, normally,
# on failure, on timeout or on ^C, its trap stops "make test" (which stops its
# cluster and mock by PID), and the kernel then ends whatever is left in the
# PID namespace.  No cluster or service starts while packages are installed:
# the chroot has a policy-rc.d that exits 101 and
# "create_main_cluster = false" in /etc/postgresql-common/createcluster.conf.
#
# The last line is "test-matrix: N passed, M failed": the sum over the gating
# versions.  The exit status is non-zero when a gating version failed.
#
# Environment knobs:
#   USAGE_FDW_MATRIX_CACHE=dir     chroots and logs (default /var/cache/usage_fdw-matrix)
#   USAGE_FDW_MATRIX_MIRROR=url    Debian mirror (default: the one the host's apt
#                                  sources name; there is no built-in fallback)
#   USAGE_FDW_MATRIX_OPTIONAL="19" versions reported but not gating (default 19,
#                                  a release candidate; "" makes all gating)
#   USAGE_FDW_MATRIX_SOURCE=HEAD   test the committed tree instead of the working tree
#   USAGE_FDW_MATRIX_TIMEOUT=s     limit per version for make test (default 1200)
#   USAGE_FDW_MATRIX_MAX_AGE=d     remake chroots older than d days (default 14)
#   USAGE_FDW_MATRIX_REFRESH=1     remake the chroots now
#   USAGE_FDW_MATRIX_PREPARE_ONLY=1  make the chroots and install the packages,
#                                  then stop (no make test)
#   USAGE_FDW_MATRIX_WARNINGS_OK=1 do not count compiler warnings as a failure
#   USAGE_FDW_MATRIX_FILTER_CURL=1 ignore expected-output lines that differ only
#                                  by libcurl's error texts (see curl_filter below)
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
SELF="$REPO/scripts/matrix.sh"

# Bumped whenever the chroot recipe below changes: cached chroots of an older
# recipe are made again.
RECIPE=1

CACHE=${USAGE_FDW_MATRIX_CACHE:-/var/cache/usage_fdw-matrix}
OPTIONAL=${USAGE_FDW_MATRIX_OPTIONAL-19}
SOURCE=${USAGE_FDW_MATRIX_SOURCE:-worktree}
TIMEOUT=${USAGE_FDW_MATRIX_TIMEOUT:-1200}
MAX_AGE=${USAGE_FDW_MATRIX_MAX_AGE:-14}

log() { echo "matrix: $*" >&2; }

# ---------------------------------------------------------------------------
# Inside a namespace (called by ns_run through unshare, as PID 1 of a new PID
# namespace with a private mount namespace):
#   matrix.sh __ns ROOT mount|nomount CMD...
# mounts the pseudo file systems into ROOT (for "mount"), runs CMD in its own
# process group, and on the way out stops that group and unmounts.
# ---------------------------------------------------------------------------
ns_main() {
	local root=$1 mode=$2
	shift 2
	local -a mounted=()
	local child=""

	# Unmount in reverse order; stop the command first.
	ns_cleanup() {
		local rc=$? i
		trap - EXIT INT TERM
		if [[ -n "$child" ]] && kill -0 "$child" 2>/dev/null; then
			kill -TERM -- "-$child" 2>/dev/null || kill -TERM "$child" 2>/dev/null || true
			for ((i = 0; i < 300; i++)); do
				kill -0 "$child" 2>/dev/null || break
				sleep 0.1
			done
			kill -KILL -- "-$child" 2>/dev/null || true
		fi
		for ((i = ${#mounted[@]} - 1; i >= 0; i--)); do
			umount "${mounted[i]}" 2>/dev/null || umount -l "${mounted[i]}" 2>/dev/null || true
		done
		# returning from PID 1 ends every process left in this PID namespace
		exit "$rc"
	}
	trap ns_cleanup EXIT
	trap 'exit 130' INT
	trap 'exit 143' TERM

	if [[ "$mode" == mount ]]; then
		# /proc of this PID namespace, a read-only /sys
		mount -t proc -o nosuid,nodev,noexec proc "$root/proc"
		mounted+=("$root/proc")
		mount -t sysfs -o ro,nosuid,nodev,noexec sysfs "$root/sys"
		mounted+=("$root/sys")
		# /dev: a small tmpfs with the usual nodes, not the host's /dev
		mount -t tmpfs -o mode=0755,nosuid,size=1m tmpfs "$root/dev"
		mounted+=("$root/dev")
		local n
		local name maj min
		for n in "null 1 3" "zero 1 5" "full 1 7" "random 1 8" "urandom 1 9" "tty 5 0"; do
			read -r name maj min <<<"$n"
			mknod -m 0666 "$root/dev/$name" c "$maj" "$min"
		done
		ln -s /proc/self/fd "$root/dev/fd"
		ln -s /proc/self/fd/0 "$root/dev/stdin"
		ln -s /proc/self/fd/1 "$root/dev/stdout"
		ln -s /proc/self/fd/2 "$root/dev/stderr"
		mkdir -m 0755 "$root/dev/pts"
		mount -t devpts -o newinstance,ptmxmode=0666,mode=0620,gid=5,nosuid,noexec devpts "$root/dev/pts"
		mounted+=("$root/dev/pts")
		ln -s pts/ptmx "$root/dev/ptmx"
		mkdir -m 1777 "$root/dev/shm"
		mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/dev/shm"
		mounted+=("$root/dev/shm")
	fi

	# the command in its own process group, so that the trap can stop all of it
	setsid "$@" </dev/null &
	child=$!
	local rc=0
	wait "$child" || rc=$?
	child=""
	exit "$rc"
}

if [[ "${1:-}" == __ns ]]; then
	shift
	ns_main "$@"
fi

# ---------------------------------------------------------------------------
# Outside: helpers
# ---------------------------------------------------------------------------

# The Debian mirror the host's apt uses (deb822 .sources or one-line .list).
host_mirror() {
	local m
	m=$(cat /etc/apt/sources.list.d/*.sources 2>/dev/null |
		sed -nE 's#^URIs:[[:space:]]*(https?://[^[:space:]]+/debian)/?([[:space:]].*)?$#\1#p' | head -n 1)
	if [[ -z "$m" ]]; then
		m=$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
			sed -nE 's#^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?(https?://[^[:space:]]+/debian)/?[[:space:]].*#\2#p' | head -n 1)
	fi
	echo "$m"
}
MIRROR=${USAGE_FDW_MATRIX_MIRROR:-$(host_mirror)}
if [[ -z "$MIRROR" ]]; then
	echo "test-matrix: no Debian mirror in the host's apt sources; set USAGE_FDW_MATRIX_MIRROR" >&2
	echo "test-matrix: 0 passed, 1 failed"
	exit 1
fi

# The Debian suite of each version.
suite_of() {
	case "$1" in
	17) echo trixie ;;
	18) echo sid ;;
	19) echo sid+experimental ;;
	*) return 1 ;;
	esac
}

is_optional() {
	local v
	for v in $OPTIONAL; do [[ "$v" == "$1" ]] && return 0; done
	return 1
}

# The process that runs a step in a namespace (for the traps below).
NS_PID=""

# Run CMD in a new mount + PID namespace, chrooted in ROOT with the pseudo file
# systems mounted ("mount"), or on the host side ("nomount", for debootstrap,
# which mounts what it needs itself).  A time limit of SECS; output to LOG.
ns_run() {
	local secs=$1 logf=$2
	shift 2
	local rc=0
	# --kill-child: if this unshare is killed, its child (PID 1 of the
	# namespace) gets SIGTERM and cleans up
	timeout -k 60 "$secs" unshare --mount --pid --fork --propagation private --kill-child=TERM \
		bash "$SELF" __ns "$@" >>"$logf" 2>&1 </dev/null &
	NS_PID=$!
	wait "$NS_PID" || rc=$?
	NS_PID=""
	return "$rc"
}

# On ^C or TERM: stop the running step (its namespace cleans up after itself).
outer_stop() {
	local sig=$1
	if [[ -n "$NS_PID" ]]; then
		kill -TERM "$NS_PID" 2>/dev/null || true
		wait "$NS_PID" 2>/dev/null || true
	fi
	log "interrupted"
	exit "$sig"
}

# ---------------------------------------------------------------------------
# The chroot of one version
# ---------------------------------------------------------------------------

# The recipe a chroot was made with; a cached chroot is used only when equal.
recipe_of() {
	echo "recipe=$RECIPE suite=$(suite_of "$1") mirror=$MIRROR"
}

# The chroot's configuration (written on every run, so that a cached chroot
# gets changes of it too).
configure_chroot() {
	local v=$1 root=$2 suite
	suite=$(suite_of "$v")
	# apt: the mirror's sid/experimental Release files can be past their
	# Valid-Until; no recommends; keep configuration files that are there
	# already (createcluster.conf below)
	cat >"$root/etc/apt/apt.conf.d/90usage-fdw-matrix" <<'EOF'
Acquire::Check-Valid-Until "false";
Acquire::Languages "none";
APT::Install-Recommends "false";
APT::Install-Suggests "false";
Dpkg::Options { "--force-confdef"; "--force-confold"; "--force-unsafe-io"; };
EOF
	{
		echo "deb $MIRROR ${suite%%+*} main"
		if [[ "$suite" == *+experimental ]]; then echo "deb $MIRROR experimental main"; fi
	} >"$root/etc/apt/sources.list"
	if [[ "$suite" == *+experimental ]]; then
		# from experimental only PostgreSQL 19 and the libpq it needs
		cat >"$root/etc/apt/preferences.d/usage-fdw-matrix" <<EOF
Package: postgresql-$v postgresql-server-dev-$v postgresql-client-$v libpq-dev libpq5
Pin: release a=experimental
Pin-Priority: 990
EOF
	fi
	# no service starts while packages are installed
	printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
	chmod 0755 "$root/usr/sbin/policy-rc.d"
	# and installing postgresql-N creates no "main" cluster
	mkdir -p "$root/etc/postgresql-common"
	echo "create_main_cluster = false" >"$root/etc/postgresql-common/createcluster.conf"
	# the mock API and the cluster use 127.0.0.1 / localhost
	grep -q localhost "$root/etc/hosts" 2>/dev/null ||
		printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' >>"$root/etc/hosts"
	cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || true
}

# Make (or reuse) the chroot of version V; sets CHROOT to its path.
CHROOT=""
ensure_chroot() {
	local v=$1 logf=$2
	local root="$CACHE/pg$v" suite stamp="$CACHE/pg$v.ready"
	suite=$(suite_of "$v")
	CHROOT=$root
	if [[ -f "$stamp" && "$(<"$stamp")" == "$(recipe_of "$v")" && -x "$root/bin/bash" &&
		-z "${USAGE_FDW_MATRIX_REFRESH:-}" ]] &&
		[[ -z $(find "$stamp" -mtime +"$MAX_AGE" 2>/dev/null) ]]; then
		configure_chroot "$v" "$root"
		return 0
	fi
	log "PG $v: making the $suite chroot in $root (about a minute)"
	rm -f "$stamp"
	rm -rf --one-file-system "$root"
	mkdir -p "$root"

	# debootstrap needs only the base suite; experimental is an apt source on top
	if ! ns_run 900 "$logf" / nomount debootstrap --variant=minbase "${suite%%+*}" "$root" "$MIRROR"; then
		log "PG $v: debootstrap failed (log: $logf)"
		return 1
	fi

	configure_chroot "$v" "$root"
	if ! ns_run 900 "$logf" "$root" mount chroot "$root" /usr/bin/env -i \
		PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive \
		apt-get update -q; then
		log "PG $v: apt-get update in the chroot failed (log: $logf)"
		return 1
	fi
	recipe_of "$v" >"$stamp"
}

# Copy the repository's files to ROOT/usr/src/usage_fdw (see the header).
copy_tree() {
	local root=$1 dest="$1/usr/src/usage_fdw"
	rm -rf --one-file-system "$dest"
	mkdir -p "$dest"
	if [[ "$SOURCE" == HEAD ]]; then
		git -C "$REPO" archive --format=tar HEAD | tar -x -C "$dest"
	elif git -C "$REPO" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
		# tracked and untracked-but-not-ignored files that exist on disk
		(cd "$REPO" && git ls-files -z --cached --others --exclude-standard |
			while IFS= read -r -d '' f; do [[ -e "$f" || -L "$f" ]] && printf '%s\0' "$f"; done |
			tar --null -T - -cf -) | tar -x -C "$dest"
	else
		(cd "$REPO" && tar -cf - --exclude=.git --exclude=results --exclude=.demo --exclude=.test \
			--exclude='*.o' --exclude='*.so' --exclude='*.bc' .) | tar -x -C "$dest"
	fi
}

# The lines of a regression diff that differ only by libcurl's wording of a
# transport error (7.88 on bookworm: "Couldn't connect to server", "transfer
# closed with N bytes remaining to read"; 8.x: "Could not connect to server",
# "end of response with N bytes missing").  Used only with
# USAGE_FDW_MATRIX_FILTER_CURL=1, until the extension words these itself.
CURL_RE="Couldn't connect to server|Could not connect to server|transfer closed with [0-9]+ bytes remaining to read|end of response with [0-9]+ bytes missing"

# ---------------------------------------------------------------------------
# One version
# ---------------------------------------------------------------------------
RESULT_LINES=()
TOTAL_PASSED=0
TOTAL_FAILED=0
GATING_FAILED=0

# The environment of every command in a chroot.
chroot_env() {
	local v=$1
	CHROOT_ENV=(/usr/bin/env -i
		PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
		HOME=/root LANG=C.UTF-8 TERM=dumb CI="${CI:-}"
		DEBIAN_FRONTEND=noninteractive UCF_FORCE_CONFFOLD=1
		PG_CONFIG="/usr/lib/postgresql/$v/bin/pg_config"
		USAGE_FDW_KEEP="${USAGE_FDW_KEEP:-}")
}

# Phase 1, for all versions at once (in the background; mostly downloads and
# unpacking): the chroot, the copy of the tree, and the packages (deps.sh).
# Writes "rc seconds" to $CACHE/logs/pgV.prep.
prepare_version() {
	local v=$1 t0 rc=0
	local logf="$CACHE/logs/pg$v.log"
	trap 'outer_stop 143' TERM
	trap 'outer_stop 130' INT
	t0=$(date +%s)
	if ensure_chroot "$v" "$logf"; then
		copy_tree "$CHROOT"
		rm -rf "$CHROOT"/tmp/usage_fdw_* "$CHROOT"/tmp/usage_fdw_make_test.lock 2>/dev/null || true
		chroot_env "$v"
		echo "===== matrix: PG $v: scripts/deps.sh" >>"$logf"
		ns_run 1200 "$logf" "$CHROOT" mount chroot "$CHROOT" "${CHROOT_ENV[@]}" \
			bash -c 'cd /usr/src/usage_fdw && bash scripts/deps.sh && apt-get clean' || rc=$?
		((rc == 0)) || log "PG $v: installing the packages failed (log: $logf)"
	else
		rc=1
	fi
	echo "$rc $(($(date +%s) - t0))" >"$CACHE/logs/pg$v.prep"
}

# Phase 2, one version after the other: make test in the chroot, and its line.
test_version() {
	local v=$1 t1 t2 root="$CACHE/pg$v" logf="$CACHE/logs/pg$v.log" suite rc=0
	local passed=0 failed=0 warnings=0 note="" prep_rc=1 prep_secs=0
	suite=$(suite_of "$v")
	if [[ -s "$CACHE/logs/pg$v.prep" ]]; then
		read -r prep_rc prep_secs <"$CACHE/logs/pg$v.prep"
	fi
	t1=$(date +%s)
	if ((prep_rc != 0)); then
		failed=1
		note="chroot or packages failed"
	else
		log "PG $v ($suite): make test (log: $logf)"
		{
			echo "===== matrix: PG $v on $suite, chroot $root, $(date -u '+%F %T') UTC"
			echo "===== source: $SOURCE of $REPO ($(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo no git))"
		} >>"$logf"
		chroot_env "$v"
		ns_run "$TIMEOUT" "$logf" "$root" mount chroot "$root" "${CHROOT_ENV[@]}" \
			bash -c 'cd /usr/src/usage_fdw && make test' || rc=$?
		t2=$(date +%s)

		local last
		last=$(grep -E '^make test: [0-9]+ passed, [0-9]+ failed' "$logf" | tail -n 1 || true)
		if [[ "$last" =~ ([0-9]+)\ passed,\ ([0-9]+)\ failed ]]; then
			passed=${BASH_REMATCH[1]}
			failed=${BASH_REMATCH[2]}
		else
			failed=1
			note="no result line (exit status $rc)"
			((rc == 124 || rc == 137)) && note="timed out after $TIMEOUT s"
		fi
		if ((rc != 0 && failed == 0)); then
			failed=1
			note="exit status $rc"
		fi
		# compiler warnings of the build (file:line:col: warning:)
		warnings=$(grep -cE '^[^[:space:]]+\.[ch]:[0-9]+:[0-9]+: warning:' "$logf" || true)
		if ((warnings > 0)) && [[ -z "${USAGE_FDW_MATRIX_WARNINGS_OK:-}" ]]; then
			failed=$((failed + 1))
		fi
		if [[ -n "${USAGE_FDW_MATRIX_FILTER_CURL:-}" ]] && ((failed > 0)) && curl_filter "$root"; then
			note="only libcurl wording differs (filtered)"
			passed=$((passed + failed))
			failed=0
		fi
		note="${note:+$note; }make test $((t2 - t1)) s"
	fi
	note="chroot+packages $prep_secs s, $note"
	local secs=$(($(date +%s) - t1 + prep_secs)) status=ok gate=""
	((failed == 0)) || status=FAILED
	is_optional "$v" && gate=" (not gating)"
	local line
	line=$(printf 'PG %-3s %-17s %-7s %4d passed, %d failed, %d warnings, %4d s (%s)%s' \
		"$v" "$suite" "$status" "$passed" "$failed" "$warnings" "$secs" "$note" "$gate")
	RESULT_LINES+=("$line")
	echo "matrix: $line"
	if ((failed > 0)); then
		# what failed, and the start of the regression diffs
		sed -n '/^Failures:/,/^Logs:/p' "$logf" | head -n 40
		grep -E '^[^[:space:]]+\.[ch]:[0-9]+:[0-9]+: warning:' "$logf" | head -n 20 || true
		sed -n '/^----- regression.diffs/,/^-----$/p' "$logf" | head -n 250
		echo "(whole log: $logf)"
	fi
	if ! is_optional "$v"; then
		TOTAL_PASSED=$((TOTAL_PASSED + passed))
		TOTAL_FAILED=$((TOTAL_FAILED + failed))
		((failed == 0)) || GATING_FAILED=1
	fi
}

# With USAGE_FDW_MATRIX_FILTER_CURL=1: succeed when every changed line of the
# chroot's regression.diffs is a libcurl wording difference, and nothing but
# pg_regress failed (uses test_version's $logf).
curl_filter() {
	local diffs="$1/usr/src/usage_fdw/regression.diffs"
	[[ -s "$diffs" ]] || return 1
	grep -qE '^  - (test/|.*\(exit status)' "$logf" && return 1
	! grep -E '^[-+][^-+]' "$diffs" | grep -vqE "$CURL_RE"
}

# ---------------------------------------------------------------------------
# main
# ---------------------------------------------------------------------------
[[ $(id -u) -eq 0 ]] || {
	log "needs root (debootstrap, chroot, mounts)"
	exit 1
}
VERSIONS=("$@")
((${#VERSIONS[@]} > 0)) || VERSIONS=(17 18 19)

# host tools: debootstrap (from Debian), unshare/flock (util-linux)
if ! command -v debootstrap >/dev/null 2>&1; then
	log "installing debootstrap"
	DEBIAN_FRONTEND=noninteractive apt-get update -q >&2 </dev/null
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends debootstrap >&2 </dev/null
fi
for tool in unshare flock timeout setsid; do
	command -v "$tool" >/dev/null 2>&1 || {
		log "$tool not found (util-linux / coreutils)"
		exit 1
	}
done

mkdir -p "$CACHE/logs"
# one matrix run at a time per cache directory
exec 8>"$CACHE/lock"
if ! flock -n 8; then
	log "another test-matrix run holds $CACHE/lock: waiting"
	flock 8
fi

for v in "${VERSIONS[@]}"; do
	suite_of "$v" >/dev/null || {
		log "unknown version $v (known: 17 18 19)"
		exit 2
	}
done
log "mirror $MIRROR, cache $CACHE, source: $SOURCE, versions: ${VERSIONS[*]}"

# phase 1: chroots and packages of all versions at the same time
PREP_PIDS=()
for v in "${VERSIONS[@]}"; do
	: >"$CACHE/logs/pg$v.log"
	rm -f "$CACHE/logs/pg$v.prep"
	prepare_version "$v" &
	PREP_PIDS+=($!)
done
# ^C / TERM during phase 1: stop every preparation (each stops its namespace)
stop_preps() {
	local p
	for p in "${PREP_PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PREP_PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	log "interrupted"
	exit "$1"
}
trap 'stop_preps 130' INT
trap 'stop_preps 143' TERM
for p in "${PREP_PIDS[@]}"; do wait "$p" || true; done
trap 'outer_stop 130' INT
trap 'outer_stop 143' TERM
if [[ -n "${USAGE_FDW_MATRIX_PREPARE_ONLY:-}" ]]; then
	for v in "${VERSIONS[@]}"; do
		log "PG $v: prepared (rc seconds: $(cat "$CACHE/logs/pg$v.prep" 2>/dev/null))"
	done
	exit 0
fi

# phase 2: make test, one version at a time (the tests measure time and load)
for v in "${VERSIONS[@]}"; do
	test_version "$v"
done

echo
echo "test-matrix results:"
for l in "${RESULT_LINES[@]}"; do echo "  $l"; done
echo "test-matrix: $TOTAL_PASSED passed, $TOTAL_FAILED failed"
((GATING_FAILED == 0))
