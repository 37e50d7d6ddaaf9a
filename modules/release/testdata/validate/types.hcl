release {
  artifact = "good.tar.gz"
  dir      = "/opt/app"
  version  = "2.4.0"
  keep     = "five"              # ERROR: Incorrect attribute value type
}
