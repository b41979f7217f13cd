#!/usr/bin/env bash
# Install the Debian packages that building and testing usage_fdw needs, if any
# is missing.  Quiet when everything is there already.
#
#   bash scripts/deps.sh
#   PG_CONFIG=/usr/lib/postgresql/17/bin/pg_config bash scripts/deps.sh
#
# The PostgreSQL packages are those of the version PG_CONFIG names, else of the
# installed server, else of the version the distribution offers (see below).
# As root: apt-get update + apt-get install.  Otherwise through "sudo -n" when
# that works without a password, else an error listing what to install.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=scripts/pgconfig.sh
. "$REPO/scripts/pgconfig.sh"

# Become root for apt-get: nothing as root, else password-less sudo (or
# nothing at all, which only lists what is missing and fails).
if [[ $(id -u) -eq 0 ]]; then
	SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
	SUDO=(sudo -n)
else
	SUDO=(false)
fi
APT_UPDATED=0
apt_update() {
	((APT_UPDATED)) && return 0
	"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null >&2 || return 1
	APT_UPDATED=1
}

# Which PostgreSQL major version the packages are for:
#   PG_CONFIG set:                  that one's version (for a Debian path
#                                   /usr/lib/postgresql/N/bin/pg_config also
#                                   when it is not installed yet)
#   a PostgreSQL server installed:  its version (pg_config on PATH, else the
#                                   newest /usr/lib/postgresql/N)
#   none:                           the version the distribution offers, the
#                                   one its "postgresql" package depends on
PG_MAJOR=""
PG_DEBIAN=1    # 0: a PostgreSQL built elsewhere (PG_CONFIG outside /usr/lib/postgresql): install no server package
if [[ -n "${PG_CONFIG:-}" ]]; then
	if [[ "$PG_CONFIG" =~ ^/usr/lib/postgresql/([0-9]+)/bin/pg_config$ ]]; then
		PG_MAJOR=${BASH_REMATCH[1]}
	elif p=$(pgconfig_find) && PG_MAJOR=$(pgconfig_major "$p"); then
		PG_DEBIAN=0
	else
		echo "deps: PG_CONFIG=$PG_CONFIG does not run; set it to an installed pg_config" \
			"or to /usr/lib/postgresql/N/bin/pg_config" >&2
		exit 1
	fi
elif p=$(pgconfig_find) && PG_MAJOR=$(pgconfig_major "$p"); then
	:
else
	if ! command -v apt-cache >/dev/null 2>&1; then
		echo "deps: no PostgreSQL installed and no apt-cache to find one: set PG_CONFIG" >&2
		exit 1
	fi
	apt_update || true
	PG_MAJOR=$(apt-cache depends postgresql 2>/dev/null |
		sed -nE 's/^[[:space:]]*Depends:[[:space:]]*postgresql-([0-9]+)$/\1/p' | sort -n | tail -n 1)
	if [[ -z "$PG_MAJOR" ]]; then
		# no "postgresql" metapackage: the highest postgresql-server-dev-N there is
		PG_MAJOR=$(apt-cache pkgnames postgresql-server-dev- 2>/dev/null |
			sed -nE 's/^postgresql-server-dev-([0-9]+)$/\1/p' | sort -n | tail -n 1)
	fi
	if [[ -z "$PG_MAJOR" ]]; then
		echo "deps: no PostgreSQL installed and apt offers none: install one and set PG_CONFIG" >&2
		exit 1
	fi
	echo "deps: no PostgreSQL installed; the distribution offers $PG_MAJOR"
fi

PACKAGES=()
if ((PG_DEBIAN)); then
	PACKAGES+=("postgresql-$PG_MAJOR" "postgresql-server-dev-$PG_MAJOR")
fi
PACKAGES+=(
	libcurl4-openssl-dev
	libssl-dev
	gcc
	make
	python3
	openssl
	ca-certificates
	sqlsmith
)

installed() {
	[[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}

missing=()
for pkg in "${PACKAGES[@]}"; do
	installed "$pkg" || missing+=("$pkg")
done

# Optional: installed when the archive has them for this PostgreSQL, else a
# note and nothing else.  pg_cron (postgresql-N-cron) for test/t_cron.py,
# which reports SKIP without it (e.g. PostgreSQL 19 from experimental, which
# has no pg_cron package yet).
OPTIONAL=()
optional_missing=()
if ((PG_DEBIAN)); then
	OPTIONAL+=("postgresql-$PG_MAJOR-cron")
fi
has_candidate() {
	local c
	c=$(apt-cache policy "$1" 2>/dev/null | sed -nE 's/^[[:space:]]*Candidate:[[:space:]]*//p' | head -n 1)
	[[ -n "$c" && "$c" != "(none)" ]]
}
for pkg in "${OPTIONAL[@]}"; do
	installed "$pkg" && continue
	command -v apt-cache >/dev/null 2>&1 || continue
	if [[ "${SUDO[*]}" == false ]]; then
		echo "deps: optional $pkg is not installed (its test is skipped): sudo apt-get install $pkg"
		continue
	fi
	# the package lists are refreshed anyway when something else is missing
	((${#missing[@]} > 0)) && { apt_update || true; }
	if has_candidate "$pkg"; then
		missing+=("$pkg")
		optional_missing+=("$pkg")
	else
		echo "deps: optional $pkg is not in the package archive: its test is skipped"
	fi
done

if ((${#missing[@]} == 0)); then
	exit 0
fi

echo "deps: missing packages: ${missing[*]}"

if [[ "${SUDO[*]}" == false ]]; then
	echo "deps: these packages are missing and I cannot install them (not root, no password-less sudo):" >&2
	echo "deps:   ${missing[*]}" >&2
	echo "deps: install them with:  sudo apt-get install ${missing[*]}" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
apt_update
if ! "${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null; then
	((${#optional_missing[@]} > 0)) || exit 1
	# without the optional packages (their tests are skipped)
	echo "deps: apt-get install failed; trying again without ${optional_missing[*]}" >&2
	required=()
	for pkg in "${missing[@]}"; do
		[[ " ${optional_missing[*]} " == *" $pkg "* ]] || required+=("$pkg")
	done
	missing=("${required[@]}")
	if ((${#missing[@]} > 0)); then
		"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null
	fi
fi

# Check again: apt-get may "succeed" without installing everything.
still=()
for pkg in "${missing[@]}"; do
	installed "$pkg" && continue
	if [[ " ${optional_missing[*]} " == *" $pkg "* ]]; then
		echo "deps: optional $pkg was not installed: its test is skipped" >&2
	else
		still+=("$pkg")
	fi
done
if ((${#still[@]} > 0)); then
	echo "deps: still missing after apt-get install: ${still[*]}" >&2
	exit 1
fi
echo "deps: done"
