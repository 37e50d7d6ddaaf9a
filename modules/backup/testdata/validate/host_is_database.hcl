backup {
  host  = database.prod # ERROR: host must be a host reference
  paths = ["/opt/app"]
}
