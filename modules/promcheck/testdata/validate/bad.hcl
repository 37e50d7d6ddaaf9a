prometheus {
  source = var.version # ERROR: Invalid source
  query  = " "         # ERROR: Empty query
  expect = "0.01"      # ERROR: Invalid expect
}
