restore {
  backup = backup.web
  paths  = ["opt/app"] # ERROR: is not absolute
}
