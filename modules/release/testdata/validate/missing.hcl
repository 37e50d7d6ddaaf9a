release {
  artifact = "dist/nope.tar.gz"  # ERROR: Artifact not found
  dir      = "/opt/app"
  version  = "2.4.0"
}
