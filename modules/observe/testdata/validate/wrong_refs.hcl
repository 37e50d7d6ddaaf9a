observe "refs" {
  duration = "1h"
  interval = "2h" # ERROR: Interval longer than the window
  hosts    = ["standby"] # ERROR: Invalid hosts
  checks   = [host.standby] # ERROR: Invalid checks
}
