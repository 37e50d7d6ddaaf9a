# want: certificate signed by unknown authority
http {
  url = "${server.tls_url}/ping"
}
