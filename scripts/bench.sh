#!/usr/bin/env bash
# Side-by-side benchmark (issue #10): the real `upgrader` binary next to Ansible
# (defaults and tuned) and plain OpenSSH (ssh, a ControlMaster loop, scp, sftp,
# rsync), in ONE run against the same test hosts (cmd/testbed), every tool
# logging in as the hosts' non-root `deploy` user. Workloads W1..W6 of the issue.
#
#   scripts/bench.sh            full run (16 hosts, 1 GiB artifact, 50,000-file tree; 10-25 min)
#   scripts/bench.sh --quick    small sizes, one repetition, 2 hosts, each playbook once (CI: 30-80 s)
#   scripts/bench.sh --write    also replace our sections of BENCHMARKS.md
#
# Exits non-zero when any tool fails any workload (or its result is wrong).
# Needs root (test hosts are network namespaces), ansible-core, openssh-client,
# rsync, zstd, curl, python3 and GNU time (/usr/bin/time): scripts/setup-debian.sh.
# The transport-level numbers come from bench/transport (the transport
# helper's tool, reused here on the same hosts).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH=$PATH:/usr/local/go/bin
repo=$PWD

quick=0 write=0
for a in "$@"; do
  case $a in
    --quick) quick=1 ;;
    --write) write=1 ;;
    *) echo "usage: $0 [--quick] [--write]" >&2; exit 2 ;;
  esac
done

# Sizes. reps: the fast tools; Ansible runs (seconds to minutes each, 10-50x
# the others) are repeated only in W1; W4 and W5 run once.
if [ $quick = 1 ]; then
  nhosts=2 reps=1 w1areps=1 w4reps=1 w5reps=1 ncmd=5 w3sizes=(1 2) w4sizes=(2) w4mib=16 w5files=500 w5bigmib=1
else
  nhosts=16 reps=5 w1areps=3 w4reps=3 w5reps=3 ncmd=100 w3sizes=(1 4 16) w4sizes=(1 4) w4mib=1024 w5files=50000 w5bigmib=64
fi
# setups KEY: the Ansible setups to run for a workload. The quick mode runs
# every playbook and both configurations, but each playbook once.
setups() {
  if [ $quick = 0 ]; then echo default tuned; return; fi
  case $1 in
    w1) echo default tuned ;;
    w2 | w3_2 | w4*) echo tuned ;;
    *) echo default ;;
  esac
}
cmd='stat -c %s /etc/passwd'

for t in ansible-playbook ssh scp sftp rsync zstd curl python3 /usr/bin/time; do
  command -v $t >/dev/null || { echo "bench: $t is missing (run scripts/setup-debian.sh)" >&2; exit 1; }
done
[ "$(id -u)" = 0 ] || { echo "bench: run as root (test hosts are network namespaces)" >&2; exit 1; }

