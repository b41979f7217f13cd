#!/usr/bin/env bash
# Install the Debian packages that building and testing usage_fdw needs, if any
# is missing.  Quiet when everything is there already.
#
#   bash scripts/deps.sh
#
# As root: apt-get update + apt-get install.  Otherwise through "sudo -n" when
# that works without a password, else an error listing what to install.
set -euo pipefail

PACKAGES=(
	postgresql-15
	postgresql-server-dev-15
	libcurl4-openssl-dev
	gcc
	make
	python3
	openssl
	ca-certificates
)

missing=()
for pkg in "${PACKAGES[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	if [[ "$status" != "install ok installed" ]]; then
		missing+=("$pkg")
	fi
done

if ((${#missing[@]} == 0)); then
	exit 0
fi

echo "deps: missing packages: ${missing[*]}"

if [[ $(id -u) -eq 0 ]]; then
	SUDO=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
	SUDO=(sudo -n)
else
	echo "deps: these packages are missing and I cannot install them (not root, no password-less sudo):" >&2
	echo "deps:   ${missing[*]}" >&2
	echo "deps: install them with:  sudo apt-get install ${missing[*]}" >&2
	exit 1
fi

export DEBIAN_FRONTEND=noninteractive
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${SUDO[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" </dev/null

# Check again: apt-get may "succeed" without installing everything.
still=()
for pkg in "${missing[@]}"; do
	status=$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null || true)
	[[ "$status" == "install ok installed" ]] || still+=("$pkg")
done
if ((${#still[@]} > 0)); then
	echo "deps: still missing after apt-get install: ${still[*]}" >&2
	exit 1
fi
echo "deps: done"
