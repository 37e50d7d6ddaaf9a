host "web" {
  address = "198.51.100.10"
}
database "prod" {
  driver = "postgres"
  dsn    = "postgres://app@198.51.100.11/app"
}

backup "both" {
  host     = host.web
  database = database.prod # ERROR: backup takes host or database, not both
  paths    = ["/opt/app"]
}

check "bad_url" {
  http {
    url = "not a url" # ERROR: Invalid URL
  }
}

panicky "p" { # ERROR: Internal error in the panicky module
  database = database.prod # ERROR: No backup of database "prod" before panicky.p
  dir      = "x"
}
