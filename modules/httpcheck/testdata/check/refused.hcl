# want: connection refused
http {
  url = "${server.closed_url}/ping"
}
