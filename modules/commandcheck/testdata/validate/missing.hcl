command { # ERROR: Missing required argument
  host = { name = "standby" }
}
