#!/usr/bin/env bash
# The project's test command (README, .ci/run): starts the servers the tests
# need, then runs every Go test. Needs root for the test hosts (network namespaces).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
go vet ./...
# The example's release tarballs (reproducible; a rebuild is cheap): validating
# examples/active-standby checks that its artifacts exist.
bash examples/active-standby/build.sh >/dev/null
go test -count=1 ./... "$@"
