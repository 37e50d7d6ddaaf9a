variable "version" {
  type    = string
  default = "2.4.0"
}

variable "token" {
  type      = string
  sensitive = true
  default   = "hunter2-token"
}

host "standby" {
  address = "198.51.100.201"
}

host "primary" {
  address = "198.51.100.202"
}

check "probe" {
  command {
    host    = host.standby
    command = "app --version"
  }
}

phase "standby" {
  step "install" {
    host = host.standby
    backup_required = false
    upload {
      source      = "app.conf"
      destination = "/etc/app/app.conf"
    }
    run {
      command = "deploy --token ${var.token} --version ${var.version}"
      creates = "/opt/app/${var.version}"
    }
  }
}

phase "primary" {
  depends_on = [phase.standby]
  on_failure = "stop"
  step "install_primary" {
    hosts      = [host.primary]
    batch_size = 1
    backup_required = false
    when       = check.probe.passed
    run {
      command = "systemctl restart app"
    }
    rollback {
      run {
        command = "systemctl restart app-old"
      }
    }
  }
}

gate "go" {
  depends_on = [step.install]
  message    = "Go on with the primary?"
}

# observe only reads: offline it shows its window as a read, not a command
observe "after_go" {
  depends_on      = [gate.go]
  duration        = "5m"
  interval        = "10s"
  hosts           = [host.standby]
  max_cpu_percent = 90
  log {
    path        = "/var/log/app/app.log"
    pattern     = "ERROR"
    max_matches = 0
  }
}
