restore {
  backup = backup.web
  to     = "db" # ERROR: to must be a host reference
}
