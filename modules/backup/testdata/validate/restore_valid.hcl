restore {
  backup = backup.web
  paths  = ["/opt/app/conf"]
  to     = host.db
  sudo   = true
}
