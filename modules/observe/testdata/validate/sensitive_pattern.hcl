observe "secret" {
  duration = "1h"
  hosts    = [host.standby]
  log {
    path    = "/var/log/app/app.log"
    pattern = var.secret # ERROR: Invalid log pattern
  }
}
