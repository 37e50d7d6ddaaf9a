# migrate with a rollback block: when a later check of the phase fails, the
# database backup is restored instead of running the down files (whose
# "DROP COLUMN" would not bring the renamed users back).
variable "dsn" {
  type      = string
  sensitive = true
}

database "prod" {
  driver = "postgres"
  dsn    = var.dsn
}

phase "db" {
  backup "proddb" {
    database = database.prod
  }

  migrate "prod" {
    database = database.prod
    dir      = "migrations"
    rollback {
      restore {
        backup = backup.proddb
      }
    }
  }

  check "after" {
    depends_on = [migrate.prod]
    sql {
      database = database.prod
      query    = "select count(*) from users where email is not null"
      expect   = "> 100"
    }
  }
}
