variable "password" {
  type      = string
  sensitive = true
  default   = "correct-horse-battery"
}

host "web" {
  address = "198.51.100.10"
}

step "deploy" {
  host = host.wbe
  run {
    command = "deploy --password ${var.password}"
    timeout = 30
    envv    = {}
  }
}

check "up" {
  http {
    url           = "http://198.51.100.10/"
    expect_status = var.password
  }
}
