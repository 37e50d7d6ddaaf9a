backup {
  database = database.prod
  timeout  = "soon" # ERROR: invalid timeout
}
