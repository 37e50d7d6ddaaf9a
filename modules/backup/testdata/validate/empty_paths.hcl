backup {
  host  = host.web
  paths = [] # ERROR: paths is empty
}