work=$(mktemp -d /tmp/upgrader-cmp.XXXXXX)
state=$work/bed
cleanup() {
  local rc=$?
  if [ $rc != 0 ] && [ -d "$work/log" ]; then
    keep=$(mktemp -d /tmp/upgrader-bench-logs.XXXXXX) && cp -r "$work/log" "$work"/*.tsv "$keep/" 2>/dev/null
    echo "bench: logs kept in $keep" >&2
  fi
  for s in "$work"/cm-*; do [ -S "$s" ] && ssh -S "$s" -O exit x 2>/dev/null || true; done
  for d in "$work"/ansible/cp-*; do
    for s in "$d"/*; do [ -S "$s" ] && ssh -S "$s" -O exit x 2>/dev/null || true; done
  done
  [ -x "$work/bin/testbed" ] && "$work/bin/testbed" down -state "$state" 2>/dev/null || true
  rm -rf "$work"
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say() { printf '\033[1m==> %s\033[0m\n' "$*" >&2; }

say "building upgrader, testbed, bench/transport"
mkdir -p "$work/bin" "$work/log" "$work/data" "$work/out"
go build -o "$work/bin/upgrader" ./cmd/upgrader
go build -o "$work/bin/testbed" ./cmd/testbed
go build -o "$work/bin/transport" ./bench/transport
ug=$work/bin/upgrader

names=$(seq -s, -f 'h%g' 1 $nhosts)
say "starting $nhosts test hosts"
"$work/bin/testbed" up -n $nhosts -names "$names" -state "$state" >/dev/null
# shellcheck disable=SC1091
. "$state/env"
read -r -a addrs <<<"$TESTBED_ADDRESSES"
read -r -a hosts <<<"$TESTBED_HOSTS"
sshopts=(-o BatchMode=yes -o StrictHostKeyChecking=yes -o "UserKnownHostsFile=$TESTBED_KNOWN_HOSTS" -i "$TESTBED_KEY")
cold=(-o ControlPath=none)

# One ControlMaster connection per host (bench/transport's convention): the
# OpenSSH loop baselines and the untimed housekeeping go over it.
for a in "${addrs[@]}"; do
  ssh "${sshopts[@]}" -o ControlMaster=yes -o ControlPersist=3600 -o "ControlPath=$work/cm-$a" -fN "deploy@$a"
done
on() { # addr cmd: untimed housekeeping on a host
  local a=$1; shift
  ssh "${sshopts[@]}" -o "ControlPath=$work/cm-$a" "deploy@$a" "$@"
}
on_all() { # n cmd: on the first n hosts at once
  local n=$1 i; shift
  for ((i = 0; i < n; i++)); do on "${addrs[$i]}" "$@" & done
  wait
}

# ---------------------------------------------------------------------------
# Data, identical for every tool.
say "generating data"
d=$work/data
head -c 1024 /dev/urandom | base64 >"$d/small.txt"
printf 'version = ${version}\nname    = ${name}\nlisten  = 8080\n' >"$d/app.conf.tmpl"
printf 'version = {{ version }}\nname    = {{ name }}\nlisten  = 8080\n' >"$d/app.conf.j2"
printf 'version = 1.2.3\nname    = bench\nlisten  = 8080\n' >"$d/app.conf"
conf_sha=$(sha256sum <"$d/app.conf" | cut -d' ' -f1)
small_sha=$(sha256sum <"$d/small.txt" | cut -d' ' -f1)
head -c $((w4mib << 20)) /dev/urandom >"$d/artifact.bin"
for ((i = 0; i < ncmd; i++)); do echo "$cmd"; done >"$d/script.sh"

# Every host serves /opt/www on :8080 (W3's URL check); the server goes with
# the host's namespace at teardown.
for a in "${addrs[@]}"; do
  on "$a" "mkdir -p /opt/www/w3 /home/deploy/w4 && setsid -f python3 -m http.server 8080 --bind $a -d /opt/www >/dev/null 2>&1 </dev/null"
done
for a in "${addrs[@]}"; do
  for _ in $(seq 50); do curl -fsS -o /dev/null "http://$a:8080/" && break; sleep 0.1; done
  curl -fsS -o /dev/null "http://$a:8080/" || { echo "bench: web server on $a did not start" >&2; exit 1; }
done

# W5's tree on h1: $w5files small files (text-like, 0.2-8 KB) in directories
# of 500, plus three large files (two random, one log-like).
on "${addrs[0]}" python3 - "$w5files" "$w5bigmib" <<'EOF'
import os, random, sys
n, big = int(sys.argv[1]), int(sys.argv[2]) << 20
root = "/opt/tree"
rnd = random.Random(10)
words = " ".join("w%d" % rnd.randrange(5000) for _ in range(300000))
for i in range(n):
    d = os.path.join(root, "d%03d" % (i // 500))
    if i % 500 == 0:
        os.makedirs(d, exist_ok=True)
    size, off = rnd.randint(200, 8000), rnd.randrange(len(words) - 8000)
    with open(os.path.join(d, "f%05d.txt" % i), "w") as f:
        f.write(words[off:off + size])
os.makedirs(os.path.join(root, "big"), exist_ok=True)
for name in ("blob1.bin", "blob2.bin"):
    with open(os.path.join(root, "big", name), "wb") as f:
        for _ in range(big >> 20):
            f.write(os.urandom(1 << 20))
with open(os.path.join(root, "big", "app.log"), "w") as f:
    line = 0
    while f.tell() < big:
        f.write("2026-11-28T10:00:%02d INFO request %d served in %d ms\n" % (line % 60, line, line % 97))
        line += 1
EOF
w5count=$(on "${addrs[0]}" "find /opt/tree -type f | wc -l")
w5bytes=$(on "${addrs[0]}" "du -sb /opt/tree | cut -f1")

# ---------------------------------------------------------------------------
# upgrader configurations (generated): connection + the hosts they name.
hostsfile() { # dir n
  {
    printf 'connection {\n  user             = "deploy"\n  private_key_file = "%s"\n  known_hosts_file = "%s"\n}\n' "$TESTBED_KEY" "$TESTBED_KNOWN_HOSTS"
    for ((i = 0; i < $2; i++)); do printf '\nhost "%s" {\n  address = "%s"\n}\n' "${hosts[$i]}" "${addrs[$i]}"; done
  } >"$1/hosts.hcl"
}
hostlist() { # n: host.h1, host.h2, ...
  local i s=""
  for ((i = 0; i < $1; i++)); do s+="${s:+, }host.${hosts[$i]}"; done
  echo "$s"
}
u=$work/ug
# Benchmark configurations waive the backup interlock (backup_required =
# false): a backup is W5's subject, not W1-W4's.
mkdir -p "$u/w1" && hostsfile "$u/w1" 1 && cat >"$u/w1/main.hcl" <<EOF
step "w1" {
  host            = host.h1
  backup_required = false
  run {
    command = "$cmd"
  }
}
EOF
mkdir -p "$u/w2" && hostsfile "$u/w2" 1 && {
  printf 'step "w2" {\n  host            = host.h1\n  backup_required = false\n'
  for ((i = 0; i < ncmd; i++)); do printf '  run {\n    command = "%s"\n  }\n' "$cmd"; done
  printf '}\n'
} >"$u/w2/main.hcl"
w3config() { # dir n guard
  mkdir -p "$1" && hostsfile "$1" "$2" && cp "$d/small.txt" "$d/app.conf.tmpl" "$1/"
  cat >"$1/main.hcl" <<EOF
step "w3" {
  hosts           = [$(hostlist "$2")]
  backup_required = false
  upload {
    source      = "small.txt"
    destination = "/opt/www/w3/small.txt"
    mode        = "0644"
  }
  template {
    source      = "app.conf.tmpl"
    destination = "/opt/www/w3/app.conf"
    mode        = "0644"
    vars        = { version = "1.2.3", name = "bench" }
  }
  run {
    command = "stat -c %s /opt/www/w3/app.conf"$3
  }
}
EOF
  [ -n "$3" ] && return # W6: the same without the check (a check always probes)
  {
    printf '\ncheck "w3" {\n  depends_on = [step.w3]\n'
    for ((i = 0; i < $2; i++)); do
      printf '  http {\n    url           = "http://${host.%s.address}:8080/w3/small.txt"\n    expect_status = 200\n  }\n' "${hosts[$i]}"
    done
    printf '}\n'
  } >>"$1/main.hcl"
}
for n in "${w3sizes[@]}"; do w3config "$u/w3-$n" "$n" ""; done
w3config "$u/w6" "$nhosts" $'\n    creates = "/opt/www/w3/app.conf"'
for n in "${w4sizes[@]}"; do
  mkdir -p "$u/w4-$n" && hostsfile "$u/w4-$n" "$n" && cat >"$u/w4-$n/main.hcl" <<EOF
step "w4" {
  hosts           = [$(hostlist "$n")]
  backup_required = false
  upload {
    source      = "$d/artifact.bin"
    destination = "/home/deploy/w4/artifact.bin"
  }
}
EOF
done
mkdir -p "$u/w5" && hostsfile "$u/w5" 1 && cat >"$u/w5/main.hcl" <<EOF
backup "tree" {
  host  = host.h1
  paths = ["/opt/tree"]
}
EOF
for c in "$u"/*/; do "$ug" validate -no-color "$c" >"$work/log/validate.log" 2>&1 || { cat "$work/log/validate.log" >&2; exit 1; }; done

# ---------------------------------------------------------------------------
# Ansible: inventory, two configurations, playbooks (generated).
A=$work/ansible
mkdir -p "$A"
{
  printf '[all:vars]\nansible_user=deploy\nansible_ssh_private_key_file=%s\n' "$TESTBED_KEY"
  printf "ansible_ssh_common_args='-o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes'\n" "$TESTBED_KNOWN_HOSTS"
  for n in $(printf '%s\n' 1 "${w3sizes[@]}" "${w4sizes[@]}" $nhosts | sort -nu); do
    printf '\n[n%s]\n' "$n"
    for ((i = 0; i < n; i++)); do printf '%s ansible_host=%s\n' "${hosts[$i]}" "${addrs[$i]}"; done
  done
} >"$A/inventory"
# defaults: nothing but the inventory (forks 5, linear, ssh -C ControlPersist=60s, no pipelining).
printf '[defaults]\ninventory = %s\n' "$A/inventory" >"$A/default.cfg"
# tuned: issue #10's settings; forks = number of hosts is set per run (ANSIBLE_FORKS).
cat >"$A/tuned.cfg" <<EOF
[defaults]
inventory = $A/inventory
strategy  = free

[ssh_connection]
pipelining = True
ssh_args   = -o ControlMaster=auto -o ControlPersist=30m -o Compression=no
EOF
cp "$d/small.txt" "$d/app.conf.j2" "$A/"
cat >"$A/w1.yml" <<EOF
- hosts: n1
  gather_facts: false
  tasks:
    - ansible.builtin.command: $cmd
EOF
{
  printf -- '- hosts: n1\n  gather_facts: false\n  tasks:\n'
  for ((i = 0; i < ncmd; i++)); do printf '    - ansible.builtin.command: %s\n' "$cmd"; done
} >"$A/w2.yml"
cat >"$A/w3.yml" <<'EOF'
- hosts: "{{ target }}"
  gather_facts: false
  tasks:
    - ansible.builtin.copy: {src: small.txt, dest: /opt/www/w3/small.txt, mode: "0644"}
    - ansible.builtin.template: {src: app.conf.j2, dest: /opt/www/w3/app.conf, mode: "0644"}
      vars: {version: "1.2.3", name: bench}
    - ansible.builtin.command: stat -c %s /opt/www/w3/app.conf
    - ansible.builtin.uri: {url: "http://{{ ansible_host }}:8080/w3/small.txt", status_code: 200}
      delegate_to: localhost
EOF
cat >"$A/w4.yml" <<EOF
- hosts: "{{ target }}"
  gather_facts: false
  tasks:
    - ansible.builtin.copy: {src: $d/artifact.bin, dest: /home/deploy/w4/artifact.bin}
EOF
cat >"$A/w5.yml" <<EOF
- hosts: n1
  gather_facts: false
  tasks:
    - ansible.builtin.shell: tar -C /opt -cf - tree | zstd -q >/tmp/w5.tar.zst
    - ansible.builtin.fetch: {src: /tmp/w5.tar.zst, dest: $work/out/ansible-w5.tar.zst, flat: true}
    - ansible.builtin.file: {path: /tmp/w5.tar.zst, state: absent}
EOF
cat >"$A/w6.yml" <<'EOF'
- hosts: "{{ target }}"
  gather_facts: false
  tasks:
    - ansible.builtin.copy: {src: small.txt, dest: /opt/www/w3/small.txt, mode: "0644"}
    - ansible.builtin.template: {src: app.conf.j2, dest: /opt/www/w3/app.conf, mode: "0644"}
      vars: {version: "1.2.3", name: bench}
    - ansible.builtin.command: stat -c %s /opt/www/w3/app.conf
      args: {creates: /opt/www/w3/app.conf}
EOF
# ansible.sh SETUP NHOSTS PLAYBOOK [args]: one ansible-playbook run. Tuned
# keeps its ControlPersist masters between runs (as it would in use); W1 sets
# ANSIBLE_COLD=1: a fresh control directory each run, so it connects anew.
cat >"$A/ansible.sh" <<EOF
set -e
setup=\$1 n=\$2 pb=\$3; shift 3
cp=$A/cp-\$setup
[ "\${ANSIBLE_COLD:-}" = 1 ] && cp=\$(mktemp -d $A/cp-\$setup-cold.XXXX)
export ANSIBLE_CONFIG=$A/\$setup.cfg ANSIBLE_SSH_CONTROL_PATH_DIR=\$cp ANSIBLE_NOCOLOR=1
[ \$setup = tuned ] && export ANSIBLE_FORKS=\$n
exec ansible-playbook $A/\$pb "\$@"
EOF

# ---------------------------------------------------------------------------
# OpenSSH baselines, as small scripts (timed as whole processes).
S=$work/sh
mkdir -p "$S"
common="set -e; o=(-o BatchMode=yes -o StrictHostKeyChecking=yes -o UserKnownHostsFile=$TESTBED_KNOWN_HOSTS -i $TESTBED_KEY); cm() { echo -o ControlPath=$work/cm-\$1; }"
cat >"$S/ssh_cold.sh" <<EOF
$common
ssh "\${o[@]}" -o ControlPath=none deploy@\$1 '$cmd' >/dev/null
EOF
cat >"$S/cm_loop.sh" <<EOF
$common
for i in \$(seq $ncmd); do ssh "\${o[@]}" \$(cm \$1) deploy@\$1 '$cmd' >/dev/null; done
EOF
cat >"$S/floor.sh" <<EOF
$common
ssh "\${o[@]}" \$(cm \$1) deploy@\$1 sh <$d/script.sh >/dev/null
EOF
cat >"$S/floor_cold.sh" <<EOF
$common
ssh "\${o[@]}" -o ControlPath=none deploy@\$1 sh <$d/script.sh >/dev/null
EOF
# W3 by hand: scp the file, render the template locally (sed) and scp it, run
# the command, check the URL; every host at once.
cat >"$S/w3.sh" <<EOF
$common
one() {
  scp -q "\${o[@]}" \$(cm \$1) $d/small.txt deploy@\$1:/opt/www/w3/small.txt
  sed -e 's/\\\${version}/1.2.3/; s/\\\${name}/bench/' $d/app.conf.tmpl >$work/out/app.conf-\$1
  scp -q "\${o[@]}" \$(cm \$1) $work/out/app.conf-\$1 deploy@\$1:/opt/www/w3/app.conf
  ssh "\${o[@]}" \$(cm \$1) deploy@\$1 'stat -c %s /opt/www/w3/app.conf' >/dev/null
  curl -fsS -o /dev/null http://\$1:8080/w3/small.txt
}
for a in "\$@"; do one \$a & done
for a in "\$@"; do wait -n; done
EOF
# W4: every host at once; TOOL cat|sftp|scp|rsync.
cat >"$S/w4.sh" <<EOF
$common
f=$d/artifact.bin dst=/home/deploy/w4/artifact.bin tool=\$1; shift
one() {
  case \$tool in
    cat) ssh "\${o[@]}" -o ControlPath=none deploy@\$1 'cat >/dev/null' <\$f ;;
    sftp) echo "put \$f \$dst" | sftp -q "\${o[@]}" -o ControlPath=none -b - deploy@\$1 >/dev/null ;;
    scp) scp -q "\${o[@]}" -o ControlPath=none \$f deploy@\$1:\$dst ;;
    rsync) rsync -e "ssh \${o[*]} -o ControlPath=none" \$f deploy@\$1:\$dst ;;
  esac
}
for a in "\$@"; do one \$a & done
for a in "\$@"; do wait -n; done
EOF
cat >"$S/w5.sh" <<EOF
$common
case \$1 in
  tar) ssh "\${o[@]}" -o ControlPath=none deploy@\$2 tar -C /opt -cf - tree | zstd -q >$work/out/ssh-w5.tar.zst ;;
  rsync) rsync -a -e "ssh \${o[*]} -o ControlPath=none" deploy@\$2:/opt/tree/ $work/out/rsync-w5/ ;;
