restore {
  backup = step.x # ERROR: backup must be a backup reference
}
