backup {
  host     = host.web
  paths    = ["/opt/app"]
  database = database.prod # ERROR: backup takes host or database, not both
}