esac
EOF
# W6 floor: sha256 of both files and the guard, on every host at once (CM or cold).
cat >"$S/w6.sh" <<EOF
$common
mode=\$1; shift
one() {
  if [ \$mode = cm ]; then c=\$(cm \$1); else c="-o ControlPath=none"; fi
  ssh "\${o[@]}" \$c deploy@\$1 'sha256sum /opt/www/w3/small.txt /opt/www/w3/app.conf; test -e /opt/www/w3/app.conf' >/dev/null
}
for a in "\$@"; do one \$a & done
for a in "\$@"; do wait -n; done
EOF

# ---------------------------------------------------------------------------
# Measurement. measure KEY REPS CMD...: runs CMD REPS times (each after the
# $reset hook and followed by the $verify hook, both untimed) under GNU time;
# records the median wall time, the median controller CPU (user+sys of CMD and
# all its children) and the peak RSS (largest single controller process).
declare -A W C M R
failed=()
reset=: verify=:
results=$work/results.tsv
measure() {
  local key=$1 n=$2 i t0 t1 tu ts tm walls=() cpus=() rss=0; shift 2
  printf '  %-28s' "$key" >&2
  for ((i = 0; i < n; i++)); do
    $reset
    t0=$EPOCHREALTIME
    if ! /usr/bin/time -f '%U %S %M' -o "$work/time.out" "$@" >>"$work/log/$key.log" 2>&1 &&
      ! retry_ansible "$key" "$@"; then
      echo " FAILED (log: $key.log)" >&2
      tail -n 20 "$work/log/$key.log" >&2
      failed+=("$key")
      W[$key]=FAILED
      return 0
    fi
    t1=$EPOCHREALTIME
    if ! $verify >>"$work/log/$key.log" 2>&1; then
      echo " WRONG RESULT (log: $key.log)" >&2
      tail -n 5 "$work/log/$key.log" >&2
      failed+=("$key")
      W[$key]=FAILED
      return 0
    fi
    read -r tu ts tm <"$work/time.out"
    walls+=("$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f", b - a}')")
    cpus+=("$(awk -v a="$tu" -v b="$ts" 'BEGIN {printf "%.2f", a + b}')")
    ((tm > rss)) && rss=$tm
  done
  W[$key]=$(printf '%s\n' "${walls[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  C[$key]=$(printf '%s\n' "${cpus[@]}" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  M[$key]=$rss
  R[$key]="${walls[*]}"
  printf ' %8.3f s  cpu %6.2f s  rss %4d MB\n' "${W[$key]}" "${C[$key]}" $((rss / 1024)) >&2
}

own_clock() { # key: the tool timed itself (connection up before its clock): the median of its lines
  W[$1]=$(grep -E '^[0-9.]+$' "$work/log/$1.log" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  R[$1]=$(grep -E '^[0-9.]+$' "$work/log/$1.log" | tr '\n' ' ')
}
# retry_ansible KEY CMD...: Ansible's ssh connection plugin fails now and then
# on this loaded machine ("Data could not be sent to remote host" with
# pipelining over ControlPersist); one failed Ansible run is run again (with
# its own clock) and counted in the table. Every other tool gets no retry.
declare -A RETRIED
retry_ansible() {
  local key=$1; shift
  case $key in *_ans_*) ;; *) return 1 ;; esac
  [ -n "${RETRIED[$key]:-}" ] && return 1
  RETRIED[$key]=1
  echo "bench: $key failed, running it again (Ansible retry)" >>"$work/log/$key.log"
  t0=$EPOCHREALTIME
  /usr/bin/time -f '%U %S %M' -o "$work/time.out" "$@" >>"$work/log/$key.log" 2>&1
}
first() { # the first n addresses
  echo "${addrs[@]:0:$1}"
}
# Verifications (untimed): every tool must really have done the work.
files_ok() { # n: W3's files with the expected content on the first n hosts
  local a
  for a in $(first "$1"); do
    on "$a" "sha256sum /opt/www/w3/small.txt /opt/www/w3/app.conf" | awk -v s="$small_sha" -v c="$conf_sha" '
      $2 ~ /small/ && $1 == s {ok++} $2 ~ /app.conf/ && $1 == c {ok++} END {exit ok != 2}' ||
      { echo "bench: W3 files wrong on $a"; return 1; }
  done
}
artifact_ok() { # n
  local a sz
  for a in $(first "$1"); do
    sz=$(on "$a" "stat -c %s /home/deploy/w4/artifact.bin")
    [ "$sz" = $((w4mib << 20)) ] || { echo "bench: artifact on $a is $sz bytes"; return 1; }
  done
}
archive_ok() { # file.tar.zst: holds every file of the tree
  local got
  got=$(zstd -dcq "$1" | tar -tvf - | grep -c '^-')
  [ "$got" = "$w5count" ] || { echo "bench: $1 holds $got files, want $w5count"; return 1; }
}
ug_archive_ok() {
  local f
  f=$(find "$u/w5/.upgrader/backups" -type f -name '*.tar.zst' | head -1)
  [ -n "$f" ] || { echo "bench: no upgrader archive"; return 1; }
  archive_ok "$f"
}
tree_ok() {
  local got
  got=$(find "$work/out/rsync-w5" -type f | wc -l)
  [ "$got" = "$w5count" ] || { echo "bench: rsync copied $got files, want $w5count"; return 1; }
}
plan_all_equal() { # the re-plan found nothing to do
  ! grep '^Plan: ' "$work/log/w6_ug.log" | grep -qvE '^Plan: [0-9]+ unchanged(, [0-9]+ skipped)?\.$'
}
ansible_no_change() { # the last PLAY RECAP has changed=0 everywhere
  tail -n $((nhosts + 2)) "$1" | grep -q 'changed=0' && ! tail -n $((nhosts + 2)) "$1" | grep -qE 'changed=[1-9]|failed=[1-9]'
}

