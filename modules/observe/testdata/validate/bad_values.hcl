observe "bad" {
  duration           = "3 days" # ERROR: Invalid duration
  interval           = "0s" # ERROR: Invalid duration
  hosts              = [host.standby, host.standby] # ERROR: Duplicate host
  max_cpu_percent    = 120 # ERROR: Bound out of range
  max_load           = -1 # ERROR: Bound out of range
  breach_for         = "-5m" # ERROR: Invalid duration
  disk_paths         = ["var/lib"] # ERROR: Relative disk path
  max_check_failures = 0 # ERROR: Invalid max_check_failures
}
