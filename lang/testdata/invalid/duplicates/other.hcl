step "s" { # ERROR: Duplicate step "s"
  host = host.web
  run {
    command = "true"
  }
}
