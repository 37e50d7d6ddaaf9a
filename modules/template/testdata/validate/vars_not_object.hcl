template {
  source      = "app.conf.tmpl"
  destination = "/etc/app/app.conf"
  vars        = "version=1" # ERROR: Invalid vars
}
