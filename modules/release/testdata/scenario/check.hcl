http {
  url           = "http://${host.address}:8080/version.txt"
  expect_status = 200
  expect_body   = var.version
}

command {
  host          = host
  command       = "cat /opt/app/shared/run/conf-loaded"
  expect_output = "version     = ${var.version}"
}
