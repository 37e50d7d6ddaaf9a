backup {
  database  = database.prod
  keep_runs = 1
}
