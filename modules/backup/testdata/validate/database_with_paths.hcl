backup {
  database = database.my
  paths    = ["/var/lib/mysql"] # ERROR: paths applies to host backups only
  sudo     = true               # ERROR: sudo applies to host backups only
}
