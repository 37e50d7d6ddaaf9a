host "db" {
  address = "198.51.100.9"
}

database "prod" {
  driver = "postgres"
  dsn    = "postgres://u@198.51.100.9/prod"
}

backup "proddb" {
  database = database.prod
}

migrate "prod" {
  database = database.prod
  dir      = "migrations"
  rollback {
    restore {
      backup = backup.nope # ERROR: Reference to undeclared backup "nope"
    }
    teleport { # ERROR: Unsupported block type
    }
  }
  rollback { # ERROR: Duplicate rollback block
  }
}
