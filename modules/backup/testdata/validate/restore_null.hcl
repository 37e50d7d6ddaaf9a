restore {
  backup = null # ERROR: backup must be a backup reference
}
