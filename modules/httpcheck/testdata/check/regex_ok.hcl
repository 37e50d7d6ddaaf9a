# want: pass
http {
  url               = "${server.url}/json"
  expect_body_regex = "\"version\":\\s*\"2\\.4\\.\\d+\""
}
