#!/usr/bin/env bash
# Transport benchmark: upgrader's SSH transport side by side with OpenSSH,
# against the same test hosts (cmd/testbed), logging in as the non-root
# `deploy` user (Debian default shell set-up).
#
#   bench/transport/run.sh            full run (7 rounds, 512 MiB file)
#   bench/transport/run.sh --quick    1 repetition, 16 MiB (under a minute)
#   bench/transport/run.sh --write    also replace the "Transport" section of BENCHMARKS.md
#
# Needs root (test hosts are network namespaces) and openssh-client.
set -euo pipefail
cd "$(dirname "$0")/../.."
export PATH=$PATH:/usr/local/go/bin

quick=0 write=0
for a in "$@"; do
  case $a in
    --quick) quick=1 ;;
    --write) write=1 ;;
    *) echo "usage: $0 [--quick] [--write]" >&2; exit 2 ;;
  esac
done
reps=7 size_mib=512 file_reps=3
if [ $quick = 1 ]; then reps=1 size_mib=16 file_reps=1; fi
ncmd=100
cmd='stat -c %s /etc/passwd'

work=$(mktemp -d /tmp/upgrader-bench.XXXXXX)
state=$work/bed
cleanup() {
  for s in "$work"/cm-*; do [ -S "$s" ] && ssh -S "$s" -O exit x 2>/dev/null || true; done
  [ -x "$work/testbed" ] && "$work/testbed" down -state "$state" 2>/dev/null || true
  rm -rf "$work" /dev/shm/upgrader-bench-$$
}
trap cleanup EXIT

go build -o "$work/testbed" ./cmd/testbed
go build -o "$work/transport" ./bench/transport
"$work/testbed" up -n 4 -names h1,h2,h3,h4 -state "$state" >/dev/null
# shellcheck disable=SC1091
. "$state/env"
read -r -a addrs <<<"$TESTBED_ADDRESSES"
sshopts=(-o BatchMode=yes -o StrictHostKeyChecking=yes -o "UserKnownHostsFile=$TESTBED_KNOWN_HOSTS" -i "$TESTBED_KEY")