ncpu=$(nproc)
say "W1: one command on one host, cold"
measure w1_ug $reps "$ug" apply -auto-approve -no-color "$u/w1"
measure w1_ssh $reps bash "$S/ssh_cold.sh" "${addrs[0]}"
for st in $(setups w1); do ANSIBLE_COLD=1 measure w1_ans_$st $w1areps bash "$A/ansible.sh" $st 1 w1.yml; done

say "W2: $ncmd short commands on one host, one after another"
measure w2_ug $reps "$ug" apply -auto-approve -no-color "$u/w2"
measure w2_transport $reps "$work/bin/transport" -state "$state" -mode cmds -hosts 1 -n $ncmd -cmd "$cmd" -reps 1
own_clock w2_transport
measure w2_cm_loop $reps bash "$S/cm_loop.sh" "${addrs[0]}"
measure w2_floor $reps bash "$S/floor.sh" "${addrs[0]}"
measure w2_floor_cold $reps bash "$S/floor_cold.sh" "${addrs[0]}"
for st in $(setups w2); do measure w2_ans_$st 1 bash "$A/ansible.sh" $st 1 w2.yml; done

say "W3: upload, template, command, URL check on ${w3sizes[*]} hosts"
for n in "${w3sizes[@]}"; do
  # Every repetition starts from an empty directory: each tool writes both files.
  eval "w3reset() { on_all $n 'rm -rf /opt/www/w3 && mkdir -p /opt/www/w3'; }"
  eval "w3verify() { files_ok $n; }"
  reset=w3reset verify=w3verify
  measure "w3_${n}_ug" $reps "$ug" apply -auto-approve -no-color "$u/w3-$n"
  measure "w3_${n}_ssh" $reps bash "$S/w3.sh" $(first "$n")
  for st in $(setups w3_$n); do measure "w3_${n}_ans_$st" 1 bash "$A/ansible.sh" $st "$n" w3.yml -e target=n$n; done
  reset=: verify=:
