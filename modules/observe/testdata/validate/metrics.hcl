observe "users" {
  duration   = "1h"
  breach_for = "5m"
  metric "error_ratio" {
    source               = metric_source.prom
    query                = "sum(rate(app_requests_total{code=~\"5..\"}[2m])) / sum(rate(app_requests_total[2m]))"
    max                  = 0.01
    max_increase_percent = 50
    baseline             = "30m"
    breach_for           = "2m"
    on_no_data           = "fail"
  }
  metric "throughput" {
    source               = metric_source.prom
    query                = "sum(rate(app_requests_total[2m]))"
    max_decrease_percent = 30
    baseline             = "1h"
  }
  metric "error_ratio" { # ERROR: Duplicate metric
    source = metric_source.prom
    query  = "up"
    max    = 1
  }
  metric "no_bound" {
    source = metric_source.prom
    query  = "up" # ERROR: No bound
  }
  metric "relative" {
    source               = metric_source.prom
    query                = "up"
    max_increase_percent = 10 # ERROR: Missing baseline
  }
  metric "bad" {
    source               = host.standby # ERROR: Invalid metric source
    query                = "  " # ERROR: Empty query
    min                  = 2 # ERROR: Bounds cross
    max                  = 1
    max_decrease_percent = 120 # ERROR: Bound out of range
    baseline             = "soon" # ERROR: Invalid duration
    on_no_data           = "ignore" # ERROR: Invalid on_no_data
  }
}
