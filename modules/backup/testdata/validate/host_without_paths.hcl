backup { # ERROR: backup of a host needs paths
  host = host.web
}
