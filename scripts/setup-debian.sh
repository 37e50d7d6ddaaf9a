#!/usr/bin/env bash
# Installs every Debian package upgrader's tests and examples need.
# Idempotent; run as root. Used by .ci/run and the README.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(openssh-server openssh-client sudo iproute2 util-linux procps coreutils tar zstd rsync
      nginx-light postgresql postgresql-client mariadb-server mariadb-client
      ansible-core time curl python3) # the last line: scripts/bench.sh (Ansible side by side, GNU time)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq
  # policy-rc.d keeps the packages from starting their services: the tests start their own.
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
if ! command -v go >/dev/null; then
  export PATH=$PATH:/usr/local/go/bin
fi
go mod download
