# want: expected a JSON body, got: "pong"
http {
  url         = "${server.url}/ping"
  expect_json = { status = "ok" }
}
