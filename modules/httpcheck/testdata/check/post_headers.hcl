# want: pass
http {
  url         = "${server.url}/echo"
  method      = "POST"
  headers     = { "X-Token" = "abc", "Content-Type" = "text/plain" }
  body        = "hello"
  expect_body = "POST text/plain abc hello"
}
