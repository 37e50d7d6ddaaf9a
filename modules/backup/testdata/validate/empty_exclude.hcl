backup {
  host    = host.web
  paths   = ["/opt/app"]
  exclude = [""] # ERROR: empty exclude pattern
}
