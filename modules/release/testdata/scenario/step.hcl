# The step the scenario test runs, action by action, on host "web".
upload {
  source      = "files/motd.txt"
  destination = "/opt/app/shared/motd.txt"
  mode        = "0644"
}

template {
  source      = "app.conf.tmpl"
  destination = "/etc/app/app.conf"
  vars        = { version = var.version, db_password = var.secret, nodes = ["a", "b"] }
  mode        = "0640"
  owner       = "root"
  group       = "deploy"
  sudo        = true
}

# Reload the running service when its loaded config differs from the file.
run {
  command = "/opt/app/current/bin/restart"
  unless  = "cmp -s /etc/app/app.conf /opt/app/shared/run/conf-loaded"
}

release {
  artifact = "dist/app-${var.version}.tar.gz"
  dir      = "/opt/app"
  version  = var.version
  shared   = ["run"]
  activate = "bin/restart"
  keep     = 3
}
