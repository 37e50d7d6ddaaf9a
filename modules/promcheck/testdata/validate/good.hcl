prometheus {
  source = metric_source.prom
  query  = "sum(rate(app_requests_total{code=~\"5..\"}[2m])) / sum(rate(app_requests_total[2m]))"
  expect = "< 0.01"
}
