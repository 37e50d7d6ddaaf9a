host "standby" {
  address = "198.51.100.2"
}

observe "soak" {
  duration = "1h"
  interval = "1m"
  hosts    = [host.standby]
  log {
    path    = "/var/log/app/app.log"
    pattern = "ERROR"
  }
  log {
    path    = "/var/log/app/other.log"
    pattern = "ERROR("
  }
}
