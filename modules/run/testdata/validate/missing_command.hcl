run { # ERROR: Missing required argument
  sudo = true
}
