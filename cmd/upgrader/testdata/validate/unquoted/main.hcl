variable "token" {
  sensitive = true
}
variable "port" {
  type = number
}
variable "dir" {
  default = "/opt/app"
}
locals {
  bin  = "/opt/app/bin/app"
  conf = "${var.dir}/app.conf"
}

host "web" {
  address = "198.51.100.1"
}

step "deploy" {
  host            = host.web
  backup_required = false
  run {
    command = "deploy --token ${var.token} --port ${var.port}"
    unless  = "test -e ${local.conf}"
  }
  run {
    command = "${local.bin} --token ${shellquote(var.token)} --conf ${shellquote(local.conf)}"
  }
  release {
    artifact = "app.tar.gz"
    dir      = "/opt/app"
    version  = "1"
    activate = "systemctl restart app@${var.dir}"
  }
}

check "alive" {
  command {
    host    = host.web
    command = "curl -H 'X-Token: ${var.token}' localhost"
  }
}
