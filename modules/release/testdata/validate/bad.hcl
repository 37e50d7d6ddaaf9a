release {
  artifact = "notgz.tar.gz"      # ERROR: Artifact is not a .tar.gz
  dir      = "opt/app"           # ERROR: Release dir must be absolute
  version  = "../2.4.0"          # ERROR: Invalid release version
  keep     = 0                   # ERROR: Invalid keep
  shared   = ["../etc"]          # ERROR: Invalid shared path
  activate = " "                 # ERROR: Empty activate command
}
