http {
  url               = "ftp://198.51.100.1/x" # ERROR: Invalid URL
  method            = "get"                  # ERROR: Invalid method
  expect_status     = 1000                   # ERROR: Invalid expect_status
  expect_body_regex = "(unclosed"            # ERROR: Invalid expect_body_regex
  expect_json       = ["status"]             # ERROR: Invalid expect_json
  ca_file           = "missing-ca.pem"       # ERROR: Invalid ca_file
}
