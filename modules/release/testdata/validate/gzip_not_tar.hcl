release {
  artifact = "plain.gz"          # ERROR: Artifact is not a .tar.gz
  dir      = "/"                 # ERROR: Release dir must be absolute
  version  = "2.4.0"
}
