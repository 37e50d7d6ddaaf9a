run {
  command     = "systemctl restart app"
  sudo        = true
  env         = { APP_ENV = "prod" }
  timeout     = "2m"
  creates     = "/opt/app/.installed"
  unless      = "test -f /x"
  expect_exit = [0, 3]
  idempotent  = true
}
