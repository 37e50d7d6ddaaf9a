backup { # ERROR: backup needs host and paths, or database
  keep_runs = 2
}
