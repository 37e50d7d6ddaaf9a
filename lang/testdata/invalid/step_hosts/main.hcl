host "web" {
  address = "198.51.100.1"
}

step "nohost" { # ERROR: Missing host
  run {
    command = "true"
  }
}

step "both" {
  host  = host.web
  hosts = [host.web] # ERROR: Conflicting arguments
  run {
    command = "true"
  }
}

step "notahost" {
  hosts = ["198.51.100.1"] # ERROR: Invalid hosts
  run {
    command = "true"
  }
}

step "empty" { # ERROR: Step without actions
  host = host.web
}

check "empty" { # ERROR: Check without probes
}

step "nobody" {
  hosts = [for h in host : h if h.labels == { role = "none" }] # ERROR: Invalid hosts
  run {
    command = "true"
  }
}
