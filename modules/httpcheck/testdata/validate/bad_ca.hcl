http {
  url     = "https://198.51.100.1/"
  ca_file = "not-a-cert.pem"                # ERROR: Invalid ca_file
}
