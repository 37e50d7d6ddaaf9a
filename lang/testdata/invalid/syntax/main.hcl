host "web" {
  address = "198.51.100.1"
}

step "s" {
  host = host.web
  run {
    command = 1 + # ERROR: Invalid expression
  }
}
