# want: expected the body to match /^PONG$/, got: "pong"
http {
  url               = "${server.url}/ping"
  expect_body_regex = "^PONG$"
}
