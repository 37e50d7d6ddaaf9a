# want: GET URL/fail: expected status 200, got 503; body: "down for maintenance"
http {
  url = "${server.url}/fail"
}
