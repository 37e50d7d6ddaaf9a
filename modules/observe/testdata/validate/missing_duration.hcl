observe "nodur" { # ERROR: Missing required argument
  hosts = [host.standby]
}
