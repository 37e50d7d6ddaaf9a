# want: pass
http {
  url                  = "${server.tls_url}/ping"
  insecure_skip_verify = true
}
