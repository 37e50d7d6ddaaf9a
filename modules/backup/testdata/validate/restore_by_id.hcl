restore {
  backup = backup.old
}