done

say "W6: re-plan, nothing changed, $nhosts hosts"
# The hosts as upgrader left them after W3 (the last W3 run may be another tool's).
"$ug" apply -auto-approve -no-color "$u/w3-$nhosts" >"$work/log/w6_setup.log" 2>&1 || failed+=(w6_setup)
files_ok $nhosts || failed+=(w6_setup)
verify=plan_all_equal
measure w6_ug $reps "$ug" plan -no-color "$u/w6"
verify=:
measure w6_ssh_cm $reps bash "$S/w6.sh" cm "${addrs[@]}"
measure w6_ssh_cold $reps bash "$S/w6.sh" cold "${addrs[@]}"
for st in $(setups w6); do
  verify="ansible_no_change $work/log/w6_ans_$st.log"
  measure w6_ans_$st 1 bash "$A/ansible.sh" $st $nhosts w6.yml -e target=n$nhosts --check --diff
done
verify=:

say "W4: a $w4mib MiB artifact to ${w4sizes[*]} hosts"
for n in "${w4sizes[@]}"; do
  eval "w4reset() { on_all $n 'rm -f /home/deploy/w4/* /home/deploy/w4/.[!.]*'; }"
  eval "w4verify() { artifact_ok $n; }"
  reset=w4reset
  r4=1
  [ "$n" = "${w4sizes[0]}" ] && r4=$w4reps # the ratios' three, a few times at the smallest size
  measure "w4_${n}_cat" $r4 bash "$S/w4.sh" cat $(first "$n")
  verify=w4verify
  measure "w4_${n}_sftp" $r4 bash "$S/w4.sh" sftp $(first "$n")
  measure "w4_${n}_ug" $r4 "$ug" apply -auto-approve -no-color "$u/w4-$n"
  # scp, rsync and the transport alone only at the smallest size (time).
  if [ "$n" = "${w4sizes[0]}" ]; then
    measure "w4_${n}_scp" 1 bash "$S/w4.sh" scp $(first "$n")
    measure "w4_${n}_rsync" 1 bash "$S/w4.sh" rsync $(first "$n")
    measure "w4_${n}_transport" 1 "$work/bin/transport" -state "$state" -mode upload -hosts "$n" -file "$d/artifact.bin" -dest /home/deploy/w4/artifact.bin -reps 1
    own_clock "w4_${n}_transport"
  fi
  for st in $(setups w4); do measure "w4_${n}_ans_$st" 1 bash "$A/ansible.sh" $st "$n" w4.yml -e target=n$n; done
  $reset
  reset=: verify=:
