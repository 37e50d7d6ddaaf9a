backup {
  host  = host.web
  paths = ["/opt/app/../etc"] # ERROR: contains ".."
}
