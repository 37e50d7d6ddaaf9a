variable "v" {
  default = "a"
}
variable "v" { # ERROR: Duplicate variable "v"
  default = "b"
}

locals {
  x = 1
}
locals {
  x = 2 # ERROR: Duplicate local value "x"
}

connection {
  user = "deploy"
}
connection { # ERROR: Duplicate connection block
  user = "ops"
}

host "web" {
  address = "198.51.100.1"
}
host "web" { # ERROR: Duplicate host "web"
  address = "198.51.100.2"
}

database "db" {
  driver = "postgres"
  dsn    = "postgres://x@203.0.113.1/db"
}
database "db" { # ERROR: Duplicate database "db"
  driver = "mysql"
  dsn    = "x"
}

backup "web" {
  host = host.web
}

phase "p" {
  backup "web" { # ERROR: Duplicate backup "web"
    host = host.web
  }
}
phase "p" { # ERROR: Duplicate phase "p"
}

step "s" {
  host = host.web
  run {
    command = "true"
  }
  rollback {
    run {
      command = "true"
    }
  }
  rollback { # ERROR: Duplicate rollback block
  }
}
