variable "token" {
  sensitive = true
  default   = "default-token"
}

variable "fail" {
  type    = bool
  default = true
}

variable "db" {
  type      = object({ user = string, password = string })
  sensitive = true
}

step "use" {
  host            = host.web
  backup_required = false
  run {
    command = "printf 'b64=%s\\n' ${base64encode(var.token)}; printf 'q=%s\\n' ${shellquote(format("%q", var.db.password))}; printf 'pw=%s\\n' ${shellquote(var.db.password)} >&2; printf %s ${shellquote(var.token)} | sha256sum | cut -c1-64 > /opt/token.sha"
  }
  template {
    source      = "canary.tmpl"
    destination = "/opt/app.conf"
    vars        = { token = var.token, pw = var.db.password }
  }
}

step "fail" {
  host            = host.web
  backup_required = false
  depends_on      = [step.use]
  when            = var.fail
  run {
    command = "echo about to fail with ${shellquote(var.token)} and ${shellquote(base64encode(var.token))} >&2; exit 3"
  }
}
