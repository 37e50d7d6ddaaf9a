host "web" {
  address = "198.51.100.10"
}
host "db" {
  address = "198.51.100.11"
}

variable "regression_ok" {
  type    = bool
  default = false
}

tbackup "web" {
  host = host.web
}
tbackup "db" {
  host = host.db
}

check "regression" {
  depends_on = [step.web_verify]
  ok { ok = var.regression_ok }
}

phase "first" {
  step "db_upgrade" {
    host       = host.db
    depends_on = [tbackup.db]
    mark { text = "db" }
  }
}

phase "second" {
  depends_on = [phase.first]
  escalate {
    checks   = [check.regression]
    rollback = "all"
  }
  step "web_upgrade" {
    host       = host.web
    depends_on = [tbackup.web]
    mark { text = "web" }
    rollback {
      note { text = "restart-old-web" }
    }
  }
  step "web_verify" {
    host       = host.web
    depends_on = [step.web_upgrade]
    mark {
      text = "verify"
      fail = true
    }
  }
}
