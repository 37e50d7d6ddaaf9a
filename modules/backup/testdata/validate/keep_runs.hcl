backup {
  database  = database.prod
  keep_runs = 0 # ERROR: keep_runs must be a whole number
}
