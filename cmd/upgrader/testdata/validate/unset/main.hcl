# Every required variable here has no value at validate time: each use
# must be checked for shape and type only (unknown), never reported as
# missing or crash. plan must still refuse it.
variable "user" { type = string }
variable "web_address" { type = string }
variable "dsn" {
  type      = string
  sensitive = true
}
variable "version" {
  type = string
  validation {
    condition     = can(regex("^\\d+\\.\\d+\\.\\d+$", var.version))
    error_message = "version must look like 1.2.3"
  }
}
variable "batch" { type = number }
variable "window" { type = string }
variable "port" { type = number }

connection {
  user = var.user
  port = var.port
}

host "web" {
  address = var.web_address
}

database "prod" {
  driver = "postgres"
  dsn    = var.dsn
}

backup "web" {
  host  = host.web
  paths = ["/opt/app/${var.version}"]
}

step "install" {
  hosts      = [host.web]
  batch_size = var.batch
  depends_on = [backup.web]
  run {
    command = "echo ${shellquote(var.version)} > /opt/app/VERSION"
  }
}

check "health" {
  depends_on = [step.install]
  http {
    url    = "http://${host.web.address}:${var.port}/health"
    expect_status = 200
  }
}

observe "soak" {
  depends_on = [check.health]
  duration   = var.window
  interval   = "1m"
  hosts      = [host.web]
}
