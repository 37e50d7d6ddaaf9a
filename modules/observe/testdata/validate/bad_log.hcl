observe "logs" {
  duration = "1h"
  hosts    = [host.standby]
  log {
    path    = "/var/log/app/app.log"
    pattern = "ERROR(" # ERROR: Invalid log pattern
  }
  log {
    host        = host.primary # ERROR: Log host not observed
    path        = "app.log" # ERROR: Relative log path
    pattern     = "[z-a]" # ERROR: Invalid log pattern
    max_matches = -1 # ERROR: Invalid max_matches
  }
}
