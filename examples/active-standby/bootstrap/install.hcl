# Puts the example's hosts in the state production is in before the upgrade:
#   primary, standby: app 1.0.0 against database prod (schema 0001)
#   test:             app 2.0.0 against database test (schema 0001 + 0002):
#                     the release under test
#   lb:               nginx sending traffic to the primary
# Hosts come from hosts.hcl in this directory (written by testenv up), which
# also created the databases with their schemas (golang-migrate's
# schema_migrations table included).

variable "prod_dsn" {
  type      = string
  sensitive = true
}

variable "test_dsn" {
  type      = string
  sensitive = true
}

variable "app_port" {
  type    = number
  default = 8080
}

variable "lb_port" {
  type    = number
  default = 80
}

locals {
  restart = "/opt/app/current/bin/start restart"
}

step "production_v1" {
  hosts           = [host.primary, host.standby]
  backup_required = false # first install: there is nothing to back up yet
  template {
    source      = "../templates/app.conf.tmpl"
    destination = "/etc/app/app.conf"
    vars        = { version = "1.0.0", port = var.app_port, dsn = var.prod_dsn }
  }
  release {
    artifact = "../dist/app-1.0.0.tar.gz"
    dir      = "/opt/app"
    version  = "1.0.0"
    activate = local.restart
  }
}

step "test_v2" {
  host            = host.test
  backup_required = false
  template {
    source      = "../templates/app.conf.tmpl"
    destination = "/etc/app/app.conf"
    vars        = { version = "2.0.0", port = var.app_port, dsn = var.test_dsn }
  }
  release {
    artifact = "../dist/app-2.0.0.tar.gz"
    dir      = "/opt/app"
    version  = "2.0.0"
    activate = local.restart
  }
}

step "lb" {
  depends_on      = [step.production_v1]
  host            = host.lb
  backup_required = false
  template {
    source      = "../templates/nginx.conf.tmpl"
    destination = "/etc/app/nginx.conf"
    vars        = { lb_port = var.lb_port }
  }
  template {
    source      = "../templates/upstream.conf.tmpl"
    destination = "/etc/app/upstream.conf"
    vars        = { backend = host.primary.address, port = var.app_port, role = "primary" }
  }
  run {
    command = "mkdir -p /opt/nginx/tmp && nginx -c /etc/app/nginx.conf -t -q && nginx -c /etc/app/nginx.conf"
    sudo    = true
    unless  = "test -s /opt/nginx/nginx.pid && test -d /proc/$(cat /opt/nginx/nginx.pid)"
  }
}

# The world's Prometheus scrapes the app's /metrics on every app host: the
# upgrade's observation windows read the error ratio from it.
variable "prometheus_url" {
  type = string
}

metric_source "prom" {
  prometheus {
    url = var.prometheus_url
  }
}

check "scraped" {
  depends_on = [step.production_v1, step.test_v2]
  retries    = 30
  interval   = "1s"
  prometheus {
    source = metric_source.prom
    query  = "min(up{instance=~\"(${host.primary.address}|${host.standby.address}|${host.test.address}):${var.app_port}\"}) * count(up{instance=~\"(${host.primary.address}|${host.standby.address}|${host.test.address}):${var.app_port}\"})"
    expect = "== 3"
  }
}
