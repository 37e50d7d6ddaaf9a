versoin = "1" # ERROR: Unsupported argument

host "web" {
  address = "198.51.100.1"
  adress  = "x" # ERROR: Unsupported argument
}

stepp "x" { # ERROR: Unsupported block type
}

step "s" {
  host    = host.web
  retries = 3 # ERROR: Unsupported argument

  uplod { # ERROR: Unsupported block type
    source = "a"
  }
  run {
    command = "true"
    comand  = "x" # ERROR: Unsupported argument
  }
}

check "c" {
  ping { # ERROR: Unsupported block type
  }
  http {
    url = "http://198.51.100.1/"
  }
}

phase "p" {
  phase "nested" { # ERROR: Unsupported block type
  }
}

step "bad name" { # ERROR: Invalid name
  host = host.web
}

host { # ERROR: Wrong number of labels for host
}
