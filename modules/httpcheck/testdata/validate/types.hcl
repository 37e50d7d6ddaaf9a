http {
  url     = "http://198.51.100.1/"
  headers = ["X-A: 1"]                      # ERROR: Incorrect attribute value type
}
