# A window of checks only: no hosts needed.
observe "checks" {
  duration           = "2h"
  checks             = [check.regression]
  max_check_failures = 2
}
