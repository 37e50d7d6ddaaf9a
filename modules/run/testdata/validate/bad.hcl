run {
  command     = ""                # ERROR: Empty command
  timeout     = "ten minutes"     # ERROR: Invalid timeout
  creates     = "var/lib/app"     # ERROR: Relative creates path
  expect_exit = [0, 1.5]          # ERROR: Invalid expect_exit
}
