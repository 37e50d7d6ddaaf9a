phase "prepare" {
  backup "standby" {
    host  = host.standby
    paths = ["/opt/app"]
  }

  backup "db" {
    database = database.prod
  }

  schema_check "prod" {
    database = database.prod
  }
}

phase "standby" {
  depends_on = [phase.prepare]
  on_failure = "rollback"
  escalate {
    checks   = [check.regression]
    rollback = "all"
  }

  step "install" {
    host = host.standby
    when = !schema_check.prod.matches || true

    upload {
      source      = local.artifact
      destination = "/tmp/app-${run.id}.tgz"
    }
    run {
      command = format("tar -C /opt/app -xzf /tmp/app.tgz && echo %s", upper(var.version))
    }
    rollback {
      restore {
        backup = backup.standby
      }
    }
  }

  check "regression" {
    retries  = 3
    interval = "1s"
    http {
      url           = "http://${host.standby.address}:${host.standby.port}/api/ping"
      expect_status = 200
    }
  }
}

gate "go_primary" {
  depends_on = [phase.standby]
  message    = "Upgrade ${host.primary.name} to ${var.version}?"
}

step "primary" {
  hosts      = [for h in host : h if h.labels.role == "primary"]
  batch_size = 1
  depends_on = [gate.go_primary, backup.standby]

  run {
    command = "echo ${step.install.changed} ${timestamp()}"
  }
}
