run {
  command = "true"
  sudo    = "maybe"       # ERROR: Incorrect attribute value type
  env     = ["A=1"]       # ERROR: Incorrect attribute value type
}
