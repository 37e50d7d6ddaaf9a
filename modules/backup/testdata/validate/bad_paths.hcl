backup {
  host  = host.web
  paths = ["relative/dir"] # ERROR: is not absolute
}
