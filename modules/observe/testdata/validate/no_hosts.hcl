observe "nohosts" {
  duration        = "1h"
  max_cpu_percent = 90 # ERROR: No hosts to watch
  log { # ERROR: No hosts to watch
    path    = "/var/log/app/app.log"
    pattern = "ERROR"
  }
}
