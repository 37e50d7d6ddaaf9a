http {
  url                  = "https://198.51.100.1:8443/api/ping"
  method               = "POST"
  headers              = { Authorization = "Bearer x" }
  body                 = "{}"
  expect_status        = 204
  expect_body          = "pong"
  expect_body_regex    = "^p.ng$"
  expect_json          = { "a.b.0.c" = 1 }
  insecure_skip_verify = true
}
