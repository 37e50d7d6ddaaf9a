upload {
  source      = "files/app.conf"
  destination = "/etc/app/app.conf"
  mode        = "0640"
  owner       = "root"
  group       = "app"
  sudo        = true
}
