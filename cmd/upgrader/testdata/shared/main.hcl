# Two operators share this procedure's runs through PostgreSQL (the DSN in
# UPGRADER_STATE_DSN). Counters on the host prove which steps ran how often.
state {
  backend = "postgres"
  name    = "shop-prod"
  lease   = "3s"
}

step "c1" {
  host            = host.web
  backup_required = false
  run {
    command = "mkdir -p /tmp/app && n=$(cat /tmp/app/c1 2>/dev/null || echo 0) && echo $((n+1)) > /tmp/app/c1"
  }
}

observe "soak" {
  depends_on         = [step.c1]
  duration           = "25s"
  interval           = "1s"
  hosts              = [host.web]
  max_memory_percent = 99.9
}

step "c2" {
  host            = host.web
  backup_required = false
  depends_on      = [observe.soak]
  run {
    command = "n=$(cat /tmp/app/c2 2>/dev/null || echo 0) && echo $((n+1)) > /tmp/app/c2"
  }
}
