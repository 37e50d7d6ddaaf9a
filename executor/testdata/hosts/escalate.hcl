# Phase "db" changes db; phase "web" changes web and then fails its
# verification. After web is rolled back the health check still fails, so
# escalate rolls back phase "db" too.
check "health" {
  depends_on = [step.web_verify]
  command {
    host    = host.web
    command = "test -f /tmp/app/healthy"
  }
}

phase "db" {
  step "db_upgrade" {
    host            = host.db
    backup_required = false
    run {
      command = "mkdir -p /tmp/app && echo db-v2 > /tmp/app/version"
    }
    rollback {
      run {
        command = "echo db-v1 > /tmp/app/version && echo undo-db >> /tmp/app/undo"
      }
    }
  }
}

phase "web" {
  depends_on = [phase.db]
  escalate {
    checks   = [check.health]
    rollback = "all"
  }
  step "web_upgrade" {
    host            = host.web
    backup_required = false
    run {
      command = "mkdir -p /tmp/app && echo web-v2 > /tmp/app/version"
    }
    rollback {
      run {
        command = "echo web-v1 > /tmp/app/version && echo undo-web >> /tmp/app/undo"
      }
    }
  }
  step "web_verify" {
    host            = host.web
    backup_required = false
    depends_on      = [step.web_upgrade]
    run {
      command = "grep -q web-v3 /tmp/app/version"
    }
  }
}
