host "web" {
  address = "198.51.100.1"
  labels  = "web" # ERROR: Invalid labels
  connection {
    port    = "twenty-two" # ERROR: Invalid port
    timeout = "10 seconds" # ERROR: Invalid timeout
    sudo_password = "one\ntwo" # ERROR: Invalid sudo_password
  }
}

database "db" {
  driver = "postgresql" # ERROR: Invalid driver
  dsn    = "x"
}

backup "web" {
  host  = host.web
  paths = "/opt/app" # ERROR: Incorrect attribute value type
}

migrate "db" { # ERROR: Missing required argument
  database = database.db
}

step "s" {
  host       = host.web
  batch_size = "all" # ERROR: Invalid batch_size
  depends_on = [backup.web]

  run {
    command = ["a", "b"] # ERROR: Incorrect attribute value type
  }
}

check "c" {
  retries  = -1 # ERROR: Invalid retries
  interval = "soon" # ERROR: Invalid interval
  http {
    url           = "http://198.51.100.1/"
    expect_status = "ok" # ERROR: Incorrect attribute value type
  }
}

gate "g" {
  when = "maybe" # ERROR: Invalid when
}

gate "nullwhen" {
  when = null # ERROR: Invalid when
}
