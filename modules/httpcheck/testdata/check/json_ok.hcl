# want: pass
http {
  url = "${server.url}/json"
  expect_json = {
    "status"           = "ok"
    "checks.0.name"    = "db"
    "checks.1.healthy" = false
    "count"            = 3
    "ratio"            = "0.50"
    "meta"             = { region = "eu", replicas = [1, 2] }
  }
}
