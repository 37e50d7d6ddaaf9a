host "web" {
  address = "198.51.100.10"
}

step "hotfix" {
  host            = host.web
  backup_required = false
  run {
    command = "true"
  }
}
