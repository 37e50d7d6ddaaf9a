#!/usr/bin/env bash
# Backup speed and memory, side by side: upgrader's backup of a directory of
# mixed files from a test host (SSH stream, zstd, read-back verification,
# manifest) against `ssh host tar -cf - DIR | zstd > file`, alternating in
# each iteration. Needs root (test hosts). SIZES in MiB, N iterations each.
#
#   bash bench/backup/run.sh              # 256 MiB and 1 GiB, 3 iterations
#   SIZES=4096 N=1 bash bench/backup/run.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=$PATH:/usr/local/go/bin
for mb in ${SIZES:-256 1024}; do
  echo "== ${mb} MiB"
  BACKUP_BENCH_MB=$mb go test -count=1 -run '^$' -bench 'Backup/side_by_side' -benchtime "${N:-3}x" -timeout 60m ./modules/backup/ |
    grep -E 'side_by_side|ns/op' | tr '\t' '\n' | sed -n 's/^ *//p' | grep -v '^$'
done
