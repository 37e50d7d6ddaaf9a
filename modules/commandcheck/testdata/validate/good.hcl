command {
  host          = { name = "standby", address = "198.51.100.2" }
  command       = "app --version"
  sudo          = true
  expect_exit   = [0]
  expect_output = var.version
}
