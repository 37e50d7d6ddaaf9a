#!/usr/bin/env bash
# The project's test command (README, .ci/run). Needs root: the test hosts
# are network namespaces running sshd; PostgreSQL and MariaDB are started
# privately by the tests themselves (internal/testdb). It first installs what
# is missing (scripts/setup-debian.sh: idempotent, quick when all is there).
#
#   bash scripts/test.sh          vet, every test, the executor under -race,
#                                 bounded fuzzes of the loader and the journal reader,
#                                 the quick benchmarks
#   QUICK=1 bash scripts/test.sh  vet and every test only
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin

step() { printf '\n==> %s\n' "$*"; }

step "Debian packages and Go modules"
bash scripts/setup-debian.sh

step "go vet"
go vet ./...

step "go test (every package; real test hosts, PostgreSQL, MariaDB, nginx)"
go test -count=1 -timeout 25m ./...

if [ "${QUICK:-}" = 1 ]; then
  exit 0
fi

step "go test -race (executor, graph walker, journal, transport)"
go test -count=1 -race -timeout 15m ./executor/ ./executor/dag/ ./executor/journal/ ./executor/ssh/

step "fuzz the loader for 60s (parse + decode + graph): no input may panic"
go test -run '^$' -fuzz '^FuzzLoad$' -fuzztime 60s ./lang/

step "fuzz the journal reader for 20s: no input may panic, a complete line is never taken for torn"
go test -run '^$' -fuzz '^FuzzRead$' -fuzztime 20s ./executor/journal/

step "fuzz the saved-plan reader for 10s: any file given to apply is a saved plan or an error; an accepted one is well formed"
go test -run '^$' -fuzz '^FuzzLoadSavedPlan$' -fuzztime 10s ./executor/

step "benchmarks, quick mode (they must keep running; numbers are in BENCHMARKS.md)"
UPGRADER_BENCH_QUICK=1 go test -count=1 -run TestRunQuick ./bench/transport/
bash scripts/bench.sh --quick