done

say "W5: back up /opt/tree ($w5count files, $((w5bytes >> 20)) MiB) to the controller"
# upgrader and its baseline 3 times (one run of either varies by +-30% here).
reset="rm -rf $u/w5/.upgrader" verify=ug_archive_ok
measure w5_ug $w5reps "$ug" apply -auto-approve -no-color "$u/w5"
reset="rm -f $work/out/ssh-w5.tar.zst" verify="archive_ok $work/out/ssh-w5.tar.zst"
measure w5_ssh_tar $w5reps bash "$S/w5.sh" tar "${addrs[0]}"
reset="rm -rf $work/out/rsync-w5" verify=tree_ok
measure w5_rsync 1 bash "$S/w5.sh" rsync "${addrs[0]}"
reset="rm -f $work/out/ansible-w5.tar.zst" verify="archive_ok $work/out/ansible-w5.tar.zst"
for st in $(setups w5); do measure w5_ans_$st 1 bash "$A/ansible.sh" $st 1 w5.yml; done
reset=: verify=:
w5_ug_size=$(find "$u/w5/.upgrader/backups" -type f -name '*.tar.zst' -printf '%s\n' 2>/dev/null | head -1)
w5_ssh_size=$(stat -c %s "$work/out/ssh-w5.tar.zst" 2>/dev/null || echo 0)

# ---------------------------------------------------------------------------
# The report.
v() { echo "${W[$1]:-not run}"; }
ratio() { # a b: a / b, or - when either failed
  awk -v a="$(v "$1")" -v b="$(v "$2")" 'BEGIN {if (a+0 > 0 && b+0 > 0) printf "%.2f", a / b; else printf "-"}'
}
inv() { # b / a (throughput ratio of a against b)
  awk -v a="$(v "$1")" -v b="$(v "$2")" 'BEGIN {if (a+0 > 0 && b+0 > 0) printf "%.2f", b / a; else printf "-"}'
}
cell() { # key: "wall s (cpu s, rss MB)"
  local k=$1
  case $(v "$k") in FAILED | "not run") v "$k"; return ;; esac
  awk -v w="${W[$k]}" -v c="${C[$k]:-}" -v m="${M[$k]:-0}" -v r="${RETRIED[$k]:+, 1 run failed and was retried}" \
    'BEGIN {printf "%.3f s (cpu %.2f s, %d MB%s)", w, c, m / 1024, r}'
}
mbs() { # key nhosts
  awk -v w="$(v "$1")" -v n="$2" -v m="$w4mib" 'BEGIN {if (w+0 > 0) printf "%.0f MB/s", n * m * 1.048576 / w; else printf "-"}'
}
perhost() { # tool: seconds per extra host between the smallest and largest W3
  local lo=${w3sizes[0]} hi=${w3sizes[-1]}
  awk -v a="$(v "w3_${lo}_$1")" -v b="$(v "w3_${hi}_$1")" -v lo="$lo" -v hi="$hi" \
    'BEGIN {if (a+0 > 0 && b+0 > 0) printf "%.3f s", (b - a) / (hi - lo); else printf "-"}'
}
mark() { # value op target: met / MISSED
  awk -v x="$1" -v op="$2" -v t="$3" 'BEGIN {if (x == "-") {print "-"; exit}
    ok = (op == "<=") ? x <= t : x >= t; print (ok ? "met" : "**MISSED**")}'
}

