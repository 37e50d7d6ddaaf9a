host "web" {
  address = "198.51.100.10"
}
host "api" {
  address = "198.51.100.12"
}
database "prod" {
  driver = "postgres"
  dsn    = "postgres://app@198.51.100.11/app"
}

backup "web" {
  host  = host.web
  paths = ["/opt/app"]
}

step "no_backup_at_all" {
  host = host.api # ERROR: No backup of host "api" before step.no_backup_at_all
  run {
    command = "true"
  }
}

step "not_after_backup" {
  host = host.web # ERROR: No backup of host "web" before step.not_after_backup
  run {
    command = "true"
  }
}

step "one_host_missing" {
  hosts      = [host.web, host.api] # ERROR: No backup of host "api" before step.one_host_missing
  depends_on = [backup.web]
  run {
    command = "true"
  }
}

# A backup that runs after the step does not count.
step "backup_after" {
  host = host.web # ERROR: No backup of host "web" before step.backup_after
  run {
    command = "true"
  }
}
backup "late" {
  host       = host.web
  paths      = ["/opt/app"]
  depends_on = [step.backup_after]
}

migrate "prod" {
  database = database.prod # ERROR: No backup of database "prod" before migrate.prod
  dir      = "migrations"
  depends_on = [backup.web]
}
