# Counters on the host prove which steps ran how often. "long" waits for
# /tmp/app/go, so a test can kill upgrader while it runs.
step "c1" {
  host            = host.web
  backup_required = false
  run {
    command = "mkdir -p /tmp/app && n=$(cat /tmp/app/c1 2>/dev/null || echo 0) && echo $((n+1)) > /tmp/app/c1"
  }
}

step "c2" {
  host            = host.web
  backup_required = false
  depends_on      = [step.c1]
  run {
    command = "n=$(cat /tmp/app/c2 2>/dev/null || echo 0) && echo $((n+1)) > /tmp/app/c2"
  }
}

step "long" {
  host            = host.web
  backup_required = false
  depends_on      = [step.c2]
  run {
    command    = "n=$(cat /tmp/app/c3 2>/dev/null || echo 0) && echo $((n+1)) > /tmp/app/c3 && while [ ! -f /tmp/app/go ]; do sleep 0.1; done"
    idempotent = true
  }
}

step "c4" {
  host            = host.web
  backup_required = false
  depends_on      = [step.long]
  run {
    command = "n=$(cat /tmp/app/c4 2>/dev/null || echo 0) && echo $((n+1)) > /tmp/app/c4"
  }
}
