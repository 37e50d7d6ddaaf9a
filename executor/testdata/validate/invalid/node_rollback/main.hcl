host "web" {
  address = "198.51.100.10"
}
database "prod" {
  driver = "postgres"
  dsn    = "postgres://app@198.51.100.11/app"
}

backup "proddb" {
  database = database.prod
}

migrate "prod" {
  database = database.prod
  dir      = "migrations"
  rollback {
    restore {
      backup = backup.proddb
      paths  = [] # ERROR: paths is empty
    }
    run { # ERROR: Action without a host
      command = "true"
    }
  }
}
