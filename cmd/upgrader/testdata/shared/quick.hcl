state {
  backend = "postgres"
  name    = "race"
}

step "one" {
  host            = host.web
  backup_required = false
  run {
    command = "sleep 2"
  }
}
