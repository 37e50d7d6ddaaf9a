restore {
  backup = "web" # ERROR: backup must be a backup reference
}
