# want: pass
http {
  url         = "${server.url}/ping"
  expect_body = "pong"
}
