host "web" {
  address = "198.51.100.10"
}
host "db" {
  address = "198.51.100.11"
}
database "prod" {
  driver = "postgres"
  dsn    = "postgres://app@198.51.100.11/app"
  host   = host.db
}

phase "prepare" {
  backup "web" {
    host  = host.web
    paths = ["/opt/app"]
  }
  backup "prod" {
    database = database.prod
  }
}

# Ordered after the backups by phase order.
phase "upgrade" {
  depends_on = [phase.prepare]

  migrate "prod" {
    database = database.prod
    dir      = "migrations"
  }

  step "install" {
    host = host.web
    run {
      command = "true"
    }
  }
}

backup "db_files" {
  host  = host.db
  paths = ["/etc/app"]
}

# Ordered after the backup by a reference to its output.
step "db_config" {
  host = host.db
  run {
    command = "echo ${backup.db_files.id}"
  }
}

# Transitively after backup.db_files through step.db_config.
step "db_restart" {
  hosts      = [host.db]
  depends_on = [step.db_config]
  run {
    command = "systemctl restart app"
  }
}
