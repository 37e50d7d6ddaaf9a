# want: expected the body to contain "PONG", got: "pong"
http {
  url         = "${server.url}/ping"
  expect_body = "PONG"
}
