variable "token" {
  sensitive = true
}

gate "go" {
  message = "Go on?"
}

step "use" {
  host            = host.web
  depends_on      = [gate.go]
  backup_required = false
  run {
    command = "printf %s ${shellquote(var.token)} | sha256sum | cut -c1-64 > /opt/token.sha"
  }
}
