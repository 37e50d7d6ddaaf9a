backup {
  host  = host.web
  paths = ["/opt/app", "//"] # ERROR: refusing to back up or restore / as a whole
}
