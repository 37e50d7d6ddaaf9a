# Notifications of a real run: a gate approved from outside, a step, a check
# that fails (so the run rolls back); one receiver that answers, one that
# answers 500 and one that never answers. The token is a canary: it must
# reach the receiver as a header and never appear in a body.
variable "ok_url" {
  sensitive = true # a chat webhook's address holds its secret
}

variable "bad_url" {}

variable "hang_url" {}

variable "token" {
  default   = "canary-notify-9931"
  sensitive = true
}

notify "oncall" {
  webhook {
    url     = "${var.ok_url}/json"
    format  = "json"
    headers = { Authorization = "Bearer ${var.token}" }
  }
  on = ["run_started", "waiting", "approved", "node_failed", "observe_breach", "rollback_started", "undo_failed", "rollback_incomplete", "run_finished"]
}

notify "chat" {
  webhook {
    url    = "${var.ok_url}/slack"
    format = "slack"
  }
  on = ["observe_breach", "rollback_started", "run_finished"]
}

notify "down" {
  webhook {
    url     = var.bad_url
    timeout = "2s"
  }
  on = ["run_started", "run_finished"]
}

notify "hang" {
  webhook {
    url     = var.hang_url
    timeout = "2s"
  }
  on = ["run_finished"]
}

gate "go" {
  message = "Deploy?"
}

step "conf" {
  host            = host.web
  depends_on      = [gate.go]
  backup_required = false
  upload {
    source      = "app.conf"
    destination = "/tmp/app/app.conf"
  }
}

check "smoke" {
  depends_on = [step.conf]
  retries    = 0
  command {
    host    = host.web
    command = "echo 'token ${var.token} rejected' >&2; exit 1"
  }
}
