# A small real run for the report test: a backup, a step on two hosts, a
# gate approved from outside, and an observation window whose log bound
# breaches (the step leaves a process that writes an ERROR line), so the
# run rolls back.
variable "version" {
  default = "2.0.0"
}

variable "token" {
  default   = "canary-report-secret-4711"
  sensitive = true
}

phase "prepare" {
  backup "web" {
    host  = host.web
    paths = ["/opt/app"]
  }
}

phase "rollout" {
  depends_on = [phase.prepare]

  gate "go" {
    message = "Roll out ${var.version}?"
  }

  step "deploy" {
    hosts      = [host.web, host.api]
    depends_on = [gate.go]
    backup_required = false
    upload {
      source      = "app.conf"
      destination = "/opt/app/app.conf"
    }
    run {
      command = "(sleep 2; echo 'ERROR boom' >> /var/log/app/app.log) >/dev/null 2>&1 &"
    }
    rollback {
      run {
        command = "rm -f /opt/app/app.conf"
      }
    }
  }

  observe "soak" {
    depends_on         = [step.deploy]
    duration           = "30s"
    interval           = "1s"
    hosts              = [host.web, host.api]
    max_memory_percent = 99.9
    log {
      path        = "/var/log/app/app.log"
      pattern     = "ERROR"
      max_matches = 0
    }
  }
}
