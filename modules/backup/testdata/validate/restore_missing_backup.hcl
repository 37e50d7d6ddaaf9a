restore { # ERROR: Missing required argument
  paths = ["/opt/app"]
}