now() { echo "$EPOCHREALTIME"; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.4f\n", b-a}'; }

# One ControlMaster connection per host, up before any clock starts.
for a in "${addrs[@]}"; do
  ssh "${sshopts[@]}" -o ControlMaster=yes -o ControlPersist=600 -o "ControlPath=$work/cm-$a" -fN "deploy@$a"
done
script=$work/script
for _ in $(seq $ncmd); do echo "$cmd"; done >"$script"

cm_loop() { # host: 100 commands, one ssh (over the master) each
  for _ in $(seq $ncmd); do ssh "${sshopts[@]}" -o "ControlPath=$work/cm-$1" "deploy@$1" "$cmd" >/dev/null; done
}
floor() { # host: the 100 commands as one script in one session
  ssh "${sshopts[@]}" -o "ControlPath=$work/cm-$1" "deploy@$1" sh <"$script" >/dev/null
}
timed_hosts() { # fn nhosts: run fn on the first n hosts at once, print seconds
  local fn=$1 n=$2 t0 t1 i
  t0=$(now)
  for ((i = 0; i < n; i++)); do $fn "${addrs[$i]}" & done
  wait
  t1=$(now)
  elapsed "$t0" "$t1"
}
# Interleaved rounds (upgrader, floor, ControlMaster loop), medians at the
# end: the machine's load changes over minutes, and each round sees the same.
declare -A r all
for _ in $(seq $reps); do
  for n in 1 4; do
    all[ours_$n]+="$("$work/transport" -state "$state" -mode cmds -hosts $n -n $ncmd -cmd "$cmd" -reps 1) "
    all[floor_$n]+="$(timed_hosts floor $n) "
    all[cm_$n]+="$(timed_hosts cm_loop $n) "
  done
done
for k in "${!all[@]}"; do r[$k]=$(tr ' ' '\n' <<<"${all[$k]}" | grep . | median); done

big=/dev/shm/upgrader-bench-$$
head -c $((size_mib << 20)) /dev/urandom >"$big"
sftp_put() {
  echo "put $big /tmp/bench-sftp" | sftp -q "${sshopts[@]}" -b - "deploy@$1" >/dev/null
}
for _ in $(seq $file_reps); do
  all[up_ours]+="$("$work/transport" -state "$state" -mode upload -hosts 4 -file "$big" -dest /tmp/bench-ours -reps 1) "
  all[up_sftp]+="$(timed_hosts sftp_put 4) "
done
for k in up_ours up_sftp; do r[$k]=$(tr ' ' '\n' <<<"${all[$k]}" | grep . | median); done
mbs() { awk -v s="$1" -v m="$size_mib" 'BEGIN {printf "%.0f", 4 * m * 1.048576 / s}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN {printf "%.2f", a / b}'; }

cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
table=$(cat <<EOF
## Transport

Measured $(date -u +%Y-%m-%d) by \`bench/transport/run.sh$([ $quick = 1 ] && echo " --quick")\` on $(nproc) cores ($cpu), $mem,
$(. /etc/os-release; echo "$PRETTY_NAME"), kernel $(uname -r), $(ssh -V 2>&1 | cut -d, -f1), $(go version | cut -d' ' -f3).
Test hosts: 4 \`internal/testbed\` hosts (network namespaces on one bridge, the machine's sshd), login as
\`deploy\` (bash, Debian /etc/skel). Command: \`$cmd\`. Median of $reps interleaved rounds ($file_reps for the file).
The machine is shared with other jobs: absolute times vary, the ratios are measured side by side.

| $ncmd short commands | upgrader | ssh loop over ControlMaster | one script, one session (floor) | upgrader / floor (target <= 2) | upgrader / ControlMaster (target <= 0.5) |
|---|---|---|---|---|---|
| 1 host | ${r[ours_1]} s | ${r[cm_1]} s | ${r[floor_1]} s | $(ratio "${r[ours_1]}" "${r[floor_1]}") | $(ratio "${r[ours_1]}" "${r[cm_1]}") |
| 4 hosts at once | ${r[ours_4]} s | ${r[cm_4]} s | ${r[floor_4]} s | $(ratio "${r[ours_4]}" "${r[floor_4]}") | $(ratio "${r[ours_4]}" "${r[cm_4]}") |

| ${size_mib} MiB file to 4 hosts at once | upgrader (SFTP, concurrent writes) | OpenSSH \`sftp\` put | throughput ratio (target >= 0.9) |
|---|---|---|---|
| time | ${r[up_ours]} s ($(mbs "${r[up_ours]}") MB/s) | ${r[up_sftp]} s ($(mbs "${r[up_sftp]}") MB/s) | $(ratio "${r[up_sftp]}" "${r[up_ours]}") |

Every round (seconds): upgrader ${all[ours_1]}/ ${all[ours_4]}(1 / 4 hosts); floor ${all[floor_1]}/ ${all[floor_4]};
ControlMaster loop ${all[cm_1]}/ ${all[cm_4]}; file: upgrader ${all[up_ours]}, sftp ${all[up_sftp]}.

Go benchmarks of the same (\`go test -run XXX -bench . ./executor/ssh/\`): \`BenchmarkRun_100commands_1host\`,
\`BenchmarkRun_100commands_4hosts\`, \`BenchmarkWriteFile_512MiB_4hosts\`.
EOF
)
echo "$table"
if [ $write = 1 ]; then
  f=BENCHMARKS.md
  [ -f $f ] || printf '# Benchmarks\n' >$f
  # Replace our section (from "## Transport" to the next "## "), keep the others.
  awk -v new="$table" '
    /^## Transport$/ {skip = 1; print new; done = 1; next}
    skip && /^## / {skip = 0}
    !skip {print}
    END {if (!done) {print ""; print new}}
  ' $f >$f.tmp && mv $f.tmp $f
fi
