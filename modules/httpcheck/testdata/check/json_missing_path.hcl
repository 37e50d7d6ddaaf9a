# want: expected JSON checks.5.name = "db", but the path is missing
http {
  url         = "${server.url}/json"
  expect_json = { "checks.5.name" = "db" }
}
