backup {
  host  = host.web
  paths = ["/opt/app", "/opt/app/conf"] # ERROR: lies inside
}