w4row() { # label tool
  local row="| $1 |" n
  for n in "${w4sizes[@]}"; do row+=" $(cell w4_${n}_$2), $(mbs w4_${n}_$2 $n) |"; done
  echo "$row"
}
w4ratio() { # label tool base [target]
  local row="| $1 |" n r
  for n in "${w4sizes[@]}"; do
    r=$(inv w4_${n}_$2 w4_${n}_$3)
    row+=" $r${4:+, $(mark "$r" ">=" "$4")} |"
  done
  echo "$row"
}
cpu=$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)
mem=$(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)
r_w2_floor=$(ratio w2_ug w2_floor_cold) r_w2_cm=$(ratio w2_ug w2_cm_loop) r_w2_ans=$(ratio w2_ans_tuned w2_ug)
r_w2t_floor=$(ratio w2_transport w2_floor) r_w2t_cm=$(ratio w2_transport w2_cm_loop)
hi=${w3sizes[-1]}
r_w3_ans=$(ratio "w3_${hi}_ans_tuned" "w3_${hi}_ug")
r_w5=$(ratio w5_ug w5_ssh_tar)
w6=$(v w6_ug)

table=$(cat <<EOF
## Side by side with Ansible and OpenSSH

Measured $(date -u +%Y-%m-%d) by \`scripts/bench.sh$([ $quick = 1 ] && echo " --quick")\` (one run, the same $nhosts test hosts for every tool) on
$ncpu cores ($cpu), $mem, $(. /etc/os-release; echo "$PRETTY_NAME"), kernel $(uname -r),
$(ssh -V 2>&1 | cut -d, -f1), $(ansible-playbook --version | awk 'NR == 1'), $(rsync --version | head -1 | awk '{print "rsync", $3}'),
$(zstd --version | awk '{print "zstd", $5}' | tr -d ,), $(go version | cut -d' ' -f3), load average at the end $(cut -d' ' -f1-3 /proc/loadavg).

Test hosts: \`internal/testbed\` (network namespaces on one bridge, each running the machine's sshd, so the hosts share
the controller's $ncpu cores); every tool logs in as \`deploy\` (bash, Debian /etc/skel). Each cell: median wall time of
$reps runs ($w1areps for Ansible in W1, 1 for Ansible elsewhere and for W4 except $w4reps for \`ssh cat\`, \`sftp\` and upgrader at ${w4sizes[0]} host, $w5reps for upgrader and \`ssh tar | zstd\` in W5, 1 for the rest of W5), then the controller's CPU (user+sys of the
tool and all its child processes, median) and peak RSS (the largest single controller process), from GNU time.
The OpenSSH "ControlMaster" cells reuse masters started before the clock (their CPU is not counted); "cold" cells
connect inside the clock, as \`upgrader\` always does (it is a fresh process each run). Tuned Ansible keeps its
ControlPersist masters between runs (as it would in use), except in W1. Ansible playbooks have
\`gather_facts: false\`. \`upgrader\` configurations set \`backup_required = false\` on their steps (the backup
interlock's waiver): W1-W4 measure the step, W5 measures the backup itself. Every result is checked after the
clock stops (W3 files' sha256 on every host, W4 size, W5 archive lists every file, W6 plan/--check show no change);
a failed or wrong result fails the run. The machine is shared with other jobs: absolute times vary, compare ratios.

### W1: one command on one host, cold (\`$cmd\`)

| upgrader apply | ssh (new connection) | Ansible defaults | Ansible tuned |
|---|---|---|---|
| $(cell w1_ug) | $(cell w1_ssh) | $(cell w1_ans_default) | $(cell w1_ans_tuned) |

upgrader / ssh: $(ratio w1_ug w1_ssh); Ansible defaults / upgrader: $(ratio w1_ans_default w1_ug); Ansible tuned / upgrader: $(ratio w1_ans_tuned w1_ug).

### W2: $ncmd short commands on one host, one after another

| tool | time |
|---|---|
| upgrader apply (a step with $ncmd \`run\` actions; binary start, config, connect, journal included) | $(cell w2_ug) |
| upgrader transport alone (bench/transport, connection up before the clock) | $(cell w2_transport) |
| ssh loop over one ControlMaster connection | $(cell w2_cm_loop) |
| one script, one session, over the ControlMaster (floor) | $(cell w2_floor) |
| one script, one session, new connection (cold floor) | $(cell w2_floor_cold) |
| Ansible defaults ($ncmd \`command\` tasks) | $(cell w2_ans_default) |
| Ansible tuned | $(cell w2_ans_tuned) |

| ratio | measured | target | |
|---|---|---|---|
| tuned Ansible / upgrader apply | $r_w2_ans | >= 20 | $(mark "$r_w2_ans" ">=" 20) |
| upgrader apply / cold floor (both connect) | $r_w2_floor | <= 2 | $(mark "$r_w2_floor" "<=" 2) |
| upgrader apply / warm floor (only upgrader connects, starts, journals) | $(ratio w2_ug w2_floor) | <= 2 | $(mark "$(ratio w2_ug w2_floor)" "<=" 2) |
| upgrader apply / ControlMaster loop | $r_w2_cm | <= 0.5 | $(mark "$r_w2_cm" "<=" 0.5) |
| upgrader transport / floor (both warm) | $r_w2t_floor | <= 2 | $(mark "$r_w2t_floor" "<=" 2) |
| upgrader transport / ControlMaster loop | $r_w2t_cm | <= 0.5 | $(mark "$r_w2t_cm" "<=" 0.5) |
| Ansible defaults / upgrader apply | $(ratio w2_ans_default w2_ug) | | |

### W3: upload a small file, template a config, run a command, check a URL (on every host at once)

| hosts | upgrader apply | OpenSSH by hand (scp, sed+scp, ssh, curl; ControlMaster) | Ansible defaults | Ansible tuned | tuned Ansible / upgrader | default Ansible / upgrader |
|---|---|---|---|---|---|---|
$(for n in "${w3sizes[@]}"; do echo "| $n | $(cell w3_${n}_ug) | $(cell w3_${n}_ssh) | $(cell w3_${n}_ans_default) | $(cell w3_${n}_ans_tuned) | $(ratio w3_${n}_ans_tuned w3_${n}_ug) | $(ratio w3_${n}_ans_default w3_${n}_ug) |"; done)
| seconds per extra host (${w3sizes[0]} -> $hi) | $(perhost ug) | $(perhost ssh) | $(perhost ans_default) | $(perhost ans_tuned) | | |

Target: tuned Ansible / upgrader at $hi hosts >= 10: $r_w3_ans, $(mark "$r_w3_ans" ">=" 10).

### W4: upload a $w4mib MiB artifact (every host at once)

$(echo "| tool |$(for n in "${w4sizes[@]}"; do printf ' %s host(s) |' $n; done)"
echo "|---|$(for n in "${w4sizes[@]}"; do printf -- '---|'; done)"
w4row "\`ssh host 'cat > /dev/null'\` (the ceiling)" cat
w4row "OpenSSH \`sftp\` put" sftp
w4row "\`scp\`" scp
w4row "\`rsync\`" rsync
w4row "upgrader apply (upload action: plan probes the host, a new file is not hashed locally; atomic write)" ug
w4row "upgrader transport alone (WriteFile, connection up before its clock)" transport
w4row "Ansible defaults (\`copy\`)" ans_default
w4row "Ansible tuned" ans_tuned
w4ratio "upgrader apply, fraction of \`ssh cat\`" ug cat
w4ratio "upgrader apply, fraction of \`sftp\` (target >= 0.9)" ug sftp 0.9
w4ratio "upgrader transport, fraction of \`sftp\`" transport sftp
w4ratio "upgrader transport, fraction of \`ssh cat\`" transport cat)

### W5: back up a tree ($w5count files: $w5files small text files and 3 x $w5bigmib MiB, $((w5bytes >> 20)) MiB) to the controller

| tool | time | archive |
|---|---|---|
| upgrader apply (\`backup\` node: tar, zstd on the controller, manifest, read back and verified) | $(cell w5_ug) | $((${w5_ug_size:-0} >> 20)) MiB |
| \`ssh host tar -cf - DIR \| zstd > file\` | $(cell w5_ssh_tar) | $((w5_ssh_size >> 20)) MiB |
| \`rsync -a\` (a plain copy, no archive) | $(cell w5_rsync) | |
| Ansible defaults (\`shell\` tar \| zstd, \`fetch\`, \`file\` absent) | $(cell w5_ans_default) | |
| Ansible tuned | $(cell w5_ans_tuned) | |

upgrader / \`ssh tar | zstd\`: $r_w5 (target <= 1.2: $(mark "$r_w5" "<=" 1.2)).

### W6: re-plan when nothing changed (all \`=\`), $nhosts hosts

| upgrader plan | ssh sha256sum, every host at once, ControlMaster | same, new connections | Ansible defaults \`--check --diff\` | Ansible tuned \`--check --diff\` |
|---|---|---|---|---|
| $(cell w6_ug) | $(cell w6_ssh_cm) | $(cell w6_ssh_cold) | $(cell w6_ans_default) | $(cell w6_ans_tuned) |

Target: upgrader plan under 1 s for $nhosts hosts: $(awk -v w="$w6" 'BEGIN {printf "%.3f s", w}'), $(mark "$w6" "<=" 1).
upgrader / new-connection floor: $(ratio w6_ug w6_ssh_cold); Ansible tuned / upgrader: $(ratio w6_ans_tuned w6_ug).

Reproduce: \`sudo scripts/bench.sh --write\` (full: 10 minutes on an idle machine, 25 under heavy load) or \`sudo scripts/bench.sh --quick\` (CI, under 2 minutes).
EOF
)
echo "$table"
{
  printf '# key\twall_median_s\tcpu_median_s\tpeak_rss_kb\twall_each_run_s\n'
  for k in "${!W[@]}"; do printf '%s\t%s\t%s\t%s\t%s\n' "$k" "${W[$k]}" "${C[$k]:-}" "${M[$k]:-}" "${R[$k]:-}"; done | sort
} >"$results"
if [ $write = 1 ]; then cp "$results" "$repo/bench/results.tsv"; fi
if [ $write = 1 ]; then
  f=$repo/BENCHMARKS.md
  [ -f "$f" ] || printf '# Benchmarks\n' >"$f"
  # Replace our section (from its heading to the next "## "), keep the others (Transport).
  awk -v new="$table" '
    /^## Side by side with Ansible and OpenSSH$/ {skip = 1; print new; done = 1; next}
    skip && /^## / {skip = 0}
    !skip {print}
    END {if (!done) {print ""; print new}}
  ' "$f" >"$f.tmp" && mv "$f.tmp" "$f"
fi
if [ ${#failed[@]} -gt 0 ]; then
  echo "bench: FAILED: ${failed[*]}" >&2
  exit 1
fi
