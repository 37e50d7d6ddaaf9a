#!/usr/bin/env bash
# The project's test command (README, .ci/run): starts the servers the tests
# need, then runs every Go test. Needs root for the test hosts (network namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
go vet ./...
go test -count=1 ./... "$@"
