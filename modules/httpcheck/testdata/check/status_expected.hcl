# want: pass
http {
  url           = "${server.url}/fail"
  expect_status = 503
  expect_body   = "maintenance"
}
