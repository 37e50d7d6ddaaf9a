release {
  artifact = "good.tar.gz"
  dir      = "/opt/app"
  version  = var.version
  keep     = 3
  shared   = ["log", "config/app.conf"]
  activate = "systemctl restart app"
  sudo     = true
}
