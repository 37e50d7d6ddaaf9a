backup {
  database = host.db # ERROR: database must be a database reference
}
