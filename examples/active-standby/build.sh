#!/usr/bin/env bash
# Builds the demo app's release tarballs into dist/ (or $1):
#   app-1.0.0.tar.gz, app-2.0.0.tar.gz and the faulty 2.0.0 builds
#   app-2.0.0-faulty-{regression,errors,cpu,shed}.tar.gz
# Each holds bin/app and bin/start. Builds are reproducible (same sources,
# same bytes), so re-running it does not make upgrader see a new artifact.
# FAULT_AFTER (default 20s): how long the errors/cpu builds behave first.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/dist}
fault_after=${FAULT_AFTER:-20s}
export PATH=$PATH:/usr/local/go/bin
export CGO_ENABLED=0
mkdir -p "$out"
out=$(cd "$out" && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

build() { # NAME VERSION FAULT
  local name=$1 version=$2 fault=$3 stage=$work/$1
  mkdir -p "$stage/bin"
  (cd "$here/app" && go build -trimpath -buildvcs=false \
    -ldflags "-s -w -X main.version=$version -X main.fault=$fault -X main.faultAfter=$fault_after" \
    -o "$stage/bin/app" .)
  install -m 0755 "$here/app/bin/start" "$stage/bin/start"
  # Written under a temporary name first: a failed build never leaves a tarball that looks complete.
  tar --sort=name --owner=0 --group=0 --numeric-owner --mtime=@0 -C "$stage" -cf - bin |
    gzip -n -9 >"$out/.$name.tar.gz.tmp"
  mv "$out/.$name.tar.gz.tmp" "$out/$name.tar.gz"
  echo "$out/$name.tar.gz"
}

build app-1.0.0 1.0.0 ""
build app-2.0.0 2.0.0 ""
for f in regression errors cpu shed; do
  build "app-2.0.0-faulty-$f" 2.0.0 "$f"
done
