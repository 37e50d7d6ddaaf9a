# want: expected JSON checks.0.healthy = false, got true
http {
  url         = "${server.url}/json"
  expect_json = { "checks.0.healthy" = false }
}
