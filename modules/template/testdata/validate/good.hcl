template {
  source      = "app.conf.tmpl"
  destination = "/etc/app/app.conf"
  vars        = { version = var.version, port = 8080 }
  mode        = "0640"
}
