backup {
  database  = database.prod
  keep_runs = 2.5 # ERROR: keep_runs must be a whole number
}
