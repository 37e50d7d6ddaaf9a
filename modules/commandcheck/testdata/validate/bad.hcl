command {
  host        = "standby"   # ERROR: Invalid host
  command     = ""          # ERROR: Empty command
  expect_exit = [-1]        # ERROR: Invalid expect_exit
}
