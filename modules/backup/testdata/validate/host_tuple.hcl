backup {
  host  = [host.web] # ERROR: host must be a host reference
  paths = ["/opt/app"]
}
