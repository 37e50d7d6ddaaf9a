observe "standby_soak" {
  duration           = "72h"
  interval           = "1m"
  hosts              = [host.standby, host.primary]
  max_cpu_percent    = 85
  max_memory_percent = 90
  max_disk_percent   = 90
  max_load           = 8.5
  disk_paths         = ["/", "/var/lib/postgresql"]
  breach_for         = "5m"
  log {
    path        = "/var/log/app/app.log"
    pattern     = "ERROR|Exception"
    max_matches = 0
  }
  log {
    host    = host.primary
    path    = "/var/log/nginx/error.log"
    pattern = "(?i)upstream timed out"
  }
  checks             = [check.regression]
  max_check_failures = 3
  unreachable_fails  = false
}
