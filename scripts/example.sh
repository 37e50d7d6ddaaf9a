#!/usr/bin/env bash
# Runs examples/active-standby (scenario 1, the happy path) on local test
# hosts, as a user would: build, start the hosts, install v1, then
# `upgrader plan` and `upgrader apply` with the observation windows shortened
# to seconds, then `upgrader status`; the hosts are torn down at the end.
# Needs root (network namespaces). KEEP=1 leaves the hosts up.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin

if [ "$(id -u)" != 0 ]; then
  echo "example.sh: run as root (the test hosts are network namespaces)" >&2
  exit 1
fi
bash scripts/setup-debian.sh # idempotent: installs only what is missing

work=$(mktemp -d /tmp/upgrader-example.XXXXXX)
bin=$work/bin
mkdir -p "$bin"
say() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }

cleanup() {
  if [ "${KEEP:-}" = 1 ]; then
    echo "hosts left up: $bin/testenv down -dir $work"
    return
  fi
  say "Tearing down the test hosts"
  "$bin/testenv" down -dir "$work" || true
  rm -rf "$work"
}

say "Building upgrader and the demo app's releases"
go build -o "$bin/upgrader" ./cmd/upgrader
go build -o "$bin/testenv" ./examples/active-standby/testenv/cmd/testenv
bash examples/active-standby/build.sh "$work/dist" | sed 's/^/  /'

say "Starting test hosts primary, standby, test, lb, db; installing v1 (upgrader apply bootstrap)"
trap cleanup EXIT
"$bin/testenv" up -dir "$work" -upgrader "$bin/upgrader" -dist "$work/dist"

cd "$work/active-standby"
vars=(-var-file ../testenv.vars.hcl -var standby_observation=10s -var primary_observation=10s
      -var observe_interval=2s -var breach_for=4s -var max_cpu_percent=100 -var check_interval=1s)
lb=$(sed -n '/host "lb"/,/}/s/.*address *= *"\(.*\)".*/\1/p' hosts.hcl)

# serving prints the version production answers and the host that answered
# (nginx names it in X-Upstream).
serving() {
  local up name
  up=$(curl -s -o /dev/null -D - "http://$lb/health" | tr -d '\r' | sed -n 's/^[Xx]-[Uu]pstream: \(.*\):.*/\1/p')
  name=$(awk -v a="\"$up\"" '/^host "/{h=$2} $1=="address" && $3==a {gsub(/"/,"",h); print h}' hosts.hcl)
  echo "$(curl -s "http://$lb/version") (from $name, $up)"
}
say "Production serves: $(serving)"

say "upgrader validate"
"$bin/upgrader" validate "${vars[@]}" .

say "upgrader plan"
"$bin/upgrader" plan "${vars[@]}" .

say "upgrader apply -auto-approve"
"$bin/upgrader" apply "${vars[@]}" -auto-approve .

say "upgrader status"
"$bin/upgrader" status .

say "Production serves: $(serving)"
