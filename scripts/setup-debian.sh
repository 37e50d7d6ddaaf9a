#!/usr/bin/env bash
# Installs every Debian package upgrader's tests and examples need.
# Idempotent; run as root. Used by .ci/run and the README.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
pkgs=(openssh-server openssh-client sudo iproute2 util-linux procps coreutils tar zstd rsync
      nginx-light postgresql postgresql-client mariadb-server mariadb-client
      prometheus
      ansible-core time curl python3 # this line: scripts/bench.sh (Ansible side by side, GNU time)
      strace # e2e/faults: a SIGKILL after each journal line
      chromium) # the HTML report tests open it in a real headless browser
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  apt-get update -qq
  # Keep the packages from starting their services (sshd, nginx, PostgreSQL,
  # MariaDB, Prometheus on this machine's own ports): the tests start private ones.
  own_policy=0
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    own_policy=1
  fi
  apt-get install -y -qq --no-install-recommends "${missing[@]}"
  if [ $own_policy = 1 ]; then rm -f /usr/sbin/policy-rc.d; fi
fi
if ! command -v go >/dev/null; then
  export PATH=$PATH:/usr/local/go/bin
fi
go mod download
