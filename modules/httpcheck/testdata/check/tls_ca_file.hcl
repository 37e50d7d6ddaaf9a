# want: pass
http {
  url         = "${server.tls_url}/ping"
  ca_file     = server.ca_file
  expect_body = "pong"
}
