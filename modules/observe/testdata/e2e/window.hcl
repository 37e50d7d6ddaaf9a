# A switch to the new version that the rollback undoes, then a window that
# watches the host: a breach must bring version 1.0 back.
variable "duration" {
  type    = string
  default = "30s"
}

# The test hosts share the machine's CPUs with every other test: only the
# CPU test sets a bound the others' load could reach.
variable "max_cpu" {
  type    = number
  default = 100
}

step "switch" {
  host            = host.web
  backup_required = false
  run {
    command = "mkdir -p /tmp/app && echo 2.0 > /tmp/app/version"
  }
  rollback {
    run {
      command = "echo 1.0 > /tmp/app/version"
    }
  }
}

observe "soak" {
  depends_on      = [step.switch]
  duration        = var.duration
  interval        = "300ms"
  hosts           = [host.web]
  max_cpu_percent = var.max_cpu
  breach_for      = "600ms"
  log {
    path    = "/var/log/app/app.log"
    pattern = "ERROR"
  }
}
